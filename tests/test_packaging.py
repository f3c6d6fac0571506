"""What installing the project puts in site-packages: the framework only. models/, viz/
and scripts/ are the application, run from the checkout, so they never take the names
`models` and `viz` from a user's own packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_only_the_framework(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("tinygrad_lenet-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        tops = {name.split("/")[0] for name in zf.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"tinygrad_lenet"}, tops


def test_scripts_run_from_any_directory_with_the_checkout_s_models(tmp_path):
    """`python path/to/scripts/x.py` finds models/ and viz/ beside it, wherever it is run from."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "visualize.py"), "--format", "dot",
                           "--out", str(tmp_path / "g.dot")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "features.0" in (tmp_path / "g.dot").read_text()

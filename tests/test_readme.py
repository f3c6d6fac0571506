"""The README's Python blocks run, so the README cannot rot. Each block runs in a
fresh namespace, in a temporary directory (with a docs/ folder); a block preceded by
`<!-- fragment: not run -->` is an excerpt and is skipped by design."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import require

from tinygrad_lenet import OPS

README = Path(__file__).resolve().parents[1] / "README.md"
FRAGMENT = "<!-- fragment: not run -->"


def python_blocks() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"```python\n(.*?)```", text, re.S):
        before = text[:match.start()].rstrip().splitlines()
        if before and before[-1].strip() == FRAGMENT:
            continue
        blocks.append((text[:match.start()].count("\n") + 1, match.group(1)))
    return blocks


BLOCKS = python_blocks()


def test_the_readme_has_runnable_blocks():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"line{line}" for line, _ in BLOCKS])
def test_readme_block_runs(line, code, tmp_path, monkeypatch):
    if "load_mnist(" in code:
        require(bool(os.environ.get("TINYGRAD_LENET_DATA")), "real MNIST needed: set TINYGRAD_LENET_DATA")
    if "save_graph(" in code:
        require_dot = __import__("shutil").which("dot") is not None
        require(require_dot, "'dot' is not installed (apt-get install graphviz)")
    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path)
    registered = set(OPS)
    try:
        exec(compile(code, f"README.md:{line}", "exec"), {"__name__": f"readme_line{line}"})
    finally:
        for name in set(OPS) - registered:  # an op a block defines is the README's, not the package's
            del OPS[name]

"""The runtime policy and the environment: read in one place (`settings`), applied at
the documented points (`runtime.compute_scope`), switchable; and an engine that knows
neither ops nor policy."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from threadpoolctl import threadpool_info

from tinygrad_lenet import OPS, Tensor, nn, runtime, settings

ROOT = Path(__file__).resolve().parents[1]


def blas_threads_now() -> list[int]:
    """The threads of numpy's BLAS: the one our ops use and the runtime drives (scipy's
    own OpenBLAS joins once the depthwise convolution loads it; see below)."""
    blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    numpys = [lib for lib in blas if "numpy" in str(lib.get("filepath", ""))]
    return [lib["num_threads"] for lib in numpys or blas]


@pytest.fixture
def restored_policy():
    saved = runtime.policy().blas_threads, runtime.policy().retain_memory
    yield runtime.policy()
    runtime.configure(blas_threads=saved[0], retain_memory=saved[1])


def test_the_blas_runs_at_the_configured_threads_inside_our_passes_only(restored_policy):
    require(bool(blas_threads_now()), "threadpoolctl finds no BLAS library in numpy to drive")
    outside = blas_threads_now()
    seen = []
    model = nn.Sequential(nn.Linear(4, 3))
    model.register_forward_hook(lambda module, args, out: seen.append(blas_threads_now()))
    x = Tensor(np.ones((2, 4), np.float32))
    model(x)
    runtime.configure(blas_threads=2)
    model(x)
    runtime.configure(blas_threads=None)  # left alone
    model(x)
    assert seen == [[1] * len(outside), [2] * len(outside), outside]
    assert blas_threads_now() == outside  # restored after each pass


_SCIPY_BLAS_SCRIPT = """
import json
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits
from tinygrad_lenet import Tensor, nn
def blas():
    return sorted(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
x = Tensor(np.ones((2, 4, 6, 6), np.float32))
seen = []
with threadpool_limits(limits=2, user_api="blas"):
    nn.Conv2d(4, 4, 3)(x)  # the runtime's first look at the BLAS libraries: scipy's is not loaded yet
    depthwise = nn.Conv2d(4, 4, 3, groups=4)  # its taps go through scipy's BLAS, loaded on first use
    depthwise.register_forward_hook(lambda module, args, out: seen.append(blas()))
    depthwise(x)
    depthwise(x)
    seen.append(blas())
print(json.dumps(seen))
"""


def test_scipys_blas_runs_at_the_configured_threads_once_the_depthwise_convolution_loads_it():
    """In a fresh process whose BLAS libraries run 2 threads: once the depthwise
    convolution has loaded scipy's BLAS (after the runtime first looked), our passes run
    it at the policy's 1 thread too, from that first pass on, and give it back after."""
    import json
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", _SCIPY_BLAS_SCRIPT], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "TINYGRAD_LENET_BLAS_THREADS": "1", "OMP_NUM_THREADS": "2",
                                         "OPENBLAS_NUM_THREADS": "2"})  # every BLAS starts at 2, scipy's too
    assert done.returncode == 0, done.stderr
    first, second, after = json.loads(done.stdout)
    require(len(after) >= 2, "numpy and scipy share one BLAS library here (nothing to adopt)")
    assert first == second == [1] * len(after)
    assert after == [2] * len(after)


def test_configure_refuses_nonsense(restored_policy):
    with pytest.raises(ValueError, match="configure: blas_threads must be an integer >= 1 or None, got 0"):
        runtime.configure(blas_threads=0)


@pytest.mark.parametrize("variable, getter", [("TINYGRAD_LENET_BLAS_THREADS", settings.blas_threads),
                                              ("TINYGRAD_LENET_NUM_THREADS", settings.op_threads),
                                              ("OMP_NUM_THREADS", settings.op_threads)])
def test_a_malformed_variable_is_an_error_naming_it(monkeypatch, variable, getter):
    monkeypatch.delenv("TINYGRAD_LENET_NUM_THREADS", raising=False)
    monkeypatch.setenv(variable, "two")
    with pytest.raises(ValueError, match=f"{variable}='two': expected an integer >= 1"):
        getter()
    monkeypatch.setenv(variable, "3")
    assert getter() == 3


def test_every_environment_variable_is_read_in_settings_and_listed_there():
    """No other module of the package reads os.environ; the settings table names each one read."""
    readers = [str(p.relative_to(ROOT)) for p in (ROOT / "tinygrad_lenet").rglob("*.py")
               if p.name != "settings.py" and re.search(r"os\.environ|getenv", p.read_text())]
    assert readers == []
    source = (ROOT / "tinygrad_lenet" / "settings.py").read_text()
    table = source.split('"""')[1]
    read = set(re.findall(r'"((?:TINYGRAD_LENET|OMP|OMPI|PMIX|PMI|XDG)_[A-Z_]+)"', source)) | {settings.DATA_DIR_VARIABLE}
    assert read and all(f"`{name}`" in table for name in read), read


def test_the_engine_names_no_op_and_applies_no_policy():
    """autograd.py: recording, grad mode and the backward pass, nothing else."""
    source = (ROOT / "tinygrad_lenet" / "autograd.py").read_text()
    tree = ast.parse(source)
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module or "." for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "contextlib", "sys", "threading", "time", "typing", "numpy", "hooks"}, imported
    strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert not strings & set(OPS), strings & set(OPS)
    assert not re.search(r"\b(relu|max_pool2d|conv2d|mallopt|blas)\b", source.split('"""', 2)[2])

"""The docs' hand-written loop (scripts/plain_loop.py) in fresh processes, with and
without train.py's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np

from .common import ROOT

_SET_UP_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                "TINYGRAD_LENET_NUM_THREADS", "TINYGRAD_LENET_BLAS_THREADS", "TINYGRAD_LENET_RETAIN_MEMORY")


def bench_plain_program(runs: int = 3) -> dict[str, Any]:
    """Median step time of the docs' hand-written loop in fresh processes: one with no environment
    variables set (as a user's program), one set up as train.py is; alternating runs."""
    plain_env = {k: v for k, v in os.environ.items() if k not in _SET_UP_VARS}
    train_env = {**plain_env, "OPENBLAS_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    results: dict[str, list[float]] = {"plain": [], "as-train.py": []}
    for _ in range(runs):
        for kind, env in (("plain", plain_env), ("as-train.py", train_env)):
            done = subprocess.run([sys.executable, str(ROOT / "scripts" / "plain_loop.py"), kind], capture_output=True,
                                  text=True, env=env, cwd=ROOT, check=True)
            results[kind].append(json.loads(done.stdout.strip().splitlines()[-1]))
    plain, trained = (float(np.median(results[k])) for k in ("plain", "as-train.py"))
    return dict(runs=runs, plain_ms=plain * 1e3, as_train_ms=trained * 1e3, ratio=plain / trained, seconds=results)

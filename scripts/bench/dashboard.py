"""train.py's training time with and without --dashboard, alternating runs."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import ROOT


def _poll(url: str, proc: subprocess.Popen) -> None:
    import urllib.request
    while proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
        except OSError:
            pass
        time.sleep(0.25)


def bench_dashboard(args: argparse.Namespace, runs: int = 5) -> dict[str, Any]:
    """train.py's own training seconds (metrics.json) for one epoch of 20,000 synthetic
    images at batch 128, with and without --dashboard (its state polled 4 times a
    second), alternating, in fresh processes."""
    import tempfile

    from tinygrad_lenet.data import write_fake_dataset

    seconds: dict[str, list[float]] = {"plain": [], "dashboard": []}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_fake_dataset(data, n_train=20_000, n_test=100)
        for i in range(runs):
            for kind in ("plain", "dashboard"):
                out = Path(tmp) / f"{kind}{i}"
                extra = ["--dashboard", "0"] if kind == "dashboard" else []
                proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), "--dataset", str(data),
                                         "--epochs", "1", "--no-progress", "--out", str(out), *extra],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
                for line in proc.stdout:  # with the dashboard, a client polls it 4 times a second, as a page would
                    if line.startswith("dashboard: "):
                        threading.Thread(target=_poll, args=(line.split()[1] + "state", proc), daemon=True).start()
                        break
                proc.stdout.read()
                if proc.wait() != 0:
                    raise RuntimeError(f"train.py failed ({kind} run {i})")
                seconds[kind].append(json.loads((out / "metrics.json").read_text())["train_seconds"])
    plain, dash = (float(np.median(seconds[k])) for k in ("plain", "dashboard"))
    return dict(runs=runs, plain_s=plain, dashboard_s=dash, ratio=dash / plain, seconds=seconds)

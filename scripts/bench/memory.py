"""Memory while training, each batch size in a fresh process."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from .common import EPOCH_IMAGES, ROOT, make_ours, peak_rss_bytes, random_batches, rss_bytes


def memory_probe(args: argparse.Namespace, batch: int, epochs: int, steps_per_epoch: int) -> dict[str, Any]:
    """Train `epochs` x `steps_per_epoch` steps in this (fresh) process and
    record RSS after each epoch-worth and the peak."""
    batches = random_batches(batch, 4, seed=batch)
    _, step = make_ours(args)
    rss_start = rss_bytes()
    after = []
    for _ in range(epochs):
        for k in range(steps_per_epoch):
            step(*batches[k % len(batches)])
        after.append(rss_bytes())
    return {"batch_size": batch, "steps_per_epoch": steps_per_epoch, "epochs": epochs,
            "rss_before_mb": rss_start / 2**20, "rss_after_each_epoch_mb": [a / 2**20 for a in after],
            "peak_rss_mb": peak_rss_bytes() / 2**20,
            "growth_after_first_epoch_mb": (after[-1] - after[0]) / 2**20}


def bench_memory(batch: int, args: argparse.Namespace) -> dict[str, Any]:
    epochs = 2 if args.quick else 3
    steps = 3 if args.quick else -(-EPOCH_IMAGES // batch)
    cmd = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--memory-probe", str(batch),
           "--memory-epochs", str(epochs), "--memory-steps-per-epoch", str(steps), "--model", args.model]
    cmd += [f"--model-arg={text}" for text in args.model_arg]
    if args.no_retain_memory:
        cmd.append("--no-retain-memory")
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark: memory probe at batch {batch} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])

"""A per-op profile of batch-128 steps (tinygrad_lenet.profiler), the optimizer timed apart."""

from __future__ import annotations

import argparse
import time
from typing import Any

from tinygrad_lenet import Tensor, manual_seed, optim
from tinygrad_lenet import functional as F
from tinygrad_lenet.profiler import profile_ops

from .common import LR, MOMENTUM, WEIGHT_DECAY, model_of, random_batches


def bench_profile(args: argparse.Namespace) -> dict[str, Any]:
    """Per-op times at batch 128, with the optimizer step timed on its own, so
    that what is left (autograd bookkeeping, Python) shows separately."""
    batch, steps = 128, (5 if args.quick else 50)
    batches = random_batches(batch, 4, seed=2)
    manual_seed(0)
    model = model_of(args)
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    optimizer_s = 0.0

    def step(k: int) -> None:
        nonlocal optimizer_s
        x, y = batches[k % len(batches)]
        loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        start = time.perf_counter()
        opt.step()
        optimizer_s += time.perf_counter() - start

    for k in range(3):  # warm-up
        step(k)
    optimizer_s = 0.0
    with profile_ops() as prof:
        for k in range(steps):
            step(k)
    result = prof.as_dict(per=steps)
    result["batch_size"] = batch
    result["optimizer_ms"] = optimizer_s * 1e3 / steps
    overhead = result["wall_ms"] - result["kernel_ms"] - result["optimizer_ms"]
    result["autograd_python_ms"] = overhead
    result["autograd_python_share"] = overhead / result["wall_ms"]
    result["table"] = prof.table(per=steps)
    return result

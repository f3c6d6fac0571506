"""Training steps at each batch size, ours and PyTorch's interleaved."""

from __future__ import annotations

import argparse
from typing import Any

from .common import (
    EPOCH_IMAGES,
    interleaved,
    make_ours,
    make_torch,
    per_step,
    random_batches,
    torch_threads_matching,
    training_runner,
)


def bench_training(batch: int, args: argparse.Namespace, with_torch: bool) -> dict[str, Any]:
    steps = 2 if args.quick else max(2, 1280 // batch)
    batches = random_batches(batch, 4, seed=batch)
    model, step = make_ours(args, workers=args.workers)
    runs = {"ours": training_runner(step, batches, steps)}
    if with_torch:
        torch, _, tstep = make_torch(model, torch_threads_matching(args))
        tbatches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
        runs["torch"] = training_runner(tstep, tbatches, steps)
    stats = interleaved(runs, args.repeats, warmup=1 if args.quick else 3)
    out: dict[str, Any] = {"batch_size": batch, "steps_per_sample": steps}
    for name, s in stats.items():
        s = per_step(s, steps)
        out[name] = {**s, "images_per_s": batch / (s["median_ms"] / 1e3),
                     "epoch_s": EPOCH_IMAGES / batch * s["median_ms"] / 1e3}
    if with_torch:
        out["ratio_ours_over_torch"] = out["ours"]["median_ms"] / out["torch"]["median_ms"]
    return out

"""The compute bound: a step's product FLOPs at numpy's measured sgemm rate."""

from __future__ import annotations

import argparse
import math
import os
import threading
import time
from typing import Any

import numpy as np

from tinygrad_lenet import Tensor, no_grad

from .common import model_of, random_batches, torch_threads_matching


def step_flops(batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """Floating-point operations (2 per multiply-add) of the products in one training
    step: each Conv2d and Linear layer's forward product, its weight gradient (as many)
    and its input gradient (as many; none for the first layer, whose input is the data)."""
    from tinygrad_lenet import nn

    model = model_of(args)
    layers: list[tuple[str, int]] = []

    def count(module: Any, inputs: tuple, output: Any) -> None:
        if isinstance(module, nn.Conv2d):  # weight (O, C / groups, kh, kw): the taps behind each output
            layers.append((type(module).__name__, 2 * output.data.size * math.prod(module.weight.shape[1:])))
        elif isinstance(module, nn.Linear):
            layers.append((type(module).__name__, 2 * output.data.size * module.weight.shape[1]))

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with no_grad():
        model(Tensor(random_batches(batch, 1)[0][0]))
    for h in handles:
        h.remove()
    forward = sum(f for _, f in layers)
    first = layers[0][1] if layers else 0
    return dict(batch_size=batch, forward=forward, step=3 * forward - first, layers=len(layers))


def sgemm_gflops(repeats: int, threads: int = 1) -> float:
    """numpy's float32 matrix product rate (1024^3 products, one BLAS thread each) with
    `threads` threads multiplying at once, in GFLOP/s for all of them together: two
    threads need not double it (cores may share vector units or memory bandwidth)."""
    from tinygrad_lenet.runtime import compute_scope

    mats = [np.random.default_rng(k).standard_normal((1024, 1024), dtype=np.float32) for k in range(threads)]
    rounds = 3
    barrier = threading.Barrier(threads)

    def work(a: np.ndarray) -> None:
        barrier.wait()
        for _ in range(rounds):
            a @ a

    times = []
    with compute_scope():  # one BLAS thread unless TINYGRAD_LENET_BLAS_THREADS says otherwise
        mats[0] @ mats[0]
        for _ in range(max(5, repeats)):
            pool = [threading.Thread(target=work, args=(a,)) for a in mats[1:]]
            for t in pool:
                t.start()
            start = time.perf_counter()
            work(mats[0])
            for t in pool:
                t.join()
            times.append(time.perf_counter() - start)
    return threads * rounds * 2 * 1024 ** 3 / float(np.median(times)) / 1e9


def bench_compute_bound(training: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each measured step against the time its products take at numpy's sgemm rate
    on the cores in use (measured with that many threads multiplying at once): the
    fraction of the compute bound the step achieves."""
    cores = min(torch_threads_matching(args), os.cpu_count() or 1)
    one = sgemm_gflops(args.repeats)
    rate = one if cores == 1 else sgemm_gflops(args.repeats, cores)
    out = []
    for t in training:
        flops = step_flops(t["batch_size"], args)
        bound_ms = flops["step"] / (rate * 1e9) * 1e3
        out.append(dict(**flops, sgemm_gflops_per_core=one, sgemm_gflops=rate, cores=cores, bound_ms=bound_ms,
                        step_ms=t["ours"]["median_ms"], fraction=bound_ms / t["ours"]["median_ms"]))
    return out


def sgemm_rate(c: dict[str, Any]) -> str:
    """The sgemm rate a compute bound used, in words."""
    if c["cores"] == 1:
        return f"{c['sgemm_gflops_per_core']:.0f} GFLOP/s, 1 core"
    return (f"{c['sgemm_gflops']:.0f} GFLOP/s with {c['cores']} threads multiplying at once, "
            f"{c['sgemm_gflops_per_core']:.0f} with one")

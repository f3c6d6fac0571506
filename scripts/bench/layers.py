"""--layers: every everyday layer's forward + backward against PyTorch's, one thread,
at a realistic shape, same inputs and weights; the ratio is ours / PyTorch's."""

from __future__ import annotations

import argparse
from typing import Any, Callable

import numpy as np

from tinygrad_lenet import Tensor, manual_seed, nn

from .common import interleaved

IMAGE_SHAPE = (64, 32, 28, 28)  # a batch of 64 feature maps, 32 channels of 28x28
VECTOR_SHAPE = (256, 512)
LIMIT = 1.5  # the bound: no everyday layer above 1.5x PyTorch's time
CALLS_PER_BLOCK = 5  # calls timed together: one millisecond-long call alone is at the mercy of the one before it

# name -> (our layer, PyTorch's layer from torch.nn, input shape)
LAYERS: dict[str, tuple[Callable[[], Any], Callable[[Any], Any], tuple[int, ...]]] = {
    "ReLU": (lambda: nn.ReLU(), lambda t: t.nn.ReLU(), IMAGE_SHAPE),
    "GELU (exact)": (lambda: nn.GELU(), lambda t: t.nn.GELU(), IMAGE_SHAPE),
    "GELU (tanh)": (lambda: nn.GELU("tanh"), lambda t: t.nn.GELU("tanh"), IMAGE_SHAPE),
    "SiLU": (lambda: nn.SiLU(), lambda t: t.nn.SiLU(), IMAGE_SHAPE),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.1), lambda t: t.nn.LeakyReLU(0.1), IMAGE_SHAPE),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(32), lambda t: t.nn.BatchNorm2d(32), IMAGE_SHAPE),
    "LayerNorm": (lambda: nn.LayerNorm(512), lambda t: t.nn.LayerNorm(512), VECTOR_SHAPE),
    "Linear": (lambda: nn.Linear(512, 512), lambda t: t.nn.Linear(512, 512), VECTOR_SHAPE),
    "Conv2d 3x3": (lambda: nn.Conv2d(32, 32, 3, padding=1), lambda t: t.nn.Conv2d(32, 32, 3, padding=1), IMAGE_SHAPE),
    "Conv2d 3x3 depthwise": (lambda: nn.Conv2d(32, 32, 3, padding=1, groups=32),
                             lambda t: t.nn.Conv2d(32, 32, 3, padding=1, groups=32), IMAGE_SHAPE),
    "Conv2d 3x3 dilation 2": (lambda: nn.Conv2d(32, 32, 3, padding=2, dilation=2),
                              lambda t: t.nn.Conv2d(32, 32, 3, padding=2, dilation=2), IMAGE_SHAPE),
    "ConvTranspose2d 2x2 stride 2": (lambda: nn.ConvTranspose2d(32, 32, 2, stride=2),
                                     lambda t: t.nn.ConvTranspose2d(32, 32, 2, stride=2), IMAGE_SHAPE),
    "MaxPool2d 2": (lambda: nn.MaxPool2d(2), lambda t: t.nn.MaxPool2d(2), IMAGE_SHAPE),
    "AvgPool2d 2": (lambda: nn.AvgPool2d(2), lambda t: t.nn.AvgPool2d(2), IMAGE_SHAPE),
    "AdaptiveAvgPool2d 1": (lambda: nn.AdaptiveAvgPool2d(1), lambda t: t.nn.AdaptiveAvgPool2d(1), IMAGE_SHAPE),
}


def bench_layers(args: argparse.Namespace) -> dict[str, Any]:
    """Median forward + backward time of each layer, ours and PyTorch's, timed in
    alternating blocks; PyTorch's layer gets our layer's weights."""
    import torch

    torch.set_num_threads(1)
    return {name: bench_layer(torch, ours_of, theirs_of, shape, args.repeats)
            for name, (ours_of, theirs_of, shape) in LAYERS.items()}


def bench_layer(torch: Any, ours_of: Callable[[], Any], theirs_of: Callable[[Any], Any], shape: tuple[int, ...],
                repeats: int) -> dict[str, Any]:
    manual_seed(0)
    ours, theirs = ours_of(), theirs_of(torch)
    ours.train()
    theirs.train()
    with torch.no_grad():
        for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            q.copy_(torch.from_numpy(p.data))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    g = rng.standard_normal(ours(Tensor(x)).shape, dtype=np.float32)
    xt, gt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(g)

    def run_ours() -> None:
        for _ in range(CALLS_PER_BLOCK):
            ours(Tensor(x, requires_grad=True)).backward(g)

    def run_theirs() -> None:
        for _ in range(CALLS_PER_BLOCK):
            xt.grad = None
            theirs(xt).backward(gt)
    times = interleaved({"ours": run_ours, "pytorch": run_theirs}, repeats=repeats, warmup=1)
    ours_ms, theirs_ms = (times[who]["median_ms"] / CALLS_PER_BLOCK for who in ("ours", "pytorch"))
    return dict(shape=list(shape), ours_ms=ours_ms, pytorch_ms=theirs_ms, ratio=ours_ms / theirs_ms)


def report_layers(results: dict[str, Any]) -> None:
    print(f"Everyday layers, forward + backward, 1 thread (ours / PyTorch; target: each at most {LIMIT}x)")
    print(f"  {'layer':<30} {'input':<18} {'ours ms':>9} {'PyTorch ms':>11} {'ratio':>7}")
    for name, r in results.items():
        verdict = "met" if r["ratio"] <= LIMIT else "NOT MET"
        print(f"  {name:<30} {str(tuple(r['shape'])):<18} {r['ours_ms']:9.2f} {r['pytorch_ms']:11.2f} "
              f"{r['ratio']:6.2f}x  {verdict}")
    relu, gelu = results.get("ReLU"), results.get("GELU (exact)")
    if relu and gelu:
        print(f"  exact GELU costs {gelu['ours_ms'] / relu['ours_ms']:.1f}x our ReLU (target: at most 2x)")

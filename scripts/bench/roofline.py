"""The per-op roofline of a batch-128 LeNet-5 step: each heavy kernel of the step (the
convolutions forward and their input and weight gradients, relu + max pooling forward
and backward, the linear layers forward and backward) timed alone on one thread, with
its floating-point work and the bytes it must move at the least, and the share of its
bound it reaches, the bound being the longer of its work at numpy's sgemm rate and its
bytes at the machine's copy bandwidth. The report names the kernel with the most time above its bound.

Each kernel gets its inputs in the memory layout the step hands them (the data batch as
NCHW, every activation and gradient behind a convolution batch-innermost, the second
pooling's gradient as the classifier's reshape returns it), and the weight gradient
reads the forward pass's kept shifted copies, as in the step: timed on NCHW arrays
instead, the two weight gradients took 1.6-2.2x as long, a transposing copy of their
own."""

from __future__ import annotations

import argparse
import math
import time
from typing import Any, Callable

import numpy as np

from tinygrad_lenet import Tensor, autograd
from tinygrad_lenet.ops.conv import Conv2d, Conv2dInputGrad, Conv2dWeightGrad, grad_rows
from tinygrad_lenet.ops.fused import ReluMaxPool2d
from tinygrad_lenet.ops.layout import copy_batch_innermost
from tinygrad_lenet.ops.linalg import Linear
from tinygrad_lenet.runtime import compute_scope

from .compute_bound import sgemm_gflops

F32 = 4  # bytes


COPY_MIB = 4  # the size of LeNet-5's largest arrays at batch 128 (2.4-5 MB): they stay in the L3 cache


def copy_gbytes_per_s(repeats: int) -> float:
    """The bandwidth the kernels' arrays see, as numpy sees it: bytes read plus written per
    second copying a 4 MiB float32 array into another. The step's arrays stay in the L3
    cache, where a copy runs about 3x as fast as from memory (74 against 24 GB/s for 64
    MiB here); measured from memory, the pooling kernels passed their own bound."""
    a = np.ones(COPY_MIB * 2**18, dtype=np.float32)
    b = np.empty_like(a)
    np.copyto(b, a)
    times = []
    for _ in range(max(5, repeats)):
        start = time.perf_counter()
        np.copyto(b, a)
        times.append(time.perf_counter() - start)
    return 2 * a.nbytes / float(np.median(times)) / 1e9


def _median_s(run: Callable[[], Any], repeats: int) -> float:
    run()
    times = []
    for _ in range(max(5, repeats)):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _backward_of(out: Tensor, grad: np.ndarray) -> Callable[[], Any]:
    """A call of the rule that produced `out` (its saved arrays kept), on `grad`."""
    ctx = out.grad_fn
    return lambda: ctx.fn.backward(ctx, grad)


def _batch_innermost(a: np.ndarray) -> np.ndarray:
    """(N, ...) `a`, the same values, with the batch axis innermost in memory."""
    out = np.empty(a.shape[1:] + a.shape[:1], dtype=a.dtype)
    return np.moveaxis(copy_batch_innermost(a, out), -1, 0)


def lenet_kernels(batch: int = 128) -> list[dict[str, Any]]:
    """Each heavy kernel of a LeNet-5 step at `batch`: a name, the call, its FLOPs (2 per
    multiply-add) and the float32 bytes it reads and writes at the least."""
    rng = np.random.default_rng(0)

    def arr(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)
    kernels = []
    for name, (n, c, h, o, k, pad) in {"conv1": (batch, 1, 28, 6, 5, 2), "conv2": (batch, 6, 14, 16, 5, 0)}.items():
        x, w, b = arr(n, c, h, h), arr(o, c, k, k), arr(o)
        x = x if c == 1 else _batch_innermost(x)  # the data, or the first pooling's output
        ho = h + 2 * pad - k + 1
        g = _batch_innermost(arr(n, o, ho, ho))  # as the pooling's backward returns it
        flops = 2 * n * o * ho * ho * c * k * k
        attrs = dict(stride=(1, 1), padding=(pad, pad))
        with autograd.enable_grad():  # the forward pass keeps what the weight gradient reads
            ctx = Conv2d.apply(Tensor(x, requires_grad=c > 1), Tensor(w, requires_grad=True), **attrs).grad_fn
        kept = dict(padded_input=ctx.values.get("padded"), patch_grid=ctx.values.get("grid"))
        kernels.append(dict(kernel=f"{name} forward", flops=flops, bytes=F32 * (x.size + w.size + g.size),
                            run=lambda x=x, w=w, b=b, attrs=attrs: Conv2d.call(x, w, b, **attrs)))
        kernels.append(dict(kernel=f"{name} weight gradient", flops=flops, bytes=F32 * (x.size + g.size + w.size),
                            run=lambda x=x, g=g, w=w, attrs=attrs, kept=kept: Conv2dWeightGrad.call(
                                x, g, w_shape=w.shape, grad_matrix=grad_rows(g), **kept, **attrs)))
        if c > 1:  # the first layer's input is the data: no gradient
            kernels.append(dict(kernel=f"{name} input gradient", flops=flops, bytes=F32 * (g.size + w.size + x.size),
                                run=lambda x=x, g=g, w=w, attrs=attrs: Conv2dInputGrad.call(
                                    g, w, x_shape=x.shape, grad_matrix=grad_rows(g), **attrs)))
    for name, (n, c, h) in {"relu + max_pool2d 1": (batch, 6, 28), "relu + max_pool2d 2": (batch, 16, 10)}.items():
        x = Tensor(_batch_innermost(arr(n, c, h, h)), requires_grad=True)  # a convolution's output
        with autograd.enable_grad():
            out = ReluMaxPool2d.apply(x, kernel_size=(2, 2), stride=(2, 2))
        g = arr(*out.shape)  # the second's: NCHW, from the classifier's reshape
        if c == 6:  # the first's: the second convolution's input gradient, batch-innermost
            g = _batch_innermost(g)
        kernels.append(dict(kernel=f"{name} forward", flops=0, bytes=F32 * (x.size + out.data.size),
                            run=lambda x=x: ReluMaxPool2d.call(x.data, kernel_size=(2, 2), stride=(2, 2))))
        kernels.append(dict(kernel=f"{name} backward", flops=0, bytes=F32 * (g.size + x.size + x.size),
                            run=_backward_of(out, g)))
    for name, (n, i, o) in {"fc 400-120": (batch, 400, 120), "fc 120-84": (batch, 120, 84),
                            "fc 84-10": (batch, 84, 10)}.items():
        x, w, b = (Tensor(arr(*s), requires_grad=True) for s in ((n, i), (o, i), (o,)))
        with autograd.enable_grad():
            out = Linear.apply(x, w, b)
        g = arr(n, o)
        kernels.append(dict(kernel=f"{name} forward", flops=2 * n * i * o, bytes=F32 * (x.size + w.size + n * o),
                            run=lambda x=x, w=w, b=b: Linear.call(x.data, w.data, b.data)))
        kernels.append(dict(kernel=f"{name} backward", flops=4 * n * i * o,
                            bytes=F32 * (g.size + x.size + w.size + x.size + w.size), run=_backward_of(out, g)))
    return kernels


def bench_roofline(args: argparse.Namespace) -> dict[str, Any]:
    """Every kernel of `lenet_kernels` timed (median over repeats, one thread) against its bound."""
    repeats = args.repeats
    with compute_scope():
        gflops = sgemm_gflops(repeats)
        bandwidth = copy_gbytes_per_s(repeats)
        rows = []
        for k in lenet_kernels():
            seconds = _median_s(k["run"], repeats)
            bound = max(k["flops"] / (gflops * 1e9), k["bytes"] / (bandwidth * 1e9))
            rows.append(dict(kernel=k["kernel"], ms=seconds * 1e3, gflop=k["flops"] / 1e9, mbytes=k["bytes"] / 2**20,
                             bound_ms=bound * 1e3, limit="compute" if k["flops"] / (gflops * 1e9) * 1e3 >= bound * 1e3
                             and k["flops"] else "memory", share=bound / seconds if seconds > 0 else math.nan))
    return dict(batch_size=128, sgemm_gflops=gflops, copy_gbytes_per_s=bandwidth, kernels=rows)


def report_roofline(r: dict[str, Any]) -> list[str]:
    lines = [f"per-kernel roofline, batch {r['batch_size']}, 1 thread (bound: the longer of the work at numpy's sgemm "
             f"rate, {r['sgemm_gflops']:.0f} GFLOP/s, and the bytes at its copy bandwidth in the cache, "
             f"{r['copy_gbytes_per_s']:.1f} GB/s over {COPY_MIB} MiB arrays)",
             f"  {'kernel':28s}{'ms':>8s}{'GFLOP':>8s}{'MiB':>8s}{'bound ms':>10s}  {'bound by':9s}{'share':>7s}"]
    for k in sorted(r["kernels"], key=lambda k: k["share"]):
        lines.append(f"  {k['kernel']:28s}{k['ms']:8.3f}{k['gflop']:8.3f}{k['mbytes']:8.2f}{k['bound_ms']:10.3f}  "
                     f"{k['limit']:9s}{k['share']:7.0%}")
    gap = max(r["kernels"], key=lambda k: k["ms"] - k["bound_ms"])
    lines.append(f"  the most time above its bound: {gap['kernel']}, {gap['ms'] - gap['bound_ms']:.2f} ms "
                 f"({gap['share']:.0%} of its bound reached)")
    return lines

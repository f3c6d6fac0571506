"""Max and average pooling over NCHW tensors (no padding; output size floors).

Both work on the kh*kw strided "offset slices" of the input: slice (i, j) is
x[:, :, i::sh, j::sw] cut to the output size, i.e. the element at offset (i, j)
of every window. A pooled value is then a handful of whole-array np.maximum
(or add) calls, and backward writes each slice's share of the gradient back
through the same strided views. This keeps whatever memory order the input
has (convolutions hand over batch-innermost arrays) and never builds a window
array.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..autograd import Function
from ..errors import ShapeError
from .layout import in_memory_order_of, memory_order


def check_pool_shapes(op: str, x_shape, kernel, stride) -> tuple[int, int]:
    """The output (Ho, Wo), or a ValueError naming the op and shapes."""
    if len(x_shape) != 4:
        raise ShapeError(f"{op}: input must be 4-D (N, C, H, W), got shape {x_shape}")
    (kh, kw), (sh, sw) = kernel, stride
    if kh < 1 or kw < 1 or sh < 1 or sw < 1:
        raise ShapeError(f"{op}: kernel {kernel} and stride {stride} must be >= 1")
    if kh > x_shape[2] or kw > x_shape[3]:
        raise ShapeError(f"{op}: kernel {kernel} is bigger than the input {tuple(x_shape[2:])} (shape {x_shape})")
    return (x_shape[2] - kh) // sh + 1, (x_shape[3] - kw) // sw + 1


def offset_slices(x: np.ndarray, kernel, stride, out_hw) -> list[np.ndarray]:
    """Views (N, C, Ho, Wo), one per window offset (i, j) in row-major order."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    return [x[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
            for i in range(kh) for j in range(kw)]


def _tiles_exactly(x_shape, kernel, stride, out_hw) -> bool:
    """Windows neither overlap nor leave input elements out."""
    return tuple(kernel) == tuple(stride) and (x_shape[2], x_shape[3]) == (
        out_hw[0] * kernel[0], out_hw[1] * kernel[1])


def grad_buffer(x_shape, order, kernel, stride, out_hw, dtype) -> tuple[np.ndarray, bool]:
    """A gradient buffer of x's shape laid out in memory order `order`, and
    whether slices may be assigned (windows tile the input) rather than added
    (overlaps, or gaps that must stay zero)."""
    assign = _tiles_exactly(x_shape, kernel, stride, out_hw)
    alloc = np.empty if assign else np.zeros
    buf = alloc(tuple(x_shape[a] for a in order), dtype=dtype)
    return buf.transpose(np.argsort(order)), assign


class MaxPool2d(Function):
    """On ties the whole gradient of a window goes to its first maximum (in
    row-major window order), as in PyTorch; a window holding NaN has NaN as its
    maximum and sends the gradient to its first NaN. (`fused.ReluMaxPool2d` is this
    op after a relu, in one pass.)"""
    name = "max_pool2d"

    @staticmethod
    def forward(ctx, x, kernel_size, stride):
        out = window_max(x, kernel_size, stride)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = (np.asarray(v) for v in ctx.saved_tensors)  # where the maxima are: constants
        return MaxPool2dGrad.call(grad, x=x, out=out, kernel_size=ctx.attrs["kernel_size"], stride=ctx.attrs["stride"])


def window_max(x: np.ndarray, kernel, stride) -> np.ndarray:
    """Each window's maximum, in x's memory order (NaN wins)."""
    out_hw = check_pool_shapes("max_pool2d", x.shape, kernel, stride)
    if tuple(kernel) == tuple(stride):
        return tiled_max(x, kernel, out_hw)
    return elementwise_max(offset_slices(x, kernel, stride, out_hw))


def elementwise_max(views: list[np.ndarray]) -> np.ndarray:
    """The elementwise maximum of same-shaped arrays (NaN wins, as in np.maximum)."""
    out = views[0].copy(order="K") if len(views) == 1 else np.maximum(views[0], views[1])
    for v in views[2:]:
        np.maximum(out, v, out=out)
    return out


def tiled_max(x: np.ndarray, kernel, out_hw) -> np.ndarray:
    """max_pool2d's output when the stride equals the kernel (windows side by side):
    the maximum over each window's rows, then over its columns. Fewer and larger
    numpy calls than one per window offset; the same maxima."""
    (kh, kw), (ho, wo) = kernel, out_hw
    n, c = x.shape[:2]
    windows = x[:, :, :ho * kh, :wo * kw].reshape(n, c, ho, kh, wo, kw)  # a view: axes are only split
    rows = elementwise_max([windows[:, :, :, i] for i in range(kh)])
    return elementwise_max([rows[..., j] for j in range(kw)])


def window_hits(x: np.ndarray, out: np.ndarray, kernel, stride,
                only: np.ndarray | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(window offset k, where offset k holds its window's maximum): each window's
    first maximum in row-major order, its first NaN when it holds one. With `only`
    (a boolean array shaped like `out`), windows where it is False have no hits."""
    slices = offset_slices(x, kernel, stride, out.shape[2:])
    with_nan = out.dtype.kind == "f" and out.size > 0 and bool(np.isnan(out.max()))  # max() propagates NaN
    last = len(slices) - 1
    free = None if only is None else only.copy(order="K")  # windows whose gradient has not been routed yet
    for k, s in enumerate(slices):
        if k == last:  # whatever is left holds its maximum here
            hit = np.ones(out.shape, dtype=bool) if free is None else free
        else:
            hit = s == out
            if with_nan:
                hit |= np.isnan(s)
            if free is None:
                free = ~hit
            else:
                hit &= free
                free ^= hit
        yield k, hit


class MaxPool2dGrad(Function):
    """The gradient of max_pool2d: each window's gradient routed to where its maximum
    was (`x` and `out` of the pooling, constants here). Its own gradient gathers from
    the same places."""
    name = "max_pool2d_grad"

    @staticmethod
    def forward(ctx, grad, x, out, kernel_size, stride):
        return route_max_grad(grad, x, out, kernel_size, stride)

    @staticmethod
    def backward(ctx, grad):
        a = ctx.attrs
        kernel, stride, out = a["kernel_size"], a["stride"], a["out"]
        slices = _offset_index(kernel, stride, out.shape[2:])
        total = None
        for k, hit in window_hits(a["x"], out, kernel, stride):
            part = grad[slices[k]] * hit.astype(out.dtype)
            total = part if total is None else total + part
        return total


def route_max_grad(grad: np.ndarray, x: np.ndarray, out: np.ndarray, kernel, stride,
                   only: np.ndarray | None = None) -> np.ndarray:
    """max_pool2d's input gradient (arrays): each window's gradient sent to where its
    maximum was; with `only`, windows where it is False send none (a relu's mask,
    applied by the hits instead of by a multiply of its own)."""
    out_hw = out.shape[2:]
    grad = in_memory_order_of(out, grad)
    gx, assign = grad_buffer(x.shape, memory_order(x), kernel, stride, out_hw, grad.dtype)
    targets = offset_slices(gx, kernel, stride, out_hw)
    for k, hit in window_hits(x, out, kernel, stride, only):
        if assign:
            np.multiply(grad, hit, out=targets[k])
        else:
            targets[k] += grad * hit
    return gx


def _offset_index(kernel, stride, out_hw) -> list[tuple[slice, ...]]:
    """The index of each window offset's slice (as `offset_slices` cuts them)."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    return [(slice(None), slice(None), slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw))
            for i in range(kh) for j in range(kw)]


class AvgPool2d(Function):
    name = "avg_pool2d"

    @staticmethod
    def forward(ctx, x, kernel_size, stride):
        out_hw = check_pool_shapes("avg_pool2d", x.shape, kernel_size, stride)
        if x.dtype.kind != "f":
            x = x.astype(np.float64)  # the mean of integers, as numpy's mean gives
        slices = offset_slices(x, kernel_size, stride, out_hw)
        out = slices[0].copy()
        for s in slices[1:]:
            out += s
        out *= x.dtype.type(1.0 / len(slices))
        ctx.remember(x_layout=(x.shape, memory_order(x)))
        return out

    @staticmethod
    def backward(ctx, grad):
        x_shape, order = ctx.values["x_layout"]
        return AvgPool2dGrad.call(grad, kernel_size=ctx.attrs["kernel_size"], stride=ctx.attrs["stride"],
                                  x_shape=x_shape, order=order)


class AvgPool2dGrad(Function):
    """The gradient of avg_pool2d: each window's gradient shared evenly among its
    elements. Its own gradient is avg_pool2d."""
    name = "avg_pool2d_grad"

    @staticmethod
    def forward(ctx, grad, kernel_size, stride, x_shape, order):
        kernel = kernel_size
        share = grad * grad.dtype.type(1.0 / (kernel[0] * kernel[1]))
        gx, assign = grad_buffer(x_shape, order, kernel, stride, share.shape[2:], grad.dtype)
        for target in offset_slices(gx, kernel, stride, share.shape[2:]):
            if assign:
                target[...] = share
            else:
                target += share
        return gx

    @staticmethod
    def backward(ctx, grad):
        return AvgPool2d.call(grad, kernel_size=ctx.attrs["kernel_size"], stride=ctx.attrs["stride"])

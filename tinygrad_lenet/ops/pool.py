"""Max and average pooling over NCHW tensors (no padding; output size floors)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..autograd import Function


def check_pool_shapes(op: str, x_shape, kernel, stride) -> tuple[int, int]:
    """The output (Ho, Wo), or a ValueError naming the op and shapes."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W), got shape {x_shape}")
    (kh, kw), (sh, sw) = kernel, stride
    if kh < 1 or kw < 1 or sh < 1 or sw < 1:
        raise ValueError(f"{op}: kernel {kernel} and stride {stride} must be >= 1")
    if kh > x_shape[2] or kw > x_shape[3]:
        raise ValueError(f"{op}: kernel {kernel} is bigger than the input {tuple(x_shape[2:])} (shape {x_shape})")
    return (x_shape[2] - kh) // sh + 1, (x_shape[3] - kw) // sw + 1


def _windows(x: np.ndarray, kernel, stride) -> np.ndarray:
    """View of shape (N, C, Ho, Wo, kh, kw)."""
    (sh, sw) = stride
    return sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::sh, ::sw]


def _scatter_windows(per_offset, x_shape, kernel, stride, out_hw, dtype) -> np.ndarray:
    """Sum per-window-offset gradients back onto the input (overlaps accumulate).
    `per_offset(i, j)` gives the (N, C, Ho, Wo) gradient reaching offset (i, j)."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    gx = np.zeros(x_shape, dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            gx[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] += per_offset(i, j)
    return gx


class MaxPool2d(Function):
    """On ties the whole gradient of a window goes to its first maximum, as in PyTorch."""
    name = "max_pool2d"

    @staticmethod
    def forward(ctx, x, kernel_size, stride):
        ho, wo = check_pool_shapes("max_pool2d", x.shape, kernel_size, stride)
        kh, kw = kernel_size
        win = _windows(x, kernel_size, stride).reshape(*x.shape[:2], ho, wo, kh * kw)
        arg = win.argmax(axis=-1)
        out = np.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
        ctx.save_for_backward(arg)
        ctx.x_shape = x.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        (arg,) = ctx.saved_tensors
        kh, kw = ctx.attrs["kernel_size"]
        return _scatter_windows(lambda i, j: grad * (arg == i * kw + j), ctx.x_shape,
                                ctx.attrs["kernel_size"], ctx.attrs["stride"], grad.shape[2:], grad.dtype)


class AvgPool2d(Function):
    name = "avg_pool2d"

    @staticmethod
    def forward(ctx, x, kernel_size, stride):
        check_pool_shapes("avg_pool2d", x.shape, kernel_size, stride)
        ctx.x_shape = x.shape
        return _windows(x, kernel_size, stride).mean(axis=(-2, -1))

    @staticmethod
    def backward(ctx, grad):
        kh, kw = ctx.attrs["kernel_size"]
        share = grad / grad.dtype.type(kh * kw)
        return _scatter_windows(lambda i, j: share, ctx.x_shape, ctx.attrs["kernel_size"],
                                ctx.attrs["stride"], grad.shape[2:], grad.dtype)

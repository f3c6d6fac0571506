"""2-D convolution (cross-correlation, as in PyTorch) on NCHW tensors via im2col:
the input's patches become the rows of one matrix, and the convolution is a
single matrix product with the flattened filters."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..autograd import Function


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def check_conv2d_shapes(x_shape, w_shape, b_shape, stride, padding) -> None:
    """ValueError naming the shapes when a conv2d cannot be computed."""
    if len(x_shape) != 4:
        raise ValueError(f"conv2d: input must be 4-D (N, C, H, W), got shape {x_shape}")
    if len(w_shape) != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out, in, kh, kw), got shape {w_shape}")
    if x_shape[1] != w_shape[1]:
        raise ValueError(f"conv2d: input has {x_shape[1]} channels but weight {w_shape} expects "
                         f"{w_shape[1]} (input shape {x_shape})")
    if b_shape is not None and tuple(b_shape) != (w_shape[0],):
        raise ValueError(f"conv2d: bias shape {tuple(b_shape)} does not match {w_shape[0]} output channels")
    (sh, sw), (ph, pw) = stride, padding
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ValueError(f"conv2d: stride {stride} must be >= 1 and padding {padding} >= 0")
    hp, wp = x_shape[2] + 2 * ph, x_shape[3] + 2 * pw
    if w_shape[2] > hp or w_shape[3] > wp:
        raise ValueError(f"conv2d: kernel {tuple(w_shape[2:])} is bigger than the padded input "
                         f"({hp}, {wp}) (input shape {x_shape}, padding {padding})")


def im2col(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """Patches of a padded NCHW array as a (N*Ho*Wo, C*kh*kw) matrix."""
    n, c = xp.shape[:2]
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]  # (N, C, Ho, Wo, kh, kw)
    ho, wo = win.shape[2:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)


def col2im(cols: np.ndarray, padded_shape, kh: int, kw: int, sh: int, sw: int, ho: int, wo: int) -> np.ndarray:
    """Adjoint of im2col: add each patch row back to where it came from."""
    n, c = padded_shape[:2]
    patches = cols.reshape(n, ho, wo, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # (N, C, kh, kw, Ho, Wo)
    out = np.zeros(padded_shape, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] += patches[:, :, i, j]
    return out


class Conv2d(Function):
    name = "conv2d"

    @staticmethod
    def forward(ctx, x, w, b=None, *, stride, padding):
        check_conv2d_shapes(x.shape, w.shape, None if b is None else b.shape, stride, padding)
        (sh, sw), (ph, pw) = stride, padding
        n, _, h, wd = x.shape
        o, _, kh, kw = w.shape
        ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(wd, kw, sw, pw)
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
        cols = im2col(xp, kh, kw, sh, sw)
        out = cols @ w.reshape(o, -1).T
        if b is not None:
            out += b
        ctx.save_for_backward(cols, w)
        ctx.geometry = (xp.shape, x.shape, ho, wo)
        return np.ascontiguousarray(out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2))

    @staticmethod
    def backward(ctx, grad):
        cols, w = ctx.saved_tensors
        padded_shape, x_shape, ho, wo = ctx.geometry
        (sh, sw), (ph, pw) = ctx.attrs["stride"], ctx.attrs["padding"]
        o, _, kh, kw = w.shape
        g = grad.transpose(0, 2, 3, 1).reshape(-1, o)  # (N*Ho*Wo, O)
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gxp = col2im(g @ w.reshape(o, -1), padded_shape, kh, kw, sh, sw, ho, wo)
            gx = gxp[:, :, ph:ph + x_shape[2], pw:pw + x_shape[3]]
        if ctx.needs_input_grad[1]:
            gw = (g.T @ cols).reshape(w.shape)
        if len(ctx.parents) == 3:
            gb = g.sum(axis=0) if ctx.needs_input_grad[2] else None
            return gx, gw, gb
        return gx, gw

"""Depthwise convolution: each channel convolved with its own kernel (conv2d with
groups = channels and one kernel per channel). A per-channel product is no GEMM, so it
is computed tap by tap, one channel at a time: for each of the kh * kw kernel positions,
the strided slice of the channel's (already padded) input times that tap's weight,
accumulated in place into preallocated arrays. A channel's block (batch x height x
width) stays in the CPU's cache through its taps; the whole array at once would stream
from memory each tap. Results are channel-major in memory, handed on as (N, C, H, W)
views. At stride 1 the input gradient is the same loop over the padded output gradient
with the kernel flipped (reads from slices, contiguous writes), and the weight gradient
one product per channel of its kh * kw input slices with its output gradient.

Three ops, each linear in both inputs, whose gradients are each other (as conv2d's):
the convolution, its input gradient (each tap's product added back into its slice)
and its weight gradient (each tap's slice against the output gradient, summed).
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function


def _taps(kh: int, kw: int, height: int, width: int, stride: tuple[int, int], dilation: tuple[int, int]):
    """(a, b, rows, cols): each kernel position and the input slice it reads for every output."""
    (sh, sw), (dh, dw) = stride, dilation
    for a in range(kh):
        for b in range(kw):
            yield a, b, slice(a * dh, a * dh + (height - 1) * sh + 1, sh), slice(b * dw, b * dw + (width - 1) * sw + 1, sw)


def output_size(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride, dilation) -> tuple[int, int]:
    """The (height, width) of a depthwise convolution's output."""
    (sh, sw), (dh, dw) = stride, dilation
    return ((x_shape[2] - dh * (w_shape[2] - 1) - 1) // sh + 1, (x_shape[3] - dw * (w_shape[3] - 1) - 1) // sw + 1)


def batch_innermost(a: np.ndarray) -> bool:
    """Whether (N, C, H, W) `a` lies batch-innermost in memory, as the convolutions hand it on."""
    return a.ndim == 4 and a.shape[0] > 1 and a.strides[0] == a.itemsize and a.strides[3] > a.itemsize


def channel_major(shape: tuple[int, ...], like: np.ndarray, dtype, zeros: bool = False) -> np.ndarray:
    """A (C, N, H, W) array, batch-innermost in memory when `like` is: then each channel's
    block is read and written in runs of N, as `like` lies."""
    make = np.zeros if zeros else np.empty
    if batch_innermost(like):
        c, n, h, w = shape
        return make((c, h, w, n), dtype).transpose(0, 3, 1, 2)
    return make(shape, dtype)


def _correlate(x: np.ndarray, w: np.ndarray, stride, dilation, height: int, width: int) -> np.ndarray:
    """Each channel of x (N, C, H, W) cross-correlated with its kernel w (C, 1, kh, kw), as a
    channel-major (C, N, height, width) array: the first tap written, the others added."""
    out = channel_major((x.shape[1], x.shape[0], height, width), x, np.result_type(x, w))
    product = np.empty_like(out[0])
    (first, *rest) = list(_taps(w.shape[2], w.shape[3], height, width, stride, dilation))
    for c in range(x.shape[1]):
        xc, oc = x[:, c], out[c]
        a, b, rows, cols = first
        np.multiply(xc[:, rows, cols], w[c, 0, a, b], out=oc)
        for a, b, rows, cols in rest:
            np.multiply(xc[:, rows, cols], w[c, 0, a, b], out=product)
            oc += product
    return out


class DepthwiseConv2d(Function):
    """x (N, C, H, W), already padded, and w (C, 1, kh, kw) -> (N, C, Ho, Wo)."""
    name = "depthwise_conv2d"

    @staticmethod
    def forward(ctx, x, w, *, stride, dilation):
        ctx.save_for_backward(x, w)
        return _correlate(x, w, stride, dilation, *output_size(x.shape, w.shape, stride, dilation)).transpose(1, 0, 2, 3)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        attrs = dict(stride=ctx.attrs["stride"], dilation=ctx.attrs["dilation"])
        dx = DepthwiseConv2dInputGrad.call(grad, w, x_shape=tuple(x.shape), **attrs) if ctx.needs_input_grad[0] else None
        dw = DepthwiseConv2dWeightGrad.call(x, grad, w_shape=tuple(w.shape), **attrs) if ctx.needs_input_grad[1] else None
        return dx, dw


class DepthwiseConv2dInputGrad(Function):
    """d depthwise_conv2d / d x: each tap's weight times `grad`, added back into the
    input-shaped (`x_shape`) slice it was read from."""
    name = "depthwise_conv2d_input_grad"

    @staticmethod
    def forward(ctx, grad, w, *, stride, dilation, x_shape):
        ctx.save_for_backward(grad, w)
        n, channels, h, wd = x_shape
        kh, kw = w.shape[2:]
        (dh, dw) = dilation
        if stride == (1, 1) and (h, wd) == (grad.shape[2] + (kh - 1) * dh, grad.shape[3] + (kw - 1) * dw):
            # the full correlation of the output gradient with the flipped kernel
            ph, pw = (kh - 1) * dh, (kw - 1) * dw
            padded = channel_major((channels, n, grad.shape[2] + 2 * ph, grad.shape[3] + 2 * pw), grad, grad.dtype,
                                   zeros=True).transpose(1, 0, 2, 3)
            padded[:, :, ph:ph + grad.shape[2], pw:pw + grad.shape[3]] = grad
            return _correlate(padded, w[:, :, ::-1, ::-1], stride, dilation, h, wd).transpose(1, 0, 2, 3)
        out = channel_major((channels, n, h, wd), grad, np.result_type(grad, w), zeros=True)
        product = np.empty_like(grad[:, 0], dtype=out.dtype)
        taps = list(_taps(kh, kw, grad.shape[2], grad.shape[3], stride, dilation))
        for c in range(channels):
            gc, oc = grad[:, c], out[c]
            for a, b, rows, cols in taps:
                np.multiply(gc, w[c, 0, a, b], out=product)
                oc[:, rows, cols] += product
        return out.transpose(1, 0, 2, 3)

    @staticmethod
    def backward(ctx, grad):
        g, w = ctx.saved_tensors
        attrs = dict(stride=ctx.attrs["stride"], dilation=ctx.attrs["dilation"])
        d_g = DepthwiseConv2d.call(grad, w, **attrs) if ctx.needs_input_grad[0] else None
        d_w = DepthwiseConv2dWeightGrad.call(grad, g, w_shape=tuple(w.shape), **attrs) if ctx.needs_input_grad[1] else None
        return d_g, d_w


class DepthwiseConv2dWeightGrad(Function):
    """d depthwise_conv2d / d w: for each tap, its input slice against `grad`, summed
    over the batch and the positions, per channel: one (taps, positions) @ (positions,)
    product per channel."""
    name = "depthwise_conv2d_weight_grad"

    @staticmethod
    def forward(ctx, x, grad, *, stride, dilation, w_shape):
        ctx.save_for_backward(x, grad)
        dtype = np.result_type(x, grad)
        taps = list(_taps(w_shape[2], w_shape[3], grad.shape[2], grad.shape[3], stride, dilation))
        out = np.empty((w_shape[0], len(taps)), dtype)
        order = (1, 2, 0) if batch_innermost(x) else (0, 1, 2)  # each slice copied as it lies: (H, W, N) or (N, H, W)
        per_channel = (grad.shape[0], *grad.shape[2:])
        slices = np.empty((len(taps), *(per_channel[i] for i in order)), dtype)
        for c in range(w_shape[0]):
            xc = x[:, c]
            for i, (_, _, rows, cols) in enumerate(taps):
                slices[i] = xc[:, rows, cols].transpose(order)
            gc = np.ascontiguousarray(grad[:, c].transpose(order))
            np.matmul(slices.reshape(len(taps), -1), gc.reshape(-1), out=out[c])
        return out.reshape(w_shape)

    @staticmethod
    def backward(ctx, grad):
        x, g = ctx.saved_tensors
        attrs = dict(stride=ctx.attrs["stride"], dilation=ctx.attrs["dilation"])
        d_x = DepthwiseConv2dInputGrad.call(g, grad, x_shape=tuple(x.shape), **attrs) if ctx.needs_input_grad[0] else None
        d_g = DepthwiseConv2d.call(x, grad, **attrs) if ctx.needs_input_grad[1] else None
        return d_x, d_g

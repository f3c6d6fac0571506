"""Depthwise convolution: each channel convolved with its own kernel (conv2d with
groups = channels and one kernel per channel). A per-channel product is no GEMM, so it
is computed tap by tap, one channel at a time: for each of the kh * kw kernel positions,
the strided slice of the channel's (already padded) input times that tap's weight,
accumulated in place. A channel's block (batch x height x width) stays in the CPU's
cache through its taps; the whole array at once would stream from memory each tap.

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


class DepthwiseConv2d(Function):
    """x (N, C, H, W), already padded, and w (C, 1, kh, kw) -> (N, C, Ho, Wo)."""
    name = "depthwise_conv2d"

    @staticmethod
    def forward(ctx, x, w, *, stride, dilation):
        ctx.save_for_backward(x, w)
        height, width = output_size(x.shape, w.shape, stride, dilation)
        out = np.zeros((x.shape[1], x.shape[0], height, width), np.result_type(x, w))  # channel-major
        taps = list(_taps(w.shape[2], w.shape[3], height, width, stride, dilation))
        for c in range(x.shape[1]):
            xc, oc = np.ascontiguousarray(x[:, c]), out[c]
            for a, b, rows, cols in taps:
                oc += xc[:, rows, cols] * w[c, 0, a, b]
        return out.transpose(1, 0, 2, 3).copy()

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
        out = np.zeros((channels, n, h, wd), np.result_type(grad, w))  # channel-major
        taps = list(_taps(w.shape[2], w.shape[3], grad.shape[2], grad.shape[3], stride, dilation))
        for c in range(channels):
            gc, oc = np.ascontiguousarray(grad[:, c]), out[c]
            for a, b, rows, cols in taps:
                oc[:, rows, cols] += gc * w[c, 0, a, b]
        return out.transpose(1, 0, 2, 3).copy()

    @staticmethod
    def backward(ctx, grad):
        g, w = ctx.saved_tensors
        attrs = dict(stride=ctx.attrs["stride"], dilation=ctx.attrs["dilation"])
        d_g = DepthwiseConv2d.call(grad, w, **attrs) if ctx.needs_input_grad[0] else None
        d_w = DepthwiseConv2dWeightGrad.call(grad, g, w_shape=tuple(w.shape), **attrs) if ctx.needs_input_grad[1] else None
        return d_g, d_w


class DepthwiseConv2dWeightGrad(Function):
    """d depthwise_conv2d / d w: for each tap, its input slice against `grad`, summed
    over the batch and the positions, per channel."""
    name = "depthwise_conv2d_weight_grad"

    @staticmethod
    def forward(ctx, x, grad, *, stride, dilation, w_shape):
        ctx.save_for_backward(x, grad)
        out = np.zeros(w_shape, np.result_type(x, grad))
        taps = list(_taps(w_shape[2], w_shape[3], grad.shape[2], grad.shape[3], stride, dilation))
        for c in range(w_shape[0]):
            xc, gc = np.ascontiguousarray(x[:, c]), np.ascontiguousarray(grad[:, c])
            for a, b, rows, cols in taps:
                out[c, 0, a, b] = np.einsum("nhw,nhw->", xc[:, rows, cols], gc)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, g = ctx.saved_tensors
        attrs = dict(stride=ctx.attrs["stride"], dilation=ctx.attrs["dilation"])
        d_x = DepthwiseConv2dInputGrad.call(g, grad, x_shape=tuple(x.shape), **attrs) if ctx.needs_input_grad[0] else None
        d_g = DepthwiseConv2d.call(x, grad, **attrs) if ctx.needs_input_grad[1] else None
        return d_x, d_g

"""Depthwise convolution: each channel convolved with its own kernel (conv2d with
groups = channels and one kernel per channel). A per-channel product is no GEMM, so it
is computed tap by tap, one channel at a time, each tap's product accumulated in place
into preallocated arrays; a channel's block (batch x height x width) stays in the CPU's
cache through its taps, where the whole array at once would stream from memory each tap.

At stride 1 (the common case) every tap is one long contiguous run. The input is copied
channel-major and padded, (C, N, Hp, Wp), and each channel's block is read as one flat row: the tap
at kernel position (a, b) reads, for the output at flat position p, the input at p + a *
dh * W + b * dw. Computing the output over the input's whole grid (the positions past
the output's edge are computed and never read) makes each tap one product over a
slice of that row, instead of one short loop per image row, and each product after the
first is added by the BLAS's axpy in one pass (numpy needs two: a product, then a sum;
they do the work for dtypes the BLAS lacks). The bias is added per channel while its
block is in cache, and the padding is the grid's zeros: the op takes both. The
input gradient adds each tap's product back at the same offsets, from the output
gradient placed on the input's grid with zeros around it; the weight gradient is one
dot product per tap. Other strides take each tap's strided slice of the image.

Results are channel-major in memory, handed on as (N, C, H, W) views.

Three ops, each linear in both inputs, whose gradients are each other (as conv2d's):
the convolution, its input gradient (each tap's product added back into its slice)
and its weight gradient (each tap's slice against the output gradient, summed).
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from .blas import axpy_routine
from .conv import bias_grad, grad_rows
from .layout import copy_into


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


def _flat_offsets(kh: int, kw: int, width: int, dilation: tuple[int, int]) -> list[int]:
    """Where each kernel position reads in a row-major grid `width` wide, relative to
    the output's position in the same grid."""
    return [a * dilation[0] * width + b * dilation[1] for a in range(kh) for b in range(kw)]


def channel_major_grid(a: np.ndarray, height: int, width: int, top: int = 0, left: int = 0) -> np.ndarray:
    """(N, C, h, w) `a` as a C-contiguous (C, N, height, width) array: `a` from row `top`
    and column `left` of each image's grid, zeros around it."""
    n, c, h, w = a.shape
    grid = (np.empty if (h, w) == (height, width) else np.zeros)((c, n, height, width), a.dtype)
    copy_into(grid[:, :, top:top + h, left:left + w], a.transpose(1, 0, 2, 3))
    return grid


def _sum_of_taps(rows: np.ndarray, taps: np.ndarray, read: list[int], write: list[int], length: int,
                 dtype, bias: np.ndarray | None = None) -> np.ndarray:
    """out[c, write[t]:][:length] += taps[c, t] * rows[c, read[t]:][:length] for every
    channel c and tap t, into zeros, plus bias[c] over out[c, :length]: (C, L) from
    channel rows (C, L). The first tap (offsets 0) is written, each other one added by
    the BLAS's axpy (one pass), or by numpy's product and sum where there is none."""
    c, size = rows.shape
    if length <= 0:  # an empty batch
        return np.zeros((c, size), dtype)
    rows = np.ascontiguousarray(rows, dtype=dtype)
    taps = taps.reshape(c, -1).astype(dtype).tolist()
    bias = None if bias is None else bias.astype(dtype).tolist()
    out = np.empty((c, size), dtype)
    out[:, length:] = 0
    routine = axpy_routine(dtype)
    scratch = np.empty(length, dtype) if routine is None else None
    for ch in range(c):
        row, k, oc = rows[ch], taps[ch], out[ch]
        np.multiply(row[:length], k[0], out=oc[:length])
        if bias is not None:
            oc[:length] += bias[ch]
        if routine is not None:
            for t in range(1, len(k)):
                routine(row, oc, n=length, a=k[t], offx=read[t], offy=write[t])
        else:
            for t in range(1, len(k)):
                oc[write[t]:write[t] + length] += np.multiply(row[read[t]:read[t] + length], k[t], out=scratch)
    return out


def _wide_correlate(grid: np.ndarray, w: np.ndarray, b: np.ndarray | None, dilation: tuple[int, int],
                    dtype) -> np.ndarray:
    """Stride-1 correlation of each channel of the channel-major `grid` (C, N, H, W) with
    its kernel, plus its bias, over the whole grid: (C, N, H, W), whose [..., :Ho, :Wo]
    is the output (the positions past the last output are left zero)."""
    c, n, h, wd = grid.shape
    offsets = _flat_offsets(w.shape[2], w.shape[3], wd, dilation)
    length = n * h * wd - offsets[-1]  # the last output's position + 1
    out = _sum_of_taps(grid.reshape(c, -1), w, offsets, [0] * len(offsets), length, dtype, b)
    return out.reshape(grid.shape)


def _wide_scatter(grad_grid: np.ndarray, w: np.ndarray, dilation: tuple[int, int], dtype) -> np.ndarray:
    """The transpose of `_wide_correlate`: each tap's weight times the gradient on the
    grid (zeros past the output), added back where the tap read. (C, N, H, W)."""
    c, n, h, wd = grad_grid.shape
    offsets = _flat_offsets(w.shape[2], w.shape[3], wd, dilation)
    length = n * h * wd - offsets[-1]
    return _sum_of_taps(grad_grid.reshape(c, -1), w, [0] * len(offsets), offsets, length, dtype).reshape(grad_grid.shape)


def _wide_weight_grad(grid: np.ndarray, grad_grid: np.ndarray, kh: int, kw: int, dilation: tuple[int, int],
                      dtype) -> np.ndarray:
    """Each channel's tap slices of `grid` against its gradient on the grid: (C, kh * kw)."""
    c, n, h, wd = grid.shape
    offsets = _flat_offsets(kh, kw, wd, dilation)
    length = n * h * wd - offsets[-1]
    out = np.zeros((c, len(offsets)), dtype)
    if length <= 0:  # an empty batch
        return out
    rows, grads = grid.reshape(c, -1), grad_grid.reshape(c, -1)
    for ch in range(c):
        row, g = rows[ch], grads[ch, :length]
        for t, offset in enumerate(offsets):
            out[ch, t] = np.dot(row[offset:offset + length], g)
    return out


NO_PADDING = ((0, 0), (0, 0))


def _padded(x: np.ndarray, padding) -> np.ndarray:
    """x with `padding` ((top, bottom), (left, right)) zeros around each image."""
    return x if padding == NO_PADDING else np.pad(x, ((0, 0), (0, 0), *padding))


def _padded_size(shape: tuple[int, ...], padding) -> tuple[int, int]:
    return shape[2] + sum(padding[0]), shape[3] + sum(padding[1])


def _grid_of_input(x: np.ndarray, padding) -> np.ndarray:
    """x padded, channel-major: (C, N, Hp, Wp)."""
    (top, _), (left, _) = padding
    return channel_major_grid(x, *_padded_size(x.shape, padding), top, left)


def _geometry(ctx) -> dict:
    """The op's stride, dilation and padding, as the ops of its gradient take them."""
    return dict(stride=ctx.attrs["stride"], dilation=ctx.attrs["dilation"], padding=ctx.attrs.get("padding", NO_PADDING))


class DepthwiseConv2d(Function):
    """x (N, C, H, W), w (C, 1, kh, kw) and an optional bias b (C,) -> (N, C, Ho, Wo), x
    padded by `padding` ((top, bottom), (left, right)) zeros first."""
    name = "depthwise_conv2d"

    @staticmethod
    def forward(ctx, x, w, b=None, *, stride, dilation, padding=NO_PADDING):
        ctx.save_for_backward(x, w)
        dtype = np.result_type(x, w)
        if stride != (1, 1):
            xp = _padded(x, padding)
            out = _correlate(xp, w, stride, dilation, *output_size(xp.shape, w.shape, stride, dilation))
            if b is not None:
                out += b.astype(dtype, copy=False)[:, None, None, None]
            return out.transpose(1, 0, 2, 3)
        grid = _grid_of_input(x, padding)
        ctx.remember(grid=grid)  # x padded and channel-major, as the weight gradient reads it
        ho, wo = output_size(grid.transpose(1, 0, 2, 3).shape, w.shape, stride, dilation)
        return _wide_correlate(grid, w, b, dilation, dtype)[:, :, :ho, :wo].transpose(1, 0, 2, 3)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        attrs = _geometry(ctx)
        grad_grid = None
        if isinstance(grad, np.ndarray) and attrs["stride"] == (1, 1):  # shared by all three gradients
            grad_grid = channel_major_grid(grad, *_padded_size(x.shape, attrs["padding"]))
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = DepthwiseConv2dInputGrad.call(grad, w, x_shape=tuple(x.shape), grad_grid=grad_grid, **attrs)
        if ctx.needs_input_grad[1]:
            dw = DepthwiseConv2dWeightGrad.call(x, grad, w_shape=tuple(w.shape), input_grid=ctx.values.get("grid"),
                                                grad_grid=grad_grid, **attrs)
        if len(ctx.parents) == 3:
            if ctx.needs_input_grad[2]:  # the gradient's sum per channel (the grid's zeros add nothing)
                if grad_grid is not None:
                    db = bias_grad(grad, grad_grid.reshape(len(grad_grid), -1))
                else:  # another stride, or a recorded backward (a sum of Tensors)
                    db = bias_grad(grad, grad_rows(grad) if isinstance(grad, np.ndarray) else None)
            return dx, dw, db
        return dx, dw


class DepthwiseConv2dInputGrad(Function):
    """d depthwise_conv2d / d x: each tap's weight times `grad`, added back into the
    slice of the padded input it was read from; the padding cropped off (`x_shape` is
    the input's shape before padding)."""
    name = "depthwise_conv2d_input_grad"

    @staticmethod
    def forward(ctx, grad, w, *, stride, dilation, x_shape, padding=NO_PADDING, grad_grid=None):
        ctx.save_for_backward(grad, w)
        n, channels, h, wd = x_shape
        hp, wp = _padded_size(x_shape, padding)
        (top, _), (left, _) = padding
        kh, kw = w.shape[2:]
        dtype = np.result_type(grad, w)
        if stride == (1, 1):
            if grad_grid is None:
                grad_grid = channel_major_grid(grad, hp, wp)
            out = _wide_scatter(grad_grid, w, dilation, dtype)
        else:
            out = channel_major((channels, n, hp, wp), grad, dtype, zeros=True)
            product = np.empty_like(grad[:, 0], dtype=out.dtype)
            taps = list(_taps(kh, kw, grad.shape[2], grad.shape[3], stride, dilation))
            for c in range(channels):
                gc, oc = grad[:, c], out[c]
                for a, b, rows, cols in taps:
                    np.multiply(gc, w[c, 0, a, b], out=product)
                    oc[:, rows, cols] += product
        return out[:, :, top:top + h, left:left + wd].transpose(1, 0, 2, 3)

    @staticmethod
    def backward(ctx, grad):
        g, w = ctx.saved_tensors
        attrs = _geometry(ctx)
        d_g = DepthwiseConv2d.call(grad, w, **attrs) if ctx.needs_input_grad[0] else None
        d_w = DepthwiseConv2dWeightGrad.call(grad, g, w_shape=tuple(w.shape), **attrs) if ctx.needs_input_grad[1] else None
        return d_g, d_w


class DepthwiseConv2dWeightGrad(Function):
    """d depthwise_conv2d / d w: for each tap, its slice of the padded input against
    `grad`, summed over the batch and the positions, per channel."""
    name = "depthwise_conv2d_weight_grad"

    @staticmethod
    def forward(ctx, x, grad, *, stride, dilation, w_shape, padding=NO_PADDING, input_grid=None, grad_grid=None):
        ctx.save_for_backward(x, grad)
        dtype = np.result_type(x, grad)
        if stride == (1, 1):
            input_grid = _grid_of_input(x, padding) if input_grid is None else input_grid
            if grad_grid is None:
                grad_grid = channel_major_grid(grad, *input_grid.shape[2:])
            return _wide_weight_grad(input_grid, grad_grid, *w_shape[2:], dilation, dtype).reshape(w_shape)
        x = _padded(x, padding)
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
        attrs = _geometry(ctx)
        d_x = DepthwiseConv2dInputGrad.call(g, grad, x_shape=tuple(x.shape), **attrs) if ctx.needs_input_grad[0] else None
        d_g = DepthwiseConv2d.call(x, grad, **attrs) if ctx.needs_input_grad[1] else None
        return d_x, d_g

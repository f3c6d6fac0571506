"""Standardizing over axes, one op: (x - mean) / sqrt(var + eps), the core of batch,
layer and group normalization (their scale and shift are ordinary ops after it); and
training-mode batch normalization with its scale and shift, one op (`BatchNorm`), which
also updates the running statistics from the batch's, computed once.

The derivative, with xhat the output and r = 1 / sqrt(var + eps), is
    dx = r * (g - mean(g) - xhat * mean(g * xhat))      (means over the normalized axes)
computed in place on arrays. In a recorded backward (create_graph) xhat and r are
recomputed from x with recorded ops, so second derivatives follow.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from .blas import add_outer


class Normalize(Function):
    name = "normalize"

    @staticmethod
    def forward(ctx, x, axes, eps):
        mean = x.mean(axis=axes, keepdims=True)
        centered = x - mean
        var = np.mean(np.square(centered), axis=axes, keepdims=True)
        var += x.dtype.type(eps)
        rstd = np.reciprocal(np.sqrt(var, out=var), out=var)
        centered *= rstd
        ctx.save_for_backward(x, centered, rstd)
        return centered

    @staticmethod
    def backward(ctx, grad):
        x, xhat, rstd = ctx.saved_tensors
        axes, eps = ctx.attrs["axes"], ctx.attrs["eps"]
        if not isinstance(x, np.ndarray):  # a recorded backward: xhat and r as functions of x
            return recorded_normalize_grad(x, grad, axes, eps)[0]
        projection = np.multiply(grad, xhat)
        along = projection.mean(axis=axes, keepdims=True)
        np.multiply(xhat, along, out=projection)
        out = np.subtract(grad, grad.mean(axis=axes, keepdims=True))
        out -= projection
        out *= rstd
        return out


def recorded_normalize_grad(x, grad, axes, eps):
    """(dx, xhat) for standardizing tensor `x` over `axes`, given d out / d xhat = `grad`,
    with recorded ops (a create_graph backward): xhat and r recomputed from x."""
    centered = x - x.mean(axis=axes, keepdims=True)
    rstd = ((centered * centered).mean(axis=axes, keepdims=True) + float(eps)).rsqrt()
    xhat = centered * rstd
    return rstd * (grad - grad.mean(axis=axes, keepdims=True) - xhat * (grad * xhat).mean(axis=axes, keepdims=True)), xhat


def channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum(a * b) per channel (axis 1) of two (N, C, ...) arrays, without the product array."""
    axes = "nc" + "hwdxyz"[:a.ndim - 2]
    return np.einsum(f"{axes},{axes}->c", a, b)


class BatchNorm(Function):
    """Training-mode batch normalization of x (N, C, ...) over every axis but the channels',
    then weight * xhat + bias per channel. `running` (running mean, running variance) are
    updated in place from the batch's mean and unbiased variance with `momentum`, as
    PyTorch's kernel does: statistics only, no gradient. One pass fewer for the mean and
    variance than standardizing and scaling apart, and none for the running statistics."""
    name = "batch_norm"

    @staticmethod
    def forward(ctx, x, weight, bias, *, axes, eps, momentum, running):
        shape = [1] * x.ndim
        shape[1] = x.shape[1]
        mean = x.mean(axis=axes, keepdims=True)
        centered = np.subtract(x, mean)
        count = x.size // x.shape[1]
        var = channel_dot(centered, centered).reshape(shape) / x.dtype.type(count)
        if running is not None:
            m = x.dtype.type(momentum)
            for stat, batch in zip(running, (mean, var * x.dtype.type(count / max(count - 1, 1)))):
                stat *= 1 - m
                stat += m * batch.reshape(stat.shape)
        rstd = np.reciprocal(np.sqrt(var + x.dtype.type(eps)))
        ctx.save_for_backward(x, weight, centered)
        ctx.remember(rstd=rstd)
        out = centered * (weight.reshape(shape) * rstd)
        out += bias.reshape(shape)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight, centered = ctx.saved_tensors
        axes, eps = ctx.attrs["axes"], ctx.attrs["eps"]
        shape = [1] * x.ndim
        shape[1] = x.shape[1]
        if not isinstance(grad, np.ndarray):  # a recorded backward
            dx, xhat = recorded_normalize_grad(x, grad * weight.reshape(shape), axes, eps)
            return dx, (grad * xhat).sum(axis=axes), grad.sum(axis=axes)
        rstd = ctx.values["rstd"]
        count = grad.dtype.type(grad.size // grad.shape[1])
        sum_g = grad.sum(axis=axes)
        sum_gc = channel_dot(grad, centered)  # sum of grad * centered, per channel
        dx = None
        if ctx.needs_input_grad[0]:
            scale = weight.reshape(shape) * rstd  # dx = scale * (g - mean(g) - xhat * mean(g * xhat))
            dx = np.multiply(grad, scale)
            dx -= (scale * (sum_g.reshape(shape) / count))
            dx -= centered * (scale * rstd * rstd * (sum_gc.reshape(shape) / count))
        d_weight = (sum_gc * rstd.reshape(-1)).astype(grad.dtype, copy=False) if ctx.needs_input_grad[1] else None
        return dx, d_weight, sum_g.astype(grad.dtype, copy=False) if ctx.needs_input_grad[2] else None


class LayerNorm(Function):
    """Layer normalization with its scale and shift, one op: each sample standardized over
    its last `weight.ndim` axes, then weight * xhat + bias. The samples are the rows of
    a (samples, features) matrix, so the statistics and the derivative's per-sample sums
    are matrix-vector products and row dots, and every per-row or per-column term is an
    outer product added by the BLAS (`add_outer`): numpy's broadcasting loops call their
    inner loop once per row, and cost 2-3x a plain elementwise pass here. With c = x -
    mean and r = 1 / sqrt(var + eps) per row,
        out = c * outer(r, weight) + bias
        dx  = g * outer(r, weight) - r * mean(g weight) - c * r^3 mean(g weight c)
    (the means over each row's features), the weight's gradient r @ (g * c) and the
    bias's the column sums of g."""
    name = "layer_norm"

    @staticmethod
    def forward(ctx, x, weight, bias, *, eps):
        x = x if x.dtype.kind == "f" else x.astype(weight.dtype)
        kind, features = x.dtype.type, weight.size
        centered = np.array(x.reshape(-1, features), order="C")  # a copy: x - mean below, in place
        samples = centered.shape[0]
        mean = row_means(centered)[:, 0]
        add_outer(centered, mean, np.ones(features, x.dtype), alpha=-1.0)
        var = row_dots(centered, centered) / kind(features)
        rstd = np.reciprocal(np.sqrt(var + kind(eps)))
        out = add_outer(np.zeros_like(centered), rstd, weight.reshape(-1))
        out *= centered
        add_outer(out, np.ones(samples, x.dtype), bias.reshape(-1))
        ctx.save_for_backward(x, weight)
        ctx.remember(centered=centered, rstd=rstd)
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        eps, wanted = ctx.attrs["eps"], ctx.needs_input_grad
        if not isinstance(grad, np.ndarray):  # a recorded backward: xhat and r as functions of x
            axes = tuple(range(x.ndim - weight.ndim, x.ndim))
            batch = tuple(range(x.ndim - weight.ndim))
            dx, xhat = recorded_normalize_grad(x, grad * weight, axes, eps)
            return dx, (grad * xhat).sum(axis=batch), grad.sum(axis=batch)
        centered, rstd = ctx.values["centered"], ctx.values["rstd"]
        kind, w = grad.dtype.type, weight.reshape(-1)
        g = np.ascontiguousarray(grad.reshape(centered.shape))
        d_bias = (np.ones(g.shape[0], g.dtype) @ g).reshape(weight.shape) if wanted[2] else None
        if not (wanted[0] or wanted[1]):
            return None, None, d_bias
        gc = np.multiply(g, centered)  # for the weight's gradient and mean(g weight c)
        d_weight = (rstd @ gc).reshape(weight.shape) if wanted[1] else None
        dx = None
        if wanted[0]:
            count = kind(weight.size)
            mean_gw = (g @ w) / count  # mean(g weight) per row
            mean_gwc = (gc @ w) / count  # mean(g weight c) per row
            dx = add_outer(np.zeros_like(g), rstd, w)
            dx *= g
            dx -= np.multiply(centered, (rstd * rstd * rstd * mean_gwc)[:, None], out=gc)  # gc's memory as scratch
            add_outer(dx, rstd * mean_gw, np.ones(g.shape[1], g.dtype), alpha=-1.0)
            dx = dx.reshape(x.shape)
        return dx, d_weight, d_bias


def row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum(a * b) along each row of two 2-D arrays, without the product array: np.vecdot
    where numpy has it (2x faster than einsum here), else einsum."""
    vecdot = getattr(np, "vecdot", None)
    return vecdot(a, b) if vecdot is not None else np.einsum("ij,ij->i", a, b)


def row_means(a: np.ndarray) -> np.ndarray:
    """The mean of each row of a 2-D array, as a column: a matrix-vector product
    (4x faster here than numpy's mean along the rows)."""
    return (a @ np.full(a.shape[1], 1 / a.shape[1], dtype=a.dtype))[:, None]

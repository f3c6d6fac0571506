"""Standardizing over axes, one op: (x - mean) / sqrt(var + eps), the core of batch,
layer and group normalization (their scale and shift are ordinary ops after it).

The derivative, with xhat the output and r = 1 / sqrt(var + eps), is
    dx = r * (g - mean(g) - xhat * mean(g * xhat))      (means over the normalized axes)
computed in place on arrays. In a recorded backward (create_graph) xhat and r are
recomputed from x with recorded ops, so second derivatives follow.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function


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
            centered = x - x.mean(axis=axes, keepdims=True)
            rstd = ((centered * centered).mean(axis=axes, keepdims=True) + float(eps)).rsqrt()
            xhat = centered * rstd
            return rstd * (grad - grad.mean(axis=axes, keepdims=True)
                           - xhat * (grad * xhat).mean(axis=axes, keepdims=True))
        projection = np.multiply(grad, xhat)
        along = projection.mean(axis=axes, keepdims=True)
        np.multiply(xhat, along, out=projection)
        out = np.subtract(grad, grad.mean(axis=axes, keepdims=True))
        out -= projection
        out *= rstd
        return out

"""Reductions over an axis (int), several axes (tuple) or everything (None)."""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..errors import ShapeError
from .elementwise import Exp
from .shape import BroadcastTo, Flip


def _expand_grad(grad: np.ndarray, shape: tuple[int, ...], axis, keepdims: bool) -> np.ndarray:
    """Reshape a reduced gradient so it broadcasts against the input's shape."""
    if not keepdims:
        axes = range(len(shape)) if axis is None else ((axis,) if isinstance(axis, int) else axis)
        kept = list(shape)
        for a in axes:
            kept[a] = 1
        grad = grad.reshape(kept)
    return grad


class Sum(Function):
    name = "sum"

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.remember(shape=x.shape)
        return np.asarray(x.sum(axis=axis, keepdims=keepdims))

    @staticmethod
    def backward(ctx, grad):
        g = _expand_grad(grad, ctx.values["shape"], ctx.attrs["axis"], ctx.attrs["keepdims"])
        return BroadcastTo.call(g, shape=ctx.values["shape"])


class Mean(Function):
    name = "mean"

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.remember(shape=x.shape)
        out = np.asarray(x.mean(axis=axis, keepdims=keepdims))
        ctx.remember(count=x.size // max(out.size, 1) if x.size else 0)
        return out

    @staticmethod
    def backward(ctx, grad):
        g = _expand_grad(grad, ctx.values["shape"], ctx.attrs["axis"], ctx.attrs["keepdims"])
        return BroadcastTo.call(g / grad.dtype.type(ctx.values["count"]), shape=ctx.values["shape"])


class Max(Function):
    """Maximum over axes; on ties the gradient is split evenly among the maxima
    (a NaN maximum counts as a tie among the NaNs)."""
    name = "max"

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        try:
            out = np.asarray(x.max(axis=axis, keepdims=keepdims))
        except ValueError:  # numpy: zero-size array to reduction operation maximum
            raise ShapeError(f"max: cannot reduce over an empty axis (tensor shape {x.shape}, axis {axis})") from None
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = (np.asarray(v) for v in ctx.saved_tensors)  # where the maxima are: constants
        axis, keepdims = ctx.attrs["axis"], ctx.attrs["keepdims"]
        top = _expand_grad(out, x.shape, axis, keepdims)
        hit = x == top
        if out.dtype.kind == "f" and np.isnan(out).any():
            hit |= np.isnan(x) & np.isnan(top)
        mask = hit.astype(grad.dtype)
        mask /= mask.sum(axis=axis, keepdims=True)
        return mask * _expand_grad(grad, x.shape, axis, keepdims)


class LogSumExp(Function):
    """log(sum(exp(x))), computed with the max subtracted so it never overflows.
    A slice of only -inf gives -inf and sends no gradient back."""
    name = "logsumexp"

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        m = x.max(axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0).astype(x.dtype, copy=False)
        e = np.exp(x - m)
        s = e.sum(axis=axis, keepdims=True)
        with np.errstate(divide="ignore"):  # log(0) = -inf, as in PyTorch
            out = np.log(s) + m
        ctx.save_for_backward(x)
        ctx.remember(shift=m)  # constant: softmax does not depend on it
        return out if keepdims else _squeeze(out, axis)

    @staticmethod
    def backward(ctx, grad):
        """grad * softmax(x); a slice of only -inf has sum 0 and gets no gradient."""
        (x,) = ctx.saved_tensors
        axis = ctx.attrs["axis"]
        e = Exp.call(x - ctx.values["shift"])
        s = e.sum(axis=axis, keepdims=True)
        empty = (np.asarray(s) == 0).astype(ctx.values["shift"].dtype)
        return e / (s + empty) * _expand_grad(grad, x.shape, axis, ctx.attrs["keepdims"])


def _squeeze(x: np.ndarray, axis) -> np.ndarray:
    return np.asarray(x.reshape(())) if axis is None else np.squeeze(x, axis=axis)


class Cumsum(Function):
    """Running sums along `axis`; the gradient is the running sum from the other end."""
    name = "cumsum"

    @staticmethod
    def forward(ctx, x, axis):
        return np.cumsum(x, axis=axis) if x.ndim else x.copy()

    @staticmethod
    def backward(ctx, grad):
        axis = ctx.attrs["axis"]
        if grad.ndim == 0:
            return grad
        return Flip.call(Cumsum.call(Flip.call(grad, axes=(axis,)), axis=axis), axes=(axis,))

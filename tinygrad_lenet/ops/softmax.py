"""Softmax and log-softmax. Every exponential is taken of x - max(x), so logits of
any size stay finite."""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from .elementwise import Exp


def stable_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """log(softmax(x)) along `axis` with the maximum subtracted first (no overflow)."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    name = "log_softmax"

    @staticmethod
    def forward(ctx, x, axis):
        out = stable_log_softmax(x, axis)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad - Exp.call(out) * grad.sum(axis=ctx.attrs["axis"], keepdims=True)


class Softmax(Function):
    name = "softmax"

    @staticmethod
    def forward(ctx, x, axis):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return out * (grad - (grad * out).sum(axis=ctx.attrs["axis"], keepdims=True))

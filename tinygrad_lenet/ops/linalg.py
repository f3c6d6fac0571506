"""Matrix multiplication with numpy's `@` semantics (1-D, 2-D and batched)."""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..errors import ShapeError
from .shape import Permute


class MatMul(Function):
    name = "matmul"

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(f"matmul: scalars are not allowed, got shapes {a.shape} and {b.shape}")
        ka = a.shape[-1]
        kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if ka != kb:
            raise ShapeError(f"matmul: shapes {a.shape} and {b.shape} do not align ({ka} != {kb})")
        try:
            out = np.matmul(a, b)
        except ValueError:
            raise ShapeError(f"matmul: batch dimensions of {a.shape} and {b.shape} cannot be broadcast") from None
        ctx.save_for_backward(a, b)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        # Treat 1-D operands as matrices (a row for a, a column for b), as numpy does.
        a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a
        b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b
        g = grad
        if b.ndim == 1:  # first: for vector @ vector, grad is a scalar
            g = g.reshape(g.shape + (1,))
        if a.ndim == 1:
            g = g.reshape(g.shape[:-1] + (1,) + g.shape[-1:])
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = _sum_to(g @ _swap_last(b2), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = _sum_to(_swap_last(a2) @ g, b2.shape).reshape(b.shape)
        return ga, gb


def _swap_last(x):
    """x with its last two axes swapped."""
    return Permute.call(x, axes=tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2))


def _sum_to(g, shape: tuple[int, ...]):
    """Sum the broadcast batch dimensions of a matmul gradient away."""
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape[:-2]) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


class Linear(Function):
    """x @ weight.T + bias, weight (out, in) as in PyTorch, as one op: the layer's
    transpose, product and bias add recorded once instead of as three ops, which
    saves their bookkeeping in every step of a small network. The weight gradient
    is computed as gᵀ @ x, in the weight's memory order, so the optimizer's
    elementwise updates see one layout."""
    name = "linear"

    @staticmethod
    def forward(ctx, x, w, b=None):
        if w.ndim != 2 or x.ndim == 0 or x.shape[-1] != w.shape[1]:
            raise ShapeError(f"linear: input of shape {x.shape} does not fit weight {w.shape} "
                             "(expected weight (out_features, in_features) with in_features = the input's last axis)")
        if b is not None and b.shape != (w.shape[0],):
            raise ShapeError(f"linear: bias shape {b.shape} does not match {w.shape[0]} output features")
        out = np.matmul(x, w.T)
        if b is not None:
            out += b
        ctx.save_for_backward(x, w)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        out_features, in_features = w.shape
        g2 = grad.reshape(-1, out_features)
        gx = grad @ w if ctx.needs_input_grad[0] else None
        gw = _swap_last(g2) @ x.reshape(-1, in_features) if ctx.needs_input_grad[1] else None  # C-ordered, as w
        if len(ctx.parents) == 3:
            return gx, gw, g2.sum(axis=0) if ctx.needs_input_grad[2] else None
        return gx, gw


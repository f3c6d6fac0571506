"""Dropout: a random mask drawn in forward (from the generator it is given, so runs
repeat with the same seed) and applied again in backward."""

from __future__ import annotations

import numpy as np

from ..autograd import Function


class Dropout(Function):
    """Zero each element with probability p and scale the rest by 1/(1-p)."""
    name = "dropout"

    @staticmethod
    def forward(ctx, x, p, generator):
        keep = generator.random(x.shape, dtype=np.float32) >= p
        mask = keep * x.dtype.type(1.0 / (1.0 - p)) if p < 1 else np.zeros_like(x)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask

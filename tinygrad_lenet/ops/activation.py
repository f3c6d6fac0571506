"""Smooth activations as one op each (SiLU, exact GELU): one forward pass and one
backward rule instead of a chain of recorded ops, each of which would keep its own
arrays and run its own backward.

Each saves what its derivative needs from the forward pass (the sigmoid, the normal
CDF). In a backward pass that is itself recorded (create_graph) the rule recomputes
them from x with recorded ops instead, so their own derivatives are followed and
second derivatives come out right.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from .elementwise import Erf, Exp, Sigmoid
from .special import erf

_INV_SQRT2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


class Silu(Function):
    """x * sigmoid(x); d/dx = s * (1 + x * (1 - s)) with s = sigmoid(x)."""
    name = "silu"

    @staticmethod
    def forward(ctx, x):
        if x.dtype.kind == "f":  # 1 / (1 + exp(-x)) in place; exp overflows to inf where s is 0
            s = np.negative(x, out=np.empty_like(x))  # an array even for 0-d x, so every step is in place
            with np.errstate(over="ignore"):
                np.exp(s, out=s)
            s += x.dtype.type(1)
            np.reciprocal(s, out=s)
        else:
            s = Sigmoid.call(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_tensors
        one = grad.dtype.type(1)
        if not isinstance(x, np.ndarray):  # a recorded backward: s as a function of x
            s = Sigmoid.call(x)
            return grad * s * (x * (one - s) + one)
        factor = np.subtract(one, s, out=np.empty(np.shape(s), grad.dtype))  # s * (1 + x * (1 - s)) * grad, in place
        factor *= x
        factor += one
        factor *= s
        factor *= grad
        return factor


class Gelu(Function):
    """x * Phi(x), Phi the standard normal CDF (exact, through erf); d/dx = Phi(x) + x * phi(x)."""
    name = "gelu"

    @staticmethod
    def forward(ctx, x):
        x = x if x.dtype.kind == "f" else x.astype(np.float64)  # integers: float64, as other float ops give
        half = x.dtype.type(0.5)
        cdf = erf(x * x.dtype.type(_INV_SQRT2))
        cdf += x.dtype.type(1)
        cdf *= half
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def backward(ctx, grad):
        x, cdf = ctx.saved_tensors
        kind = grad.dtype.type
        if not isinstance(x, np.ndarray):  # a recorded backward: Phi as a function of x
            cdf = (Erf.call(x * kind(_INV_SQRT2)) + kind(1)) * kind(0.5)
        if not isinstance(x, np.ndarray):
            pdf = Exp.call(x * x * kind(-0.5)) * kind(_INV_SQRT_2PI)
            return grad * (cdf + x * pdf)
        out = np.multiply(x, x, out=np.empty(np.shape(x), grad.dtype))  # (Phi + x * phi) * grad, in place
        out *= kind(-0.5)
        np.exp(out, out=out)
        out *= kind(_INV_SQRT_2PI)
        out *= x
        out += cdf
        out *= grad
        return out

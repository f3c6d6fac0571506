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
from .elementwise import Erf, Exp, Sigmoid, Tanh
from .special import normal_cdf, normal_cdf_and_gelu_slope

_INV_SQRT2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_TANH_C, _TANH_K = math.sqrt(2 / math.pi), 0.044715  # PyTorch's tanh approximation's constants


class Silu(Function):
    """x * sigmoid(x) = x / d with d = 1 + exp(-x); d/dx = s + y (1 - s) = (1 - y) / d + y
    with s = sigmoid(x) = 1 / d and y the output: four passes each way, in place."""
    name = "silu"

    @staticmethod
    def forward(ctx, x):
        x = x if x.dtype.kind == "f" else x.astype(np.float64)  # integers: float64, as other float ops give
        d = np.negative(x, out=np.empty_like(x))  # an array even for 0-d x, so every step is in place
        with np.errstate(over="ignore"):  # exp overflows to inf where the output is -0
            np.exp(d, out=d)
        d += x.dtype.type(1)
        with np.errstate(invalid="ignore"):  # -inf / inf: NaN, as PyTorch's -inf * 0
            out = np.divide(x, d)
        ctx.save_for_backward(x, out)
        ctx.remember(denominator=d)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        one = grad.dtype.type(1)
        if not isinstance(x, np.ndarray):  # a recorded backward: s as a function of x
            s = Sigmoid.call(x)
            return grad * s * (x * (one - s) + one)
        factor = np.subtract(one, out, out=np.empty_like(out, dtype=grad.dtype))  # ((1 - y) / d + y) * grad
        factor /= ctx.values["denominator"]
        factor += out
        factor *= grad
        return factor


class Gelu(Function):
    """x * Phi(x), Phi the standard normal CDF: exact (approximate="none";
    `normal_cdf_and_gelu_slope`, which also gives the derivative Phi + x phi for the
    backward, from the same pass), or PyTorch's tanh formula (approximate="tanh"),
    Phi ~ (1 + tanh(c (x + k x^3))) / 2."""
    name = "gelu"

    @staticmethod
    def forward(ctx, x, approximate):
        x = x if x.dtype.kind == "f" else x.astype(np.float64)  # integers: float64, as other float ops give
        kind = x.dtype.type
        if approximate == "tanh":
            cdf = np.multiply(x, x, out=np.empty_like(x))  # x's memory layout; an array even for 0-d x
            cdf *= kind(_TANH_K)
            cdf += kind(1)
            cdf *= x
            cdf *= kind(_TANH_C)
            np.tanh(cdf, out=cdf)  # t; Phi = (1 + t) / 2 below
            ctx.save_for_backward(x, cdf)  # tanh's value, before the (1 + .) / 2
            return x * ((cdf + kind(1)) * kind(0.5))
        if ctx.needs_input_grad[0]:  # the derivative Phi + x phi from the same pass, for the backward
            cdf, slope = normal_cdf_and_gelu_slope(x)
            ctx.remember(slope=slope)
        else:
            cdf = normal_cdf(x)
        ctx.save_for_backward(x)
        with np.errstate(invalid="ignore"):  # -inf * 0: NaN, as PyTorch's
            return np.multiply(x, cdf, out=cdf)

    @staticmethod
    def backward(ctx, grad):
        x, *inner = ctx.saved_tensors  # the tanh formula's t beside x
        kind, tanh = grad.dtype.type, ctx.attrs["approximate"] == "tanh"
        if not isinstance(x, np.ndarray):  # a recorded backward: the inner value as a function of x
            if tanh:
                t = Tanh.call((x + x * x * x * kind(_TANH_K)) * kind(_TANH_C))
                slope = (kind(1) - t * t) * (x * x * kind(3 * _TANH_K) + kind(1)) * kind(_TANH_C)
                return grad * ((t + kind(1)) * kind(0.5) + x * slope * kind(0.5))
            cdf = (Erf.call(x * kind(_INV_SQRT2)) + kind(1)) * kind(0.5)
            return grad * (cdf + x * Exp.call(x * x * kind(-0.5)) * kind(_INV_SQRT_2PI))
        if tanh:  # (1 + t) / 2 + x (1 - t^2) c (1 + 3 k x^2) / 2, in place
            out = np.multiply(x, x, out=np.empty_like(x, dtype=grad.dtype))
            out *= kind(3 * _TANH_K)
            out += kind(1)
            out *= kind(0.5 * _TANH_C)
            out *= x
            t = inner[0]
            out *= kind(1) - t * t
            out += (t + kind(1)) * kind(0.5)
        else:  # Phi + x phi, computed by the forward pass
            return np.multiply(grad, ctx.values["slope"], dtype=grad.dtype)
        out *= grad
        return out

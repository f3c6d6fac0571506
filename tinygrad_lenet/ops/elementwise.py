"""Elementwise ops. Inputs broadcast like numpy; the engine sums each gradient
back to its input's shape, so backward here works on the broadcast shape. Each
rule is numpy operators on arrays, or the same operators on Tensors in a
create_graph backward (see autograd)."""

from __future__ import annotations

import numpy as np

from ..autograd import Function


class Add(Function):
    name = "add"

    @staticmethod
    def forward(ctx, a, b):
        return _broadcast_checked("add", np.add, a, b)

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    name = "sub"

    @staticmethod
    def forward(ctx, a, b):
        return _broadcast_checked("sub", np.subtract, a, b)

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class Mul(Function):
    name = "mul"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _broadcast_checked("mul", np.multiply, a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return (grad * b if ctx.needs_input_grad[0] else None,
                grad * a if ctx.needs_input_grad[1] else None)


class Div(Function):
    name = "div"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _broadcast_checked("div", np.divide, a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga = grad / b if ctx.needs_input_grad[0] else None
        gb = -grad * a / (b * b) if ctx.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    """x ** exponent for a scalar exponent; x ** 0 has gradient 0 everywhere (also at x = 0)."""
    name = "pow"

    @staticmethod
    def forward(ctx, x, exponent):
        ctx.save_for_backward(x)
        return np.power(x, x.dtype.type(exponent))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        e = ctx.attrs["exponent"]
        if e == 0:
            return grad * 0
        return grad * (x ** (e - 1) * x.dtype.type(e))


class Neg(Function):
    name = "neg"

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Exp(Function):
    name = "exp"

    @staticmethod
    def forward(ctx, x):
        out = np.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    name = "log"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class Sqrt(Function):
    name = "sqrt"

    @staticmethod
    def forward(ctx, x):
        out = np.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (2 * out)


class Relu(Function):
    name = "relu"

    @staticmethod
    def forward(ctx, x):
        out = np.maximum(x, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (np.asarray(out) > 0)


class Tanh(Function):
    name = "tanh"

    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


class Sigmoid(Function):
    name = "sigmoid"

    @staticmethod
    def forward(ctx, x):
        # exp of a non-positive number only, so large |x| never overflows
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))  # e's float type: x's, or float64 for integers
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


class Maximum(Function):
    """Elementwise max; on ties the gradient is split evenly between both inputs."""
    name = "maximum"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _broadcast_checked("maximum", np.maximum, a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = np.asarray(ctx.saved_tensors[0]), np.asarray(ctx.saved_tensors[1])  # where each wins: constants
        wa = (a > b) + 0.5 * (a == b)
        return grad * wa.astype(grad.dtype), grad * (1 - wa).astype(grad.dtype)


class Minimum(Function):
    """Elementwise min; on ties the gradient is split evenly between both inputs."""
    name = "minimum"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _broadcast_checked("minimum", np.minimum, a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = np.asarray(ctx.saved_tensors[0]), np.asarray(ctx.saved_tensors[1])  # where each wins: constants
        wa = (a < b) + 0.5 * (a == b)
        return grad * wa.astype(grad.dtype), grad * (1 - wa).astype(grad.dtype)


class Cast(Function):
    """Change the dtype; the gradient is cast back to the input's dtype."""
    name = "cast"

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.in_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.in_dtype)


def _broadcast_checked(op: str, fn, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape != b.shape:
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None
    return fn(a, b)

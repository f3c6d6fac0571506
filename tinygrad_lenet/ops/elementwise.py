"""Elementwise ops. Inputs broadcast like numpy; the engine sums each gradient
back to its input's shape, so backward here works on the broadcast shape. Each
rule is numpy operators on arrays, or the same operators on Tensors in a
create_graph backward (see autograd)."""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from ..errors import ShapeError
from .layout import relu_array
from .special import erf


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
    """Its backward masks by x > 0 (NaN passes not)."""
    name = "relu"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return relu_array(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        positive = np.asarray(x) > 0
        if not isinstance(grad, np.ndarray):
            return grad * positive
        factor = positive.astype(grad.dtype)  # the mask as numbers, then one product in place:
        factor *= grad  # numpy's float-by-bool product is not vectorized (2x slower here)
        return factor


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
        ctx.remember(in_dtype=x.dtype)
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.values["in_dtype"])


class Abs(Function):
    """|x|; the gradient at 0 is 0, as in PyTorch."""
    name = "abs"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * np.sign(np.asarray(x)).astype(grad.dtype)


class Sin(Function):
    name = "sin"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * Cos.call(x)


class Cos(Function):
    name = "cos"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cos(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return -grad * Sin.call(x)


class Log1p(Function):
    """log(1 + x), accurate for small x."""
    name = "log1p"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log1p(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (x + 1)


class Expm1(Function):
    """exp(x) - 1, accurate for small x."""
    name = "expm1"

    @staticmethod
    def forward(ctx, x):
        out = np.expm1(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (out + 1)


class Softplus(Function):
    """log(1 + exp(beta x)) / beta, linear above `threshold` / beta as in PyTorch."""
    name = "softplus"

    @staticmethod
    def forward(ctx, x, beta, threshold):
        ctx.save_for_backward(x)
        bx = x * x.dtype.type(beta)
        return np.where(bx > threshold, x, np.logaddexp(0, bx) / x.dtype.type(beta))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        beta, threshold = ctx.attrs["beta"], ctx.attrs["threshold"]
        linear = (np.asarray(x) * beta > threshold).astype(grad.dtype)
        return grad * (Sigmoid.call(x * grad.dtype.type(beta)) * (1 - linear) + linear)


class LeakyRelu(Function):
    """x for x > 0, else negative_slope * x."""
    name = "leaky_relu"

    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.save_for_backward(x)
        slope = x.dtype.type(negative_slope) if x.dtype.kind == "f" else negative_slope
        if 0 <= negative_slope <= 1 and isinstance(x, np.ndarray):  # the larger of x and slope * x, no mask
            out = np.multiply(x, slope, out=np.empty_like(x, dtype=np.result_type(x, slope)))
            return np.maximum(x, out, out=out)
        return np.where(x > 0, x, x * slope)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        positive = np.asarray(x) > 0
        slope = grad.dtype.type(ctx.attrs["negative_slope"])
        factor = positive.astype(grad.dtype)  # 1 or slope, by arithmetic: np.where with scalars is many times slower
        factor *= grad.dtype.type(1) - slope
        factor += slope
        if not isinstance(grad, np.ndarray):
            return grad * factor
        factor *= grad  # in place: a product into a new array costs 2.5x as much here
        return factor


class Elu(Function):
    """x for x > 0, else alpha * (exp(x) - 1)."""
    name = "elu"

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0)) * x.dtype.type(alpha))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        positive = (np.asarray(x) > 0).astype(grad.dtype)
        negative_part = Exp.call(x * (1 - positive)) * grad.dtype.type(ctx.attrs["alpha"])  # exp(min(x, 0))
        return grad * (positive + (1 - positive) * negative_part)


class Where(Function):
    """cond ? a : b elementwise (cond a bool array, broadcast with a and b)."""
    name = "where"

    @staticmethod
    def forward(ctx, cond, a, b):
        if cond.dtype != np.bool_:
            raise TypeError(f"where: the condition must be a bool tensor, got dtype {cond.dtype}")
        ctx.save_for_backward(cond)
        try:
            return np.where(cond, a, b)
        except ValueError:
            raise ShapeError(f"where: shapes {cond.shape}, {a.shape} and {b.shape} cannot be broadcast "
                             "together") from None

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        mask = np.asarray(cond).astype(grad.dtype)
        return None, grad * mask, grad * (1 - mask)


class Clip(Function):
    """x limited to [low, high] (either may be None); the gradient is 1 inside the
    closed interval and 0 outside, as PyTorch's clamp."""
    name = "clip"

    @staticmethod
    def forward(ctx, x, low, high):
        ctx.save_for_backward(x)
        return np.clip(x, low, high)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        v = np.asarray(x)
        low, high = ctx.attrs["low"], ctx.attrs["high"]
        inside = np.ones(v.shape, dtype=bool)
        if low is not None:
            inside &= v >= low
        if high is not None:
            inside &= v <= high
        return grad * inside.astype(grad.dtype)


class PowTensor(Function):
    """a ** b elementwise for tensors a > 0 (where b is not a whole number) and b."""
    name = "pow_tensor"

    @staticmethod
    def forward(ctx, a, b):
        out = _broadcast_checked("pow_tensor", np.power, a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        """PyTorch's values at the edges: no gradient to `a` where a == b == 0, and none to
        `b` where a == 0 and b >= 0 (there b * a^(b-1) and a^b * log a are 0 * inf)."""
        a, b, out = ctx.saved_tensors
        base, exponent = np.asarray(a), np.asarray(b)
        zero = np.zeros((), dtype=grad.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):  # the edges, replaced by 0 below
            ga = gb = None
            if ctx.needs_input_grad[0]:
                ga = grad * b * PowTensor.call(a, b - 1)
                ga = Where.call(np.broadcast_to(~((base == 0) & (exponent == 0)), ga.shape), ga, zero)
            if ctx.needs_input_grad[1]:
                gb = grad * out * Log.call(a)
                gb = Where.call(np.broadcast_to(~((base == 0) & (exponent >= 0)), gb.shape), gb, zero)
        return ga, gb


_ERF = erf  # ops.special: float32 by a numpy formula, float64 by scipy (numpy has no erf)


class Erf(Function):
    """The error function (`ops.special.erf`: exact to the dtype's rounding)."""
    name = "erf"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        out = np.asarray(_ERF(x))
        return out if out.dtype == x.dtype else out.astype(x.dtype if x.dtype.kind == "f" else np.float64)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * Exp.call(-(x * x)) * grad.dtype.type(2.0 / math.sqrt(math.pi))


def _broadcast_checked(op: str, fn, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape != b.shape:
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ShapeError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None
    return fn(a, b)

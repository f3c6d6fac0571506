"""Neural-net ops as functions (the same ops as the Tensor methods)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import ops
from .random import default_generator
from .tensor import Tensor, _norm_axis


def _pair(value: Any, op: str, what: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise ValueError(f"{op}: {what} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def _same_float_dtype(op: str, *tensors: Tensor | None) -> None:
    dtypes = {t.dtype for t in tensors if t is not None}
    if len(dtypes) > 1:
        raise TypeError(f"{op}: dtype mismatch {sorted(map(str, dtypes))}; convert with .float() or .double()")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0) -> Tensor:
    """2-D cross-correlation of x (N, C, H, W) with weight (out, C, kh, kw)."""
    _same_float_dtype("conv2d", x, weight, bias)
    attrs = dict(stride=_pair(stride, "conv2d", "stride"), padding=_pair(padding, "conv2d", "padding"))
    if bias is None:
        return ops.Conv2d.apply(x, weight, **attrs)
    return ops.Conv2d.apply(x, weight, bias, **attrs)


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None) -> Tensor:
    k = _pair(kernel_size, "max_pool2d", "kernel_size")
    s = k if stride is None else _pair(stride, "max_pool2d", "stride")
    return ops.MaxPool2d.apply(x, kernel_size=k, stride=s)


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None) -> Tensor:
    k = _pair(kernel_size, "avg_pool2d", "kernel_size")
    s = k if stride is None else _pair(stride, "avg_pool2d", "stride")
    return ops.AvgPool2d.apply(x, kernel_size=k, stride=s)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, with weight of shape (out, in) as in PyTorch."""
    out = x @ weight.transpose()
    return out if bias is None else out + bias


def relu(x: Tensor) -> Tensor:
    return x.relu()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.log_softmax(axis)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.softmax(axis)


def _targets(targets: Any) -> Tensor:
    return targets if isinstance(targets, Tensor) else Tensor(np.asarray(targets))


def cross_entropy(logits: Tensor, targets: Any) -> Tensor:
    """Mean cross-entropy of (N, C) logits against integer class targets (N,)."""
    return ops.CrossEntropy.apply(logits, _targets(targets))


def nll_loss(log_probs: Tensor, targets: Any) -> Tensor:
    """Mean negative log-likelihood of (N, C) log-probabilities at integer targets (N,)."""
    return ops.NLLLoss.apply(log_probs, _targets(targets))


def mse_loss(input: Tensor, target: Any) -> Tensor:
    """Mean squared error; input and target must have the same shape."""
    return ops.MSELoss.apply(input, input._operand(target, "mse_loss"))


def dropout(x: Tensor, p: float = 0.5, training: bool = True, generator: np.random.Generator | None = None) -> Tensor:
    """In training, zero elements with probability p and scale the rest by 1/(1-p);
    otherwise return x unchanged."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if x.dtype.kind != "f":
        raise TypeError(f"dropout: needs a floating-point tensor, got dtype {x.dtype} (shape {x.shape})")
    return ops.Dropout.apply(x, p=float(p), generator=generator or default_generator())


def concatenate(tensors: list[Tensor], axis: int = 0) -> Tensor:
    tensors = list(tensors)
    _same_float_dtype("concatenate", *tensors)
    nd = tensors[0].ndim if tensors else 1
    return ops.Concatenate.apply(*tensors, axis=_norm_axis(axis, nd, "concatenate"))


def stack(tensors: list[Tensor], axis: int = 0) -> Tensor:
    tensors = list(tensors)
    _same_float_dtype("stack", *tensors)
    nd = (tensors[0].ndim if tensors else 0) + 1
    return ops.Stack.apply(*tensors, axis=_norm_axis(axis, nd, "stack"))


cat = concatenate

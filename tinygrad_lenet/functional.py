"""Ops as functions, PyTorch's `torch.nn.functional` style. Each is the Tensor
method of the same name (one implementation); the functions that combine ops
(linear, concatenate, stack) live here."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import ops
from .tensor import Tensor
from .validation import normalize_axis, same_float_dtype


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0) -> Tensor:
    """2-D cross-correlation of x (N, C, H, W) with weight (out, C, kh, kw)."""
    return _tensor(x, "conv2d").conv2d(weight, bias, stride=stride, padding=padding)


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None) -> Tensor:
    return _tensor(x, "max_pool2d").max_pool2d(kernel_size, stride)


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None) -> Tensor:
    return _tensor(x, "avg_pool2d").avg_pool2d(kernel_size, stride)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, with weight of shape (out, in) as in PyTorch."""
    out = _tensor(x, "linear") @ weight.transpose()
    return out if bias is None else out + bias


def relu(x: Tensor) -> Tensor:
    return _tensor(x, "relu").relu()


def tanh(x: Tensor) -> Tensor:
    return _tensor(x, "tanh").tanh()


def sigmoid(x: Tensor) -> Tensor:
    return _tensor(x, "sigmoid").sigmoid()


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return _tensor(x, "log_softmax").log_softmax(axis)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return _tensor(x, "softmax").softmax(axis)


def cross_entropy(logits: Tensor, targets: Any) -> Tensor:
    """Mean cross-entropy of (N, C) logits against integer class targets (N,)."""
    return _tensor(logits, "cross_entropy").cross_entropy(targets)


def nll_loss(log_probs: Tensor, targets: Any) -> Tensor:
    """Mean negative log-likelihood of (N, C) log-probabilities at integer targets (N,)."""
    return _tensor(log_probs, "nll_loss").nll_loss(targets)


def mse_loss(input: Tensor, target: Any) -> Tensor:
    """Mean squared error; input and target must have the same shape."""
    return _tensor(input, "mse_loss").mse_loss(target)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, generator: np.random.Generator | None = None) -> Tensor:
    """In training, zero elements with probability p and scale the rest by 1/(1-p);
    otherwise return x unchanged."""
    return _tensor(x, "dropout").dropout(p, training, generator)


def concatenate(tensors: list[Tensor], axis: int = 0) -> Tensor:
    tensors = [_tensor(t, "concatenate") for t in tensors]
    same_float_dtype("concatenate", *tensors)
    nd = tensors[0].ndim if tensors else 1
    return ops.Concatenate.apply(*tensors, axis=normalize_axis(axis, nd, "concatenate"))


def stack(tensors: list[Tensor], axis: int = 0) -> Tensor:
    tensors = [_tensor(t, "stack") for t in tensors]
    same_float_dtype("stack", *tensors)
    nd = (tensors[0].ndim if tensors else 0) + 1
    return ops.Stack.apply(*tensors, axis=normalize_axis(axis, nd, "stack"))


cat = concatenate


def _tensor(x: Any, op: str) -> Tensor:
    """`x` itself when it is a Tensor; otherwise an error naming the op and what it got."""
    if isinstance(x, Tensor):
        return x
    raise TypeError(f"{op}: input must be a Tensor, got {type(x).__module__}.{type(x).__qualname__}"
                    + (f" of shape {x.shape}" if hasattr(x, "shape") else "")
                    + "; wrap arrays with Tensor(array)")

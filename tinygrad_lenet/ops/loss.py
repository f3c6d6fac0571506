"""The losses: cross-entropy (with label smoothing), negative log-likelihood and mean
squared error, each one op whose backward is written directly."""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..errors import DimError, ShapeError
from .softmax import Softmax, stable_log_softmax


def one_hot(targets: np.ndarray, shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    """(batch, classes) array of `dtype`: 1 at each row's target class, else 0."""
    out = np.zeros(shape, dtype=dtype)
    out[np.arange(shape[0]), targets] = 1
    return out


def check_class_targets(op: str, scores: np.ndarray, targets: np.ndarray) -> None:
    """Raise a one-line error naming `op` when targets are not integer classes in range."""
    if scores.ndim != 2:
        raise ShapeError(f"{op}: input must be 2-D (batch, classes), got shape {scores.shape}")
    if targets.shape != scores.shape[:1]:
        raise ShapeError(f"{op}: targets of shape {targets.shape} do not match input of shape {scores.shape}")
    if targets.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be integer class indices, got dtype {targets.dtype}")
    if targets.size and (targets.min() < 0 or targets.max() >= scores.shape[1]):
        raise DimError(f"{op}: target values must lie in [0, {scores.shape[1]}), got "
                       f"min {targets.min()} max {targets.max()}")


class CrossEntropy(Function):
    """Mean over the batch of the cross-entropy between softmax(logits) and the target
    distribution: one-hot, or with `label_smoothing` e the one-hot mixed with the
    uniform distribution, (1 - e) onehot + e / C (PyTorch's definition). Log-softmax
    and the loss fused, so backward is simply (softmax - target distribution) / N."""
    name = "cross_entropy"

    @staticmethod
    def forward(ctx, logits, targets, *, label_smoothing=0.0):
        check_class_targets("cross_entropy", logits, targets)
        logp = stable_log_softmax(logits, 1)
        n, c = logits.shape
        ctx.save_for_backward(logits)
        ctx.remember(targets=targets)
        picked = logp[np.arange(n), targets]
        if label_smoothing:
            eps = logp.dtype.type(label_smoothing)
            picked = picked * (1 - eps) + logp.sum(axis=1) * (eps / c)
        return np.asarray(-picked.mean(), dtype=logp.dtype)

    @staticmethod
    def backward(ctx, grad):
        (logits,) = ctx.saved_tensors
        n, c = logits.shape
        p = Softmax.call(logits, axis=1)
        target = one_hot(ctx.values["targets"], logits.shape, logits.dtype)
        eps = ctx.attrs.get("label_smoothing", 0.0)
        if eps:
            eps = logits.dtype.type(eps)
            target = target * (1 - eps) + eps / c
        return (p - target) * (grad / logits.dtype.type(n)), None


class NLLLoss(Function):
    """Mean over the batch of -input[target], for log-probabilities."""
    name = "nll_loss"

    @staticmethod
    def forward(ctx, logp, targets):
        check_class_targets("nll_loss", logp, targets)
        ctx.save_for_backward(targets)
        ctx.remember(shape=logp.shape)
        return np.asarray(-logp[np.arange(logp.shape[0]), targets].mean())  # integers: float64, made float32 by apply

    @staticmethod
    def backward(ctx, grad):
        (targets,) = ctx.saved_tensors
        n = ctx.values["shape"][0]
        return one_hot(targets, ctx.values["shape"], grad.dtype) * (grad / grad.dtype.type(-n)), None


class MSELoss(Function):
    """Mean of squared differences; both sides must have the same shape."""
    name = "mse_loss"

    @staticmethod
    def forward(ctx, a, b):
        if a.shape != b.shape:
            raise ShapeError(f"mse_loss: input shape {a.shape} and target shape {b.shape} differ")
        diff = a - b
        ctx.save_for_backward(a, b)
        return np.asarray(np.mean(diff * diff))  # integers: float64, made float32 by apply

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        diff = a - b
        g = diff * (grad * grad.dtype.type(2.0 / max(diff.size, 1)))
        return g, -g

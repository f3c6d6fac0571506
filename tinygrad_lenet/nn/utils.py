"""Gradient utilities used between `backward()` and `optimizer.step()`."""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from ..tensor import Tensor


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[np.ndarray]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad.data if isinstance(p.grad, Tensor) else p.grad for p in params if p.grad is not None]


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale all gradients in place so that their joint norm (the norm of the vector
    of all gradient entries) is at most `max_norm`; returns the norm before clipping.
    As in PyTorch, the scale is max_norm / (norm + 1e-6), applied only when below 1."""
    if max_norm < 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    norm_type = float(norm_type)
    grads = _grads(parameters)
    if not grads:
        return 0.0
    if not (norm_type > 0):
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type}")
    # Per-gradient norms in float64 (float32 squares of entries above ~1e19 overflow),
    # combined in Python floats; the gradients themselves keep their dtype.
    norms = [float(np.linalg.norm(g.astype(np.float64).ravel(), ord=norm_type)) if g.size else 0.0
             for g in grads]
    if norm_type == math.inf:
        total = max(norms)
    elif norm_type == 2.0:
        total = math.hypot(*norms)
    else:
        try:
            total = math.fsum(n ** norm_type for n in norms) ** (1.0 / norm_type)
        except OverflowError:
            total = math.inf
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
                               f"{total}, so they cannot be clipped")
        return total
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= coef  # a Python float keeps the gradient's dtype
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value] in place."""
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)


def non_finite_entries(module: Any) -> list[str]:
    """'name (k of n)' for every float parameter or buffer of `module` holding NaN or
    infinity: a diverged model, which should not be used or trained further."""
    out = []
    for name, value in module.state_dict().items():
        v = np.asarray(value.data if isinstance(value, Tensor) else value)
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            out.append(f"{name} ({int(v.size - np.isfinite(v).sum())} of {v.size})")
    return out

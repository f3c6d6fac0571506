"""RMSprop with PyTorch's update rule (its `alpha`, `centered` and `momentum`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT


class RMSprop(Optimizer):
    """For each parameter p with gradient g (PyTorch's rule):

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g^2
        avg = sqrt(v - m^2) + eps, with m = alpha * m + (1 - alpha) * g   (centered)
        avg = sqrt(v) + eps                                                (otherwise)
        b = momentum * b + g / avg;  p = p - lr * b                        (momentum > 0)
        p = p - lr * g / avg                                               (otherwise)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, dict(lr=float(lr), alpha=float(alpha), eps=float(eps), weight_decay=float(weight_decay),
                                      momentum=float(momentum), centered=bool(centered)))

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        if not 0.0 <= group["alpha"] <= 1.0:
            raise ValueError(f"RMSprop: invalid alpha {group['alpha']} (must be in [0, 1])")
        if not group["eps"] >= 0 or not group["momentum"] >= 0:
            raise ValueError(f"RMSprop: invalid eps {group['eps']} or momentum {group['momentum']} (must be >= 0)")

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        lr, alpha, eps, wd, momentum = (group[k] for k in ("lr", "alpha", "eps", "weight_decay", "momentum"))
        tmp, avg = self._scratch_arrays(p, 2)
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p.data)
        state["step"] += 1
        g = grad
        if wd != 0:
            np.multiply(p.data, wd, out=tmp)
            tmp += grad
            g = tmp
        v = state["square_avg"]
        v *= alpha
        v += (1.0 - alpha) * g * g
        if group["centered"]:
            m = state["grad_avg"]
            m *= alpha
            m += (1.0 - alpha) * g
            np.subtract(v, m * m, out=avg)
            np.sqrt(avg, out=avg)
        else:
            np.sqrt(v, out=avg)
        avg += eps
        if momentum > 0:
            b = state["momentum_buffer"]
            b *= momentum
            b += g / avg
            p.data -= lr * b
        else:
            p.data -= lr * (g / avg)

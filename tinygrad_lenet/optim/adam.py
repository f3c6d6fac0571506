"""Adam (L2 penalty added to the gradient) and AdamW (decoupled weight decay),
with PyTorch's update rules."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT


class Adam(Optimizer):
    """For each parameter p with gradient g, at step t (PyTorch's rule):

        p = p * (1 - lr * weight_decay)           (decoupled, AdamW)
        g = g + weight_decay * p                  (otherwise)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False):
        super().__init__(params, dict(lr=float(lr), betas=tuple(float(b) for b in betas), eps=float(eps),
                                      weight_decay=float(weight_decay),
                                      decoupled_weight_decay=bool(decoupled_weight_decay)))

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        name = type(self).__name__
        betas = tuple(group["betas"])
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{name}: invalid betas {betas} (need two values in [0, 1))")
        if not group["eps"] >= 0:
            raise ValueError(f"{name}: invalid eps {group['eps']} (must be >= 0)")

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        tmp, tmp2 = self._scratch_arrays(p, 2)
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] = t = state["step"] + 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        g = grad
        if wd != 0:
            if group["decoupled_weight_decay"]:
                p.data *= 1.0 - lr * wd
            else:
                np.multiply(p.data, wd, out=tmp)
                tmp += grad
                g = tmp
        # m += (1 - beta1) * (g - m);  v += (1 - beta2) * (g*g - v)
        np.subtract(g, m, out=tmp2)
        tmp2 *= 1.0 - beta1
        m += tmp2
        np.multiply(g, g, out=tmp2)
        tmp2 -= v
        tmp2 *= 1.0 - beta2
        v += tmp2
        bias_correction1 = 1.0 - beta1 ** t
        bias_correction2 = 1.0 - beta2 ** t
        # denom = sqrt(v) / sqrt(bias_correction2) + eps;  p -= lr / bias_correction1 * m / denom
        np.sqrt(v, out=tmp2)
        tmp2 /= math.sqrt(bias_correction2)
        tmp2 += eps
        np.divide(m, tmp2, out=tmp2)
        tmp2 *= -lr / bias_correction1
        p.data += tmp2


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay before the Adam step."""

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=True)

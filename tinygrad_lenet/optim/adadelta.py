"""Adadelta (Zeiler, 2012), with PyTorch's update rule: no learning-rate schedule of its
own to tune, the step scaled by the running size of earlier steps."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT


class Adadelta(Optimizer):
    """For each parameter p with gradient g (PyTorch's rule):

        g = g + weight_decay * p
        v = rho * v + (1 - rho) * g^2
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta^2
        p = p - lr * delta
    """

    def __init__(self, params: ParamsT, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=float(lr), rho=float(rho), eps=float(eps), weight_decay=float(weight_decay)))

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"Adadelta: invalid rho {group['rho']} (must be in [0, 1])")
        if not group["eps"] >= 0:
            raise ValueError(f"Adadelta: invalid eps {group['eps']} (must be >= 0)")

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        lr, rho, eps, wd = group["lr"], group["rho"], group["eps"], group["weight_decay"]
        tmp, delta = self._scratch_arrays(p, 2)
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
            state["acc_delta"] = np.zeros_like(p.data)
        state["step"] += 1
        v, u = state["square_avg"], state["acc_delta"]
        g = grad
        if wd != 0:
            np.multiply(p.data, wd, out=tmp)
            tmp += grad
            g = tmp
        np.multiply(g, g, out=delta)  # v = rho v + (1 - rho) g^2
        v *= rho
        delta *= 1.0 - rho
        v += delta
        np.add(u, eps, out=delta)  # delta = sqrt(u + eps) / sqrt(v + eps) * g
        np.sqrt(delta, out=delta)
        delta *= g
        np.add(v, eps, out=tmp)
        np.sqrt(tmp, out=tmp)
        delta /= tmp
        np.multiply(delta, delta, out=tmp)  # u = rho u + (1 - rho) delta^2
        u *= rho
        tmp *= 1.0 - rho
        u += tmp
        delta *= -lr
        p.data += delta

"""Stochastic gradient descent with PyTorch's update rule."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT


def add_scaled(dst: np.ndarray, src: np.ndarray, alpha: float, tmp: np.ndarray) -> None:
    """dst += alpha * src in place, using `tmp` (which may be `src`) as scratch."""
    np.multiply(src, alpha, out=tmp)
    dst += tmp


class SGD(Optimizer):
    """For each parameter p with gradient g (PyTorch's rule):

        g = g + weight_decay * p
        if momentum: buf = g (first step) or momentum * buf + (1 - dampening) * g
                     g = g + momentum * buf (nesterov) or buf
        p = p - lr * g
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, dict(lr=float(lr), momentum=float(momentum), dampening=float(dampening),
                                      weight_decay=float(weight_decay), nesterov=bool(nesterov)))

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        if not group["momentum"] >= 0:
            raise ValueError(f"SGD: invalid momentum {group['momentum']} (must be >= 0)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: nesterov momentum requires momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        tmp, tmp2 = self._scratch_arrays(p, 2)
        d = grad
        if wd != 0:
            np.multiply(p.data, wd, out=tmp)
            tmp += grad
            d = tmp
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d.copy()
            else:
                buf *= momentum
                if group["dampening"] == 0:
                    buf += d
                else:
                    add_scaled(buf, d, 1.0 - group["dampening"], tmp2)
            if group["nesterov"]:
                np.multiply(buf, momentum, out=tmp2)
                tmp2 += d
                d = tmp2
            else:
                d = buf
        add_scaled(p.data, d, -lr, tmp)

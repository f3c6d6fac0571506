"""Loss modules: `criterion(output, target)` wrappers of the functional losses."""

from __future__ import annotations

from typing import Any

from .. import functional as F
from ..tensor import Tensor
from .module import Module


class CrossEntropyLoss(Module):
    """Mean cross-entropy of (N, C) logits against integer class targets (N,)."""

    def forward(self, logits: Tensor, targets: Any) -> Tensor:
        return F.cross_entropy(logits, targets)


class NLLLoss(Module):
    """Mean negative log-likelihood of (N, C) log-probabilities at integer targets (N,)."""

    def forward(self, log_probs: Tensor, targets: Any) -> Tensor:
        return F.nll_loss(log_probs, targets)


class MSELoss(Module):
    """Mean squared error between tensors of the same shape."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target)

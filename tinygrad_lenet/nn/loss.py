"""Loss modules: `criterion(output, target)` wrappers of the functional losses."""

from __future__ import annotations

from typing import Any

from .. import functional as F
from ..tensor import Tensor
from .module import Module


class CrossEntropyLoss(Module):
    """Cross-entropy of (N, C) logits against integer class targets (N,); options as F.cross_entropy."""

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__()
        self.weight, self.ignore_index = weight, ignore_index
        self.reduction, self.label_smoothing = reduction, float(label_smoothing)

    def forward(self, logits: Tensor, targets: Any) -> Tensor:
        return F.cross_entropy(logits, targets, self.weight, self.ignore_index, self.reduction, self.label_smoothing)


class BCEWithLogitsLoss(Module):
    """Binary cross-entropy of logits against targets in [0, 1]; options as F.binary_cross_entropy_with_logits."""

    def __init__(self, weight: Any = None, pos_weight: Any = None, reduction: str = "mean"):
        super().__init__()
        self.weight, self.pos_weight, self.reduction = weight, pos_weight, reduction

    def forward(self, logits: Tensor, targets: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, targets, self.weight, self.pos_weight, self.reduction)


class NLLLoss(Module):
    """Negative log-likelihood of (N, C) log-probabilities at integer targets (N,), with
    `F.nll_loss`'s options (class weight, ignore_index, reduction)."""

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__()
        self.weight, self.ignore_index, self.reduction = weight, int(ignore_index), reduction

    def forward(self, log_probs: Tensor, targets: Any) -> Tensor:
        return F.nll_loss(log_probs, targets, self.weight, self.ignore_index, self.reduction)


class MSELoss(Module):
    """Mean squared error between tensors of the same shape."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target)

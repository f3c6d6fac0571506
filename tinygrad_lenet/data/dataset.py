"""`TensorDataset`, PyTorch's dataset of arrays (or tensors) indexed together."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor


class TensorDataset:
    """Samples of several same-length arrays (or tensors): `dataset[i]` is the tuple of
    their i-th entries as Tensors; `tensors` holds the arrays. A DataLoader batches it
    from the arrays directly."""

    def __init__(self, *tensors: Any):
        if not tensors:
            raise ValueError("TensorDataset: give at least one array")
        arrays = tuple(t.data if isinstance(t, Tensor) else np.asarray(t) for t in tensors)
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise ValueError(f"TensorDataset: arrays of different lengths {[len(a) for a in arrays]}")
        self.tensors = arrays

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(Tensor.wrap(np.asarray(a[index])) for a in self.tensors)

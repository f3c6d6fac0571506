"""`Parameter`: a Tensor that a `Module` registers as one of its learnable weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor


class Parameter(Tensor):
    """A floating-point leaf tensor that requires grad (unless frozen with
    `requires_grad=False`). Built from a Tensor it shares the data and keeps its
    dtype; built from an array it follows `Tensor`'s rules (float -> float32)."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True):
        arr = data.data if isinstance(data, Tensor) else np.asarray(data)
        if arr.dtype.kind != "f":
            raise TypeError(f"Parameter: data must be floating point, got dtype {arr.dtype} (shape {arr.shape})")
        super().__init__(arr, requires_grad=requires_grad, dtype=arr.dtype if isinstance(data, Tensor) else None)

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"Parameter{label}(shape={self.shape}, dtype={self.dtype}, requires_grad={self.requires_grad})"

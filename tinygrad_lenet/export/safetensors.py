"""Weights as safetensors files (a flat name -> array format without pickle, which
PyTorch, JAX and others read and write). Our state-dict names and layouts are
PyTorch's for the standard layers (Linear, Conv2d, BatchNorm...), so a PyTorch model
with the same structure loads ours with `load_state_dict(strict=True)`, and ours load
PyTorch's. Needs the `safetensors` package (the `export` extra)."""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from ..atomic import atomic_write_bytes
from ..tensor import Tensor


class SafetensorsError(ValueError):
    """A file that is not readable safetensors, or weights that cannot be stored."""


def _library() -> Any:
    try:
        import safetensors.numpy
    except ImportError:
        raise SafetensorsError("safetensors files need the safetensors package: pip install -e '.[export]'") from None
    return safetensors.numpy


def save_safetensors(state: Mapping[str, Any], path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write a state dict (arrays or Tensors) to `path` atomically."""
    arrays = {}
    for name, value in state.items():
        array = np.ascontiguousarray(value.data if isinstance(value, Tensor) else value)
        if array.dtype.hasobject:
            raise SafetensorsError(f"safetensors: '{name}' has dtype object")
        arrays[name] = array
    atomic_write_bytes(path, _library().save(arrays, metadata=dict(metadata) if metadata else None))


def load_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file (e.g. one written by PyTorch's safetensors.torch.save_file)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"safetensors file not found: {path}")
    try:
        return {name: np.array(value) for name, value in _library().load_file(path).items()}
    except SafetensorsError:
        raise
    except Exception as e:  # the library's own errors: a bad header, a short file
        raise SafetensorsError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from None

"""PyTorch's `torch.utils` names that small programs use: `utils.data`."""

from . import data

__all__ = ["data"]

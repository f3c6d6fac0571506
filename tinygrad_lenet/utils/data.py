"""`torch.utils.data`'s names: DataLoader and TensorDataset (see `tinygrad_lenet.data`)."""

from ..data import DataLoader, TensorDataset

__all__ = ["DataLoader", "TensorDataset"]

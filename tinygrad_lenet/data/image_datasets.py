"""MNIST and Fashion-MNIST as PyTorch datasets: (image, label) samples normalized as
torchvision's `ToTensor()` + `Normalize(mean, std)` would give them, so a PyTorch
program's data lines port by changing the import."""

from __future__ import annotations

import os

import numpy as np

from .dataset import TensorDataset
from .datasets import get_dataset_spec, load_mnist
from .loader import normalize_images


class MNIST(TensorDataset):
    """MNIST's train or test split as (image, label) samples: float32 (1, 28, 28) images
    normalized with the data set's mean and std (torchvision's ToTensor + Normalize),
    int64 labels. Found as `load_mnist` finds it (`root`, $TINYGRAD_LENET_DATA, the cache,
    else downloaded and SHA-256 checked)."""

    name = "mnist"

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True, download: bool = True):
        images, labels = load_mnist("train" if train else "test", root=root, dataset=self.name, download=download)
        super().__init__(normalize_images(images, normalize=get_dataset_spec(self.name).mean_std),
                         labels.astype(np.int64))


class FashionMNIST(MNIST):
    name = "fashion-mnist"

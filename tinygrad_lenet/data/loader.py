"""`DataLoader`: batches of (float32 images, int64 labels) numpy arrays, shuffled reproducibly.

The order of epoch e is a function of (seed, e) alone, and each batch's augmentation of
(seed, e, batch index): a run resumed at epoch e (see `set_epoch`) sees exactly the batches
an uninterrupted run would.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import numpy as np

from ..random import default_generator
from ..tensor import Tensor
from .dataset import TensorDataset
from .datasets import get_dataset_spec

# Trailing non-zero tags keep the two random streams apart (SeedSequence ignores trailing zeros).
_SHUFFLE_TAG = 0x5348
_AUGMENT_TAG = 0x4147

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of n samples in `epoch`, a function of (seed, epoch) alone: the
    one rule of shuffling (DataLoader, distributed.DistributedSampler)."""
    return np.random.default_rng([seed, epoch, _SHUFFLE_TAG]).permutation(n)


def _mean_std(normalize) -> tuple[float, float] | None:
    if normalize is None or normalize is False:
        return None
    if normalize is True:
        return get_dataset_spec("mnist").mean_std
    if isinstance(normalize, str):
        try:
            return get_dataset_spec(normalize).mean_std
        except ValueError as e:
            raise ValueError(f"DataLoader: no normalization statistics for {normalize!r}: {e}") from None
    mean, std = (float(v) for v in normalize)
    if not std > 0:
        raise ValueError(f"DataLoader: normalize std must be > 0, got {std}")
    return mean, std


def pixel_scale_shift(dtype: np.dtype, mean_std: tuple[float, float] | None) -> tuple[np.float32, np.float32]:
    """(scale, shift) with normalized = images * scale - shift: uint8 is first mapped to [0, 1].
    The one formula of normalization: loaders and an exported graph that takes raw pixels use it."""
    mean, std = mean_std or (0.0, 1.0)
    to_unit = 1.0 / 255.0 if dtype == np.uint8 else 1.0
    return np.float32(to_unit / std), np.float32(mean / std)


def _image_batch(images: np.ndarray, who: str) -> np.ndarray:
    """uint8 or float32 images as (N, 1, H, W), or an error naming `who` and the shape."""
    images = np.asarray(images)
    if images.dtype not in (np.uint8, np.float32):
        raise TypeError(f"{who}: images must be uint8 or float32, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"{who}: images must have shape (N, H, W) or (N, 1, H, W), got {images.shape}")
    return images


def normalize_images(images: np.ndarray, normalize: bool | str | tuple[float, float] | None = None) -> np.ndarray:
    """float32 (N, 1, H, W) images exactly as a DataLoader with the same `normalize` serves them.

    images: uint8 (scaled to [0, 1]) or float32, of shape (N, H, W) or (N, 1, H, W). For
    evaluation sets, which are used whole and in order.
    """
    images = _image_batch(images, "normalize_images")
    mean_std = _mean_std(normalize)
    scale, shift = pixel_scale_shift(images.dtype, mean_std)
    x = np.multiply(images, scale, dtype=np.float32)
    if mean_std is not None:
        x -= shift
    return x


class DataLoader:
    """Iterate over (x, y) batches of Tensors: x float32 (B, 1, H, W), y int64 (B,), as
    PyTorch's DataLoader serves them (`model(x)`, `F.cross_entropy(model(x), y)`).

    images: uint8 (N, H, W) or (N, 1, H, W), scaled to [0, 1]; or float32, used as is.
    labels: integers (N,). shuffle: a new order every epoch, from `seed` (or one seed drawn
    from `generator`, else from the package's default generator, see `manual_seed`).
    normalize: None/False (just [0, 1]), True (MNIST's mean and std), a dataset name
    ("mnist", "fashion-mnist") or (mean, std); applied after `augment`, which gets the
    [0, 1] batch and a numpy Generator (e.g. `RandomAffine()`).
    Each `iter()` runs one epoch and advances `epoch`; `set_epoch` moves to any epoch.
    sampler: instead of `shuffle`, an iterable of sample indices with a length, read once
    per epoch (a `distributed.DistributedSampler`: call its `set_epoch` each epoch, as in PyTorch).

    PyTorch's form works too: `DataLoader(dataset, batch_size=64, shuffle=True)` with a
    dataset of (image, label) pairs held as two arrays (`TensorDataset`, `MNIST`); `.dataset`
    is the dataset either way (a TensorDataset of the arrays when they were given).
    """

    def __init__(self, images: Any, labels: Any = None, batch_size: int = 64, shuffle: bool = False,
                 drop_last: bool = False, seed: int | None = None, generator: np.random.Generator | None = None,
                 normalize: bool | str | tuple[float, float] | None = None, augment: Augment | None = None,
                 sampler: Any = None):
        dataset = None
        if labels is None:  # PyTorch's form: a dataset of (image, label) pairs
            arrays = getattr(images, "tensors", None)
            if not isinstance(arrays, tuple) or len(arrays) != 2:
                raise TypeError(f"DataLoader: expected images and labels, or a dataset of (image, label) pairs held as "
                                f"two arrays (TensorDataset, MNIST), got {type(images).__name__}")
            dataset, (images, labels) = images, arrays
        images = _image_batch(images, "DataLoader")
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ValueError(f"DataLoader: labels must be integers of shape (N,), got {labels.dtype} {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"DataLoader: {len(images)} images but {len(labels)} labels")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if seed is not None and generator is not None:
            raise ValueError("DataLoader: pass seed or generator, not both")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler gives the order; it cannot be combined with shuffle=True")
        if sampler is not None and not hasattr(sampler, "__len__"):
            raise TypeError(f"DataLoader: sampler must be an iterable of indices with a length, got "
                            f"{type(sampler).__name__}")
        if seed is None:
            seed = int((generator if generator is not None else default_generator()).integers(0, 2**63))
        if seed < 0:
            raise ValueError(f"DataLoader: seed must be >= 0, got {seed}")

        self.images = images
        self.labels = labels.astype(np.int64)
        self.dataset = dataset if dataset is not None else TensorDataset(self.images, self.labels)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.augment = augment
        self.sampler = sampler
        self.mean_std = _mean_std(normalize)
        self.epoch = 0
        self._start_batch = 0
        # uint8 -> float32 in one multiply-add: x * scale - shift  (both float32).
        self._unit_scale = pixel_scale_shift(images.dtype, None)[0]
        self._scale, self._shift = pixel_scale_shift(images.dtype, self.mean_std)

    def __len__(self) -> int:
        """Number of batches in one epoch."""
        n = len(self.labels) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Make the next `iter()` epoch `epoch`, starting at batch `start_batch` (to resume mid-epoch)."""
        if epoch < 0 or not 0 <= start_batch <= len(self):
            raise ValueError(f"DataLoader.set_epoch: need epoch >= 0 and 0 <= start_batch <= {len(self)}, "
                             f"got epoch={epoch}, start_batch={start_batch}")
        self.epoch = int(epoch)
        self._start_batch = int(start_batch)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices of `epoch`, in the order they are served."""
        n = len(self.labels)
        if self.sampler is not None:
            order = np.fromiter(self.sampler, dtype=np.int64)
            if len(order) and (order.min() < 0 or order.max() >= n):
                raise IndexError(f"DataLoader: the sampler gave index {order.min() if order.min() < 0 else order.max()}"
                                 f" for a data set of {n} samples")
            return order
        if not self.shuffle:
            return np.arange(n)
        return epoch_permutation(n, self.seed, epoch)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        epoch, start = self.epoch, self._start_batch
        self.epoch, self._start_batch = epoch + 1, 0
        return self._batches(epoch, start)

    def _batches(self, epoch: int, start: int) -> Iterator[tuple[Tensor, Tensor]]:
        order = self.order(epoch)
        for i in range(start, len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield Tensor.wrap(self._make_batch(idx, epoch, i)), Tensor.wrap(self.labels[idx])

    def _make_batch(self, idx: np.ndarray, epoch: int, batch: int) -> np.ndarray:
        raw = self.images[idx]
        if self.augment is None:
            x = np.multiply(raw, self._scale, dtype=np.float32)
        else:
            x = np.multiply(raw, self._unit_scale, dtype=np.float32)
            rng = np.random.default_rng([self.seed, epoch, batch, _AUGMENT_TAG])
            x = self.augment(x, rng)
            if x.dtype != np.float32 or x.shape != raw.shape:
                raise TypeError(f"DataLoader: augment must return float32 of shape {raw.shape}, "
                                f"got {x.dtype} {x.shape}")
            if self.mean_std is not None:
                x *= np.float32(1.0 / self.mean_std[1])
        if self.mean_std is not None:
            x -= self._shift
        return x

    def __repr__(self) -> str:
        return (f"DataLoader(n={len(self.labels)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed}, normalize={self.mean_std}, "
                f"augment={self.augment!r}, epoch={self.epoch})")

"""Data sets beyond MNIST: any directory of IDX files in MNIST's layout (EMNIST digits
or letters, KMNIST, ...). Files are found by name (`*train*images*idx3-ubyte[.gz]`,
`*t10k*` or `*test*` for the test split, `labels*idx1` for labels); the number of
classes comes from the training labels, the class names from an optional
`classes.txt` (one name per line) beside the files, and the normalization
statistics from the training images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets import DATASETS, get_dataset_spec, load_mnist
from .idx import IDXError, parse_idx, read_idx_bytes

SPLIT_TAGS = {"train": ("train",), "test": ("t10k", "test")}
MAX_CLASSES = 1000
CLASS_NAMES_FILE = "classes.txt"


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and the scripts need to know about a data set."""
    name: str
    title: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int]
    mean: float
    std: float

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.classes)

    @property
    def mean_std(self) -> tuple[float, float]:
        """(mean, std) of the training pixels scaled to [0, 1]: the normalization."""
        return self.mean, self.std


def is_known_dataset(dataset: str) -> bool:
    """Whether `dataset` names a built-in data set (mnist, fashion-mnist)."""
    return dataset.lower().replace("_", "-") in DATASETS


def load_split(dataset: str, split: str, root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (N, H, W), integer labels (N,)) of a known data set (searched for
    and verified as `load_mnist` does, `root` first) or of an IDX directory."""
    if is_known_dataset(dataset):
        return load_mnist(split, root=root, dataset=dataset)
    directory = Path(dataset)
    if not directory.is_dir():
        raise ValueError(f"dataset {dataset!r}: neither a known data set ({', '.join(sorted(DATASETS))}) nor a "
                         "directory of IDX files")
    if split not in SPLIT_TAGS:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLIT_TAGS)}")
    images = _read(directory, split, "images", "idx3")
    labels = _read(directory, split, "labels", "idx1")
    if images.dtype != np.uint8 or images.ndim != 3:
        raise IDXError(f"{directory}: {split} images must be uint8 (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise IDXError(f"{directory}: {split} labels must be integers (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise IDXError(f"{directory}: {split} has {len(images)} images but {len(labels)} labels")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= MAX_CLASSES):
        raise IDXError(f"{directory}: {split} labels must be in 0..{MAX_CLASSES - 1}, got "
                       f"{int(labels.min())}..{int(labels.max())}")
    return images, labels


def describe_dataset(dataset: str, train_images: np.ndarray | None = None,
                     train_labels: np.ndarray | None = None) -> DatasetInfo:
    """Classes, image shape and normalization statistics of `dataset`: from its spec for
    a known data set, else from its training split (given, or read from the directory)."""
    if is_known_dataset(dataset):
        spec = get_dataset_spec(dataset)
        return DatasetInfo(spec.name, spec.title, spec.classes, spec.image_shape, spec.mean, spec.std)
    if train_images is None or train_labels is None:
        train_images, train_labels = load_split(dataset, "train")
    if not len(train_labels):
        raise IDXError(f"{dataset}: the training split is empty")
    num_classes = int(train_labels.max()) + 1
    directory = Path(dataset)
    classes = tuple(str(k) for k in range(num_classes))
    names_file = directory / CLASS_NAMES_FILE
    if names_file.is_file():
        names = [line.strip() for line in names_file.read_text(encoding="utf-8", errors="replace").splitlines()
                 if line.strip()]
        if len(names) < num_classes:
            raise IDXError(f"{names_file}: {len(names)} class names for {num_classes} classes")
        classes = tuple(names[:num_classes])
    scaled = train_images.astype(np.float64) / 255.0
    std = float(scaled.std())
    return DatasetInfo(str(directory), directory.name or str(directory), classes, tuple(train_images.shape[1:]),
                       float(scaled.mean()), std if std > 0 else 1.0)


def _read(directory: Path, split: str, kind: str, idx: str) -> np.ndarray:
    matches = sorted(p for p in directory.iterdir() if p.is_file() and kind in p.name and f"{idx}-ubyte" in p.name
                     and any(tag in p.name for tag in SPLIT_TAGS[split]))
    if len(matches) != 1:
        found = ", ".join(p.name for p in matches) or "none"
        raise IDXError(f"{directory}: expected one {split} {kind} file named like "
                       f"'{SPLIT_TAGS[split][0]}-{kind}-{idx}-ubyte[.gz]', found {found}")
    path = matches[0]
    try:
        return parse_idx(read_idx_bytes(path), str(path))
    except OSError as e:
        raise IDXError(f"{path}: cannot read: {e.strerror or e}") from None

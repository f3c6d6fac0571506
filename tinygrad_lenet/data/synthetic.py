"""Small synthetic stand-ins for MNIST, for tests and smoke runs without the real files.

`write_fake_dataset` writes IDX files under the real file names and returns a DatasetSpec
whose checksums are those of the fake files; put it in `DATASETS` (e.g. with pytest's
monkeypatch.setitem) and `load_mnist` loads, verifies and "downloads" it like the real thing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from .datasets import DatasetSpec, IDXFile, get_dataset_spec
from .idx import encode_idx, write_idx


def fake_images_labels(n: int, seed: int = 0, num_classes: int = 10, shape: tuple[int, int] = (28, 28)
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (n, *shape) images, uint8 (n,) labels): each class a bright square at its own spot, plus noise."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % num_classes).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 40, size=(n, *shape), dtype=np.uint8)
    h, w = shape
    for k in range(num_classes):  # one square position per class, so the task is learnable
        r, c = (k // 4) * (h // 4) + 2, (k % 4) * (w // 4) + 2
        images[labels == k, r:r + h // 5, c:c + w // 5] = 255
    return images, labels


def write_fake_dataset(directory: str | os.PathLike, dataset: str = "mnist", n_train: int = 40, n_test: int = 20,
                       seed: int = 0, gz: bool = True, mirrors: tuple[str, ...] = ()) -> DatasetSpec:
    """Write fake train/test IDX files of `dataset` into `directory`; returns their DatasetSpec.

    The spec keeps the real file names and has the given `mirrors` and no system directories.
    """
    spec = get_dataset_spec(dataset)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, (split, n) in enumerate((("train", n_train), ("test", n_test))):
        images, labels = fake_images_labels(n, seed=seed * 2 + i, num_classes=spec.num_classes,
                                            shape=spec.image_shape)
        pair = []
        for f, array in zip(spec.files[split], (images, labels)):
            raw = encode_idx(array)
            write_idx(directory / (f"{f.name}.gz" if gz else f.name), array)
            pair.append(IDXFile(f.name, hashlib.sha256(raw).hexdigest(), len(raw)))
        files[split] = tuple(pair)
    return dataclasses.replace(spec, files=files, mirrors=tuple(mirrors), system_dirs=())

"""The real data sets: MNIST from $TINYGRAD_LENET_DATA, Fashion-MNIST from Debian's package.

Locally each test is skipped, with the reason, when its data is absent; in CI it fails.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import require

from tinygrad_lenet.data import DATASETS, ENV_VAR, get_dataset_spec, load_mnist, locate_files

MNIST_DIR = os.environ.get(ENV_VAR)  # read before any test changes the environment
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

# Widely published per-class counts, a check independent of the checksums.
MNIST_COUNTS = {"train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
                "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]}


def unit_mean_std(images: np.ndarray) -> tuple[float, float]:
    """Mean and std of images / 255, from exact integer sums (255**2 fits in uint16)."""
    n = images.size
    total = int(images.sum(dtype=np.uint64))
    squares = images.astype(np.uint16)
    squares *= squares
    mean = total / n / 255
    return mean, float(np.sqrt(int(squares.sum(dtype=np.uint64)) / n / 255**2 - mean**2))


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No download, no cache: only the real directory can satisfy a load."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for name, spec in list(DATASETS.items()):
        monkeypatch.setitem(DATASETS, name, dataclasses.replace(spec, mirrors=()))


@pytest.fixture(scope="module")
def mnist():
    require(bool(MNIST_DIR), f"{ENV_VAR} is not set (point it at the MNIST folder, e.g. ../shared/mnist)")
    return {split: load_mnist(split, download=False) for split in ("train", "test")}


@pytest.mark.parametrize("split, n", [("train", 60000), ("test", 10000)])
def test_mnist_shapes_dtypes_labels(mnist, split, n):
    images, labels = mnist[split]
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.uint8
    assert labels.min() == 0 and labels.max() == 9
    assert np.bincount(labels, minlength=10).tolist() == MNIST_COUNTS[split]
    assert images.max() == 255 and images.min() == 0


def test_mnist_first_labels_and_normalization_stats(mnist):
    images, labels = mnist["train"]
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    mean, std = unit_mean_std(images)
    assert (mean, std) == pytest.approx(get_dataset_spec("mnist").mean_std, abs=1e-4)


def test_mnist_files_match_the_checksum_constants(mnist, offline):
    """The files found through $TINYGRAD_LENET_DATA, hashed here independently of the loader."""
    sums_file = Path(MNIST_DIR) / "SHA256SUMS.raw"
    published = dict(reversed(line.split()) for line in sums_file.read_text().splitlines()) \
        if sums_file.is_file() else {}
    for split in ("train", "test"):
        for path, spec in zip(locate_files(split, download=False), DATASETS["mnist"].files[split]):
            data = path.read_bytes()
            raw = gzip.decompress(data) if path.suffix == ".gz" else data
            assert hashlib.sha256(raw).hexdigest() == spec.sha256
            if published:
                assert published[spec.name] == spec.sha256


def test_fashion_mnist_from_debian_package(offline, monkeypatch):
    require(FASHION_DIR.is_dir(), f"{FASHION_DIR} is missing (apt-get install dataset-fashion-mnist)")
    monkeypatch.delenv(ENV_VAR, raising=False)
    images, labels = load_mnist("test", dataset="fashion-mnist", download=False)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10
    assert locate_files("test", dataset="fashion-mnist", download=False)[0].parent == FASHION_DIR
    train_images, train_labels = load_mnist("train", dataset="fashion-mnist", download=False)
    assert np.bincount(train_labels).tolist() == [6000] * 10
    mean, std = unit_mean_std(train_images)
    assert (mean, std) == pytest.approx(get_dataset_spec("fashion-mnist").mean_std, abs=1e-4)


def test_fashion_mnist_is_found_past_an_mnist_directory(offline, monkeypatch):
    """$TINYGRAD_LENET_DATA pointing at MNIST (same file names) must not hide Fashion-MNIST."""
    require(bool(MNIST_DIR), f"{ENV_VAR} is not set")
    require(FASHION_DIR.is_dir(), f"{FASHION_DIR} is missing (apt-get install dataset-fashion-mnist)")
    monkeypatch.setenv(ENV_VAR, MNIST_DIR)
    images_path, _ = locate_files("test", dataset="fashion-mnist", download=False)
    assert images_path.parent == FASHION_DIR

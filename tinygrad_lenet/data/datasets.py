"""Find, verify and load MNIST and Fashion-MNIST.

Where the files are looked for, in order (each file may be gzipped, `NAME.gz`, or raw, `NAME`):

1. `root`, when given (the scripts' `--data-dir`): `root/<dataset>/` then `root/`.
2. `$TINYGRAD_LENET_DATA`: `$TINYGRAD_LENET_DATA/<dataset>/` then `$TINYGRAD_LENET_DATA/`.
3. The cache, `$XDG_CACHE_HOME/tinygrad_lenet/<dataset>/` (default `~/.cache/...`).
4. System directories: for Fashion-MNIST, Debian's `dataset-fashion-mnist` package
   (`/usr/share/datasets/fashion-mnist/`).

Files found nowhere are downloaded from public mirrors into `root` when it is given,
else into the cache. Every file is checked against the SHA-256 of its decompressed
bytes: a truncated or corrupted file is an error naming it and both checksums. A
`root` holding the *other* dataset's files (the two use the same file names) is an
error; in steps 2-4 such a directory is skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from .. import settings
from .download import DownloadError, download_file
from .idx import IDXError, gunzip, parse_idx

ENV_VAR = settings.DATA_DIR_VARIABLE
ROOT_ORIGIN = "root argument"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class IDXFile:
    """One IDX file of a data set: its canonical name and the SHA-256 and size of its raw bytes."""
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DatasetSpec:
    """A data set: its files per split (images, labels), download mirrors and system directories."""
    name: str
    title: str
    files: Mapping[str, tuple[IDXFile, IDXFile]]
    mirrors: tuple[str, ...]
    system_dirs: tuple[str, ...] = ()
    num_classes: int = 10
    image_shape: tuple[int, int] = (28, 28)
    classes: tuple[str, ...] = field(default=())
    mean: float = 0.0  # mean and standard deviation of the training images scaled to [0, 1]
    std: float = 1.0

    @property
    def mean_std(self) -> tuple[float, float]:
        """(mean, std): what `normalize=` takes to serve inputs as this data set's models expect."""
        return self.mean, self.std


def _files(train_images: str, train_labels: str, test_images: str, test_labels: str
           ) -> dict[str, tuple[IDXFile, IDXFile]]:
    return {
        "train": (IDXFile("train-images-idx3-ubyte", train_images, 47_040_016),
                  IDXFile("train-labels-idx1-ubyte", train_labels, 60_008)),
        "test": (IDXFile("t10k-images-idx3-ubyte", test_images, 7_840_016),
                 IDXFile("t10k-labels-idx1-ubyte", test_labels, 10_008)),
    }


# SHA-256 of the canonical, decompressed IDX files. The gzip wrappers differ between
# mirrors (header fields), the raw bytes do not.
DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        files=_files("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                     "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                     "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                     "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        classes=tuple(str(d) for d in range(10)),
        mean=0.1307,
        std=0.3081,
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        files=_files("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                     "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                     "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                     "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        mean=0.2860,
        std=0.3530,
    ),
}


class ChecksumError(ValueError):
    """A data file's decompressed bytes do not have the expected SHA-256 (truncated or corrupted)."""


class DatasetNotFoundError(FileNotFoundError):
    """A data file is in none of the searched directories and could not be downloaded."""


def get_dataset_spec(dataset: str) -> DatasetSpec:
    """The spec of `dataset` ("mnist" or "fashion-mnist"; case and '_' vs '-' do not matter)."""
    key = dataset.lower().replace("_", "-")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[key]


def cache_dir(dataset: str = "mnist") -> Path:
    """Where downloads go: `$XDG_CACHE_HOME/tinygrad_lenet/<dataset>` (default `~/.cache/...`)."""
    return settings.cache_home() / "tinygrad_lenet" / get_dataset_spec(dataset).name


def search_dirs(dataset: str = "mnist", root: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The directories looked in, in order, each with where it comes from."""
    spec = get_dataset_spec(dataset)
    dirs: list[tuple[str, Path]] = []
    if root is not None:
        root = Path(root).expanduser()
        dirs += [(ROOT_ORIGIN, root / spec.name), (ROOT_ORIGIN, root)]
    env_dir = settings.data_dir()
    if env_dir is not None:
        dirs += [(f"${ENV_VAR}", env_dir / spec.name), (f"${ENV_VAR}", env_dir)]
    dirs.append(("cache", cache_dir(spec.name)))
    dirs += [("system", Path(d)) for d in spec.system_dirs]
    return dirs


def _existing(directory: Path, name: str) -> Path | None:
    """`directory/name` (raw) or `directory/name.gz`, whichever is a file; raw first (faster to read)."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _known_as(sha256: str) -> str | None:
    """'<Title> <file name>' when `sha256` is that of a known data set's file."""
    for spec in DATASETS.values():
        for pair in spec.files.values():
            for f in pair:
                if f.sha256 == sha256:
                    return f"{spec.title}'s {f.name}"
    return None


def _read_raw(path: Path, size: int) -> tuple[bytes, str | None]:
    """The decompressed bytes of `path` (as far as they go, and no further than one
    byte past the expected `size`) and what went wrong, if anything."""
    data = path.read_bytes()
    return gunzip(data, limit=size) if path.suffix == ".gz" else (data, None)


def _checksum_error(path: Path, spec: DatasetSpec, f: IDXFile, raw: bytes, actual: str,
                    problem: str | None) -> ChecksumError:
    other = _known_as(actual)
    if other is not None:
        what = f"it holds {other}, not {spec.title}'s"
    else:
        what = f"{problem or 'the file is truncated or corrupted'}: delete it and fetch it again"
    return ChecksumError(
        f"{path}: checksum mismatch for {spec.title} {f.name}: SHA-256 of the decompressed bytes is {actual} "
        f"({len(raw)} bytes), expected {f.sha256} ({f.size} bytes); {what}")


def _locate(spec: DatasetSpec, f: IDXFile, root: str | os.PathLike | None, download: bool,
            progress: bool | None) -> tuple[Path, bytes]:
    """Path and verified raw bytes of file `f`, searching (and downloading) as the module describes."""
    looked: list[str] = []
    if settings.data_dir() is None:
        looked.append(f"  ${ENV_VAR}: not set")
    for origin, directory in search_dirs(spec.name, root):
        path = _existing(directory, f.name)
        if path is None:
            looked.append(f"  {directory} ({origin}): no {f.name}[.gz]")
            continue
        raw, problem = _read_raw(path, f.size)
        actual = hashlib.sha256(raw).hexdigest()
        if problem is None and actual == f.sha256:
            return path, raw
        other = _known_as(actual)
        if origin != ROOT_ORIGIN and other is not None:  # another data set's directory: keep searching
            looked.append(f"  {directory} ({origin}): holds {other}, skipped")
            continue
        raise _checksum_error(path, spec, f, raw, actual, problem)

    target = Path(root).expanduser() if root is not None else cache_dir(spec.name)
    if download:
        dest = target / f"{f.name}.gz"
        created = not target.exists()
        try:
            target.mkdir(parents=True, exist_ok=True)
            download_file([m + dest.name for m in spec.mirrors], dest, f.sha256, size=f.size, progress=progress)
            raw, _ = _read_raw(dest, f.size)
            return dest, raw
        except (DownloadError, OSError) as e:
            if created:  # leave no empty directory behind either
                with contextlib.suppress(OSError):
                    target.rmdir()
            tried = str(e) if isinstance(e, DownloadError) else f"could not download into {target}: {e}"
    else:
        tried = "Download disabled (download=False)."
    names = ", ".join(f"{x.name}.gz" for pair in spec.files.values() for x in pair)
    raise DatasetNotFoundError(
        f"{spec.title} file {f.name} not found.\nLooked in:\n" + "\n".join(looked) + f"\n{tried}\n"
        f"Put the {spec.title} files ({names}; gzipped or not) into one of these directories, "
        f"pass root=<directory> (--data-dir <directory> in the scripts), or set {ENV_VAR}=<directory>.")


def locate_files(split: str, root: str | os.PathLike | None = None, dataset: str = "mnist", *,
               download: bool = True, progress: bool | None = None) -> tuple[Path, Path]:
    """Paths of the verified (images, labels) files of `split`, downloading them if needed."""
    spec = get_dataset_spec(dataset)
    images, labels = _split_files(spec, split)
    return (_locate(spec, images, root, download, progress)[0],
            _locate(spec, labels, root, download, progress)[0])


def _split_files(spec: DatasetSpec, split: str) -> tuple[IDXFile, IDXFile]:
    if split not in spec.files:
        raise ValueError(f"unknown split {split!r} for {spec.title}; choose one of {sorted(spec.files)}")
    return spec.files[split]


def load_mnist(split: str, root: str | os.PathLike | None = None, dataset: str = "mnist", *,
               download: bool = True, progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels uint8 (N,)) of MNIST or Fashion-MNIST's `split`.

    `split` is "train" (60,000) or "test" (10,000); `dataset` is "mnist" or "fashion-mnist".
    Files are searched for, verified against their SHA-256 and downloaded if missing as the
    module docstring describes. Raises ChecksumError for a corrupted file,
    DatasetNotFoundError when a file is nowhere and cannot be downloaded, and IDXError for a
    malformed file or images and labels that do not match.
    """
    spec = get_dataset_spec(dataset)
    image_file, label_file = _split_files(spec, split)
    image_path, image_raw = _locate(spec, image_file, root, download, progress)
    label_path, label_raw = _locate(spec, label_file, root, download, progress)
    images = parse_idx(image_raw, str(image_path))
    labels = parse_idx(label_raw, str(label_path))
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != spec.image_shape:
        raise IDXError(f"{image_path}: expected uint8 images of shape (N, {spec.image_shape[0]}, "
                       f"{spec.image_shape[1]}), got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IDXError(f"{label_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise IDXError(f"{spec.title} {split}: {image_path} has {len(images)} images but {label_path} has "
                       f"{len(labels)} labels")
    if labels.size and int(labels.max()) >= spec.num_classes:
        raise IDXError(f"{label_path}: label {int(labels.max())} is out of range for "
                       f"{spec.num_classes} classes")
    return images, labels

"""MNIST, Fashion-MNIST and IDX directories: IDX files, verified loading and download,
batching, augmentation."""

from .augment import RandomAffine, affine_transform
from .dataset import TensorDataset
from .datasets import (
                       DATASETS,
                       ENV_VAR,
                       ChecksumError,
                       DatasetNotFoundError,
                       DatasetSpec,
                       IDXFile,
                       cache_dir,
                       get_dataset_spec,
                       load_mnist,
                       locate_files,
                       search_dirs,
)
from .download import DownloadError, download_file
from .folders import DatasetInfo, describe_dataset, is_known_dataset, load_split
from .idx import IDXError, encode_idx, parse_idx, read_idx, write_idx
from .image_datasets import MNIST, FashionMNIST
from .loader import DataLoader, normalize_images, pixel_scale_shift
from .outliers import not_digits
from .synthetic import fake_images_labels, write_fake_dataset

__all__ = ["DATASETS", "ENV_VAR", "MNIST", "ChecksumError", "DataLoader", "DatasetNotFoundError", "FashionMNIST",
           "TensorDataset",
           "DatasetInfo", "DatasetSpec", "DownloadError", "IDXError", "IDXFile", "RandomAffine", "affine_transform",
           "cache_dir", "describe_dataset", "is_known_dataset", "load_split", "download_file", "encode_idx",
           "fake_images_labels", "get_dataset_spec", "load_mnist", "locate_files", "normalize_images", "not_digits",
           "parse_idx", "pixel_scale_shift", "read_idx", "search_dirs", "write_fake_dataset", "write_idx"]

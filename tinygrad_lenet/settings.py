"""Every environment variable the framework reads, in one place, with its default.

| variable | default | what it sets |
|---|---|---|
| `TINYGRAD_LENET_BLAS_THREADS` | 1 | numpy's BLAS threads inside our forward and backward passes (`runtime`) |
| `TINYGRAD_LENET_NUM_THREADS`, else `OMP_NUM_THREADS` | 1 | threads one convolution may use (`ops.parallel`) |
| `TINYGRAD_LENET_RETAIN_MEMORY` | 1 | 0: glibc malloc keeps its defaults; else freed memory is reused (`runtime`) |
| `TINYGRAD_LENET_DATA` | unset | a directory holding the data sets' IDX files (`data`) |
| `XDG_CACHE_HOME` | `~/.cache` | where downloaded data sets go, under `tinygrad_lenet/` (`data`) |
| `OMPI_COMM_WORLD_SIZE`, `PMIX_SIZE`, `PMI_SIZE` | unset (1) | set by `mpiexec`: the job's ranks (`distributed`) |

Each is read when first needed, not at import, so a program may set them first. A
malformed value is a ValueError naming the variable. The settings they give can
also be changed in code: `runtime.configure(...)`, `ops.parallel.set_num_threads(n)`.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_VARIABLE = "TINYGRAD_LENET_DATA"


def _positive_int(*names: str, default: int) -> int:
    """The first of `names` that is set, as an integer >= 1; else `default`."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"{name}={value!r}: expected an integer >= 1")
            return int(value)
    return default


def blas_threads() -> int:
    """`TINYGRAD_LENET_BLAS_THREADS` (default 1)."""
    return _positive_int("TINYGRAD_LENET_BLAS_THREADS", default=1)


def op_threads() -> int:
    """`TINYGRAD_LENET_NUM_THREADS`, else `OMP_NUM_THREADS` (default 1)."""
    return _positive_int("TINYGRAD_LENET_NUM_THREADS", "OMP_NUM_THREADS", default=1)


def retain_memory() -> bool:
    """Whether freed memory is kept for reuse (`TINYGRAD_LENET_RETAIN_MEMORY`, default on)."""
    return os.environ.get("TINYGRAD_LENET_RETAIN_MEMORY", "").strip() != "0"


def data_dir() -> Path | None:
    """`TINYGRAD_LENET_DATA` as a path, or None when unset."""
    value = os.environ.get(DATA_DIR_VARIABLE)
    return Path(value).expanduser() if value else None


MPI_WORLD_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE")  # Open MPI, PMIx, MPICH's Hydra


def mpi_world_size() -> int:
    """The number of ranks mpiexec started this process among (1 when it did not)."""
    for name in MPI_WORLD_SIZE_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return 1


def cache_home() -> Path:
    """`XDG_CACHE_HOME`, else ~/.cache."""
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"))

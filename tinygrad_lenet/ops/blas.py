"""numpy's BLAS as our ops see it: one thread inside our forward and backward
passes, whatever the process uses, and which kernels it runs.

Our ops parallelize themselves (see `parallel`), and LeNet-sized matrix products are
small: OpenBLAS's own threads spin while they wait and made a training step about 2x
slower in a program that set nothing (more when the other core was busy). So a root
module call and a backward pass run with the BLAS limited to one thread, through
threadpoolctl (a well-kept library that finds the BLAS numpy loaded), and the BLAS's
own setting is restored when they end: other numpy work in the program is untouched.
Setting TINYGRAD_LENET_BLAS_THREADS=N keeps the BLAS at N threads in our passes too.

`has_avx512_kernels()` tells the convolutions which OpenBLAS kernels numpy runs:
their best block shapes differ between the AVX2 and the AVX-512 kernels.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Iterator

_lock = threading.Lock()
_depth = 0
_saved: list[tuple[Any, int]] = []
_controllers: list[Any] | None = None
_avx512: bool | None = None
# OpenBLAS core types whose float32 products run the AVX-512 kernels
_AVX512_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})


def _blas_controllers() -> list[Any]:
    global _controllers
    if _controllers is None:
        try:
            from threadpoolctl import ThreadpoolController
            _controllers = list(ThreadpoolController().select(user_api="blas").lib_controllers)
        except Exception:  # no threadpoolctl, or a BLAS it cannot drive: leave the BLAS alone
            _controllers = []
    return _controllers


def _wanted_threads() -> int:
    value = os.environ.get("TINYGRAD_LENET_BLAS_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 1


@contextlib.contextmanager
def blas_threads_for_our_ops() -> Iterator[None]:
    """The BLAS at TINYGRAD_LENET_BLAS_THREADS (default 1) threads inside the block;
    re-entrant and shared by threads (the first entry sets, the last exit restores)."""
    global _depth
    with _lock:
        if _depth == 0:
            wanted = _wanted_threads()
            for lib in _blas_controllers():
                current = lib.get_num_threads()
                if current != wanted:
                    _saved.append((lib, current))
                    lib.set_num_threads(wanted)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                while _saved:
                    lib, threads = _saved.pop()
                    lib.set_num_threads(threads)


def has_avx512_kernels() -> bool:
    """Whether numpy's BLAS is an OpenBLAS running its AVX-512 kernels (it picks
    them on CPUs it knows to have AVX-512, unless OPENBLAS_CORETYPE says otherwise).
    Looked up once through threadpoolctl; False when it cannot tell."""
    global _avx512
    if _avx512 is None:
        cores = set()
        for lib in _blas_controllers():
            try:
                cores.add(str(lib.info().get("architecture") or "").lower())
            except Exception:  # a controller without the field: it cannot tell
                continue
        _avx512 = bool(cores) and cores <= _AVX512_CORES
    return _avx512

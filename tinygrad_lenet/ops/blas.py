"""numpy's BLAS as our ops see it: its thread count for a block of work, and which
kernels it runs.

`blas_threads(n)` sets the BLAS's threads inside a block, through threadpoolctl (a
well-kept library that finds the BLAS numpy loaded), and restores the BLAS's own
setting when the block ends: other numpy work in the program is untouched. Which
blocks and how many threads is the runtime policy's choice (see `runtime`).

`has_avx512_kernels()` tells the convolutions which OpenBLAS kernels numpy runs:
their best block shapes differ between the AVX2 and the AVX-512 kernels.

`axpy_routine(dtype)` gives y += alpha * x in one pass, the BLAS's own routine, where numpy
needs two (a product into scratch, then a sum): measured 2.2x faster over 57,600
float32 values in cache. The routine is looked up once in the library threadpoolctl
finds under its standard CBLAS name (with the prefix and the 64-bit-integer suffix
numpy's own OpenBLAS build gives it); without it, numpy's two passes do the work.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import Any, Callable, Iterator

import numpy as np

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


@contextlib.contextmanager
def blas_threads(wanted: int) -> Iterator[None]:
    """The BLAS at `wanted` threads inside the block; re-entrant and shared by threads
    (the first entry sets, the last exit restores)."""
    global _depth
    with _lock:
        if _depth == 0:
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


_CBLAS_NAMES = (("scipy_cblas_{}64_", ctypes.c_int64), ("cblas_{}64_", ctypes.c_int64), ("cblas_{}", ctypes.c_int))
_axpy_routines: dict[np.dtype, Callable[..., None] | None] = {}


def _find_axpy(dtype: np.dtype) -> Callable[..., None] | None:
    """The BLAS's cblas_saxpy / cblas_daxpy for `dtype`, as a ctypes function, or None."""
    letter = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}.get(dtype)
    scalar = ctypes.c_float if letter == "s" else ctypes.c_double
    for lib in _blas_controllers() if letter else ():
        handle = getattr(lib, "dynlib", None)
        for pattern, integer in _CBLAS_NAMES:
            routine = getattr(handle, pattern.format(letter + "axpy"), None) if handle is not None else None
            if routine is not None:
                routine.argtypes = (integer, scalar, ctypes.c_void_p, integer, ctypes.c_void_p, integer)
                routine.restype = None
                return routine
    return None


def axpy_routine(dtype: np.dtype) -> Callable[[int, float, int, int], None] | None:
    """The BLAS's axpy for float32 or float64 as `f(n, alpha, x_address, y_address)`:
    y[:n] += alpha * x[:n] over unit-stride data at those addresses (the caller keeps
    the arrays alive and in bounds). None when the BLAS has none numpy's callers can
    reach: then numpy's two passes do the work."""
    dtype = np.dtype(dtype)
    if dtype not in _axpy_routines:
        routine = _find_axpy(dtype)
        _axpy_routines[dtype] = None if routine is None else (lambda n, alpha, x, y: routine(n, alpha, x, 1, y, 1))
    return _axpy_routines[dtype]

"""numpy's BLAS as our ops see it: its thread count for a block of work, and which
kernels it runs.

`blas_threads(n)` sets the BLAS's threads inside a block, through threadpoolctl (a
well-kept library that finds the BLAS numpy loaded), and restores the BLAS's own
setting when the block ends: other numpy work in the program is untouched. Which
blocks and how many threads is the runtime policy's choice (see `runtime`).

`has_avx512_kernels()` tells the convolutions which OpenBLAS kernels numpy runs:
their best block shapes differ between the AVX2 and the AVX-512 kernels.
"""

from __future__ import annotations

import contextlib
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

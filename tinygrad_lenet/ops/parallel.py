"""Intra-op parallelism for the convolution kernels: a few threads share the
blocks of one op. numpy releases the GIL inside copies, ufunc loops and BLAS
calls, so blocks run truly in parallel; Python work between them is small.

Workers take blocks from a shared queue (a busy core simply takes fewer), and
every block writes its own output, so results do not depend on which thread
ran what: they are bit-identical to a single-threaded run.

The thread count is `set_num_threads(n)`, else the environment's (see `settings`:
TINYGRAD_LENET_NUM_THREADS, else OMP_NUM_THREADS, else 1). One is the default
because on a shared machine a second thread only pays off when a core is
idle: measured on 2 busy cores, 2 threads made a LeNet-5 step 25% faster at
best and no faster at the median. Give the BLAS one thread when using more
here (e.g. OPENBLAS_NUM_THREADS=1): its own threads spin while waiting and
stacked on these they oversubscribe the cores.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

from .. import settings

T = TypeVar("T")
R = TypeVar("R")

_num_threads: int | None = None
_executor: ThreadPoolExecutor | None = None
_executor_size = 0
_lock = threading.Lock()


def get_num_threads() -> int:
    """How many threads an op may use (1 = everything runs in the calling thread)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = settings.op_threads()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use up to `n` threads per op from now on."""
    global _num_threads
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected an integer >= 1, got {n!r}")
    _num_threads = n


def _pool(workers: int) -> ThreadPoolExecutor:
    global _executor, _executor_size
    with _lock:
        if _executor is None or _executor_size < workers:
            if _executor is not None:
                _executor.shutdown(wait=True)
            _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tinygrad_lenet")
            _executor_size = workers
        return _executor


def parallel_map(fn: Callable[[T], R], items: Sequence[T], make_state: Callable[[], object] | None = None,
                 max_threads: int | None = None) -> list[R]:
    """[fn(item) for item in items], the items shared out to up to
    get_num_threads() threads (and at most `max_threads`; the calling thread is
    one of them). With `make_state`, each thread calls make_state() once and
    fn(item, state) gets it: per-thread scratch buffers. Results come back in
    item order; an exception in any item is raised here."""
    n_items = len(items)
    threads = min(get_num_threads(), n_items, max_threads or n_items)
    if threads <= 1:
        state = make_state() if make_state is not None else None
        return [fn(it, state) if make_state is not None else fn(it) for it in items]
    results: list = [None] * n_items
    queue: Iterator[int] = iter(range(n_items))  # next() on it is atomic under the GIL

    def work() -> None:
        state = make_state() if make_state is not None else None
        for k in queue:
            results[k] = fn(items[k], state) if make_state is not None else fn(items[k])

    helpers = [_pool(threads - 1).submit(work) for _ in range(threads - 1)]
    try:
        work()
    finally:
        for h in helpers:
            h.result()
    return results

"""Measuring what a test promises about memory: the peak of Python's allocations
(tracemalloc) while a block runs."""

from __future__ import annotations

import contextlib
import tracemalloc
from typing import Iterator


class Peak:
    bytes = 0


@contextlib.contextmanager
def allocation_peak() -> Iterator[Peak]:
    """`with allocation_peak() as peak:` ... then `peak.bytes`: the most bytes that
    Python's allocations held at once inside the block (numpy's arrays included)."""
    peak = Peak()
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

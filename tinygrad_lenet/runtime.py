"""Runtime policy: how the framework's work uses the process, decided in one place.

Applied at two documented points, through `compute_scope()`:
- a root module's forward (`nn.Module.__call__` on a module that is no one's child);
- a backward pass (`Tensor.backward`, `grad`).

What it does there, each switchable with `configure(...)` (defaults from `settings`):
- `blas_threads` (default 1): numpy's BLAS runs at this many threads inside the
  scope and gets its own setting back after. Our ops parallelize themselves
  (`ops.parallel`) and LeNet-sized products are small: OpenBLAS's own threads spin
  while they wait and made a training step about 2x slower in a program that set
  nothing. None leaves the BLAS alone.
- `retain_memory` (default on): the first backward pass asks glibc's malloc to keep
  freed memory for reuse (`memory.retain_freed_memory`): a training step allocates
  about 40 MB of short-lived arrays, which otherwise page-fault back in every step.
  Process-wide and not reversible; the resident size stays at its peak.

The threads of one convolution are `ops.parallel.set_num_threads` (default from
`settings`). Nothing here runs at import.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

from . import memory, settings
from .ops.blas import blas_threads


@dataclass
class Policy:
    blas_threads: int | None
    retain_memory: bool


_policy: Policy | None = None


def policy() -> Policy:
    """The policy in force (read from the environment on first use)."""
    global _policy
    if _policy is None:
        _policy = Policy(blas_threads=settings.blas_threads(), retain_memory=settings.retain_memory())
    return _policy


_UNCHANGED = object()


def configure(blas_threads: int | None | object = _UNCHANGED, retain_memory: bool | object = _UNCHANGED) -> Policy:
    """Change the policy from now on; returns it. `blas_threads=None` leaves the BLAS's
    threads alone inside our passes."""
    current = policy()
    if blas_threads is not _UNCHANGED:
        if blas_threads is not None and (not isinstance(blas_threads, int) or isinstance(blas_threads, bool)
                                         or blas_threads < 1):
            raise ValueError(f"configure: blas_threads must be an integer >= 1 or None, got {blas_threads!r}")
        current.blas_threads = blas_threads  # type: ignore[assignment]
    if retain_memory is not _UNCHANGED:
        current.retain_memory = bool(retain_memory)
    return current


@contextlib.contextmanager
def compute_scope(backward: bool = False) -> Iterator[None]:
    """The policy around a root forward (`backward=False`) or a backward pass."""
    current = policy()
    if backward and current.retain_memory and not memory.freed_memory_retained():
        memory.retain_freed_memory()
    if current.blas_threads is None:
        yield
        return
    with blas_threads(current.blas_threads):
        yield

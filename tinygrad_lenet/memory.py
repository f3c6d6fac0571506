"""Keep freed memory in the process so new arrays do not page-fault it back in.

By default glibc gives large freed blocks back to the operating system (each
array above a dynamic threshold gets its own mmap, and free space at the top of
the heap is trimmed). A LeNet-5 training step allocates about 40 MB of
short-lived arrays (patch matrices, activations, gradients), so every step then
faults ~4,000 fresh zero-filled pages in again; on the 2-core reference machine
that took about 40% of the step. `retain_freed_memory()` switches all of it off:
no array gets its own mapping, whatever its size, and the heap is never trimmed,
so freed blocks return to malloc's free lists and the next step reuses them.
Arrays above 32 MiB matter too: evaluating PyTorch's MNIST example network on a
batch of 1,000 images allocates several of 86-240 MB, and with a mapping each it
took 0.5-1.6 s a batch (with training steps between batches) against 0.41 s
reused. The cost is that the resident size stays at its peak instead of shrinking
between steps (it still stays flat across steps and epochs).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
# glibc refuses mmap thresholds above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit), so
# larger arrays are kept off their own mappings by allowing none (M_MMAP_MAX 0).
# Setting the threshold as well keeps glibc from moving it on its own.
_MMAP_THRESHOLD = 32 * 1024 * 1024
_NEVER_TRIM = 2**31 - 1

_retained = False


def retain_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse (no per-array mmap, no heap
    trimming). Returns True if applied, False where malloc is
    not glibc's (then nothing changes). Process-wide and not reversible, so call
    it once at the start of a training or benchmark script."""
    global _retained
    if _retained:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; musl and others lack it or ignore it
    _retained = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM)) \
        and bool(mallopt(_M_MMAP_MAX, 0))
    return _retained


def freed_memory_retained() -> bool:
    """Whether retain_freed_memory() has been applied in this process."""
    return _retained

"""Memory order of arrays. Convolutions hand on batch-innermost arrays (see
`conv`); elementwise and pooling kernels work in whatever order their input
has, because numpy's loops are fastest along memory, not along the last axis."""

from __future__ import annotations

import numpy as np


def memory_order(x: np.ndarray) -> tuple[int, ...]:
    """x's axes from the slowest-varying in memory to the fastest."""
    return tuple(sorted(range(x.ndim), key=lambda a: -abs(x.strides[a])))


def in_memory_order_of(like: np.ndarray, a: np.ndarray) -> np.ndarray:
    """`a`, copied into `like`'s memory order if it differs: elementwise work on
    two arrays laid out differently runs several times slower."""
    if a.ndim < 2 or memory_order(a) == memory_order(like):
        return a
    out = np.empty_like(like, dtype=a.dtype)
    out[...] = a
    return out


_BATCH_BLOCK = 16  # samples per block: 64 bytes of float32, a cache line


def copy_batch_innermost(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """`out[..., n] = x[n]`: (N, ...) `x` copied into `out`, whose batch axis is last.
    When x has its batch axis outermost in memory, block by block of 16 samples, so
    each cache line read is used whole (measured 4.5x faster than one assignment on a
    (64, 32, 28, 28) batch); otherwise as one assignment, which then reads along memory."""
    moved = np.moveaxis(x, 0, -1)
    if x.ndim < 2 or memory_order(x)[-1] == 0:
        out[...] = moved
        return out
    for s in range(0, x.shape[0], _BATCH_BLOCK):
        out[..., s:s + _BATCH_BLOCK] = moved[..., s:s + _BATCH_BLOCK]
    return out


def relu_array(x: np.ndarray, in_place: bool = False) -> np.ndarray:
    """np.maximum(x, 0) in x's memory order (into x itself with `in_place`). numpy's
    loop for an array against a scalar or a broadcast row is not vectorized, against
    an array of zeros it is (measured 1.9x faster on a (64, 32, 28, 28) batch)."""
    if x.dtype.kind != "f" or x.ndim == 0 or x.size < 1024:
        return np.maximum(x, x.dtype.type(0), out=x if in_place else None)
    order = memory_order(x)
    in_memory = x.transpose(order)
    zeros = zero_array(in_memory.shape, x.dtype)
    return np.maximum(in_memory, zeros, out=in_memory if in_place else None).transpose(np.argsort(order))


_zeros: dict[np.dtype, np.ndarray] = {}


def zero_array(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A read-only contiguous array of zeros: a view of one buffer per dtype, kept and
    grown to the largest size asked for, so elementwise kernels can compare against
    an array without writing zeros each time."""
    size = int(np.prod(shape))
    buffer = _zeros.get(np.dtype(dtype))
    if buffer is None or buffer.size < size:
        buffer = np.zeros(size, dtype=dtype)
        buffer.flags.writeable = False
        _zeros[np.dtype(dtype)] = buffer
    return buffer[:size].reshape(shape)

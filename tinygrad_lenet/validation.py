"""Argument checks shared by Tensor methods, functional and nn: one home for each
rule, each error naming the op, the argument and what it got."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import DimError, ShapeError

Axis = int | tuple[int, ...] | None


def normalize_axis(axis: Axis, ndim: int, op: str) -> Any:
    """Axes as non-negative ints: an int stays an int, a sequence becomes a sorted
    tuple, None stays None. A 0-d tensor accepts axis 0 and -1 (as numpy does)."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    bound = max(ndim, 1)
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -bound <= a < bound:
            raise DimError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % bound)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: repeated axis in {axis}")
    if isinstance(axis, (int, np.integer)):
        return out[0]
    return tuple(sorted(out))


def reduction_axis(axis: Axis, ndim: int, op: str) -> Any:
    """`normalize_axis` for reductions: on a 0-d tensor axis 0 or -1 reduces over
    nothing, i.e. over all (None), as in PyTorch."""
    out = normalize_axis(axis, ndim, op)
    return None if ndim == 0 else out


def resolve_shape(old: tuple[int, ...], new: tuple[int, ...], op: str = "reshape") -> tuple[int, ...]:
    """`new` with a single -1 filled in; ShapeError if the sizes do not match."""
    try:
        new = tuple(int(n) for n in new)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: target shape must be integers, got {new!r}") from None
    size = int(np.prod(old))
    if new.count(-1) > 1 or any(n < -1 for n in new):
        raise ShapeError(f"{op}: invalid target shape {new} for tensor of shape {old}")
    if -1 in new:
        rest = int(np.prod([n for n in new if n != -1]))
        if rest == 0 or size % rest:
            raise ShapeError(f"{op}: cannot reshape tensor of shape {old} into {new}")
        new = tuple(size // rest if n == -1 else n for n in new)
    if int(np.prod(new)) != size:
        raise ShapeError(f"{op}: cannot reshape tensor of shape {old} into {new}")
    return new


def int_pair(value: Any, op: str, what: str) -> tuple[int, int]:
    """An int or a pair of ints as a pair (kernel sizes, strides, paddings)."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{op}: {what} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def check_positive(op: str, **values: Any) -> None:
    """ValueError unless every value is a positive int (a layer's sizes), naming op and argument."""
    for what, v in values.items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{op}: {what} must be a positive int, got {v!r}")


def check_label_smoothing(op: str, value: Any) -> None:
    """ValueError unless a label smoothing is a number in [0, 1], naming the op."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {value!r}")


def same_float_dtype(op: str, *tensors: Any) -> None:
    """TypeError when the given tensors (None skipped) mix float32 and float64."""
    dtypes = {t.dtype for t in tensors if t is not None}
    if len(dtypes) > 1:
        raise TypeError(f"{op}: dtype mismatch {sorted(map(str, dtypes))}; convert with .float() or .double()")


def same_kind(current: Any, saved: Any) -> bool:
    """Whether a value read from a file can replace `current`: finite numbers for
    numbers (whole ones for ints), bools for bools, strings for strings, lists of the same length and
    kinds for lists and tuples, dicts for dicts; None replaces None or a number."""
    if isinstance(current, bool) or isinstance(saved, bool):
        return isinstance(current, bool) and isinstance(saved, bool)
    if isinstance(current, (int, float)) or current is None:
        if saved is None:
            return current is None or isinstance(current, float)
        if not isinstance(saved, (int, float)) or not math.isfinite(saved):
            return False
        return not isinstance(current, int) or float(saved).is_integer()
    if isinstance(current, str):
        return isinstance(saved, str)
    if isinstance(current, (list, tuple)):
        return (isinstance(saved, (list, tuple)) and len(saved) == len(current)
                and all(same_kind(c, s) for c, s in zip(current, saved)))
    if isinstance(current, dict):
        return isinstance(saved, dict)
    return type(saved) is type(current)

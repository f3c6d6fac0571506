"""Hypothesis strategies for op tests: small shapes (so a full Jacobian stays
cheap), conv/pool geometries, and float64 values kept away from the points
where an op is not differentiable (kinks, ties, poles), so that central
differences with eps=1e-6 measure the true derivative."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

Shape = tuple[int, ...]
MAX_SIDE = 4


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = MAX_SIDE) -> st.SearchStrategy[Shape]:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcast_pairs(max_dims: int = 3, max_side: int = MAX_SIDE) -> st.SearchStrategy[tuple[Shape, Shape]]:
    """Two shapes numpy can broadcast together, e.g. (3, 1) and (2, 1, 4), or () and (2,)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=max_dims,
                                             min_side=1, max_side=max_side).map(lambda r: r.input_shapes)


def smooth(shape: Shape, bound: float = 2.0) -> st.SearchStrategy[np.ndarray]:
    """Any values in [-bound, bound], for ops that are smooth everywhere."""
    return hnp.arrays(np.float64, shape, elements=st.floats(-bound, bound, allow_subnormal=False))


def away_from_zero(shape: Shape, low: float = 0.2, high: float = 2.0,
                   positive: bool = False) -> st.SearchStrategy[np.ndarray]:
    """Values with low <= |x| <= high (only positive ones if `positive`), for relu,
    log, sqrt, division and negative powers."""
    mag = st.floats(low, high)
    elements = mag if positive else mag | mag.map(lambda v: -v)
    return hnp.arrays(np.float64, shape, elements=elements)


def without_ties(shape: Shape, spacing: float = 0.1, offset: float = 0.0) -> st.SearchStrategy[np.ndarray]:
    """Distinct values on the grid spacing * k + offset (|k| <= 200): no two
    elements are closer than `spacing`, so max/argmax never sit on a tie. Two
    arrays drawn with offsets differing by spacing/2 never tie with each other."""
    return hnp.arrays(np.int64, shape, elements=st.integers(-200, 200), unique=True).map(
        lambda k: k * spacing + offset)


def axes(ndim: int) -> st.SearchStrategy[Any]:
    """A reduction axis argument: None, one axis (possibly negative) or a tuple of
    distinct axes (possibly empty). A 0-d tensor takes axis 0 or -1 too, as in PyTorch."""
    if ndim == 0:
        return st.sampled_from([None, 0, -1, (0,), (-1,), ()])
    one = st.integers(-ndim, ndim - 1)
    several = st.lists(one, unique_by=lambda a: a % ndim, max_size=ndim).map(tuple)
    return st.none() | one | several


def numpy_axis(axis: Any, ndim: int) -> Any:
    """The axis numpy needs for the same reduction (numpy refuses axis 0 of a 0-d array)."""
    return None if ndim == 0 else axis


def int_or_pair(values: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    """An int or an (h, w) pair, as conv/pool hyperparameters accept."""
    return values | st.tuples(values, values)


def pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


@st.composite
def conv2d_geometry(draw: st.DrawFn) -> dict[str, Any]:
    """Shapes and hyperparameters of a valid small conv2d: x (N, C, H, W),
    weight (O, C, kh, kw), stride and padding (each an int or a pair)."""
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, padding = draw(int_or_pair(st.integers(1, 2))), draw(int_or_pair(st.integers(0, 1)))
    (ph, pw) = pair(padding)
    h = draw(st.integers(max(1, kh - 2 * ph), 5))
    w = draw(st.integers(max(1, kw - 2 * pw), 5))
    return dict(x_shape=(n, c, h, w), w_shape=(o, c, kh, kw), stride=stride, padding=padding)


@st.composite
def pool2d_geometry(draw: st.DrawFn) -> dict[str, Any]:
    """Shape, kernel and stride of a valid small pooling; stride may be smaller
    than the kernel (overlapping windows), equal, larger, or None (= kernel)."""
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = draw(int_or_pair(st.integers(1, 3)))
    kh, kw = pair(kernel)
    stride = draw(st.none() | int_or_pair(st.integers(1, 3)))
    h, w = draw(st.integers(kh, kh + 3)), draw(st.integers(kw, kw + 3))
    return dict(x_shape=(n, c, h, w), kernel_size=kernel, stride=stride)


@st.composite
def reshape_targets(draw: st.DrawFn, size: int) -> tuple[int, ...]:
    """A shape with `size` elements, sometimes with one dimension given as -1."""
    dims, rest = [], size
    for _ in range(draw(st.integers(0, 2))):
        d = draw(st.sampled_from([k for k in range(1, rest + 1) if rest % k == 0]))
        dims.append(d)
        rest //= d
    dims.append(rest)
    dims = draw(st.permutations(dims))
    if draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    return tuple(dims)


@st.composite
def broadcast_targets(draw: st.DrawFn) -> tuple[Shape, Shape]:
    """(shape, target) where `shape` broadcasts to `target`: a suffix of the
    target with some dimensions set to 1."""
    target = draw(shapes(0, 3))
    keep = draw(st.integers(0, len(target)))
    base = tuple(1 if draw(st.booleans()) else s for s in target[len(target) - keep:])
    return base, target


def class_targets(n: int, classes: int) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.int64, (n,), elements=st.integers(0, classes - 1))

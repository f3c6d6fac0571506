"""The error function: scipy's exact one for float64, and for float32 a numpy formula
about 1.6x faster than scipy's float32 erf (15 against 24 ms on 1.6M values), exact to
float32 rounding.

For float32, |x| < 0.5 uses erf's Taylor series (x times a polynomial in x^2, so small
values keep their relative accuracy), and elsewhere erf(|x|) = 1 - t exp(-x^2) P(t) with
t = 1 / (1 + 0.3 |x|), P a degree-10 polynomial fitted here by least squares
to scipy's erfc in float64 on first use (its largest error there is below 1e-10;
float32's rounding, about 6e-8, is what remains).
"""

from __future__ import annotations

import functools
import math

import numpy as np

_T_SCALE = 0.3
_SERIES = np.array([(-1) ** n / (math.factorial(n) * (2 * n + 1)) * 2 / math.sqrt(math.pi) for n in range(7)])


@functools.cache
def _tail() -> np.ndarray:
    """P's float32 coefficients (highest power first): erfc(x) exp(x^2) / t as a
    polynomial in t, fitted on first use (scipy is imported only when erf is needed)."""
    from scipy.special import erfc
    x = np.linspace(0.0, 9.0, 200_001)
    t = 1.0 / (1.0 + _T_SCALE * x)
    return np.polynomial.polynomial.polyfit(t, erfc(x) * np.exp(x * x) / t, 10)[::-1].astype(np.float32)


_SERIES32 = _SERIES[::-1].astype(np.float32)


CHUNK = 65_536  # elements per block: its temporaries stay small (256 KiB each)


def erf(x: np.ndarray) -> np.ndarray:
    """erf of an array: float32 in, float32 out (the formula above, block by block);
    otherwise scipy's."""
    if x.dtype != np.float32:
        from scipy.special import erf as exact
        return np.asarray(exact(x))
    return blockwise(x, _erf32, CHUNK)


def blockwise(x: np.ndarray, kernel, chunk: int) -> np.ndarray:
    """`kernel(block, out_block)` over 1-D blocks of `x` taken in memory order, into an
    array of x's memory layout: a batch-innermost (N, C, H, W) view, as the convolutions
    hand on, is read and written as it lies, without a transposing copy."""
    flat = x.ravel(order="K")
    if not np.shares_memory(flat, x):  # not one dense block: made one
        x = np.ascontiguousarray(x)
        flat = x.reshape(-1)
    out = np.empty_like(x)
    flat_out = out.ravel(order="K")
    for start in range(0, flat.size, chunk):
        kernel(flat[start:start + chunk], flat_out[start:start + chunk])
    return out


def _erf32(x: np.ndarray, out: np.ndarray) -> None:
    """`out` = erf(x) for 1-D float32 blocks, every step in place."""
    a = np.abs(x)
    t = np.multiply(a, np.float32(_T_SCALE))
    t += np.float32(1)
    np.reciprocal(t, out=t)
    tail = _tail()
    out[:] = tail[0]
    for c in tail[1:]:  # Horner
        out *= t
        out += c
    out *= t
    np.square(a, out=a)  # |x|^2 from here
    np.negative(a, out=t)
    np.exp(t, out=t)
    out *= t
    np.subtract(np.float32(1), out, out=out)
    np.copysign(out, x, out=out)
    small = a < np.float32(0.25)  # |x| < 0.5: the series, x times a polynomial in x^2
    if small.any():
        series = np.full_like(a, _SERIES32[0])
        for c in _SERIES32[1:]:
            series *= a
            series += c
        series *= x
        np.copyto(out, series, where=small)


# The standard normal CDF Phi for float32, from a table: Phi and its first two
# derivatives at the grid points k / _CDF_STEPS, |k / _CDF_STEPS| <= _CDF_LIMIT, and a
# quadratic Taylor step to x. The step is a power of 2, so x * _CDF_STEPS, its nearest
# integer and the remainder are exact in float32; the Taylor term left out is below
# 1e-11 (relative: 3e-8 at x = -11, where Phi is 2e-28). Beyond the grid Phi is 0 or 1
# in float32 (Phi(-14) = 7.8e-45 is float32's smallest number), and the grid's two ends
# are set to exactly 0 and 1, so that -inf * Phi is NaN, as through erf. The derivative
# columns are scaled to the remainder in grid steps, so the step is not rescaled. Three
# gathers from a 344 KiB table measured faster than four from a cubic step's 57 KiB.
_CDF_STEPS = 1024
_CDF_LIMIT = 14


@functools.cache
def _cdf_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Phi'' / 2 / STEPS^2, Phi' / STEPS, Phi) at the grid points, float32."""
    g = np.arange(-_CDF_LIMIT * _CDF_STEPS, _CDF_LIMIT * _CDF_STEPS + 1) / _CDF_STEPS
    pdf = np.exp(-g * g / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * np.array([math.erfc(v) for v in -g / math.sqrt(2)])
    tables = [-g * pdf / 2 / _CDF_STEPS**2, pdf / _CDF_STEPS, cdf]
    for t, edge in zip(tables, (0.0, 0.0, 1.0)):
        t[0], t[-1] = 0.0, edge
    return tuple(t.astype(np.float32) for t in tables)  # type: ignore[return-value]


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Phi(x), the standard normal CDF: float32 from the table above, block by block (about
    3x faster than through erf, and accurate in the left tail, where 1 + erf(x / sqrt 2)
    cancels: relative error 1.3e-7 against 1.4e-2 where Phi > 1e-6); other dtypes
    through scipy's ndtr."""
    if x.dtype != np.float32:
        from scipy.special import ndtr
        return np.asarray(ndtr(x))
    return blockwise(x, _cdf32, CHUNK)


def _cdf32(x: np.ndarray, out: np.ndarray) -> None:
    """`out` = Phi(x) for 1-D float32 blocks. The grid index goes through int32 (numpy's
    float-to-intp conversion is 3x slower); NaN, clipped to no index, gets any valid one
    (mode "wrap"), and its remainder, NaN, makes the result NaN."""
    c2, c1, c0 = _cdf_tables()
    limit = _CDF_LIMIT * _CDF_STEPS
    u = np.multiply(x, np.float32(_CDF_STEPS))
    np.clip(u, -limit, limit, out=u)
    k = np.rint(u)
    with np.errstate(invalid="ignore"):
        index32 = k.astype(np.int32)
    index32 += limit
    index = index32.astype(np.intp)
    u -= k  # the remainder, in grid steps: exact
    gathered = np.empty_like(out)
    np.take(c2, index, out=out, mode="wrap")
    for c in (c1, c0):
        out *= u
        out += np.take(c, index, out=gathered, mode="wrap")

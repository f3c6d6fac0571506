"""Forward values (and, for pooling, gradient routing) against plain numpy
references written as direct loops, independent of the im2col/window code."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import strategies as S
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_lenet import Tensor
from tinygrad_lenet import functional as F


# ------------------------------------------------------------------ loop references
def conv2d_loops(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Any, padding: Any) -> np.ndarray:
    (sh, sw), (ph, pw) = S.pair(stride), S.pair(padding)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, o, ho, wo))
    for b_ in range(n):
        for o_ in range(o):
            for i in range(ho):
                for j in range(wo):
                    acc = 0.0 if b is None else b[o_]
                    for c_ in range(c):
                        for di in range(kh):
                            for dj in range(kw):
                                r, s = i * sh + di - ph, j * sw + dj - pw
                                if 0 <= r < h and 0 <= s < wd:
                                    acc += x[b_, c_, r, s] * w[o_, c_, di, dj]
                    out[b_, o_, i, j] = acc
    return out


def pool_windows(x_shape: tuple[int, ...], kernel: Any, stride: Any):
    """Yield (n, c, i, j, rows, cols) for every pooling window."""
    (kh, kw) = S.pair(kernel)
    (sh, sw) = S.pair(kernel if stride is None else stride)
    n, c, h, w = x_shape
    for b in range(n):
        for ch in range(c):
            for i in range((h - kh) // sh + 1):
                for j in range((w - kw) // sw + 1):
                    yield b, ch, i, j, slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)


def max_pool_loops(x: np.ndarray, grad: np.ndarray, kernel: Any, stride: Any) -> tuple[np.ndarray, np.ndarray]:
    """Forward, and backward where each window's gradient goes to its first maximum (row-major)."""
    out, gx = np.zeros(grad.shape), np.zeros(x.shape)
    for b, ch, i, j, rows, cols in pool_windows(x.shape, kernel, stride):
        win = x[b, ch, rows, cols]
        out[b, ch, i, j] = win.max()
        first = None
        for r in range(win.shape[0]):
            for s in range(win.shape[1]):
                if first is None and win[r, s] == win.max():
                    first = (r, s)
        gx[b, ch, rows.start + first[0], cols.start + first[1]] += grad[b, ch, i, j]
    return out, gx


def avg_pool_loops(x: np.ndarray, grad: np.ndarray, kernel: Any, stride: Any) -> tuple[np.ndarray, np.ndarray]:
    out, gx = np.zeros(grad.shape), np.zeros(x.shape)
    for b, ch, i, j, rows, cols in pool_windows(x.shape, kernel, stride):
        win = x[b, ch, rows, cols]
        out[b, ch, i, j] = win.sum() / win.size
        gx[b, ch, rows, cols] += grad[b, ch, i, j] / win.size
    return out, gx


def pool_output_shape(x_shape: tuple[int, ...], kernel: Any, stride: Any) -> tuple[int, ...]:
    (kh, kw), (sh, sw) = S.pair(kernel), S.pair(kernel if stride is None else stride)
    return x_shape[:2] + ((x_shape[2] - kh) // sh + 1, (x_shape[3] - kw) // sw + 1)


def log_softmax_ref(x: np.ndarray, axis: int) -> np.ndarray:
    return x - np.log(np.sum(np.exp(x), axis=axis, keepdims=True))


# ------------------------------------------------------------------ conv2d
def test_conv2d_hand_computed() -> None:
    x = Tensor(np.arange(9.0).reshape(1, 1, 3, 3))
    w = Tensor(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(F.conv2d(x, w, Tensor([1.0])).data, [[[[9.0, 13.0], [21.0, 25.0]]]])
    # padding 1, stride 2: corners of the zero-padded input
    np.testing.assert_array_equal(F.conv2d(x, w, stride=2, padding=1).data, [[[[0.0, 3.0], [9.0, 24.0]]]])


@given(g=S.conv2d_geometry(), data=st.data())
def test_conv2d_matches_loops(g: dict, data: st.DataObject) -> None:
    x, w = data.draw(S.smooth(g["x_shape"])), data.draw(S.smooth(g["w_shape"]))
    b = data.draw(st.none() | S.smooth(g["w_shape"][:1]))
    expected = conv2d_loops(x, w, b, g["stride"], g["padding"])
    bt = None if b is None else Tensor(b, dtype=np.float64)
    out = F.conv2d(Tensor(x, dtype=np.float64), Tensor(w, dtype=np.float64), bt, g["stride"], g["padding"])
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    out32 = F.conv2d(Tensor(x), Tensor(w), None if b is None else Tensor(b), g["stride"], g["padding"])
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32.data, expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ pooling
def test_max_pool_ties_send_the_gradient_to_the_first_maximum() -> None:
    x = Tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    out = F.max_pool2d(x, 2, stride=1)  # four overlapping windows, every element tied
    out.backward(np.ones(out.shape, dtype=np.float32))
    np.testing.assert_array_equal(x.grad[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


@given(g=S.pool2d_geometry(), data=st.data())
def test_max_pool_matches_loops_with_ties(g: dict, data: st.DataObject) -> None:
    # few distinct values: many ties inside windows
    x = data.draw(hnp.arrays(np.int64, g["x_shape"], elements=st.integers(0, 2))).astype(np.float64)
    k, s = g["kernel_size"], g["stride"]
    grad = data.draw(S.smooth(pool_output_shape(x.shape, k, s)))
    ref_out, ref_gx = max_pool_loops(x, grad, k, s)
    t = Tensor(x, requires_grad=True, dtype=np.float64)
    out = F.max_pool2d(t, k, s)
    out.backward(grad)
    np.testing.assert_array_equal(out.data, ref_out)
    np.testing.assert_allclose(t.grad, ref_gx, rtol=1e-12, atol=1e-12)


@given(g=S.pool2d_geometry(), data=st.data())
def test_avg_pool_matches_loops(g: dict, data: st.DataObject) -> None:
    x = data.draw(S.smooth(g["x_shape"]))
    k, s = g["kernel_size"], g["stride"]
    grad = data.draw(S.smooth(pool_output_shape(x.shape, k, s)))
    ref_out, ref_gx = avg_pool_loops(x, grad, k, s)
    t = Tensor(x, requires_grad=True, dtype=np.float64)
    out = F.avg_pool2d(t, k, s)
    out.backward(grad)
    np.testing.assert_allclose(out.data, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t.grad, ref_gx, rtol=1e-12, atol=1e-12)


def test_pooling_floors_the_output_size() -> None:
    x = Tensor(np.arange(25.0).reshape(1, 1, 5, 5))
    np.testing.assert_array_equal(F.max_pool2d(x, 2).data, [[[[6.0, 8.0], [16.0, 18.0]]]])
    np.testing.assert_array_equal(F.avg_pool2d(x, 2).data, [[[[3.0, 5.0], [13.0, 15.0]]]])


# ------------------------------------------------------------------ softmax family
@given(data=st.data())
def test_softmax_and_log_softmax_match_numpy(data: st.DataObject) -> None:
    x = data.draw(S.smooth(data.draw(S.shapes(min_dims=1)), bound=5.0))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    t = Tensor(x, dtype=np.float64)
    ref = log_softmax_ref(x, axis)
    np.testing.assert_allclose(t.log_softmax(axis).data, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.softmax(t, axis).data, np.exp(ref), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.softmax(t, axis).data.sum(axis=axis), 1.0, rtol=1e-12)
    # shift invariance, also far beyond where exp overflows
    np.testing.assert_allclose(F.log_softmax(t + 1000.0, axis).data, ref, atol=1e-9)


@given(data=st.data())
def test_logsumexp_matches_numpy(data: st.DataObject) -> None:
    x = data.draw(S.smooth(data.draw(S.shapes()), bound=5.0))
    axis, keepdims = data.draw(S.axes(x.ndim)), data.draw(st.booleans())
    out = Tensor(x, dtype=np.float64).logsumexp(axis=axis, keepdims=keepdims)
    ref = np.log(np.sum(np.exp(x), axis=S.numpy_axis(axis, x.ndim), keepdims=keepdims))
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.data, ref, rtol=1e-12, atol=1e-12)


def test_logsumexp_of_minus_infinity_is_minus_infinity_without_warnings() -> None:
    x = Tensor([[-np.inf, -np.inf], [-np.inf, 0.0]], requires_grad=True)
    out = x.logsumexp(axis=1)
    np.testing.assert_array_equal(out.data, [-np.inf, 0.0])
    out[1].backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 0.0], [0.0, 1.0]])
    assert Tensor([np.inf, 0.0]).logsumexp().item() == np.inf


@given(data=st.data())
def test_cross_entropy_and_nll_loss_match_numpy(data: st.DataObject) -> None:
    n, c = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    x = data.draw(S.smooth((n, c), bound=5.0))
    targets = data.draw(S.class_targets(n, c))
    ref = -np.mean(log_softmax_ref(x, 1)[np.arange(n), targets])
    t = Tensor(x, dtype=np.float64)
    ce = F.cross_entropy(t, targets)
    assert ce.shape == () and ce.dtype == np.float64
    np.testing.assert_allclose(ce.item(), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(t, 1), Tensor(targets)).item(), ref, rtol=1e-12, atol=1e-12)
    assert F.cross_entropy(Tensor(x), targets).dtype == np.float32


@given(data=st.data())
def test_fused_label_smoothing_matches_its_definition_and_the_composite_path(data: st.DataObject) -> None:
    """The fused op with label smoothing against (1 - e) NLL + e * mean over classes of
    -log p, and against the composite path (taken when class weights are given)."""
    n, c = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    x = data.draw(S.smooth((n, c), bound=5.0))
    targets = data.draw(S.class_targets(n, c))
    eps = data.draw(st.floats(0.0, 1.0))
    logp = log_softmax_ref(x, 1)
    ref = np.mean((1 - eps) * -logp[np.arange(n), targets] + eps * -logp.mean(axis=1))
    fused_in = Tensor(x, dtype=np.float64, requires_grad=True)
    composite_in = Tensor(x, dtype=np.float64, requires_grad=True)
    fused = F.cross_entropy(fused_in, targets, label_smoothing=eps)
    composite = F.cross_entropy(composite_in, targets, weight=np.ones(c), label_smoothing=eps)
    assert fused.grad_fn.op == "cross_entropy" and composite.grad_fn.op != "cross_entropy"
    np.testing.assert_allclose(fused.item(), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(composite.item(), ref, rtol=1e-12, atol=1e-12)
    fused.backward()
    composite.backward()
    np.testing.assert_allclose(fused_in.grad, composite_in.grad, rtol=1e-10, atol=1e-12)
    for bad_smoothing in (
        lambda: Tensor(x).cross_entropy(targets, label_smoothing=1.5),
        lambda: F.cross_entropy(Tensor(x), targets, label_smoothing=-0.1),  # the fused op
        lambda: F.cross_entropy(Tensor(x), targets, weight=np.ones(c), label_smoothing=2.0),  # the composite path
    ):
        with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be in \[0, 1\]"):
            bad_smoothing()


def test_mse_loss_matches_numpy() -> None:
    a, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 2.0], [5.0, 1.0]])
    assert F.mse_loss(Tensor(a), b).item() == pytest.approx((1 + 0 + 4 + 9) / 4)


# ------------------------------------------------------------------ documented tie rules
def test_max_reduction_splits_the_gradient_evenly_among_ties() -> None:
    x = Tensor([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [1, 0, 0]])


def test_max_reduction_sends_the_gradient_to_nan_and_reduces_empty_batches() -> None:
    x = Tensor([[1.0, np.nan, 3.0, np.nan], [2.0, 0.0, -1.0, 1.0]], requires_grad=True)
    out = x.max(axis=1)
    assert np.isnan(out.data[0]) and out.data[1] == 2.0
    out.backward(np.ones(2, dtype=np.float32))  # a NaN maximum is a tie among the NaNs, split evenly
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0, 0.5], [1, 0, 0, 0]])
    assert Tensor(np.zeros((0, 3))).max(axis=1).shape == (0,)  # nothing to reduce per row: fine
    with pytest.raises(ValueError, match=r"max: cannot reduce over an empty axis \(tensor shape \(3, 0\), axis 1\)"):
        Tensor(np.zeros((3, 0))).max(axis=1)


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_elementwise_extremum_splits_ties_in_half(op: str) -> None:
    a, b = Tensor([1.0, 2.0, 5.0], requires_grad=True), Tensor([1.0, 3.0, 4.0], requires_grad=True)
    getattr(a, op)(b).sum().backward()
    wins_a = [0.5, 0.0, 1.0] if op == "maximum" else [0.5, 1.0, 0.0]
    np.testing.assert_array_equal(a.grad, wins_a)
    np.testing.assert_array_equal(b.grad, 1 - np.array(wins_a))


# ------------------------------------------------------------------ elementwise and dropout
POSITIVE = np.array([0.25, 0.5, 1.0, 2.0, 3.0])
SIGNED = np.concatenate([POSITIVE, -POSITIVE])


@pytest.mark.parametrize("method, ref, x", [
    ("exp", np.exp, SIGNED), ("log", np.log, POSITIVE), ("sqrt", np.sqrt, POSITIVE), ("tanh", np.tanh, SIGNED),
    ("relu", lambda v: np.maximum(v, 0), SIGNED), ("sigmoid", lambda v: 1 / (1 + np.exp(-v)), SIGNED),
    ("__neg__", np.negative, SIGNED)])
def test_unary_ops_match_numpy(method: str, ref: Any, x: np.ndarray) -> None:
    np.testing.assert_allclose(getattr(Tensor(x, dtype=np.float64), method)().data, ref(x), rtol=1e-12)


def test_pow_with_exponent_zero_has_zero_gradient_even_at_zero() -> None:
    x = Tensor([0.0, 2.0], requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_sigmoid_of_huge_inputs_is_exact_and_silent() -> None:
    np.testing.assert_array_equal(Tensor([-1e4, 0.0, 1e4]).sigmoid().data, [0.0, 0.5, 1.0])


def test_dropout_is_reproducible_scaled_and_off_in_eval() -> None:
    x = Tensor(np.ones((100, 100)))
    a = F.dropout(x, 0.3, generator=np.random.default_rng(7)).data
    b = F.dropout(x, 0.3, generator=np.random.default_rng(7)).data
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, np.float32(1 / 0.7)}
    assert abs((a == 0).mean() - 0.3) < 0.03
    assert F.dropout(x, 0.3, training=False) is x and F.dropout(x, 0.0) is x
    assert not F.dropout(x, 1.0).data.any()


def test_float32_erf_is_exact_to_float32_rounding():
    """ops.special.erf's float32 formula against scipy's float64 erf: absolute error
    within 4 float32 ulps of 1, relative error within 1e-6 (small values keep theirs)."""
    from scipy.special import erf as exact

    from tinygrad_lenet.ops.special import erf
    x = np.concatenate([np.linspace(-9, 9, 400_001), np.logspace(-38, 1, 4001), -np.logspace(-38, 1, 4001)])
    x32 = x.astype(np.float32)
    got, want = erf(x32), exact(x32.astype(np.float64))
    assert got.dtype == np.float32
    assert np.abs(got - want).max() <= 3e-7
    assert (np.abs(got - want) / np.maximum(np.abs(want), 1e-38)).max() <= 1e-6
    specials = erf(np.array([np.inf, -np.inf, np.nan, 0.0, -0.0], np.float32))
    assert specials[0] == 1 and specials[1] == -1 and np.isnan(specials[2]) and specials[3] == 0
    assert np.signbit(specials[4])
    np.testing.assert_array_equal(erf(x), exact(x))  # float64: scipy's own


def test_float32_normal_cdf_and_exact_gelu_are_accurate_into_the_left_tail():
    """ops.special.normal_cdf's float32 table against scipy's float64 ndtr: absolute error
    within one float32 ulp of 1 everywhere, relative error within 2e-7 wherever Phi > 1e-30
    (where 1 + erf(x / sqrt 2) in float32 cancels to nothing); so exact GELU is accurate for
    negative inputs too. inf, -inf and NaN behave as x * Phi(x) says."""
    from scipy.special import ndtr

    from tinygrad_lenet.ops.special import normal_cdf
    x32 = np.concatenate([np.linspace(-10, 10, 400_001), np.logspace(-38, 1.6, 4001),
                          -np.logspace(-38, 1, 4001)]).astype(np.float32)
    got, want = normal_cdf(x32), ndtr(x32.astype(np.float64))
    assert got.dtype == np.float32
    assert np.abs(got - want).max() <= 6e-8
    kept = want > 1e-30
    assert kept.sum() > 400_000 and (np.abs(got - want)[kept] / want[kept]).max() <= 2e-7
    gelu = F.gelu(Tensor(x32)).data
    exact = x32.astype(np.float64) * want
    tail = np.abs(exact) > 1e-30
    assert (np.abs(gelu - exact)[tail] / np.abs(exact[tail])).max() <= 3e-7
    specials = F.gelu(Tensor(np.array([np.inf, -np.inf, np.nan, 0.0, -20.0], np.float32))).data
    assert specials[0] == np.inf and np.isnan(specials[1]) and np.isnan(specials[2]) and specials[3] == 0
    assert specials[4] == 0
    np.testing.assert_array_equal(normal_cdf(x32.astype(np.float64)), ndtr(x32.astype(np.float64)))


def test_float32_exact_gelu_slope_from_the_forward_pass_is_accurate():
    """Exact GELU's derivative Phi + x phi, computed by the forward pass beside Phi
    (ops.special.normal_cdf_and_gelu_slope), against float64: within 2e-7 absolute
    everywhere and 2e-5 relative in the left tail (x < -2, down to 1e-30); the gradient a
    float32 GELU's backward returns is that slope times the incoming gradient, and the
    forward's values do not depend on whether a gradient is wanted."""
    from scipy.special import ndtr

    from tinygrad_lenet.ops.special import normal_cdf, normal_cdf_and_gelu_slope
    x32 = np.concatenate([np.linspace(-15, 15, 600_001), np.logspace(-38, 1.6, 4001),
                          -np.logspace(-38, 1.6, 4001)]).astype(np.float32)
    x = x32.astype(np.float64)
    want = ndtr(x) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)
    cdf, slope = normal_cdf_and_gelu_slope(x32)
    assert slope.dtype == np.float32
    np.testing.assert_array_equal(cdf, normal_cdf(x32))  # the same Phi with or without the slope
    err = np.abs(slope - want)
    assert err.max() <= 2e-7
    tail = (x < -2) & (np.abs(want) > 1e-30)
    assert tail.sum() > 100_000 and (err[tail] / np.abs(want[tail])).max() <= 2e-5
    t = Tensor(x32, requires_grad=True)
    out = F.gelu(t)
    np.testing.assert_array_equal(out.data, F.gelu(Tensor(x32)).data)
    g = np.random.default_rng(0).standard_normal(x32.shape).astype(np.float32)
    out.backward(g)
    np.testing.assert_array_equal(t.grad, g * slope)
    specials = normal_cdf_and_gelu_slope(np.array([np.inf, -np.inf, np.nan, 0.0, -20.0, 20.0], np.float32))[1]
    assert np.isnan(specials[:3]).all() and list(specials[3:]) == [0.5, 0.0, 1.0]  # +-inf * phi: NaN, as through erf
    x64 = np.array([-3.0, -0.5, 0.0, 2.0])
    np.testing.assert_allclose(normal_cdf_and_gelu_slope(x64)[1],
                               ndtr(x64) + x64 * np.exp(-x64 * x64 / 2) / np.sqrt(2 * np.pi), rtol=1e-15)

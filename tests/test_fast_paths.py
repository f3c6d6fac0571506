"""The fast conv/pool kernels agree with straightforward references.

conv2d runs im2col in batch-innermost memory order with blocked matrix
products; max/avg pooling work on strided offset slices. Each is checked here
against a direct, loop-level formulation (forward and backward), on random
geometries including stride, padding, overlapping windows, gaps, ties and
input arrays in either memory order (contiguous NCHW, or the batch-innermost
views the convolution hands on)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import strategies as S
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_lenet import Tensor, gradcheck, gradgradcheck, manual_seed, nn, ops
from tinygrad_lenet import functional as F
from tinygrad_lenet import grad as autograd_grad
from tinygrad_lenet.ops import conv as conv_module
from tinygrad_lenet.ops import depthwise as depthwise_module
from tinygrad_lenet.ops import pool as pool_module
from tinygrad_lenet.ops.blas import add_outer, axpy_routine
from tinygrad_lenet.ops.conv import (
    column_block,
    conv_forward_chwn,
    conv_input_grad_by_kernel_rows,
    conv_input_grad_chwn,
    conv_output_size,
    conv_weight_grad_chwn,
    grad_rows,
    matmul_deep,
    matmul_wide,
    threads_for,
    to_chwn,
)
from tinygrad_lenet.ops.layout import memory_order, relu_array
from tinygrad_lenet.ops.parallel import get_num_threads, parallel_map, set_num_threads


def batch_innermost(x: np.ndarray) -> np.ndarray:
    """The same NCHW values, stored with the batch axis innermost in memory."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


def layouts(x: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(x), batch_innermost(x)]


# ------------------------------------------------------------------ references
def conv2d_reference(x, w, b, stride, padding):
    """out[n, o, y, x] = b[o] + sum_{c,i,j} w[o, c, i, j] * xpad[n, c, y*sh + i, x*sw + j]."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    o, _, kh, kw = w.shape
    ho, wo = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.zeros((x.shape[0], o, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
            out += np.einsum("ncyx,oc->noyx", patch, w[:, :, i, j])
    if b is not None:
        out += b[None, :, None, None]
    return out


def conv2d_grads_reference(x, w, grad, stride, padding):
    """(d/dx, d/dw, d/db) of sum(grad * conv2d(x, w, b)), by the same loops."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    _, _, kh, kw = w.shape
    ho, wo = grad.shape[2:]
    for i in range(kh):
        for j in range(kw):
            region = (slice(None), slice(None), slice(i, i + sh * (ho - 1) + 1, sh),
                      slice(j, j + sw * (wo - 1) + 1, sw))
            gxp[region] += np.einsum("noyx,oc->ncyx", grad, w[:, :, i, j])
            gw[:, :, i, j] = np.einsum("noyx,ncyx->oc", grad, xp[region])
    gx = gxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]
    return gx, gw, grad.sum(axis=(0, 2, 3))


def pool_reference(x, kernel, stride, mode):
    """Window by window: the max (gradient to the first maximum in row-major
    order; NaN counts as the maximum) or the mean."""
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, c, ho, wo), dtype=x.dtype)
    routes = np.zeros((n, c, ho, wo, 2), dtype=np.int64)
    for a in range(n):
        for ch in range(c):
            for y in range(ho):
                for z in range(wo):
                    win = x[a, ch, y * sh:y * sh + kh, z * sw:z * sw + kw]
                    if mode == "max":
                        k = int(np.argmax(win.ravel()))
                        out[a, ch, y, z] = win.ravel()[k]
                        routes[a, ch, y, z] = (y * sh + k // kw, z * sw + k % kw)
                    else:
                        out[a, ch, y, z] = win.mean()
    return out, routes


def pool_grad_reference(x, kernel, stride, mode, grad):
    (kh, kw), (sh, sw) = kernel, stride
    _, routes = pool_reference(x, kernel, stride, mode)
    gx = np.zeros_like(x)
    n, c, ho, wo = grad.shape
    for a in range(n):
        for ch in range(c):
            for y in range(ho):
                for z in range(wo):
                    if mode == "max":
                        gx[a, ch, routes[a, ch, y, z, 0], routes[a, ch, y, z, 1]] += grad[a, ch, y, z]
                    else:
                        gx[a, ch, y * sh:y * sh + kh, z * sw:z * sw + kw] += grad[a, ch, y, z] / (kh * kw)
    return gx


# ------------------------------------------------------------------ helpers
def run_conv(x, w, b, stride, padding, grad, wanted=(True, True, True)):
    tx = Tensor(x, requires_grad=wanted[0], dtype=x.dtype)
    tw = Tensor(w, requires_grad=wanted[1], dtype=w.dtype)
    tb = None if b is None else Tensor(b, requires_grad=wanted[2], dtype=b.dtype)
    assert tx.data.strides == x.strides  # the memory order under test reaches the op
    out = F.conv2d(tx, tw, tb, stride=stride, padding=padding)
    out.backward(grad)
    return out.data, tx.grad, tw.grad, None if tb is None else tb.grad


def run_pool(x, kernel, stride, mode, grad):
    tx = Tensor(x, requires_grad=True, dtype=x.dtype)
    assert tx.data.strides == x.strides
    out = getattr(F, f"{mode}_pool2d")(tx, kernel, stride)
    out.backward(grad)
    return out.data, tx.grad


@st.composite
def conv_problem(draw):
    g = draw(S.conv2d_geometry())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    stride, padding = S.pair(g["stride"]), S.pair(g["padding"])
    x = rng.standard_normal(g["x_shape"])
    w = rng.standard_normal(g["w_shape"])
    b = rng.standard_normal(g["w_shape"][0]) if draw(st.booleans()) else None
    return x, w, b, stride, padding, rng


# ------------------------------------------------------------------ conv2d
@given(conv_problem(), st.booleans())
def test_conv2d_matches_direct_loops(problem, input_batch_innermost):
    x, w, b, stride, padding, rng = problem
    ref = conv2d_reference(x, w, b, stride, padding)
    grad = rng.standard_normal(ref.shape)
    gx_ref, gw_ref, gb_ref = conv2d_grads_reference(x, w, grad, stride, padding)
    xin = batch_innermost(x) if input_batch_innermost else x
    out, gx, gw, gb = run_conv(xin, w, b, stride, padding, grad)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, gw_ref, rtol=1e-12, atol=1e-12)
    if b is not None:
        np.testing.assert_allclose(gb, gb_ref, rtol=1e-12, atol=1e-12)


@contextlib.contextmanager
def patch_matrices(kind: str):
    """Make RowGroups slice every patch matrix from the shifted input ("sliced") or
    copy every one into blocks ("copied"), whatever its size."""
    saved = conv_module.slices_patches
    conv_module.slices_patches = lambda depth, row, rows: kind == "sliced"
    try:
        yield
    finally:
        conv_module.slices_patches = saved


@given(conv_problem(), st.integers(1, 4), st.sampled_from(["sliced", "copied"]))
def test_conv2d_kernels_match_direct_loops_for_every_rows_per_column(problem, rows, patches):
    """Each patch-matrix column may cover several output rows (RowGroups); the
    result must not depend on how many, including counts that do not divide Ho,
    nor on whether the patch matrices are slices of the shifted input or copies."""
    with patch_matrices(patches):
        check_conv_kernels_for_rows(problem, rows)


@pytest.mark.parametrize("patches", ["sliced", "copied"])
@pytest.mark.parametrize("rows", [1, 2, 3])
@pytest.mark.parametrize("stride,padding", [((2, 2), (1, 1)), ((2, 1), (0, 2)), ((1, 3), (2, 0))])
def test_strided_conv_kernels_match_direct_loops(stride, padding, rows, patches):
    """Several groups of output rows under vertical and horizontal strides (the
    random problems above are small and seldom have more than one group)."""
    rng = np.random.default_rng(9)
    x, w, b = rng.standard_normal((3, 2, 11, 9)), rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    with patch_matrices(patches):
        check_conv_kernels_for_rows((x, w, b, stride, padding, rng), rows)


def check_conv_kernels_for_rows(problem, rows):
    x, w, b, stride, padding, rng = problem
    (sh, sw), (ph, pw) = stride, padding
    ref = conv2d_reference(x, w, b, stride, padding)
    grad = rng.standard_normal(ref.shape)
    gx_ref, gw_ref, _ = conv2d_grads_reference(x, w, grad, stride, padding)
    ho, wo = conv_output_size(x.shape[2], w.shape[2], sh, ph), conv_output_size(x.shape[3], w.shape[3], sw, pw)
    xt, g = to_chwn(x, ph, pw), grad_rows(grad)
    out = conv_forward_chwn(xt, w, b, sh, sw, ho, wo, rows=rows)
    np.testing.assert_allclose(out.reshape(w.shape[0], ho, wo, -1).transpose(3, 0, 1, 2), ref, rtol=1e-12, atol=1e-12)
    gw = conv_weight_grad_chwn(g, xt, w.shape, sh, sw, ho, wo, rows=rows)
    np.testing.assert_allclose(gw, gw_ref, rtol=1e-12, atol=1e-12)
    gxt = conv_input_grad_chwn(g, w, xt.shape, sh, sw, ho, wo)
    gx = gxt[:, ph:ph + x.shape[2], pw:pw + x.shape[3]].transpose(3, 0, 1, 2)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-12, atol=1e-12)


@given(conv_problem())
def test_both_input_gradient_kernels_match_direct_loops(problem):
    """Horizontal stride 1 takes the shifted-columns path; the kernel-row path serves
    every stride. Both must give the reference on the same problem (stride made (sh, 1))."""
    x, w, b, stride, padding, rng = problem
    stride = (stride[0], 1)
    (sh, sw), (ph, pw) = stride, padding
    ref = conv2d_reference(x, w, b, stride, padding)
    grad = rng.standard_normal(ref.shape)
    gx_ref = conv2d_grads_reference(x, w, grad, stride, padding)[0]
    ho, wo = ref.shape[2:]
    xt, g = to_chwn(x, ph, pw), grad_rows(grad)
    for kernel in (conv_input_grad_chwn, conv_input_grad_by_kernel_rows):
        gxt = kernel(g, w, xt.shape, sh, sw, ho, wo)
        gx = gxt[:, ph:ph + x.shape[2], pw:pw + x.shape[3]].transpose(3, 0, 1, 2)
        np.testing.assert_allclose(gx, gx_ref, rtol=1e-12, atol=1e-12, err_msg=kernel.__name__)


@pytest.mark.parametrize("patches", ["sliced", "copied"])
@pytest.mark.parametrize("rows", [1, 2, 4])
def test_lenet_sized_conv_kernels_match_direct_loops_for_every_rows_per_column(rows, patches):
    """LeNet's first layer (1 -> 6 channels, 28x28, pad 2) in blocks, as float32."""
    with patch_matrices(patches):
        check_lenet_first_layer(rows)


def check_lenet_first_layer(rows):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 1, 28, 28)).astype(np.float32)
    w = rng.standard_normal((6, 1, 5, 5)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    ref = conv2d_reference(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), (1, 1), (2, 2))
    grad = rng.standard_normal(ref.shape).astype(np.float32)
    gw_ref = conv2d_grads_reference(x.astype(np.float64), w.astype(np.float64), grad.astype(np.float64),
                                    (1, 1), (2, 2))[1]
    xt = to_chwn(x, 2, 2)
    out = conv_forward_chwn(xt, w, b, 1, 1, 28, 28, rows=rows)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.reshape(6, 28, 28, 5).transpose(3, 0, 1, 2), ref, rtol=1e-4, atol=1e-4)
    gw = conv_weight_grad_chwn(grad_rows(grad), xt, w.shape, 1, 1, 28, 28, rows=rows)
    assert gw.dtype == np.float32
    np.testing.assert_allclose(gw, gw_ref, rtol=1e-4, atol=1e-3)


@given(st.sampled_from([(3, 2, 40, 12), (2, 70, 9), (2000,), (5, 7)]), st.booleans(), st.sampled_from(["f4", "f8"]))
def test_relu_array_matches_np_maximum_in_any_memory_order(shape, reverse, dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[1:6] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    view = np.ascontiguousarray(x.transpose(tuple(reversed(range(x.ndim))))).transpose(
        tuple(reversed(range(x.ndim)))) if reverse else x
    out = relu_array(view)
    assert out.dtype == x.dtype and out.shape == x.shape and out.strides == view.strides
    np.testing.assert_array_equal(out, np.maximum(x, 0))


@pytest.mark.parametrize("stride,padding", [((1, 1), (2, 2)), ((1, 1), (0, 0)), ((2, 1), (1, 0))])
def test_conv2d_blocked_products_match_direct_loops(stride, padding):
    """Shapes large enough that the patch products run in column blocks."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 6, 14, 13))
    w = rng.standard_normal((16, 6, 5, 5))
    b = rng.standard_normal(16)
    ref = conv2d_reference(x, w, b, stride, padding)
    grad = rng.standard_normal(ref.shape)
    gx_ref, gw_ref, gb_ref = conv2d_grads_reference(x, w, grad, stride, padding)
    for xin in layouts(x):
        out, gx, gw, gb = run_conv(xin, w, b, stride, padding, grad)
        np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(gx, gx_ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(gw, gw_ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(gb, gb_ref, rtol=1e-10, atol=1e-10)


@settings(max_examples=10)  # a second-derivative check per example
@given(data=st.data())
def test_a_dilated_convolution_by_phases_equals_the_kernel_spread_with_zeros(data):
    """conv2d with dilation and stride 1 runs as one undilated convolution over the input's
    phases: the same values, gradients and second derivatives as the dilated kernel
    written out with zeros between its taps."""
    dh, dw = data.draw(st.integers(1, 3)), data.draw(st.integers(2, 3))
    groups, k = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    ph, pw = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))
    h = data.draw(st.integers(max(1, (k - 1) * dh + 1 - 2 * ph), (k - 1) * dh + 3))
    w = data.draw(st.integers(max(1, (k - 1) * dw + 1 - 2 * pw), (k - 1) * dw + 3))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x, weight = rng.standard_normal((1, groups, h, w)), rng.standard_normal((2 * groups, 1, k, k))
    bias = rng.standard_normal(2 * groups)
    spread = np.zeros((2 * groups, 1, (k - 1) * dh + 1, (k - 1) * dw + 1))
    spread[:, :, ::dh, ::dw] = weight

    def phases(a, u, b):
        return F.conv2d(a, u, b, padding=(ph, pw), dilation=(dh, dw), groups=groups)

    def zeros_between(a, b):
        return F.conv2d(a, Tensor(spread, dtype=np.float64), b, padding=(ph, pw), groups=groups)

    args = [Tensor(a, requires_grad=True, dtype=np.float64) for a in (x, weight, bias)]
    out = phases(*args)
    np.testing.assert_allclose(out.data, zeros_between(args[0], args[2]).data, rtol=1e-12, atol=1e-12)
    assert gradcheck(phases, [x, weight, bias])
    assert gradgradcheck(phases, [x, weight, bias])


@pytest.mark.parametrize("size,padding,dilation", [
    ((8, 6), ((2, 2), (2, 2)), (2, 2)),  # padding a whole number of phases: split, then padded
    ((9, 6), ((2, 2), (3, 1)), (2, 3)),  # odd height, padding across phases: padded, then split
    ((6, 9), ((1, 3), (0, 0)), (2, 3)),
])
def test_a_dilated_convolution_gives_the_same_whichever_comes_first_padding_or_phases(size, padding, dilation):
    """Both ways into the phases (split first when the padding is whole phase rows and
    columns, pad first otherwise) give the dilated kernel's values and gradients, for a
    batch large enough (20) that the phases are copied in blocks."""
    rng = np.random.default_rng(3)
    x, weight = rng.standard_normal((20, 2, *size)), rng.standard_normal((3, 2, 3, 3))
    bias, g = rng.standard_normal(3), None
    dh, dw = dilation
    spread = np.zeros((3, 2, 2 * dh + 1, 2 * dw + 1))
    spread[:, :, ::dh, ::dw] = weight
    results = []
    for kernel, d in ((weight, dilation), (spread, (1, 1))):
        args = [Tensor(a, requires_grad=True, dtype=np.float64) for a in (x, kernel, bias)]
        out = F.conv2d(*args, padding=padding, dilation=d)
        g = rng.standard_normal(out.shape) if g is None else g
        out.backward(g)
        results.append((out.data, args[0].grad, args[1].grad[:, :, ::dh, ::dw] if d == (1, 1) else args[1].grad,
                        args[2].grad))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_padding_a_transposed_view_copies_it_in_blocks_with_the_same_values():
    """ops.Pad copies its input through `copy_into`: a view whose last axis is its slowest
    in memory (the phases' batch axis) comes out padded, C-ordered and equal to np.pad's."""
    x = np.random.default_rng(0).standard_normal((40, 3, 5, 2)).transpose(1, 2, 3, 0)
    width = ((1, 0), (2, 1), (0, 0), (0, 3))
    out = ops.Pad.call(x, pad_width=width)
    np.testing.assert_array_equal(out, np.pad(x, width))
    assert out.flags.c_contiguous
    assert ops.Pad.call(np.array(3.0), pad_width=()) == 3.0  # a 0-d array: nothing to pad


@settings(max_examples=10)  # a second-derivative check per example
@given(data=st.data())
def test_a_transposed_convolution_with_stride_equal_to_its_kernel_is_one_product(data):
    """Stride = kernel: one product and a reshuffle; values against the definition (each input
    pixel's kernel-weighted block), gradients and second derivatives by finite differences."""
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    c, o, h, w = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)), \
        data.draw(st.integers(1, 3))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x, weight, bias = rng.standard_normal((2, c, h, w)), rng.standard_normal((c, o, kh, kw)), rng.standard_normal(o)

    def blocks(a, u, b):
        return F.conv_transpose2d(a, u, b, stride=(kh, kw))

    expected = np.einsum("ncyx,coij->noyixj", x, weight).reshape(2, o, h * kh, w * kw) + bias[:, None, None]
    args = [Tensor(a, requires_grad=True, dtype=np.float64) for a in (x, weight, bias)]
    np.testing.assert_allclose(blocks(*args).data, expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(blocks, [x, weight, bias])
    assert gradgradcheck(blocks, [x, weight, bias])


@pytest.mark.parametrize("stride,dilation", [((1, 1), (1, 1)), ((2, 1), (1, 2)), ((1, 1), (2, 2))])
def test_depthwise_convolution_gives_the_same_in_either_memory_order(stride, dilation):
    """Inputs and gradients as the convolutions hand them on (batch innermost in memory) are
    read as they lie: the same values and input gradients as contiguous NCHW arrays, bit for
    bit, and the weight gradient to float32 rounding (its sums run in memory order)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((3, 1, 3, 2)).astype(np.float32)
    inner = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    results = []
    for a in (x, inner):
        t, u = Tensor(a, requires_grad=True), Tensor(w, requires_grad=True)
        out = ops.DepthwiseConv2d.apply(t, u, stride=stride, dilation=dilation)
        g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
        out.backward(g if a is x else np.ascontiguousarray(g.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2))
        results.append((out.data, t.grad, u.grad))
    (out_a, dx_a, dw_a), (out_b, dx_b, dw_b) = results
    np.testing.assert_array_equal(out_a, out_b)
    np.testing.assert_array_equal(dx_a, dx_b)
    np.testing.assert_allclose(dw_a, dw_b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blas_axpy_adds_a_multiple_of_one_slice_into_another_in_place(dtype):
    """The BLAS routine the depthwise convolution adds its taps with works in place on
    rows of a larger array, from an offset, and touches nothing outside the n values."""
    routine = axpy_routine(dtype)
    rng = np.random.default_rng(0)
    x, rows = rng.standard_normal(50).astype(dtype), rng.standard_normal((3, 50)).astype(dtype)
    expected = rows.copy()
    expected[1, 7:37] += dtype(0.5) * x[3:33]
    routine(x, rows[1], n=30, a=0.5, offx=3, offy=7)
    np.testing.assert_allclose(rows, expected, rtol=1e-6)
    np.testing.assert_array_equal(np.delete(rows, np.s_[7:37], axis=1), np.delete(expected, np.s_[7:37], axis=1))
    assert axpy_routine(np.float16) is None  # other dtypes: numpy's two passes


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_add_outer_adds_an_outer_product_in_place_by_blas_or_numpy(dtype):
    """`add_outer` (the BLAS's ger for float32 and float64 C-ordered matrices, numpy's
    broadcasting otherwise) adds alpha * outer(x, y) into the matrix it is given, for a
    C-ordered matrix and for a transposed one alike, and returns that same matrix."""
    rng = np.random.default_rng(1)
    tolerance = 1e-3 if dtype == np.float16 else 1e-6
    for a in (rng.standard_normal((6, 9)).astype(dtype), rng.standard_normal((9, 6)).astype(dtype).T):
        x, y = rng.standard_normal(6).astype(dtype), rng.standard_normal(9).astype(dtype)
        expected = a.astype(np.float64) - 0.5 * np.outer(x.astype(np.float64), y.astype(np.float64))
        assert add_outer(a, x, y, alpha=-0.5) is a
        np.testing.assert_allclose(a, expected, rtol=tolerance, atol=tolerance)


def test_layer_norm_with_numpy_broadcasting_instead_of_the_blas_gives_the_same(monkeypatch):
    """LayerNorm's outer products through numpy's broadcasting (as for dtypes without a BLAS
    routine) give the values and gradients the BLAS's rank-1 updates give."""
    from tinygrad_lenet.ops import blas

    rng = np.random.default_rng(2)
    x, weight, bias, g = (rng.standard_normal(shape) for shape in ((2, 5, 8), (8,), (8,), (2, 5, 8)))

    def run():
        t, w, b = (Tensor(a, requires_grad=True, dtype=np.float64) for a in (x, weight, bias))
        out = F.layer_norm(t, 8, w, b)
        assert out.grad_fn.op == "layer_norm"
        out.backward(g)
        return out.data, t.grad, w.grad, b.grad

    with_blas = run()
    monkeypatch.setattr(blas, "_BLAS_FLOATS", ())
    for got, want in zip(run(), with_blas):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_layer_norm_gives_each_wanted_gradient_alone():
    """Whichever of input, weight and bias require grad, each gradient is the one all three
    give together (the backward skips the work of the others)."""
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(shape) for shape in ((3, 6), (6,), (6,))]
    g = rng.standard_normal((3, 6))
    everything = [Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    F.layer_norm(*everything[:1], 6, *everything[1:]).backward(g)
    for k in range(3):
        ts = [Tensor(a, requires_grad=i == k, dtype=np.float64) for i, a in enumerate(arrays)]
        F.layer_norm(ts[0], 6, ts[1], ts[2]).backward(g)
        np.testing.assert_allclose(ts[k].grad, everything[k].grad, rtol=1e-12, atol=1e-12)
        assert all(t.grad is None for i, t in enumerate(ts) if i != k)


@pytest.mark.parametrize("stride,dilation,padding", [((1, 1), (1, 1), ((1, 1), (1, 1))),
                                                     ((1, 1), (2, 1), ((2, 0), (1, 3))),
                                                     ((2, 1), (1, 1), ((1, 1), (0, 1)))])
def test_depthwise_convolution_without_the_blas_axpy_gives_the_same(monkeypatch, stride, dilation, padding):
    """Where numpy's BLAS has no axpy the taps are added by numpy's product and sum: the
    same output and gradients (bias included), to float64 rounding."""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((3, 4, 9, 8)), rng.standard_normal((4, 1, 3, 2)), rng.standard_normal(4)
    g = None
    results = []
    for blas in (True, False):
        if not blas:
            monkeypatch.setattr(depthwise_module, "axpy_routine", lambda dtype: None)
        ts = [Tensor(a, requires_grad=True, dtype=np.float64) for a in (x, w, b)]
        out = ops.DepthwiseConv2d.apply(*ts, stride=stride, dilation=dilation, padding=padding)
        g = rng.standard_normal(out.shape) if g is None else g
        out.backward(g)
        results.append([out.data] + [t.grad for t in ts])
    for with_blas, without in zip(*results):
        np.testing.assert_allclose(with_blas, without, rtol=1e-12, atol=1e-12)


def test_conv2d_float32_stays_float32_and_close_to_float64():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    w = (rng.standard_normal((6, 1, 5, 5)) / 5).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    grad = rng.standard_normal((4, 6, 28, 28)).astype(np.float32)
    out, gx, gw, gb = run_conv(x, w, b, (1, 1), (2, 2), grad)
    assert out.dtype == gx.dtype == gw.dtype == gb.dtype == np.float32
    ref = conv2d_reference(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), (1, 1), (2, 2))
    gx_ref, gw_ref, _ = conv2d_grads_reference(x.astype(np.float64), w.astype(np.float64),
                                               grad.astype(np.float64), (1, 1), (2, 2))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gw, gw_ref, rtol=1e-4, atol=1e-3)
    # the bias gradient is a matrix-vector product: a few roundings of float32 off the exact sum
    gb_ref = grad.astype(np.float64).sum(axis=(0, 2, 3))
    assert np.abs(gb - gb_ref).max() <= 1e-6 * np.abs(grad).sum(axis=(0, 2, 3)).max()


def test_conv2d_computes_only_the_wanted_gradients():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    grad = rng.standard_normal((2, 4, 4, 4))
    _, gx, gw, gb = run_conv(x, w, b, (1, 1), (0, 0), grad, wanted=(False, True, False))
    assert gx is None and gb is None
    np.testing.assert_allclose(gw, conv2d_grads_reference(x, w, grad, (1, 1), (0, 0))[1], rtol=1e-12)


@pytest.mark.parametrize("m,k,p", [(6, 25, 20_000), (16, 150, 1_000), (3, 7, 50), (40, 40, 1_300)])
def test_blocked_matmuls_match_numpy(m, k, p):
    rng = np.random.default_rng(3)
    a, b, g = rng.standard_normal((m, k)), rng.standard_normal((k, p)), rng.standard_normal((m, p))
    np.testing.assert_allclose(matmul_wide(a, b), a @ b, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(matmul_deep(g, b), g @ b.T, rtol=1e-12, atol=1e-9)
    wide = rng.standard_normal((m, 3 * p))  # the weight gradient reads column slices of a wider matrix in place
    np.testing.assert_allclose(matmul_deep(wide[:, p:2 * p], b), wide[:, p:2 * p] @ b.T, rtol=1e-12, atol=1e-9)


def test_conv2d_and_pooling_accept_an_empty_batch():
    x = np.zeros((0, 2, 6, 6), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    out, gx, gw, _ = run_conv(x, w, None, (1, 1), (1, 1), np.zeros((0, 3, 6, 6), np.float32))
    assert out.shape == (0, 3, 6, 6) and gx.shape == x.shape
    np.testing.assert_array_equal(gw, np.zeros_like(w))
    for mode in ("max", "avg"):
        out, gx = run_pool(x, (2, 2), (2, 2), mode, np.zeros((0, 2, 3, 3), np.float32))
        assert out.shape == (0, 2, 3, 3) and gx.shape == x.shape
    for stride in (1, 2):  # the depthwise convolution's two paths
        depthwise = nn.Conv2d(2, 2, 3, stride=stride, padding=1, groups=2)
        t = Tensor(x, requires_grad=True)
        y = depthwise(t)
        assert y.shape == (0, 2, 6 // stride, 6 // stride)
        y.sum().backward()
        assert t.grad.shape == x.shape
        np.testing.assert_array_equal(depthwise.weight.grad, np.zeros((2, 1, 3, 3), np.float32))
        np.testing.assert_array_equal(depthwise.bias.grad, np.zeros(2, np.float32))


# ------------------------------------------------------------------ pooling
@st.composite
def pool_problem(draw, mode):
    g = draw(S.pool2d_geometry())
    kernel = S.pair(g["kernel_size"])
    stride = kernel if g["stride"] is None else S.pair(g["stride"])
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if mode == "max" and draw(st.booleans()):
        x = rng.integers(-2, 3, g["x_shape"]).astype(np.float64)  # many ties
    else:
        x = rng.standard_normal(g["x_shape"])
    return x, kernel, stride, rng


@pytest.mark.parametrize("mode", ["max", "avg"])
@given(data=st.data(), input_batch_innermost=st.booleans(), grad_batch_innermost=st.booleans())
def test_pooling_matches_window_loops(mode, data, input_batch_innermost, grad_batch_innermost):
    x, kernel, stride, rng = data.draw(pool_problem(mode))
    ref, _ = pool_reference(x, kernel, stride, mode)
    grad = rng.standard_normal(ref.shape)
    gx_ref = pool_grad_reference(x, kernel, stride, mode, grad)
    xin = batch_innermost(x) if input_batch_innermost else x
    gin = batch_innermost(grad) if grad_batch_innermost else grad
    out, gx = run_pool(xin, kernel, stride, mode, gin)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", [(1, 1), (2, 2), (3, 2), (1, 3)])
@pytest.mark.parametrize("input_batch_innermost", [False, True])
def test_max_pool_side_by_side_windows_match_the_offset_maxima_and_keep_memory_order(kernel, input_batch_innermost):
    """Stride = kernel takes the rows-then-columns path (`tiled_max`); it gives the
    maximum over every window offset, NaN included, in the input's memory order
    (batch-innermost stays batch-innermost for the next convolution)."""
    x = np.random.default_rng(9).integers(-2, 3, (3, 2, 7, 8)).astype(np.float32)
    x[1, 1, 2, 3] = np.nan
    xin = batch_innermost(x) if input_batch_innermost else x
    out = F.max_pool2d(Tensor(xin), kernel, kernel).data
    out_hw = ((7 - kernel[0]) // kernel[0] + 1, (8 - kernel[1]) // kernel[1] + 1)
    expected = np.max(np.stack(pool_module.offset_slices(x, kernel, kernel, out_hw)), axis=0)
    np.testing.assert_array_equal(out, expected)
    assert memory_order(out) == memory_order(xin)


@pytest.mark.parametrize("kernel,stride", [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((2, 3), (3, 2))])
def test_max_pool_ties_send_the_gradient_to_the_first_maximum(kernel, stride):
    x = np.zeros((2, 3, 7, 7))  # every window is one big tie
    x[0, 0, 3, 3] = 1.0
    grad = np.random.default_rng(4).standard_normal(pool_reference(x, kernel, stride, "max")[0].shape)
    for xin in layouts(x):
        out, gx = run_pool(xin, kernel, stride, "max", grad)
        np.testing.assert_array_equal(gx, pool_grad_reference(x, kernel, stride, "max", grad))


def test_max_pool_nan_is_the_maximum_and_takes_the_gradient():
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float64).reshape(2, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    x[1, 0, 3, 2] = np.nan
    grad = np.arange(1.0, 9.0).reshape(2, 1, 2, 2)
    out, gx = run_pool(x, (2, 2), (2, 2), "max", grad)
    ref, _ = pool_reference(x, (2, 2), (2, 2), "max")
    np.testing.assert_array_equal(out, ref)  # NaN where the window holds one
    np.testing.assert_array_equal(gx, pool_grad_reference(x, (2, 2), (2, 2), "max", grad))
    assert gx[0, 0, 0, 1] == 1.0 and gx[1, 0, 3, 2] == 8.0


# ------------------------------------------------------------------ relu + max_pool2d, fused
def relu_pool_both_ways(x: np.ndarray, kernel, stride, grad: np.ndarray):
    """(output, d/dx of sum(grad * output)) of the fused op and of the composition."""
    results = []
    for fused in (True, False):
        xt = Tensor(x, requires_grad=True, dtype=x.dtype)
        out = F.relu_max_pool2d(xt, kernel, stride) if fused else F.max_pool2d(xt.relu(), kernel, stride)
        assert out.grad_fn.op == ("relu_max_pool2d" if fused else "max_pool2d")
        (out * Tensor(grad, dtype=x.dtype)).sum().backward()
        results.append((out.data, xt.grad))
    return results


@given(data=st.data(), input_batch_innermost=st.booleans())
def test_relu_max_pool_equals_the_composition(data, input_batch_innermost):
    """Values and first derivatives the same as relu then max_pool2d, on integer inputs
    (ties, zeros, negatives), in either memory order; the gradient is max_pool2d's routed
    through relu's mask."""
    x, kernel, stride, rng = data.draw(pool_problem("max"))
    grad = rng.standard_normal(pool_reference(x, kernel, stride, "max")[0].shape)
    xin = batch_innermost(x) if input_batch_innermost else x
    (fused_out, fused_grad), (out, gx) = relu_pool_both_ways(xin, kernel, stride, grad)
    relu_x = np.maximum(x, 0)
    np.testing.assert_array_equal(fused_out, pool_reference(relu_x, kernel, stride, "max")[0])
    np.testing.assert_array_equal(fused_out, out)
    assert [s for s, n in zip(fused_out.strides, out.shape) if n > 1] == \
        [s for s, n in zip(out.strides, out.shape) if n > 1]  # the same memory order (length-1 axes aside)
    reference = pool_grad_reference(relu_x, kernel, stride, "max", grad) * (relu_x > 0)
    np.testing.assert_allclose(fused_grad, reference, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(fused_grad, gx)


@given(data=st.data())
def test_relu_max_pool_second_derivatives_equal_the_composition(data):
    """Recorded (create_graph) backward: first and second derivatives through a tanh
    after the op equal the composition's, and pass gradcheck/gradgradcheck."""
    from tinygrad_lenet import gradgradcheck
    shape = data.draw(st.sampled_from([(1, 2, 4, 4), (2, 1, 6, 5)]))
    kernel = data.draw(st.sampled_from([(2, 2), (3, 2)]))
    stride = data.draw(st.sampled_from([(1, 1), (2, 2), (1, 2)]))
    x = data.draw(S.without_ties(shape, spacing=0.1, offset=-0.05))  # no ties and no zeros: away from the kinks
    seconds = []
    for f in (lambda a: F.relu_max_pool2d(a, kernel, stride), lambda a: F.max_pool2d(a.relu(), kernel, stride)):
        xt = Tensor(x, requires_grad=True, dtype=np.float64)
        (g,) = autograd_grad(f(xt).tanh().sum(), xt, create_graph=True)
        (gg,) = autograd_grad((g * g).sum(), xt)
        seconds.append((g.numpy(), gg.numpy()))
    np.testing.assert_allclose(seconds[0][0], seconds[1][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(seconds[0][1], seconds[1][1], rtol=1e-12, atol=1e-12)
    gradcheck(lambda a: F.relu_max_pool2d(a, kernel, stride).tanh().sum(), [x])
    gradgradcheck(lambda a: F.relu_max_pool2d(a, kernel, stride).tanh().sum(), [x])


def test_sequential_fuses_relu_and_max_pool_only_when_nothing_can_tell():
    """A ReLU followed by a plain MaxPool2d runs as the fused op, recorded under the pool;
    with a hook on either layer, or a padded pool, the two layers run as written."""
    from tinygrad_lenet import nn
    from tinygrad_lenet.autograd import topological_order

    def ops_of(model):
        x = Tensor(np.random.default_rng(12).standard_normal((2, 1, 8, 8)).astype(np.float32), requires_grad=True)
        out = model(x)
        return [(t.grad_fn.op, t.grad_fn.module) for t in topological_order(out) if t.grad_fn is not None]

    manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
    assert ops_of(model) == [("conv2d", "0"), ("relu_max_pool2d", "2")]
    handle = model[1].register_forward_hook(lambda module, args, out: None)
    assert [op for op, _ in ops_of(model)] == ["conv2d", "relu", "max_pool2d"]
    handle.remove()
    model[2].register_forward_pre_hook(lambda module, args: None)
    assert [op for op, _ in ops_of(model)] == ["conv2d", "relu", "max_pool2d"]
    padded = nn.Sequential(nn.ReLU(), nn.MaxPool2d(3, stride=1, padding=1))
    assert "relu" in [op for op, _ in ops_of(padded)]


def test_a_forward_hook_on_relu_sees_its_values_and_the_model_its_gradients():
    from tinygrad_lenet import nn

    manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
    x = Tensor(np.random.default_rng(12).standard_normal((2, 1, 8, 8)).astype(np.float32))
    seen = []
    plain = [p.data.copy() for p in model.parameters()]
    model(x).sum().backward()
    grads = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    model[1].register_forward_hook(lambda module, args, out: seen.append(out.numpy().copy()))
    out = model(x)
    out.sum().backward()
    conv = F.conv2d(x, Tensor(plain[0]), Tensor(plain[1])).data
    np.testing.assert_array_equal(seen[0], np.maximum(conv, 0))
    for g, p in zip(grads, model.parameters()):
        np.testing.assert_array_equal(p.grad, g)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pooling_float32_stays_float32(mode):
    x = np.random.default_rng(5).standard_normal((3, 6, 28, 28)).astype(np.float32)
    out, gx = run_pool(batch_innermost(x), (2, 2), (2, 2), mode, np.ones((3, 6, 14, 14), np.float32))
    assert out.dtype == gx.dtype == np.float32
    np.testing.assert_allclose(out, pool_reference(x, (2, 2), (2, 2), mode)[0], rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ malloc tuning
_FAULTS_SCRIPT = """
import resource, sys
import numpy as np
from tinygrad_lenet.memory import freed_memory_retained, retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory() and freed_memory_retained()
def cycle():  # arrays the size of a LeNet-5 step's patch matrices and activations, and one of 40 MB
    kept = []
    for n in (2_500_000, 600_000, 1_900_000, 150_000, 600_000, 10_000_000):
        kept.append(np.ones(n, np.float32))
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    cycle()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_retained_memory_is_reused_without_page_faults():
    """In a fresh process: by default glibc hands large freed arrays back to the
    OS, so allocating them again page-faults (thousands of faults for ~63 MB
    per cycle); with retain_freed_memory() the freed blocks are reused, those above
    glibc's largest mmap threshold (32 MiB) too."""
    def faults(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT, mode], capture_output=True, text=True,
                              timeout=60, cwd=Path(__file__).resolve().parents[1])
        assert done.returncode == 0, done.stderr
        return int(done.stdout.strip())
    assert faults("default") > 1000
    assert faults("retain") < 100


# ------------------------------------------------------------------ threads
@pytest.fixture
def threads():
    """Set the op thread count inside a test; restored afterwards."""
    before = get_num_threads()
    yield set_num_threads
    set_num_threads(before)


def test_parallel_map_keeps_item_order_and_gives_each_thread_its_state(threads):
    threads(3)
    states = []

    def make_state():
        states.append([])
        return states[-1]

    def fn(item, seen):
        seen.append(item)
        return item * item

    assert parallel_map(fn, list(range(50)), make_state) == [k * k for k in range(50)]
    assert 1 <= len(states) <= 3
    assert sorted(k for seen in states for k in seen) == list(range(50))


def test_parallel_map_max_threads_and_small_blocks_stay_in_the_calling_thread(threads):
    threads(2)
    caller = threading.get_ident()

    def slow_thread_id(item):
        time.sleep(0.002)  # long enough that a helper thread takes some items
        return threading.get_ident()

    assert set(parallel_map(slow_thread_id, list(range(8)), max_threads=1)) == {caller}
    assert len(set(parallel_map(slow_thread_id, list(range(8))))) == 2
    assert threads_for([(0, 1), (1, 2)], 1_000_000) == 1  # LeNet's first layer with rows of 1.1 MFLOP
    assert threads_for([(0, 1), (1, 2)], 6_000_000) is None


def test_parallel_map_raises_a_failing_items_error(threads):
    threads(2)

    def fn(item):
        if item == 7:
            raise KeyError("item 7")
        return item

    with pytest.raises(KeyError, match="item 7"):
        parallel_map(fn, list(range(20)))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_set_num_threads_rejects_non_positive_or_non_integers(bad):
    with pytest.raises(ValueError, match="set_num_threads"):
        set_num_threads(bad)


@pytest.mark.parametrize("patches", ["sliced", "copied", "as measured"])
def test_conv2d_is_bit_identical_across_thread_counts(threads, patches, monkeypatch):
    """Every thread count computes the same products and sums them in the same order,
    whether patch matrices are sliced (stacked products, one share of output rows
    per thread) or copied, with every block made worth a thread."""
    if patches != "as measured":
        monkeypatch.setattr(conv_module, "slices_patches", lambda depth, row, rows: patches == "sliced")
        monkeypatch.setattr(conv_module, "_MIN_PARALLEL_FLOPS", 0)
        monkeypatch.setattr(conv_module, "_MIN_PARALLEL_FLOPS_AVX512", 0)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((16, 6, 14, 14)).astype(np.float32)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    grad = rng.standard_normal((16, 16, 12, 12)).astype(np.float32)
    results = []
    for n in (1, 2, 3):
        threads(n)
        results.append(run_conv(x, w, b, (1, 1), (1, 1), grad))
    for other in results[1:]:
        for a, b_ in zip(results[0], other):
            np.testing.assert_array_equal(a, b_)


@given(st.integers(0, 5000), st.integers(1, 5000))
def test_column_block_divides_the_columns_into_blocks_within_the_limit(columns, limit):
    width = column_block(columns, limit)
    if columns == 0:
        assert width is None
    elif width is None:  # no divisor fits: every fitting block would be too narrow
        assert all(columns % k or columns // k < min(256, columns) for k in range(-(-columns // limit), columns + 1))
    else:
        assert columns % width == 0 and min(256, columns) <= width <= limit
        assert not any(columns % k == 0 for k in range(-(-columns // limit), columns // width))  # the widest
    assert column_block(1280, 416) == 320 and column_block(3584, 6666) == 3584 and column_block(1009, 416) is None


# ------------------------------------------------------------------ layer norm, one op
@given(data=st.data())
def test_layer_norm_op_equals_standardize_scale_shift(data):
    """F.layer_norm with a weight and bias runs as one op; its values, input, weight and
    bias gradients, and second derivatives equal those of the composition (standardize,
    then * weight + bias), with the input in any memory order."""
    shape = data.draw(st.sampled_from([(3, 5), (2, 3, 4), (4, 2, 3)]))
    k = data.draw(st.integers(1, len(shape) - 1))
    normalized = shape[len(shape) - k:]
    x = data.draw(S.smooth(shape))
    x = x + np.arange(x.size).reshape(shape) % 3  # no sample constant
    if data.draw(st.booleans()):
        x = np.asfortranarray(x)
    w, b = data.draw(S.smooth(normalized)), data.draw(S.smooth(normalized))
    results = []
    for fused in (True, False):
        ts = [Tensor(a, requires_grad=True, dtype=np.float64) for a in (x, w, b)]
        if fused:
            out = F.layer_norm(ts[0], normalized, ts[1], ts[2])
            assert out.grad_fn.op == "layer_norm"
        else:
            axes = tuple(range(len(shape) - k, len(shape)))
            out = ops.Normalize.apply(ts[0], axes=axes, eps=1e-5) * ts[1] + ts[2]
        grads = autograd_grad(out.tanh().sum(), ts, create_graph=True)
        second = autograd_grad(sum((g * g).sum() for g in grads), ts)
        results.append([out.data] + [g.numpy() for g in grads] + [g.numpy() for g in second])
    for fused_value, composed_value in zip(*results):
        np.testing.assert_allclose(fused_value, composed_value, rtol=1e-10, atol=1e-12)
    plain = [Tensor(a, requires_grad=True, dtype=np.float64) for a in (x, w, b)]
    F.layer_norm(plain[0], normalized, plain[1], plain[2]).tanh().sum().backward()
    for t, want in zip(plain, results[1][1:4]):
        np.testing.assert_allclose(t.grad, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch", [1, 15, 16, 37])
def test_copy_batch_innermost_moves_the_batch_axis_last_in_any_memory_order(batch):
    from tinygrad_lenet.ops.layout import copy_batch_innermost
    x = np.arange(batch * 3 * 4 * 5, dtype=np.float32).reshape(batch, 3, 4, 5)
    for source in (x, batch_innermost(x), x[:, :, ::2]):
        out = np.zeros(source.shape[1:] + (batch,), dtype=np.float32)
        copy_batch_innermost(source, out)
        np.testing.assert_array_equal(out, np.moveaxis(source, 0, -1))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_reshaped_equals_numpy_reshape_for_any_memory_order_and_keeps_a_long_fastest_axis_innermost(data):
    """A reshape of a permuted array is numpy's, value for value; when it must copy and
    the fastest-varying axis in memory (16 or more long) survives the reshape whole, the
    copy keeps that axis fastest (copies in runs along it)."""
    from tinygrad_lenet.ops.layout import memory_order, reshaped
    dims = data.draw(st.lists(st.sampled_from([1, 2, 3, 16, 20]), min_size=2, max_size=5))
    base = np.arange(int(np.prod(dims)), dtype=np.float32).reshape(dims)
    perm = data.draw(st.permutations(range(len(dims))))
    a = base.transpose(perm)
    cut = data.draw(st.integers(0, a.ndim - 1))  # merge two neighbouring axes (none when cut is the last)
    shape = a.shape[:cut] + (int(np.prod(a.shape[cut:cut + 2])),) + a.shape[cut + 2:]
    out = reshaped(a, shape)
    np.testing.assert_array_equal(out, a.reshape(shape))
    fastest = memory_order(a)[-1]
    kept = [j for j, n in enumerate(shape) if n == a.shape[fastest] and n >= 16
            and np.prod(shape[j + 1:]) == np.prod(a.shape[fastest + 1:])]
    if not np.shares_memory(out, a) and kept and fastest != a.ndim - 1:
        assert memory_order(out)[-1] in kept and out.strides[memory_order(out)[-1]] == out.itemsize


def test_a_phase_merge_copy_keeps_the_batch_axis_innermost():
    """The dilated convolution's phase merge, as its backward meets it: (C, a, b, dh, dw, N)
    batch-innermost back to (N, C, H, W); the result lies batch-innermost too."""
    from tinygrad_lenet.ops.layout import reshaped
    n, c, a, b = 16, 3, 4, 5
    phases = np.arange(c * a * b * 4 * n, dtype=np.float32).reshape(c, a, b, 2, 2, n)
    source = phases.transpose(5, 0, 1, 3, 2, 4)  # (N, C, a, dh, b, dw)
    for shape in ((n, c, 2 * a, 2 * b), (n, c, -1, 2 * b)):  # a -1 too, as Tensor.reshape passes it on
        out = reshaped(source, shape)
        np.testing.assert_array_equal(out, np.ascontiguousarray(source).reshape(n, c, 2 * a, 2 * b))
        assert out.strides[0] == out.itemsize

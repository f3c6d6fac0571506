"""Ops as functions, PyTorch's `torch.nn.functional` style. Each is the Tensor
method of the same name (one implementation); the functions that combine ops
(linear, concatenate, stack) live here."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import ops
from .errors import DimError, ShapeError
from .ops.einsum import einsum_plan
from .ops.loss import check_class_targets
from .random import default_generator
from .tensor import Tensor
from .tensor import where as where_op
from .torch_names import with_dim
from .validation import check_label_smoothing, check_positive, int_pair, normalize_axis, same_float_dtype


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of x (N, C, H, W) with weight (out, C / groups, kh, kw).
    padding: an int, (ph, pw), or ((top, bottom), (left, right)) for asymmetric padding;
    dilation spreads the kernel's taps; groups splits the channels (groups = C:
    depthwise). The plain case runs LeNet-5's fast kernel; the others are built from
    it (a dilated kernel is the kernel with zeros between its taps)."""
    x = _tensor(x, "conv2d")
    dh, dw = int_pair(dilation, "conv2d", "dilation")
    check_positive("conv2d", dilation=min(dh, dw), groups=groups)
    pads = _padding_pairs(padding, "conv2d")
    if (dh, dw) == (1, 1) and groups == 1 and pads[0][0] == pads[0][1] and pads[1][0] == pads[1][1]:
        return x.conv2d(weight, bias, stride=stride, padding=(pads[0][0], pads[1][0]))
    if groups > 1 and x.ndim == 4 and weight.ndim == 4 and groups == x.shape[1] == weight.shape[0] \
            and weight.shape[1] == 1:  # depthwise: one kernel per channel, tap by tap (no GEMM to be had)
        same_float_dtype("conv2d", x, weight, bias)
        s = int_pair(stride, "conv2d", "stride")
        span = ((weight.shape[2] - 1) * dh + 1, (weight.shape[3] - 1) * dw + 1)
        padded = (x.shape[2] + sum(pads[0]), x.shape[3] + sum(pads[1]))
        if min(s) < 1 or span[0] > padded[0] or span[1] > padded[1]:
            raise ShapeError(f"conv2d: kernel {tuple(weight.shape[2:])} (dilation {(dh, dw)}) does not fit the padded "
                             f"input {padded}, or stride {s} is below 1")
        if bias is not None and tuple(bias.shape) != (weight.shape[0],):
            raise ShapeError(f"conv2d: bias {tuple(bias.shape)} does not match {weight.shape[0]} output channels")
        return ops.DepthwiseConv2d.apply(x, weight, *(() if bias is None else (bias,)), stride=s, dilation=(dh, dw),
                                         padding=(tuple(pads[0]), tuple(pads[1])))
    if (dh, dw) != (1, 1) and int_pair(stride, "conv2d", "stride") == (1, 1) and x.ndim == 4 and weight.ndim == 4 \
            and x.shape[2] + sum(pads[0]) > (weight.shape[2] - 1) * dh \
            and x.shape[3] + sum(pads[1]) > (weight.shape[3] - 1) * dw:
        return _dilated_by_phases(x, weight, bias, pads, (dh, dw), groups)
    if any(pads[0] + pads[1]):
        x = x.pad(((0, 0), (0, 0), pads[0], pads[1]))
    if (dh, dw) != (1, 1):
        o, c, kh, kw = weight.shape
        weight = ops.GetItemGrad.apply(weight, index=(slice(None), slice(None), slice(None, None, dh),
                                                      slice(None, None, dw)),
                                       shape=(o, c, (kh - 1) * dh + 1, (kw - 1) * dw + 1))
    if groups == 1:
        return x.conv2d(weight, bias, stride=stride)
    if x.ndim != 4 or x.shape[1] % groups or weight.shape[0] % groups or weight.shape[1] * groups != x.shape[1]:
        raise ShapeError(f"conv2d: groups={groups} does not fit input {x.shape} and weight {weight.shape} "
                         "(channels must divide into groups; weight is (out, in / groups, kh, kw))")
    xs, ws = x.chunk(groups, axis=1), weight.chunk(groups, axis=0)
    bs = bias.chunk(groups, axis=0) if bias is not None else [None] * groups
    return concatenate([xi.conv2d(wi, bi, stride=stride) for xi, wi, bi in zip(xs, ws, bs)], axis=1)


def _dilated_by_phases(x: Tensor, weight: Tensor, bias: Tensor | None, pads: tuple[tuple[int, int], tuple[int, int]],
                       dilation: tuple[int, int], groups: int) -> Tensor:
    """A stride-1 dilated convolution of `x` padded by `pads` as an undilated one. Output
    rows y = i (mod dh) read only padded input rows i (mod dh), so each of the dh * dw
    phases of the padded input, x[..., i::dh, j::dw], convolved with the kernel itself
    gives one phase of the output. The phases go through as one batch, dh * dw times the
    images, and are interleaved again: the products are the kernel's taps, not those of
    the kernel spread out with zeros between them ((2k - 1)^2 against k^2 at dilation 2).
    Every copy keeps the batch innermost in memory, as the convolution reads and writes
    it. When the padding is a whole number of phase rows and columns (padding = dilation,
    the usual "same" layer), the phases are split off first and padded instead, so that
    splitting and padding are one copy."""
    dh, dw = dilation
    kh, kw = weight.shape[2:]
    (top, bottom), (left, right) = pads
    n, c, h, w = x.shape
    ho, wo = h + top + bottom - (kh - 1) * dh, w + left + right - (kw - 1) * dw
    bottom += -ho % dh  # rows and columns making every phase the same size
    right += -wo % dw
    a, b = (h + top + bottom) // dh, (w + left + right) // dw
    if top % dh == 0 and left % dw == 0 and h % dh == 0 and w % dw == 0:  # then bottom and right divide too
        phases = x.reshape(n, c, h // dh, dh, w // dw, dw).permute(1, 2, 4, 3, 5, 0)
        phases = phases.pad(((0, 0), (top // dh, bottom // dh), (left // dw, right // dw), (0, 0), (0, 0), (0, 0)))
    else:
        x = x.pad(((0, 0), (0, 0), (top, bottom), (left, right)))
        phases = x.reshape(n, c, a, dh, b, dw).permute(1, 2, 4, 3, 5, 0)
    phases = phases.reshape(c, a, b, dh * dw * n)
    out = conv2d(phases.permute(3, 0, 1, 2), weight, bias, groups=groups)  # (dh * dw * n, O, a', b')
    o, ah, bw = out.shape[1:]
    out = out.permute(1, 2, 3, 0).reshape(o, ah, bw, dh, dw, n).permute(0, 1, 3, 2, 4, 5)
    out = out.reshape(o, ah * dh, bw * dw, n).permute(3, 0, 1, 2)  # row a * dh + i, column b * dw + j
    return out[:, :, :ho, :wo] if ah * dh > ho or bw * dw > wo else out


def conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1, padding: int = 0,
           dilation: int = 1, groups: int = 1) -> Tensor:
    """1-D cross-correlation of x (N, C, L) with weight (out, C / groups, k): conv2d on a
    height-1 image, so it has conv2d's kernels and gradients."""
    x = _tensor(x, "conv1d")
    if x.ndim != 3 or weight.ndim != 3:
        raise ShapeError(f"conv1d: input must be (N, C, L) and weight (out, C / groups, k), got {x.shape} and "
                         f"{weight.shape}")
    out = conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, stride=(1, int(stride)), padding=(0, int(padding)),
                 dilation=(1, int(dilation)), groups=groups)
    return out.squeeze(2)


def max_pool1d(x: Tensor, kernel_size: int, stride: int | None = None, padding: int = 0, dilation: int = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor:
    """Window maxima along the last axis of (N, C, L)."""
    x = _tensor(x, "max_pool1d")
    s = kernel_size if stride is None else stride
    return max_pool2d(x.unsqueeze(2), (1, kernel_size), (1, s), (0, padding), (1, dilation), ceil_mode,
                      return_indices).squeeze(2)


def avg_pool1d(x: Tensor, kernel_size: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Window means along the last axis of (N, C, L)."""
    x = _tensor(x, "avg_pool1d")
    s = kernel_size if stride is None else stride
    return avg_pool2d(x.unsqueeze(2), (1, kernel_size), (1, s), (0, padding), ceil_mode,
                      count_include_pad).squeeze(2)


def interpolate(x: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                align_corners: bool | None = None) -> Tensor:
    """Resize the last two axes of (N, C, H, W) to `size` (or by `scale_factor`), PyTorch's
    way: "nearest" takes input index floor(i * in / out); "bilinear" weighs the two nearest
    rows and columns (align_corners as PyTorch's). Both are gathers, so gradients flow."""
    x = _tensor(x, "interpolate")
    if x.ndim != 4:
        raise ValueError(f"interpolate: input must be 4-D (N, C, H, W), got shape {x.shape}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give size or scale_factor, not both")
    h, w = x.shape[2:]
    if size is not None:
        oh, ow = int_pair(size, "interpolate", "size")
        scales = (h / oh, w / ow)
    else:
        sh, sw = (scale_factor, scale_factor) if np.ndim(scale_factor) == 0 else tuple(scale_factor)
        oh, ow = int(np.floor(h * sh)), int(np.floor(w * sw))
        scales = (1.0 / sh, 1.0 / sw)
    check_positive("interpolate", height=oh, width=ow)
    if mode == "nearest":
        rows = np.minimum(np.floor(np.arange(oh) * scales[0]).astype(np.int64), h - 1)
        cols = np.minimum(np.floor(np.arange(ow) * scales[1]).astype(np.int64), w - 1)
        return x[:, :, rows][:, :, :, cols]
    if mode != "bilinear":
        raise ValueError(f"interpolate: mode must be 'nearest' or 'bilinear', got {mode!r}")

    def taps(n_in: int, n_out: int, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if align_corners:
            src = np.arange(n_out) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        else:
            src = np.maximum((np.arange(n_out) + 0.5) * scale - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo).astype(x.dtype)

    r0, r1, fr = taps(h, oh, scales[0])
    c0, c1, fc = taps(w, ow, scales[1])
    fr, fc = Tensor.wrap(fr.reshape(-1, 1)), Tensor.wrap(fc)
    top = x[:, :, r0] * (1 - fr) + x[:, :, r1] * fr
    return top[:, :, :, c0] * (1 - fc) + top[:, :, :, c1] * fc


def isclose(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Tensor:
    """|a - b| <= atol + rtol * |b| elementwise, as a bool tensor (no gradient)."""
    a_, b_ = (v.data if isinstance(v, Tensor) else np.asarray(v) for v in (a, b))
    return Tensor.wrap(np.isclose(a_, b_, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
    """Whether all elements of `a` and `b` are within `atol + rtol * |b|` (PyTorch's `allclose`)."""
    return bool(isclose(a, b, rtol, atol, equal_nan).data.all())


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Tensor:
    """The transposed convolution (conv2d's input gradient as a layer): x (N, C_in, H, W),
    weight (C_in, C_out / groups, kh, kw), output (N, C_out, (H - 1) * stride - 2 * padding
    + dilation * (kh - 1) + output_padding + 1, ...). Groups split the channels as in conv2d;
    dilation spreads the kernel's taps (zeros between them)."""
    x = _tensor(x, "conv_transpose2d")
    same_float_dtype("conv_transpose2d", x, weight, bias)
    s, p = int_pair(stride, "conv_transpose2d", "stride"), int_pair(padding, "conv_transpose2d", "padding")
    op = int_pair(output_padding, "conv_transpose2d", "output_padding")
    d = int_pair(dilation, "conv_transpose2d", "dilation")
    check_positive("conv_transpose2d", dilation=min(d), groups=groups)
    if x.ndim != 4 or weight.ndim != 4 or weight.shape[0] != x.shape[1] or x.shape[1] % groups:
        raise ShapeError(f"conv_transpose2d: input {x.shape} and weight {weight.shape} do not fit with groups={groups} "
                         "(input (N, C_in, H, W), weight (C_in, C_out / groups, kh, kw))")
    if any(o >= max(st, dd) for o, st, dd in zip(op, s, d)):
        raise ValueError(f"conv_transpose2d: output_padding {op} must be smaller than stride {s} or dilation {d}")
    if s == tuple(weight.shape[2:]) and p == op == (0, 0) and d == (1, 1) and groups == 1:
        return _transpose_without_overlap(x, weight, bias)
    if d != (1, 1):
        c_in, c_out, kh, kw = weight.shape
        weight = ops.GetItemGrad.apply(weight, index=(slice(None), slice(None), slice(None, None, d[0]),
                                                      slice(None, None, d[1])),
                                       shape=(c_in, c_out, (kh - 1) * d[0] + 1, (kw - 1) * d[1] + 1))
    size = [(n - 1) * st - 2 * pp + k + o for n, st, pp, k, o in zip(x.shape[2:], s, p, weight.shape[2:], op)]
    if min(size) < 1:
        raise ShapeError(f"conv_transpose2d: output size {tuple(size)} is empty (input {x.shape}, weight {weight.shape})")
    parts = zip(x.chunk(groups, axis=1), weight.chunk(groups, axis=0)) if groups > 1 else [(x, weight)]
    outs = [ops.Conv2dInputGrad.apply(xi, wi, stride=s, padding=p, x_shape=(x.shape[0], wi.shape[1], *size))
            for xi, wi in parts]
    out = outs[0] if len(outs) == 1 else concatenate(outs, axis=1)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def _transpose_without_overlap(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """conv_transpose2d with stride equal to the kernel (the usual 2x2, stride-2 upsampling):
    each input pixel writes its own kh x kw block, so the layer is one product,
    (C_out * kh * kw, C_in) @ (C_in, H * W * N), whose columns are then put in place. The
    batch stays innermost in memory throughout, as the convolutions read and write it."""
    n, c, h, w = x.shape
    o, kh, kw = weight.shape[1:]
    blocks = weight.reshape(c, o * kh * kw).T @ x.permute(1, 2, 3, 0).reshape(c, h * w * n)
    out = blocks.reshape(o, kh, kw, h, w, n).permute(0, 3, 1, 4, 2, 5).reshape(o, h * kh, w * kw, n)
    out = out.permute(3, 0, 1, 2)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor:
    """Window maxima; `padding` adds -inf borders, `dilation` spreads the window's taps,
    `ceil_mode` keeps a last partial window. PyTorch's argument order."""
    x = _tensor(x, "max_pool2d")
    if return_indices:
        raise ValueError("max_pool2d: return_indices=True is not supported (no max_unpool2d here)")
    d = int_pair(dilation, "max_pool2d", "dilation")
    check_positive("max_pool2d", dilation=min(d))
    if not ceil_mode and padding == 0 and d == (1, 1):
        return x.max_pool2d(kernel_size, stride)
    k, s, pads = _pool_geometry(x, "max_pool2d", kernel_size, stride, padding, ceil_mode, d)
    if d == (1, 1):
        return x.pad(((0, 0), (0, 0), *pads), value=float(np.finfo(x.dtype).min)).max_pool2d(k, s)
    if any(a or b for a, b in pads):  # a dilated window may hold padding only: -inf, as in PyTorch
        x = x.pad(((0, 0), (0, 0), *pads), value=-np.inf)
    oh, ow = ((n - (kk - 1) * dd - 1) // ss + 1 for n, kk, dd, ss in zip(x.shape[2:], k, d, s))
    taps = [x[:, :, a * d[0]:a * d[0] + (oh - 1) * s[0] + 1:s[0], b * d[1]:b * d[1] + (ow - 1) * s[1] + 1:s[1]]
            for a in range(k[0]) for b in range(k[1])]
    return stack(taps, axis=-1).amax(axis=-1)


def relu_max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None) -> Tensor:
    """max_pool2d(relu(x)) in one op, faster and with the same values and gradients
    (nn.Sequential uses it for a ReLU followed by a MaxPool2d; see `nn.fusion`)."""
    return _tensor(x, "relu_max_pool2d").relu_max_pool2d(kernel_size, stride)


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Window means; with `padding`, the zero border counts in the divisor unless
    count_include_pad=False; a partial last window (ceil_mode) divides by what it covers."""
    x = _tensor(x, "avg_pool2d")
    if not ceil_mode and padding == 0:
        return x.avg_pool2d(kernel_size, stride)
    k, s, pads = _pool_geometry(x, "avg_pool2d", kernel_size, stride, padding, ceil_mode)
    if not any(a or b for a, b in pads):
        return x.avg_pool2d(k, s)
    p = int_pair(padding, "avg_pool2d", "padding")
    counts = []  # per axis: 1 where an element counts in the divisor (the input, and the explicit padding
    for n, pp, (top, bottom) in zip(x.shape[2:], p, pads):  # if count_include_pad; never the ceil_mode overhang)
        line = np.zeros(top + n + bottom, dtype=x.dtype)
        line[top - (pp if count_include_pad else 0):top + n + (pp if count_include_pad else 0)] = 1
        counts.append(line)
    share = Tensor.wrap(np.outer(*counts)[None, None]).avg_pool2d(k, s)
    return x.pad(((0, 0), (0, 0), *pads)).avg_pool2d(k, s) / share


def adaptive_avg_pool2d(x: Tensor, output_size: Any) -> Tensor:
    """Means over a grid of output_size cells covering the input (cells overlap when sizes do not divide)."""
    x = _tensor(x, "adaptive_avg_pool2d")
    if int_pair(output_size, "adaptive_avg_pool2d", "output_size") == (1, 1):  # global: one mean, no window
        return x.mean(axis=(-2, -1), keepdims=True)
    return _adaptive_pool(x, output_size, "adaptive_avg_pool2d", Tensor.avg_pool2d, Tensor.mean)


def adaptive_max_pool2d(x: Tensor, output_size: Any) -> Tensor:
    """Maxima over a grid of output_size cells covering the input (as adaptive_avg_pool2d's cells)."""
    x = _tensor(x, "adaptive_max_pool2d")
    return _adaptive_pool(x, output_size, "adaptive_max_pool2d", Tensor.max_pool2d, Tensor.amax)


def _adaptive_pool(x: Tensor, output_size: Any, op: str, pool: Any, reduce: Any) -> Tensor:
    """One pooling window when the sizes divide; else PyTorch's cells (row i covers
    [floor(i h / oh), ceil((i + 1) h / oh)), likewise columns), each reduced."""
    oh, ow = int_pair(output_size, op, "output_size")
    h, w = x.shape[-2:]
    if h % oh == 0 and w % ow == 0:
        return pool(x, (h // oh, w // ow))
    rows = [(i * h // oh, -(-(i + 1) * h // oh)) for i in range(oh)]
    cols = [(j * w // ow, -(-(j + 1) * w // ow)) for j in range(ow)]
    cells = [stack([reduce(x[..., r0:r1, c0:c1], axis=(-2, -1)) for c0, c1 in cols], axis=-1) for r0, r1 in rows]
    return stack(cells, axis=-2)


def _padding_pairs(padding: Any, op: str) -> tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(isinstance(p, (tuple, list)) for p in padding):
        pairs = tuple((int(a), int(b)) for a, b in padding)
    else:
        ph, pw = int_pair(padding, op, "padding")
        pairs = ((ph, ph), (pw, pw))
    if any(v < 0 for pair in pairs for v in pair):
        raise ValueError(f"{op}: padding must be >= 0, got {padding!r}")
    return pairs  # type: ignore[return-value]


def _pool_geometry(x: Tensor, op: str, kernel_size: Any, stride: Any, padding: Any, ceil_mode: bool,
                   dilation: tuple[int, int] = (1, 1)):
    """(kernel, stride, ((top, bottom), (left, right))) with ceil_mode's extra bottom/right rows;
    a dilated window spans (kernel - 1) * dilation + 1 positions."""
    k = int_pair(kernel_size, op, "kernel_size")
    s = k if stride is None else int_pair(stride, op, "stride")
    p = int_pair(padding, op, "padding")
    if any(pp < 0 or 2 * pp > kk for pp, kk in zip(p, k)):
        raise ShapeError(f"{op}: padding {p} must be >= 0 and at most half the kernel {k}")
    if x.ndim != 4:
        raise ShapeError(f"{op}: input must be 4-D (N, C, H, W), got shape {x.shape}")
    pads = []
    for n, kk, ss, pp in zip(x.shape[2:], ((kk - 1) * dd + 1 for kk, dd in zip(k, dilation)), s, p):
        span = n + 2 * pp - kk
        if span < 0:
            raise ShapeError(f"{op}: kernel {k} is bigger than the padded input (shape {x.shape}, padding {p})")
        out = (-(-span // ss) if ceil_mode else span // ss) + 1
        if ceil_mode and (out - 1) * ss >= n + pp:  # the last window must start inside the input or left padding
            out -= 1
        pads.append((pp, (out - 1) * ss + kk - n - pp))
    return k, s, ((pads[0][0], max(pads[0][1], 0)), (pads[1][0], max(pads[1][1], 0)))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, with weight of shape (out, in) as in PyTorch (one op)."""
    x = _tensor(x, "linear")
    same_float_dtype("linear", x, weight, bias)
    return ops.Linear.apply(x, weight) if bias is None else ops.Linear.apply(x, weight, bias)


def relu(x: Tensor) -> Tensor:
    """max(x, 0) elementwise (PyTorch's `F.relu`)."""
    return _tensor(x, "relu").relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, else negative_slope * x (PyTorch's `F.leaky_relu`)."""
    return _tensor(x, "leaky_relu").leaky_relu(negative_slope)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, else alpha * (e**x - 1) (PyTorch's `F.elu`)."""
    return _tensor(x, "elu").elu(alpha)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), exact (`approximate='none'`, through erf) or the tanh approximation (`'tanh'`), as PyTorch's `F.gelu`."""
    return _tensor(x, "gelu").gelu(approximate)


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x) (PyTorch's `F.silu`)."""
    return _tensor(x, "silu").silu()


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e**(beta x)) / beta, linear above `threshold` (PyTorch's `F.softplus`)."""
    return _tensor(x, "softplus").softplus(beta, threshold)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clamped to [min_val, max_val] (PyTorch's `F.hardtanh`)."""
    return _tensor(x, "hardtanh").hardtanh(min_val, max_val)


def pad(x: Tensor, pad: Any, mode: str = "constant", value: float = 0.0) -> Tensor:
    """PyTorch's F.pad: `pad` is a flat (left, right, top, bottom, ...) sequence, the last
    axis first, two entries per padded axis; negative entries crop. `mode` is "constant"
    (with `value`), "reflect", "replicate" or "circular". A sequence of (before, after)
    pairs, one per axis (numpy's form, which `Tensor.pad` takes), is accepted too."""
    x = _tensor(x, "pad")
    flat = isinstance(pad, (tuple, list)) and all(isinstance(p, (int, np.integer)) for p in pad)
    if not flat:
        return x.pad(pad, mode, value)
    if len(pad) % 2 or len(pad) > 2 * x.ndim:
        raise ShapeError(f"pad: expected an even number of entries, at most 2 per axis ({2 * x.ndim} for shape "
                         f"{x.shape}), got {tuple(pad)}")
    pairs = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        pairs[x.ndim - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
    if any(a < 0 or b < 0 for a, b in pairs):  # negative padding crops
        if any(max(-a, 0) + max(-b, 0) > n for (a, b), n in zip(pairs, x.shape)):
            raise ShapeError(f"pad: cropping {tuple(pad)} is more than shape {x.shape} holds")
        x = x[tuple(slice(max(-a, 0), n - max(-b, 0)) for (a, b), n in zip(pairs, x.shape))]
        pairs = [(max(a, 0), max(b, 0)) for a, b in pairs]
    if mode == "circular":
        if any(max(a, b) > n for (a, b), n in zip(pairs, x.shape)):
            raise ShapeError(f"pad: circular padding {tuple(pad)} is larger than shape {x.shape}")
        return x.reshape(-1)[np.pad(np.arange(x.size).reshape(x.shape), pairs, mode="wrap")]
    return x.pad(pairs, mode, value)


where = where_op


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent elementwise (PyTorch's `torch.tanh`)."""
    return _tensor(x, "tanh").tanh()


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e**-x) elementwise (PyTorch's `torch.sigmoid`)."""
    return _tensor(x, "sigmoid").sigmoid()


@with_dim
def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) along `axis` (PyTorch's `F.log_softmax(x, dim)`)."""
    return _tensor(x, "log_softmax").log_softmax(axis)


@with_dim
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """e**x normalized along `axis` (PyTorch's `F.softmax(x, dim)`)."""
    return _tensor(x, "softmax").softmax(axis)


def cross_entropy(logits: Tensor, targets: Any, weight: Any = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of (N, C) logits against integer class targets (N,), with PyTorch's
    options: class `weight`s, targets equal to `ignore_index` left out, `reduction`
    "mean" (weighted by the targets' weights), "sum" or "none", and `label_smoothing`
    (the target mixed with the uniform distribution). Without class weights and ignored
    targets, with mean reduction, it is one fused op."""
    logits = _tensor(logits, "cross_entropy")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if t.dtype.kind == "f" and t.ndim == 2:  # class probabilities (N, C), PyTorch's soft targets
        return _soft_cross_entropy(logits, targets, t, weight, reduction, label_smoothing)
    if weight is None and reduction == "mean" and not (t == ignore_index).any():
        return logits.cross_entropy(t, label_smoothing)  # the fused op (which checks label_smoothing)
    check_label_smoothing("cross_entropy", label_smoothing)
    if logits.ndim != 2 or t.shape != logits.shape[:1] or t.dtype.kind not in "iu":
        raise ShapeError(f"cross_entropy: logits must be (N, C) and targets N integers, got {logits.shape} and "
                         f"{t.shape} {t.dtype}")
    n, c = logits.shape
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    if ((safe < 0) | (safe >= c)).any():
        raise DimError(f"cross_entropy: target values must lie in [0, {c}) or be ignore_index, got {t}")
    w = np.ones(c, logits.dtype) if weight is None else np.asarray(weight.data if isinstance(weight, Tensor) else weight,
                                                                    dtype=logits.dtype)
    logp = logits.log_softmax(1)
    picked = np.zeros((n, c), logits.dtype)
    picked[np.arange(n), safe] = 1
    target_w = w[safe] * valid
    per_sample = -(logp * Tensor.wrap(picked * target_w[:, None])).sum(axis=1)
    if label_smoothing:
        uniform = -(logp * Tensor.wrap(w[None, :] * valid[:, None].astype(logits.dtype))).sum(axis=1) / float(c)
        per_sample = per_sample * (1.0 - label_smoothing) + uniform * label_smoothing
    if reduction == "none":
        return per_sample
    total = per_sample.sum()
    return total if reduction == "sum" else total / float(max(target_w.sum(), np.finfo(logits.dtype).tiny))


def _soft_cross_entropy(logits: Tensor, targets: Any, t: np.ndarray, weight: Any, reduction: str,
                        label_smoothing: float) -> Tensor:
    """-sum over classes of weight * target probability * log_softmax, per sample; the mean
    divides by N (PyTorch's rule for probability targets)."""
    check_label_smoothing("cross_entropy", label_smoothing)
    if logits.ndim != 2 or t.shape != logits.shape:
        raise ShapeError(f"cross_entropy: probability targets must have the logits' shape {logits.shape}, got {t.shape}")
    p = targets if isinstance(targets, Tensor) else Tensor.wrap(t.astype(logits.dtype))
    if label_smoothing:
        p = p * (1.0 - label_smoothing) + label_smoothing / logits.shape[1]
    if weight is not None:
        p = p * (weight if isinstance(weight, Tensor) else Tensor.wrap(np.asarray(weight, dtype=logits.dtype)))
    per_sample = -(logits.log_softmax(1) * p).sum(axis=1)
    if reduction == "none":
        return per_sample
    return per_sample.sum() if reduction == "sum" else per_sample.mean()


def binary_cross_entropy_with_logits(logits: Tensor, targets: Any, weight: Any = None, pos_weight: Any = None,
                                     reduction: str = "mean") -> Tensor:
    """-[pos_weight t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], computed stably from the logits."""
    x = _tensor(logits, "binary_cross_entropy_with_logits")
    t = x.as_operand(targets, "binary_cross_entropy_with_logits")
    if t.shape != x.shape:
        raise ShapeError(f"binary_cross_entropy_with_logits: targets {t.shape} and logits {x.shape} differ in shape")
    log_sigmoid_neg = (-x).softplus()  # -log sigmoid(x) = log(1 + exp(-x)), stably and smoothly
    if pos_weight is None:
        loss = (1.0 - t) * x + log_sigmoid_neg
    else:
        pw = x.as_operand(pos_weight, "binary_cross_entropy_with_logits")
        loss = (1.0 - t) * x + (1.0 + (pw - 1.0) * t) * log_sigmoid_neg
    if weight is not None:
        loss = loss * x.as_operand(weight, "binary_cross_entropy_with_logits")
    if reduction == "none":
        return loss
    if reduction not in ("mean", "sum"):
        raise ValueError(f"binary_cross_entropy_with_logits: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return loss.sum() if reduction == "sum" else loss.mean()


def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel (axis 1) of x (N, C) or (N, C, ...) by the batch's mean and
    variance in training (updating the running statistics in place: the unbiased
    variance, as in PyTorch) or by the running statistics otherwise; then scale and shift."""
    x = _tensor(x, "batch_norm")
    if x.ndim < 2:
        raise ShapeError(f"batch_norm: input must have a channel axis (N, C, ...), got shape {x.shape}")
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:  # one op: the batch's statistics, the running ones updated from them, the scale and shift
        if x.size // x.shape[1] < 2:
            raise ShapeError(f"batch_norm: training needs more than one value per channel, got input {x.shape}")
        x = x if x.dtype.kind == "f" else x.float()
        weight = Tensor(np.ones(x.shape[1]), dtype=x.dtype) if weight is None else weight  # no affine: a constant 1 and 0
        bias = Tensor(np.zeros(x.shape[1]), dtype=x.dtype) if bias is None else bias
        running = None if running_mean is None or running_var is None else (running_mean.data, running_var.data)
        return ops.BatchNorm.apply(x, weight, bias, axes=axes, eps=float(eps), momentum=float(momentum),
                                   running=running)
    if running_mean is None or running_var is None:  # evaluation without running statistics: the batch's
        out = ops.Normalize.apply(x, axes=axes, eps=float(eps))
    else:
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
        out = (x - mean) * (var + float(eps)).rsqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    return out if bias is None else out + bias.reshape(shape)


def group_norm(x: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalize each sample's channels in `num_groups` groups (over the group's channels
    and all positions), then scale and shift per channel (PyTorch's group_norm)."""
    x = _tensor(x, "group_norm")
    if x.ndim < 2 or x.shape[1] % num_groups:
        raise ShapeError(f"group_norm: {num_groups} groups do not divide the channels of input {x.shape}")
    grouped = x.reshape(x.shape[0], num_groups, -1)
    out = ops.Normalize.apply(grouped, axes=(2,), eps=float(eps)).reshape(x.shape)
    per_channel = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(per_channel)
    return out if bias is None else out + bias.reshape(per_channel)


def layer_norm(x: Tensor, normalized_shape: Any, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalize over the last len(normalized_shape) axes of each sample, then scale and shift."""
    x = _tensor(x, "layer_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(shape):]) != tuple(shape):
        raise ShapeError(f"layer_norm: input {x.shape} does not end with normalized_shape {shape}")
    if weight is not None and bias is not None and tuple(weight.shape) == tuple(bias.shape) == shape:
        return ops.LayerNorm.apply(x, weight, bias, eps=float(eps))  # one op: statistics, scale and shift
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    out = ops.Normalize.apply(x, axes=axes, eps=float(eps))
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def nll_loss(log_probs: Tensor, targets: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of (N, C) log-probabilities at integer targets (N,), with
    PyTorch's options: class `weight`s, targets equal to `ignore_index` left out, and
    `reduction` "mean" (weighted by the targets' weights; one op when plain), "sum" or "none"."""
    x = _tensor(log_probs, "nll_loss")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"nll_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if weight is None and reduction == "mean" and not (t == ignore_index).any():
        return x.nll_loss(targets)
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    check_class_targets("nll_loss", x.data, safe)
    w = np.ones(x.shape[1], x.dtype) if weight is None else \
        np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=x.dtype)
    target_w = w[safe] * valid
    per_sample = -x[np.arange(len(t)), safe] * Tensor.wrap(target_w.astype(x.dtype))
    if reduction == "none":
        return per_sample
    total = per_sample.sum()
    return total if reduction == "sum" else total / float(max(target_w.sum(), np.finfo(x.dtype).tiny))


def mse_loss(input: Tensor, target: Any) -> Tensor:
    """Mean squared error; input and target must have the same shape."""
    return _tensor(input, "mse_loss").mse_loss(target)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, generator: np.random.Generator | None = None) -> Tensor:
    """In training, zero elements with probability p and scale the rest by 1/(1-p);
    otherwise return x unchanged."""
    return _tensor(x, "dropout").dropout(p, training, generator)


def dropout2d(x: Tensor, p: float = 0.5, training: bool = True, generator: np.random.Generator | None = None) -> Tensor:
    """In training, zero whole channels of (N, C, H, W) with probability p and scale the rest
    by 1/(1-p) (PyTorch's dropout2d); otherwise return x unchanged."""
    x = _tensor(x, "dropout2d")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if x.ndim != 4:
        raise ShapeError(f"dropout2d: input must be 4-D (N, C, H, W), got shape {x.shape}")
    rng = generator if generator is not None else default_generator()
    keep = rng.random((*x.shape[:2], 1, 1)) >= p
    return x * Tensor.wrap(keep.astype(x.dtype) / x.dtype.type(1.0 - p) if p < 1 else np.zeros_like(keep, x.dtype))


def one_hot(targets: Any, num_classes: int = -1) -> Tensor:
    """int64 (..., num_classes) with a 1 at each target (PyTorch's one_hot; num_classes -1:
    the largest target + 1)."""
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if t.dtype.kind not in "iu":
        raise TypeError(f"one_hot: targets must be integers, got dtype {t.dtype}")
    n = int(t.max()) + 1 if num_classes == -1 and t.size else int(num_classes)
    if t.size and (t.min() < 0 or t.max() >= n):
        raise ShapeError(f"one_hot: targets must lie in [0, {n}), got min {t.min()} max {t.max()}")
    return Tensor.wrap((t[..., None] == np.arange(n)).astype(np.int64))


@with_dim
def concatenate(tensors: list[Tensor], axis: int = 0) -> Tensor:
    """Tensors joined along an existing `axis` (PyTorch's `torch.cat`); the gradient is split back."""
    tensors = [_tensor(t, "concatenate") for t in tensors]
    same_float_dtype("concatenate", *tensors)
    nd = tensors[0].ndim if tensors else 1
    return ops.Concatenate.apply(*tensors, axis=normalize_axis(axis, nd, "concatenate"))


@with_dim
def stack(tensors: list[Tensor], axis: int = 0) -> Tensor:
    """Tensors of one shape stacked along a new `axis` (PyTorch's `torch.stack`)."""
    tensors = [_tensor(t, "stack") for t in tensors]
    same_float_dtype("stack", *tensors)
    nd = (tensors[0].ndim if tensors else 0) + 1
    return ops.Stack.apply(*tensors, axis=normalize_axis(axis, nd, "stack"))


cat = concatenate


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation as PyTorch's `torch.einsum`: `einsum("bij,bjk->bik", a, b)` or with
    the operands in one list; `...` for leading axes, an implicit output when `->` is absent
    (the subscripts seen once, in alphabetical order). Gradients are einsums too."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation comes first, as a string, got {type(equation).__name__}")
    tensors = [_tensor(t, "einsum") for t in operands]
    same_float_dtype("einsum", *tensors)
    plan = einsum_plan(equation, [t.shape for t in tensors])
    return ops.Einsum.apply(*tensors, equation=plan)


def _tensor(x: Any, op: str) -> Tensor:
    """`x` itself when it is a Tensor; otherwise an error naming the op and what it got."""
    if isinstance(x, Tensor):
        return x
    raise TypeError(f"{op}: input must be a Tensor, got {type(x).__module__}.{type(x).__qualname__}"
                    + (f" of shape {x.shape}" if hasattr(x, "shape") else "")
                    + "; wrap arrays with Tensor(array)")

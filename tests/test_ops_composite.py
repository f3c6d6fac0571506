"""Ops built from recorded ops (they inherit first and second derivatives): each is
checked against a plain numpy reference, with gradcheck and with gradgradcheck, on
Hypothesis-chosen inputs. With PyTorch installed, the neural-net ones are also
compared with torch.nn.functional."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import strategies as S
from conftest import require
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_lenet import Tensor, gradcheck, gradgradcheck, manual_seed, nn
from tinygrad_lenet import functional as F


@dataclass
class Case:
    """ours(*tensors) vs reference(*arrays), differentiated with respect to every input."""
    ours: Callable[..., Tensor]
    reference: Callable[..., np.ndarray]
    inputs: tuple[np.ndarray, ...]


CASES: dict[str, Callable[[st.DrawFn], Case]] = {}


def case(name: str):
    def register(builder):
        CASES[name] = st.composite(builder)()
        return builder
    return register


def _smooth(draw, min_dims=0, bound=2.0):
    return draw(S.smooth(draw(S.shapes(min_dims=min_dims)), bound=bound))


@case("square, reciprocal, rsqrt")
def _(draw):
    x = draw(S.away_from_zero(draw(S.shapes()), low=0.3, positive=True))
    return Case(lambda t: t.square() + t.reciprocal() + t.rsqrt(), lambda a: a * a + 1 / a + a ** -0.5, (x,))


@case("silu, gelu, gelu tanh, hardtanh")
def _(draw):
    x = draw(S.away_from_zero(draw(S.shapes()), low=0.05).map(lambda a: np.where(np.abs(np.abs(a) - 1) < 0.05, a * 0.8, a)))
    erf = np.vectorize(math.erf)

    def reference(a):
        silu = a / (1 + np.exp(-a))
        gelu = 0.5 * a * (1 + erf(a / np.sqrt(2)))
        gelu_tanh = 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3)))
        return silu + gelu + 2 * gelu_tanh + 3 * np.clip(a, -1, 1)
    return Case(lambda t: t.silu() + t.gelu() + t.gelu("tanh") * 2 + t.hardtanh() * 3, reference, (x,))


@case("min")
def _(draw):
    x = draw(S.without_ties(draw(S.shapes(min_dims=1))))
    axis = draw(st.integers(0, x.ndim - 1))
    return Case(lambda t: t.min(axis=axis), lambda a: a.min(axis=axis), (x,))


@case("prod")
def _(draw):
    shape = draw(S.shapes(min_dims=1))
    x = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 0.5, -1.5, 1.25, 2.0, -0.75])))
    axis, keepdims = draw(S.axes(x.ndim)), draw(st.booleans())
    return Case(lambda t: t.prod(axis, keepdims), lambda a: np.prod(a, axis=S.numpy_axis(axis, a.ndim), keepdims=keepdims),
                (x,))


@case("var, std")
def _(draw):
    x = draw(S.without_ties(draw(S.shapes(min_dims=1, min_side=2))))  # std is not differentiable at 0
    axis, correction = draw(S.axes(x.ndim).filter(lambda a: a != ())), draw(st.sampled_from([0, 1]))
    return Case(lambda t: t.var(axis, correction) + t.std(axis, correction),
                lambda a: np.var(a, axis=axis, ddof=correction) + np.std(a, axis=axis, ddof=correction), (x,))


@case("norm")
def _(draw):
    x = draw(S.away_from_zero(draw(S.shapes(min_dims=1)), low=0.2))
    p = draw(st.sampled_from([1, 2, 3]))
    return Case(lambda t: t.norm(p), lambda a: np.sum(np.abs(a) ** p) ** (1 / p), (x,))


@case("clip with tensor bounds")
def _(draw):
    x = draw(S.without_ties(draw(S.shapes(min_dims=1)), offset=0.025))
    low, high = draw(S.without_ties(x.shape, offset=0.05)), draw(S.without_ties(x.shape, offset=0.075)) + 5
    return Case(lambda t, lo, hi: t.clip(lo, hi), lambda a, lo, hi: np.minimum(np.maximum(a, lo), hi), (x, low, high))


@case("roll, repeat, tril, triu")
def _(draw):
    x = draw(S.smooth(draw(S.shapes(min_dims=2))))
    shift, reps = draw(st.integers(-3, 3)), draw(st.tuples(*[st.integers(1, 2)] * x.ndim))
    return Case(lambda t: t.roll(shift, 0).repeat(reps).sum() + t.tril(1).sum() * 2 + t.triu(-1).sum() * 3,
                lambda a: np.tile(np.roll(a, shift, 0), reps).sum() + np.tril(a, 1).sum() * 2 + np.triu(a, -1).sum() * 3,
                (x,))


@case("gather, scatter_add")
def _(draw):
    x = draw(S.smooth(draw(S.shapes(min_dims=2))))
    axis = draw(st.integers(0, x.ndim - 1))
    index = draw(hnp.arrays(np.int64, x.shape, elements=st.integers(0, x.shape[axis] - 1)))

    def reference(a, src):
        out = a.copy()
        grids = list(np.indices(index.shape, sparse=True))
        grids[axis] = index
        np.add.at(out, tuple(grids), src)
        return np.take_along_axis(a, index, axis) + out
    return Case(lambda t, s: t.gather(axis, index) + t.scatter_add(axis, index, s), reference,
                (x, draw(S.smooth(x.shape))))


@case("split, chunk")
def _(draw):
    x = draw(S.smooth(draw(S.shapes(min_dims=1))))
    n = x.shape[0]
    return Case(lambda t: sum(p.sum() * (i + 1) for i, p in enumerate(t.chunk(2))),
                lambda a: sum(p.sum() * (i + 1) for i, p in enumerate(np.array_split(a, min(2, n)))), (x,))


@case("pad: constant value, reflect, replicate")
def _(draw):
    x = draw(S.smooth(draw(S.shapes(min_dims=1, min_side=2))))
    width = [(draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))) for n in x.shape]
    value = draw(st.floats(-2, 2))
    return Case(lambda t: t.pad(width, value=value).sum() + (t.pad(width, mode="reflect") ** 2).sum()
                + (t.pad(width, mode="replicate") * 3).sum(),
                lambda a: np.pad(a, width, constant_values=value).sum() + (np.pad(a, width, mode="reflect") ** 2).sum()
                + (np.pad(a, width, mode="edge") * 3).sum(), (x,))


def _conv_reference(x, w, stride, dilation, groups, pads):
    """Direct loops: the definition of grouped, dilated, strided cross-correlation."""
    x = np.pad(x, ((0, 0), (0, 0), *pads))
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ho, wo = (h - dilation * (kh - 1) - 1) // stride + 1, (wd - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, o, ho, wo))
    per = o // groups
    for oc in range(o):
        g = oc // per
        for i in range(kh):
            for j in range(kw):
                patch = x[:, g * cg:(g + 1) * cg, i * dilation:i * dilation + stride * (ho - 1) + 1:stride,
                          j * dilation:j * dilation + stride * (wo - 1) + 1:stride]
                out[:, oc] += np.einsum("nchw,c->nhw", patch, w[oc, :, i, j])
    return out


@case("conv2d with groups, dilation and asymmetric padding")
def _(draw):
    groups, cg, per = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    k, dilation, stride = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = ((draw(st.integers(0, 2)), draw(st.integers(0, 2))), (draw(st.integers(0, 2)), draw(st.integers(0, 2))))
    span = dilation * (k - 1) + 1
    h = draw(st.integers(max(1, span - pads[0][0] - pads[0][1]), span + 3))
    w_ = draw(st.integers(max(1, span - pads[1][0] - pads[1][1]), span + 3))
    x = draw(S.smooth((1, groups * cg, h, w_)))
    weight = draw(S.smooth((groups * per, cg, k, k)))
    return Case(lambda t, u: F.conv2d(t, u, stride=stride, padding=pads, dilation=dilation, groups=groups),
                lambda a, u: _conv_reference(a, u, stride, dilation, groups, pads), (x, weight))


@case("conv_transpose2d")
def _(draw):
    cin, cout, k = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    h = draw(st.integers(max(1, (2 * padding - k) // stride + 2), 4))
    x, weight = draw(S.smooth((1, cin, h, h))), draw(S.smooth((cin, cout, k, k)))

    def reference(a, u):  # scatter every input pixel's kernel-weighted copy, then crop the padding
        full = np.zeros((1, cout, (h - 1) * stride + k, (h - 1) * stride + k))
        for i in range(h):
            for j in range(h):
                full[:, :, i * stride:i * stride + k, j * stride:j * stride + k] += np.einsum("nc,cokl->nokl", a[:, :, i, j], u)
        return full[:, :, padding:full.shape[2] - padding, padding:full.shape[3] - padding]
    return Case(lambda t, u: F.conv_transpose2d(t, u, stride=stride, padding=padding), reference, (x, weight))


@case("conv_transpose2d with groups, dilation and output_padding")
def _(draw):
    groups, dilation = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    cin, cout, k = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2)), draw(st.integers(1, 3))
    stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    extra = draw(st.integers(0, max(stride, dilation) - 1))
    span = dilation * (k - 1) + 1
    h = draw(st.integers(max(1, (2 * padding - span - extra) // stride + 2), 4))
    x, weight = draw(S.smooth((1, cin, h, h))), draw(S.smooth((cin, cout // groups, k, k)))
    size = (h - 1) * stride + span + extra

    def reference(a, u):  # each input pixel adds its group's dilated kernel at stride steps; then crop
        full = np.zeros((1, cout, size, size))
        gi, go = cin // groups, cout // groups
        for g in range(groups):
            for i in range(h):
                for j in range(h):
                    patch = np.einsum("nc,cokl->nokl", a[:, g * gi:(g + 1) * gi, i, j], u[g * gi:(g + 1) * gi])
                    full[:, g * go:(g + 1) * go, i * stride:i * stride + span:dilation,
                         j * stride:j * stride + span:dilation] += patch
        return full[:, :, padding:size - padding, padding:size - padding]
    return Case(lambda t, u: F.conv_transpose2d(t, u, stride=stride, padding=padding, output_padding=extra,
                                                groups=groups, dilation=dilation), reference, (x, weight))


@case("max_pool2d with dilation")
def _(draw):
    k, stride, dilation = draw(st.integers(2, 3)), draw(st.integers(1, 2)), draw(st.integers(2, 3))
    padding, ceil = draw(st.integers(0, k // 2)), draw(st.booleans())
    span = dilation * (k - 1) + 1
    h, w = draw(st.integers(span, span + 3)), draw(st.integers(span, span + 2))  # no window of padding only (-inf)
    x = draw(S.without_ties((1, 2, h, w)))

    def reference(a):
        padded = np.pad(a, ((0, 0), (0, 0), (padding, padding + stride), (padding, padding + stride)),
                        constant_values=-np.inf)
        outs = []
        for n in (h, w):
            out = (-(-(n + 2 * padding - span) // stride) if ceil else (n + 2 * padding - span) // stride) + 1
            outs.append(out - 1 if ceil and (out - 1) * stride >= n + padding else out)
        out = np.zeros((1, 2, *outs))
        for i in range(outs[0]):
            for j in range(outs[1]):
                win = padded[:, :, i * stride:i * stride + span:dilation, j * stride:j * stride + span:dilation]
                out[:, :, i, j] = win.max(axis=(2, 3))
        return out
    return Case(lambda t: F.max_pool2d(t, k, stride, padding, dilation, ceil), reference, (x,))


@case("max_pool2d and avg_pool2d with padding and ceil_mode")
def _(draw):
    k, stride = draw(st.integers(2, 3)), draw(st.integers(1, 3))
    padding, ceil = draw(st.integers(0, k // 2)), draw(st.booleans())
    h, w = draw(st.integers(k, k + 3)), draw(st.integers(k, k + 3))
    x = draw(S.without_ties((1, 2, h, w)))

    def reference(a):
        def pool(reduce, fill, include):
            out_h = (-(-(h + 2 * padding - k) // stride) if ceil else (h + 2 * padding - k) // stride) + 1
            out_w = (-(-(w + 2 * padding - k) // stride) if ceil else (w + 2 * padding - k) // stride) + 1
            if ceil and (out_h - 1) * stride >= h + padding:
                out_h -= 1
            if ceil and (out_w - 1) * stride >= w + padding:
                out_w -= 1
            out = np.zeros((1, 2, out_h, out_w))
            for i in range(out_h):
                for j in range(out_w):
                    r0, c0 = i * stride - padding, j * stride - padding
                    r1, c1 = min(r0 + k, h + padding), min(c0 + k, w + padding)
                    win = a[:, :, max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)]
                    count = (r1 - r0) * (c1 - c0) if include else win.shape[2] * win.shape[3]
                    out[:, :, i, j] = win.max(axis=(2, 3)) if reduce == "max" else win.sum(axis=(2, 3)) / count
            return out
        return pool("max", None, True) + pool("avg", 0, True) * 2 + pool("avg", 0, False) * 3
    return Case(lambda t: F.max_pool2d(t, k, stride, padding, ceil_mode=ceil) + F.avg_pool2d(t, k, stride, padding, ceil) * 2
                + F.avg_pool2d(t, k, stride, padding, ceil, count_include_pad=False) * 3, reference, (x,))


@case("adaptive_avg_pool2d")
def _(draw):
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    oh, ow = draw(st.integers(1, h)), draw(st.integers(1, w))
    x = draw(S.smooth((1, 2, h, w)))

    def reference(a):
        out = np.zeros((1, 2, oh, ow))
        for i in range(oh):
            for j in range(ow):
                out[:, :, i, j] = a[:, :, i * h // oh:-(-(i + 1) * h // oh), j * w // ow:-(-(j + 1) * w // ow)].mean(axis=(2, 3))
        return out
    return Case(lambda t: F.adaptive_avg_pool2d(t, (oh, ow)), reference, (x,))


@case("batch_norm (training) and layer_norm")
def _(draw):
    x = draw(S.smooth((draw(st.integers(2, 3)), 2, draw(st.integers(1, 3)), draw(st.integers(1, 3))), bound=3.0))
    gamma, beta = draw(S.smooth((2,))), draw(S.smooth((2,)))

    def reference(a, g, b):
        mean, var = a.mean(axis=(0, 2, 3), keepdims=True), a.var(axis=(0, 2, 3), keepdims=True)
        bn = (a - mean) / np.sqrt(var + 1e-5) * g.reshape(1, 2, 1, 1) + b.reshape(1, 2, 1, 1)
        lm, lv = a.mean(axis=(1, 2, 3), keepdims=True), a.var(axis=(1, 2, 3), keepdims=True)
        return bn + (a - lm) / np.sqrt(lv + 1e-5) * 0.5
    return Case(lambda t, g, b: F.batch_norm(t, None, None, g, b, training=True) + F.layer_norm(t, t.shape[1:]) * 0.5,
                reference, (x, gamma, beta))


@case("cross_entropy with weight, ignore_index, label_smoothing")
def _(draw):
    n, c = draw(st.integers(2, 4)), draw(st.integers(2, 4))
    logits = draw(S.smooth((n, c), bound=3.0))
    targets = draw(hnp.arrays(np.int64, n, elements=st.integers(0, c - 1)))
    targets[0] = -100
    weight = draw(hnp.arrays(np.float64, c, elements=st.floats(0.5, 2.0)))
    eps, reduction = draw(st.floats(0, 0.5)), draw(st.sampled_from(["mean", "sum", "none"]))

    def reference(z):
        logp = z - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)) - z.max(1, keepdims=True)
        valid = targets != -100
        safe = np.where(valid, targets, 0)
        nll = -logp[np.arange(n), safe] * weight[safe] * valid
        smooth = -(logp * weight).sum(1) / c * valid
        per = (1 - eps) * nll + eps * smooth
        return per if reduction == "none" else per.sum() if reduction == "sum" else per.sum() / (weight[safe] * valid).sum()
    return Case(lambda t: F.cross_entropy(t, targets, weight=weight, reduction=reduction, label_smoothing=eps),
                reference, (logits,))


@case("binary_cross_entropy_with_logits")
def _(draw):
    shape = draw(S.shapes(min_dims=1))
    x, t = draw(S.smooth(shape, bound=4.0)), draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1)))
    pos_weight = draw(hnp.arrays(np.float64, shape[-1:], elements=st.floats(0.5, 2.0)))

    def reference(z, target):
        p = 1 / (1 + np.exp(-z))
        return (-(pos_weight * target * np.log(p) + (1 - target) * np.log(1 - p))).mean()
    return Case(lambda z, target: F.binary_cross_entropy_with_logits(z, target, pos_weight=pos_weight), reference, (x, t))


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=15)
@given(data=st.data())
def test_composite_op_matches_numpy_and_has_first_and_second_derivatives(name: str, data: st.DataObject) -> None:
    c = data.draw(CASES[name], label=name)
    out = c.ours(*[Tensor(a, dtype=np.float64) for a in c.inputs])
    np.testing.assert_allclose(out.data, c.reference(*c.inputs), rtol=1e-9, atol=1e-9)
    assert gradcheck(c.ours, c.inputs)
    assert gradgradcheck(c.ours, c.inputs)


# ------------------------------------------------------------------ running statistics and modules
def test_batch_norm_running_statistics_and_eval_mode():
    manual_seed(0)
    bn = nn.BatchNorm2d(3).double()
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((4, 3, 2, 2)) * 2 + 1 for _ in range(3)]
    mean, var = np.zeros(3), np.ones(3)
    for b in batches:
        bn(Tensor(b, dtype=np.float64))
        mean = 0.9 * mean + 0.1 * b.mean(axis=(0, 2, 3))
        var = 0.9 * var + 0.1 * b.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean.data, mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, var, rtol=1e-12)
    bn.eval()
    out = bn(Tensor(batches[0], dtype=np.float64))
    np.testing.assert_allclose(out.data, (batches[0] - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5))
    np.testing.assert_array_equal(bn.running_mean.data, mean)  # eval leaves them alone
    assert set(bn.state_dict()) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    assert bn.num_batches_tracked.item() == 3
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected 4-D input with 3 channels, got shape \(4, 2\)"):
        bn(Tensor(np.zeros((4, 2))))


def test_new_modules_run_and_print_like_pytorch():
    manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.GELU(),
                          nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=4), nn.LeakyReLU(0.1), nn.SiLU(),
                          nn.ConvTranspose2d(4, 2, 2, stride=2), nn.ELU(), nn.Softplus(), nn.Hardtanh(),
                          nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), nn.AvgPool2d(2, count_include_pad=False),
                          nn.AdaptiveAvgPool2d(3), nn.Flatten(), nn.LayerNorm(18), nn.Linear(18, 5))
    out = model(Tensor(np.random.default_rng(0).standard_normal((2, 1, 8, 8), dtype=np.float32)))
    assert out.shape == (2, 5) and out.dtype == np.float32
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)(out, np.array([1, 4])) + nn.BCEWithLogitsLoss()(out, Tensor(np.ones((2, 5))))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    text = repr(model)
    assert "Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1), padding=(2, 2), dilation=(2, 2), groups=4)" in text
    assert "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True)" in text


def test_neural_net_composites_match_pytorch():
    require(__import__("importlib").util.find_spec("torch") is not None, "PyTorch is not installed")
    import torch
    import torch.nn.functional as TF
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 9, 7))
    t, xt = torch.tensor(x), Tensor(x, dtype=np.float64)
    w = rng.standard_normal((6, 2, 3, 3))
    np.testing.assert_allclose(F.conv2d(xt, Tensor(w, dtype=np.float64), stride=2, padding=2, dilation=2, groups=2).data,
                               TF.conv2d(t, torch.tensor(w), stride=2, padding=2, dilation=2, groups=2).numpy(), atol=1e-12)
    for k, s, p, ceil in [(3, 2, 1, True), (2, 2, 0, True), (3, 1, 1, False)]:
        np.testing.assert_allclose(F.max_pool2d(xt, k, s, p, ceil_mode=ceil).data,
                                   TF.max_pool2d(t, k, s, p, ceil_mode=ceil).numpy())
        np.testing.assert_allclose(F.avg_pool2d(xt, k, s, p, ceil, False).data,
                                   TF.avg_pool2d(t, k, s, p, ceil_mode=ceil, count_include_pad=False).numpy(), atol=1e-12)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(xt, (4, 3)).data, TF.adaptive_avg_pool2d(t, (4, 3)).numpy(),
                               atol=1e-12)
    wt = rng.standard_normal((4, 3, 3, 3))
    np.testing.assert_allclose(F.conv_transpose2d(xt, Tensor(wt, dtype=np.float64), stride=2, padding=1,
                                                  output_padding=1).data,
                               TF.conv_transpose2d(t, torch.tensor(wt), stride=2, padding=1, output_padding=1).numpy(),
                               atol=1e-12)
    for k, s, p, d, ceil in [(3, 1, 0, 2, False), ((2, 3), (2, 1), (1, 1), (2, 3), True), (2, 2, 1, 3, True)]:
        np.testing.assert_allclose(F.max_pool2d(xt, k, s, p, d, ceil).data, TF.max_pool2d(t, k, s, p, d, ceil).numpy())
    tiny = np.zeros((1, 1, 1, 1))  # windows holding padding only give -inf, as PyTorch's
    np.testing.assert_array_equal(F.max_pool2d(Tensor(tiny), 2, 1, 1, 2).data, TF.max_pool2d(torch.tensor(tiny), 2, 1, 1, 2))
    np.testing.assert_allclose(F.max_pool1d(xt[:, :, 0], 3, 1, 1, 2).data, TF.max_pool1d(t[:, :, 0], 3, 1, 1, 2).numpy())
    wg = rng.standard_normal((4, 3, 3, 2))
    np.testing.assert_allclose(F.conv_transpose2d(xt, Tensor(wg, dtype=np.float64), stride=(2, 1), padding=(1, 0),
                                                  output_padding=(1, 0), groups=2, dilation=(1, 2)).data,
                               TF.conv_transpose2d(t, torch.tensor(wg), stride=(2, 1), padding=(1, 0), output_padding=(1, 0),
                                                   groups=2, dilation=(1, 2)).numpy(), atol=1e-12)
    logits, targets = rng.standard_normal((5, 4)), np.array([0, 3, -100, 2, 1])
    cw = rng.uniform(0.5, 2, 4)
    got = F.cross_entropy(Tensor(logits, dtype=np.float64), targets, weight=cw, label_smoothing=0.2).item()
    assert got == pytest.approx(TF.cross_entropy(torch.tensor(logits), torch.tensor(targets), weight=torch.tensor(cw),
                                                 label_smoothing=0.2).item(), rel=1e-12)

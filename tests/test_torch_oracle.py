"""A second oracle: every op's forward and backward compared with PyTorch in float64,
on the inputs the gradient suite's Hypothesis strategies draw.

Each case of `test_ops_grad.GRAD_CASES` is run with our tensors; every recorded node
of the op under test is then recomputed by PyTorch from the same input arrays and
attributes, and its backward (given one random output gradient) is compared with
`torch.autograd.grad`. Needs PyTorch (the `bench` extra); without it the tests skip
with a reason, and in CI (which installs it) a skip fails.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

import numpy as np
import pytest
from conftest import require
from hypothesis import given
from hypothesis import strategies as st
from test_op_coverage import package_ops
from test_ops_grad import GRAD_CASES

from tinygrad_lenet.autograd import topological_order, unbroadcast

HAVE_TORCH = importlib.util.find_spec("torch") is not None
if HAVE_TORCH:
    import torch
    import torch.nn.functional as TF


@pytest.fixture(autouse=True)
def needs_torch() -> None:
    require(HAVE_TORCH, "PyTorch is not installed (pip install -e '.[bench]')")


def _dims(axis: Any, ndim: int) -> Any:
    """Our axis attribute as torch's dim (None: every axis)."""
    if axis is None:
        return tuple(range(ndim))
    return axis if isinstance(axis, tuple) else (axis,)


def _reduction(fn: Callable) -> Callable:
    def apply(x, *, axis, keepdims):
        dims = _dims(axis, x.dim())
        if x.dim() == 0 or dims == ():  # nothing to reduce
            return x.clone()
        return fn(x, dims, keepdims)
    return apply


def _pad(x, *, pad_width):
    flat = [int(v) for pair in reversed(pad_width) for v in pair]
    return TF.pad(x, flat)


def _torch_pad(x, padding):
    """(N, C, H, W) x padded by ((top, bottom), (left, right))."""
    (top, bottom), (left, right) = padding
    return TF.pad(x, [left, right, top, bottom])


def _padded_shape(shape, padding):
    return (*shape[:2], shape[2] + sum(padding[0]), shape[3] + sum(padding[1]))


def _torch_crop(x, padding):
    """The inverse of `_torch_pad`: the padding cut off."""
    (top, bottom), (left, right) = padding
    return x[:, :, top:x.shape[2] - bottom, left:x.shape[3] - right]


def _getitem(x, *, index):
    """Any numpy index (negative steps too, which torch slicing lacks) as a gather of flat positions."""
    positions = np.arange(x.numel()).reshape(tuple(x.shape))[index]
    return x.reshape(-1)[torch.from_numpy(np.array(positions, order="C"))]


def _dropout(x, *, p, generator, ctx):
    """Dropout is random: PyTorch applies the keep-mask our op drew (the one its backward uses)."""
    keep = torch.from_numpy(np.asarray(ctx.saved_tensors[0] != 0))
    return x * keep / (1 - p) if p < 1 else x * 0


def _vjp(forward: Callable, shape_or_value: Any, grad):
    """d forward(z) / d z . grad at z (zeros of a shape, or a value), differentiable in grad."""
    value = np.zeros(shape_or_value) if isinstance(shape_or_value, tuple) else shape_or_value
    z = torch.tensor(value, dtype=grad.dtype, requires_grad=True)
    return torch.autograd.grad(forward(z), z, grad, create_graph=True)[0]


# Our op name -> the PyTorch computation of one node, from its inputs and attributes.
TORCH_OPS: dict[str, Callable[..., Any]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "maximum": torch.maximum if HAVE_TORCH else None, "minimum": torch.minimum if HAVE_TORCH else None,
    "pow": lambda x, *, exponent: torch.pow(x, exponent),
    "neg": lambda x: -x, "exp": lambda x: torch.exp(x), "log": lambda x: torch.log(x),
    "sqrt": lambda x: torch.sqrt(x), "relu": lambda x: torch.relu(x), "tanh": lambda x: torch.tanh(x),
    "sigmoid": lambda x: torch.sigmoid(x),
    "cast": lambda x, *, dtype: x.to({np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
                                     [np.dtype(dtype)]),
    "sum": _reduction(lambda x, d, k: torch.sum(x, dim=d, keepdim=k)),
    "mean": _reduction(lambda x, d, k: torch.mean(x, dim=d, keepdim=k)),
    "max": _reduction(lambda x, d, k: torch.amax(x, dim=d, keepdim=k)),
    "logsumexp": _reduction(lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k)),
    "reshape": lambda x, *, shape: torch.reshape(x, shape),
    "permute": lambda x, *, axes: x.permute(*axes),
    "broadcast_to": lambda x, *, shape: x.broadcast_to(shape),
    "pad": _pad,
    "getitem": _getitem,
    "concatenate": lambda *xs, axis: torch.cat(xs, dim=axis),
    "stack": lambda *xs, axis: torch.stack(xs, dim=axis),
    "matmul": lambda a, b: torch.matmul(a, b),
    "linear": lambda x, w, b=None: TF.linear(x, w, b),
    "einsum": lambda *xs, equation: torch.einsum(equation, *xs),
    "silu": lambda x: TF.silu(x), "gelu": lambda x, *, approximate: TF.gelu(x, approximate=approximate),
    "batch_norm": lambda x, w, b, *, axes, eps, momentum, running: TF.batch_norm(x, None, None, w, b, training=True,
                                                                                  eps=eps),
    "layer_norm": lambda x, w, b, *, eps: TF.layer_norm(x, tuple(w.shape), w, b, eps=eps),
    "normalize": lambda x, *, axes, eps: (x - x.mean(dim=axes, keepdim=True)) / torch.sqrt(
        x.var(dim=axes, correction=0, keepdim=True) + eps),
    "depthwise_conv2d": lambda x, w, b=None, *, stride, dilation, padding=((0, 0), (0, 0)):
        TF.conv2d(_torch_pad(x, padding), w, b, stride=stride, dilation=dilation, groups=x.shape[1]),
    "depthwise_conv2d_input_grad": lambda grad, w, *, stride, dilation, x_shape, padding=((0, 0), (0, 0)):
        _torch_crop(torch.nn.grad.conv2d_input(_padded_shape(x_shape, padding), w, grad, stride=stride,
                                               dilation=dilation, groups=w.shape[0]), padding),
    "depthwise_conv2d_weight_grad": lambda x, grad, *, stride, dilation, w_shape, padding=((0, 0), (0, 0)):
        torch.nn.grad.conv2d_weight(_torch_pad(x, padding), w_shape, grad, stride=stride, dilation=dilation,
                                    groups=x.shape[1]),
    "conv2d": lambda x, w, b=None, *, stride, padding: TF.conv2d(x, w, b, stride=stride, padding=padding),
    "max_pool2d": lambda x, *, kernel_size, stride: TF.max_pool2d(x, kernel_size, stride),
    "relu_max_pool2d": lambda x, *, kernel_size, stride: TF.max_pool2d(TF.relu(x), kernel_size, stride),
    "avg_pool2d": lambda x, *, kernel_size, stride: TF.avg_pool2d(x, kernel_size, stride),
    "log_softmax": lambda x, *, axis: torch.log_softmax(x, dim=axis),
    "softmax": lambda x, *, axis: torch.softmax(x, dim=axis),
    "cross_entropy": lambda logits, targets, *, label_smoothing=0.0:
        TF.cross_entropy(logits, targets.long(), label_smoothing=label_smoothing),
    "nll_loss": lambda logp, targets: TF.nll_loss(logp, targets.long()),
    "mse_loss": lambda a, b: TF.mse_loss(a, b),
    "dropout": _dropout,
    "abs": lambda x: torch.abs(x), "sin": lambda x: torch.sin(x), "cos": lambda x: torch.cos(x),
    "log1p": lambda x: torch.log1p(x), "expm1": lambda x: torch.expm1(x), "erf": lambda x: torch.erf(x),
    "softplus": lambda x, *, beta, threshold: TF.softplus(x, beta, threshold),
    "leaky_relu": lambda x, *, negative_slope: TF.leaky_relu(x, negative_slope),
    "elu": lambda x, *, alpha: TF.elu(x, alpha),
    "where": lambda cond, a, b: torch.where(cond.bool(), a, b),
    "clip": lambda x, *, low, high: torch.clamp(x, low, high),
    "pow_tensor": lambda a, b: torch.pow(a, b),
    "flip": lambda x, *, axes: torch.flip(x, axes),
    "cumsum": lambda x, *, axis: torch.cumsum(x, axis),
    "conv2d_input_grad": lambda grad, w, *, stride, padding, x_shape, grad_matrix=None:
        torch.nn.grad.conv2d_input(x_shape, w, grad, stride=stride, padding=padding),
    "conv2d_weight_grad": lambda x, grad, *, stride, padding, w_shape, grad_matrix=None, padded_input=None,
                                 patch_grid=None:
        torch.nn.grad.conv2d_weight(x, w_shape, grad, stride=stride, padding=padding),
    "max_pool2d_grad": lambda grad, *, x, out, kernel_size, stride:
        _vjp(lambda z: TF.max_pool2d(z, kernel_size, stride), x, grad),
    "avg_pool2d_grad": lambda grad, *, kernel_size, stride, x_shape, order:
        _vjp(lambda z: TF.avg_pool2d(z, kernel_size, stride), tuple(x_shape), grad),
    "getitem_grad": lambda grad, *, index, shape: _vjp(lambda z: _getitem(z, index=index), tuple(shape), grad),
}


def test_every_op_has_a_torch_counterpart() -> None:
    assert sorted(package_ops() - set(TORCH_OPS)) == []
    assert len(package_ops()) >= 55


def torch_node(op: str, ctx: Any):
    """(torch output, torch inputs) of one recorded node, the float inputs requiring grad."""
    inputs = [torch.tensor(p.data, requires_grad=p.dtype.kind == "f") for p in ctx.parents]
    kwargs = dict(ctx.attrs, ctx=ctx) if op == "dropout" else ctx.attrs
    return TORCH_OPS[op](*inputs, **kwargs), inputs


@pytest.mark.parametrize("op", sorted(GRAD_CASES))
@given(data=st.data())
def test_forward_and_backward_match_pytorch(op: str, data: st.DataObject) -> None:
    case = data.draw(GRAD_CASES[op], label=op)
    out = case.fn(*case.tensors(np.float64))
    nodes = [t for t in topological_order(out) if t.grad_fn is not None and t.grad_fn.op == op]
    assert nodes, f"the case did not record {op}"
    rng = np.random.default_rng(0)
    for node in nodes:
        ctx = node.grad_fn
        expected, inputs = torch_node(op, ctx)
        assert tuple(expected.shape) == node.shape, f"{op}: shape {node.shape}, PyTorch {tuple(expected.shape)}"
        np.testing.assert_allclose(node.data, expected.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=f"{op} forward")
        seed = rng.standard_normal(node.shape).astype(node.dtype)
        ours = ctx.fn.backward(ctx, seed)
        ours = ours if isinstance(ours, tuple) else (ours,)
        wanted = [t for t in inputs if t.requires_grad]
        theirs = torch.autograd.grad(expected, wanted, torch.from_numpy(seed), allow_unused=True)
        theirs_by_input = dict(zip((id(t) for t in wanted), theirs))
        for i, (t, parent, g) in enumerate(zip(inputs, ctx.parents, ours)):
            if not t.requires_grad or not parent.requires_grad:
                continue
            ref = theirs_by_input[id(t)]
            ref = np.zeros(parent.shape) if ref is None else ref.numpy()
            assert g is not None, f"{op}: no gradient for input {i}"
            g = unbroadcast(np.asarray(g), parent.shape) if np.shape(g) != parent.shape else np.asarray(g)
            np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-12, err_msg=f"{op} gradient of input {i}")

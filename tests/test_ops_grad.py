"""Property tests: for every op in `OPS`, autodiff gradients match central finite
differences over the full Jacobian in float64 (`gradcheck`), on random small
shapes and hyperparameters, with values kept away from kinks and ties.

Each op registers a Hypothesis strategy of `GradCase`s with `@grad_case(op)`;
`test_op_coverage.py` fails when a registered op has none, or when a case does
not actually record its op."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import strategies as S
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_lenet import OPS, Function, GradcheckError, Tensor, grad, gradcheck, gradgradcheck
from tinygrad_lenet import functional as F
from tinygrad_lenet.autograd import topological_order
from tinygrad_lenet.tensor import where as tensor_where


@dataclass(frozen=True)
class GradCase:
    """`fn(*tensors)` for tensors made from `inputs`; gradcheck differentiates
    with respect to every input. Constants live inside `fn`."""

    description: str
    fn: Callable[..., Tensor] = field(repr=False)
    inputs: tuple[np.ndarray, ...]
    tolerances: dict[str, float] = field(default_factory=dict)

    def tensors(self, dtype: Any) -> list[Tensor]:
        return [Tensor(a, requires_grad=True, dtype=dtype) for a in self.inputs]


GRAD_CASES: dict[str, st.SearchStrategy[GradCase]] = {}


def grad_case(*op_names: str) -> Callable:
    """Register a `@st.composite`-style builder `(draw, op) -> GradCase` as the
    property test of each named op."""
    def register(builder: Callable[..., GradCase]) -> Callable[..., GradCase]:
        for op in op_names:
            if op in GRAD_CASES:
                raise ValueError(f"op '{op}' already has a gradient case")
            GRAD_CASES[op] = st.composite(builder)(op)
        return builder
    return register


def recorded_ops(out: Tensor) -> set[str]:
    """Names of the ops recorded in the graph that produced `out`."""
    return {t.grad_fn.op for t in topological_order(out) if t.grad_fn is not None}


# ------------------------------------------------------------------ elementwise
ARITHMETIC = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}


def _binary_case(draw: st.DrawFn, op: str, apply: Callable, a: np.ndarray, b: np.ndarray,
                 forms: list[str]) -> GradCase:
    """`apply(a, b)` with tensors on both sides, or a constant (python scalar,
    numpy array or tensor without grad) on one side."""
    form = draw(st.sampled_from(forms))
    shapes = f"{a.shape} {b.shape}"
    if form == "tensor,tensor":
        return GradCase(f"{op} {form} {shapes}", lambda x, y: apply(x, y), (a, b))
    if form == "tensor,scalar":
        s = float(b.flat[0])
        return GradCase(f"{op} {form} {s}", lambda x: apply(x, s), (a,))
    if form == "scalar,tensor":
        s = float(a.flat[0])
        return GradCase(f"{op} {form} {s}", lambda y: apply(s, y), (b,))
    if form == "tensor,ndarray":
        return GradCase(f"{op} {form} {shapes}", lambda x: apply(x, b), (a,))
    if form == "ndarray,tensor":
        return GradCase(f"{op} {form} {shapes}", lambda y: apply(a, y), (b,))
    assert form == "constant,tensor"
    return GradCase(f"{op} {form} {shapes}", lambda y: apply(Tensor(a, dtype=y.dtype), y), (b,))


ALL_FORMS = ["tensor,tensor", "tensor,scalar", "scalar,tensor", "tensor,ndarray", "ndarray,tensor",
             "constant,tensor"]


@grad_case("add", "sub", "mul", "div")
def arithmetic_case(draw: st.DrawFn, op: str) -> GradCase:
    sa, sb = draw(S.broadcast_pairs())
    a = draw(S.smooth(sa))
    b = draw(S.away_from_zero(sb, low=0.5) if op == "div" else S.smooth(sb))
    return _binary_case(draw, op, ARITHMETIC[op], a, b, ALL_FORMS)


@grad_case("maximum", "minimum")
def extremum_case(draw: st.DrawFn, op: str) -> GradCase:
    sa, sb = draw(S.broadcast_pairs())
    # grids offset by half a step: |a - b| >= 0.1 everywhere, so no ties
    a, b = draw(S.without_ties(sa, 0.2)), draw(S.without_ties(sb, 0.2, offset=0.1))
    apply = (lambda x, y: x.maximum(y)) if op == "maximum" else (lambda x, y: x.minimum(y))
    return _binary_case(draw, op, apply, a, b,
                        ["tensor,tensor", "tensor,scalar", "tensor,ndarray", "constant,tensor"])


@grad_case("pow")
def pow_case(draw: st.DrawFn, op: str) -> GradCase:
    exponent = draw(st.sampled_from([0, 1, 2, 3, -1, -2, 0.5, 1.5, -0.5, 2.5]))
    shape = draw(S.shapes())
    # negative bases only with integer exponents; never near 0 (pole or kink)
    x = draw(S.away_from_zero(shape, low=0.3, positive=not float(exponent).is_integer()))
    return GradCase(f"x ** {exponent}", lambda t: t ** exponent, (x,))


UNARY = {
    "neg": (operator.neg, S.smooth),
    "exp": (Tensor.exp, S.smooth),
    "log": (Tensor.log, lambda s: S.away_from_zero(s, positive=True)),
    "sqrt": (Tensor.sqrt, lambda s: S.away_from_zero(s, positive=True)),
    "relu": (Tensor.relu, lambda s: S.away_from_zero(s, low=0.1)),
    "tanh": (Tensor.tanh, lambda s: S.smooth(s, bound=3.0)),
    "sigmoid": (Tensor.sigmoid, lambda s: S.smooth(s, bound=8.0)),
    "abs": (Tensor.abs, lambda s: S.away_from_zero(s, low=0.1)),
    "sin": (Tensor.sin, S.smooth),
    "cos": (Tensor.cos, S.smooth),
    "log1p": (Tensor.log1p, lambda s: S.smooth(s, bound=0.8)),
    "expm1": (Tensor.expm1, S.smooth),
    "erf": (Tensor.erf, S.smooth),
    "softplus": (lambda t: t.softplus(beta=2.0, threshold=3.0), lambda s: S.away_from_zero(s, low=0.1, high=3.0).map(
        lambda a: np.where(np.abs(a * 2 - 3.0) < 0.05, a + 0.2, a))),  # away from the switch to linear at x = 1.5
    "leaky_relu": (lambda t: t.leaky_relu(0.2), lambda s: S.away_from_zero(s, low=0.1)),
    "elu": (lambda t: t.elu(1.3), lambda s: S.away_from_zero(s, low=0.1)),
    "clip": (lambda t: t.clip(-1.0, 1.0), lambda s: S.away_from_zero(s, low=0.1).map(
        lambda a: np.where(np.abs(np.abs(a) - 1.0) < 0.1, a * 0.5, a))),  # away from the bounds
}


@grad_case(*UNARY)
def unary_case(draw: st.DrawFn, op: str) -> GradCase:
    apply, values = UNARY[op]
    x = draw(values(draw(S.shapes())))
    return GradCase(op, apply, (x,))


@grad_case("cast")
def cast_case(draw: st.DrawFn, op: str) -> GradCase:
    x = draw(S.smooth(draw(S.shapes())))

    def round_trip(t: Tensor) -> Tensor:
        other = np.float32 if t.dtype == np.float64 else np.float64
        return t.astype(other).astype(t.dtype)

    # float64 -> float32 -> float64: the float32 rounding (~1e-7) needs a larger eps
    return GradCase("cast round trip", round_trip, (x,), dict(eps=1e-2, atol=1e-4))


@grad_case("where")
def where_case(draw: st.DrawFn, op: str) -> GradCase:
    shape_a, shape_b = draw(S.broadcast_pairs())
    a, b = draw(S.smooth(shape_a)), draw(S.smooth(shape_b))
    cond = draw(hnp.arrays(bool, np.broadcast_shapes(shape_a, shape_b)))
    return GradCase(f"where {shape_a} {shape_b}", lambda x, y: tensor_where(Tensor(cond), x, y), (a, b))


@grad_case("pow_tensor")
def pow_tensor_case(draw: st.DrawFn, op: str) -> GradCase:
    shape_a, shape_b = draw(S.broadcast_pairs())
    a = draw(S.away_from_zero(shape_a, low=0.3, positive=True))
    b = draw(S.smooth(shape_b, bound=1.5))
    return GradCase(f"pow_tensor {shape_a} {shape_b}", lambda x, y: x ** y, (a, b))


@grad_case("flip")
def flip_case(draw: st.DrawFn, op: str) -> GradCase:
    x = draw(S.smooth(draw(S.shapes(min_dims=1))))
    axes = tuple(sorted(draw(st.sets(st.integers(0, x.ndim - 1), min_size=1))))
    return GradCase(f"flip {axes}", lambda t: t.flip(axes), (x,))


@grad_case("cumsum")
def cumsum_case(draw: st.DrawFn, op: str) -> GradCase:
    x = draw(S.smooth(draw(S.shapes(min_dims=1))))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return GradCase(f"cumsum axis={axis}", lambda t: t.cumsum(axis), (x,))


# ------------------------------------------------------------------ reductions
REDUCTIONS = {"sum": S.smooth, "mean": S.smooth, "max": S.without_ties, "logsumexp": S.smooth}


@grad_case(*REDUCTIONS)
def reduction_case(draw: st.DrawFn, op: str) -> GradCase:
    shape = draw(S.shapes())
    axis, keepdims = draw(S.axes(len(shape))), draw(st.booleans())
    x = draw(REDUCTIONS[op](shape))
    return GradCase(f"{op}(axis={axis}, keepdims={keepdims})",
                    lambda t: getattr(t, op)(axis=axis, keepdims=keepdims), (x,))


# ------------------------------------------------------------------ shape ops
@grad_case("reshape")
def reshape_case(draw: st.DrawFn, op: str) -> GradCase:
    x = draw(S.smooth(draw(S.shapes())))
    target = draw(S.reshape_targets(x.size))
    return GradCase(f"reshape {x.shape} -> {target}", lambda t: t.reshape(target), (x,))


@grad_case("permute")
def permute_case(draw: st.DrawFn, op: str) -> GradCase:
    x = draw(S.smooth(draw(S.shapes(min_dims=1))))
    axes = tuple(draw(st.permutations(range(x.ndim))))
    if draw(st.booleans()):
        axes = tuple(a - x.ndim for a in axes)  # negative axes
    return GradCase(f"permute{axes}", lambda t: t.permute(axes), (x,))


@grad_case("broadcast_to")
def broadcast_to_case(draw: st.DrawFn, op: str) -> GradCase:
    base, target = draw(S.broadcast_targets())
    x = draw(S.smooth(base))
    method = draw(st.sampled_from(["broadcast_to", "expand"]))
    return GradCase(f"{method} {base} -> {target}", lambda t: getattr(t, method)(target), (x,))


@grad_case("pad")
def pad_case(draw: st.DrawFn, op: str) -> GradCase:
    x = draw(S.smooth(draw(S.shapes(min_dims=1, max_side=3))))
    width = draw(st.integers(0, 2) | st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                                              min_size=x.ndim, max_size=x.ndim))
    return GradCase(f"pad {width}", lambda t: t.pad(width), (x,))


@st.composite
def _repeated_indices(draw: st.DrawFn, size: int, length: int | None = None) -> np.ndarray:
    """Integer indices into an axis of `size` (negative allowed) with at least one repeat."""
    n = length if length is not None else draw(st.integers(1, 5))
    idx = draw(st.lists(st.integers(-size, size - 1), min_size=n, max_size=n))
    idx.append(idx[0])
    return np.array(draw(st.permutations(idx)))


@grad_case("getitem")
def getitem_case(draw: st.DrawFn, op: str) -> GradCase:
    x = draw(S.smooth(draw(S.shapes(min_dims=1))))
    kind = draw(st.sampled_from(["basic", "int array", "int tensor", "bool mask"] + ["two arrays"] * (x.ndim >= 2)))
    if kind == "basic":
        parts = []
        for n in x.shape:
            parts.append(draw(st.integers(-n, n - 1) | st.builds(
                slice, st.none() | st.integers(-n, n), st.none() | st.integers(-n, n),
                st.sampled_from([None, 1, 2, -1]))))
        index: Any = tuple(parts)
    elif kind in ("int array", "int tensor"):
        axis = draw(st.integers(0, x.ndim - 1))
        idx = draw(_repeated_indices(x.shape[axis]))
        index = (slice(None),) * axis + (Tensor(idx) if kind == "int tensor" else idx,)
    elif kind == "two arrays":
        n = draw(st.integers(1, 4))
        index = (draw(_repeated_indices(x.shape[0], n)), draw(_repeated_indices(x.shape[1], n)))
    else:
        mask = draw(hnp.arrays(bool, x.shape))
        mask.flat[0] = True
        index = Tensor(mask)
    return GradCase(f"getitem {kind} {index!r}", lambda t: t[index], (x,))


@grad_case("concatenate", "stack")
def join_case(draw: st.DrawFn, op: str) -> GradCase:
    count = draw(st.integers(1, 3))
    if op == "concatenate":
        shape = draw(S.shapes(min_dims=1, max_side=3))
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        xs = [draw(S.smooth(shape[:axis % len(shape)] + (draw(st.integers(1, 3)),)
                            + shape[axis % len(shape) + 1:])) for _ in range(count)]
        join = F.concatenate
    else:
        shape = draw(S.shapes(max_dims=2, max_side=3))
        axis = draw(st.integers(-len(shape) - 1, len(shape)))
        xs = [draw(S.smooth(shape)) for _ in range(count)]
        join = F.stack
    return GradCase(f"{op} axis={axis} {[a.shape for a in xs]}",
                    lambda *ts: join(list(ts), axis=axis), tuple(xs))


# ------------------------------------------------------------------ linear algebra
@grad_case("matmul")
def matmul_case(draw: st.DrawFn, op: str) -> GradCase:
    m, k, n = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    form = draw(st.sampled_from(["1d@1d", "1d@2d", "2d@1d", "2d@2d", "batched", "batched@1d", "1d@batched"]))
    ba, bb = draw(S.broadcast_pairs(max_dims=2, max_side=3))
    a_shape = {"1d@1d": (k,), "1d@2d": (k,), "2d@1d": (m, k), "2d@2d": (m, k), "batched": ba + (m, k),
               "batched@1d": ba + (m, k), "1d@batched": (k,)}[form]
    b_shape = {"1d@1d": (k,), "1d@2d": (k, n), "2d@1d": (k,), "2d@2d": (k, n), "batched": bb + (k, n),
               "batched@1d": (k,), "1d@batched": bb + (k, n)}[form]
    a, b = draw(S.smooth(a_shape)), draw(S.smooth(b_shape))
    return _binary_case(draw, op, operator.matmul, a, b,
                        ["tensor,tensor", "tensor,ndarray", "ndarray,tensor", "constant,tensor"])


# Equations with every feature the gradient must handle: contraction, batch axes, outer
# products, a diagonal (a repeated subscript), an axis summed in one operand only, `...`
# with broadcasting, an implicit output and three operands.
EINSUMS = ["ij,jk->ik", "bij,bjk->bik", "i,j->ij", "ii->i", "iij->j", "ij->i", "ij->", "...ij,...jk",
           "ij,ij->ij", "bhqd,bhkd->bhqk", "ij,jk,kl->il", "ji", "i,i"]


@grad_case("einsum")
def einsum_case(draw: st.DrawFn, op: str) -> GradCase:
    equation = draw(st.sampled_from(EINSUMS))
    size = {c: draw(st.integers(1, 3)) for c in "bhijklqd"}
    lhs = equation.split("->")[0]
    shapes = []
    for term in lhs.split(","):
        lead = draw(st.sampled_from([(), (2,), (1,)])) if "..." in term else ()
        shapes.append(lead + tuple(size[c] for c in term.replace("...", "")))
    xs = tuple(draw(S.smooth(shape)) for shape in shapes)
    return GradCase(f"einsum {equation} {shapes}", lambda *ts: F.einsum(equation, *ts), xs)


@grad_case("normalize")
def normalize_case(draw: st.DrawFn, op: str) -> GradCase:
    from tinygrad_lenet import ops
    shape = draw(S.shapes(min_dims=1))
    axes = tuple(sorted(draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))))
    assume(int(np.prod([shape[a] for a in axes])) >= 2)  # one value per group standardizes to 0: flat
    x = draw(S.smooth(shape))
    eps = draw(st.sampled_from([1e-5, 0.1]))
    return GradCase(f"normalize axes={axes} eps={eps}", lambda t: ops.Normalize.apply(t, axes=axes, eps=eps), (x,))


@grad_case("batch_norm")
def batch_norm_case(draw: st.DrawFn, op: str) -> GradCase:
    from tinygrad_lenet import ops
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) + draw(S.shapes(min_dims=0, max_dims=2))
    assume(int(np.prod(shape)) // shape[1] >= 2)  # one value per channel standardizes to 0: flat
    axes = (0,) + tuple(range(2, len(shape)))
    x, weight, bias = draw(S.smooth(shape)), draw(S.smooth((shape[1],))), draw(S.smooth((shape[1],)))
    assume(x.std(axis=axes).min() > 1e-3)  # a constant channel's gradients are rounding noise (1e-12) in any library
    eps = draw(st.sampled_from([1e-5, 0.1]))
    return GradCase(f"batch_norm {shape} eps={eps}", lambda t, w, b: ops.BatchNorm.apply(
        t, w, b, axes=axes, eps=eps, momentum=0.1, running=None), (x, weight, bias))


@grad_case("layer_norm")
def layer_norm_case(draw: st.DrawFn, op: str) -> GradCase:
    from tinygrad_lenet import ops
    shape = draw(S.shapes(min_dims=1, max_dims=3))
    normalized = shape[len(shape) - draw(st.integers(1, len(shape))):]
    assume(int(np.prod(normalized)) >= 2)  # one value per sample standardizes to 0: flat
    x, weight, bias = draw(S.smooth(shape)), draw(S.smooth(normalized)), draw(S.smooth(normalized))
    samples = x.reshape(-1, int(np.prod(normalized)))
    assume(samples.std(axis=1).min() > 1e-3)  # a constant sample's gradients are rounding noise
    eps = draw(st.sampled_from([1e-5, 0.1]))
    return GradCase(f"layer_norm {shape} over {normalized} eps={eps}",
                    lambda t, w, b: ops.LayerNorm.apply(t, w, b, eps=eps), (x, weight, bias))


@grad_case("silu", "gelu")
def smooth_activation_case(draw: st.DrawFn, op: str) -> GradCase:
    x = draw(S.smooth(draw(S.shapes()), bound=3.0))
    if op == "gelu":
        approximate = draw(st.sampled_from(["none", "tanh"]))
        return GradCase(f"gelu {approximate}", lambda t: t.gelu(approximate), (x,))
    return GradCase(op, lambda t: getattr(t, op)(), (x,))


@grad_case("linear")
def linear_case(draw: st.DrawFn, op: str) -> GradCase:
    batch = draw(st.sampled_from([(), (2,), (3,), (2, 2)]))  # 1-D input, a batch, extra leading axes
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    x, w = draw(S.smooth(batch + (n_in,))), draw(S.smooth((n_out, n_in)))
    b = draw(st.none() | S.smooth((n_out,)))
    arrays = [x, w, b]
    present = [i for i, a in enumerate(arrays) if a is not None]
    wanted = draw(st.lists(st.sampled_from(present), min_size=1, unique=True).map(set))

    def linear(*ts: Tensor) -> Tensor:
        it = iter(ts)
        x_, w_, b_ = [next(it) if i in wanted else (None if a is None else Tensor(a, dtype=ts[0].dtype))
                      for i, a in enumerate(arrays)]
        return F.linear(x_, w_, b_)

    inputs = tuple(a for i, a in enumerate(arrays) if i in wanted)
    return GradCase(f"linear x{x.shape} w{w.shape} bias={b is not None} grad for {wanted}", linear, inputs)


# ------------------------------------------------------------------ conv and pooling
@grad_case("conv2d")
def conv2d_case(draw: st.DrawFn, op: str) -> GradCase:
    g = draw(S.conv2d_geometry())
    x, w = draw(S.smooth(g["x_shape"])), draw(S.smooth(g["w_shape"]))
    b = draw(st.none() | S.smooth(g["w_shape"][:1]))
    arrays = [x, w, b]
    # which of x, weight, bias require grad (the others are constants)
    present = [i for i, a in enumerate(arrays) if a is not None]
    wanted = draw(st.lists(st.sampled_from(present), min_size=1, unique=True).map(set))
    stride, padding = g["stride"], g["padding"]

    def conv(*ts: Tensor) -> Tensor:
        it = iter(ts)
        x_, w_, b_ = [next(it) if i in wanted else (None if a is None else Tensor(a, dtype=ts[0].dtype))
                      for i, a in enumerate(arrays)]
        return F.conv2d(x_, w_, b_, stride=stride, padding=padding)

    inputs = tuple(a for i, a in enumerate(arrays) if i in wanted)
    return GradCase(f"conv2d {g} bias={b is not None} grad for {wanted}", conv, inputs)


@grad_case("max_pool2d", "avg_pool2d", "relu_max_pool2d")
def pool_case(draw: st.DrawFn, op: str) -> GradCase:
    g = draw(S.pool2d_geometry())
    x = draw(S.without_ties(g["x_shape"]) if op == "max_pool2d" else  # relu's kink at 0: values k/10 + 1/20
             S.without_ties(g["x_shape"], offset=0.05) if op == "relu_max_pool2d" else S.smooth(g["x_shape"]))
    pool = getattr(F, op)
    k, s = g["kernel_size"], g["stride"]
    return GradCase(f"{op} {g}", lambda t: pool(t, k, s), (x,))


# ------------------------------------------------------------------ gradient ops
# The ops a backward pass records (with create_graph=True), each reached the way
# backpropagation reaches it: as the gradient of its forward op, taken with grad().
def _gradient_of(forward: Callable[[Tensor], Tensor], leaf: np.ndarray, dtype: Any) -> Callable[..., Tensor]:
    """cotangent -> d forward(leaf) / d leaf . cotangent, recorded."""
    def fn(cotangent: Tensor) -> Tensor:
        t = Tensor(leaf, dtype=cotangent.dtype, requires_grad=True)
        return grad(forward(t), t, cotangent, create_graph=True)[0]
    return fn


@grad_case("conv2d_input_grad", "conv2d_weight_grad")
def conv2d_gradient_case(draw: st.DrawFn, op: str) -> GradCase:
    g = draw(S.conv2d_geometry())
    stride, padding = g["stride"], g["padding"]
    out_shape = F.conv2d(Tensor(np.zeros(g["x_shape"])), Tensor(np.zeros(g["w_shape"])), stride=stride,
                         padding=padding).shape
    cotangent = draw(S.smooth(out_shape))
    if op == "conv2d_input_grad":  # (cotangent, weight) -> d/dx
        def fn(gy: Tensor, w: Tensor) -> Tensor:
            x = Tensor(np.zeros(g["x_shape"]), dtype=gy.dtype, requires_grad=True)
            return grad(F.conv2d(x, w, stride=stride, padding=padding), x, gy, create_graph=True)[0]
        return GradCase(f"{op} {g}", fn, (cotangent, draw(S.smooth(g["w_shape"]))))

    def fn(x: Tensor, gy: Tensor) -> Tensor:  # (input, cotangent) -> d/dw
        w = Tensor(np.zeros(g["w_shape"]), dtype=gy.dtype, requires_grad=True)
        return grad(F.conv2d(x, w, stride=stride, padding=padding), w, gy, create_graph=True)[0]
    return GradCase(f"{op} {g}", fn, (draw(S.smooth(g["x_shape"])), cotangent))


def depthwise_geometry(draw: st.DrawFn) -> dict:
    """An input (N, C, H, W), its padding and one kernel per channel, with stride and
    dilation that fit the padded input."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2))), (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(tuple(draw(st.integers(0, 2)) for _ in range(2)) for _ in range(2))
    h = draw(st.integers(max(1, (kh - 1) * dilation[0] + 1 - sum(padding[0])), (kh - 1) * dilation[0] + 4))
    w = draw(st.integers(max(1, (kw - 1) * dilation[1] + 1 - sum(padding[1])), (kw - 1) * dilation[1] + 4))
    c = draw(st.integers(1, 3))
    return dict(x_shape=(draw(st.integers(1, 2)), c, h, w), w_shape=(c, 1, kh, kw), stride=stride, dilation=dilation,
                padding=padding)


@grad_case("depthwise_conv2d", "depthwise_conv2d_input_grad", "depthwise_conv2d_weight_grad")
def depthwise_case(draw: st.DrawFn, op: str) -> GradCase:
    from tinygrad_lenet import ops
    g = depthwise_geometry(draw)
    attrs = dict(stride=g["stride"], dilation=g["dilation"], padding=g["padding"])
    x, w = draw(S.smooth(g["x_shape"])), draw(S.smooth(g["w_shape"]))
    if op == "depthwise_conv2d":
        bias = draw(st.booleans())
        inputs = (x, w, draw(S.smooth((g["w_shape"][0],)))) if bias else (x, w)
        return GradCase(f"{op} {g} bias={bias}", lambda *a: ops.DepthwiseConv2d.apply(*a, **attrs), inputs)
    out_shape = ops.DepthwiseConv2d.call(x, w, **attrs).shape
    cotangent = draw(S.smooth(out_shape))
    if op == "depthwise_conv2d_input_grad":
        return GradCase(f"{op} {g}", lambda gy, b: ops.DepthwiseConv2dInputGrad.apply(gy, b, x_shape=g["x_shape"], **attrs),
                        (cotangent, w))
    return GradCase(f"{op} {g}", lambda a, gy: ops.DepthwiseConv2dWeightGrad.apply(a, gy, w_shape=g["w_shape"], **attrs),
                    (x, cotangent))


@grad_case("max_pool2d_grad", "avg_pool2d_grad")
def pool_gradient_case(draw: st.DrawFn, op: str) -> GradCase:
    g = draw(S.pool2d_geometry())
    x = draw(S.without_ties(g["x_shape"]))
    pool = getattr(F, op.removesuffix("_grad"))
    k, s = g["kernel_size"], g["stride"]
    cotangent = draw(S.smooth(pool(Tensor(x), k, s).shape))
    return GradCase(f"{op} {g}", lambda gy: _gradient_of(lambda t: pool(t, k, s), x, gy.dtype)(gy), (cotangent,))


@grad_case("getitem_grad")
def getitem_gradient_case(draw: st.DrawFn, op: str) -> GradCase:
    forward = draw(GRAD_CASES["getitem"])
    (x,) = forward.inputs
    cotangent = draw(S.smooth(forward.fn(Tensor(x)).shape))
    return GradCase(f"{op} of {forward.description}", lambda gy: _gradient_of(forward.fn, x, gy.dtype)(gy), (cotangent,))


# ------------------------------------------------------------------ softmax and losses
@grad_case("log_softmax", "softmax")
def softmax_case(draw: st.DrawFn, op: str) -> GradCase:
    x = draw(S.smooth(draw(S.shapes(min_dims=1)), bound=3.0))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return GradCase(f"{op}(axis={axis})", lambda t: getattr(t, op)(axis), (x,))


@grad_case("cross_entropy", "nll_loss")
def classification_loss_case(draw: st.DrawFn, op: str) -> GradCase:
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    scores = draw(S.smooth((n, c), bound=3.0))
    targets = draw(S.class_targets(n, c))
    target_arg = draw(st.sampled_from([targets, targets.tolist(), Tensor(targets)]))
    if op == "cross_entropy":  # the fused op, with and without label smoothing
        eps = draw(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0))
        return GradCase(f"{op} targets={targets.tolist()} as {type(target_arg).__name__}, label_smoothing={eps}",
                        lambda t: F.cross_entropy(t, target_arg, label_smoothing=eps), (scores,))
    return GradCase(f"{op} targets={targets.tolist()} as {type(target_arg).__name__}",
                    lambda t: F.nll_loss(t, target_arg), (scores,))


@grad_case("mse_loss")
def mse_case(draw: st.DrawFn, op: str) -> GradCase:
    shape = draw(S.shapes())
    a, b = draw(S.smooth(shape)), draw(S.smooth(shape))
    form = draw(st.sampled_from(["tensor,tensor", "tensor,ndarray", "tensor,constant"]))
    if form == "tensor,tensor":
        return GradCase(f"mse_loss {form} {shape}", F.mse_loss, (a, b))
    if form == "tensor,ndarray":
        return GradCase(f"mse_loss {form} {shape}", lambda t: F.mse_loss(t, b), (a,))
    return GradCase(f"mse_loss {form} {shape}", lambda t: F.mse_loss(t, Tensor(b, dtype=t.dtype)), (a,))


@grad_case("dropout")
def dropout_case(draw: st.DrawFn, op: str) -> GradCase:
    x = draw(S.smooth(draw(S.shapes())))
    p = draw(st.sampled_from([1.0, 0.5]) | st.floats(0.05, 0.95))
    seed = draw(st.integers(0, 2**32 - 1))
    # a fresh generator with the same seed per call: the same mask every time
    return GradCase(f"dropout(p={p}, seed={seed})",
                    lambda t: F.dropout(t, p, generator=np.random.default_rng(seed)), (x,))


# ------------------------------------------------------------------ the property tests
@pytest.mark.parametrize("op", sorted(GRAD_CASES))
@given(data=st.data())
def test_autodiff_matches_finite_differences(op: str, data: st.DataObject) -> None:
    case = data.draw(GRAD_CASES[op], label=op)
    assert op in recorded_ops(case.fn(*case.tensors(np.float64)))
    assert gradcheck(case.fn, case.inputs, **case.tolerances)


SECOND_ORDER_OPS = sorted(GRAD_CASES)  # every op with a case gets gradgradcheck too; none is exempt


@pytest.mark.parametrize("op", SECOND_ORDER_OPS)
@given(data=st.data())
def test_second_derivatives_match_finite_differences(op: str, data: st.DataObject) -> None:
    """gradgradcheck on the same cases: every op's backward is itself differentiable."""
    case = data.draw(GRAD_CASES[op], label=op)
    assert gradgradcheck(case.fn, case.inputs, **case.tolerances)


@pytest.mark.parametrize("op", sorted(GRAD_CASES))
@given(data=st.data())
def test_float32_inputs_give_float32_outputs_and_grads(op: str, data: st.DataObject) -> None:
    """No op silently upcasts: float32 in, float32 out, float32 gradients of the inputs' shapes."""
    case = data.draw(GRAD_CASES[op], label=op)
    ts = case.tensors(np.float32)
    out = case.fn(*ts)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, dtype=np.float32))
    for t in ts:
        assert t.grad is not None and t.grad.dtype == np.float32 and t.grad.shape == t.shape


# ------------------------------------------------------------------ a whole network
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_cnn_gradient(seed: int) -> None:
    """conv -> relu -> max_pool -> reshape -> linear -> cross_entropy, all inputs checked at once."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 1, 6, 6))
    w, b = rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2)
    fc_w, fc_b = rng.standard_normal((3, 8)), rng.standard_normal(3)
    targets = np.array([2, 0])

    def net(x, w, b, fc_w, fc_b):
        h = F.max_pool2d(F.conv2d(x, w, b).relu(), 2)
        return F.cross_entropy(F.linear(h.reshape(2, -1), fc_w, fc_b), targets)

    # the premise: no pre-activation near relu's kink, no near-tie inside a pooling window
    pre = F.conv2d(*[Tensor(a, dtype=np.float64) for a in (x, w, b)]).data
    assert np.abs(pre).min() > 1e-3
    act = np.maximum(pre, 0).reshape(2, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 2, 2, 2, 4)
    top2 = np.sort(act, axis=-1)[..., -2:]
    assert np.all((top2[..., 1] - top2[..., 0] > 1e-3) | (top2[..., 1] == 0))

    out = net(*[Tensor(a, requires_grad=True, dtype=np.float64) for a in (x, w, b, fc_w, fc_b)])
    assert {"conv2d", "relu", "max_pool2d", "reshape", "linear", "cross_entropy"} <= recorded_ops(out)
    assert gradcheck(net, [x, w, b, fc_w, fc_b])


# ------------------------------------------------------------------ gradcheck itself
@pytest.fixture
def wrong_ops():
    """Two ops with a deliberately wrong backward, unregistered afterwards."""

    class WrongSquare(Function):
        """x * x, but the gradient of element (1, 2) is off by half."""
        name = "test_wrong_square"

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            g = 2 * x * grad
            g[1, 2] *= 1.5
            return g

    class WrongMul(Function):
        """a * b, but the gradient of b is missing."""
        name = "test_wrong_mul"

        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            return grad * b, None

    try:
        yield WrongSquare, WrongMul
    finally:
        OPS.pop(WrongSquare.name, None)
        OPS.pop(WrongMul.name, None)


def test_gradcheck_detects_a_wrong_gradient_and_names_op_input_and_element(wrong_ops) -> None:
    wrong_square, wrong_mul = wrong_ops
    x = np.arange(1.0, 7.0).reshape(2, 3)
    assert gradcheck(lambda t: t * t, [x])  # the control: the right gradient passes
    with pytest.raises(GradcheckError) as err:
        gradcheck(wrong_square.apply, [x])
    msg = str(err.value)
    assert "op 'test_wrong_square'" in msg and "input 0" in msg and "element (1, 2)" in msg
    assert "output element 5" in msg
    assert gradcheck(wrong_square.apply, [x], raise_exception=False) is False


def test_gradcheck_detects_a_missing_gradient_of_the_second_input(wrong_ops) -> None:
    _, wrong_mul = wrong_ops
    a, b = np.array([1.0, 2.0]), np.array([3.0, -4.0])
    with pytest.raises(GradcheckError, match=r"op 'test_wrong_mul': input 1 \(shape \(2,\)\) element \(1,\)"):
        gradcheck(wrong_mul.apply, [a, b])


def test_gradcheck_needs_float64_output() -> None:
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t.float(), [np.ones(2)])


@pytest.mark.parametrize("op", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis", [0, -1, (0,), (-1,), None])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reducing_a_0d_tensor_over_axis_0_or_minus_1(op: str, axis, keepdims: bool) -> None:
    """As in PyTorch, a 0-d tensor has one reducible axis: reducing it returns the value."""
    x = Tensor(np.array(0.75), requires_grad=True)
    out = getattr(x, op)(axis=axis, keepdims=keepdims)
    assert out.shape == () and out.item() == pytest.approx(0.75)
    out.backward()
    assert x.grad.shape == () and x.grad == pytest.approx(1.0)
    assert gradcheck(lambda t: getattr(t, op)(axis=axis, keepdims=keepdims), (np.array(0.75),))

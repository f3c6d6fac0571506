"""ONNX export: one eval-mode forward pass is traced (every op records itself), and the
recorded graph is written op by op as ONNX operators, opset 17, with a dynamic batch
axis. Parameters and constants become initializers, and so do ops computed from them
alone that ONNX has no operator for (a dilated kernel, say). An op of the input with no
mapping is an error naming it. Needs the `onnx` package (the `export` extra).

An export must compute what the model computes for every input, so it refuses what it
cannot reproduce: the model is traced on PROBES, inputs of different sign, scale and
pattern, and a graph or constant that differs between them (Python control flow or
numpy work on the input's values) is refused; `export_onnx` then runs the ONNX graph
with onnxruntime on a held-out batch of another size and writes the file only if it
agrees with the model.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from ..atomic import atomic_write_bytes, check_replaceable
from ..autograd import no_grad, topological_order
from ..nn import Module
from ..tensor import Tensor

OPSET = 17
TRACE_BATCH = 2  # the batch size the trace runs with; a second trace at TRACE_BATCH + 1 shows the batch's axes
VERIFY_BATCH = 3  # the held-out batch's size: another than the trace's, so a baked-in batch size shows
RTOL, ATOL = 1e-4, 1e-5  # onnxruntime against the model (ATOL scaled by the outputs' magnitude)


def _probes(shape: tuple[int, ...], dtype: Any) -> dict[str, np.ndarray]:
    """Trace inputs that differ in sign, scale and pattern, so a branch on the input's
    values takes another way for one of them (the first, zeros, is the one written)."""
    noise = np.random.default_rng(0).standard_normal(shape)
    ramp = np.linspace(-3.0, 1.0, int(np.prod(shape))).reshape(shape)
    stripes = np.where(np.indices(shape)[-1] % 2 == 0, 1.0, -1.0) if len(shape) > 1 else np.ones(shape)
    cases = {"zeros": np.zeros(shape), "noise": noise, "negated noise": -noise, "noise x 10": 10 * noise,
             "noise x 0.01": 0.01 * noise, "positive": np.abs(noise) + 0.5, "negative": -np.abs(noise) - 0.5,
             "ramp": ramp, "stripes": stripes}
    return {name: value.astype(dtype) for name, value in cases.items()}


class ExportError(ValueError):
    """The model cannot be exported: names the op or what is wrong."""


class _Builder:
    """ONNX nodes and initializers for one recorded graph."""

    def __init__(self, onnx: Any):
        self.onnx, self.helper = onnx, onnx.helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def constant(self, array: np.ndarray, name: str | None = None) -> str:
        name = name or self.name("const")
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op_type: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        output = output or self.name(op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [output], name=self.name(op_type), **attrs))
        return output


def _batch_axes(order: list[Tensor], other: list[Tensor]) -> dict[int, int]:
    """Reshape output id -> the axis of its target shape that follows the batch size, found
    by comparing the trace with `other`, one at another batch size (the batch may sit in
    any axis: convolutions keep it innermost)."""
    ours, theirs = ([t for t in trace if t.grad_fn is not None and t.grad_fn.op == "reshape"] for trace in (order, other))
    if len(ours) != len(theirs):
        raise ExportError("export: the model records other reshapes at another batch size")
    axes = {}
    for t, u in zip(ours, theirs):
        shape, moved = t.grad_fn.attrs["shape"], u.grad_fn.attrs["shape"]
        changed = [i for i, (a, b) in enumerate(zip(shape, moved)) if a != b]
        if len(shape) != len(moved) or len(changed) > 1:
            raise ExportError(f"export: a reshape to {tuple(shape)} becomes {tuple(moved)} at another batch size "
                              "(ONNX can leave one axis to the batch)")
        if changed:
            axes[id(t)] = changed[0]
    return axes


def _reduce(onnx_op: str, axes_as_input: bool) -> Callable:
    def emit(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
        axis = attrs["axis"]
        ndim = parents[0].ndim
        axes = list(range(ndim)) if axis is None else [axis] if isinstance(axis, int) else list(axis)
        keep = int(bool(attrs["keepdims"]))
        if axes_as_input:
            return b.node(onnx_op, [ins[0], b.constant(np.asarray(axes, np.int64))], out, keepdims=keep)
        return b.node(onnx_op, ins[:1], out, axes=axes, keepdims=keep)
    return emit


def _simple(onnx_op: str) -> Callable:
    return lambda b, ins, attrs, parents, out: b.node(onnx_op, ins, out)


def _conv(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    (ph, pw), (sh, sw) = attrs["padding"], attrs["stride"]  # pads: [top, left, bottom, right]
    return b.node("Conv", ins, out, pads=[ph, pw, ph, pw], strides=[sh, sw],
                  kernel_shape=list(parents[1].shape[2:]))


def _depthwise(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    """A Conv with one group per channel, its padding and optional bias included."""
    (top, bottom), (left, right) = attrs.get("padding", ((0, 0), (0, 0)))
    return b.node("Conv", ins, out, strides=list(attrs["stride"]), dilations=list(attrs["dilation"]),
                  pads=[top, left, bottom, right], group=int(parents[1].shape[0]),
                  kernel_shape=list(parents[1].shape[2:]))


def _normalize(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    """(x - mean) / sqrt(var + eps) over the op's axes (opset 17's ReduceMean takes them as an attribute)."""
    axes = [int(a) for a in attrs["axes"]]
    centered = b.node("Sub", [ins[0], b.node("ReduceMean", ins[:1], axes=axes, keepdims=1)])
    var = b.node("ReduceMean", [b.node("Mul", [centered, centered])], axes=axes, keepdims=1)
    std = b.node("Sqrt", [b.node("Add", [var, _scalar(b, attrs["eps"], parents[0])])])
    return b.node("Div", [centered, std], out)


def _layer_norm(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    """Opset 17's LayerNormalization over the weight's axes, the last ones."""
    return b.node("LayerNormalization", ins, out, axis=-parents[1].ndim, epsilon=float(attrs["eps"]))


def _conv_transpose(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    """conv2d's input gradient as a layer (ConvTranspose2d): the output padding is what the
    recorded output size holds beyond (H - 1) * stride - 2 * padding + kernel."""
    (ph, pw), (sh, sw) = attrs["padding"], attrs["stride"]
    kh, kw = parents[1].shape[2:]
    (h, w), (oh, ow) = parents[0].shape[2:], attrs["x_shape"][2:]
    extra = [oh - ((h - 1) * sh - 2 * ph + kh), ow - ((w - 1) * sw - 2 * pw + kw)]
    return b.node("ConvTranspose", ins, out, pads=[ph, pw, ph, pw], strides=[sh, sw], kernel_shape=[kh, kw],
                  output_padding=extra)


def _pool(onnx_op: str) -> Callable:
    def emit(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
        return b.node(onnx_op, ins, out, kernel_shape=list(attrs["kernel_size"]), strides=list(attrs["stride"]))
    return emit


def _reshape(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    """The target's batch axis (`batch_axis`, see `_batch_axes`) is written as 0 (copy the
    input's) where it is the input's batch axis, else as -1 (whatever the size leaves)."""
    target = np.asarray(attrs["shape"], dtype=np.int64)
    axis = attrs.get("batch_axis")
    if axis is not None:
        same = axis == 0 and parents[0].ndim and parents[0].shape[0] == target[0]
        target[axis] = 0 if same else -1
    return b.node("Reshape", [ins[0], b.constant(target)], out)


def _linear(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    if parents[0].ndim == 2:  # Gemm: x @ w.T (+ bias)
        return b.node("Gemm", ins, out, transB=1)
    product = b.node("MatMul", [ins[0], b.node("Transpose", [ins[1]], perm=[1, 0])], None if len(ins) == 3 else out)
    return b.node("Add", [product, ins[2]], out) if len(ins) == 3 else product


def _pad(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    width = attrs["pad_width"]
    pads = np.asarray([a for a, _ in width] + [z for _, z in width], dtype=np.int64)
    return b.node("Pad", [ins[0], b.constant(pads)], out, mode="constant")


def _pow(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    exponent = b.constant(np.asarray(attrs["exponent"], dtype=parents[0].dtype))
    return b.node("Pow", [ins[0], exponent], out)


def _axis_op(onnx_op: str) -> Callable:
    return lambda b, ins, attrs, parents, out: b.node(onnx_op, ins, out, axis=int(attrs["axis"]))


def _cast(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    to = b.helper.np_dtype_to_tensor_dtype(np.dtype(attrs["dtype"]))
    return b.node("Cast", ins, out, to=to)


def _broadcast_to(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    shape = np.asarray(attrs["shape"], dtype=np.int64)
    if len(shape) and shape[0] == TRACE_BATCH and parents[0].ndim == len(shape) and parents[0].shape[0] == TRACE_BATCH:
        shape[0] = 1  # Expand broadcasts: 1 keeps the input's (batch) size
    return b.node("Expand", [ins[0], b.constant(shape)], out)


def _scalar(b: _Builder, value: float, like: Tensor) -> str:
    """A 0-d constant of `like`'s dtype."""
    return b.constant(np.asarray(value, dtype=like.dtype))


def _clip(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    low, high = attrs["low"], attrs["high"]
    bounds = ["" if v is None else _scalar(b, v, parents[0]) for v in (low, high)]  # "": no bound
    return b.node("Clip", [ins[0], *bounds], out)


def _stack(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    axis = b.constant(np.asarray([attrs["axis"]], np.int64))
    return b.node("Concat", [b.node("Unsqueeze", [i, axis]) for i in ins], out, axis=int(attrs["axis"]))


def _softplus(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    """x where beta*x > threshold, else log(1 + exp(beta*x)) / beta, as the op computes it."""
    beta = _scalar(b, attrs["beta"], parents[0])
    scaled = b.node("Mul", [ins[0], beta])
    smooth = b.node("Div", [b.node("Softplus", [scaled]), beta])
    linear = b.node("Greater", [scaled, _scalar(b, attrs["threshold"], parents[0])])
    return b.node("Where", [linear, ins[0], smooth], out)


def _silu(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    return b.node("Mul", [ins[0], b.node("Sigmoid", ins[:1])], out)


def _gelu(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    """x * (1 + erf(x / sqrt 2)) / 2, or with tanh(sqrt(2 / pi) (x + 0.044715 x^3)) for erf
    (ONNX's Gelu operator needs opset 20)."""
    if attrs["approximate"] == "tanh":
        cube = b.node("Mul", [b.node("Mul", [ins[0], ins[0]]), ins[0]])
        inner = b.node("Add", [ins[0], b.node("Mul", [cube, _scalar(b, 0.044715, parents[0])])])
        inner = b.node("Tanh", [b.node("Mul", [inner, _scalar(b, np.sqrt(2.0 / np.pi), parents[0])])])
    else:
        inner = b.node("Erf", [b.node("Mul", [ins[0], _scalar(b, 1 / np.sqrt(2.0), parents[0])])])
    cdf = b.node("Mul", [b.node("Add", [inner, _scalar(b, 1.0, parents[0])]), _scalar(b, 0.5, parents[0])])
    return b.node("Mul", [ins[0], cdf], out)


def _plus_one_around(onnx_op: str, before: bool) -> Callable:
    """log1p as Log(x + 1) and expm1 as Exp(x) - 1 (ONNX has neither; less accurate
    than the op for |x| much below 1e-3 in float32)."""
    def emit(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
        one = _scalar(b, 1.0, parents[0])
        if before:
            return b.node(onnx_op, [b.node("Add", [ins[0], one])], out)
        return b.node("Sub", [b.node(onnx_op, ins), one], out)
    return emit


def _flip(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    axes = list(attrs["axes"])
    if not axes:
        return b.node("Identity", ins, out)
    edge = np.iinfo(np.int64)
    ints = lambda v: b.constant(np.asarray([v] * len(axes), np.int64))  # noqa: E731
    return b.node("Slice", [ins[0], ints(-1), ints(edge.min), b.constant(np.asarray(axes, np.int64)), ints(-1)], out)


def _cumsum(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    if parents[0].ndim == 0:
        return b.node("Identity", ins, out)
    return b.node("CumSum", [ins[0], b.constant(np.asarray(attrs["axis"], np.int64))], out)


def _getitem(b: _Builder, ins: list[str], attrs: dict, parents: list[Tensor], out: str) -> str:
    """Basic indexing (integers, slices, None, ...) as Slice, then Gather for each integer
    and Unsqueeze for each None; slices keep Python's meaning on any size, so the batch
    axis stays dynamic. Array and boolean indices are refused."""
    ndim = parents[0].ndim
    index = attrs["index"] if isinstance(attrs["index"], tuple) else (attrs["index"],)
    for item in index:
        if not (item is None or item is Ellipsis or isinstance(item, slice)
                or (isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)))):
            raise ExportError(f"export: getitem with a {type(item).__name__} index has no ONNX mapping "
                              "(integers, slices, None and ... are supported)")
    if Ellipsis in index:
        at = index.index(Ellipsis)
        fill = ndim - sum(item is not None for item in index if item is not Ellipsis)
        index = index[:at] + (slice(None),) * fill + index[at + 1:]
    edge = np.iinfo(np.int64)
    sliced, taken, new_axes = [], [], []
    axis = position = 0  # the input's axis; the output's axis
    for item in index:
        if item is None:
            new_axes.append(position)
            position += 1
            continue
        if isinstance(item, slice):
            if item != slice(None):
                step = 1 if item.step is None else int(item.step)
                start = (0 if step > 0 else -1) if item.start is None else int(item.start)
                stop = (edge.max if step > 0 else edge.min) if item.stop is None else int(item.stop)
                sliced.append((axis, start, stop, step))
            position += 1
        else:
            taken.append((axis, int(item)))
        axis += 1
    x = ins[0]
    if sliced:
        columns = [b.constant(np.asarray(col, np.int64)) for col in zip(*sliced)]  # axes, starts, ends, steps
        x = b.node("Slice", [x, columns[1], columns[2], columns[0], columns[3]])
    for axis, i in reversed(taken):  # the last axis first: earlier axes keep their numbers
        x = b.node("Gather", [x, b.constant(np.asarray(i, np.int64))], axis=axis)
    if new_axes:
        x = b.node("Unsqueeze", [x, b.constant(np.asarray(new_axes, np.int64))])
    return b.node("Identity", [x], out)


# Our op -> how to write it in ONNX.
ONNX_OPS: dict[str, Callable] = {
    "add": _simple("Add"), "sub": _simple("Sub"), "mul": _simple("Mul"), "div": _simple("Div"),
    "neg": _simple("Neg"), "exp": _simple("Exp"), "log": _simple("Log"), "sqrt": _simple("Sqrt"),
    "relu": _simple("Relu"), "tanh": _simple("Tanh"), "sigmoid": _simple("Sigmoid"), "abs": _simple("Abs"),
    "sin": _simple("Sin"), "cos": _simple("Cos"), "erf": _simple("Erf"), "maximum": _simple("Max"),
    "minimum": _simple("Min"), "matmul": _simple("MatMul"), "pow": _pow, "cast": _cast,
    "permute": lambda b, ins, attrs, parents, out: b.node("Transpose", ins, out, perm=list(attrs["axes"])),
    "linear": _linear, "reshape": _reshape, "broadcast_to": _broadcast_to, "pad": _pad, "conv2d": _conv,
    "conv2d_input_grad": _conv_transpose,
    "max_pool2d": _pool("MaxPool"), "avg_pool2d": _pool("AveragePool"),
    "relu_max_pool2d": lambda b, ins, attrs, parents, out: b.node("Relu", [_pool("MaxPool")(b, ins, attrs, parents, None)],
                                                                  out),
    "sum": _reduce("ReduceSum", axes_as_input=True), "mean": _reduce("ReduceMean", axes_as_input=False),
    "max": _reduce("ReduceMax", axes_as_input=False), "logsumexp": _reduce("ReduceLogSumExp", axes_as_input=False),
    "softmax": _axis_op("Softmax"), "log_softmax": _axis_op("LogSoftmax"),
    "clip": _clip, "where": _simple("Where"), "pow_tensor": _simple("Pow"), "concatenate": _axis_op("Concat"),
    "stack": _stack, "elu": lambda b, ins, attrs, parents, out: b.node("Elu", ins, out, alpha=float(attrs["alpha"])),
    "leaky_relu": lambda b, ins, attrs, parents, out: b.node("LeakyRelu", ins, out,
                                                             alpha=float(attrs["negative_slope"])),
    "softplus": _softplus, "log1p": _plus_one_around("Log", before=True),
    "expm1": _plus_one_around("Exp", before=False), "flip": _flip, "cumsum": _cumsum, "getitem": _getitem,
    "einsum": lambda b, ins, attrs, parents, out: b.node("Einsum", ins, out, equation=attrs["equation"]),
    "silu": _silu, "gelu": _gelu, "depthwise_conv2d": _depthwise, "normalize": _normalize, "layer_norm": _layer_norm,
}


def _trace(model: Module, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """The model's eval-mode output for `x` and its recorded graph in topological order."""
    was_training = model.training
    model.eval()
    try:
        out = model(x)
    finally:
        model.train(was_training)
    if not isinstance(out, Tensor) or out.grad_fn is None:
        raise ExportError(f"export: the model's output is not computed from its input (got {type(out).__name__})")
    return out, topological_order(out, grad_only=False)


def _check_constants_do_not_follow_the_input(order: list[Tensor], other: list[Tensor], known: set[int],
                                             probe: str) -> None:
    """The graphs of two traces with different inputs have the same ops and the same
    constants. A constant that changed was computed from the input outside recorded ops
    (a comparison, `.data`, numpy): written as a constant it would be wrong for every
    other input, so it is refused, naming the op that reads it."""
    ops, other_ops = [t.grad_fn and t.grad_fn.op for t in order], [t.grad_fn and t.grad_fn.op for t in other]
    if ops != other_ops:
        at = next((i for i, (a, b) in enumerate(zip(ops, other_ops)) if a != b), min(len(ops), len(other_ops)))
        raise ExportError(f"export: the model records different ops for different inputs (zeros: {len(ops)} ops, "
                          f"{probe}: {len(other_ops)}, first difference at op {at}): Python control flow on the "
                          "input's values, which one ONNX graph cannot reproduce")
    readers = {id(p): t.grad_fn.op for t in order if t.grad_fn is not None for p in t.grad_fn.parents}
    for t, u in zip(order, other):
        if t.grad_fn is None and id(t) not in known and not np.array_equal(t.data, u.data, equal_nan=True):
            raise ExportError(f"export: the {readers.get(id(t), 'output')!r} op reads a tensor of shape {t.shape} "
                              "computed from the model's input outside recorded ops (a comparison, .data or "
                              "numpy); written as a constant it would be wrong for other inputs")


def _of_the_input(order: list[Tensor], x: Tensor) -> set[int]:
    """The ids of the tensors computed from `x` (x included)."""
    depends = {id(x)}
    for t in order:
        if t.grad_fn is not None and any(id(p) in depends for p in t.grad_fn.parents):
            depends.add(id(t))
    return depends


class InputScaling(Module):
    """`model` applied to `input * scale - shift`: an exported graph that takes raw pixel
    values (0-255) and normalizes them itself, exactly as the training's data loader does."""

    def __init__(self, model: Module, scale: float, shift: float):
        super().__init__()
        self.model, self.scale, self.shift = model, np.float32(scale), np.float32(shift)

    def forward(self, x: Tensor) -> Tensor:
        """x * scale - shift: raw pixels to the model's normalized input."""
        return self.model(x * self.scale - self.shift)


def to_onnx(model: Module, input_shape: tuple[int, ...], dtype: Any = np.float32,
            metadata: dict[str, str] | None = None, doc_string: str = "") -> Any:
    """The ONNX ModelProto of `model` (in eval mode) for inputs of `input_shape` without
    the batch axis, e.g. (1, 28, 28); the batch axis is dynamic ("batch"). The model is
    traced on each of the PROBES (see the module docstring) to refuse graphs and
    constants that depend on the input's values. `metadata` becomes the file's
    metadata_props and `doc_string` its description, for a consumer who has only the file."""
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install -e '.[export]'") from None
    if metadata and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("to_onnx: metadata maps strings to strings")
    probes = _probes((TRACE_BATCH, *input_shape), dtype)
    x = Tensor(probes.pop("zeros"), requires_grad=True)
    out, order = _trace(model, x)
    params = {id(p): name for name, p in model.named_parameters()}
    params.update({id(t): name for name, t in model.named_buffers()})
    for probe, value in probes.items():
        with np.errstate(all="ignore"):  # a probe may overflow where real inputs do not
            other = _trace(model, Tensor(value, requires_grad=True))[1]
        _check_constants_do_not_follow_the_input(order, other, set(params) | {id(x)}, probe)
    b = _Builder(onnx)
    names: dict[int, str] = {id(x): "input"}
    dynamic = _of_the_input(order, x)
    unsupported = sorted({t.grad_fn.op for t in order
                          if t.grad_fn is not None and t.grad_fn.op not in ONNX_OPS and id(t) in dynamic})
    if unsupported:
        raise ExportError(f"export: op(s) {', '.join(repr(o) for o in unsupported)} have no ONNX mapping "
                          f"(supported: {', '.join(sorted(ONNX_OPS))})")
    try:
        other = _trace(model, Tensor(np.zeros((TRACE_BATCH + 1, *input_shape), x.dtype), requires_grad=True))[1]
    except (ValueError, RuntimeError, TypeError, IndexError) as e:
        raise ExportError(f"export: the model fails on a batch of {TRACE_BATCH + 1} (the batch axis must be "
                          f"free): {e}") from None
    batch_axes = _batch_axes(order, other)

    def folded(t: Tensor) -> bool:  # computed from constants alone by an op ONNX lacks: written as its value
        return t.grad_fn is not None and id(t) not in dynamic and t.grad_fn.op not in ONNX_OPS

    needed = {id(out)}  # what the written graph reads: no initializer of a folded op's inputs
    for t in reversed(order):
        if id(t) in needed and t.grad_fn is not None and not folded(t):
            needed.update(id(p) for p in t.grad_fn.parents)
    for t in order:
        if id(t) in names or id(t) not in needed:
            continue
        if t.grad_fn is None or folded(t):  # a parameter, buffer or constant
            names[id(t)] = b.constant(t.data, params.get(id(t)))
            continue
        ctx = t.grad_fn
        ins = [names[id(p)] for p in ctx.parents]
        target = "logits" if t is out else b.name(ctx.op)
        attrs = {**ctx.attrs, "batch_axis": batch_axes[id(t)]} if id(t) in batch_axes else ctx.attrs
        names[id(t)] = ONNX_OPS[ctx.op](b, ins, attrs, list(ctx.parents), target)
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    graph = onnx.helper.make_graph(
        b.nodes, type(model.model if isinstance(model, InputScaling) else model).__name__,
        [onnx.helper.make_tensor_value_info("input", elem, ["batch", *input_shape])],
        [onnx.helper.make_tensor_value_info("logits", elem, ["batch", *out.shape[1:]])],
        b.initializers)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name="tinygrad_lenet", doc_string=doc_string)
    if metadata:
        onnx.helper.set_model_props(proto, dict(metadata))
    proto.ir_version = 8
    onnx.checker.check_model(proto, full_check=True)
    return proto


def verify_onnx(proto: Any, model: Module, input_shape: tuple[int, ...], dtype: Any = np.float32) -> None:
    """Run `proto` with onnxruntime on a held-out batch of VERIFY_BATCH inputs (of another
    size than the trace's, none of them a trace input) and refuse, naming the largest
    difference, when it disagrees with `model` beyond RTOL/ATOL."""
    try:
        import onnxruntime
    except ImportError:
        raise ExportError("verifying an ONNX export needs onnxruntime: pip install -e '.[export]'") from None
    rng = np.random.default_rng(12345)
    batch = np.concatenate([rng.standard_normal((VERIFY_BATCH - 1, *input_shape)),
                            rng.uniform(-2.0, 2.0, (1, *input_shape))]).astype(dtype)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            expected = np.asarray(model(Tensor(batch)).data)
    finally:
        model.train(was_training)
    try:
        session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        got = session.run(None, {"input": batch})[0]
    except Exception as e:  # onnxruntime's own errors have no common base class; any of them refuses the export
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"export: onnxruntime cannot run the exported graph on a batch of {VERIFY_BATCH}: "
                          f"{first[:300]}") from None
    if got.shape != expected.shape:
        raise ExportError(f"export: onnxruntime gives shape {got.shape} for a batch of {VERIFY_BATCH}, the model "
                          f"{expected.shape}")
    scale = float(np.max(np.abs(expected[np.isfinite(expected)]), initial=1.0))
    if not np.allclose(got, expected, rtol=RTOL, atol=ATOL * scale, equal_nan=True):
        diff = np.abs(got.astype(np.float64) - expected)
        where = np.unravel_index(np.nanargmax(np.where(np.isnan(diff), np.inf, diff)), diff.shape)
        raise ExportError(f"export: onnxruntime disagrees with the model on a held-out batch (largest difference "
                          f"{diff[where]:.3g} at {tuple(int(i) for i in where)}: {got[where]:.6g} against "
                          f"{expected[where]:.6g}); the file was not written")


def export_onnx(model: Module, path: str | os.PathLike, input_shape: tuple[int, ...],
                metadata: dict[str, str] | None = None, doc_string: str = "") -> None:
    """Write `model` as an ONNX file (atomically) once onnxruntime agrees with it on a
    held-out batch; see `to_onnx` and `verify_onnx`. `path` must be new or a regular file."""
    check_replaceable(path)
    proto = to_onnx(model, input_shape, metadata=metadata, doc_string=doc_string)
    verify_onnx(proto, model, input_shape)
    atomic_write_bytes(path, proto.SerializeToString())

"""The recording machinery: `Function` (one op, forward and backward side by side),
its `Context`, the op registry, grad mode (`no_grad`) and the backward pass.

An op is a `Function` subclass with two static methods:

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            return grad * b, grad * a

`Mul.apply(x, y)` runs `forward` on the tensors' arrays and, when gradients are
wanted, records the context (op name, attributes, parents, saved arrays) on the
result. `backward` returns one gradient per tensor input (or None); gradients of
broadcast inputs are summed back to the input's shape by the engine.

Each derivative rule is written once and runs two ways. In an ordinary backward
pass `grad` and the saved values are numpy arrays and the rule is plain numpy.
With `create_graph=True` they are Tensors (the saved inputs and output become the
tensors they were the data of), so the same operators record the backward pass as
a graph that can be differentiated again. A rule that needs an op beyond numpy's
operators calls `SomeOp.call(...)`, which runs the kernel on arrays or records the
op on Tensors.

"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Any, Callable, ClassVar, Iterator

import numpy as np

from .hooks import RemovableHandle, add_hook

# name -> Function subclass, for every op that can be recorded.
OPS: dict[str, type["Function"]] = {}

# The Tensor class, which `tensor.py` registers when it is imported (`use_tensor_class`):
# the engine makes and checks tensors without importing the module that imports it.
Tensor: Any = None


def use_tensor_class(cls: type) -> None:
    """Called once by `tensor.py` with its Tensor class."""
    global Tensor
    Tensor = cls


class _GradState(threading.local):
    """Per-thread recording state: grad mode and the stack of running modules."""
    enabled = True  # each thread starts with recording on, as in PyTorch

    def __init__(self) -> None:
        self.modules: list[str] = []
        self.backward_depth = 0  # > 0 while a create_graph backward runs a derivative rule
        self.callbacks: list[Callable[[], None]] | None = None  # queued for the end of the running backward


_grad_state = _GradState()

# Set by `tinygrad_lenet.profiler.profile_ops` while it runs: called as
# op_timer(op_name, "forward" | "backward", seconds) after each op kernel.
op_timer: Callable[[str, str, float], None] | None = None


def is_grad_enabled() -> bool:
    """Whether ops in this thread are recorded for backward (off inside `no_grad`)."""
    return _grad_state.enabled


class _GradMode(contextlib.ContextDecorator):
    """Set the calling thread's grad mode for a block and restore it after. An
    instance may be entered again while active (nested `with`, or recursion
    into a decorated function): each exit restores what its own entry saw."""

    mode: ClassVar[bool]

    def __init__(self) -> None:
        self._saved: list[bool] = []

    def _recreate_cm(self) -> "_GradMode":
        return type(self)()  # a decorated function gets a fresh instance per call (threads)

    def __enter__(self) -> "_GradMode":
        self._saved.append(_grad_state.enabled)
        _grad_state.enabled = self.mode
        return self

    def __exit__(self, *exc: object) -> None:
        _grad_state.enabled = self._saved.pop()


class no_grad(_GradMode):
    """Context manager and decorator: ops run inside record nothing and hold nothing."""

    mode = False


class enable_grad(_GradMode):
    """Turn recording back on inside a `no_grad` block."""

    mode = True


def queue_callback(fn: Callable[[], None]) -> None:
    """Call `fn()` once the backward pass now running (in this thread) has finished
    accumulating every gradient, as PyTorch's `queue_callback`: a gradient hook uses it
    to act on the whole step's gradients (distributed data parallelism averages them there)."""
    if _grad_state.callbacks is None:
        raise RuntimeError("queue_callback: no backward pass is running; call it from a gradient hook")
    _grad_state.callbacks.append(fn)


def enter_module(name: str) -> None:
    """Ops recorded from now on (in this thread) are annotated with `name`, a
    module path such as `features.0`, until the matching `exit_module()`; so
    graphs can be drawn grouped by layer. `nn.Module.__call__` brackets every
    named module's forward with these two calls."""
    _grad_state.modules.append(name)


def exit_module() -> None:
    """End the innermost `enter_module`."""
    _grad_state.modules.pop()


@contextlib.contextmanager
def module_scope(name: str) -> Iterator[None]:
    """`with module_scope("features.0"):` brackets a block with enter_module/exit_module."""
    enter_module(name)
    try:
        yield
    finally:
        exit_module()


def current_module() -> str | None:
    """The module path the ops recorded now are annotated with (None outside modules)."""
    stack = _grad_state.modules
    return stack[-1] if stack else None


class Context:
    """What one recorded op remembers: its name, attributes, parents, the module
    it ran in and the arrays its backward needs."""

    def __init__(self, fn: type["Function"], parents: tuple["Tensor", ...], attrs: dict[str, Any],
                 needs_input_grad: tuple[bool, ...]):
        self.fn = fn
        self.op: str = fn.name
        self.parents = parents
        self.attrs = attrs
        self.needs_input_grad = needs_input_grad  # which parents require grad
        self.module = current_module()
        self.in_backward = _grad_state.backward_depth > 0  # recorded by a derivative rule (create_graph)
        self.released = False
        self._saved: tuple[Any, ...] = ()
        self.values: dict[str, Any] = {}  # what `remember` kept: shapes, counts, constants
        self.graph_output: Tensor | None = None  # the output, while a create_graph backward runs the rule
        self.hooks: dict[int, Callable[..., Any]] | None = None  # see register_hook

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays for backward: the op's inputs and output (which a create_graph
        backward sees as those tensors) or constants such as masks and indices."""
        self._saved = arrays

    def remember(self, **values: Any) -> None:
        """Keep values other than the op's inputs and output for backward (an input's shape
        or dtype, a count, a constant array), in `ctx.values`: kept apart from the
        context's own fields, and freed with the saved arrays."""
        self.values.update(values)

    def replace_saved(self, old: Any, new: np.ndarray) -> None:
        """Save `new` wherever `old` was saved (the output, once converted to its final array)."""
        self._saved = tuple(new if s is old else s for s in self._saved)

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """What `forward` saved with `save_for_backward`, in order (tensors under `create_graph`)."""
        if self.released:
            raise RuntimeError(_released_message(self.op))
        if self.graph_output is None:
            return self._saved
        return tuple(self._as_tensor(a) for a in self._saved)

    def _as_tensor(self, array: Any) -> Any:
        """The tensor whose data `array` is (an input or the output), else the array (a constant)."""
        for p in self.parents:
            if p.data is array:
                return p
        if self.graph_output.data is array:
            return self.graph_output
        return array

    def register_hook(self, hook: Callable[[tuple[Any, ...], tuple[Any, ...]], Any]) -> RemovableHandle:
        """Call `hook(grad_inputs, grad_outputs)` each time backward has applied this op's
        rule, as PyTorch's `Node.register_hook`: `grad_outputs` is `(gradient received,)`,
        `grad_inputs` one gradient per input (None where none flows), already summed to
        each input's shape. A hook returning a tuple replaces `grad_inputs`. Returns a
        handle with `.remove()`."""
        if self.hooks is None:
            self.hooks = {}
        return add_hook(self.hooks, hook)

    def release(self) -> None:
        """Free what backward needed; the graph's structure stays for drawing."""
        self._saved = ()
        self.values = {}
        self.released = True

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}={v}" for k, v in self.attrs.items())
        return f"<{self.op}{' ' + attrs if attrs else ''}>"


class _KernelContext:
    """The context of a kernel run on arrays by `Function.call`: it records nothing."""

    def __init__(self, attrs: dict[str, Any], inputs: int):
        self.attrs = attrs
        self.needs_input_grad = (False,) * inputs  # nothing is recorded, so no gradient is wanted

    def save_for_backward(self, *arrays: Any) -> None:
        pass

    def remember(self, **values: Any) -> None:
        pass


def _released_message(op: str) -> str:
    return (f"backward through the graph a second time (op '{op}'): its saved arrays "
            "were freed by the first backward(); call backward(retain_graph=True) the "
            "first time if you need to go through it again")


class Function:
    """Base class of every op. Subclasses set `name` and define `forward` and
    `backward`; defining the subclass registers it in `OPS`."""

    name: ClassVar[str] = ""
    differentiable: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.name:
            raise TypeError(f"op class {cls.__name__} must set a name")
        if cls.name in OPS:
            raise TypeError(f"op name '{cls.name}' is already registered by {OPS[cls.name].__name__}")
        OPS[cls.name] = cls

    @staticmethod
    def forward(ctx: Any, *inputs: np.ndarray, **attrs: Any) -> np.ndarray:
        """The op's value from its inputs' arrays and its attributes; saves on `ctx`
        (`save_for_backward`, `remember`) what `backward` needs."""
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        """The gradient with respect to each input (None for one that needs none), from the
        gradient of the output and what `forward` saved; written with ops that record
        themselves under `create_graph`, so it can be differentiated again."""
        raise NotImplementedError

    @classmethod
    def call(cls, *values: Any, **attrs: Any) -> Any:
        """The op on arrays (its kernel: an array, nothing recorded) or, when any value
        is a Tensor, `apply` (arrays become constant tensors). Derivative rules use it,
        so one rule serves plain and graph-recording backward passes."""
        while values and values[-1] is None:  # an absent optional input (a bias, say)
            values = values[:-1]
        if any(isinstance(v, Tensor) for v in values):
            return cls.apply(*(v if isinstance(v, Tensor) else Tensor.wrap(np.asarray(v)) for v in values), **attrs)
        return cls.forward(_KernelContext(attrs, len(values)), *values, **attrs)

    @classmethod
    def apply(cls, *inputs: "Tensor", **attrs: Any) -> "Tensor":
        """Run the op on tensors: its forward on their arrays, recorded in the graph (with
        a `Context` as the result's `grad_fn`) when grad mode is on and an input requires grad."""
        for i, t in enumerate(inputs):
            if not isinstance(t, Tensor):
                raise TypeError(f"{cls.name}: input {i} must be a Tensor, got {type(t).__module__}."
                                f"{type(t).__qualname__}" + (f" of shape {t.shape}" if hasattr(t, "shape") else ""))
        needs_grad = tuple(t.requires_grad for t in inputs)
        record = _grad_state.enabled and cls.differentiable and True in needs_grad
        # nothing recorded (no_grad, or no input requires grad): no gradient is wanted, so a forward
        # that keeps arrays only for its backward (GELU's derivative, conv's shifted copies) skips them
        ctx = Context(cls, inputs, attrs, needs_grad if record else (False,) * len(inputs))
        start = time.perf_counter() if op_timer is not None else 0.0
        out = cls.forward(ctx, *[t.data for t in inputs], **attrs)
        if op_timer is not None:
            op_timer(cls.name, "forward", time.perf_counter() - start)
        result_array = out if type(out) is np.ndarray else np.asarray(out)  # a 0-d result may come as a scalar
        if result_array.dtype == np.float64 and "dtype" not in attrs and not any(t.dtype.kind == "f" for t in inputs):
            result_array = result_array.astype(np.float32)  # floats computed from integers only get the default float type
        if result_array is not out:
            ctx.replace_saved(out, result_array)  # the saved output stays the output's data
        record = record and result_array.dtype.kind == "f"  # e.g. a cast to int carries no gradient
        result = Tensor.wrap(result_array, requires_grad=record)
        if record:
            result.grad_fn = ctx
        return result


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum `grad` (an array or a Tensor) over the axes along which an input of `shape` was broadcast."""
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def topological_order(root: "Tensor", grad_only: bool = True) -> list["Tensor"]:
    """Tensors that `root` depends on through recorded ops, each after all of
    its parents (depth-first, first parent first, so chains come out in
    execution order). With `grad_only`, only tensors that require grad: the
    ones backward visits. Iterative, so deep graphs do not hit the recursion
    limit."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        ctx = node.grad_fn
        if ctx is not None:
            for parent in reversed(ctx.parents):
                if (parent.requires_grad or not grad_only) and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def run_backward(root: "Tensor", grad: Any, retain_graph: bool, create_graph: bool = False,
                 inputs: "list[Tensor] | None" = None) -> dict[int, Any]:
    """Reverse-mode pass: propagate `grad` (d out / d root) to every tensor that
    requires grad. Without `inputs`, leaves (and tensors that asked with
    `retain_grad()`) accumulate into `.grad`; with `inputs`, nothing accumulates and
    the gradients of those tensors are returned by id. With `create_graph`, `grad` is
    a Tensor and every rule records its ops, so the gradients are differentiable.
    Hooks registered on a tensor see (and may replace) its gradient; callbacks queued
    during the pass (`queue_callback`) run after it, in order."""
    order = topological_order(root)
    for node in order:
        if node.grad_fn is not None and node.grad_fn.released:
            raise RuntimeError(_released_message(node.grad_fn.op))

    outer_callbacks, _grad_state.callbacks = _grad_state.callbacks, []
    try:
        found = _propagate(order, root, grad, retain_graph, create_graph, inputs)
        for callback in _grad_state.callbacks:
            callback()
    finally:
        _grad_state.callbacks = outer_callbacks
    return found


def _propagate(order: list["Tensor"], root: "Tensor", grad: Any, retain_graph: bool, create_graph: bool,
               inputs: "list[Tensor] | None") -> dict[int, Any]:
    """run_backward's pass over `order` (reversed): each node's gradient, hooks, accumulation
    and rule."""
    wanted = None if inputs is None else {id(t) for t in inputs}
    found: dict[int, Any] = {}
    grads: dict[int, Any] = {id(root): grad}
    with enable_grad() if create_graph else contextlib.nullcontext():
        for node in reversed(order):
            g = grads.pop(id(node), None)
            ctx = node.grad_fn
            if g is None:
                continue
            if node.hooks:
                g = _run_hooks(node, g, create_graph)
            if wanted is None:
                if ctx is None:  # a leaf: it may keep the array itself when nothing else holds it
                    owned = held_only_here(g)
                    node.accumulate_grad(g, owned)
                elif node.retains_grad:
                    node.accumulate_grad(g)
            elif id(node) in wanted:
                found[id(node)] = g
                if len(found) == len(wanted):
                    break  # every contribution to these tensors has arrived
            if ctx is not None:
                _apply_rule(ctx, node, g, grads, create_graph)
                if not retain_graph:
                    ctx.release()
    return found


def _apply_rule(ctx: Context, node: "Tensor", g: Any, grads: dict[int, Any], create_graph: bool) -> None:
    """Run `node`'s derivative rule on its gradient `g` and add what it returns into `grads`
    by parent (its own function, so no reference to those arrays outlives it)."""
    if create_graph:  # the rule's ops are recorded as "<module> (backward)"
        ctx.graph_output = node
        enter_module(backward_scope(ctx.module))
        _grad_state.backward_depth += 1
    try:
        if op_timer is None:
            parent_grads = ctx.fn.backward(ctx, g)
        else:
            start = time.perf_counter()
            parent_grads = ctx.fn.backward(ctx, g)
            op_timer(ctx.op, "backward", time.perf_counter() - start)
    finally:
        if create_graph:
            ctx.graph_output = None
            _grad_state.backward_depth -= 1
            exit_module()
    if not isinstance(parent_grads, tuple):
        parent_grads = (parent_grads,)
    if len(parent_grads) != len(ctx.parents):
        raise RuntimeError(f"op '{ctx.op}': backward returned {len(parent_grads)} "
                           f"gradients for {len(ctx.parents)} inputs")
    parent_grads = tuple(_shaped(pg, parent, create_graph) for parent, pg in zip(ctx.parents, parent_grads))
    if ctx.hooks:
        parent_grads = _run_node_hooks(ctx, parent_grads, g, create_graph)
    for parent, pg in zip(ctx.parents, parent_grads):
        if pg is not None:
            prev = grads.get(id(parent))
            grads[id(parent)] = pg if prev is None else prev + pg


def held_only_here(g: Any) -> bool:
    """Whether `g` is an array that only the caller's one local variable refers to, and
    whose memory nothing else can see: it owns its memory, or it is a view (a reshape or
    transpose an op returned) of an array that only this view refers to. A leaf may then
    keep it as its `.grad` instead of a copy (PyTorch's AccumulateGrad takes such buffers
    likewise). Counted against the same patterns measured at import."""
    if not isinstance(g, np.ndarray) or not g.flags.writeable or sys.getrefcount(g) > _ONE_LOCAL_REFERENCE:
        return False
    if g.flags.owndata:
        return True
    return _count_base_references(g) <= _BASE_OF_ONE_VIEW and isinstance(g.base, np.ndarray) \
        and g.base.flags.owndata  # counted first: a local holding the base would count too


def _references_of_one_local() -> int:
    """What sys.getrefcount reports inside `held_only_here` for an array held by one
    local variable of its caller (interpreters differ in what they count)."""
    probe = np.empty(1)
    return _count_references(probe)


def _count_references(g: Any) -> int:
    return sys.getrefcount(g)


def _references_of_a_base_of_one_view() -> int:
    """What `_count_base_references` reports for an array only one view refers to."""
    probe = np.empty(2)
    view = probe[:1]
    del probe
    return _count_base_references(view)


def _count_base_references(g: np.ndarray) -> int:
    return sys.getrefcount(g.base)


_BASE_OF_ONE_VIEW = _references_of_a_base_of_one_view()
_ONE_LOCAL_REFERENCE = _references_of_one_local()


def backward_scope(module: str | None) -> str:
    """The module name ops recorded by a derivative rule get: the forward op's module
    with " (backward)", so drawings group and label the backward pass apart."""
    return f"{module} (backward)" if module else "(backward)"


def _shaped(pg: Any, parent: "Tensor", create_graph: bool) -> Any:
    """A rule's gradient for `parent` as backward passes it on: None where the parent needs
    none, summed to its shape, a Tensor in a create_graph pass."""
    if pg is None or not parent.requires_grad:
        return None
    if pg.shape != parent.shape:
        pg = unbroadcast(pg, parent.shape)
    if create_graph and not isinstance(pg, Tensor):
        pg = Tensor.wrap(pg)
    return pg


def _run_node_hooks(ctx: Context, grad_inputs: tuple[Any, ...], grad: Any, create_graph: bool) -> tuple[Any, ...]:
    """Call `ctx`'s hooks in order; a hook returning a tuple replaces the gradients it passes on."""
    for hook in list(ctx.hooks.values()):  # type: ignore[union-attr]
        result = hook(grad_inputs, (grad,))
        if result is not None:
            result = tuple(result)
            if len(result) != len(ctx.parents):
                raise ValueError(f"a hook on op '{ctx.op}' returned {len(result)} gradients for "
                                 f"{len(ctx.parents)} inputs")
            grad_inputs = tuple(_shaped(r, p, create_graph) for p, r in zip(ctx.parents, result))
    return grad_inputs


def _run_hooks(node: "Tensor", grad: Any, create_graph: bool) -> Any:
    """Call `node`'s gradient hooks in order; a hook returning a value replaces the gradient."""
    for hook in list(node.hooks.values()):
        given = grad if isinstance(grad, Tensor) else Tensor.wrap(grad)
        result = hook(given)
        if result is not None:
            value = result.data if isinstance(result, Tensor) and not create_graph else result
            if not isinstance(value, Tensor):
                value = np.asarray(value, dtype=node.dtype)
            if value.shape != node.shape:
                raise ValueError(f"a hook on a tensor of shape {node.shape} returned a gradient of shape "
                                 f"{tuple(value.shape)}")
            grad = value
    return grad

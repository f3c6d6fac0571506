"""The recording machinery: `Function` (one op, forward and backward side by side),
its `Context`, the op registry, grad mode (`no_grad`) and the backward pass.

An op is a `Function` subclass with two static methods working on numpy arrays:

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
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator

import numpy as np

if TYPE_CHECKING:
    from .tensor import Tensor

# name -> Function subclass, for every op that can be recorded.
OPS: dict[str, type["Function"]] = {}


class _GradState(threading.local):
    """Per-thread recording state: grad mode and the stack of running modules."""
    enabled = True  # each thread starts with recording on, as in PyTorch

    def __init__(self) -> None:
        self.modules: list[str] = []


_grad_state = _GradState()

# Set by `tinygrad_lenet.profiler.profile_ops` while it runs: called as
# op_timer(op_name, "forward" | "backward", seconds) after each op kernel.
op_timer: Callable[[str, str, float], None] | None = None


def is_grad_enabled() -> bool:
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
    stack = _grad_state.modules
    return stack[-1] if stack else None


class Context:
    """What one recorded op remembers: its name, attributes, parents, the module
    it ran in and the arrays its backward needs."""

    def __init__(self, fn: type["Function"], parents: tuple["Tensor", ...], attrs: dict[str, Any]):
        self.fn = fn
        self.op: str = fn.name
        self.parents = parents
        self.attrs = attrs
        self.needs_input_grad = tuple(p.requires_grad for p in parents)
        self.module = current_module()
        self.released = False
        self._saved: tuple[np.ndarray, ...] = ()

    def save_for_backward(self, *arrays: Any) -> None:
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        if self.released:
            raise RuntimeError(_released_message(self.op))
        return self._saved

    def release(self) -> None:
        """Free what backward needed; the graph's structure stays for drawing."""
        self._saved = ()
        self.released = True

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}={v}" for k, v in self.attrs.items())
        return f"<{self.op}{' ' + attrs if attrs else ''}>"


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

    forward: ClassVar[Callable[..., np.ndarray]]
    backward: ClassVar[Callable[..., tuple[np.ndarray | None, ...]]]

    @classmethod
    def apply(cls, *inputs: "Tensor", **attrs: Any) -> "Tensor":
        from .tensor import Tensor

        for i, t in enumerate(inputs):
            if not isinstance(t, Tensor):
                raise TypeError(f"{cls.name}: input {i} must be a Tensor, got {type(t).__module__}."
                                f"{type(t).__qualname__}" + (f" of shape {t.shape}" if hasattr(t, "shape") else ""))
        record = _grad_state.enabled and cls.differentiable and any(t.requires_grad for t in inputs)
        ctx = Context(cls, inputs, attrs)
        if op_timer is None:
            out = cls.forward(ctx, *[t.data for t in inputs], **attrs)
        else:
            start = time.perf_counter()
            out = cls.forward(ctx, *[t.data for t in inputs], **attrs)
            op_timer(cls.name, "forward", time.perf_counter() - start)
        if out.dtype == np.float64 and "dtype" not in attrs and not any(t.data.dtype.kind == "f" for t in inputs):
            out = out.astype(np.float32)  # floats computed from integers only get the default float type
        record = record and out.dtype.kind == "f"  # e.g. a cast to int carries no gradient
        result = Tensor.wrap(out, requires_grad=record)
        if record:
            result.grad_fn = ctx
        return result


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` over the axes along which an input of `shape` was broadcast."""
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


def run_backward(root: "Tensor", grad: np.ndarray, retain_graph: bool) -> None:
    """Reverse-mode pass: propagate `grad` (d out / d root) to every tensor that
    requires grad; leaves (and tensors that asked with `retain_grad()`)
    accumulate into `.grad`."""
    order = topological_order(root)
    for node in order:
        if node.grad_fn is not None and node.grad_fn.released:
            raise RuntimeError(_released_message(node.grad_fn.op))

    grads: dict[int, np.ndarray] = {id(root): grad}
    for node in reversed(order):
        g = grads.pop(id(node), None)
        ctx = node.grad_fn
        if g is None:
            continue
        if ctx is None or node.retains_grad:
            node.accumulate_grad(g)
        if ctx is None:
            continue
        if op_timer is None:
            parent_grads = ctx.fn.backward(ctx, g)
        else:
            start = time.perf_counter()
            parent_grads = ctx.fn.backward(ctx, g)
            op_timer(ctx.op, "backward", time.perf_counter() - start)
        if not isinstance(parent_grads, tuple):
            parent_grads = (parent_grads,)
        if len(parent_grads) != len(ctx.parents):
            raise RuntimeError(f"op '{ctx.op}': backward returned {len(parent_grads)} "
                               f"gradients for {len(ctx.parents)} inputs")
        for parent, pg in zip(ctx.parents, parent_grads):
            if pg is None or not parent.requires_grad:
                continue
            if pg.shape != parent.data.shape:
                pg = unbroadcast(pg, parent.data.shape)
            key = id(parent)
            prev = grads.get(key)
            grads[key] = pg if prev is None else prev + pg
        if not retain_graph:
            ctx.release()

"""Walk the graph recorded behind a tensor into plain nodes and edges.

Every tensor the output depends on becomes a `TensorNode`, every recorded op an
`OpNode`; both are listed parents first and get stable keys ("t0", "op0", ...)
so the same computation always gives the same graph. The walk is iterative:
deep graphs do not hit the recursion limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from tinygrad_lenet.autograd import topological_order
from tinygrad_lenet.tensor import Tensor

TensorKind = Literal["input", "constant", "parameter", "intermediate", "output", "saved"]


@dataclass
class TensorNode:
    """One tensor: what it is (`kind`), its shape and dtype, and its gradient if kept."""

    key: str
    kind: TensorKind
    shape: tuple[int, ...]
    dtype: str
    name: str | None
    requires_grad: bool
    producer: str | None  # key of the op that computed it (None for leaves)
    tensor: Tensor = field(repr=False)

    @property
    def grad(self) -> np.ndarray | None:
        return self.tensor.grad

    @property
    def value(self) -> float | int | bool | None:
        """The single element of a one-element tensor (None otherwise)."""
        return self.tensor.data.item() if self.tensor.data.size == 1 else None


@dataclass
class OpNode:
    """One recorded op: its name, attributes, module and input/output tensor keys."""

    key: str
    op: str
    attrs: dict[str, Any]
    module: str | None
    inputs: tuple[str, ...]
    output: str
    backward: bool = False  # recorded by a derivative rule (a backward pass with create_graph=True)


@dataclass
class Graph:
    """Tensors and ops in topological order (parents first); `output` is the root's key."""

    tensors: dict[str, TensorNode]
    ops: dict[str, OpNode]
    output: str
    _keys: dict[int, str] = field(repr=False, default_factory=dict)

    def key_of(self, tensor: Tensor) -> str | None:
        """The key of `tensor` in this graph, or None if the output does not depend on it."""
        return self._keys.get(id(tensor))

    def tensor_modules(self) -> dict[str, str | None]:
        """Tensor key -> the module it belongs to: its op's, or for a parameter or constant
        read by one module only, that module's (None for the rest)."""
        consumers = self.consumers()
        out: dict[str, str | None] = {}
        for key, t in self.tensors.items():
            if t.producer is not None:
                out[key] = self.ops[t.producer].module
            else:
                readers = {self.ops[c].module for c in consumers[key]}
                out[key] = readers.pop() if t.kind in ("parameter", "constant") and len(readers) == 1 else None
        return out

    def consumers(self) -> dict[str, list[str]]:
        """Tensor key -> keys of the ops that read it (once per op)."""
        out: dict[str, list[str]] = {k: [] for k in self.tensors}
        for op in self.ops.values():
            for t in dict.fromkeys(op.inputs):
                out[t].append(op.key)
        return out


def _kind(t: Tensor, is_root: bool) -> TensorKind:
    if is_root:
        return "output"
    if t.grad_fn is not None:
        return "intermediate"
    if t.requires_grad:
        return "parameter"
    if t.ndim == 0 and t.name is None:
        return "constant"
    return "input"


def build_graph(output: Tensor) -> Graph:
    """The graph that produced `output`, as plain `TensorNode`s and `OpNode`s."""
    if not isinstance(output, Tensor):
        raise TypeError(f"viz.build_graph: expected a Tensor, got {type(output).__name__}")
    order = topological_order(output, grad_only=False)
    keys = {id(t): f"t{i}" for i, t in enumerate(order)}
    tensors: dict[str, TensorNode] = {}
    ops: dict[str, OpNode] = {}
    for t in order:
        key = keys[id(t)]
        ctx = t.grad_fn
        producer = None
        if ctx is not None:
            producer = f"op{len(ops)}"
            ops[producer] = OpNode(producer, ctx.op, dict(ctx.attrs), ctx.module or None,
                                   tuple(keys[id(p)] for p in ctx.parents), key, ctx.in_backward)
        tensors[key] = TensorNode(key, _kind(t, t is output), tuple(t.shape), str(t.dtype), t.name,
                                  t.requires_grad, producer, t)
    readers: dict[str, list[OpNode]] = {}
    for op in ops.values():
        for k in op.inputs:
            readers.setdefault(k, []).append(op)
    for key, node in tensors.items():  # values a derivative rule kept from the forward pass (a relu's mask)
        if node.kind == "input" and readers.get(key) and all(op.backward for op in readers[key]):
            tensors[key] = replace(node, kind="saved")
    return Graph(tensors, ops, keys[id(output)], keys)


def retain_grads(output: Tensor) -> int:
    """Mark every computed tensor behind `output` with `retain_grad()`, so that
    after `backward()` each one keeps its `.grad` for drawing. Returns how many
    tensors were marked. Call it before `backward()`."""
    if not isinstance(output, Tensor):
        raise TypeError(f"viz.retain_grads: expected a Tensor, got {type(output).__name__}")
    marked = 0
    for t in topological_order(output, grad_only=False):
        if t.grad_fn is not None:
            t.retain_grad()
            marked += 1
    return marked

"""Watch one backward pass: which op the engine visits at each step, the gradient it
receives, what it sends to each input and, when the pass records itself
(`create_graph=True`), the ops its derivative rule recorded.

The steps come from hooks on the ops themselves (`grad_fn.register_hook`, as in
PyTorch), so their order is the engine's, not a reconstruction. The pass runs through
`tinygrad_lenet.grad`: no `.grad` of the caller's tensors changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinygrad_lenet import grad
from tinygrad_lenet.tensor import Tensor

from ..graph import Graph, build_graph


@dataclass
class Step:
    """One op's turn in the backward pass."""

    op: str  # its key in the graph
    received: Any  # the gradient of its output
    sent: tuple[Any, ...]  # per input: the gradient passed on (None where none flows)
    recorded: list[Tensor] | None  # what its rule computed, as recorded tensors (create_graph only)


@dataclass
class BackwardRecord:
    """A graph, the engine's steps through it, and every leaf's gradient (by tensor key)."""

    graph: Graph
    steps: list[Step]
    leaf_grads: dict[str, Any]


def record_backward(output: Tensor, create_graph: bool = True) -> BackwardRecord:
    """Run backward from `output` (a one-element tensor, as a loss) and record each step."""
    if not isinstance(output, Tensor):
        raise TypeError(f"viz.explore: expected a Tensor, got {type(output).__name__}")
    if output.size != 1:
        raise ValueError(f"viz.explore: walks the backward pass of a one-element tensor (a loss); got shape "
                         f"{tuple(output.shape)}: reduce it first (output.sum(), a loss function)")
    if output.grad_fn is None:
        raise ValueError("viz.explore: the output has no recorded graph (was it computed under no_grad(), or from "
                         "tensors that do not require grad?)")
    graph = build_graph(output)
    steps: list[Step] = []
    handles = []
    for node in graph.tensors.values():
        if node.producer is not None:
            handles.append(node.tensor.grad_fn.register_hook(_watcher(node.producer, steps, create_graph)))
    leaves = [(key, node.tensor) for key, node in graph.tensors.items()
              if node.producer is None and node.requires_grad]
    try:
        grads = grad(output, [t for _, t in leaves], create_graph=create_graph, retain_graph=True, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    return BackwardRecord(graph, steps, {key: g for (key, _), g in zip(leaves, grads) if g is not None})


def _watcher(key: str, steps: list[Step], create_graph: bool):
    def hook(grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...]) -> None:
        received = grad_outputs[0]
        recorded = rule_outputs(grad_inputs, received) if create_graph else None
        steps.append(Step(key, received, tuple(grad_inputs), recorded))
    return hook


def rule_outputs(sent: tuple[Any, ...], received: Any) -> list[Tensor]:
    """Tensors computed by the ops a derivative rule recorded, parents first: walked back
    from what the rule sent, through ops recorded in the backward pass, up to the
    gradient it received and the forward values it read."""
    order: list[Tensor] = []
    seen: set[int] = {id(received)}
    stack = [(t, False) for t in reversed(sent) if isinstance(t, Tensor)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen or t.grad_fn is None or not t.grad_fn.in_backward:
            continue
        seen.add(id(t))
        stack.append((t, True))
        stack.extend((p, False) for p in reversed(t.grad_fn.parents))
    return order

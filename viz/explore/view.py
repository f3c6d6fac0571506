"""A recorded graph as the viewer's data: JSON-ready nodes (with value and gradient
summaries), edges, nested modules and the backward steps, plus each op's rule source."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tinygrad_lenet.autograd import OPS
from tinygrad_lenet.tensor import Tensor

from ..draw import STYLES
from ..graph import Graph
from ..labels import attr_items, fmt_shape, op_label, tensor_label
from .record import Step
from .summary import summarize

BACKWARD_SUFFIX = " (backward)"
KIND_NAMES = {"saved": "kept for backward", "backward op": "op of a backward pass", "module": "module (collapsed)"}


def _array(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    return np.asarray(value.data if isinstance(value, Tensor) else value)


def module_parents(modules: set[str]) -> dict[str, str | None]:
    """Every module path with its enclosing ones added ("features.0" is inside "features";
    "features.0 (backward)" inside "features (backward)"), each with its parent."""
    out: dict[str, str | None] = {}
    for module in modules:
        backward = module.endswith(BACKWARD_SUFFIX)
        path = module[:-len(BACKWARD_SUFFIX)] if backward else module
        parts = path.split(".")
        names = [".".join(parts[:i]) + (BACKWARD_SUFFIX if backward else "") for i in range(1, len(parts) + 1)]
        for i, name in enumerate(names):
            out.setdefault(name, names[i - 1] if i else None)
    return out


def view_data(graph: Graph, named: Callable[[str], str], steps: list[Step] | None = None,
              leaf_grads: dict[str, Any] | None = None, keys_elsewhere: Callable[[Tensor], str | None] | None = None
              ) -> dict[str, Any]:
    """Nodes, edges, modules and steps of `graph`. Gradients: each op output's from the step
    that received it, each leaf's from `leaf_grads`. `keys_elsewhere` maps a tensor a rule
    recorded to its key in another view (the graph of the backward pass)."""
    steps = steps or []
    received = {graph.ops[s.op].output: _array(s.received) for s in steps}
    grads = {**received, **{k: _array(g) for k, g in (leaf_grads or {}).items()}}
    tensor_modules = graph.tensor_modules()
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[list[str]] = []
    for key, t in graph.tensors.items():
        module = tensor_modules[key]
        title = t.name or ({"intermediate": "tensor", "saved": "kept for backward"}.get(t.kind, t.kind))
        nodes[key] = dict(kind=t.kind, label=tensor_label(t, False), title=title, name=t.name, module=module,
                          requires_grad=t.requires_grad, producer=t.producer,
                          summary=summarize(t.tensor.data),
                          grad=summarize(grads[key]) if grads.get(key) is not None else None)
        if t.producer is not None:
            op = graph.ops[t.producer]
            label = op_label(op)
            nodes[op.key] = dict(kind="backward op" if op.backward else "op", label=label, title=label, op=op.op,
                                 module=op.module, inputs=list(op.inputs), output=op.output,
                                 attrs={k: v for k, v in (item.split("=", 1) for item in attr_items(op.op, op.attrs)
                                                          if "=" in item)})
            edges.extend([i, op.key] for i in dict.fromkeys(op.inputs))
            edges.append([op.key, key])
    for node in nodes.values():
        words = [node["label"], node.get("name") or "", node.get("op") or "", node["module"] or "", node["kind"]]
        node["search"] = " ".join(words).lower().replace("\n", " ")
    parents = module_parents({n["module"] for n in nodes.values() if n["module"]})
    modules = {m: dict(label=named(m), parent=parents[m]) for m in sorted(parents, key=lambda m: (m.count("."), m))}
    return dict(nodes=nodes, edges=edges, modules=modules, output=graph.output, has_gradients=bool(grads),
                steps=[_step(graph, s, keys_elsewhere) for s in steps])


def _step(graph: Graph, step: Step, keys_elsewhere: Callable[[Tensor], str | None] | None) -> dict[str, Any]:
    op = graph.ops[step.op]
    sent = [dict(to=parent, grad=None if g is None else summarize(_array(g))) for parent, g in zip(op.inputs, step.sent)]
    recorded = None
    if step.recorded is not None:
        recorded = [dict(label=f"{t.grad_fn.op} → {fmt_shape(tuple(t.shape))}",
                         key=keys_elsewhere(t) if keys_elsewhere else None) for t in step.recorded]
    return dict(op=step.op, sent=sent, recorded=recorded)


def rule_sources(ops: set[str]) -> dict[str, dict[str, str]]:
    """Each op's `Function` class source (its forward and backward rule) and where it lives."""
    out = {}
    for name in sorted(ops):
        cls = OPS.get(name)
        if cls is None:
            continue
        try:
            lines, line = inspect.getsourcelines(cls)
            path = Path(inspect.getsourcefile(cls) or "?")
        except (OSError, TypeError):
            continue
        parts = path.parts
        where = "/".join(parts[parts.index("tinygrad_lenet"):]) if "tinygrad_lenet" in parts else path.name
        out[name] = dict(source="".join(lines), where=f"{cls.__name__} in {where}, line {line}")
    return out


def styles() -> dict[str, dict[str, str]]:
    """Graphviz attributes of each node kind, shared with the static drawings."""
    return {kind: dict(style) for kind, style in STYLES.items()}

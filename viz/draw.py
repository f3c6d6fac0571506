"""Draw a recorded graph with graphviz: `draw_graph(loss)` returns a `graphviz.Digraph`.

Tensors are boxes (inputs blue, parameters green, the output red with a double
border, intermediates white), ops are grey ellipses, modules are yellow 3-D
boxes. Forward edges are solid; with `show_grads=True` dashed red edges show
where gradients flow back.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Mapping

import graphviz

from tinygrad_lenet.tensor import Tensor

from .graph import Graph, build_graph
from .group import group_by_module
from .labels import group_label, module_namer, op_label, tensor_label

NodeKind = Literal["input", "constant", "parameter", "intermediate", "output", "saved", "op", "backward op", "module"]

STYLES: dict[str, dict[str, str]] = {
    "input": {"shape": "box", "style": "filled", "fillcolor": "#cfe2ff", "color": "#3d6cb9"},
    "parameter": {"shape": "box", "style": "filled", "fillcolor": "#d1e7dd", "color": "#2e7d4f"},
    "constant": {"shape": "plaintext", "fontcolor": "#555555"},
    "saved": {"shape": "note", "style": "filled", "fillcolor": "#f3e8ff", "color": "#7b2cbf"},
    "intermediate": {"shape": "box", "style": "rounded", "color": "#888888"},
    "output": {"shape": "box", "style": "filled", "fillcolor": "#f8d7da", "color": "#b02a37",
               "peripheries": "2"},
    "op": {"shape": "ellipse", "style": "filled", "fillcolor": "#eeeeee", "color": "#666666"},
    "backward op": {"shape": "ellipse", "style": "filled", "fillcolor": "#ffe0cc", "color": "#c2571a"},
    "module": {"shape": "box3d", "style": "filled", "fillcolor": "#fff3cd", "color": "#997404"},
}
GRAD_EDGE = {"style": "dashed", "color": "#d62728", "constraint": "false", "arrowsize": "0.6"}
HIGHLIGHT_COLOR = "#7b2cbf"
HIGHLIGHT = {"color": HIGHLIGHT_COLOR, "penwidth": "3"}
CLUSTER = {"style": "rounded,dashed", "color": "#999999", "fontcolor": "#555555", "labeljust": "l"}
LEVELS = ("op", "module")
RANKDIRS = ("TB", "BT", "LR", "RL")


@dataclass
class _Node:
    label: str
    kind: NodeKind
    cluster: str | None = None
    requires_grad: bool = False  # tensors only: gradient flows through its edges

    @property
    def is_tensor(self) -> bool:
        return self.kind not in ("op", "backward op", "module")


@dataclass
class _Drawing:
    """What will be drawn, before any graphviz styling."""

    nodes: dict[str, _Node] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    drawn_key: dict[str, str] = field(default_factory=dict)  # graph tensor key -> node that shows it


def _op_level(graph: Graph, show_grads: bool) -> _Drawing:
    d = _Drawing()
    modules = graph.tensor_modules()
    for key, t in graph.tensors.items():
        d.nodes[key] = _Node(tensor_label(t, show_grads), t.kind, modules[key], t.requires_grad)
        d.drawn_key[key] = key
        if t.producer is not None:
            op = graph.ops[t.producer]
            d.nodes[op.key] = _Node(op_label(op), "backward op" if op.backward else "op", op.module)
            d.edges.extend((i, op.key) for i in op.inputs)
            d.edges.append((op.key, key))
    return d


def _module_level(graph: Graph, show_grads: bool, named: Callable[[str], str] = str) -> _Drawing:
    d = _Drawing()
    groups = group_by_module(graph)
    group_of = {op: g.key for g in groups for op in g.ops}
    consumers = graph.consumers()

    def visible(key: str) -> bool:
        t = graph.tensors[key]
        if t.producer is None:
            return t.kind != "constant"
        return key == graph.output or any(group_of[c] != group_of[t.producer] for c in consumers[key])

    for key, t in graph.tensors.items():
        if visible(key):
            d.drawn_key[key] = key
            if t.producer is None:
                d.nodes[key] = _Node(tensor_label(t, show_grads), t.kind, None, t.requires_grad)
        else:
            d.drawn_key[key] = group_of[t.producer] if t.producer else group_of[consumers[key][0]]
    for g in groups:
        ops = [graph.ops[k] for k in g.ops]
        if g.module is None:
            d.nodes[g.key] = _Node(op_label(ops[0]), "backward op" if ops[0].backward else "op")
        else:
            d.nodes[g.key] = _Node(group_label(named(g.module), ops), "module")
        inputs = dict.fromkeys(i for op in ops for i in op.inputs
                               if d.drawn_key[i] == i and graph.tensors[i].producer not in g.ops)
        d.edges.extend((i, g.key) for i in inputs)
        for op in ops:
            if d.drawn_key[op.output] == op.output:
                t = graph.tensors[op.output]
                d.nodes[op.output] = _Node(tensor_label(t, show_grads), t.kind, None, t.requires_grad)
                d.edges.append((g.key, op.output))
    return d


def _path_edges(d: _Drawing, sources: Iterable[str]) -> tuple[set[str], set[tuple[str, str]]]:
    """Nodes and edges on the paths from `sources` to the output (every drawn
    node leads to the output, so these are the edges leaving nodes reachable
    from the sources)."""
    children: dict[str, list[str]] = {}
    for u, v in d.edges:
        children.setdefault(u, []).append(v)
    reached = set(sources)
    stack = list(reached)
    while stack:
        for v in children.get(stack.pop(), []):
            if v not in reached:
                reached.add(v)
                stack.append(v)
    return reached, {(u, v) for u, v in d.edges if u in reached}


def _cluster_parents(modules: set[str]) -> dict[str, str | None]:
    """Each module's nearest enclosing module that also has a cluster."""
    parents: dict[str, str | None] = {}
    for m in modules:
        parts = m.split(".")
        parents[m] = next((p for p in (".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1))
                           if p in modules), None)
    return parents


def _emit_nodes(dot: graphviz.Digraph, d: _Drawing, marked: set[str], named: Callable[[str], str]) -> None:
    by_cluster: dict[str | None, list[str]] = {}
    for key, node in d.nodes.items():
        by_cluster.setdefault(node.cluster, []).append(key)
    parents = _cluster_parents({m for m in by_cluster if m is not None})
    children: dict[str | None, list[str]] = {}
    for m in sorted(parents):
        children.setdefault(parents[m], []).append(m)
    ids = {m: i for i, m in enumerate(sorted(parents))}

    def fill(g: graphviz.Digraph, module: str | None) -> None:
        for key in by_cluster.get(module, []):
            node = d.nodes[key]
            attrs = dict(STYLES[node.kind])
            if key in marked:
                attrs.update(HIGHLIGHT)
            g.node(key, node.label.replace("\n", "\\n"), **attrs)  # DOT's escaped newline
        for child in children.get(module, []):
            name = f"cluster_{ids[child]}_{re.sub(r'[^0-9A-Za-z_]', '_', child)}"
            with g.subgraph(name=name) as sub:
                sub.attr(label=named(child), **CLUSTER)
                fill(sub, child)

    fill(dot, None)


def _summary(graph: Graph, drawn: int, level: str, max_nodes: int) -> graphviz.Digraph:
    """One note node instead of an unreadable picture: counts and what to try."""
    counts = Counter(op.op for op in graph.ops.values())
    params = sum(t.kind == "parameter" for t in graph.tensors.values())
    modules = len({op.module for op in graph.ops.values()} - {None})
    top = ", ".join(f"{name} x{n}" for name, n in counts.most_common(8))
    more = f", ... ({len(counts) - 8} more op types)" if len(counts) > 8 else ""
    hint = ""
    if level == "op" and modules:
        hint = f'draw with level="module" ({len(_module_level(graph, False).nodes)} nodes), or '
    lines = [f"graph too large to draw: {drawn} nodes at level=\"{level}\" > max_nodes={max_nodes}",
             f"{len(graph.tensors)} tensors ({params} parameter(s)), {len(graph.ops)} ops, {modules} module(s)",
             f"ops: {top}{more}",
             f"{hint}raise max_nodes (draw_graph(..., max_nodes={drawn}))"]
    dot = graphviz.Digraph("summary")
    dot.node("summary", "\\n".join(lines), shape="note", style="filled", fillcolor="#fff3cd")
    return dot


LEGEND_TEXT = {"saved": "kept for backward"}


def _legend(dot: graphviz.Digraph, level: str, show_grads: bool, backward: bool = False) -> None:
    kinds = (["input", "parameter", "intermediate", "output", "op"] + (["backward op", "saved"] if backward else [])
             + (["module"] if level == "module" else []))
    with dot.subgraph(name="cluster_legend") as g:
        g.attr(label="legend", **CLUSTER)
        for kind in kinds:
            g.node(f"legend_{kind.replace(' ', '_')}", LEGEND_TEXT.get(kind, kind), **STYLES[kind])
        for a, b in zip(kinds, kinds[1:]):
            g.edge(f"legend_{a.replace(' ', '_')}", f"legend_{b.replace(' ', '_')}", style="invis")
        if show_grads:
            g.node("legend_grad_a", "", shape="point")
            g.node("legend_grad_b", "gradient flow", shape="plaintext")
            g.edge("legend_grad_a", "legend_grad_b", **{**GRAD_EDGE, "constraint": "true"})


def draw_graph(tensor: Tensor, level: str = "op", show_grads: bool = False,
               highlight: Tensor | Iterable[Tensor] | None = None, max_nodes: int = 500,
               rankdir: str = "TB", legend: bool | None = None,
               graph_attr: dict[str, str] | None = None,
               layer_names: Mapping[str, str] | None = None) -> graphviz.Digraph:
    """The graph that computed `tensor`, as a `graphviz.Digraph`.

    level: "op" draws every op and tensor, with one cluster per module;
        "module" collapses each run of ops from one module into one node.
    show_grads: label tensors with their gradient (shape and norm, or the value
        for one-element tensors) and draw dashed edges in the backward direction.
        Intermediate gradients exist only if `viz.retain_grads(tensor)` was called
        before `backward()`.
    highlight: a tensor (or several), e.g. a parameter; the paths from it to
        `tensor` are drawn bold.
    max_nodes: above this many nodes, a single summary node is drawn instead.
    rankdir: graphviz layout direction, "TB", "BT", "LR" or "RL".
    legend: add a small legend of node kinds (default: for graphs of a backward pass,
        whose node kinds are the less familiar ones).
    layer_names: what a model calls its modules (e.g. LeNet-5's "features.0" is the
        paper's "C1"); a module is labelled "C1 · features.0". Models may declare them
        as `layer_names` (see `layer_names_of`).

    The ops of a backward pass recorded with `create_graph=True` (the graph of a
    gradient) are drawn as "backward op"s, grouped as "<module> (backward)".
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"draw_graph: expected a Tensor, got {type(tensor).__name__}")
    if level not in LEVELS:
        raise ValueError(f"draw_graph: level must be one of {LEVELS}, got {level!r}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"draw_graph: rankdir must be one of {RANKDIRS}, got {rankdir!r}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"draw_graph: max_nodes must be a positive int, got {max_nodes!r}")
    graph = build_graph(tensor)
    targets = [] if highlight is None else [highlight] if isinstance(highlight, Tensor) else list(highlight)
    target_keys = []
    for t in targets:
        key = graph.key_of(t) if isinstance(t, Tensor) else None
        if key is None:
            what = f"{t!r} (name {t.name!r})" if isinstance(t, Tensor) else f"a {type(t).__name__}"
            raise ValueError(f"draw_graph: highlight {what} is not a tensor in the graph that "
                             f"computed the output {tensor!r}")
        target_keys.append(key)

    named = module_namer(layer_names or {})
    d = _op_level(graph, show_grads) if level == "op" else _module_level(graph, show_grads, named)
    if len(d.nodes) > max_nodes:
        return _summary(graph, len(d.nodes), level, max_nodes)

    marked, path = _path_edges(d, (d.drawn_key[k] for k in target_keys))
    dot = graphviz.Digraph("tinygrad_lenet", graph_attr={"rankdir": rankdir, "fontname": "Helvetica",
                                                "fontsize": "11", **(graph_attr or {})},
                           node_attr={"fontname": "Helvetica", "fontsize": "10"},
                           edge_attr={"color": "#444444", "arrowsize": "0.7"})
    _emit_nodes(dot, d, marked, named)
    for u, v in d.edges:
        dot.edge(u, v, **(HIGHLIGHT if (u, v) in path else {}))
    if show_grads:
        for u, v in d.edges:
            tensor_end = d.nodes[u] if d.nodes[u].is_tensor else d.nodes[v]
            if tensor_end.requires_grad:
                dot.edge(v, u, **GRAD_EDGE)
        missing = sum(n.is_tensor and n.requires_grad and graph.tensors[k].grad is None
                      for k, n in d.nodes.items() if k in graph.tensors)
        if missing:
            dot.attr(label=f"{missing} tensor(s) requiring grad have no kept gradient: run backward(), "
                           "calling viz.retain_grads(output) before it to keep intermediate ones",
                     labelloc="b", fontcolor="#b02a37")
    backward = any(op.backward for op in graph.ops.values())
    if legend or (legend is None and backward):
        _legend(dot, level, show_grads, backward)
    return dot


def layer_names_of(model: Any) -> dict[str, str]:
    """The `layer_names` a model declares (module path -> its own name), or none."""
    names = getattr(model, "layer_names", None)
    return dict(names) if isinstance(names, Mapping) else {}

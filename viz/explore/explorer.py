"""`viz.explore(loss)`: the interactive viewer of a graph and of its backward pass.

    loss = F.cross_entropy(model(x), y)
    view = viz.explore(loss, model)   # runs the backward pass and records it
    view.save("graph.html")            # one file: opens from disk, no server, no network
    view                               # in a notebook: shown inline

Two views: the forward graph, whose backward pass can be walked step by step in the
engine's order, and the graph of the backward pass itself (d loss / d the first
parameter, recorded with create_graph=True), whose ops are the derivative rules'.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from tinygrad_lenet.atomic import atomic_write_bytes
from tinygrad_lenet.tensor import Tensor

from ..draw import layer_names_of
from ..graph import build_graph
from ..labels import module_namer
from .page import page_html
from .record import record_backward
from .view import KIND_NAMES, rule_sources, styles, view_data

COLLAPSE_ABOVE = 90  # nodes; a larger graph opens with its top-level modules collapsed
NOTEBOOK_HEIGHT = 760  # pixels of the notebook's frame


class GraphExplorer:
    """The viewer's data for one graph: `.html()`, `.save(path)`, `.serve(port)`, and
    inline display in notebooks (`_repr_html_`)."""

    def __init__(self, data: dict[str, Any]):
        self.data = data

    def html(self) -> str:
        """The whole viewer as one self-contained HTML page."""
        return page_html(self.data)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the page to `path` (atomically) and return the path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, self.html().encode("utf-8"))
        return out

    def serve(self, port: int = 0, host: str = "127.0.0.1"):
        """Serve the page on `host:port` (port 0: a free one) from a daemon thread; returns
        the server (`.url`, `.shutdown()`)."""
        from .serve import start_explorer_server
        return start_explorer_server(self.html(), port=port, host=host)

    def _repr_html_(self) -> str:
        """The page in an isolated frame, so its script and style meet nothing of the notebook's.
        The frame holds only a loader of the page's UTF-8 bytes in base64: ASCII, so the page
        reads the same in a host page of any encoding (the vendored Graphviz carries its
        WebAssembly as text, which a wrong guess of the encoding would change)."""
        payload = base64.b64encode(self.html().encode("utf-8")).decode("ascii")
        loader = (f'<script>const bytes = Uint8Array.from(atob("{payload}"), (c) => c.charCodeAt(0));'
                  "document.open(); document.write(new TextDecoder().decode(bytes)); document.close();</script>")
        return (f'<iframe srcdoc="{html.escape(loader, quote=True)}" title="{html.escape(self.data["title"])}" '
                f'style="width:100%;height:{NOTEBOOK_HEIGHT}px;border:1px solid #ddd"></iframe>')

    def __repr__(self) -> str:
        counts = ", ".join(f"{v['id']}: {len(v['nodes'])} nodes" for v in self.data["views"])
        return f"<GraphExplorer {self.data['title']!r} ({counts})>"


def explore(output: Tensor, model: Any = None, wrt: Tensor | None = None, title: str | None = None,
            create_graph: bool = True) -> GraphExplorer:
    """Record the graph behind `output` (a loss) and one backward pass through it, for the viewer.

    model: optional; its `layer_names` label modules ("C1 · features.0").
    wrt: the tensor whose gradient's own graph is the second view (default: the first
        leaf requiring grad, usually the first layer's weight: its gradient needs the
        whole backward pass).
    create_graph: record the backward pass (needed for the second view and for the ops
        each rule recorded); False walks a plain backward pass only.

    The backward pass goes through `tinygrad_lenet.grad` with `retain_graph=True`: no
    `.grad` changes and `output.backward()` still works afterwards.
    """
    record = record_backward(output, create_graph=create_graph)
    named = module_namer(layer_names_of(model) if model is not None else {})
    graph = record.graph
    views = []
    backward_graph = None
    if create_graph and record.leaf_grads:
        key = graph.key_of(wrt) if wrt is not None else next(iter(record.leaf_grads))
        if key is None or key not in record.leaf_grads:
            raise ValueError(f"viz.explore: wrt {wrt!r} is not a tensor whose gradient the output has")
        gradient = record.leaf_grads[key]
        if isinstance(gradient, Tensor) and gradient.grad_fn is not None:
            gradient.name = f"d loss / d {graph.tensors[key].name or 'the ' + graph.tensors[key].kind}"
            backward_graph = build_graph(gradient)
    forward = view_data(graph, named, record.steps, record.leaf_grads,
                        backward_graph.key_of if backward_graph is not None else None)
    what = graph.tensors[graph.output].name or "the output"
    views.append(dict(id="forward", tab="Forward graph", title=f"Forward graph of {what}",
                      description=f"{len(graph.ops)} ops, {len(graph.tensors)} tensors. Values from this batch, "
                                  f"gradients from one backward pass; {len(record.steps)} backward steps to walk.",
                      **forward))
    if backward_graph is not None:
        target = backward_graph.tensors[backward_graph.output].name
        views.append(dict(id="backward", tab="Backward graph", title=f"Graph of {target}",
                          description=f"What backpropagation computes, recorded with create_graph=True: "
                                      f"{sum(op.backward for op in backward_graph.ops.values())} ops of derivative "
                                      f"rules (orange) reading values kept from the forward pass.",
                          **view_data(backward_graph, named)))
    ops = {op.op for op in graph.ops.values()} | ({op.op for op in backward_graph.ops.values()} if backward_graph else set())
    return GraphExplorer(dict(title=title or f"{type(model).__name__ if model is not None else 'graph'}: {what}",
                              views=views, rules=rule_sources(ops), styles=styles(), kind_names=KIND_NAMES,
                              collapse_above=COLLAPSE_ABOVE))

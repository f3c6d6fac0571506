"""Draw the computation graph recorded behind a tensor.

    loss = model(x).cross_entropy(y)
    viz.retain_grads(loss)          # optional: keep every intermediate gradient
    loss.backward()
    viz.draw_graph(loss, level="module", show_grads=True).render("graph", format="svg")

    viz.explore(loss, model).save("graph.html")   # the interactive viewer, one file
"""

from .draw import draw_graph, layer_names_of
from .explore import GraphExplorer, explore
from .graph import Graph, OpNode, TensorNode, build_graph, retain_grads
from .group import OpGroup, group_by_module
from .render import FORMATS, Saved, infer_format, save_graph

__all__ = ["FORMATS", "Graph", "GraphExplorer", "OpGroup", "OpNode", "Saved", "TensorNode", "build_graph", "draw_graph",
           "explore", "group_by_module", "infer_format", "layer_names_of", "retain_grads", "save_graph"]

"""The interactive graph viewer: `viz.explore(loss, model)` records a graph and its
backward pass; the result saves as one self-contained HTML file, serves on loopback,
or shows inline in a notebook."""

from .explorer import GraphExplorer, explore

__all__ = ["GraphExplorer", "explore"]

"""Pictures of a run, drawn with matplotlib's object-oriented API on the Agg canvas
(headless, no global pyplot state): training curves, a confusion matrix, the most
confident mistakes. Each returns nothing and writes PNG or SVG atomically."""

from .confusion import plot_confusion
from .curves import plot_curves
from .mistakes import plot_mistakes

__all__ = ["plot_confusion", "plot_curves", "plot_mistakes"]

"""Pictures of a run, drawn with matplotlib's object-oriented API on the Agg canvas
(headless, no global pyplot state): training curves, a confusion matrix, the most
confident mistakes. Each returns nothing and writes PNG or SVG atomically."""

from .confusion import plot_confusion
from .curves import curves_figure, plot_curves, smoothing_floor
from .mistakes import plot_mistakes

__all__ = ["curves_figure", "plot_confusion", "plot_curves", "plot_mistakes", "smoothing_floor"]

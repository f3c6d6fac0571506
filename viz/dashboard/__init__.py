"""A live training dashboard: `train.py --dashboard` serves a page on 127.0.0.1 that
updates while training runs (loss, accuracy, learning rate, images/s, per-layer
gradient and weight norms, weight histograms, the model's module-level graph)."""

from .server import DashboardServer, start_dashboard
from .state import DashboardState

__all__ = ["DashboardServer", "DashboardState", "start_dashboard"]

"""A live training dashboard: `train.py --dashboard` serves a page on 127.0.0.1 that
updates while training runs (loss, accuracy, learning rate, images/s, per-layer
gradient and weight norms, weight histograms, the model's module-level graph), and
every run directory gets the same page as one file that opens without a server."""

from .server import DashboardServer, start_dashboard
from .snapshot import snapshot_html
from .state import DashboardState

__all__ = ["DashboardServer", "DashboardState", "snapshot_html", "start_dashboard"]

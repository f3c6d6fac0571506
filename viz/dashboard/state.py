"""What the dashboard shows, recorded from the training loop every few dozen steps."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from tinygrad_lenet.nn import Module

EVERY = 20  # steps between records
HISTOGRAM_BINS = 30


class DashboardState:
    """Curves and per-layer statistics of a running training, as JSON-ready data.
    `record_step` is called by the loop after each step; `snapshot` by the server."""

    def __init__(self, model: Module, title: str, steps_per_epoch: int, graph_svg: str | None = None,
                 graph_html: str | None = None):
        self.model, self.title, self.steps_per_epoch = model, title, steps_per_epoch
        self.graph_svg = graph_svg
        self.graph_html = graph_html  # the graph viewer's page (viz.explore), linked from the dashboard
        self._lock = threading.Lock()
        self._points: list[dict[str, float]] = []
        self._epochs: list[dict[str, float]] = []
        self._layers: list[dict[str, Any]] = []
        self._step, self._last_record, self._timed_images = 0, time.perf_counter(), 0
        self._status, self._error = "training", None
        self._window: list[tuple[float, float, int]] = []  # (loss, accuracy, images) since the last record

    def record_step(self, loss: float, accuracy: float, images: int, lr: float) -> None:
        """One training step's loss and accuracy; every EVERY steps a point is kept and the
        layers' statistics are taken (a few norms and histograms: cheap beside a step)."""
        self._step += 1
        self._window.append((loss, accuracy, images))
        self._timed_images += images
        if self._step % EVERY:
            return
        seen = sum(n for _, _, n in self._window)
        now = time.perf_counter()
        point = dict(step=self._step, loss=float(np.mean([w[0] for w in self._window])),
                     accuracy=float(sum(a * n for _, a, n in self._window) / max(seen, 1)), lr=float(lr),
                     images_per_s=float(self._timed_images / max(now - self._last_record, 1e-9)))
        self._last_record, self._timed_images = now, 0
        layers = []
        for name, p in self.model.named_parameters():
            counts, edges = np.histogram(p.data, bins=HISTOGRAM_BINS)
            grad = p.grad if isinstance(p.grad, np.ndarray) else None
            layers.append(dict(name=name, weight_norm=float(np.linalg.norm(p.data)),
                               grad_norm=None if grad is None else float(np.linalg.norm(grad)),
                               histogram=dict(counts=counts.tolist(), low=float(edges[0]), high=float(edges[-1]))))
        with self._lock:
            self._points.append(point)
            self._layers = layers
        self._window = []

    def record_epoch(self, record: dict[str, Any]) -> None:
        """An epoch's results; the speed's clock restarts, so evaluation time is not counted as training."""
        self._last_record, self._timed_images = time.perf_counter(), 0
        with self._lock:
            self._epochs.append({k: v for k, v in record.items() if isinstance(v, (int, float))})

    def finish(self, error: str | None = None) -> None:
        """The run has ended: "finished", or "stopped" with the error that ended it."""
        with self._lock:
            self._status, self._error = ("stopped", error) if error else ("finished", None)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(title=self.title, step=self._step, steps_per_epoch=self.steps_per_epoch,
                        status=self._status, error=self._error, done=self._status != "training",
                        points=list(self._points), epochs=list(self._epochs), layers=list(self._layers),
                        has_graph=self.graph_svg is not None, has_graph_viewer=self.graph_html is not None)

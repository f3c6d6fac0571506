"""A matplotlib Figure on the Agg canvas, saved atomically as PNG or SVG."""

from __future__ import annotations

import io
import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tinygrad_lenet.atomic import atomic_write_bytes

FORMATS = ("png", "svg")


def new_figure(width: float, height: float) -> Figure:
    """A figure of width x height inches (100 dpi for PNG)."""
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write `fig` to `path` (format from the suffix: .png or .svg), atomically."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"plots: {path} must end in .png or .svg")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt)
    atomic_write_bytes(path, buffer.getvalue())
    return path

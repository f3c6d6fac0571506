"""What the viewer shows of an array: its statistics, a histogram and, for image-like
arrays, a strip of its first feature maps as a PNG: small enough to keep one for every
tensor of a graph in one file."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image

HISTOGRAM_BINS = 24
MAPS_SHOWN = 6  # feature maps (channels of the first image) in a strip
MIN_MAP_SIDE = 3  # smaller spatial maps are not pictures


def summarize(array: Any) -> dict[str, Any]:
    """JSON-ready facts of `array`: shape, dtype, min/max/mean/std of its finite values,
    how many are not finite, a histogram, the value itself when it has one element, and
    `maps` (a PNG data URI of feature maps) for (N, C, H, W) and (C, H, W) arrays."""
    a = np.asarray(array)
    out: dict[str, Any] = {"shape": list(a.shape), "dtype": str(a.dtype), "size": int(a.size)}
    if a.dtype.kind not in "biuf" or a.size == 0:
        return out
    values = a.astype(np.float64, copy=False).ravel()
    finite = values[np.isfinite(values)]
    out["nonfinite"] = int(values.size - finite.size)
    if a.size == 1:
        v = values[0]
        out["value"] = float(v) if np.isfinite(v) else str(v)
    if finite.size:
        out.update(min=float(finite.min()), max=float(finite.max()), mean=float(finite.mean()),
                   std=float(finite.std()), norm=float(np.sqrt(np.dot(finite, finite))))
        if finite.size > 1:
            counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS)
            out["histogram"] = {"counts": counts.tolist(), "low": float(edges[0]), "high": float(edges[-1])}
    maps = _maps(a)
    if maps is not None:
        out["maps"], out["maps_count"] = maps
    return out


def _maps(a: np.ndarray) -> tuple[str, int] | None:
    """The first image's first channels side by side, each scaled to its own range."""
    if a.ndim == 4:
        a = a[0]
    if a.ndim != 3 or min(a.shape[1:]) < MIN_MAP_SIDE or a.dtype.kind != "f":
        return None
    maps = np.nan_to_num(a[:MAPS_SHOWN].astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    pixels = np.where(span > 0, (maps - low) / np.where(span > 0, span, 1), 0.5)
    count, h, w = pixels.shape
    strip = np.full((h, count * (w + 1) - 1), 255, np.uint8)  # a white column between maps
    for i, m in enumerate(pixels):
        strip[:, i * (w + 1):i * (w + 1) + w] = np.round(255 * (1 - m)).astype(np.uint8)  # dark = high
    buffer = io.BytesIO()
    Image.fromarray(strip, mode="L").save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(), count

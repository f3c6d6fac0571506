"""Resizing a 2-D float image: area averaging when shrinking (every source pixel counts,
so thin strokes do not vanish), bilinear interpolation when enlarging."""

from __future__ import annotations

import numpy as np


def resample_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) float32 weights mapping samples along one axis; rows sum to 1."""
    if size_in < 1 or size_out < 1:
        raise ValueError(f"resample_matrix: sizes must be >= 1, got {size_in} -> {size_out}")
    if size_in == size_out:
        return np.eye(size_out, dtype=np.float32)
    scale = size_in / size_out
    if size_out < size_in:
        # Output pixel j covers source interval [j*scale, (j+1)*scale); weight = overlap / scale.
        lo = np.arange(size_out)[:, None] * scale
        src = np.arange(size_in)[None, :]
        overlap = np.minimum(src + 1, lo + scale) - np.maximum(src, lo)
        weights = np.maximum(overlap, 0.0) / scale
    else:
        # Pixel centers aligned (half-pixel convention), clamped at the edges.
        pos = np.clip((np.arange(size_out) + 0.5) * scale - 0.5, 0, size_in - 1)
        left = np.floor(pos).astype(np.int64)
        right = np.minimum(left + 1, size_in - 1)
        frac = pos - left
        weights = np.zeros((size_out, size_in))
        rows = np.arange(size_out)
        np.add.at(weights, (rows, left), 1 - frac)
        np.add.at(weights, (rows, right), frac)
    return weights.astype(np.float32)


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` (H, W) float32 resized to `size` = (height, width)."""
    if image.ndim != 2 or image.dtype != np.float32:
        raise ValueError(f"resize: expected a 2-D float32 image, got shape {image.shape} dtype {image.dtype}")
    height, width = size
    rows = resample_matrix(image.shape[0], height)
    cols = resample_matrix(image.shape[1], width)
    return rows @ image @ cols.T

"""Turn any picture of a digit into an MNIST-style 28x28 input.

MNIST (LeCun et al., 1998): each digit was size-normalized to fit a 20x20 box preserving
its aspect ratio, anti-aliased, and placed in a 28x28 image so that its center of mass
sits at the center: white (255) ink on a black (0) background. `to_mnist` does the same
to a grayscale picture of either polarity, any size.
"""

from __future__ import annotations

import os

import numpy as np

from .read import ImageError, read_image
from .resize import resize

MNIST_SIZE = 28
MNIST_BOX = 20
MNIST_CENTER = 14.0  # MNIST's centers of mass sit at pixel index 14 (mean 13.99 on the test set)
POLARITY = "white ink on a black background: ink 255, background 0 (invert dark-on-light pictures)"
PREPROCESSING = ("as MNIST's: find the ink (the pixels that differ from the border's median), crop its bounding "
                 f"box, scale it so its longer side is {MNIST_BOX} pixels (aspect ratio kept; area averaging when "
                 "shrinking, bilinear when enlarging), and "
                 f"place it in a {MNIST_SIZE}x{MNIST_SIZE} black image with its centre of mass at pixel "
                 f"({MNIST_CENTER:g}, {MNIST_CENTER:g})")


def ink_map(gray: np.ndarray, source: str = "image", min_contrast: float = 0.05) -> np.ndarray:
    """(H, W) float32 ink in [0, 1]: 0 where the background is, 1 at the strongest ink.

    The background level is the median of the border pixels; ink is whichever extreme
    (darkest or lightest pixel) lies farther from it, so dark-on-light pictures are
    inverted and light-on-dark ones kept. Raises ImageError if no pixel differs from the
    background by `min_contrast` (a blank picture).
    """
    _check_gray(gray, "ink_map")
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = np.median(border).astype(np.float32)
    darkest, lightest = gray.min(), gray.max()
    ink = background - gray if background - darkest > lightest - background else gray - background
    ink = np.maximum(ink, np.float32(0))
    peak = ink.max()
    if peak < min_contrast:
        raise ImageError(f"{source}: no ink found: every pixel is within {float(peak):.3f} of the background "
                         f"level {float(background):.3f} (need a contrast of at least {min_contrast})")
    return ink / peak


def to_mnist(gray: np.ndarray, source: str = "image", ink_threshold: float = 0.1,
             min_contrast: float = 0.05) -> np.ndarray:
    """MNIST-style uint8 (28, 28) from a grayscale float image (H, W) in [0, 1].

    Finds the ink (`ink_map`), crops its bounding box (`ink_bounding_box`), scales it
    so its long side is 20 pixels (aspect ratio kept; area averaging or bilinear), and
    pastes it into 28x28 with its center of mass at (14, 14),
    shifted only as far as keeps the whole box inside.
    """
    ink = ink_map(gray, source, min_contrast)
    top, bottom, left, right = ink_bounding_box(ink, ink_threshold)
    box = ink[top:bottom, left:right]
    height, width = box.shape
    scale = MNIST_BOX / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    digit = np.clip(resize(box, size), 0, 1)
    mass = digit.sum()
    com_y = (digit.sum(axis=1) @ np.arange(size[0], dtype=np.float32)) / mass
    com_x = (digit.sum(axis=0) @ np.arange(size[1], dtype=np.float32)) / mass
    top = min(max(int(np.floor(MNIST_CENTER - com_y + 0.5)), 0), MNIST_SIZE - size[0])
    left = min(max(int(np.floor(MNIST_CENTER - com_x + 0.5)), 0), MNIST_SIZE - size[1])
    canvas = np.zeros((MNIST_SIZE, MNIST_SIZE), np.float32)
    canvas[top:top + size[0], left:left + size[1]] = digit
    return np.rint(canvas * 255).astype(np.uint8)


def ink_bounding_box(ink: np.ndarray, ink_threshold: float = 0.1) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), bottom/right exclusive, of the ink.

    The box of the pixels above `ink_threshold` (so specks of noise fainter than that
    do not stretch it), grown over adjacent rows and columns that still hold ink above
    the noise level, so faint anti-aliased edges are kept. The noise level is twice the
    strongest ink on the image border (0 for a clean picture), capped at the threshold.
    """
    strong = ink > ink_threshold
    rows, cols = np.flatnonzero(strong.any(axis=1)), np.flatnonzero(strong.any(axis=0))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    border = max(ink[0].max(), ink[-1].max(), ink[:, 0].max(), ink[:, -1].max())
    noise = min(2 * float(border), ink_threshold)
    row_ink, col_ink = ink.max(axis=1) > noise, ink.max(axis=0) > noise
    while top > 0 and row_ink[top - 1]:
        top -= 1
    while bottom < len(row_ink) and row_ink[bottom]:
        bottom += 1
    while left > 0 and col_ink[left - 1]:
        left -= 1
    while right < len(col_ink) and col_ink[right]:
        right += 1
    return top, bottom, left, right


def read_digit(path: str | os.PathLike) -> np.ndarray:
    """The picture of a digit at `path` (any format Pillow reads) as an MNIST-style
    uint8 (28, 28) image."""
    return to_mnist(read_image(path), source=os.fspath(path))


def _check_gray(gray: np.ndarray, op: str) -> None:
    if not isinstance(gray, np.ndarray) or gray.ndim != 2 or gray.size == 0 or gray.dtype != np.float32:
        raise ValueError(f"{op}: expected a non-empty 2-D float32 grayscale image, got "
                         f"{getattr(gray, 'shape', type(gray))} {getattr(gray, 'dtype', '')}")
    if not np.isfinite(gray).all():
        raise ValueError(f"{op}: grayscale values must be finite, got {int((~np.isfinite(gray)).sum())} NaN/inf")
    if gray.min() < 0 or gray.max() > 1:
        raise ValueError(f"{op}: grayscale values must be in [0, 1], got [{float(gray.min())}, {float(gray.max())}]")

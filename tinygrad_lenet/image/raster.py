"""`Image`: decoded pixels plus their scale, and `ImageError` for unreadable files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}  # channels -> PIL-style mode name


class ImageError(ValueError):
    """An image file that is corrupt or uses a feature this reader does not support."""


@dataclass(frozen=True)
class Image:
    """Decoded pixels, shape (H, W, C) with C = 1 (gray), 2 (gray+alpha), 3 (RGB) or
    4 (RGBA); unsigned integer samples in [0, max_value] (e.g. 255, 65535, or 15 for
    a 4-bit grayscale PNG). Samples keep the file's precision; `to_float` rescales."""

    pixels: np.ndarray
    max_value: int

    def __post_init__(self) -> None:
        p = self.pixels
        if p.ndim != 3 or p.shape[2] not in MODES or p.shape[0] < 1 or p.shape[1] < 1:
            raise ValueError(f"Image: pixels must have shape (H, W, C) with H, W >= 1 and C in 1..4, got {p.shape}")
        if p.dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
            raise ValueError(f"Image: pixels must be uint8 or uint16, got {p.dtype}")
        if not 1 <= self.max_value <= np.iinfo(p.dtype).max:
            raise ValueError(f"Image: max_value {self.max_value} out of range for {p.dtype}")

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]

    @property
    def mode(self) -> str:
        """"L", "LA", "RGB" or "RGBA"."""
        return MODES[self.channels]

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)

    def to_float(self) -> np.ndarray:
        """Samples as float32 in [0, 1], shape (H, W, C)."""
        return self.pixels.astype(np.float32) / np.float32(self.max_value)


def as_pixels(pixels: np.ndarray, writer: str) -> np.ndarray:
    """`pixels` as (H, W, C) for a writer: (H, W) gains a channel axis; shapes and
    dtypes a writer cannot store raise a ValueError naming the writer."""
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in MODES or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{writer}: pixels must have shape (H, W) or (H, W, C) with C in 1..4, got {np.shape(pixels)}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise ValueError(f"{writer}: pixels must be uint8, uint16 or bool, got {arr.dtype} "
                         "(convert floats with np.rint(x * 255).astype(np.uint8))")
    return arr

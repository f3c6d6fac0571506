"""Vectorized data augmentation: random affine transforms of a whole batch at once.

Each image gets its own rotation, scale and integer translation about the image centre;
all images are resampled together (bilinear or nearest, by index arithmetic on the
flattened batch), with no Python loop over images.
"""

from __future__ import annotations

import numpy as np

from ..random import default_generator

_INTERPOLATIONS = ("bilinear", "nearest")


def _as_batch(images: np.ndarray, who: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """`images` as (B, C, H, W) float32, and the shape to return it in."""
    if not isinstance(images, np.ndarray) or images.dtype != np.float32:
        raise TypeError(f"{who}: expected a float32 numpy array, got "
                        f"{getattr(images, 'dtype', type(images).__name__)}")
    if images.ndim == 3:
        return images[:, None], images.shape
    if images.ndim == 4:
        return images, images.shape
    raise ValueError(f"{who}: expected images of shape (B, H, W) or (B, C, H, W), got {images.shape}")


def affine_transform(images: np.ndarray, angles: np.ndarray, translations: np.ndarray, scales: np.ndarray,
                     fill: float = 0.0, interpolation: str = "bilinear") -> np.ndarray:
    """Rotate, scale and translate each image of a batch about its centre.

    images: float32 (B, H, W) or (B, C, H, W). angles: (B,) degrees, counter-clockwise as
    displayed. translations: (B, 2) pixels (dx right, dy down). scales: (B,), > 1 enlarges.
    Pixels mapped from outside the image get `fill`. Returns float32 of the input's shape.
    """
    x, shape = _as_batch(images, "affine_transform")
    b, c, h, w = x.shape
    angles = np.asarray(angles, dtype=np.float64).reshape(-1)
    translations = np.asarray(translations, dtype=np.float64).reshape(-1, 2)
    scales = np.asarray(scales, dtype=np.float64).reshape(-1)
    if not (len(angles) == len(translations) == len(scales) == b):
        raise ValueError(f"affine_transform: {b} images but {len(angles)} angles, {len(translations)} "
                         f"translations and {len(scales)} scales")
    if np.any(scales <= 0):
        raise ValueError(f"affine_transform: scales must be positive, got min {scales.min()}")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"affine_transform: interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")

    # Inverse map, output pixel -> source point: src = centre + R(-angle) (dst - centre - t) / scale.
    # Per-image coefficients are computed in float64 (B values) and then used in float32.
    theta = np.deg2rad(angles)
    a = (np.cos(theta) / scales).astype(np.float32)[:, None]
    s = (np.sin(theta) / scales).astype(np.float32)[:, None]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    ox = (cx + translations[:, 0]).astype(np.float32)[:, None]
    oy = (cy + translations[:, 1]).astype(np.float32)[:, None]
    gy, gx = np.divmod(np.arange(h * w, dtype=np.int32), w)
    dx = gx.astype(np.float32)[None, :] - ox  # (B, H*W)
    dy = gy.astype(np.float32)[None, :] - oy
    # Source coordinates, shifted by +1 into an image padded with one ring of `fill`.
    src_x = a * dx - s * dy + np.float32(cx + 1)
    src_y = s * dx + a * dy + np.float32(cy + 1)
    hp, wp = h + 2, w + 2
    padded = np.full((b, c, hp, wp), fill, dtype=np.float32)
    padded[:, :, 1:-1, 1:-1] = x
    flat = padded.reshape(b, c, hp * wp)
    base = (np.arange(b, dtype=np.int64) * (hp * wp))[:, None]  # start of each image in `flat`
    # A point beyond the ring reads the ring: clip into [0, size + 1].
    np.clip(src_x, 0, wp - 1, out=src_x)
    np.clip(src_y, 0, hp - 1, out=src_y)

    if interpolation == "nearest":
        ix = np.floor(src_x + np.float32(0.5)).astype(np.int64)
        iy = np.floor(src_y + np.float32(0.5)).astype(np.int64)
        out = _gather(flat, base + iy * wp + ix)
    else:
        x0 = np.minimum(np.floor(src_x), np.float32(wp - 2))
        y0 = np.minimum(np.floor(src_y), np.float32(hp - 2))
        wx = src_x - x0
        wy = src_y - y0
        i00 = base + y0.astype(np.int64) * wp + x0.astype(np.int64)
        v00, v01 = _gather(flat, i00), _gather(flat, i00 + 1)
        v10, v11 = _gather(flat, i00 + wp), _gather(flat, i00 + wp + 1)
        top = v00 + wx[:, None] * (v01 - v00)
        bottom = v10 + wx[:, None] * (v11 - v10)
        out = top + wy[:, None] * (bottom - top)
    return out.reshape(shape)


def _gather(flat: np.ndarray, index: np.ndarray) -> np.ndarray:
    """flat[(image, channel, index)] for index (B, H*W) into each image's flattened pixels: (B, C, H*W)."""
    b, c, n = flat.shape
    channels = flat.transpose(1, 0, 2).reshape(c, b * n)  # a view when C == 1
    return np.take(channels, index, axis=1).transpose(1, 0, 2)


class RandomAffine:
    """Random rotation, translation and scale per image, for a whole batch (torchvision's names).

    degrees: angles are uniform in [-degrees, degrees]. translate: (fx, fy) fractions of the
    width and height; shifts are uniform in [-fx*W, fx*W] (likewise y), rounded to whole pixels.
    scale: (lo, hi), uniform. fill: value of pixels that come from outside the image (0 is
    the background of [0, 1]-scaled MNIST, so augment before normalizing).

    `aug(images, generator)` returns a new float32 batch; images are (B, H, W) or (B, C, H, W).
    """

    def __init__(self, degrees: float = 10.0, translate: tuple[float, float] = (0.1, 0.1),
                 scale: tuple[float, float] = (0.9, 1.1), fill: float = 0.0, interpolation: str = "bilinear"):
        if degrees < 0:
            raise ValueError(f"RandomAffine: degrees must be >= 0, got {degrees}")
        if len(translate) != 2 or not all(0 <= t <= 1 for t in translate):
            raise ValueError(f"RandomAffine: translate must be two fractions in [0, 1], got {translate}")
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ValueError(f"RandomAffine: scale must be (lo, hi) with 0 < lo <= hi, got {scale}")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"RandomAffine: interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
        self.degrees = float(degrees)
        self.translate = (float(translate[0]), float(translate[1]))
        self.scale = (float(scale[0]), float(scale[1]))
        self.fill = float(fill)
        self.interpolation = interpolation

    def sample_params(self, n: int, height: int, width: int, generator: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(angles (n,), translations (n, 2) whole pixels, scales (n,)) for n images."""
        angles = generator.uniform(-self.degrees, self.degrees, n)
        max_shift = np.array([self.translate[0] * width, self.translate[1] * height])
        translations = np.round(generator.uniform(-1.0, 1.0, (n, 2)) * max_shift)
        scales = generator.uniform(self.scale[0], self.scale[1], n)
        return angles, translations, scales

    def __call__(self, images: np.ndarray, generator: np.random.Generator | None = None) -> np.ndarray:
        x, _ = _as_batch(images, "RandomAffine")
        rng = default_generator() if generator is None else generator
        angles, translations, scales = self.sample_params(x.shape[0], x.shape[2], x.shape[3], rng)
        return affine_transform(images, angles, translations, scales, self.fill, self.interpolation)

    def __repr__(self) -> str:
        return (f"RandomAffine(degrees={self.degrees}, translate={self.translate}, scale={self.scale}, "
                f"fill={self.fill}, interpolation={self.interpolation!r})")

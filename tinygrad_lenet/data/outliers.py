"""Drawings that are not digits, for outlier exposure: training teaches uniform
predictions on them, so the energy score flags what is unlike any digit.

Each is drawn with strokes on a 56x56 canvas at a random size and place (small ones end
up with thick strokes once scaled, as small drawings do in the app) and preprocessed as
drawings are (`to_mnist`). The families are what people draw when they do not draw a
digit: scribbles, filled blobs, polygons and stars, spirals, faces, letter-like strokes,
and short marks. Shapes close to a digit (circles, single lines) are left out so the
model is not taught to reject digits.
"""

from __future__ import annotations

import numpy as np

SIZE = 56
_SEGMENTS_AT_ONCE = 8  # consecutive segments measured together: a short run of a curve lies close together
FAMILIES = ("scribble", "blob", "polygon", "spiral", "face", "letter", "mark")


def not_digits(n: int, seed: int = 0, size: int = SIZE) -> np.ndarray:
    """uint8 (n, 28, 28): n drawings, the families in turn, seeded."""
    from ..image import to_mnist  # image is independent of data; imported here to keep data light

    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), np.uint8)
    for k in range(n):
        family = FAMILIES[k % len(FAMILIES)]
        ink = _blob(rng, size) if family == "blob" else _render(_strokes(family, rng), rng, size)
        if ink.max() <= ink.min():  # nothing drawn: a square, so there is ink to find
            ink[size // 3:2 * size // 3, size // 4:3 * size // 4] = 1
        out[k] = to_mnist(ink.astype(np.float32))
    return out


def _strokes(family: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Strokes (arrays of (y, x) points in a unit box) of one drawing of `family`."""
    if family == "scribble":
        return [rng.uniform(0.0, 1.0, (int(rng.integers(5, 12)), 2))]
    if family == "polygon":
        corners = int(rng.integers(3, 7))
        angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
        radii = rng.uniform(0.5, 1.0, corners) if rng.random() < 0.5 else np.ones(corners)
        if rng.random() < 0.3:  # a star: every other corner pulled in
            angles = np.linspace(0, 2 * np.pi, 2 * corners, endpoint=False) + rng.uniform(0, np.pi)
            radii = np.where(np.arange(2 * corners) % 2, rng.uniform(0.3, 0.5), 1.0)
        points = 0.5 + 0.5 * np.stack([radii * np.sin(angles), radii * np.cos(angles)], axis=1)
        return [np.concatenate([points, points[:1]])]
    if family == "spiral":
        turns, sign = rng.uniform(1.5, 3.5), rng.choice([-1.0, 1.0])
        t = np.linspace(0.05, 1.0, 50)
        angle = sign * 2 * np.pi * turns * t + rng.uniform(0, 2 * np.pi)
        return [0.5 + 0.5 * np.stack([t * np.sin(angle), t * np.cos(angle)], axis=1)]
    if family == "face":
        t = np.linspace(0, 2 * np.pi, 30)
        face = [0.5 + 0.5 * np.stack([np.sin(t), np.cos(t)], axis=1)]
        for x in (rng.uniform(0.25, 0.4), rng.uniform(0.6, 0.75)):  # eyes: short marks
            y = rng.uniform(0.25, 0.4)
            face.append(np.array([[y, x], [y + 0.04, x + 0.02]]))
        smile = np.linspace(0.2, 0.8, 8) * np.pi
        face.append(np.stack([0.55 + rng.uniform(0.1, 0.25) * np.sin(smile), 0.5 + 0.25 * np.cos(smile)], axis=1))
        return face
    if family == "letter":  # 2-4 straight strokes between points of a 3x3 grid (H, T, K, N, F, ...)
        grid = np.array([[y, x] for y in (0.0, 0.5, 1.0) for x in (0.0, 0.5, 1.0)])
        strokes = []
        for _ in range(int(rng.integers(2, 5))):
            a, b = rng.choice(9, 2, replace=False)
            strokes.append(grid[[a, b]] + rng.normal(0, 0.04, (2, 2)))
        return strokes
    # a short mark: a dot, a dash or a tick, placed anywhere on the canvas
    start = rng.uniform(0.0, 1.0, 2)
    return [np.stack([start, start + rng.normal(0, 0.08, 2)])]


def _render(strokes: list[np.ndarray], rng: np.random.Generator, size: int) -> np.ndarray:
    """The strokes scaled to a random size and place on the canvas, with a round brush:
    each pixel's ink falls from 1 to 0 over the brush's edge, by its distance to the
    nearest segment. Segments are measured a few consecutive ones at a time, over the
    pixels the brush can reach from them (their bounding box grown by the brush), and
    squared distances compared (one square root a pixel): about 5x faster than each
    segment over the whole canvas, and the same ink to float rounding."""
    scale = rng.uniform(0.25, 0.9) * size
    offset = rng.uniform(0.05 * size, size - scale - 0.05 * size, 2) if scale < 0.9 * size else np.full(2, 0.05 * size)
    brush = rng.uniform(1.5, 3.5)
    points = [stroke * scale + offset for stroke in strokes]
    starts, ends = np.concatenate([p[:-1] for p in points]), np.concatenate([p[1:] for p in points])
    deltas = ends - starts
    lows, highs = np.minimum(starts, ends), np.maximum(starts, ends)
    firsts = np.arange(0, len(starts), _SEGMENTS_AT_ONCE)
    reach = brush + 1.0  # farther than brush + 0.5 from every segment, the ink is 0
    tops = np.clip(np.floor(np.minimum.reduceat(lows, firsts) - reach), 0, size).astype(int).tolist()
    bottoms = np.clip(np.ceil(np.maximum.reduceat(highs, firsts) + reach) + 1, 0, size).astype(int).tolist()
    squared = np.full((size, size), np.inf)
    for first, (top, left), (bottom, right) in zip(firsts.tolist(), tops, bottoms):
        if top >= bottom or left >= right:
            continue
        part = slice(first, first + _SEGMENTS_AT_ONCE)
        y, x = np.ogrid[top:bottom, left:right]
        y, x = y - starts[part, 0, None, None], x - starts[part, 1, None, None]  # (segments, h, w) by broadcasting
        dy, dx = deltas[part, 0, None, None], deltas[part, 1, None, None]
        t = (y * dy + x * dx) / np.maximum(dy * dy + dx * dx, 1e-9)  # the nearest point's place along the segment
        np.maximum(t, 0.0, out=t)
        np.minimum(t, 1.0, out=t)
        near = np.square(y - t * dy)
        near += np.square(x - t * dx)
        window = squared[top:bottom, left:right]
        np.minimum(window, near.min(axis=0), out=window)
    return np.clip(brush + 0.5 - np.sqrt(squared), 0, 1)


def _blob(rng: np.random.Generator, size: int) -> np.ndarray:
    """A filled patch: a coarse random pattern, thresholded, at a random size and place."""
    coarse = rng.uniform(0, 1, (int(rng.integers(2, 7)), int(rng.integers(2, 7))))
    side = int(rng.uniform(0.25, 0.9) * size)
    reps = (side // coarse.shape[0] + 1, side // coarse.shape[1] + 1)
    patch = (np.kron(coarse, np.ones(reps))[:side, :side] > rng.uniform(0.2, 0.6)).astype(np.float64)
    ink = np.zeros((size, size))
    top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
    ink[top:top + side, left:left + side] = patch * rng.uniform(0.6, 1.0)
    return ink

"""A labelled set of drawings as people make them in the digit app: digits and things
that are not digits, each a list of mouse strokes on the app's 280x280 pad. It measures
"not a digit" (how many non-digits are flagged, how few digits) and how well drawn
digits are read; nothing is trained on it (training's outliers are `data.not_digits`).

Each shape is written once, in a unit box (y down, x right, 0..1), and drawn at
several sizes and places on the pad, some small (where the app's fixed 20 px brush
makes thick strokes), with a little seeded jitter. Shapes too close to a digit to
count as "not a digit" (a circle, Z, S, I, O, infinity) are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PAD = 280  # the app's drawing pad, in pixels
BRUSH = 20  # the app's stroke width on it

Stroke = list[tuple[float, float]]


def _arc(cy: float, cx: float, ry: float, rx: float, start: float, end: float, n: int = 14) -> Stroke:
    """Points on an ellipse from angle `start` to `end` (degrees, 0 at the right, clockwise)."""
    return [(cy + ry * math.sin(math.radians(a)), cx + rx * math.cos(math.radians(a)))
            for a in np.linspace(start, end, n)]


DIGITS: dict[str, list[list[Stroke]]] = {  # each digit: its styles, each a list of strokes
    "0": [[_arc(0.5, 0.5, 0.5, 0.33, -90, 270, 20)], [_arc(0.5, 0.5, 0.5, 0.42, -100, 265, 20)]],
    "1": [[[(0.0, 0.5), (1.0, 0.5)]], [[(0.2, 0.3), (0.0, 0.55), (1.0, 0.55)]]],
    "2": [[_arc(0.28, 0.5, 0.28, 0.4, 190, 380, 10) + [(1.0, 0.1), (1.0, 0.95)]]],
    "3": [[_arc(0.26, 0.5, 0.26, 0.4, 200, 450, 10) + _arc(0.74, 0.5, 0.26, 0.45, -90, 160, 10)]],
    "4": [[[(0.0, 0.6), (0.65, 0.05), (0.65, 0.95)], [(0.35, 0.65), (1.0, 0.65)]],
          [[(0.0, 0.15), (0.55, 0.1), (0.55, 0.9)], [(0.0, 0.75), (1.0, 0.75)]]],
    "5": [[[(0.0, 0.85), (0.0, 0.2), (0.42, 0.15)] + _arc(0.68, 0.45, 0.3, 0.4, -100, 160, 10)]],
    "6": [[[(0.0, 0.75), (0.3, 0.3), (0.65, 0.1)] + _arc(0.72, 0.5, 0.28, 0.38, 180, 540, 14)]],
    "7": [[[(0.0, 0.05), (0.0, 0.95), (1.0, 0.35)]], [[(0.0, 0.05), (0.0, 0.95), (1.0, 0.35)], [(0.5, 0.3), (0.5, 0.85)]]],
    "8": [[_arc(0.25, 0.5, 0.25, 0.32, 90, 450, 14) + _arc(0.74, 0.5, 0.26, 0.38, -90, 270, 14)]],
    "9": [[_arc(0.3, 0.45, 0.3, 0.38, 0, 360, 14) + [(0.3, 0.83), (1.0, 0.75)]]],
}

NOT_DIGITS: dict[str, list[Stroke]] = {  # each a list of strokes
    "A": [[(1.0, 0.0), (0.0, 0.5), (1.0, 1.0)], [(0.6, 0.22), (0.6, 0.78)]],
    "E": [[(0.0, 0.9), (0.0, 0.1), (1.0, 0.1), (1.0, 0.9)], [(0.5, 0.1), (0.5, 0.7)]],
    "F": [[(0.0, 0.9), (0.0, 0.1), (1.0, 0.1)], [(0.5, 0.1), (0.5, 0.7)]],
    "H": [[(0.0, 0.1), (1.0, 0.1)], [(0.0, 0.9), (1.0, 0.9)], [(0.5, 0.1), (0.5, 0.9)]],
    "K": [[(0.0, 0.15), (1.0, 0.15)], [(0.0, 0.9), (0.55, 0.15), (1.0, 0.9)]],
    "M": [[(1.0, 0.0), (0.0, 0.1), (0.7, 0.5), (0.0, 0.9), (1.0, 1.0)]],
    "N": [[(1.0, 0.1), (0.0, 0.1), (1.0, 0.9), (0.0, 0.9)]],
    "R": [[(1.0, 0.15), (0.0, 0.15)] + _arc(0.25, 0.45, 0.25, 0.35, -90, 90, 8) + [(0.5, 0.15), (1.0, 0.85)]],
    "T": [[(0.0, 0.0), (0.0, 1.0)], [(0.0, 0.5), (1.0, 0.5)]],
    "V": [[(0.0, 0.0), (1.0, 0.5), (0.0, 1.0)]],
    "W": [[(0.0, 0.0), (1.0, 0.2), (0.4, 0.5), (1.0, 0.8), (0.0, 1.0)]],
    "X": [[(0.0, 0.0), (1.0, 1.0)], [(0.0, 1.0), (1.0, 0.0)]],
    "Y": [[(0.0, 0.0), (0.5, 0.5), (0.0, 1.0)], [(0.5, 0.5), (1.0, 0.5)]],
    "square": [[(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0), (0.0, 0.0)]],
    "triangle": [[(1.0, 0.0), (0.0, 0.5), (1.0, 1.0), (1.0, 0.0)]],
    "star": [[(1.0, 0.2), (0.0, 0.5), (1.0, 0.8), (0.35, 0.0), (0.35, 1.0), (1.0, 0.2)]],
    "spiral": [[(0.5 + 0.5 * t * math.sin(6 * math.pi * t), 0.5 + 0.5 * t * math.cos(6 * math.pi * t))
                for t in np.linspace(0.05, 1.0, 40)]],
    "smiley": [_arc(0.5, 0.5, 0.5, 0.5, 0, 360, 20), [(0.3, 0.33), (0.32, 0.35)], [(0.3, 0.65), (0.32, 0.67)],
               _arc(0.55, 0.5, 0.22, 0.25, 20, 160, 8)],
    "hash": [[(0.0, 0.35), (1.0, 0.3)], [(0.0, 0.7), (1.0, 0.65)], [(0.35, 0.0), (0.3, 1.0)], [(0.7, 0.0), (0.65, 1.0)]],
    "check mark": [[(0.55, 0.0), (1.0, 0.35), (0.0, 1.0)]],
    "arrow": [[(0.5, 0.0), (0.5, 1.0)], [(0.1, 0.6), (0.5, 1.0), (0.9, 0.6)]],
    "dot": [[(0.5, 0.5), (0.5, 0.51)]],
    "blob": [[(0.1 + 0.8 * (i % 2), 0.05 + 0.9 * i / 11) for i in range(12)]
             + [(0.05 + 0.9 * i / 11, 0.1 + 0.8 * (i % 2)) for i in range(12)]],
    "heart": [_arc(0.3, 0.27, 0.25, 0.25, 180, 360, 8) + _arc(0.3, 0.73, 0.25, 0.25, 180, 360, 8)
              + [(0.55, 0.98), (1.0, 0.5), (0.55, 0.02), (0.3, 0.02)]],
    "wave": [[(0.5 + 0.35 * math.sin(4 * math.pi * t), t) for t in np.linspace(0, 1, 24)]],
    "zigzag": [[(0.0 if i % 2 else 1.0, i / 6) for i in range(7)]],
    "plus": [[(0.5, 0.0), (0.5, 1.0)], [(0.0, 0.5), (1.0, 0.5)]],
    "house": [[(1.0, 0.1), (0.4, 0.1), (0.0, 0.5), (0.4, 0.9), (1.0, 0.9), (1.0, 0.1)]],
    "lightning": [[(0.0, 0.6), (0.5, 0.2), (0.5, 0.8), (1.0, 0.4)]],
    "asterisk": [[(0.0, 0.5), (1.0, 0.5)], [(0.2, 0.1), (0.8, 0.9)], [(0.2, 0.9), (0.8, 0.1)]],
    "equals": [[(0.3, 0.0), (0.3, 1.0)], [(0.7, 0.0), (0.7, 1.0)]],
    "diamond": [[(0.0, 0.5), (0.5, 1.0), (1.0, 0.5), (0.5, 0.0), (0.0, 0.5)]],
}

# (size as a fraction of the pad, centre y, centre x): large and centred to small in a corner
PLACES = [(0.7, 0.5, 0.5), (0.55, 0.45, 0.55), (0.4, 0.3, 0.35), (0.3, 0.7, 0.65), (0.22, 0.5, 0.45), (0.5, 0.6, 0.4),
          (0.35, 0.25, 0.7),
          (0.8, 0.5, 0.5)]


@dataclass(frozen=True)
class Drawing:
    """One drawing: what it is, whether it is a digit, and its strokes in pad pixels (x, y)."""
    name: str
    is_digit: bool
    strokes: tuple[tuple[tuple[float, float], ...], ...]


def drawn_set(seed: int = 0) -> list[Drawing]:
    """The set: every digit style and every non-digit at each of PLACES, jittered (seeded).
    Digits are drawn narrower than tall, as people draw them."""
    rng = np.random.default_rng(seed)
    out = []
    shapes = [(d, True, s) for d, styles in DIGITS.items() for s in styles] + \
             [(n, False, s) for n, s in NOT_DIGITS.items()]
    for name, is_digit, strokes in shapes:
        for size, cy, cx in PLACES:
            height, width = size * PAD, size * PAD * (0.6 if is_digit else 1.0)
            jitter = 0.02 * size * PAD
            placed = tuple(tuple((float(np.clip(cx * PAD + (x - 0.5) * width + rng.normal(0, jitter), 2, PAD - 2)),
                                  float(np.clip(cy * PAD + (y - 0.5) * height + rng.normal(0, jitter), 2, PAD - 2)))
                                 for y, x in stroke) for stroke in strokes)
            out.append(Drawing(name, is_digit, placed))
    return out


def rasterize(drawing: Drawing, size: int = PAD, brush: float = BRUSH) -> np.ndarray:
    """The pad after the strokes: uint8 (size, size), white strokes of width `brush` with
    round ends on black, as the page's canvas draws them (edges antialiased over a pixel)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + np.float32(0.5)
    distance = np.full((size, size), np.inf, np.float32)
    for stroke in drawing.strokes:
        points = stroke if len(stroke) > 1 else stroke * 2
        for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
            dx, dy = x1 - x0, y1 - y0
            t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / max(dx * dx + dy * dy, 1e-6), 0, 1)
            distance = np.minimum(distance, np.hypot(xx - (x0 + t * dx), yy - (y0 + t * dy)))
    return np.rint(255 * np.clip(brush / 2 + 0.5 - distance, 0, 1)).astype(np.uint8)

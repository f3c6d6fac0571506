#!/usr/bin/env python3
"""Classify pictures with an exported ONNX file alone: onnxruntime, Pillow and numpy,
nothing of tinygrad_lenet. Everything the picture needs before it goes in (polarity,
crop and centre, normalization) and what comes out (class names) is read from the
file's own metadata, which `scripts/export.py` writes.

    python scripts/export.py --checkpoint runs/lenet5/checkpoint.npz --out lenet5.onnx
    python examples/onnx_predict.py lenet5.onnx my_digit.png another.jpg
    python examples/onnx_predict.py lenet5.onnx my_digit.png --json
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnxruntime
from PIL import Image

SIZE, BOX, CENTRE = 28, 20, 14.0  # MNIST: the digit fits 20x20, its centre of mass at (14, 14) in 28x28


def ink_of(path: str) -> np.ndarray:
    """The picture's ink in [0, 1], whichever its polarity: the background is the border's
    median, the ink whatever lies farthest from it (so dark-on-light pictures are inverted)."""
    gray = np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = np.median(border)
    dark_ink = background - gray.min() > gray.max() - background
    ink = np.maximum(background - gray if dark_ink else gray - background, 0)
    if ink.max() < 0.05:
        raise ValueError(f"{path}: no ink found")
    return ink / ink.max()


def crop(ink: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """The ink's bounding box, grown over neighbouring rows and columns with faint ink."""
    rows, cols = np.flatnonzero((ink > threshold).any(axis=1)), np.flatnonzero((ink > threshold).any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    noise = min(2 * max(ink[0].max(), ink[-1].max(), ink[:, 0].max(), ink[:, -1].max()), threshold)
    row_ink, col_ink = ink.max(axis=1) > noise, ink.max(axis=0) > noise
    while top > 0 and row_ink[top - 1]:
        top -= 1
    while bottom < len(row_ink) and row_ink[bottom]:
        bottom += 1
    while left > 0 and col_ink[left - 1]:
        left -= 1
    while right < len(col_ink) and col_ink[right]:
        right += 1
    return ink[top:bottom, left:right]


def mnist_style(path: str) -> np.ndarray:
    """uint8 (28, 28): the cropped ink scaled to fit 20x20, its centre of mass at (14, 14)."""
    box = crop(ink_of(path))
    scale = BOX / max(box.shape)
    height, width = (max(1, round(n * scale)) for n in box.shape)
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    digit = np.clip(np.asarray(Image.fromarray(box, mode="F").resize((width, height), method)), 0, 1)
    mass = digit.sum()
    com_y, com_x = (digit.sum(axis=1) @ np.arange(height)) / mass, (digit.sum(axis=0) @ np.arange(width)) / mass
    top = min(max(int(np.floor(CENTRE - com_y + 0.5)), 0), SIZE - height)
    left = min(max(int(np.floor(CENTRE - com_x + 0.5)), 0), SIZE - width)
    canvas = np.zeros((SIZE, SIZE), np.float32)
    canvas[top:top + height, left:left + width] = digit
    return np.rint(canvas * 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="an .onnx file written by scripts/export.py")
    parser.add_argument("pictures", nargs="+", help="pictures of digits, any size and polarity")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    session = onnxruntime.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    classes = json.loads(meta["classes"])
    mean, std = float(meta["normalize_mean"]), float(meta["normalize_std"])
    pixels = np.stack([mnist_style(p) for p in args.pictures]).astype(np.float32)[:, None]
    x = pixels if meta["normalization_in_graph"] == "yes" else (pixels / 255 - mean) / std
    logits = session.run(None, {"input": x.astype(np.float32)})[0]
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    results = [{"picture": p, "class": classes[int(k)], "probability": float(q[k])}
               for p, q, k in zip(args.pictures, probabilities, probabilities.argmax(axis=1))]
    for r in results if not args.json else []:
        print(f"{r['picture']}: {r['class']} ({r['probability']:.1%})")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

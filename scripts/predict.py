#!/usr/bin/env python3
"""Predict the class of a test-set image or of picture files with a trained checkpoint.

    python scripts/predict.py --index 0 1 2                  # MNIST test images, with their labels
    python scripts/predict.py --image my_digit.png scan.pgm  # any size, either polarity
    python scripts/predict.py --image my_digit.png --json --show

Pictures (PNG, JPEG, BMP, GIF, TIFF, WebP, PGM/PPM, ...; grayscale, RGB or with
transparency; dark-on-light or light-on-dark) are turned into MNIST-style 28x28 inputs first: the ink is cropped,
scaled to fit 20x20 and centered by its center of mass. `--show` prints that input.
Prints the predicted class and the probabilities of all classes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/ and viz/: from the checkout, not installed

import numpy as np

from scripts.options import add_checkpoint_arguments, add_data_dir_argument, check_data_dir, load_checkpoint_argument
from tinygrad_lenet.cli import non_negative_int
from tinygrad_lenet.data import DATASETS, load_split, normalize_images
from tinygrad_lenet.image import ImageError, read_digit
from tinygrad_lenet.training import energy, predict_logits

BAR_WIDTH = 40
SHADES = " .:-=+*#%@"  # --show: ink from none to full


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_arguments(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--index", type=non_negative_int, nargs="+", metavar="I", help="data set image(s) by index")
    what.add_argument("--image", type=Path, nargs="+", metavar="FILE", help="picture file(s): PNG, JPEG, BMP, GIF, PGM/PPM, ...")
    p.add_argument("--dataset", choices=sorted(DATASETS), default=None,
                   help="data set for --index (default: the one the checkpoint was trained on)")
    p.add_argument("--split", choices=["test", "train"], default="test", help="split for --index")
    add_data_dir_argument(p)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--show", action="store_true", help="also print each 28x28 model input as text")
    return p


def format_result(result: dict[str, Any], classes: tuple[str, ...]) -> str:
    probs = result["probabilities"]
    predicted = result["predicted"]
    head = f"{result['source']}: "
    if result["label"] is not None:
        verdict = "correct" if result["label"] == predicted else "WRONG"
        head += f"label {classes[result['label']]}, "
    head += f"predicted {classes[predicted]} (p={probs[predicted]:.4f})"
    if result["label"] is not None:
        head += f" {verdict}"
    if result.get("not_a_digit"):
        head += " -- but it is unlike the training images: not a digit?"
    width = max(len(c) for c in classes)
    lines = [head]
    for k, p in enumerate(probs):
        bar = "#" * int(round(p * BAR_WIDTH))
        lines.append(f"  {classes[k]:>{width}}  {p:.4f}  {bar}{'  <-' if k == predicted else ''}")
    return "\n".join(lines)


def format_input(image: np.ndarray) -> str:
    """The 28x28 uint8 model input as text, two characters per pixel."""
    levels = (image.astype(np.int32) * len(SHADES)) // 256
    return "\n".join("".join(SHADES[v] * 2 for v in row) for row in levels)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_data_dir(parser, args)
    trained = load_checkpoint_argument(parser, args)
    config = trained.config
    trained_on = config.dataset
    dataset = args.dataset or trained_on

    if args.index is not None:
        try:
            all_images, all_labels = load_split(dataset, args.split, root=args.data_dir)
        except (OSError, ValueError) as e:
            parser.error(f"cannot load {dataset} {args.split}: {e}")
        bad = [i for i in args.index if i >= len(all_images)]
        if bad:
            parser.error(f"--index {bad[0]} is out of range: {dataset} {args.split} has {len(all_images)} images "
                         f"(0..{len(all_images) - 1})")
        images = all_images[args.index]
        labels: list[int | None] = [int(all_labels[i]) for i in args.index]
        sources = [f"{dataset} {args.split} #{i}" for i in args.index]
    else:
        images_list, errors = [], []
        for path in args.image:
            try:
                images_list.append(read_digit(path))
            except ImageError as e:
                errors.append(str(e))
        if errors:
            for message in errors:
                print(f"predict.py: error: {message}", file=sys.stderr)
            return 1
        images = np.stack(images_list)
        labels = [None] * len(images)
        sources = [str(p) for p in args.image]

    logits = predict_logits(trained.model, normalize_images(images, normalize=trained.mean_std))
    probs = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    scores = energy(logits)
    threshold = trained.checkpoint["extra"].get("energy_threshold")
    threshold = float(threshold) if isinstance(threshold, (int, float)) else None
    classes = trained.classes or tuple(str(k) for k in range(probs.shape[1]))
    results = [dict(source=source, index=(args.index[n] if args.index is not None else None),
                    image=(str(args.image[n]) if args.image is not None else None), label=labels[n],
                    predicted=int(probs[n].argmax()), probabilities=[float(p) for p in probs[n]],
                    energy=float(scores[n]), not_a_digit=None if threshold is None else bool(scores[n] > threshold))
               for n, source in enumerate(sources)]

    if args.json:
        out: dict[str, Any] = dict(checkpoint=str(args.checkpoint), model=config.model, dataset=trained_on,
                                   classes=list(classes), predictions=results)
        if args.show:
            for result, image in zip(results, images):
                result["input"] = image.tolist()
        print(json.dumps(out, indent=2))
        return 0
    print(f"checkpoint: {args.checkpoint} ({config.model}, trained on {trained_on})")
    for result, image in zip(results, images):
        print(format_result(result, classes))
        if args.show:
            print(format_input(image))
    return 0


if __name__ == "__main__":
    sys.exit(main())

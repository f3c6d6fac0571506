#!/usr/bin/env python3
"""How well "not a digit" holds on what people draw, and how well drawn digits are read.

    python scripts/not_a_digit.py --checkpoint runs/lenet5/checkpoint.npz
    python scripts/not_a_digit.py --checkpoint runs/lenet5/checkpoint.npz --json rates.json --show-misses

Runs the digit app's own predictor on the drawn set (viz/app/drawn_set.py: digits and
non-digits as mouse strokes on the app's pad, at several sizes and places) and on
MNIST's test set, and prints each rate beside its target (met / not met):
non-digits flagged >= 90%, drawn digits flagged <= 5%, drawn digits read right >= 97%,
MNIST test digits flagged <= 2%.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/ and viz/: from the checkout, not installed

import numpy as np

from scripts.options import add_checkpoint_arguments, add_data_dir_argument, check_data_dir, load_checkpoint_argument
from tinygrad_lenet.data import load_mnist, normalize_images
from tinygrad_lenet.training import energy, predict_logits
from viz.app import DigitPredictor
from viz.app.drawn_set import drawn_set, rasterize

# (rate, comparison, target)
TARGETS = {"non_digits_flagged": (">=", 0.90), "drawn_digits_flagged": ("<=", 0.05),
           "drawn_digits_read_right": (">=", 0.97), "mnist_flagged": ("<=", 0.02)}


def measure(predictor: DigitPredictor, images: np.ndarray | None, labels: np.ndarray | None) -> dict:
    """The rates, and the drawings each one missed."""
    if predictor.energy_threshold is None:
        raise ValueError("the checkpoint has no energy threshold (train it with this version of train.py)")
    answers = [(d, predictor.predict(rasterize(d).astype(np.float32) / np.float32(255))) for d in drawn_set()]
    non_digits = [(d, a) for d, a in answers if not d.is_digit]
    digits = [(d, a) for d, a in answers if d.is_digit]
    rates = dict(non_digits_flagged=float(np.mean([a["not_a_digit"] for _, a in non_digits])),
                 drawn_digits_flagged=float(np.mean([a["not_a_digit"] for _, a in digits])),
                 drawn_digits_read_right=float(np.mean([a["label"] == d.name for d, a in digits])))
    misses = dict(non_digits_passed=Counter(d.name for d, a in non_digits if not a["not_a_digit"]),
                  digits_flagged=Counter(d.name for d, a in digits if a["not_a_digit"]),
                  digits_misread=Counter(f"{d.name} as {a['label']}" for d, a in digits if a["label"] != d.name))
    if images is not None:
        logits = predict_logits(predictor.model, normalize_images(images, normalize=predictor.mean_std))
        rates["mnist_flagged"] = float((energy(logits) > predictor.energy_threshold).mean())
        rates["mnist_accuracy"] = float((logits.argmax(axis=1) == labels).mean())
    return dict(rates=rates, counts=dict(non_digits=len(non_digits), digits=len(digits)),
                misses={k: dict(v.most_common()) for k, v in misses.items()})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_arguments(p)
    add_data_dir_argument(p)
    p.add_argument("--no-mnist", action="store_true", help="skip MNIST's test set (the drawn set only)")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    p.add_argument("--show-misses", action="store_true", help="list the drawings each rate missed")
    args = p.parse_args(argv)
    check_data_dir(p, args)
    trained = load_checkpoint_argument(p, args)
    predictor = DigitPredictor(trained)
    images = labels = None
    if not args.no_mnist:
        images, labels = load_mnist("test", root=args.data_dir)
    try:
        result = measure(predictor, images, labels)
    except ValueError as e:
        print(f"not_a_digit.py: error: {e}", file=sys.stderr)
        return 2
    counts = result["counts"]
    print(f"drawn set: {counts['digits']} digits, {counts['non_digits']} non-digits ({args.checkpoint})")
    for name, value in result["rates"].items():
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            ok = value >= target[1] if target[0] == ">=" else value <= target[1]
            verdict = f"  target {target[0]} {target[1]:.0%}: {'met' if ok else 'NOT MET'}"
        print(f"  {name:<24} {value:7.2%}{verdict}")
    if args.show_misses:
        for kind, names in result["misses"].items():
            print(f"  {kind}: {', '.join(f'{n} x{c}' for n, c in names.items()) or 'none'}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

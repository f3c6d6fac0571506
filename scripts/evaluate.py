#!/usr/bin/env python3
"""Evaluate a checkpoint written by scripts/train.py on its data set's test split
(the model, its data set and normalization come from the checkpoint).

    python scripts/evaluate.py --checkpoint runs/lenet5/checkpoint.npz

Prints `accuracy: 0.XXXX`, the accuracy of every class and the confusion matrix
(rows: true class, columns: predicted class).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/ and viz/: from the checkout, not installed

import numpy as np

from scripts.options import add_checkpoint_arguments, add_data_dir_argument, check_data_dir, load_checkpoint_argument
from tinygrad_lenet.atomic import atomic_write_text
from tinygrad_lenet.cli import positive_int
from tinygrad_lenet.data import load_split, normalize_images
from tinygrad_lenet.training import confusion_matrix, evaluate, predict_logits
from viz.plots import plot_confusion, plot_mistakes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_arguments(p)
    add_data_dir_argument(p)
    p.add_argument("--test-subset", type=positive_int, default=None, help="evaluate on the first N test images only")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    p.add_argument("--plots-dir", type=Path, default=None,
                   help="where confusion.png and mistakes.png go (default: the checkpoint's directory)")
    p.add_argument("--plot-format", choices=("png", "svg"), default="png")
    p.add_argument("--no-plots", action="store_true", help="write no pictures")
    return p


def format_confusion(counts: np.ndarray) -> str:
    width = max(5, len(str(counts.max())) + 1)
    lines = ["true\\pred" + "".join(f"{j:>{width}}" for j in range(counts.shape[1]))]
    lines += [f"{i:>9}" + "".join(f"{v:>{width}}" for v in row) for i, row in enumerate(counts)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_data_dir(parser, args)
    trained = load_checkpoint_argument(parser, args)
    dataset = trained.config.dataset

    try:
        images, labels = load_split(dataset, "test", root=args.data_dir)
    except (OSError, ValueError) as e:
        parser.error(f"cannot load {dataset} test: {e}")
    if args.test_subset:
        images, labels = images[:args.test_subset], labels[:args.test_subset]
    normalized = normalize_images(images, normalize=trained.mean_std)
    loss, accuracy, preds = evaluate(trained.model, normalized, labels)
    classes = trained.classes or tuple(str(k) for k in range(int(max(labels.max(), preds.max())) + 1))
    counts = confusion_matrix(labels, preds, num_classes=len(classes))
    if not args.no_plots:
        plots = args.plots_dir or args.checkpoint.parent
        if not plots.is_dir():
            parser.error(f"--plots-dir: no such directory: {plots}")
        logits = predict_logits(trained.model, normalized).astype(np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        try:
            plot_confusion(counts, classes, plots / f"confusion.{args.plot_format}", title=str(trained.config.model))
            plot_mistakes(images, labels, probs, classes, plots / f"mistakes.{args.plot_format}")
        except OSError as e:
            print(f"evaluate.py: error: cannot write the pictures into {plots}: {e.strerror or e}", file=sys.stderr)
            return 2
    per_class = counts.diagonal() / np.maximum(counts.sum(axis=1), 1)

    print(f"checkpoint: {args.checkpoint} ({trained.config.model}, {dataset}, "
          f"epoch {trained.checkpoint['extra'].get('epoch', '?')})")
    print(f"test images: {len(labels)}  loss: {loss:.4f}")
    print(f"accuracy: {accuracy:.4f}")
    print("per-class accuracy: " + "  ".join(f"{c}: {a:.4f}" for c, a in zip(classes, per_class)))
    print("confusion matrix:")
    print(format_confusion(counts))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        results = dict(accuracy=accuracy, loss=loss, classes=list(classes), per_class_accuracy=per_class.tolist(),
                       confusion_matrix=counts.tolist())
        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

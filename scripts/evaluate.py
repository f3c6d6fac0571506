#!/usr/bin/env python3
"""Evaluate a checkpoint written by scripts/train.py on the test set.

    python scripts/evaluate.py --checkpoint runs/lenet5/checkpoint.npz

Prints `accuracy: 0.XXXX`, the accuracy of every class and the confusion matrix
(rows: true class, columns: predicted class).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from models import get_model_for_data
from tinygrad_lenet.atomic import atomic_write_text
from tinygrad_lenet.checkpoint import load_checkpoint
from tinygrad_lenet.data import get_dataset_spec, load_mnist, normalize_images
from tinygrad_lenet.inference import normalization
from tinygrad_lenet.nn import StateDictError
from tinygrad_lenet.training import confusion_matrix, evaluate


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=Path("runs/lenet5/checkpoint.npz"))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--test-subset", type=positive_int, default=None, help="evaluate on the first N test images only")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    return p


def format_confusion(counts: np.ndarray) -> str:
    width = max(5, len(str(counts.max())) + 1)
    lines = ["true\\pred" + "".join(f"{j:>{width}}" for j in range(counts.shape[1]))]
    lines += [f"{i:>9}" + "".join(f"{v:>{width}}" for v in row) for i, row in enumerate(counts)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.checkpoint.is_file():
        parser.error(f"--checkpoint: no such file: {args.checkpoint}")
    try:
        ckpt = load_checkpoint(args.checkpoint)
        config = ckpt["extra"].get("config") or {}
        model = get_model_for_data(config.get("model", "lenet5"), normalization(config))
        model.load_state_dict(ckpt["model_state"])
    except (OSError, ValueError, StateDictError) as e:
        parser.error(f"--checkpoint: cannot load {args.checkpoint}: {e}")
    dataset = config.get("dataset", "mnist")

    try:
        images, labels = load_mnist("test", root=args.data_dir, dataset=dataset)
    except (OSError, ValueError) as e:
        parser.error(f"cannot load {dataset} test: {e}")
    if args.test_subset:
        images, labels = images[:args.test_subset], labels[:args.test_subset]
    loss, accuracy, preds = evaluate(model, normalize_images(images, normalize=normalization(config)), labels)
    counts = confusion_matrix(labels, preds, num_classes=get_dataset_spec(dataset).num_classes)
    per_class = counts.diagonal() / np.maximum(counts.sum(axis=1), 1)

    print(f"checkpoint: {args.checkpoint} ({config.get('model', 'lenet5')}, {dataset}, "
          f"epoch {ckpt['extra'].get('epoch', '?')})")
    print(f"test images: {len(labels)}  loss: {loss:.4f}")
    print(f"accuracy: {accuracy:.4f}")
    print("per-class accuracy: " + "  ".join(f"{c}: {a:.4f}" for c, a in enumerate(per_class)))
    print("confusion matrix:")
    print(format_confusion(counts))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        results = dict(accuracy=accuracy, loss=loss, per_class_accuracy=per_class.tolist(),
                       confusion_matrix=counts.tolist())
        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

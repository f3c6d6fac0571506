#!/usr/bin/env python3
"""Export a trained model: its graph as ONNX (for onnxruntime and other runtimes) or its
weights as safetensors (which PyTorch loads into a model of the same structure).

    python scripts/export.py --checkpoint runs/lenet5/checkpoint.npz --format onnx --out lenet5.onnx
    python scripts/export.py --checkpoint runs/lenet5/checkpoint.npz --format safetensors --out lenet5.safetensors

The ONNX model (opset 17) takes "input" (batch, 1, 28, 28) normalized as in training
(see the checkpoint's RunConfig), or raw pixel values 0-255 with --with-preprocessing
(normalization is then part of the graph), and returns "logits"; the batch size is free.
The file describes itself: its metadata_props and doc_string give the input layout and
values, normalization mean and std, polarity, the crop-and-centre preprocessing, class
names, the training data set and test accuracy, so a consumer needs only the file
(examples/onnx_predict.py classifies a picture with onnxruntime and Pillow alone).
It is written only when onnxruntime agrees with the model on a held-out batch, and a
model whose graph depends on its input's values (Python control flow) is refused.
Needs the export extra: pip install -e ".[export]".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/ and viz/: from the checkout, not installed

import numpy as np

from scripts.options import add_checkpoint_arguments, load_checkpoint_argument
from tinygrad_lenet.atomic import check_replaceable
from tinygrad_lenet.data import describe_dataset, pixel_scale_shift
from tinygrad_lenet.export import ExportError, InputScaling, SafetensorsError, export_onnx, save_safetensors
from tinygrad_lenet.image import POLARITY, PREPROCESSING

FORMATS = ("onnx", "safetensors")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_arguments(p, default=None)
    p.add_argument("--format", choices=FORMATS, default=None, help="default: from --out's suffix")
    p.add_argument("--out", type=Path, required=True, help="the file to write")
    p.add_argument("--with-preprocessing", action="store_true",
                   help="onnx: the graph takes raw pixel values 0-255 and normalizes them itself")
    return p


def model_card(trained, image_shape: tuple[int, ...], raw_pixels: bool) -> tuple[dict[str, str], str]:
    """(metadata_props, doc_string) of an exported model: what a consumer with only the
    file needs to feed it a picture and read its answer."""
    config, (mean, std) = trained.config, trained.mean_std
    history = trained.checkpoint.get("extra", {}).get("history") or []
    accuracy = history[-1].get("test_accuracy") if history and isinstance(history[-1], dict) else None
    digits = "mnist" in str(config.dataset).lower()
    layout = f"float32 (batch, 1, {', '.join(map(str, image_shape))}), NCHW, one grayscale channel"
    formula = f"(pixel / 255 - {mean:.6g}) / {std:.6g}"
    values = f"raw pixel values 0-255; the graph normalizes them as {formula}" if raw_pixels else \
        f"normalized pixels: {formula}"
    card = {
        "input": layout, "input_values": values, "normalize_mean": f"{mean:.9g}", "normalize_std": f"{std:.9g}",
        "normalization_in_graph": "yes" if raw_pixels else "no",
        "polarity": POLARITY if digits else "as the training images (stored as uint8 0-255)",
        "preprocessing": PREPROCESSING if digits else f"resize to {image_shape[-2]}x{image_shape[-1]} grayscale",
        "output": f"logits (batch, {len(trained.classes)}): softmax gives probabilities, argmax the class",
        "classes": json.dumps(list(trained.classes)), "dataset": str(config.dataset), "model": str(config.model),
        "epochs": str(len(history)),
    }
    if accuracy is not None:
        card["test_accuracy"] = f"{float(accuracy):.4f}"
    trained_on = f"Trained on {config.dataset}" + (f", test accuracy {float(accuracy):.2%}" if accuracy is not None else "")
    doc = (f"{config.model}: classifies a {image_shape[-2]}x{image_shape[-1]} grayscale picture into "
           f"{len(trained.classes)} classes ({', '.join(trained.classes)}). Input 'input': {layout}, {values}. "
           f"Pictures: {card['polarity']}; preprocessing {card['preprocessing']}. Output 'logits': {card['output']}. "
           f"{trained_on}. Exported by tinygrad_lenet.")
    return card, doc


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    fmt = args.format or args.out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        parser.error(f"--format: give onnx or safetensors (or an --out ending in .onnx or .safetensors), got {fmt!r}")
    if args.with_preprocessing and fmt != "onnx":
        parser.error("--with-preprocessing: only for --format onnx (safetensors holds weights, not a graph)")
    if not args.out.parent.is_dir():
        parser.error(f"--out: directory {args.out.parent} does not exist")
    try:
        check_replaceable(args.out)
    except OSError as e:
        parser.error(f"--out: {e.strerror}")
    trained = load_checkpoint_argument(parser, args)
    dataset = trained.config.dataset
    try:  # the input's shape: the data set's images, one channel
        image_shape = describe_dataset(dataset).image_shape
    except (OSError, ValueError) as e:
        parser.error(f"cannot tell the input shape from the data set {dataset!r} the model was trained on: {e}")
    try:
        if fmt == "onnx":
            metadata, doc = model_card(trained, image_shape, args.with_preprocessing)
            model = trained.model
            if args.with_preprocessing:
                model = InputScaling(model, *pixel_scale_shift(np.dtype(np.uint8), trained.mean_std))
            export_onnx(model, args.out, (1, *image_shape), metadata=metadata, doc_string=doc)
        else:
            save_safetensors(trained.model.state_dict(), args.out,
                             metadata={"model": trained.config.model, "dataset": str(dataset)})
    except (ExportError, SafetensorsError) as e:
        print(f"export.py: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"export.py: error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({fmt}) from {args.checkpoint} ({trained.config.model})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

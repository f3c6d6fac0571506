#!/usr/bin/env python3
"""Export a trained model: its graph as ONNX (for onnxruntime and other runtimes) or its
weights as safetensors (which PyTorch loads into a model of the same structure).

    python scripts/export.py --checkpoint runs/lenet5/checkpoint.npz --format onnx --out lenet5.onnx
    python scripts/export.py --checkpoint runs/lenet5/checkpoint.npz --format safetensors --out lenet5.safetensors

The ONNX model (opset 17) takes "input" (batch, 1, 28, 28) normalized as in training
(see the checkpoint's RunConfig) and returns "logits"; the batch size is free. It is
written only when onnxruntime agrees with the model on a held-out batch, and a model
whose graph depends on its input's values (Python control flow) is refused.
Needs the export extra: pip install -e ".[export]".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/ and viz/: from the checkout, not installed

from scripts.options import add_checkpoint_arguments, load_checkpoint_argument
from tinygrad_lenet.atomic import check_replaceable
from tinygrad_lenet.data import describe_dataset
from tinygrad_lenet.export import ExportError, SafetensorsError, export_onnx, save_safetensors

FORMATS = ("onnx", "safetensors")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_arguments(p, default=None)
    p.add_argument("--format", choices=FORMATS, default=None, help="default: from --out's suffix")
    p.add_argument("--out", type=Path, required=True, help="the file to write")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    fmt = args.format or args.out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        parser.error(f"--format: give onnx or safetensors (or an --out ending in .onnx or .safetensors), got {fmt!r}")
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
            export_onnx(trained.model, args.out, (1, *image_shape))
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

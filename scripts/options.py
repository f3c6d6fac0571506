"""What several scripts share, defined once: where runs go, the --checkpoint option
(with the options that name a checkpoint's model code) and loading it, and --data-dir."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from models import CheckpointError, TrainedModel, load_trained_model
from tinygrad_lenet.cli import add_checkpoint_code_arguments

RUNS = Path("runs")  # train.py writes runs/NAME/ (NAME from the model and the data set)
CHECKPOINT, METRICS, DASHBOARD = "checkpoint.npz", "metrics.json", "dashboard.html"  # the files of a run directory
GRAPH_VIEWER = "graph.html"  # the graph viewer, which the dashboard links to
DEFAULT_CHECKPOINT = RUNS / "lenet5" / CHECKPOINT  # what `python scripts/train.py` writes


def add_checkpoint_arguments(parser: argparse.ArgumentParser, default: Path | None = DEFAULT_CHECKPOINT,
                             model: bool = True) -> None:
    """--checkpoint (default: the default run's), --model (unless `model` is False: the
    script has a --model of its own) and --trust-checkpoint-code."""
    parser.add_argument("--checkpoint", type=Path, default=default, required=default is None and model,
                        help="a checkpoint written by train.py" + (f" (default: {default})" if default else ""))
    add_checkpoint_code_arguments(parser, model=model)


def add_data_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="directory with the IDX files (default: $TINYGRAD_LENET_DATA, then the cache, else download)")


def check_data_dir(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A parser error when --data-dir names no directory (even with $TINYGRAD_LENET_DATA set)."""
    if args.data_dir is not None and not args.data_dir.is_dir():
        parser.error(f"--data-dir: no such directory: {args.data_dir}")


def load_checkpoint_argument(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TrainedModel:
    """The model of --checkpoint, loaded with the model-code options; a parser error
    (one line, exit code 2) when it is missing or cannot be loaded."""
    path: Path = args.checkpoint
    if not path.is_file():
        parser.error(f"--checkpoint: no such file: {path}; train a model first with `python scripts/train.py` "
                     f"(it writes {DEFAULT_CHECKPOINT})")
    try:
        return load_trained_model(path, model=getattr(args, "model", None), trust_code=args.trust_checkpoint_code)
    except CheckpointError as e:
        parser.error(f"--checkpoint: {e}")
        raise  # parser.error exits; this line is never reached


def wait_for_interrupt() -> None:
    """Block until Ctrl+C (servers run in their own threads meanwhile)."""
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass

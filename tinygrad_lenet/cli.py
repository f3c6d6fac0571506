"""Command-line glue shared by the scripts: `RunConfig` options for argparse, and
argparse types whose errors say what was wrong with the value."""

from __future__ import annotations

import argparse
import ast
import dataclasses
from pathlib import Path
from typing import Any

from .config import OPTIMIZERS, SCHEDULES, ConfigError, RunConfig

# RunConfig fields a user sets on the command line, with their option's help.
RUN_OPTIONS: dict[str, str] = {
    "model": "a registered model, package.module:attr or path/to/file.py:attr (an nn.Module subclass or a "
             "function returning a module)",
    "dataset": "mnist, fashion-mnist, or a directory of IDX files in MNIST's layout (e.g. EMNIST, KMNIST)",
    "epochs": "training epochs",
    "batch_size": "images per step",
    "optimizer": "/".join(OPTIMIZERS),
    "lr": "learning rate (the peak rate for --schedule onecycle)",
    "momentum": "SGD momentum (Nesterov); not used with --schedule onecycle, whose momentum cycles between "
                "0.85 and 0.95 (as PyTorch's OneCycleLR)",
    "schedule": "/".join(SCHEDULES),
    "step_size": "epochs between decays for --schedule step",
    "gamma": "decay factor for --schedule step",
    "weight_decay": "L2 penalty (decoupled for adamw)",
    "label_smoothing": "mix each one-hot training target with the uniform distribution by this much",
    "ema_decay": "test and save an exponential moving average of the weights with this decay (with "
                 "TensorFlow's warm-up: about the last tenth of a short run's steps); none: the weights themselves",
    "clip_grad_norm": "clip the gradients' total norm to this",
    "augment": "random shifts, small rotations and scaling",
    "outlier_exposure": "also train on procedural non-digits (scribbles, blobs, shapes, letter-like strokes) with "
                        "uniform targets, so the model's energy score tells drawings unlike any class ('not a "
                        "digit'); default: on for MNIST, off for other data",
    "seed": "seed of initialization, shuffling, dropout and augmentation",
    "workers": "processes sharing each step's batch (tinygrad_lenet.data_parallel; 2 uses both cores of a "
               "2-core machine); results differ from one process by rounding",
    "train_subset": "use only the first N training images",
    "test_subset": "use only the first N test images",
    "target_accuracy": "report the training time until test accuracy first reaches this",
}


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per RUN_OPTIONS field, plus repeatable --model-arg KEY=VALUE. Options
    left out of the command line stay absent from the parsed namespace, so
    `run_config_from_args` can tell what was given."""
    defaults = RunConfig()
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    for name, help_text in RUN_OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        shown = f"{help_text} (default: {default})"
        if fields[name].type in ("bool", bool):
            parser.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=help_text)
            continue
        if fields[name].type == "bool | None":  # on, off, or decided from the data (--x / --no-x / neither)
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
            continue
        choices = OPTIMIZERS if name == "optimizer" else SCHEDULES if name == "schedule" else None
        parser.add_argument(flag, type=_scalar_type(fields[name].type), choices=choices, default=argparse.SUPPRESS,
                            help=shown, metavar=None if choices else name.upper())
    parser.add_argument("--model-arg", action="append", type=model_arg, default=argparse.SUPPRESS,
                        metavar="KEY=VALUE", help="argument for the model's constructor (repeatable; VALUE is a "
                                                  "Python literal, else a string)")


TRUST_CODE_HELP = ("import and run the model code a checkpoint names (a module or model file), as loading "
                   "it needs; only for a checkpoint from a source you trust (registered models need no consent)")


def add_checkpoint_code_arguments(parser: argparse.ArgumentParser, model: bool = True) -> None:
    """--model (the model code of a checkpoint that names a module or file; the user's
    own choice, so it may be imported) and --trust-checkpoint-code (import what the
    checkpoint names). Loading never imports code a checkpoint names without one."""
    if model:
        parser.add_argument("--model", default=None, metavar="FILE.py:ATTR",
                            help="the model code of a checkpoint trained on a model of yours (path/to/file.py:attr "
                                 "or package.module:attr); registered models need none")
    parser.add_argument("--trust-checkpoint-code", action="store_true", help=TRUST_CODE_HELP)


def given_run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The RunConfig settings given on the command line (model_args merged from --model-arg)."""
    given = {name: getattr(args, name) for name in RUN_OPTIONS if hasattr(args, name)}
    if hasattr(args, "model_arg"):
        given["model_args"] = dict(args.model_arg)
    return given


def run_config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace,
                         base: RunConfig | None = None) -> RunConfig:
    """`base` (default: RunConfig()) with the options given on the command line; an
    invalid value is reported by the parser as an error naming its option."""
    try:
        return (base or RunConfig()).replace(**given_run_options(args))
    except ConfigError as e:
        parser.error(f"--{e.field.replace('_', '-')}: {str(e).split(': ', 1)[1]}")
        raise  # parser.error exits; this line is never reached


def model_arg(text: str) -> tuple[str, Any]:
    """KEY=VALUE with VALUE read as a Python literal (numbers, strings, True/False/None,
    lists, dicts), or taken as a string when it is not one."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a Python name, got {text!r}")
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        parsed = value.strip()
    return key, parsed


def _scalar_type(annotation: Any) -> Any:
    text = str(annotation)
    optional = "None" in text  # the word "none" gives None
    if "int" in text:
        return _number(int, "an integer", optional)
    if "float" in text:
        return _number(float, "a number", optional)
    return str


def _number(kind: type, what: str, optional: bool = False) -> Any:
    def convert(text: str) -> Any:
        if optional and text.strip().lower() == "none":
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}{' or none' if optional else ''}, got {text!r}") from None
    convert.__name__ = kind.__name__
    return convert


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1, or an error naming the value."""
    value = _number(int, "an integer")(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0, or an error naming the value."""
    value = _number(int, "an integer")(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535."""
    value = _number(int, "an integer")(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0..65535 (0: any free port), got {value}")
    return value


def existing_file(text: str) -> Path:
    """An argparse type: the path of an existing file."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {path}")
    return path

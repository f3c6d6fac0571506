"""A model from a checkpoint written by `scripts/train.py`: the run's `RunConfig` is
stored in it, so the model is rebuilt from the checkpoint alone, whatever `--model`
it was trained with (a registered name, a module path or a file)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from tinygrad_lenet.checkpoint import load_checkpoint
from tinygrad_lenet.config import ConfigError, RunConfig
from tinygrad_lenet.data import describe_dataset, is_known_dataset
from tinygrad_lenet.nn import Module, StateDictError
from tinygrad_lenet.nn.utils import non_finite_entries

from .spec import ModelSpecError, build_model, file_sha256


class CheckpointError(ValueError):
    """A checkpoint that cannot give a model: names the file and what is wrong."""


@dataclass
class TrainedModel:
    """A model loaded from a checkpoint (in eval mode), with what it was trained on."""
    model: Module
    config: RunConfig
    classes: tuple[str, ...]
    checkpoint: dict[str, Any]

    @property
    def mean_std(self) -> tuple[float, float]:
        """How inputs were normalized in training."""
        return self.config.mean_std or describe_dataset(self.config.dataset).mean_std


def config_of(checkpoint: dict[str, Any], path: str | os.PathLike) -> RunConfig:
    """The RunConfig stored in a loaded checkpoint; the defaults (LeNet-5 on MNIST) for a
    checkpoint of bare weights."""
    extra = checkpoint.get("extra")
    if not isinstance(extra, dict):
        raise CheckpointError(f"cannot load {os.fspath(path)}: its 'extra' is a {type(extra).__name__}, "
                              "not a mapping")
    if "config" not in extra:
        return RunConfig()
    try:
        return RunConfig.from_dict(extra["config"])
    except ConfigError as e:
        raise CheckpointError(f"cannot load {os.fspath(path)}: invalid run config: {e}") from None


def load_trained_model(path: str | os.PathLike, warn: Any = None, allow_non_finite: bool = False) -> TrainedModel:
    """The model of checkpoint `path` in eval mode. When the model was defined in a file
    that changed since training, `warn` (default: print to stderr) is told, and the
    model still loads if its state dict fits. Weights or buffers holding NaN or
    infinity are an error unless `allow_non_finite` (to inspect a diverged run)."""
    source = os.fspath(path)
    try:
        ckpt = load_checkpoint(path)
    except (OSError, ValueError) as e:
        message = str(e).removeprefix(f"{source}: ")  # said once, after "cannot load"
        raise CheckpointError(f"cannot load {source}: {message}") from None
    config = config_of(ckpt, path)
    classes = _classes(ckpt, config)
    try:
        current = file_sha256(config.model)
        if config.model_sha256 is not None and current is not None and current != config.model_sha256:
            (warn or _stderr)(f"warning: {config.model.rsplit(':', 1)[0]} has changed since {source} was trained "
                              f"(SHA-256 {current[:12]}... now, {config.model_sha256[:12]}... then); "
                              "loading it as it is now")
        mean_std = config.mean_std or (describe_dataset(config.dataset).mean_std
                                       if is_known_dataset(config.dataset) else None)
        model = build_model(config.model, config.model_args, mean_std)
        model.load_state_dict(ckpt["model_state"])
    except ModelSpecError as e:
        raise CheckpointError(f"cannot load {source}: cannot rebuild its model: {e}") from None
    except StateDictError as e:
        raise CheckpointError(f"cannot load {source}: the weights do not fit {config.model}: {e.summary()}") from None
    if not allow_non_finite:
        bad = non_finite_entries(model)
        if bad:
            raise CheckpointError(f"cannot load {source}: non-finite values (NaN or infinity) in "
                                  f"{', '.join(bad[:3])}{' and more' if len(bad) > 3 else ''}")
    model.eval()
    return TrainedModel(model, config, classes, ckpt)


def _classes(ckpt: dict[str, Any], config: RunConfig) -> tuple[str, ...]:
    stored = ckpt["extra"].get("classes")
    if isinstance(stored, list) and all(isinstance(c, str) for c in stored):
        return tuple(stored)
    if is_known_dataset(config.dataset):
        return describe_dataset(config.dataset).classes
    return ()


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)

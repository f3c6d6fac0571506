"""A model from a checkpoint written by `scripts/train.py`: the run's `RunConfig` is
stored in it, so the model is rebuilt from it, whatever `--model` it was trained with.

Loading is safe for a file someone sends you: it never imports or calls code the file
names. A registered model (`lenet5`) is built from its registry entry; a checkpoint
that names a module or a model file (`my_net.py:Net`) loads only when the caller names
the model code itself (`model=`, a script's `--model`) or says it trusts the file's
code (`trust_code=True`, `--trust-checkpoint-code`)."""

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

from .spec import ModelSpecError, build_model, check_spec, file_sha256


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


def model_to_build(config: RunConfig, path: str | os.PathLike, model: str | None = None,
                   trust_code: bool = False, warn: Any = None) -> str:
    """The model spec to build for a checkpoint whose run config is `config`, checked
    before anything is imported. A registered model needs no consent. Code the
    checkpoint names (a module or a model file) is used only when the caller names the
    model itself (`model`, which then replaces the stored spec; a file that changed
    since training is a warning to `warn`) or trusts the checkpoint's code
    (`trust_code`; a changed file is then an error). Anything else is a CheckpointError
    saying how to load the file deliberately."""
    source = os.fspath(path)
    try:
        stored_kind = check_spec(config.model)
        if model is not None:
            check_spec(model)
    except ModelSpecError as e:
        raise CheckpointError(f"cannot load {source}: {e}") from None
    if model is not None:
        _check_file_unchanged(model, config, source, warn or _stderr)
        return model
    if stored_kind == "registered":
        return config.model
    if not trust_code:
        yours = (f"if {config.model.rsplit(':', 1)[0]} is your model file, name it with --model {config.model} "
                 "(API: model=...); " if stored_kind == "file" else "")
        raise CheckpointError(f"cannot load {source}: it names model code ({config.model}), and loading it would "
                              f"import and run that code; {yours}to run the code a checkpoint names, pass "
                              "--trust-checkpoint-code (API: trust_code=True), only for a file from a source you trust")
    _check_file_unchanged(config.model, config, source, None)
    return config.model


def _check_file_unchanged(spec: str, config: RunConfig, source: str, warn: Any) -> None:
    """Compare a model file's SHA-256 with the one recorded at training: `warn` of a
    change, or raise a CheckpointError when `warn` is None."""
    try:
        current = file_sha256(spec)
    except ModelSpecError as e:
        raise CheckpointError(f"cannot load {source}: {e}") from None
    if config.model_sha256 is None or current is None or current == config.model_sha256:
        return
    change = (f"{spec.rsplit(':', 1)[0]} has changed since {source} was trained (SHA-256 {current[:12]}... now, "
              f"{config.model_sha256[:12]}... then)")
    if warn is None:
        raise CheckpointError(f"cannot load {source}: {change}; to load it as it is now, name it with --model {spec}")
    warn(f"warning: {change}; loading it as it is now")


def load_trained_model(path: str | os.PathLike, warn: Any = None, allow_non_finite: bool = False,
                       model: str | None = None, trust_code: bool = False) -> TrainedModel:
    """The model of checkpoint `path` in eval mode; see the module docstring for which
    code may be imported to build it (`model`, `trust_code`). When the user's model
    file changed since training, `warn` (default: print to stderr) is told, and the
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
    spec = model_to_build(config, path, model, trust_code, warn)
    if spec != config.model:
        config = config.replace(model=spec, model_sha256=file_sha256(spec))
    try:
        mean_std = config.mean_std or (describe_dataset(config.dataset).mean_std
                                       if is_known_dataset(config.dataset) else None)
        built = build_model(spec, config.model_args, mean_std)
        built.load_state_dict(ckpt["model_state"])
    except ModelSpecError as e:
        raise CheckpointError(f"cannot load {source}: cannot rebuild its model: {e}") from None
    except StateDictError as e:
        raise CheckpointError(f"cannot load {source}: the weights do not fit {spec}: {e.summary()}") from None
    if not allow_non_finite:
        bad = non_finite_entries(built)
        if bad:
            raise CheckpointError(f"cannot load {source}: non-finite values (NaN or infinity) in "
                                  f"{', '.join(bad[:3])}{' and more' if len(bad) > 3 else ''}")
    built.eval()
    return TrainedModel(built, config, classes, ckpt)


def _classes(ckpt: dict[str, Any], config: RunConfig) -> tuple[str, ...]:
    stored = ckpt["extra"].get("classes")
    if isinstance(stored, list) and all(isinstance(c, str) for c in stored):
        return tuple(stored)
    if is_known_dataset(config.dataset):
        return describe_dataset(config.dataset).classes
    return ()


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)

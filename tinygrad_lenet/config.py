"""`RunConfig`: one training run's settings (model, data, optimizer, schedule), with
their defaults and validation in one place. Every script reads it, `scripts/train.py`
stores it in each checkpoint, and evaluation, prediction and the digit app rebuild the
model from it.

    config = RunConfig(model="lenet5", epochs=4)     # invalid values raise ConfigError
    config.to_dict()                                 # JSON-ready, as stored in checkpoints
    RunConfig.from_dict(checkpoint["extra"]["config"])
    optimizer = build_optimizer(config, model.parameters())
    scheduler, per_batch = build_scheduler(config, optimizer, steps_per_epoch=len(loader))
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from . import optim

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle")


class ConfigError(ValueError):
    """A run setting with an invalid value; `field` names it."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class RunConfig:
    """The settings of a training run. `model` is a registered name, `package.module:attr`
    or `path/to/file.py:attr`; `dataset` a known data set name or a directory of IDX
    files. `normalize_mean`/`normalize_std` are filled in from the data by the train
    script (None: the data set's published statistics)."""

    model: str = "lenet5"
    model_args: dict[str, Any] = field(default_factory=dict)
    model_sha256: str | None = None  # of the model's file, for a model defined in a file
    dataset: str = "mnist"
    epochs: int = 4
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.07
    momentum: float = 0.9
    schedule: str = "onecycle"
    step_size: int = 4
    gamma: float = 0.3
    weight_decay: float = 1e-3
    label_smoothing: float = 0.1
    ema_decay: float | None = 0.999  # evaluate an average of the weights (see build_averaged_model); None: the weights
    clip_grad_norm: float | None = None
    augment: bool = False
    outlier_exposure: bool | None = None  # None: on for MNIST's digits (see resolve_outlier_exposure), else off
    seed: int = 0
    workers: int = 1
    train_subset: int | None = None
    test_subset: int | None = None
    target_accuracy: float = 0.99
    normalize_mean: float | None = None
    normalize_std: float | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _CHECKS[f.name](f.name, getattr(self, f.name))
        if (self.normalize_mean is None) != (self.normalize_std is None):
            raise ConfigError("normalize_std", "normalize_mean and normalize_std are given together or not at all")

    def resolve_outlier_exposure(self, image_shape: tuple[int, ...]) -> "RunConfig":
        """The config with outlier_exposure decided: when not given, on for MNIST (its
        outliers are non-digits, 28x28) and off for other data."""
        if self.outlier_exposure is not None:
            return self
        digits = self.dataset.lower() == "mnist" and tuple(image_shape) == (28, 28)
        return self.replace(outlier_exposure=digits)

    @property
    def mean_std(self) -> tuple[float, float] | None:
        """The (mean, std) inputs are normalized with, when recorded."""
        if self.normalize_mean is None or self.normalize_std is None:
            return None
        return self.normalize_mean, self.normalize_std

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with `changes` applied, every value checked (a ConfigError names the field)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values (what checkpoints and metrics.json store)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: Any) -> "RunConfig":
        """A config from `to_dict()`'s output (e.g. read from a checkpoint); unknown keys
        and invalid values are ConfigErrors naming them."""
        if not isinstance(values, dict):
            raise ConfigError("config", f"expected a mapping of settings, got {type(values).__name__}")
        unknown = sorted(str(k) for k in values if k not in _CHECKS)
        if unknown:
            raise ConfigError("config", f"unknown setting(s) {', '.join(unknown)}")
        return cls(**{**_BEFORE_THEY_EXISTED, **values})

    def differences(self, other: "RunConfig", names: list[str] | None = None) -> list[str]:
        """`name=mine (theirs)` for each setting (of `names`, default all) that differs."""
        names = names or [f.name for f in dataclasses.fields(self)]
        return [f"{n}={getattr(self, n)!r} (now {getattr(other, n)!r})" for n in names
                if getattr(self, n) != getattr(other, n)]


# ------------------------------------------------------------------ validation rules

def _positive_int(name: str, value: Any) -> None:
    if not _is_int(value) or value < 1:
        raise ConfigError(name, f"must be a positive integer, got {value!r}")


def _optional_positive_int(name: str, value: Any) -> None:
    if value is not None:
        _positive_int(name, value)


def _non_negative_int(name: str, value: Any) -> None:
    if not _is_int(value) or value < 0:
        raise ConfigError(name, f"must be an integer >= 0, got {value!r}")


def _positive_float(name: str, value: Any) -> None:
    if not _is_number(value) or not 0 < value < math.inf:
        raise ConfigError(name, f"must be a positive finite number, got {value!r}")


def _optional_positive_float(name: str, value: Any) -> None:
    if value is not None:
        _positive_float(name, value)


def _non_negative_float(name: str, value: Any) -> None:
    if not _is_number(value) or not 0 <= value < math.inf:
        raise ConfigError(name, f"must be a finite number >= 0, got {value!r}")


def _optional_finite(name: str, value: Any) -> None:
    if value is not None and (not _is_number(value) or not math.isfinite(value)):
        raise ConfigError(name, f"must be a finite number, got {value!r}")


def _below_one(name: str, value: Any) -> None:
    """[0, 1): a momentum of 1 or more never forgets a gradient and diverges."""
    if not _is_number(value) or not 0 <= value < 1:
        raise ConfigError(name, f"must be in [0, 1), got {value!r}")


def _decay_factor(name: str, value: Any) -> None:
    if not _is_number(value) or not 0 < value <= 1:
        raise ConfigError(name, f"must be in (0, 1] (a factor the learning rate is multiplied by), got {value!r}")


def _probability(name: str, value: Any) -> None:
    if not _is_number(value) or not 0 <= value <= 1:
        raise ConfigError(name, f"must be in [0, 1], got {value!r}")


def _optional_open_unit(name: str, value: Any) -> None:
    if value is not None and (not _is_number(value) or not 0 < value < 1):
        raise ConfigError(name, f"must be in (0, 1) or None, got {value!r}")


def _fraction(name: str, value: Any) -> None:
    if not _is_number(value) or not 0 < value <= 1:
        raise ConfigError(name, f"must be in (0, 1], got {value!r}")


def _choice(*choices: str) -> Any:
    def check(name: str, value: Any) -> None:
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return check


def _name(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(name, f"must be a non-empty string, got {value!r}")


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(name, f"must be true or false, got {value!r}")


def _optional_flag(name: str, value: Any) -> None:
    if value is not None:
        _flag(name, value)


def _sha256(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or len(value) != 64
                              or any(c not in "0123456789abcdef" for c in value)):
        raise ConfigError(name, f"must be a SHA-256 hex digest, got {value!r}")


def _model_args(name: str, value: Any) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and k.isidentifier() for k in value):
        raise ConfigError(name, f"must map argument names to values, got {value!r}")
    for key, v in value.items():
        if not _is_literal(v):
            raise ConfigError(name, f"{key}={v!r} is not a number, string, bool, None or a list/dict of them")


def _positive_std(name: str, value: Any) -> None:
    if value is not None:
        _positive_float(name, value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_literal(value: Any, depth: int = 0) -> bool:
    if depth > 20:
        return False
    if value is None or isinstance(value, (bool, int, float, str)):
        return not isinstance(value, float) or math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_is_literal(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_literal(v, depth + 1) for k, v in value.items())
    return False


_CHECKS = dict(
    model=_name, model_args=_model_args, model_sha256=_sha256, dataset=_name,
    epochs=_positive_int, batch_size=_positive_int, optimizer=_choice(*OPTIMIZERS), lr=_positive_float,
    momentum=_below_one, schedule=_choice(*SCHEDULES), step_size=_positive_int, gamma=_decay_factor,
    weight_decay=_non_negative_float, label_smoothing=_probability, ema_decay=_optional_open_unit,
    clip_grad_norm=_optional_positive_float,
    augment=_flag, outlier_exposure=_optional_flag,
    seed=_non_negative_int, workers=_positive_int, train_subset=_optional_positive_int, test_subset=_optional_positive_int,
    target_accuracy=_fraction, normalize_mean=_optional_finite, normalize_std=_positive_std,
)

# Settings added after checkpoints were first written, with the value every run
# before them had: a stored config without them means that value, not today's default.
_BEFORE_THEY_EXISTED = dict(label_smoothing=0.0, ema_decay=None)


# ------------------------------------------------------------------ what a config builds

def build_optimizer(config: RunConfig, params: Any) -> optim.Optimizer:
    """SGD (Nesterov momentum when momentum > 0), Adam or AdamW, as the config says."""
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0,
                         weight_decay=config.weight_decay)
    cls = optim.Adam if config.optimizer == "adam" else optim.AdamW
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def build_averaged_model(config: RunConfig, model: Any) -> optim.swa_utils.AveragedModel | None:
    """The average of the model's weights that the run evaluates and saves, or None without
    `ema_decay`: an exponential moving average updated after every step, with TensorFlow's
    warm-up (decay min(ema_decay, (1 + n) / (10 + n)) at update n), so that over a run of
    a few epochs it averages about the last tenth of the steps."""
    if config.ema_decay is None:
        return None
    return optim.swa_utils.AveragedModel(model, multi_avg_fn=optim.swa_utils.get_ema_multi_avg_fn(config.ema_decay,
                                                                                                  warmup=True))


def build_scheduler(config: RunConfig, optimizer: optim.Optimizer, steps_per_epoch: int) -> tuple[Any, bool]:
    """The learning-rate scheduler (or None) and whether it steps per batch (else per epoch)."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "step":
        return optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma), False
    if config.schedule == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total), True
    if config.schedule == "onecycle":
        return optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total), True
    return None, False

"""Models by name, so scripts can say `--model lenet5`."""

from __future__ import annotations

import inspect
from typing import Callable

from tinygrad_lenet.nn import Module

MODELS: dict[str, Callable[..., Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., Module]], Callable[..., Module]]:
    """Decorator: make a model builder available under `name`."""
    def add(builder: Callable[..., Module]) -> Callable[..., Module]:
        if name in MODELS:
            raise ValueError(f"model '{name}' is already registered")
        MODELS[name] = builder
        return builder
    return add


def get_model(name: str, **kwargs) -> Module:
    """Build the model registered as `name`."""
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; available: {', '.join(sorted(MODELS))}") from None
    return builder(**kwargs)


def get_model_for_data(name: str, mean_std: tuple[float, float], **kwargs) -> Module:
    """Build the model `name` for inputs normalized as (pixel - mean) / std. A model
    that maps its input back to pixels (its builder takes `input_mean` and `input_std`,
    as lenet5_1998 does) is given the statistics; other models ignore them."""
    builder = MODELS.get(name)
    if builder is not None:  # an unknown name gets get_model's error
        accepted = inspect.signature(builder).parameters
        stats = {k: float(v) for k, v in zip(("input_mean", "input_std"), mean_std) if k in accepted}
        kwargs = {**stats, **kwargs}
    return get_model(name, **kwargs)


def available_models() -> list[str]:
    return sorted(MODELS)

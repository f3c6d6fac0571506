"""Models by name, so scripts can say `--model lenet5`."""

from __future__ import annotations

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


def available_models() -> list[str]:
    return sorted(MODELS)

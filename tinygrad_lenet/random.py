"""The package's default random generator, used by weight init, dropout and
data shuffling when no generator is passed. `manual_seed` makes runs repeatable."""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the default generator; the same seed gives the same weights and dropout masks."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_generator() -> np.random.Generator:
    """The package's random generator (seeded by `manual_seed`), used by init, dropout and loaders."""
    return _generator


def get_state() -> dict:
    """The default generator's state, to restore with `set_state`."""
    return _generator.bit_generator.state


def set_state(state: dict) -> None:
    """Restore a state `get_state` returned."""
    _generator.bit_generator.state = state

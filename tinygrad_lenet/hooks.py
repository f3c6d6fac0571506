"""Handles for registered hooks, as PyTorch's `RemovableHandle`: `handle.remove()`
takes the hook out again (also usable as a context manager)."""

from __future__ import annotations

import itertools
from typing import Any, Callable

_next_id = itertools.count()


class RemovableHandle:
    """Removes hook `key` from the dict it was registered in."""

    def __init__(self, hooks: dict[int, Callable[..., Any]], key: int):
        self._hooks, self.id = hooks, key

    def remove(self) -> None:
        """Take the hook out again (no error if it is gone already)."""
        self._hooks.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def add_hook(hooks: dict[int, Callable[..., Any]], fn: Callable[..., Any]) -> RemovableHandle:
    """Add `fn` to `hooks` (kept in registration order) and return its handle."""
    if not callable(fn):
        raise TypeError(f"a hook must be callable, got {type(fn).__name__}")
    key = next(_next_id)
    hooks[key] = fn
    return RemovableHandle(hooks, key)

"""PyTorch's names beside numpy's, so code written for either reads the same here.

- `dim=` and `keepdim=` are accepted wherever `axis=` and `keepdims=` are (`with_dim`);
  giving both spellings of one argument is an error.
- `t.size` is the element count (numpy's `size`), and calling it gives PyTorch's
  `size()`: `t.size()` is the shape, `t.size(0)` its first entry (`Size`).
- `t.max(1)` and `t.max(dim=1)` return PyTorch's (values, indices) pair
  (`ValuesIndices`); `t.max(axis=1)` returns the values alone, as numpy does. The same
  for `min`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, TypeVar

from .errors import DimError

F = TypeVar("F", bound=Callable[..., Any])

_ALIASES = (("dim", "axis"), ("keepdim", "keepdims"))


def numpy_keywords(op: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` with PyTorch's `dim`/`keepdim` renamed to `axis`/`keepdims`."""
    for torch_name, numpy_name in _ALIASES:
        if torch_name in kwargs:
            if numpy_name in kwargs:
                raise TypeError(f"{op}: got both {torch_name}= and {numpy_name}= (they are the same argument)")
            kwargs[numpy_name] = kwargs.pop(torch_name)
    return kwargs


def with_dim(method: F) -> F:
    """Let `method` (which takes `axis`/`keepdims`) also take PyTorch's `dim`/`keepdim`."""
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs:
            kwargs = numpy_keywords(method.__name__, kwargs)
        return method(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


class Size(int):
    """An element count (an int, as numpy's `size`) that, called, answers PyTorch's
    `size()`: the shape, or with `dim` the size of that axis."""

    shape: tuple[int, ...]

    def __new__(cls, count: int, shape: tuple[int, ...]) -> "Size":
        self = super().__new__(cls, count)
        self.shape = shape
        return self

    def __call__(self, dim: int | None = None) -> Any:
        if dim is None:
            return self.shape
        if not isinstance(dim, int) or not -len(self.shape) <= dim < len(self.shape):
            raise DimError(f"size: dim {dim!r} is out of range for a tensor of shape {self.shape}")
        return self.shape[dim]


class ValuesIndices(NamedTuple):
    """What PyTorch's `max(dim)` and `min(dim)` return."""
    values: Any
    indices: Any


DEVICES = ("cpu",)


class Device:
    """PyTorch's `torch.device`, for code that moves tensors and models to one: the CPU
    is the only device here (numpy), so any other is refused by name."""

    def __init__(self, spec: Any = "cpu"):
        kind = str(spec.type if isinstance(spec, Device) else spec).split(":")[0]
        if kind not in DEVICES:
            raise RuntimeError(f"device {str(spec)!r} is not available: tinygrad_lenet runs on the CPU (numpy)")
        self.type = kind

    def __repr__(self) -> str:
        return f"device(type='{self.type}')"

    def __str__(self) -> str:
        return self.type

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (Device, str)) and str(other).split(":")[0] == self.type

    __hash__ = object.__hash__


def is_device(value: Any) -> bool:
    """Whether `value` names a device (a Device, or a string such as "cpu" or "cuda:0")."""
    return isinstance(value, Device) or (isinstance(value, str) and value.split(":")[0] in ("cpu", "cuda", "mps"))


class cuda:  # noqa: N801  (PyTorch's name: `torch.cuda.is_available()`)
    """No GPU here: `cuda.is_available()` is False, so `device("cuda" if ... else "cpu")` picks the CPU."""

    @staticmethod
    def is_available() -> bool:
        """False: there is no GPU support (PyTorch programs ask)."""
        return False

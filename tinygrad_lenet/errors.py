"""The framework's exception classes: each is a `ValueError`, as every bad argument here
is, and also the class PyTorch raises for the same mistake, so both `except ValueError`
and an `except RuntimeError` / `except IndexError` ported from PyTorch code catch it.

- `ShapeError` (ValueError, RuntimeError): shapes or values that do not fit together
  (matmul, reshape, broadcasting, conv and pool sizes, concatenation, a gather index).
- `DimError` (ValueError, IndexError): a dimension or a class index out of range
  (`sum(dim=5)` on a 3-D tensor, a target class >= the number of classes).

Arguments that are wrong on their own (a mode name, a probability outside [0, 1]) stay
plain `ValueError`, types `TypeError`, as in PyTorch.
"""

from __future__ import annotations


class ShapeError(ValueError, RuntimeError):
    """Shapes or values that do not fit together; PyTorch raises RuntimeError here."""


class DimError(ValueError, IndexError):
    """A dimension or index out of range; PyTorch raises IndexError here."""

"""Fusion: where a model runs a fused op (`ops.fused`) in place of two layers.

The one place fusion is decided: `nn.Sequential` asks `fused_pair(first, second)` for
each pair of consecutive children, and when a rule of FUSIONS matches, runs the pair
as one fused op. A rule applies only when nothing could tell the difference: the two
layers are exactly the listed classes with settings the fused op computes, and
neither has forward hooks (which would expect to see the intermediate result). The
engine knows nothing of this; a fused op is an ordinary op with its own gradient.

`with unfused():` turns fusion off in the calling thread, so every layer runs and
records its own ops: for drawing a model's graph layer by layer, or for forward hooks
added later on. Add a rule by writing the fused op (with tests that it equals the
composition, values and gradients of both orders) and one entry here.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator, NamedTuple

from ..autograd import module_scope
from ..tensor import Tensor
from .layers import MaxPool2d, ReLU
from .module import Module


class Rule(NamedTuple):
    """A fusion of two consecutive layers: when it applies, and how the pair runs."""
    applies: Callable[[Module, Module], bool]
    run: Callable[[Module, Module, Tensor], Tensor]


# (first layer's class, second layer's class) -> its rule
FUSIONS: dict[tuple[type, type], Rule] = {
    (ReLU, MaxPool2d): Rule(applies=lambda relu, pool: not pool.padding and not pool.ceil_mode and pool.dilation == 1,
                            run=lambda relu, pool, x: x.relu_max_pool2d(pool.kernel_size, pool.stride)),
}


class _State(threading.local):
    enabled = True


_state = _State()


@contextlib.contextmanager
def unfused() -> Iterator[None]:
    """Run every layer as written inside the block (in this thread)."""
    saved, _state.enabled = _state.enabled, False
    try:
        yield
    finally:
        _state.enabled = saved


def fused_pair(first: Module, second: Module) -> Callable[[Tensor], Tensor] | None:
    """The fused computation of `second(first(x))`, or None when no rule applies."""
    rule = FUSIONS.get((type(first), type(second)))
    if rule is None or not _state.enabled or first.has_forward_hooks() or second.has_forward_hooks():
        return None
    if not rule.applies(first, second):
        return None
    name = second.qualified_name()

    def fused(x: Tensor) -> Tensor:
        if not name:
            return rule.run(first, second, x)
        with module_scope(name):  # recorded under the second layer, whose output it is
            return rule.run(first, second, x)
    return fused

"""Weight averaging, with PyTorch's names (`torch.optim.swa_utils`): `AveragedModel` keeps
a copy of a model whose parameters are an average of the model's along training, updated
by `update_parameters(model)` after each optimizer step; the averaging function decides
which average. An exponential moving average of the weights often tests better than the
weights themselves while the learning rate is still high (see the training guide).

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))
    for x, y in loader:
        ...; optimizer.step()
        ema.update_parameters(model)
    evaluate(ema, ...)                                    # the averaged weights

An averaging function gets the averaged parameter, the model's, and how many updates have
been averaged so far: `avg_fn` per tensor, returning the new average; `multi_avg_fn` for
lists of tensors, writing the averages into the first list. The first update copies the
model's parameters. Buffers (batch norm's running statistics) are copied from the model at
each update unless `use_buffers=True`, which averages them as parameters (PyTorch's
`update_bn` recomputes them instead; here they follow the model's)."""

from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np

from ..nn.module import Module
from ..tensor import Tensor

AvgFn = Callable[[Tensor, Tensor, int], Any]
MultiAvgFn = Callable[[list[Tensor], list[Tensor], int], None]


def get_ema_multi_avg_fn(decay: float = 0.999, warmup: bool = False) -> MultiAvgFn:
    """Exponential moving average: average = decay * average + (1 - decay) * parameter.
    With `warmup`, the n-th update uses min(decay, (1 + n) / (10 + n)) (TensorFlow's
    ExponentialMovingAverage with num_updates), so that early on the average forgets the
    first weights quickly: over a short run it averages about the last tenth of the steps."""
    _check_decay(decay)

    def ema_update(averaged: list[Tensor], current: list[Tensor], num_averaged: int) -> None:
        d = warmup_decay(decay, num_averaged) if warmup else decay
        for a, p in zip(averaged, current):
            a.data *= a.dtype.type(d)
            a.data += a.dtype.type(1 - d) * p.data
    return ema_update


def warmup_decay(decay: float, num_averaged: int) -> float:
    """The decay of `get_ema_multi_avg_fn(decay, warmup=True)` for the update after
    `num_averaged` ones: min(decay, (1 + n) / (10 + n))."""
    return min(decay, (1 + num_averaged) / (10 + num_averaged))


def get_ema_avg_fn(decay: float = 0.999) -> AvgFn:
    """The exponential moving average of `get_ema_multi_avg_fn`, tensor by tensor."""
    _check_decay(decay)
    return lambda averaged, current, num_averaged: averaged * decay + current * (1 - decay)


def get_swa_multi_avg_fn() -> MultiAvgFn:
    """The running mean of every update so far (stochastic weight averaging)."""
    def swa_update(averaged: list[Tensor], current: list[Tensor], num_averaged: int) -> None:
        for a, p in zip(averaged, current):
            a.data += (p.data - a.data) / a.dtype.type(num_averaged + 1)
    return swa_update


def get_swa_avg_fn() -> AvgFn:
    """The running mean of `get_swa_multi_avg_fn`, tensor by tensor."""
    return lambda averaged, current, num_averaged: averaged + (current - averaged) / (num_averaged + 1)


def _check_decay(decay: float) -> None:
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"AveragedModel: decay must be in [0, 1], got {decay}")


class AveragedModel(Module):
    """A copy of `model` (`module`) holding the average of its parameters over the updates
    (`n_averaged` counts them; both are in `state_dict()`). Without an averaging function,
    the running mean (SWA). Calling it runs the copy."""

    def __init__(self, model: Module, device: Any = None, avg_fn: AvgFn | None = None,
                 multi_avg_fn: MultiAvgFn | None = None, use_buffers: bool = False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("AveragedModel: give avg_fn or multi_avg_fn, not both")
        self.module = copy.deepcopy(model)
        self.register_buffer("n_averaged", np.zeros((), dtype=np.int64))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def _tensors(self, model: Module) -> list[Tensor]:
        return list(model.parameters()) + (list(model.buffers()) if self.use_buffers else [])

    def update_parameters(self, model: Module) -> None:
        """Fold `model`'s current parameters into the average (the first call copies them)."""
        averaged, current = self._tensors(self.module), self._tensors(model)
        if [a.shape for a in averaged] != [c.shape for c in current]:
            raise ValueError("AveragedModel.update_parameters: the model's parameters do not match the averaged "
                             f"copy's ({[c.shape for c in current]} against {[a.shape for a in averaged]})")
        n = int(self.n_averaged.data)
        if n == 0:
            for a, c in zip(averaged, current):
                a.data[...] = c.data
        elif self.multi_avg_fn is not None:
            self.multi_avg_fn(averaged, current, n)
        elif self.avg_fn is not None:
            for a, c in zip(averaged, current):
                value = self.avg_fn(a.detach(), c.detach(), n)
                a.data[...] = value.data if isinstance(value, Tensor) else value
        else:
            get_swa_multi_avg_fn()(averaged, current, n)
        if not self.use_buffers:  # the buffers follow the model's
            for a, c in zip(self.module.buffers(), model.buffers()):
                a.data[...] = c.data
        self.n_averaged.data[...] = n + 1

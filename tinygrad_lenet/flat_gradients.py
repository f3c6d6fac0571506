"""The gradients of a model's parameters laid out in one flat buffer per dtype (a float32
model: one), the one layout of data-parallel gradient combining: forked workers write
theirs into shared memory this way (`data_parallel`), MPI ranks allreduce theirs this way
(`distributed`); either way one message or one sum per step, not one per parameter."""

from __future__ import annotations

import numpy as np

from .tensor import Tensor


class FlatGradients:
    """Gather the .grad of `params` (None counts as zeros) into flat buffers, and point
    each .grad at its slice of a flat buffer again."""

    def __init__(self, params: list[Tensor]):
        self.params = list(params)
        self.dtypes = sorted({np.dtype(p.dtype) for p in self.params}, key=str) or [np.dtype(np.float32)]
        self.groups = {dt: [p for p in self.params if np.dtype(p.dtype) == dt] for dt in self.dtypes}
        self.sizes = {dt: sum(p.size for p in group) for dt, group in self.groups.items()}

    def specs(self) -> list[tuple[tuple[int, ...], np.dtype]]:
        """(shape, dtype) of each flat buffer, for allocating them elsewhere (shared memory)."""
        return [((self.sizes[dt],), dt) for dt in self.dtypes]

    def buffers(self, extras: int = 0) -> list[np.ndarray]:
        """New flat buffers; the first has `extras` more elements at its end."""
        return [np.empty(self.sizes[dt] + (extras if i == 0 else 0), dtype=dt) for i, dt in enumerate(self.dtypes)]

    def gather(self, into: list[np.ndarray]) -> None:
        """Each parameter's gradient into its slice of `into`."""
        for dt, flat in zip(self.dtypes, into):
            at = 0
            for p in self.groups[dt]:
                view = flat[at:at + p.size]
                if p.grad is None:
                    view.fill(0)
                else:
                    view[...] = np.asarray(p.grad.data if isinstance(p.grad, Tensor) else p.grad).reshape(-1)
                at += p.size

    def scatter(self, flats: list[np.ndarray]) -> None:
        """Each parameter's .grad <- its slice of `flats` (a view: the buffers become the gradients)."""
        for dt, flat in zip(self.dtypes, flats):
            at = 0
            for p in self.groups[dt]:
                p.grad = flat[at:at + p.size].reshape(p.shape)
                at += p.size

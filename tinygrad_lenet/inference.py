"""Using a trained model: class probabilities for images normalized as in training,
and what chosen layers output along the way."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

import numpy as np

from . import functional as F
from .autograd import no_grad
from .data import normalize_images
from .nn import Module
from .tensor import Tensor
from .training import predict_logits


def probabilities(model: Module, images: np.ndarray, mean_std: tuple[float, float]) -> np.ndarray:
    """Softmax probabilities (N, classes) for uint8 images (N, H, W)."""
    logits = predict_logits(model, normalize_images(images, normalize=mean_std))
    with no_grad():
        return F.softmax(Tensor(logits), axis=1).data


@contextmanager
def capture_outputs(model: Module, names: tuple[str, ...] | list[str]) -> Iterator[dict[str, np.ndarray]]:
    """Record the output arrays of `model`'s submodules `names` (`named_modules()` paths)
    on every call inside the block, with forward hooks removed at the end.

        with capture_outputs(model, ["features.1"]) as outputs:
            model(x)
        outputs["features.1"]  # the first ReLU's output, a numpy array

    Each block records only the calls made in its own thread (or task), so several
    threads may capture from one model at once without a lock.
    """
    modules = dict(model.named_modules())
    missing = [name for name in names if name not in modules]
    if missing:
        raise KeyError(f"capture_outputs: {type(model).__name__} has no submodule {missing[0]!r}; "
                       f"it has: {', '.join(n for n in modules if n)}")
    outputs: dict[str, np.ndarray] = {}
    token = _capturing.set(_capturing.get() + (id(outputs),))

    def hook_for(name: str) -> Any:
        def record(module: Module, args: tuple, result: Any) -> None:
            if id(outputs) in _capturing.get():  # a call from this block's thread
                outputs[name] = result.data if isinstance(result, Tensor) else np.asarray(result)
        return record

    handles = [modules[name].register_forward_hook(hook_for(name)) for name in names]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()
        _capturing.reset(token)


_capturing: ContextVar[tuple[int, ...]] = ContextVar("capture_outputs", default=())  # the open blocks

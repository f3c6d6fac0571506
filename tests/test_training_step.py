"""A whole LeNet-5 training step stays in float32: no op output, gradient,
parameter or optimizer state is float64."""

from __future__ import annotations

import numpy as np
import pytest

from models import get_model
from tinygrad_lenet import OPS, Tensor, manual_seed, optim
from tinygrad_lenet import functional as F


@pytest.fixture
def dtype_log(monkeypatch):
    """Record the dtype of every array each op's forward and backward returns."""
    seen: list[tuple[str, str, np.dtype]] = []
    for name, cls in OPS.items():
        fwd, bwd = cls.forward, cls.backward

        def forward(ctx, *args, _f=fwd, _name=name, **kw):
            out = _f(ctx, *args, **kw)
            seen.append((_name, "forward", out.dtype))
            return out

        def backward(ctx, grad, _b=bwd, _name=name):
            grads = _b(ctx, grad)
            for g in grads if isinstance(grads, tuple) else (grads,):
                if g is not None:
                    seen.append((_name, "backward", g.dtype))
            return grads

        monkeypatch.setattr(cls, "forward", staticmethod(forward))
        monkeypatch.setattr(cls, "backward", staticmethod(backward))
    return seen


@pytest.mark.parametrize("model_name, make_opt", [
    ("lenet5", lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)),
    ("lenet5", lambda p: optim.AdamW(p, lr=1e-3)),
    ("lenet5_1998", lambda p: optim.Adam(p, lr=1e-3, weight_decay=1e-4)),
])
def test_no_float64_array_in_a_training_step(dtype_log, model_name, make_opt):
    manual_seed(0)
    model = get_model(model_name)
    opt = make_opt(model.parameters())
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((8, 1, 28, 28)).astype(np.float32))
    y = Tensor(rng.integers(0, 10, 8))
    for _ in range(2):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    ops_run = {name for name, _, _ in dtype_log}
    assert {"conv2d", "linear", "cross_entropy"} <= ops_run
    assert any(phase == "backward" for _, phase, _ in dtype_log)
    upcast = sorted({(name, phase) for name, phase, dt in dtype_log if dt == np.float64})
    assert not upcast, f"float64 arrays produced by {upcast}"
    for name, p in model.named_parameters():
        assert p.dtype == np.float32 and p.grad.dtype == np.float32, name
    for state in opt.state_dict()["state"].values():
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32, key

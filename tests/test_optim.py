"""Tests for `tinygrad_lenet.optim`: SGD, Adam and AdamW against hand-computed
values and against reference implementations written from PyTorch's documented
algorithms, in-place float32 updates, validation, state_dict resume, the
learning-rate schedules against their closed forms, and a small end-to-end fit."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tinygrad_lenet import Tensor, manual_seed, nn, optim
from tinygrad_lenet import functional as F
from tinygrad_lenet.optim import lr_scheduler


def scalar_param(value: float = 1.0, dtype=np.float64) -> nn.Parameter:
    return nn.Parameter(Tensor(np.array([value]), dtype=dtype))


def run_constant_grad(opt: optim.Optimizer, p: nn.Parameter, grad: float, steps: int) -> list[float]:
    values = []
    for _ in range(steps):
        p.grad = np.array([grad], dtype=p.dtype)
        opt.step()
        values.append(float(p.data[0]))
    return values


# ------------------------------------------------------- hand-computed updates
def test_sgd_hand_computed():
    p = scalar_param()
    assert run_constant_grad(optim.SGD([p], lr=0.1), p, 1.0, 2) == pytest.approx([0.9, 0.8])
    p = scalar_param()  # buf = 1, then 0.9 * 1 + 1 = 1.9
    assert run_constant_grad(optim.SGD([p], lr=0.1, momentum=0.9), p, 1.0, 2) == pytest.approx([0.9, 0.71])
    p = scalar_param()  # steps 1 + 0.9 * 1 = 1.9, then 1 + 0.9 * 1.9 = 2.71
    assert run_constant_grad(optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, 1.0, 2) == pytest.approx(
        [0.81, 0.539])
    p = scalar_param()  # zero gradient: only the decay 0.1 * p acts
    assert run_constant_grad(optim.SGD([p], lr=0.1, weight_decay=0.1), p, 0.0, 2) == pytest.approx([0.99, 0.9801])
    p = scalar_param()  # buf = 1, then 0.9 * 1 + (1 - 0.5) * 1 = 1.4
    assert run_constant_grad(optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5), p, 1.0, 2) == pytest.approx(
        [0.9, 0.76])


def test_adam_and_adamw_hand_computed():
    # With a constant gradient the bias-corrected m / sqrt(v) is exactly sign(g): each step moves lr.
    p = scalar_param()
    assert run_constant_grad(optim.Adam([p], lr=0.1), p, 2.0, 3) == pytest.approx([0.9, 0.8, 0.7], abs=1e-7)
    p = scalar_param()  # decoupled: p * (1 - 0.1 * 0.1) - 0.1
    assert run_constant_grad(optim.AdamW([p], lr=0.1, weight_decay=0.1), p, 2.0, 2) == pytest.approx(
        [0.89, 0.7811], abs=1e-7)


# ------------------------------------------------- references from the docs
def reference_sgd(theta, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    theta, buf = theta.copy(), None
    for g in grads:
        if weight_decay:
            g = g + weight_decay * theta
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        theta = theta - lr * g
    return theta


def reference_adam(theta, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    theta = theta.copy()
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            theta = theta - lr * weight_decay * theta
        elif weight_decay:
            g = g + weight_decay * theta
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


SGD_CONFIGS = [dict(lr=0.1), dict(lr=0.05, momentum=0.9), dict(lr=0.05, momentum=0.9, nesterov=True),
               dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
               dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.1)]
ADAM_CONFIGS = [dict(lr=0.01), dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)]


def _run(opt_cls, config, theta, grads, dtype):
    p = nn.Parameter(Tensor(theta, dtype=dtype))
    opt = opt_cls([p], **config)
    data = p.data
    for g in grads:
        p.grad = g.astype(dtype)
        opt.step()
    assert p.data is data and p.dtype == dtype  # updated in place, dtype kept
    assert all(v.dtype == dtype for s in opt.state.values() for v in s.values() if isinstance(v, np.ndarray))
    return p.data


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("opt_cls, config, reference", [
    *[(optim.SGD, c, lambda th, gs, c=c: reference_sgd(th, gs, **c)) for c in SGD_CONFIGS],
    *[(optim.Adam, c, lambda th, gs, c=c: reference_adam(th, gs, **c)) for c in ADAM_CONFIGS],
    (optim.AdamW, dict(lr=0.01, weight_decay=0.1),
     lambda th, gs: reference_adam(th, gs, lr=0.01, weight_decay=0.1, decoupled=True)),
])
def test_optimizers_match_reference_rules(opt_cls, config, reference, dtype, rtol):
    rng = np.random.default_rng(0)
    theta = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(5)]
    expected = reference(theta.astype(dtype).astype(np.float64), [g.astype(dtype).astype(np.float64) for g in grads])
    np.testing.assert_allclose(_run(opt_cls, config, theta, grads, dtype), expected, rtol=rtol, atol=rtol)


def test_params_without_grad_are_skipped_and_groups_have_own_lr():
    a, b, c = scalar_param(), scalar_param(), scalar_param()
    opt = optim.SGD([{"params": [a, b]}, {"params": [c], "lr": 1.0}], lr=0.1, momentum=0.9)
    a.grad, c.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    assert (a.data[0], b.data[0], c.data[0]) == pytest.approx((0.9, 1.0, 0.0))
    assert b not in opt.state or not opt.state[b]
    opt.zero_grad()
    assert a.grad is None and c.grad is None


def test_step_with_closure_returns_loss():
    p = scalar_param(3.0)
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 9.0 and p.data[0] == pytest.approx(3.0 - 0.25 * 6.0)


# ----------------------------------------------------------------- validation
@pytest.mark.parametrize("make, message", [
    (lambda ps: optim.SGD(ps, lr=-0.1), "invalid learning rate -0.1"),
    (lambda ps: optim.SGD(ps, lr=float("nan")), "invalid learning rate nan"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=float("nan")), "invalid momentum nan"),
    (lambda ps: optim.Adam(ps, weight_decay=float("nan")), "invalid weight_decay nan"),
    (lambda ps: optim.Adam(ps, eps=float("nan")), "invalid eps nan"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=-0.5), "invalid momentum -0.5"),
    (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "nesterov momentum requires momentum > 0"),
    (lambda ps: optim.SGD(ps, lr=0.1, weight_decay=-1), "invalid weight_decay -1"),
    (lambda ps: optim.Adam(ps, betas=(0.9, 1.0)), r"invalid betas \(0.9, 1.0\)"),
    (lambda ps: optim.Adam(ps, betas=(-0.1, 0.9)), "invalid betas"),
    (lambda ps: optim.AdamW(ps, eps=-1e-8), "invalid eps"),
    (lambda ps: optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda ps: optim.SGD(ps + ps, lr=0.1), "appears in more than one place"),
])
def test_invalid_arguments_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make([scalar_param()])


def test_non_parameters_raise_type_error():
    with pytest.raises(TypeError, match="can only optimize Tensors, but parameter 0 is ndarray"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match="dtype int64"):
        optim.SGD([Tensor(np.arange(3))], lr=0.1)


# ------------------------------------------------------------------ resuming
def _make_problem(seed: int):
    manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    rng = np.random.default_rng(0)
    x, y = Tensor(rng.standard_normal((8, 3)).astype(np.float32)), rng.integers(0, 2, 8)
    return model, x, y


def _train(model, opt, x, y, steps):
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: optim.Adam(ps, lr=0.01, weight_decay=1e-3),
    lambda ps: optim.AdamW(ps, lr=0.01),
])
def test_state_dict_resume_gives_identical_steps(make_opt):
    model, x, y = _make_problem(0)
    opt = make_opt(model.parameters())
    _train(model, opt, x, y, 3)
    model_state, opt_state = model.state_dict(), opt.state_dict()
    json.dumps(opt_state["param_groups"])  # everything but the arrays is plain JSON
    _train(model, opt, x, y, 2)

    resumed, _, _ = _make_problem(1)
    resumed.load_state_dict(model_state)
    resumed_opt = make_opt(resumed.parameters())
    resumed_opt.load_state_dict(opt_state)
    _train(resumed, resumed_opt, x, y, 2)
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_state_dict_is_a_copy_and_mismatches_are_reported():
    p = scalar_param()
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    run_constant_grad(opt, p, 1.0, 1)
    state = opt.state_dict()
    assert state["param_groups"][0]["params"] == [0] and set(state["state"]) == {"0"}
    run_constant_grad(opt, p, 1.0, 1)
    assert state["state"]["0"]["momentum_buffer"][0] == 1.0  # not updated by the later step
    two = optim.SGD([scalar_param(), scalar_param()], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="group 0 has 1 parameters in the saved state but 2 here"):
        two.load_state_dict(state)
    big = optim.SGD([nn.Parameter(np.zeros(3))], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"'momentum_buffer' of parameter 0 has shape \(1,\), the parameter has \(3,\)"):
        big.load_state_dict(state)


# ---------------------------------------------------------------- schedulers
def _lrs(scheduler, steps: int) -> list[float]:
    out = scheduler.get_last_lr()
    for _ in range(steps):
        scheduler.step()
        out += scheduler.get_last_lr()
    return out


def _sgd(lr: float = 1.0, momentum: float = 0.0) -> optim.SGD:
    return optim.SGD([scalar_param()], lr=lr, momentum=momentum)


def test_step_and_multistep_lr():
    assert _lrs(lr_scheduler.StepLR(_sgd(), step_size=2, gamma=0.5), 5) == [1, 1, 0.5, 0.5, 0.25, 0.25]
    assert _lrs(lr_scheduler.MultiStepLR(_sgd(), milestones=[5, 2], gamma=0.1), 6) == pytest.approx(
        [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_annealing_closed_form():
    half = math.sqrt(2) / 4
    assert _lrs(lr_scheduler.CosineAnnealingLR(_sgd(), T_max=4), 4) == pytest.approx([1, 0.5 + half, 0.5, 0.5 - half, 0])
    lrs = _lrs(lr_scheduler.CosineAnnealingLR(_sgd(0.5), T_max=10, eta_min=0.1), 10)
    assert lrs == pytest.approx([0.1 + 0.4 * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(11)])


def test_linear_warmup():
    opt = _sgd(0.4)
    assert _lrs(lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=3), 4) == pytest.approx(
        [0.1, 0.2, 0.3, 0.4, 0.4])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.4)


def test_one_cycle_lr_and_momentum():
    opt = _sgd(momentum=0.9)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    lrs, momenta = [sched.get_last_lr()[0]], [opt.param_groups[0]["momentum"]]
    for _ in range(9):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
        momenta.append(opt.param_groups[0]["momentum"])
    # Warm-up to max_lr by step 2 (0.3 * 10 - 1), then cosine down to 0.04 / 1e4 at step 9.
    down = [4e-6 + (1 - 4e-6) * (1 + math.cos(math.pi * (t - 2) / 7)) / 2 for t in range(2, 10)]
    assert lrs == pytest.approx([0.04, 0.52] + down)
    assert momenta[:3] == pytest.approx([0.95, 0.9, 0.85]) and momenta[-1] == pytest.approx(0.95)
    sched.step()  # step 10 is still allowed, as in PyTorch
    with pytest.raises(ValueError, match="tried to step 11 times, but total_steps is 10"):
        sched.step()


def test_one_cycle_variants():
    linear = lr_scheduler.OneCycleLR(_sgd(), max_lr=1.0, total_steps=10, pct_start=0.4, anneal_strategy="linear",
                                     cycle_momentum=False)
    assert _lrs(linear, 1) == pytest.approx([0.04, 0.04 + 0.96 / 3])
    three = lr_scheduler.OneCycleLR(_sgd(), max_lr=1.0, total_steps=10, three_phase=True, cycle_momentum=False)
    lrs = _lrs(three, 9)
    assert (lrs[2], lrs[4], lrs[9]) == pytest.approx((1.0, 0.04, 4e-6))
    adam = optim.Adam([scalar_param()], lr=0.1)
    lr_scheduler.OneCycleLR(adam, max_lr=0.1, epochs=2, steps_per_epoch=5)
    assert adam.param_groups[0]["betas"] == pytest.approx((0.95, 0.999))
    with pytest.raises(ValueError, match="give total_steps, or both epochs and steps_per_epoch"):
        lr_scheduler.OneCycleLR(_sgd(), max_lr=1.0)


def test_scheduler_state_dict_resume():
    opt = _sgd(momentum=0.9)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=20)
    for _ in range(5):
        sched.step()
    state = json.loads(json.dumps(sched.state_dict()))  # JSON-friendly
    opt_state = opt.state_dict()
    saved_group = dict(opt.param_groups[0])
    expected = _lrs(sched, 4)[1:]

    # Optimizer state loaded before the scheduler is built (which resets lr to
    # step 0): loading the scheduler's state puts lr and momentum back.
    opt2 = _sgd(momentum=0.9)
    opt2.load_state_dict(opt_state)
    sched2 = lr_scheduler.OneCycleLR(opt2, max_lr=1.0, total_steps=20)
    assert opt2.param_groups[0]["lr"] != saved_group["lr"]
    sched2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == saved_group["lr"]
    assert opt2.param_groups[0]["momentum"] == saved_group["momentum"]
    assert _lrs(sched2, 4)[1:] == expected
    with pytest.raises(ValueError, match="unknown keys"):
        lr_scheduler.StepLR(_sgd(), step_size=3).load_state_dict(state)


# ---------------------------------------------------------------- end to end
def test_mlp_fits_xor_quadrants():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (256, 2))
    x = x[(np.abs(x) > 0.1).all(axis=1)].astype(np.float32)
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)  # not linearly separable
    manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    opt = optim.Adam(model.parameters(), lr=0.05)
    xt = Tensor(x)
    for _ in range(150):
        opt.zero_grad()
        loss = F.cross_entropy(model(xt), y)
        loss.backward()
        opt.step()
    accuracy = (model(xt).data.argmax(axis=1) == y).mean()
    assert accuracy > 0.97 and loss.item() < 0.15
    assert all(p.dtype == np.float32 for p in model.parameters())


# ---------------------------------------------------------------- state dicts
@pytest.mark.parametrize("make, saved_args, other_args", [
    (optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True), dict(lr=0.5, momentum=0.1)),
    (optim.Adam, dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1), dict(lr=0.5)),
    (optim.AdamW, dict(lr=0.01, betas=(0.85, 0.99), weight_decay=0.3), dict(lr=0.5, betas=(0.5, 0.5))),
])
def test_load_state_dict_restores_hyperparameters_and_state(make, saved_args, other_args):
    """An optimizer built with other settings takes the saved ones, through JSON as a checkpoint stores them."""
    p, q = scalar_param(2.0), scalar_param(2.0)
    saved = make([p], **saved_args)
    for _ in range(3):
        saved.zero_grad()
        (p * p).sum().backward()
        saved.step()
    state = saved.state_dict()
    state["param_groups"] = json.loads(json.dumps(state["param_groups"]))
    q.data[...] = p.data
    other = make([q], **other_args)
    other.load_state_dict(state)
    assert {k: v for k, v in other.param_groups[0].items() if k != "params"} == \
           {k: v for k, v in saved.param_groups[0].items() if k != "params"}
    assert isinstance(other.param_groups[0].get("betas", ()), tuple)
    for opt, t in ((saved, p), (other, q)):
        opt.zero_grad()
        (t * t).sum().backward()
        opt.step()
    assert q.data == p.data


@pytest.mark.parametrize("group, message", [
    ({"lr": "fast"}, "invalid hyperparameters: lr='fast'"),
    ({"momentum": float("nan")}, "momentum=nan"),
    ({"nesterov": 1}, "nesterov=1"),
    ({"params": "0"}, "is not a dict with a 'params' list"),
])
def test_load_state_dict_refuses_hyperparameters_of_the_wrong_kind(group, message):
    opt = optim.SGD([scalar_param()], lr=0.1, momentum=0.9)
    state = opt.state_dict()
    state["param_groups"][0].update(group)
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(state)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.9


def test_scheduler_load_state_dict_refuses_values_of_the_wrong_kind():
    sched = lr_scheduler.StepLR(_sgd(), step_size=3)
    state = sched.state_dict()
    state["last_epoch"] = "7"
    with pytest.raises(ValueError, match="StepLR.load_state_dict: invalid values last_epoch='7'"):
        sched.load_state_dict(state)

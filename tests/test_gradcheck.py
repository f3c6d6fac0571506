"""`gradcheck` itself is checked: every gradient test in the suite relies on it, so it
must fail on each way a backward can be wrong. Real ops get a deliberately broken
backward for the duration of a test (a flipped sign, a single element 10% or 30%
off, a missing input gradient, noise that changes from run to run), and gradcheck
must reject each; then every op of the gradient suite is broken the same ways and
must be rejected on its own test cases. A gradcheck weakened to compare absolute
values, or to a loose tolerance, fails here."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_ops_grad import GRAD_CASES

from tinygrad_lenet import OPS, GradcheckError, Tensor, gradcheck

Grads = tuple[np.ndarray | None, ...]


@contextmanager
def broken_backward(op: str, damage: Callable[[Grads], Grads]) -> Iterator[None]:
    """Op `op` whose backward's results pass through `damage` inside the block."""
    cls = OPS[op]
    original = cls.__dict__["backward"]

    def backward(ctx, grad):
        grads = original.__func__(ctx, grad)
        return damage(grads if isinstance(grads, tuple) else (grads,))

    cls.backward = staticmethod(backward)
    try:
        yield
    finally:
        cls.backward = original


def flip_sign(grads: Grads) -> Grads:
    return tuple(None if g is None else -g for g in grads)


def scale_all(factor: float) -> Callable[[Grads], Grads]:
    return lambda grads: tuple(None if g is None else g * factor for g in grads)


def scale_largest_element(factor: float) -> Callable[[Grads], Grads]:
    """The first input gradient given with only its largest element scaled."""
    def damage(grads: Grads) -> Grads:
        j = next(i for i, g in enumerate(grads) if g is not None)
        if np.size(grads[j]) == 0:
            return grads
        g = np.array(grads[j], dtype=np.float64, copy=True)
        flat = g.reshape(-1)
        flat[int(np.argmax(np.abs(flat)))] *= factor
        return tuple(g if i == j else grads[i] for i in range(len(grads)))
    return damage


def drop_input(index: int) -> Callable[[Grads], Grads]:
    return lambda grads: tuple(None if i == index else g for i, g in enumerate(grads))


NOISE = np.random.default_rng(0)


def jitter(grads: Grads) -> Grads:
    """Relative noise of 1e-9: far inside the tolerances, but never the same twice."""
    return tuple(None if g is None else g * (1 + 1e-9 * NOISE.standard_normal(g.shape)) for g in grads)


# ------------------------------------------------------------------ one op, each damage
X = np.array([[0.3, -1.2, 0.7], [1.5, -0.4, 0.9]])
Y = np.array([[-0.8, 0.6, 1.1], [0.2, -1.3, 0.5]])

DAMAGES = {
    "flipped sign": (flip_sign, "autodiff"),
    "one element 10% off": (scale_largest_element(1.1), "autodiff"),
    "one element 30% off": (scale_largest_element(1.3), "autodiff"),
    "one element 10% low": (scale_largest_element(0.9), "autodiff"),
    "all 25% off": (scale_all(1.25), "autodiff"),
    "second input missing": (drop_input(1), r"input 1 \(shape \(2, 3\)\)"),
    "first input missing": (drop_input(0), r"input 0 \(shape \(2, 3\)\)"),
    "non-deterministic": (jitter, "the backward pass is not deterministic"),
}


@pytest.mark.parametrize("op, fn", [("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
                                    ("div", lambda a, b: a / (b * b + 1.0)), ("maximum", lambda a, b: a.maximum(b))])
@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_binary_op_is_rejected(op, fn, damage):
    assert gradcheck(fn, [X, Y])  # the control: the op as it is passes
    how, message = DAMAGES[damage]
    with broken_backward(op, how):
        with pytest.raises(GradcheckError, match=f"op '{op}'.*{message}"):
            gradcheck(fn, [X, Y])
        assert gradcheck(fn, [X, Y], raise_exception=False) is False
    assert gradcheck(fn, [X, Y])  # and the op is whole again


@pytest.mark.parametrize("op", ["sigmoid", "tanh", "exp", "relu", "log"])
@pytest.mark.parametrize("damage", ["flipped sign", "one element 10% off", "one element 30% off", "all 25% off",
                                    "non-deterministic"])
def test_a_damaged_unary_op_is_rejected(op, damage):
    x = np.abs(X) + 0.1 if op == "log" else X
    fn = getattr(Tensor, op)
    assert gradcheck(fn, [x])
    how, message = DAMAGES[damage]
    with broken_backward(op, how):
        with pytest.raises(GradcheckError, match=f"op '{op}'.*{message}"):
            gradcheck(fn, [x])


def test_a_nan_gradient_is_rejected():
    with broken_backward("mul", lambda grads: tuple(None if g is None else g * np.nan for g in grads)):
        with pytest.raises(GradcheckError, match="autodiff nan"):
            gradcheck(lambda a, b: a * b, [X, Y])


def test_nondet_tol_allows_bounded_noise():
    with broken_backward("mul", jitter):
        assert gradcheck(lambda a, b: a * b, [X, Y], nondet_tol=1e-6)


# ------------------------------------------------------------------ every op of the suite
MUTATIONS = {"flipped sign": flip_sign, "25% off": scale_all(1.25), "largest element 30% off": scale_largest_element(1.3)}


# cast's case is a round trip through two casts, where two flipped signs cancel out.
OP_MUTATIONS = [(op, m) for op in sorted(GRAD_CASES) for m in sorted(MUTATIONS) if (op, m) != ("cast", "flipped sign")]


@pytest.mark.parametrize("op, mutation", OP_MUTATIONS)
@settings(max_examples=4)
@given(data=st.data())
def test_every_op_with_a_damaged_backward_fails_its_own_gradient_test(op, mutation, data):
    """The suite's gradient test of `op` catches the damage whenever it changes the gradient."""
    case = data.draw(GRAD_CASES[op], label=op)
    whole = input_grads(case)
    with broken_backward(op, MUTATIONS[mutation]):
        damaged = input_grads(case)
        # only damage that changes some input's gradient can be seen (e.g. not relu's where all inputs are < 0)
        assume(any(not np.allclose(a, b, rtol=1e-2, atol=1e-3) for a, b in zip(whole, damaged)))
        with pytest.raises(GradcheckError):
            gradcheck(case.fn, case.inputs, **case.tolerances)


def input_grads(case) -> list[np.ndarray]:
    """The inputs' gradients for a fixed random output gradient."""
    ts = case.tensors(np.float64)
    out = case.fn(*ts)
    out.backward(np.random.default_rng(0).standard_normal(out.shape))
    return [np.zeros(t.shape) if t.grad is None else t.grad for t in ts]

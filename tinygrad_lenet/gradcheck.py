"""Compare autodiff gradients with central finite differences over the full Jacobian
(`gradcheck`), and second derivatives the same way (`gradgradcheck`)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .functional import concatenate
from .tensor import Tensor, grad


class GradcheckError(AssertionError):
    """Autodiff and finite differences disagree; the message names the op, input and element."""


def _as_output(out: Any) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    return out


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Any], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, nondet_tol: float = 0.0,
              raise_exception: bool = True) -> bool:
    """Check d fn(*inputs) / d inputs element by element.

    Every input is used in float64. For each output element k the backward pass
    gives row k of the Jacobian; each input element i is nudged by +-eps to give
    column i by central differences. Returns True when all entries agree within
    `atol + rtol * |numeric|`; otherwise raises GradcheckError naming the op that
    produced the output, the input and the worst element (or returns False).
    The backward pass is run twice: results differing by more than `nondet_tol`
    (a non-deterministic backward) fail too.
    """
    arrays = [np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64) for x in inputs]

    def run(*arrs: np.ndarray, grad: bool) -> Tensor:
        ts = [Tensor(a, requires_grad=grad, dtype=np.float64) for a in arrs]
        return _as_output(fn(*ts)), ts

    out, _ = run(*arrays, grad=True)
    if out.dtype != np.float64:
        raise TypeError(f"gradcheck: fn returned dtype {out.dtype}; it must keep float64 inputs in float64")
    op = out.grad_fn.op if out.grad_fn is not None else "<no op>"
    n_out = out.size

    def fail(msg: str) -> bool:
        if raise_exception:
            raise GradcheckError(msg)
        return False

    # Analytic Jacobians, one backward per output element, twice.
    analytic, again = (_jacobians(run, arrays, n_out) for _ in range(2))
    for j, (first, second) in enumerate(zip(analytic, again)):
        diff = np.where(np.isnan(first) & np.isnan(second), 0.0, np.abs(first - second))
        if diff.size and not diff.max() <= nondet_tol:  # NaN on one side only fails too
            k, i = np.unravel_index(int(np.argmax(np.where(np.isnan(diff), np.inf, diff))), diff.shape)
            idx = tuple(int(v) for v in np.unravel_index(i, arrays[j].shape))
            return fail(f"gradcheck failed for op '{op}': the backward pass is not deterministic: input {j} "
                        f"element {idx}, output element {k} gave {first[k, i]:.17g} and then {second[k, i]:.17g} "
                        f"(nondet_tol={nondet_tol})")

    # Numerical Jacobians by central differences.
    numeric = [np.zeros((n_out, a.size)) for a in arrays]
    for j, a in enumerate(arrays):
        flat = a.reshape(-1)
        for i in range(a.size):
            orig = flat[i]
            # copies: an output may be a view of the input (reshape, slicing)
            flat[i] = orig + eps
            plus = run(*arrays, grad=False)[0].data.copy()
            flat[i] = orig - eps
            minus = run(*arrays, grad=False)[0].data.copy()
            flat[i] = orig
            numeric[j][:, i] = (plus.ravel() - minus.ravel()) / (2 * eps)

    for j, (an, nu) in enumerate(zip(analytic, numeric)):
        err = np.abs(an - nu) - (atol + rtol * np.abs(nu))
        if err.size and not err.max() <= 0:  # a NaN anywhere fails
            k, i = np.unravel_index(int(np.argmax(np.where(np.isnan(err), np.inf, err))), err.shape)
            idx = tuple(int(v) for v in np.unravel_index(i, arrays[j].shape))
            return fail(f"gradcheck failed for op '{op}': input {j} (shape {arrays[j].shape}) element {idx}, "
                        f"output element {k}: autodiff {an[k, i]:.6g} vs finite difference {nu[k, i]:.6g} "
                        f"(atol={atol}, rtol={rtol})")
    return True


def _jacobians(run: Callable[..., tuple[Tensor, list[Tensor]]], arrays: list[np.ndarray],
               n_out: int) -> list[np.ndarray]:
    """d out / d input j as an (outputs, input elements) matrix per input, by backward passes."""
    jacobians = [np.zeros((n_out, a.size)) for a in arrays]
    for k in range(n_out):
        out, ts = run(*arrays, grad=True)
        seed = np.zeros(out.size)
        seed[k] = 1.0
        if out.requires_grad:
            out.backward(seed.reshape(out.shape))
        for j, t in enumerate(ts):
            if t.grad is not None:
                jacobians[j][k] = t.grad.ravel()
    return jacobians


def gradgradcheck(fn: Callable[..., Tensor], inputs: Sequence[Any], grad_outputs: Any = None, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3, nondet_tol: float = 0.0, seed: int = 0,
                  raise_exception: bool = True) -> bool:
    """Check the second derivatives of `fn`: the vector-Jacobian product u . J(x) for a
    random cotangent u (or `grad_outputs`) is computed with `grad(create_graph=True)`
    and `gradcheck` compares its autodiff Jacobian, with respect to the inputs and to
    u, with central differences of it, element by element. Float64 throughout; on
    failure the error names the op of `fn`'s output and the worst element."""
    arrays = [np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64) for x in inputs]
    probe = _as_output(fn(*[Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]))
    op = probe.grad_fn.op if probe.grad_fn is not None else "<no op>"
    u = (np.random.default_rng(seed).standard_normal(probe.shape) if grad_outputs is None
         else np.array(grad_outputs.data if isinstance(grad_outputs, Tensor) else grad_outputs, dtype=np.float64))

    def vjp(*tensors: Tensor) -> Tensor:
        *xs, cotangent = tensors
        xs = [x if x.requires_grad else x.detach().requires_grad_() for x in xs]  # the finite-difference runs
        out = fn(*xs)
        grads = grad(out, xs, cotangent, create_graph=True, allow_unused=True) if out.requires_grad else [None] * len(xs)
        parts = [(g if g is not None else Tensor(np.zeros(x.shape))).reshape(-1) for g, x in zip(grads, xs)]
        return parts[0] if len(parts) == 1 else concatenate(parts)

    try:
        return gradcheck(vjp, [*arrays, u], eps=eps, atol=atol, rtol=rtol, nondet_tol=nondet_tol,
                         raise_exception=raise_exception)
    except GradcheckError as e:
        detail = str(e).split(": ", 1)[1]
        raise GradcheckError(f"gradgradcheck failed for op '{op}' (second derivatives; input {len(arrays)} is the "
                             f"cotangent): {detail}") from None

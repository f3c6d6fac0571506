"""The engine beyond first order: `grad` with `torch.autograd.grad`'s semantics,
`backward(create_graph=True)`, gradients of gradients to any order, tensor and
module hooks, and the worked examples (Hessian-vector product of LeNet-5's loss,
a gradient-penalty step, Newton's method)."""

from __future__ import annotations

import numpy as np
import pytest

from models import LeNet5
from tinygrad_lenet import Tensor, grad, manual_seed, nn, no_grad
from tinygrad_lenet import functional as F


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# ------------------------------------------------------------------ grad()
def test_grad_returns_gradients_and_accumulates_nothing():
    x, y = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    gx, gy = grad((x * y).sum(), [x, y])
    np.testing.assert_array_equal(gx.data, [3.0, -1.0])
    np.testing.assert_array_equal(gy.data, [1.0, 2.0])
    assert x.grad is None and y.grad is None and gx.grad_fn is None


def test_unused_inputs_are_an_error_or_none():
    x, z = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match=r"grad: input 1 \(shape \(1,\)\) was not used to compute the outputs"):
        grad((x * 2).sum(), [x, z])
    gx, gz = grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gz is None and gx.item() == 2.0


def test_grad_outputs_and_several_outputs():
    x = leaf([1.0, 2.0, 3.0])
    (g,) = grad([x * x, x.sum()], [x], grad_outputs=[np.array([1.0, 0.0, -1.0]), np.array(2.0)])
    np.testing.assert_array_equal(g.data, [2 * 1 + 2, 0 + 2, -6 + 2])
    with pytest.raises(RuntimeError, match="a gradient can be implied only for a scalar output"):
        grad(x * x, [x])
    with pytest.raises(ValueError, match=r"gradient has shape \(2,\), expected \(3,\)"):
        grad(x * x, [x], grad_outputs=np.ones(2))
    with pytest.raises(RuntimeError, match="input 0 does not require grad"):
        grad((x * 2).sum(), [Tensor([1.0])])


def test_derivatives_of_any_order():
    x = leaf(1.5)
    y = x ** 4
    first = grad(y, x, create_graph=True)[0]
    second = grad(first, x, create_graph=True)[0]
    third = grad(second, x, create_graph=True)[0]
    fourth = grad(third, x)[0]
    assert [first.item(), second.item(), third.item(), fourth.item()] == pytest.approx(
        [4 * 1.5 ** 3, 12 * 1.5 ** 2, 24 * 1.5, 24])


def test_without_create_graph_the_gradient_is_a_constant():
    x = leaf(2.0)
    g = grad(x ** 3, x)[0]
    assert not g.requires_grad and g.grad_fn is None


def test_the_graph_is_freed_unless_retained():
    x = leaf(2.0)
    y = x.exp() * x
    grad(y, x)
    with pytest.raises(RuntimeError, match="a second time"):
        grad(y, x)
    z = x.exp() * x
    grad(z, x, retain_graph=True)
    assert grad(z, x)[0].item() == pytest.approx(3 * np.exp(2.0))


def test_backward_with_create_graph_leaves_differentiable_grads():
    x = leaf([1.0, -2.0])
    (x ** 3).sum().backward(create_graph=True)
    assert isinstance(x.grad, Tensor) and x.grad.requires_grad
    np.testing.assert_allclose(x.grad.data, [3.0, 12.0])
    g = x.grad
    x.grad = None
    (g * g).sum().backward()  # d/dx sum((3x^2)^2) = 36 x^3
    np.testing.assert_allclose(x.grad, [36.0, -288.0])


def test_mixed_partials_are_symmetric():
    x, y = leaf(0.7), leaf(-1.3)
    f = (x * y).sin() if hasattr(Tensor, "sin") else (x * y).tanh() * x
    gx = grad(f, x, create_graph=True)[0]
    gy = grad(f, y, create_graph=True)[0]
    d_xy = grad(gx, y, retain_graph=True)[0]  # gx's graph reaches into f's, which gy needs too
    assert d_xy.item() == pytest.approx(grad(gy, x)[0].item(), rel=1e-12)


# ------------------------------------------------------------------ hooks
def test_tensor_hooks_see_and_may_replace_the_gradient():
    x = leaf([1.0, 2.0])
    h = x * 3
    seen = []
    handle = h.register_hook(lambda g: seen.append(g.data.copy()))
    doubled = h.register_hook(lambda g: g * 2)
    (h * h).sum().backward()
    np.testing.assert_array_equal(seen[0], [6.0, 12.0])
    np.testing.assert_array_equal(x.grad, [36.0, 72.0])  # the replaced gradient flows on
    handle.remove()
    doubled.remove()
    x.grad = None
    h2 = x * 3
    (h2 * h2).sum().backward()
    np.testing.assert_array_equal(x.grad, [18.0, 36.0])
    assert len(seen) == 1
    with pytest.raises(ValueError, match=r"a hook on a tensor of shape \(2,\) returned a gradient of shape \(3,\)"):
        y = x * 1
        y.register_hook(lambda g: np.zeros(3))
        y.sum().backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).register_hook(print)


def test_op_hooks_see_each_rule_in_the_engines_order_and_may_replace_what_it_sends():
    """grad_fn.register_hook(fn(grad_inputs, grad_outputs)), as PyTorch's Node hooks."""
    from tinygrad_lenet.autograd import topological_order
    x, b = leaf(np.ones((2, 3))), leaf([1.0, 2.0, 3.0])
    y = (x * b).tanh().sum()
    ops = [t.grad_fn for t in reversed(topological_order(y)) if t.grad_fn is not None]
    seen = []
    for ctx in ops:
        ctx.register_hook(lambda gi, go, op=ctx.op: seen.append(
            (op, [None if g is None else g.shape for g in gi], go[0].shape)))
    y.backward(retain_graph=True)
    # the engine visits sum, tanh, mul; the broadcast input's gradient arrives summed to its shape
    assert seen == [("sum", [(2, 3)], ()), ("tanh", [(2, 3)], (2, 3)), ("mul", [(2, 3), (3,)], (2, 3))]
    grad_b = b.grad.copy()
    x.grad = b.grad = None
    handle = ops[-1].register_hook(lambda gi, go: (gi[0], gi[1] * 10))  # the mul's gradient for b, scaled
    y.backward(retain_graph=True)
    np.testing.assert_allclose(b.grad, 10 * grad_b)
    handle.remove()
    b.grad = None
    y.backward(retain_graph=True)
    np.testing.assert_allclose(b.grad, grad_b)
    ops[-1].register_hook(lambda gi, go: (gi[0],))
    with pytest.raises(ValueError, match="a hook on op 'mul' returned 1 gradients for 2 inputs"):
        y.backward()


def test_a_hook_on_a_leaf_changes_its_grad():
    x = leaf([1.0, -1.0])
    x.register_hook(lambda g: g.clip(-0.5, 0.5) if hasattr(g, "clip") else Tensor(np.clip(g.data, -0.5, 0.5)))
    (x * 4).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.5, 0.5])


def test_module_forward_hooks_and_pre_hooks():
    manual_seed(0)
    layer = nn.Linear(3, 2)
    calls = []
    pre = layer.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = layer.register_forward_hook(lambda m, args, out: calls.append((m, args[0].data.copy(), out.data.copy())))
    out = layer(Tensor(np.ones((1, 3), np.float32)))
    assert calls[0][0] is layer and not calls[0][1].any()  # the pre-hook zeroed the input
    np.testing.assert_array_equal(out.data, layer.bias.data[None])
    pre.remove()
    replaced = layer.register_forward_hook(lambda m, args, out: out * 0 + 7)
    np.testing.assert_array_equal(layer(Tensor(np.ones((1, 3), np.float32))).data, [[7.0, 7.0]])
    post.remove()
    replaced.remove()
    assert not layer._forward_hooks and not layer._forward_pre_hooks
    with layer.register_forward_hook(lambda m, a, o: calls.append("ctx")):
        layer(Tensor(np.ones((1, 3), np.float32)))
    layer(Tensor(np.ones((1, 3), np.float32)))
    assert calls.count("ctx") == 1


# ------------------------------------------------------------------ worked examples
def lenet5_float64(seed: int = 0) -> LeNet5:
    manual_seed(seed)
    return LeNet5().double()


def test_hessian_vector_product_of_lenet5_equals_the_difference_of_gradients():
    """H v by double backward vs (g(w + eps v) - g(w - eps v)) / 2 eps, over all parameters (float64)."""
    model = lenet5_float64()
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 1, 28, 28)), dtype=np.float64)
    y = np.array([3, 1, 4, 1])
    params = list(model.parameters())
    v = [rng.standard_normal(p.shape) for p in params]

    grads = grad(F.cross_entropy(model(x), y), params, create_graph=True)
    dot = sum((g * Tensor(vi, dtype=np.float64)).sum() for g, vi in zip(grads, v))
    hvp = [h.data for h in grad(dot, params)]

    def gradient_at(shift: float) -> list[np.ndarray]:
        saved = [p.data.copy() for p in params]
        for p, vi in zip(params, v):
            p.data += shift * vi
        gs = [g.data for g in grad(F.cross_entropy(model(x), y), params)]
        for p, s in zip(params, saved):
            p.data[...] = s
        return gs

    eps = 1e-7  # small: ReLU and max-pooling switch a little further out (at 1e-5 some already do)
    plus, minus = gradient_at(eps), gradient_at(-eps)
    for h, a, b, p in zip(hvp, plus, minus, params):
        np.testing.assert_allclose(h, (a - b) / (2 * eps), rtol=1e-5, atol=1e-6, err_msg=p.name)
    assert sum(np.abs(h).sum() for h in hvp) > 1e-3


def test_a_gradient_penalty_step_lowers_the_penalized_loss():
    model = lenet5_float64(1)
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((8, 1, 28, 28)), requires_grad=True, dtype=np.float64)
    y = rng.integers(0, 10, 8)
    params = list(model.parameters())

    def penalized() -> Tensor:
        loss = F.cross_entropy(model(x), y)
        (gx,) = grad(loss, [x], create_graph=True)
        return loss + 10.0 * (gx * gx).sum()

    before = penalized()
    grads = grad(before, params)
    with no_grad():
        for p, g in zip(params, grads):
            p.data -= 0.05 * g.data
    assert penalized().item() < before.item()


def test_newtons_method_fits_a_logistic_regression_in_a_few_steps():
    rng = np.random.default_rng(2)
    features = np.c_[rng.standard_normal((200, 2)), np.ones(200)]
    labels = (features @ np.array([1.5, -2.0, 0.3]) + rng.standard_normal(200) > 0).astype(np.float64)
    w = Tensor(np.zeros(3), requires_grad=True, dtype=np.float64)
    X, t = Tensor(features, dtype=np.float64), Tensor(labels, dtype=np.float64)

    def loss_of(w: Tensor) -> Tensor:
        z = X @ w
        return (z.exp().__add__(1.0).log() - t * z).mean() + 1e-3 * (w * w).sum()

    norms = []
    for _ in range(8):
        (g,) = grad(loss_of(w), [w], create_graph=True)
        hessian = np.stack([grad(g[i], [w], retain_graph=True)[0].data for i in range(3)])
        norms.append(np.linalg.norm(g.data))
        w = Tensor(w.data - np.linalg.solve(hessian, g.data), requires_grad=True, dtype=np.float64)
    assert norms[-1] < 1e-10 < norms[0]
    assert all(b < a for a, b in zip(norms[:5], norms[1:6]))  # quadratic convergence


def test_optimizers_and_clipping_take_the_tensor_grads_of_a_create_graph_backward():
    from tinygrad_lenet import optim
    from tinygrad_lenet.nn.utils import clip_grad_norm_
    w = leaf([3.0, 4.0])
    (w * w).sum().backward(create_graph=True)
    assert isinstance(w.grad, Tensor)
    assert clip_grad_norm_([w], 5.0) == pytest.approx(10.0)  # the gradient (6, 8), scaled to norm 5
    optim.SGD([w], lr=0.1).step()
    np.testing.assert_allclose(w.data, [3.0 - 0.3, 4.0 - 0.4], rtol=1e-6)

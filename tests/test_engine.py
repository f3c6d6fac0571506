"""The recording machinery and the Tensor API: gradient accumulation, graph
release, grad mode, what each recorded op remembers, dtypes and basic properties."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tinygrad_lenet import Tensor, enable_grad, is_grad_enabled, no_grad, tensor
from tinygrad_lenet import functional as F
from tinygrad_lenet.autograd import module_scope


def leaf(values, dtype=None) -> Tensor:
    return Tensor(values, requires_grad=True, dtype=dtype)


# ------------------------------------------------------------------ accumulation
def test_a_tensor_used_twice_accumulates_both_paths() -> None:
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])

    y = leaf([1.0, 2.0])
    (y + y).sum().backward()
    np.testing.assert_array_equal(y.grad, [2.0, 2.0])


def test_diamond_graph_sums_every_path() -> None:
    x = leaf(2.0)
    a = x * 3.0
    b = x.exp()
    (a * b + a).backward()  # d/dx (3x e^x + 3x) = 3e^x + 3x e^x + 3
    assert x.grad == pytest.approx(3 * np.exp(2) + 6 * np.exp(2) + 3, rel=1e-6)


def test_gradients_accumulate_across_backward_calls_until_zero_grad() -> None:
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_a_leaf_keeps_the_fresh_gradient_array_a_rule_made() -> None:
    """No copy where nothing else can see the array (PyTorch's AccumulateGrad does the same)."""
    x = leaf(np.ones((4, 5)))
    y = x * 2.0
    made = []
    y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: made.append(grad_inputs[0].ctypes.data))
    y.backward(np.ones((4, 5), dtype=np.float32))
    assert x.grad.ctypes.data == made[0]
    np.testing.assert_array_equal(x.grad, 2.0)


def test_a_leaf_keeps_a_view_of_a_fresh_array_only_that_view_refers_to() -> None:
    """A rule's fresh gradient reaching a leaf through a transpose or a reshape (a view)
    is kept as it is, not copied; two views of one array reaching two leaves are copied."""
    x = leaf(np.ones((4, 5)))
    y = x.T * 2.0
    made = []
    y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: made.append(grad_inputs[0].ctypes.data))
    y.backward(np.ones((5, 4), dtype=np.float32))
    assert x.grad.base is not None and x.grad.ctypes.data == made[0]
    np.testing.assert_array_equal(x.grad, 2.0)
    a, b = leaf(np.ones(3)), leaf(np.ones(3))
    ((a.reshape(3, 1) + b.reshape(3, 1)) * 2.0).sum().backward()  # one fresh array, seen through two views
    assert not np.shares_memory(a.grad, b.grad)
    a.grad += 1
    np.testing.assert_array_equal(b.grad, 2.0)


def test_a_leaf_never_shares_an_array_someone_else_can_see() -> None:
    given = np.ones(3, dtype=np.float32)
    x = leaf(np.ones(3))
    (x * 1.0).backward(given)                       # Mul's rule gives `given * 1`: fresh
    x.grad += 1
    np.testing.assert_array_equal(given, 1.0)
    z = leaf(np.ones(3))
    z.backward(given)                               # the user's own array reaches the leaf
    assert not np.shares_memory(z.grad, given)
    a, b = leaf(np.ones(3)), leaf(np.ones(3))
    (a + b).backward(given)                         # one array sent to both inputs
    assert not np.shares_memory(a.grad, b.grad)
    a.grad += 1
    np.testing.assert_array_equal(b.grad, 1.0)
    w = leaf(np.ones(3))
    (w.reshape(3, 1) * 1.0).sum().backward()      # a view of another array
    w.grad += 1
    np.testing.assert_array_equal(w.grad, 2.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_has_the_data_shape_and_dtype(dtype) -> None:
    bias = leaf(np.ones(3), dtype=dtype)          # broadcast over a batch
    scale = leaf(np.ones((2, 1)), dtype=dtype)
    x = Tensor(np.arange(6.0).reshape(2, 3), dtype=dtype)
    ((x + bias) * scale).sum().backward()
    assert bias.grad.shape == (3,) and bias.grad.dtype == dtype
    assert scale.grad.shape == (2, 1) and scale.grad.dtype == dtype
    np.testing.assert_array_equal(bias.grad, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(scale.grad, [[6.0], [15.0]])


def test_constants_get_no_grad() -> None:
    x, c = leaf([1.0, 2.0]), Tensor([3.0, 4.0])
    (x * c).sum().backward()
    assert c.grad is None and not c.requires_grad
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_backward_with_an_explicit_grad_for_a_non_scalar() -> None:
    x = leaf([1.0, 2.0, 3.0])
    (x * x).backward(np.array([1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, 12.0])


def test_non_scalar_backward_without_grad_is_a_clear_error() -> None:
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"scalar output, got shape \(2,\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\), expected \(2,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_of_a_tensor_without_a_graph_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).sum().backward()


def test_ten_thousand_op_chain_backprops_without_recursion_error() -> None:
    x = leaf(1.0, dtype=np.float64)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001 ** 10_000, rel=1e-9)
    del y  # freeing the long chain must not overflow the stack either


# ------------------------------------------------------------------ graph release
def test_second_backward_raises_instead_of_doubling() -> None:
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        loss.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])  # untouched by the failed call


def test_retain_graph_allows_a_second_backward_that_accumulates() -> None:
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_released_graph_keeps_its_structure() -> None:
    x = leaf([1.0, 2.0])
    y = x.exp()
    loss = y.sum()
    loss.backward()
    assert loss.grad_fn.op == "sum" and loss.grad_fn.parents[0] is y and y.grad_fn.op == "exp"


def test_a_kept_graph_holds_no_activations_after_backward() -> None:
    """Keeping the loss (as a list of losses would) keeps the graph's structure but
    none of the arrays backward needed: no context holds an array as large as the
    input batch, whatever attribute an op stored it in."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((8, 1, 12, 12)).astype(np.float32))
    w1 = leaf(rng.standard_normal((4, 1, 3, 3)).astype(np.float32))
    w2 = leaf(rng.standard_normal((6, 4, 3, 3)).astype(np.float32))
    h = F.max_pool2d(F.conv2d(x, w1, padding=1).relu(), 2)
    h = F.conv2d(h, w2).relu().reshape(8, -1)
    loss = F.cross_entropy(h[:, :10], rng.integers(0, 10, 8))
    loss.backward()
    contexts, todo = [], [loss.grad_fn]
    while todo:
        ctx = todo.pop()
        contexts.append(ctx)
        todo += [p.grad_fn for p in ctx.parents if p.grad_fn is not None]
    assert {"conv2d", "max_pool2d", "cross_entropy"} <= {c.op for c in contexts}
    for ctx in contexts:
        values = [(name, v) for name, value in vars(ctx).items()
                  for v in (value if isinstance(value, tuple) else (value,))]  # saved arrays are a tuple
        kept = [(name, v.shape) for name, v in values if isinstance(v, np.ndarray) and v.size >= x.size]
        assert not kept, f"{ctx.op} keeps {kept} after backward"


# ------------------------------------------------------------------ grad mode
def test_no_grad_context_records_nothing() -> None:
    x = leaf([1.0, 2.0])
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 2).exp()
    assert is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert (x * 2).requires_grad  # recording resumes afterwards


def test_a_forward_that_records_nothing_is_told_no_gradient_is_wanted() -> None:
    """An op's forward sees needs_input_grad all False when nothing is recorded (no_grad, or
    no input requiring grad), so it keeps nothing for a backward that never comes: exact
    GELU keeps its derivative only when recorded."""
    from tinygrad_lenet.autograd import OPS, Function

    seen = []

    class Spy(Function):
        name = "spy"

        @staticmethod
        def forward(ctx, x):
            seen.append(ctx.needs_input_grad)
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    try:
        x = leaf([1.0, 2.0])
        Spy.apply(x)
        with no_grad():
            Spy.apply(x)
        Spy.apply(Tensor([1.0]))
    finally:
        OPS.pop(Spy.name, None)  # a test's op, unregistered
    assert seen == [(True,), (False,), (False,)]
    with no_grad():
        assert F.gelu(x).grad_fn is None
    out = F.gelu(x)
    assert "slope" in out.grad_fn.values  # kept for the backward only when recorded


def test_no_grad_decorator_records_nothing_and_restores_after_errors() -> None:
    @no_grad()
    def forward(t: Tensor) -> Tensor:
        return t.relu() + 1

    @no_grad()
    def fails() -> None:
        raise KeyError("boom")

    y = forward(leaf([1.0, -1.0]))
    assert not y.requires_grad and y.grad_fn is None
    with pytest.raises(KeyError):
        fails()
    assert is_grad_enabled()


def test_no_grad_restores_the_mode_when_nested_recursive_or_reused() -> None:
    @no_grad()
    def countdown(n: int) -> None:  # the decorator's one instance is entered again inside itself
        assert not is_grad_enabled()
        if n:
            countdown(n - 1)

    countdown(2)
    assert is_grad_enabled()
    ctx = no_grad()
    with ctx:
        with ctx:
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_grad_mode_is_per_thread() -> None:
    entered, leave = threading.Event(), threading.Event()

    def inference() -> None:
        with no_grad():
            entered.set()
            leave.wait(5)

    worker = threading.Thread(target=inference)
    worker.start()
    try:
        assert entered.wait(5)
        assert is_grad_enabled() and (leaf([1.0]) * 2).requires_grad  # this thread still records
    finally:
        leave.set()
        worker.join()


def test_enable_grad_inside_no_grad_records() -> None:
    x = leaf([1.0])
    with no_grad():
        with enable_grad():
            y = x * 2
        z = x * 2
    assert y.requires_grad and y.grad_fn.op == "mul"
    assert not z.requires_grad


def test_detach_cuts_the_graph() -> None:
    x = leaf([1.0, 2.0])
    y = x * 3
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    np.testing.assert_array_equal(d.data, y.data)
    out = (d * x).sum()
    out.backward()
    np.testing.assert_array_equal(x.grad, [3.0, 6.0])  # no path through d


# ------------------------------------------------------------------ what a result remembers
def test_each_result_remembers_op_attrs_and_parents() -> None:
    x = leaf(np.zeros((1, 2, 5, 5)))
    w, b = leaf(np.zeros((3, 2, 3, 3))), leaf(np.zeros(3))
    y = F.conv2d(x, w, b, stride=2, padding=1)
    ctx = y.grad_fn
    assert ctx.op == "conv2d"
    assert ctx.attrs == {"stride": (2, 2), "padding": (1, 1)}
    assert len(ctx.parents) == 3 and all(p is q for p, q in zip(ctx.parents, (x, w, b)))
    p = F.max_pool2d(y, 2)
    assert p.grad_fn.op == "max_pool2d" and p.grad_fn.attrs == {"kernel_size": (2, 2), "stride": (2, 2)}
    s = p.sum(axis=(1, -1), keepdims=True)
    assert s.grad_fn.attrs == {"axis": (1, 3), "keepdims": True}
    assert x.grad_fn is None and x.is_leaf and not y.is_leaf


def test_module_scope_annotates_recorded_ops() -> None:
    x = leaf([1.0])
    with module_scope("features.0"):
        y = x * 2
    assert y.grad_fn.module == "features.0" and (y + 1).grad_fn.module is None


def test_retain_grad_keeps_the_gradient_of_an_intermediate() -> None:
    x = leaf([1.0, 2.0])
    h = (x * 3).retain_grad()
    other = x * 4
    (h * h + other).sum().backward()
    np.testing.assert_array_equal(h.grad, 2 * h.data)
    assert other.grad is None  # intermediates do not keep .grad by default
    np.testing.assert_array_equal(x.grad, 18 * x.data + 4)


# ------------------------------------------------------------------ dtypes
def test_float32_is_the_default_and_float64_is_kept() -> None:
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(np.array([1.0], dtype=np.float64)).dtype == np.float32
    x = Tensor([1.0, 2.0], dtype=np.float64)
    assert x.dtype == np.float64
    assert (x * 2.0 + np.ones(2, dtype=np.float32)).exp().sum().dtype == np.float64
    assert (Tensor([1.0]) * np.float64(2.0)).dtype == np.float32  # constants adopt the tensor's dtype
    assert Tensor([1, 2]).dtype == np.int64 and Tensor([True]).dtype == np.bool_
    assert tensor([1.0], dtype="float64").double().dtype == np.float64


def test_integer_operands_do_not_upcast_float32() -> None:
    x, i = leaf([1.0, 2.0]), Tensor([3, 4])
    for y in (x * i, i * x, i + 0.5, 0.5 - i, x @ i):
        assert y.dtype == np.float32
    (x * i + i * x).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [6.0, 8.0])


def test_integer_tensors_cannot_require_grad() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        Tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="floating-point"):
        Tensor([True]).requires_grad_()
    x = leaf([1.7, -2.2])
    as_int = x.astype(np.int64)  # a cast to int leaves the graph
    assert as_int.dtype == np.int64 and not as_int.requires_grad and as_int.grad_fn is None
    np.testing.assert_array_equal(as_int.data, [1, -2])


def test_cast_between_floats_is_recorded() -> None:
    x = leaf([1.0, 2.0])
    y = x.double()
    assert y.dtype == np.float64 and y.grad_fn.op == "cast"
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
    assert x.float() is x


# ------------------------------------------------------------------ basic properties
def test_item_numpy_shape_ndim_dtype_size_len() -> None:
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and len(x) == 2 and x.dtype == np.float32
    assert isinstance(x.numpy(), np.ndarray) and x.numpy() is x.data
    assert x.sum().item() == 15.0 and isinstance(x.sum().item(), float)
    assert x.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    with pytest.raises(ValueError, match=r"6 elements.*\(2, 3\)"):
        x.item()


def test_truth_value_is_the_single_element_or_an_error() -> None:
    assert bool(Tensor(2.0)) and not bool(Tensor([0.0])) and not (Tensor(1.0) > 2)
    for ambiguous in (Tensor([1.0, 2.0]), Tensor(np.zeros((0,)))):
        with pytest.raises(ValueError, match=rf"truth value of a tensor with {ambiguous.size} elements"):
            bool(ambiguous)


def test_iteration_goes_over_the_first_axis_and_refuses_scalars() -> None:
    assert [t.tolist() for t in Tensor([[1.0, 2.0], [3.0, 4.0]])] == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(Tensor(5.0))


def test_axis_arguments_of_shape_ops_are_checked() -> None:
    x = Tensor(np.ones((2, 3, 4)))
    assert x.flatten(1).shape == (2, 12) and x.flatten(-2, -1).shape == (2, 12) and x.flatten().shape == (24,)
    assert x.transpose(0, -1).shape == (4, 3, 2)
    assert F.concatenate([x, x], axis=-1).shape == (2, 3, 8) and F.stack([x, x], axis=-1).shape == (2, 3, 4, 2)
    for call, message in [(lambda: x.flatten(5), "flatten: axis 5 is out of range"),
                          (lambda: x.flatten(2, 1), r"flatten: start_dim 2 comes after end_dim 1 \(shape \(2, 3, 4\)\)"),
                          (lambda: x.transpose(0, 3), "transpose: axis 3 is out of range"),
                          (lambda: F.concatenate([x, x], axis=3), "concatenate: axis 3 is out of range"),
                          (lambda: F.stack([x, x], axis=4), "stack: axis 4 is out of range"),
                          (lambda: x.pad([(1, 1)] * 4), r"pad: pad_width .* does not fit shape \(2, 3, 4\)")]:
        with pytest.raises(ValueError, match=message):
            call()


def test_expand_keeps_dimensions_given_as_minus_one() -> None:
    x = leaf(np.ones((3, 1)))
    y = x.expand(2, -1, 4)
    assert y.shape == (2, 3, 4)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((3, 1), 8.0))
    with pytest.raises(ValueError, match=r"broadcast_to: cannot broadcast shape \(3, 1\)"):
        x.expand(-1, 3, 1)  # a new leading dimension has no size to keep


def test_integer_tensors_in_float_only_ops_give_floats() -> None:
    i = Tensor([0, 4])
    np.testing.assert_allclose(i.sigmoid().data, [0.5, 1 / (1 + np.exp(-4.0))], rtol=1e-6)
    np.testing.assert_array_equal((i ** 0.5).data, [0.0, 2.0])
    np.testing.assert_array_equal((Tensor([1, 2]) ** -1.0).data, [1.0, 0.5])
    assert (i ** 0.5).dtype == i.sigmoid().dtype == (Tensor([1, 2]) ** -1.0).dtype == (i ** 2.0).dtype == np.float32
    assert (i ** 2).dtype == np.int64 and (i ** 2).tolist() == [0, 16]  # integer powers stay integer (PyTorch's rule)
    with pytest.raises(ValueError, match="pow: integers to negative integer powers are not allowed"):
        Tensor([1, 2]) ** -1  # as PyTorch


def test_data_of_an_unsupported_dtype_is_refused_even_with_a_dtype() -> None:
    for data in (np.array([1 + 2j]), np.array(["1.5"])):
        with pytest.raises(TypeError, match=f"Tensor: cannot convert data of dtype {data.dtype}"):
            Tensor(data, dtype=np.float32)


def test_repr_shows_values_shape_dtype_and_grad_fn() -> None:
    x = leaf(np.array([[0.0, 1.5, -2.0], [3.0, 4.0, 5.0]]))
    assert repr(x) == ("Tensor([[ 0. ,  1.5, -2. ],\n        [ 3. ,  4. ,  5. ]], "
                       "shape=(2, 3), dtype=float32, requires_grad=True)")
    assert repr(x.relu()).endswith("shape=(2, 3), dtype=float32, grad_fn=<relu>)")
    assert repr(Tensor(1.0, dtype=np.float64)) == "Tensor(1., shape=(), dtype=float64)"
    assert str(Tensor([1, 2])) == "Tensor([1, 2], shape=(2,), dtype=int64)"


def test_repr_of_a_large_tensor_is_abbreviated() -> None:
    text = repr(Tensor(np.arange(10_000, dtype=np.float32).reshape(100, 100)))
    assert "..." in text and len(text) < 2000 and text.endswith("shape=(100, 100), dtype=float32)")


def test_format_of_a_one_element_tensor_is_its_number() -> None:
    assert f"{Tensor(0.123456):.3f}" == "0.123"


def test_floats_computed_from_integer_tensors_are_float32():
    pred, y = Tensor(np.array([1, 2, 3])), Tensor(np.array([1, 0, 3]))
    assert (pred == y).astype(np.int64).mean().dtype == np.float32
    assert Tensor(np.arange(4)).exp().dtype == np.float32
    assert (Tensor(np.arange(1, 4)) / Tensor(np.arange(1, 4))).dtype == np.float32
    assert Tensor(np.arange(4)).astype(np.float64).dtype == np.float64  # an explicit cast is kept


def test_nn_ops_as_tensor_methods_match_functional():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3, 6, 6)))
    w = Tensor(rng.standard_normal((4, 3, 3, 3)))
    np.testing.assert_array_equal(x.conv2d(w, stride=2, padding=1).data, F.conv2d(x, w, stride=2, padding=1).data)
    np.testing.assert_array_equal(x.max_pool2d(2).data, F.max_pool2d(x, 2).data)
    np.testing.assert_array_equal(x.avg_pool2d(3, 1).data, F.avg_pool2d(x, 3, 1).data)
    logits, y = Tensor(rng.standard_normal((4, 5))), np.array([0, 4, 2, 1])
    np.testing.assert_array_equal(logits.log_softmax(1).data, F.log_softmax(logits, 1).data)
    np.testing.assert_array_equal(logits.softmax().data, F.softmax(logits).data)
    assert logits.cross_entropy(y).item() == F.cross_entropy(logits, y).item()
    assert logits.log_softmax().nll_loss(y).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert logits.mse_loss(np.zeros((4, 5))).item() == F.mse_loss(logits, np.zeros((4, 5))).item()
    gen = lambda: np.random.default_rng(3)  # noqa: E731
    np.testing.assert_array_equal(logits.dropout(0.5, True, gen()).data, F.dropout(logits, 0.5, True, gen()).data)


def test_module_annotation_is_per_thread():
    import threading

    seen = {}

    def other_thread():
        x = Tensor(np.ones(2), requires_grad=True)
        seen["other"] = (x * 2).grad_fn.module

    x = Tensor(np.ones(2), requires_grad=True)
    with module_scope("features.0"):
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        seen["main"] = (x * 2).grad_fn.module
    assert seen == {"other": None, "main": "features.0"}


def test_pytorch_style_conveniences() -> None:
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.unsqueeze(0).shape == (1, 2, 3) and x.unsqueeze(-1).shape == (2, 3, 1)
    assert x.unsqueeze(1).squeeze().shape == (2, 3) and x.unsqueeze(1).squeeze(1).shape == (2, 3)
    assert x.squeeze(0) is x  # an axis whose size is not 1 stays, as in PyTorch
    with pytest.raises(ValueError, match="unsqueeze: dim 3 is out of range"):
        x.unsqueeze(3)
    x.unsqueeze(0).sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones((2, 3)))
    assert x.numel() == 6 and x.argmax().item() == 5 and x.argmin(axis=1).tolist() == [0, 0]
    z = Tensor.zeros(2, 3)
    assert z.dtype == np.float32 and z.shape == (2, 3) and not z.data.any()
    assert Tensor.ones((4,), dtype=np.float64).dtype == np.float64 and Tensor.arange(3).tolist() == [0, 1, 2]
    from tinygrad_lenet import manual_seed
    manual_seed(3)
    a = Tensor.randn(2, 2)
    manual_seed(3)
    np.testing.assert_array_equal(a.data, Tensor.randn(2, 2).data)  # deterministic under a seed
    assert a.dtype == np.float32


def test_an_op_given_an_array_names_the_op_and_what_it_got() -> None:
    import tinygrad_lenet.functional as F
    with pytest.raises(TypeError, match=r"conv2d: input must be a Tensor, got numpy.ndarray of shape \(2, 1, 4, 4\)"):
        F.conv2d(np.zeros((2, 1, 4, 4), np.float32), Tensor(np.zeros((1, 1, 3, 3))))
    with pytest.raises(TypeError, match="add: input 1 must be a Tensor, got builtins.list"):
        from tinygrad_lenet import ops
        ops.Add.apply(Tensor([1.0]), [1.0])

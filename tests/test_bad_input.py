"""Bad input gets a clear error naming the op and the shapes or values involved;
extreme but valid input (huge logits) gives finite, correct results without
numpy warnings (warnings are errors in this suite)."""

from __future__ import annotations

import operator
import re

import numpy as np
import pytest

from tinygrad_lenet import Tensor
from tinygrad_lenet import functional as F


def leaf(values, dtype=None) -> Tensor:
    return Tensor(values, requires_grad=True, dtype=dtype)


BINARY = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
    "maximum": lambda a, b: a.maximum(b), "minimum": lambda a, b: a.minimum(b),
}


# ------------------------------------------------------------------ shapes
@pytest.mark.parametrize("op", sorted(BINARY))
def test_broadcast_mismatch_names_op_and_shapes(op: str) -> None:
    with pytest.raises(ValueError, match=rf"{op}: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        BINARY[op](Tensor(np.ones((2, 3))), Tensor(np.ones(4)))
    with pytest.raises(ValueError, match=rf"{op}: shapes \(2, 3\) and \(2,\)"):
        BINARY[op](Tensor(np.ones((2, 3))), np.ones(2))


@pytest.mark.parametrize("a_shape, b_shape, detail", [
    ((2, 3), (4, 5), r"do not align \(3 != 4\)"),
    ((3,), (2,), r"do not align \(3 != 2\)"),
    ((2, 2, 3), (3, 3, 1), "batch dimensions"),
    ((), (3,), "scalars are not allowed"),
])
def test_matmul_mismatch_names_shapes(a_shape, b_shape, detail) -> None:
    with pytest.raises(ValueError) as err:
        Tensor(np.ones(a_shape)) @ Tensor(np.ones(b_shape))
    msg = str(err.value)
    assert msg.startswith("matmul:") and str(a_shape) in msg and str(b_shape) in msg
    assert re.search(detail, msg), msg


def test_conv2d_channel_mismatch_names_shapes() -> None:
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels but weight \(4, 2, 3, 3\) expects 2 "
                                         r"\(input shape \(1, 3, 8, 8\)\)"):
        F.conv2d(Tensor(np.ones((1, 3, 8, 8))), Tensor(np.ones((4, 2, 3, 3))))


def test_conv2d_kernel_bigger_than_padded_input_names_shapes() -> None:
    with pytest.raises(ValueError, match=r"conv2d: kernel \(5, 5\) is bigger than the padded input \(4, 4\) "
                                         r"\(input shape \(1, 1, 2, 2\), padding \(1, 1\)\)"):
        F.conv2d(Tensor(np.ones((1, 1, 2, 2))), Tensor(np.ones((1, 1, 5, 5))), padding=1)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, message", [
    ((1, 8, 8), (1, 1, 3, 3), {}, r"conv2d: input must be 4-D \(N, C, H, W\), got shape \(1, 8, 8\)"),
    ((1, 1, 8, 8), (1, 3, 3), {}, r"conv2d: weight must be 4-D .* got shape \(1, 3, 3\)"),
    ((1, 1, 8, 8), (2, 1, 3, 3), {"bias": (3,)}, r"conv2d: bias shape \(3,\) does not match 2 output channels"),
    ((1, 1, 8, 8), (1, 1, 3, 3), {"stride": 0}, r"conv2d: stride \(0, 0\) must be >= 1"),
    ((1, 1, 8, 8), (1, 1, 3, 3), {"stride": (1, 2, 3)}, r"conv2d: stride must be an int or a pair"),
    ((1, 1, 8, 8), (1, 1, 0, 0), {}, r"conv2d: the weight \(1, 1, 0, 0\) and the input's channels 1 must not be empty"),
    ((1, 0, 8, 8), (2, 0, 3, 3), {}, r"conv2d: the weight \(2, 0, 3, 3\) and the input's channels 0 must not be empty"),
    ((1, 1, 8, 8), (0, 1, 3, 3), {}, r"conv2d: the weight \(0, 1, 3, 3\)"),
])
def test_conv2d_other_bad_arguments(x_shape, w_shape, kwargs, message) -> None:
    bias = Tensor(np.ones(kwargs.pop("bias"))) if "bias" in kwargs else None
    with pytest.raises(ValueError, match=message):
        F.conv2d(Tensor(np.ones(x_shape)), Tensor(np.ones(w_shape)), bias, **kwargs)


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
def test_pool_kernel_bigger_than_input_names_shapes(pool) -> None:
    name = pool.__name__
    with pytest.raises(ValueError, match=rf"{name}: kernel \(3, 3\) is bigger than the input \(2, 5\) "
                                         rf"\(shape \(1, 1, 2, 5\)\)"):
        pool(Tensor(np.ones((1, 1, 2, 5))), 3)
    with pytest.raises(ValueError, match=rf"{name}: input must be 4-D"):
        pool(Tensor(np.ones((2, 5))), 2)


def test_shape_op_errors_name_op_and_shapes() -> None:
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"reshape: cannot reshape tensor of shape \(2, 3\) into \(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match=r"permute: axes \(0, 0\) are not a permutation for shape \(2, 3\)"):
        x.permute(0, 0)
    with pytest.raises(ValueError, match=r"broadcast_to: cannot broadcast shape \(2, 3\) to \(3, 3\)"):
        x.broadcast_to((3, 3))
    with pytest.raises(ValueError, match=r"concatenate: shapes \[\(2, 3\), \(2, 4\)\] do not match outside axis 0"):
        F.concatenate([x, Tensor(np.ones((2, 4)))])
    with pytest.raises(ValueError, match=r"stack: shapes \[\(2, 3\), \(3, 2\)\] do not match"):
        F.stack([x, Tensor(np.ones((3, 2)))])
    with pytest.raises(IndexError, match=r"getitem: .* \(tensor shape \(2, 3\)\)"):
        x[5]
    with pytest.raises(ValueError, match="sum: axis 2 is out of range for a tensor with 2 dimensions"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match="log_softmax: axis -3 is out of range"):
        x.log_softmax(-3)
    with pytest.raises(ValueError, match=r"mse_loss: input shape \(2, 3\) and target shape \(3,\) differ"):
        F.mse_loss(x, np.ones(3))


# ------------------------------------------------------------------ class targets
@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
def test_class_targets_out_of_range_are_refused(loss) -> None:
    name = loss.__name__
    x = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=rf"{name}: target values must lie in \[0, 3\), got min 0 max 3"):
        loss(x, [0, 3])
    with pytest.raises(ValueError, match=rf"{name}: target values must lie in \[0, 3\), got min -1 max 1"):
        loss(x, np.array([-1, 1]))
    with pytest.raises(ValueError, match=rf"{name}: targets of shape \(3,\) do not match input of shape \(2, 3\)"):
        loss(x, [0, 1, 2])
    with pytest.raises(TypeError, match=rf"{name}: targets must be integer class indices, got dtype float32"):
        loss(x, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=rf"{name}: input must be 2-D"):
        loss(Tensor(np.zeros(3)), [0])


# ------------------------------------------------------------------ huge logits
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_of_huge_logits_is_finite_and_exact(dtype) -> None:
    x = leaf([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    out = x.log_softmax(axis=1)
    np.testing.assert_allclose(out.data, [[0.0, -2e4, -1e4], [-np.log(3)] * 3], rtol=1e-6)
    g = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    out.backward(g)
    # d/dx sum(g * log_softmax(x)) = g - softmax(x) * sum(g)
    np.testing.assert_allclose(x.grad, [[0.0, 0.0, 0.0], [-1 / 3, 2 / 3, -1 / 3]], atol=1e-6)
    assert np.isfinite(F.softmax(x).data).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_of_huge_logits_is_finite_and_exact(dtype) -> None:
    x = leaf([[1e4, -1e4, 0.0], [2e4, 2e4, -2e4]], dtype=dtype)
    loss = F.cross_entropy(x, [1, 0])
    # sample 0: -log_softmax = 2e4; sample 1: two tied maxima, -log(1/2)
    np.testing.assert_allclose(loss.item(), (2e4 + np.log(2)) / 2, rtol=1e-6)
    loss.backward()
    np.testing.assert_allclose(x.grad, [[0.5, -0.5, 0.0], [-0.25, 0.25, 0.0]], atol=1e-6)
    assert x.grad.dtype == dtype
    np.testing.assert_allclose(x.logsumexp(axis=1).data, [1e4, 2e4 + np.log(2)], rtol=1e-6)


# ------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("data, dtype", [
    (np.array([1 + 2j]), None), ([1.0], np.complex64), (np.array([object()]), None), ([1.0], object),
    (np.array([1.0], dtype=np.float16), np.float16), ([1.0], "float16"), (np.array(["a", "b"]), None),
    (["a"], str), ([1.0], "not a dtype"),
])
def test_unsupported_dtypes_are_refused(data, dtype) -> None:
    with pytest.raises(TypeError, match="Tensor: unsupported dtype"):
        Tensor(data, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.complex128, object, np.str_])
def test_astype_to_an_unsupported_dtype_is_refused(dtype) -> None:
    with pytest.raises(TypeError, match="unsupported dtype"):
        Tensor([1.0]).astype(dtype)


@pytest.mark.parametrize("operand", [1j, "a", np.array([1 + 1j, 2]), np.array([None, 1])])
def test_unsupported_operands_are_refused(operand) -> None:
    x = Tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="mul: unsupported operand of dtype"):
        x * operand
    with pytest.raises(TypeError, match="add: unsupported operand of dtype"):
        operand + x


MIXED = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
    "matmul": operator.matmul, "maximum": lambda a, b: a.maximum(b), "minimum": lambda a, b: a.minimum(b),
    "mse_loss": F.mse_loss, "concatenate": lambda a, b: F.concatenate([a, b]),
    "stack": lambda a, b: F.stack([a, b]),
}


@pytest.mark.parametrize("op", sorted(MIXED))
@pytest.mark.parametrize("first", [np.float32, np.float64])
def test_mixing_float32_and_float64_names_the_op(op: str, first) -> None:
    second = np.float64 if first == np.float32 else np.float32
    a, b = Tensor(np.ones(2), dtype=first), Tensor(np.ones(2), dtype=second)
    with pytest.raises(TypeError, match=rf"^{op}: dtype mismatch") as err:
        MIXED[op](a, b)
    assert "float32" in str(err.value) and "float64" in str(err.value)


def test_conv2d_mixing_float_dtypes_names_the_op() -> None:
    x, w = Tensor(np.ones((1, 1, 3, 3))), Tensor(np.ones((1, 1, 2, 2)), dtype=np.float64)
    with pytest.raises(TypeError, match=r"conv2d: dtype mismatch \['float32', 'float64'\]"):
        F.conv2d(x, w)
    with pytest.raises(TypeError, match="conv2d: dtype mismatch"):
        F.conv2d(x, Tensor(np.ones((1, 1, 2, 2))), Tensor([0.0], dtype=np.float64))


def test_pow_with_a_tensor_exponent_names_shapes_that_do_not_broadcast() -> None:
    with pytest.raises(ValueError, match=r"pow_tensor: shapes \(2,\) and \(3,\) cannot be broadcast together"):
        Tensor([1.0, 2.0]) ** Tensor([1.0, 2.0, 3.0])


def test_dropout_probability_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\], got 1.5"):
        F.dropout(Tensor([1.0]), 1.5)


def test_dropout_of_an_integer_tensor_is_refused() -> None:
    with pytest.raises(TypeError, match=r"dropout: needs a floating-point tensor, got dtype int64 \(shape \(4,\)\)"):
        F.dropout(Tensor([1, 2, 3, 4]), 0.3)


def test_losses_of_integer_inputs_are_float32_not_truncated() -> None:
    assert F.cross_entropy(Tensor([[1, 2]]), [0]).item() == pytest.approx(np.log1p(np.e))
    assert F.mse_loss(Tensor([1, 2]), Tensor([2, 2])).item() == 0.5
    assert F.nll_loss(Tensor([[-1, -2]]), [1]).item() == 2.0
    for loss in (F.cross_entropy(Tensor([[1, 2]]), [0]), F.mse_loss(Tensor([1, 2]), Tensor([2, 2])),
                 F.nll_loss(Tensor([[-1, -2]]), [1])):
        assert loss.dtype == np.float32

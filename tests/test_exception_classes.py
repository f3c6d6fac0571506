"""The exception convention, met the way ported PyTorch code meets it: the same mistake,
written the same way, raises an exception that PyTorch's `except` clause catches, and
that is a ValueError as every bad argument here is (tinygrad_lenet/errors.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import require_module

import tinygrad_lenet as lib
import tinygrad_lenet.nn.functional as F
from tinygrad_lenet import DimError, ShapeError

# (the mistake as PyTorch code writes it, the class PyTorch raises)
CASES = [
    ("x.sum(dim=5)", IndexError), ("x.sum(dim=(0, 0))", RuntimeError), ("x.mean(dim=-4)", IndexError),
    ("x.reshape(7)", RuntimeError), ("x.view(5, -1)", RuntimeError), ("x.reshape(-1, -1)", RuntimeError),
    ("x @ y", RuntimeError), ("x.permute(0, 0, 1)", RuntimeError), ("x.permute(0, 1)", RuntimeError),
    ("x.squeeze(4)", IndexError), ("x.unsqueeze(5)", IndexError), ("x.cumsum(3)", IndexError),
    ("x.cumprod(3)", IndexError), ("x.flip(3)", IndexError), ("x.transpose(0, 5)", IndexError),
    ("x.gather(1, index_too_big)", RuntimeError), ("x.gather(1, index_2d)", RuntimeError), ("x.clamp()", RuntimeError),
    ("x.roll((1, 2), (0,))", RuntimeError), ("x.softmax(dim=3)", IndexError), ("x.log_softmax(dim=3)", IndexError),
    ("x.max(dim=3)", IndexError), ("x.min(dim=3)", IndexError), ("x.argmax(dim=3)", IndexError),
    ("x.topk(10)", RuntimeError), ("x.split([1, 5])", RuntimeError), ("x + z", RuntimeError),
    ("x.expand(3, 3, 4)", RuntimeError), ("x.item()", RuntimeError), ("bool(x)", RuntimeError), ("x.t()", RuntimeError),
    ("x.flatten(2, 1)", RuntimeError), ("x.repeat(2)", RuntimeError), ("F.conv2d(img, w_wrong_channels)", RuntimeError),
    ("F.conv2d(img, w_too_big)", RuntimeError), ("F.linear(y, w_linear)", RuntimeError),
    ("F.max_pool2d(img, 9)", RuntimeError), ("F.avg_pool2d(img, 9)", RuntimeError),
    ("F.cross_entropy(logits, target_too_big)", IndexError), ("F.nll_loss(logits, target_too_big)", IndexError),
    ("F.cross_entropy(logits, target_short)", ValueError), ("lib.cat([x, y])", RuntimeError),
    ("lib.stack([x, x2])", RuntimeError), ("lib.cat([])", ValueError), ("x[5]", IndexError), ("x[:, 7]", IndexError),
    ("lib.flatten(x, 4)", IndexError), ("x.chunk(2, dim=4)", IndexError), ("x.std(dim=4)", IndexError),
    ("x.var(dim=(1, 1))", RuntimeError), ("x.norm(dim=4)", IndexError), ("x.logsumexp(dim=4)", IndexError),
    ("x.sort(dim=3)", IndexError), ("x.argsort(dim=3)", IndexError), ("x.masked_fill(mask_wrong, 0.0)", RuntimeError),
    ("x.scatter_add(1, index_too_big, x)", RuntimeError), ("x.size(3)", IndexError), ("x.amax(dim=3)", IndexError),
    ("x.prod(dim=3)", IndexError), ("x.all(dim=3)", IndexError), ("x.cummax(3)", IndexError),
    ("F.pad(x, (1,))", RuntimeError), ("F.one_hot(labels, 3)", RuntimeError), ("xi ** -2", RuntimeError),
    ("F.mse_loss(x, x2)", RuntimeError), ("F.layer_norm(x, (5,))", RuntimeError), ("x.view_as(y)", RuntimeError),
    ("x.unflatten(1, (2, 2))", RuntimeError), ("lib.einsum('ij,jk->ik', y, y)", RuntimeError),
    ("lib.einsum('ij', x)", RuntimeError), ("lib.einsum('i->j', xf)", RuntimeError),
    ("F.batch_norm(img, running, running)", RuntimeError),
]


def names(torch, functional) -> dict:
    """The same tensors in either library, for the cases to run against."""
    rng = np.random.default_rng(0)

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a))

    def normal(*shape):
        return t(rng.standard_normal(shape).astype(np.float32))

    return dict(lib=torch, F=functional, x=normal(2, 3, 4), xf=normal(3), x2=normal(2, 3, 5), y=normal(5, 6), z=normal(2, 5, 4),
                xi=t(np.arange(4)), index_too_big=t(np.full((2, 3, 4), 7)), index_2d=t(np.zeros((2, 3), np.int64)),
                img=normal(1, 2, 6, 6), w_wrong_channels=normal(3, 4, 3, 3), w_too_big=normal(3, 2, 9, 9),
                w_linear=normal(3, 5), logits=normal(4, 3), target_too_big=t(np.array([0, 1, 2, 3])),
                target_short=t(np.array([0, 1])), mask_wrong=t(np.zeros(5, bool)), labels=t(np.array([0, 5])),
                running=t(np.ones(3, np.float32)))


def raised(code: str, namespace: dict) -> BaseException | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eval(code, namespace)
    except Exception as error:  # the class is what is checked
        return error
    return None


@pytest.mark.parametrize("code, pytorch_class", CASES, ids=[c for c, _ in CASES])
def test_pytorch_s_except_clause_catches_it_and_so_does_value_error(code, pytorch_class):
    error = raised(code, names(lib, F))
    assert error is not None, f"{code} raised nothing"
    assert isinstance(error, pytorch_class) and isinstance(error, ValueError), f"{code}: {type(error).__mro__}"
    message = str(error)
    assert "\n" not in message and len(message) < 300, message


@pytest.mark.parametrize("code, pytorch_class", CASES, ids=[c for c, _ in CASES])
def test_the_table_holds_pytorch_s_classes(code, pytorch_class):
    """The expected classes above are what PyTorch raises, read from PyTorch itself."""
    torch = require_module("torch", "pip install -e '.[bench]'")
    import torch.nn.functional as torch_functional
    error = raised(code, names(torch, torch_functional))
    assert error is not None and type(error) is pytorch_class, f"{code}: PyTorch raised {type(error)}: {error}"


def test_the_classes_are_value_errors_and_pytorch_s():
    assert issubclass(ShapeError, ValueError) and issubclass(ShapeError, RuntimeError)
    assert issubclass(DimError, ValueError) and issubclass(DimError, IndexError)
    with pytest.raises(RuntimeError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not align"):
        lib.zeros(2, 3) @ lib.zeros(4, 5)


def test_roll_and_unflatten_match_pytorch():
    torch = require_module("torch", "pip install -e '.[bench]'")
    a = np.arange(24.0).reshape(2, 3, 4)
    ours, theirs = lib.from_numpy(a), torch.from_numpy(a)
    for shifts, dims in [(1, 0), ((1, -1), (0, 2)), (2, None), ((1, 1), (1, 1)), (-5, -1)]:
        np.testing.assert_array_equal(ours.roll(shifts, dims).data, theirs.roll(shifts, dims).numpy())
    np.testing.assert_array_equal(ours.roll(1, axis=1).data, np.roll(a, 1, axis=1))
    assert ours.unflatten(2, (2, -1)).shape == tuple(theirs.unflatten(2, (2, -1)).shape) == (2, 3, 2, 2)

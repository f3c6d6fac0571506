"""PyTorch's spellings work as a PyTorch user writes them: `dim=`/`keepdim=` beside
`axis=`/`keepdims=`, `size()`, `max(dim)` returning (values, indices), and F.pad's
flat last-axis-first tuple. Values are checked against PyTorch when it is installed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import require_module

from tinygrad_lenet import Tensor, manual_seed, nn, no_grad, optim
from tinygrad_lenet import functional as F

X = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)


def torch_or_skip():
    return require_module("torch", "pip install -e '.[bench]'")


@pytest.mark.parametrize("method", ["sum", "mean", "amax", "amin", "logsumexp", "prod", "var", "std", "norm",
                                    "all", "any", "argmax", "argmin"])
@pytest.mark.parametrize("keep", [False, True])
def test_dim_and_keepdim_mean_axis_and_keepdims(method, keep):
    t = Tensor(X)
    torch_style = getattr(t, method)(dim=1, keepdim=keep).data
    numpy_style = getattr(t, method)(axis=1, keepdims=keep).data
    np.testing.assert_array_equal(torch_style, numpy_style)


def test_dim_on_the_other_axis_taking_ops():
    t = Tensor(X)
    for name, args in [("softmax", ()), ("log_softmax", ()), ("cumsum", ())]:
        np.testing.assert_array_equal(getattr(t, name)(*args, dim=2).data, getattr(t, name)(*args, axis=2).data)
    np.testing.assert_array_equal(F.log_softmax(t, dim=1).data, F.log_softmax(t, axis=1).data)
    np.testing.assert_array_equal(F.concatenate([t, t], dim=2).data, F.concatenate([t, t], axis=2).data)
    assert [c.shape for c in t.chunk(2, dim=1)] == [(3, 2, 5), (3, 2, 5)]
    with pytest.raises(TypeError, match="sum: got both dim= and axis="):
        t.sum(dim=0, axis=0)


def test_size_is_the_count_and_called_the_shape():
    t = Tensor(X)
    assert t.size == 60 and isinstance(t.size, int) and t.size + 0 == 60  # numpy's meaning
    assert t.size() == (3, 4, 5) and t.size(0) == 3 and t.size(-1) == 5  # PyTorch's
    assert t.numel() == 60
    with pytest.raises(IndexError, match=r"size: dim 3 is out of range for a tensor of shape \(3, 4, 5\)"):
        t.size(3)


@pytest.mark.parametrize("batch", [2, 4, 5])
def test_max_with_a_dim_gives_values_and_indices_so_accuracy_is_right(batch):
    """`_, pred = out.max(1)`: with values alone, batch 2 silently unpacked rows."""
    rng = np.random.default_rng(batch)
    logits = Tensor(rng.standard_normal((batch, 10)).astype(np.float32))
    labels = np.argmax(logits.data, axis=1)
    _, pred = logits.max(1)
    assert pred.shape == (batch,) and (pred.data == labels).mean() == 1.0
    values, indices = logits.max(dim=1, keepdim=True)
    assert values.shape == indices.shape == (batch, 1)
    assert logits.max(1).values.shape == (batch,) and logits.min(dim=0).indices.shape == (10,)
    assert logits.max(axis=1).shape == (batch,)  # numpy's form: the values alone
    assert logits.max().shape == ()


def test_max_and_min_with_a_dim_match_pytorch_values_indices_and_gradients():
    torch = torch_or_skip()
    x = np.random.default_rng(3).standard_normal((4, 6))
    for op in ("max", "min"):
        t = Tensor(x, requires_grad=True, dtype=np.float64)
        values, indices = getattr(t, op)(1)
        values.sum().backward()
        tt = torch.tensor(x, requires_grad=True)
        tv, ti = getattr(tt, op)(1)
        tv.sum().backward()
        np.testing.assert_allclose(values.data, tv.detach().numpy())
        np.testing.assert_array_equal(indices.data, ti.numpy())
        np.testing.assert_allclose(t.grad, tt.grad.numpy())


@pytest.mark.parametrize("pad, mode", [((1, 1), "constant"), ((1, 2, 0, 1), "constant"), ((1, 1, 2, 0), "reflect"),
                                       ((1, 2, 0, 1), "replicate"), ((2, 1, 1, 3), "circular"),
                                       ((-1, 2, 0, -2), "constant"), ((0, 0, 1, 1, 2, 0), "constant")])
def test_functional_pad_takes_pytorch_s_tuple(pad, mode):
    torch = torch_or_skip()
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5))
    kwargs = {"value": 0.5} if mode == "constant" else {}
    t = Tensor(x, requires_grad=True, dtype=np.float64)
    out = F.pad(t, pad, mode=mode, **kwargs)
    tt = torch.tensor(x, requires_grad=True)
    expected = torch.nn.functional.pad(tt, pad, mode=mode, **kwargs)
    np.testing.assert_allclose(out.data, expected.detach().numpy())
    weights = np.random.default_rng(2).standard_normal(out.shape)
    (out * Tensor(weights, dtype=np.float64)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(t.grad, tt.grad.numpy())


def test_functional_pad_still_takes_numpy_pairs_and_refuses_odd_tuples():
    t = Tensor(np.ones((2, 3), np.float32))
    assert F.pad(t, ((1, 0), (0, 2))).shape == (3, 5)
    with pytest.raises(ValueError, match=r"pad: expected an even number of entries, at most 2 per axis \(4 for "
                                         r"shape \(2, 3\)\), got \(1, 2, 3\)"):
        F.pad(t, (1, 2, 3))


def test_a_pytorch_style_training_loop_runs_as_written():
    """The lines of a PyTorch MNIST script that use these spellings, unchanged."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((16, 1, 12, 12)).astype(np.float32))
    y = Tensor((x.data.mean(axis=(1, 2, 3)) > 0).astype(np.int64))
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 5 * 5, 2))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(30):
        opt.zero_grad()
        output = F.log_softmax(model(x), dim=1)
        loss = F.nll_loss(output, y)
        loss.backward()
        opt.step()
    with no_grad():
        output = F.log_softmax(model(x), dim=1)
        pred = output.argmax(dim=1, keepdim=True)
        correct = int((pred.data.reshape(-1) == y.data).sum())
        _, top = output.max(1)
    assert x.size(0) == 16 and correct == int((top.data == y.data).sum())
    assert correct >= 14, correct


@pytest.mark.slow
def test_pytorch_s_mnist_example_runs_with_its_imports_changed(real_mnist_dir, capsys):
    """examples/pytorch_mnist.py: PyTorch's own MNIST program with only its imports changed.
    One epoch on 10,000 training images and 2,000 test images (the full run is 14 epochs on 60,000)."""
    import runpy
    from pathlib import Path
    example = runpy.run_path(str(Path(__file__).resolve().parents[1] / "examples" / "pytorch_mnist.py"))
    accuracy = example["main"](["--epochs", "1", "--train-subset", "10000", "--test-subset", "2000",
                                "--log-interval", "50"])
    out = capsys.readouterr().out
    assert "Train Epoch: 1 [0/10000 (0%)]" in out and "Test set: Average loss:" in out
    assert accuracy >= 0.92, out  # 94.05% here (seed 1); chance is 10%


def steps_like_pytorch(name: str, atol: float, **settings) -> None:
    """Five steps of our optimizer `name` and PyTorch's on the same weights and gradients: the same weights."""
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 4))
    p = Tensor(w0.copy(), requires_grad=True, dtype=np.float64)
    tp = torch.tensor(w0.copy(), requires_grad=True)
    ours, theirs = getattr(optim, name)([p], **settings), getattr(torch.optim, name)([tp], **settings)
    for _ in range(5):
        g = rng.standard_normal((3, 4))
        p.grad, tp.grad = g.copy(), torch.tensor(g)
        ours.step()
        theirs.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=atol)


def test_adadelta_matches_pytorch():
    steps_like_pytorch("Adadelta", atol=1e-15, lr=1.0, weight_decay=0.01)


def test_nll_loss_reductions_match_pytorch():
    torch = torch_or_skip()
    x = np.random.default_rng(4).standard_normal((5, 3))
    targets = np.array([0, 2, 1, 1, 0])
    for reduction in ("mean", "sum", "none"):
        t = Tensor(x, requires_grad=True, dtype=np.float64)
        out = F.nll_loss(F.log_softmax(t, dim=1), targets, reduction=reduction)
        tt = torch.tensor(x, requires_grad=True)
        expected = torch.nn.functional.nll_loss(torch.log_softmax(tt, dim=1), torch.tensor(targets), reduction=reduction)
        np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12)
        out.sum().backward()
        expected.sum().backward()
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-12)


def test_the_compatibility_names_a_pytorch_program_uses():
    import tinygrad_lenet as torch
    from tinygrad_lenet.utils.data import DataLoader, TensorDataset
    assert torch.cuda.is_available() is False and str(torch.device("cpu")) == "cpu"
    with pytest.raises(RuntimeError, match="device 'cuda:0' is not available: tinygrad_lenet runs on the CPU"):
        torch.device("cuda:0")
    x = torch.randn(6, 1, 4, 4)
    assert torch.flatten(x, 1).shape == (6, 16) and torch.cat([x, x], dim=0).shape == (12, 1, 4, 4)
    loader = DataLoader(TensorDataset(x.numpy(), np.arange(6) % 2), batch_size=4, shuffle=True)
    assert len(loader.dataset) == 6 and [b.shape[0] for b, _ in loader] == [4, 2]
    model = nn.Linear(3, 2).to(torch.device("cpu")).requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    t = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert t.t().shape == (3, 2) and t.long().dtype == np.int64 and t.to("cpu") is t and t.dim() == 2
    assert t.masked_fill(t.data > 3, 0.0).numpy().tolist() == [[0, 1, 2], [3, 0, 0]]
    assert int(t.eq(Tensor(np.zeros((2, 3), np.float32))).sum().item()) == 1


# ------------------------------------------------------------------ values at the edges
def test_min_of_integers_and_bools_is_exact():
    assert Tensor(np.array([0, -2**31], np.int32)).min().item() == -2**31
    assert Tensor(np.array([0, -2**31], np.int32)).min().dtype == np.int32
    assert Tensor(np.array([True, False])).min().item() is False
    assert Tensor(np.array([[3, 1], [2, 5]])).min(1).values.numpy().tolist() == [1, 2]


def test_padding_with_infinity_keeps_the_interior():
    t = Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    out = t.pad(((1, 1), (0, 0)), value=np.inf)
    assert np.isinf(out.data[[0, 3]]).all() and (out.data[1:3] == 1).all()
    out[1:3].sum().backward()
    assert (t.grad == 1).all()
    assert (F.pad(t, (1, 1), value=-np.inf).data[:, 1:3] == 1).all()


@pytest.mark.parametrize("a, b", [([0.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 1.0, 2.0]), ([0.0, 0.0], [0.0, 0.3]),
                                  ([-np.inf, np.inf, 0.0], [0.0, 0.0, 0.0]), ([2.0, 0.5], [0.0, -1.5])])
def test_power_gradients_at_a_zero_base_or_exponent_match_pytorch(a, b):
    torch = torch_or_skip()
    ta, tb = (Tensor(np.array(v), requires_grad=True, dtype=np.float64) for v in (a, b))
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -1 is inf, as in PyTorch
        (ta ** tb).sum().backward()
    pa, pb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (a, b))
    (pa ** pb).sum().backward()
    np.testing.assert_array_equal(ta.grad, pa.grad.numpy())
    np.testing.assert_array_equal(tb.grad, pb.grad.numpy())


# ------------------------------------------------------------------ modules PyTorch code uses
def test_module_list_and_dict_register_their_children_under_pytorch_s_names():
    torch = torch_or_skip()

    class Ours(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(3, 4), nn.Linear(4, 2)])
            self.heads = nn.ModuleDict({"a": nn.Linear(2, 1)})

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)])
            self.heads = torch.nn.ModuleDict({"a": torch.nn.Linear(2, 1)})

    ours = Ours()
    assert list(ours.state_dict()) == list(Theirs().state_dict())
    ours.blocks.append(nn.ReLU(inplace=True))
    assert len(ours.blocks) == 3 and "a" in ours.heads and list(ours.heads.keys()) == ["a"]
    with pytest.raises(IndexError, match="ModuleList: index 5 is out of range for 3 modules"):
        ours.blocks[5]


@pytest.mark.parametrize("kernel, dilation", [(3, 1), (4, 1), (3, 2), ((2, 5), 1)])
def test_conv2d_padding_same_matches_pytorch(kernel, dilation):
    torch = torch_or_skip()
    ours = nn.Conv2d(2, 3, kernel, padding="same", dilation=dilation)
    theirs = torch.nn.Conv2d(2, 3, kernel, padding="same", dilation=dilation).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.data.astype(np.float64)))
        theirs.bias.copy_(torch.from_numpy(ours.bias.data.astype(np.float64)))
    x = np.random.default_rng(0).standard_normal((2, 2, 7, 6))
    out = ours.double()(Tensor(x, dtype=np.float64))
    assert out.shape == (2, 3, 7, 6)
    with warnings.catch_warnings():  # PyTorch warns that an even kernel needs a padded copy
        warnings.simplefilter("ignore", UserWarning)
        expected = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")


def test_activation_modules_and_one_hot_match_pytorch():
    torch = torch_or_skip()
    x = np.random.default_rng(1).standard_normal((3, 4)) * 5
    for ours, theirs in [(nn.ReLU6(), torch.nn.ReLU6()), (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
                         (nn.LogSoftmax(dim=0), torch.nn.LogSoftmax(dim=0)), (nn.ReLU(inplace=True), torch.nn.ReLU())]:
        np.testing.assert_allclose(ours(Tensor(x, dtype=np.float64)).data, theirs(torch.from_numpy(x)).numpy(),
                                   rtol=1e-12, atol=1e-12)
    targets = np.array([[0, 3], [2, 1]])
    np.testing.assert_array_equal(F.one_hot(targets).data, torch.nn.functional.one_hot(torch.from_numpy(targets)).numpy())
    assert F.one_hot(np.array([1]), num_classes=4).shape == (1, 4)


def test_dropout2d_drops_whole_channels():
    layer = nn.Dropout2d(0.5, generator=np.random.default_rng(0))
    out = layer(Tensor(np.ones((4, 8, 3, 3), np.float32))).data
    per_channel = out.reshape(4, 8, -1)
    assert set(np.unique(per_channel)) <= {0.0, 2.0} and (per_channel.min(axis=2) == per_channel.max(axis=2)).all()
    assert 0 < (per_channel[..., 0] == 0).sum() < 32
    assert (layer.eval()(Tensor(np.ones((1, 2, 2, 2), np.float32))).data == 1).all()


def test_exponential_lr_matches_pytorch():
    torch = torch_or_skip()
    ours = optim.SGD([Tensor(np.zeros(2), requires_grad=True)], lr=0.5)
    theirs = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.5)
    a = optim.lr_scheduler.ExponentialLR(ours, gamma=0.7)
    b = torch.optim.lr_scheduler.ExponentialLR(theirs, gamma=0.7)
    for _ in range(4):
        ours.step()
        theirs.step()
        a.step()
        b.step()
        assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"], rel=1e-12)


def test_sort_argsort_and_topk_match_pytorch_values_indices_and_gradients():
    torch = torch_or_skip()
    x = np.random.default_rng(5).standard_normal((3, 6))
    x[0, 1] = x[0, 4]  # a tie: both keep their order
    cases = [("sort", (), {"dim": 1}), ("sort", (), {"dim": 0, "descending": True}),
             ("topk", (2,), {"dim": 1}), ("topk", (3,), {"dim": 1, "largest": False}), ("topk", (2,), {"dim": 0})]
    for name, args, kwargs in cases:
        t = Tensor(x, requires_grad=True, dtype=np.float64)
        values, indices = getattr(t, name)(*args, **kwargs)
        (values * values).sum().backward()
        tt = torch.tensor(x, requires_grad=True)
        tv, ti = getattr(tt, name)(*args, **kwargs)
        (tv * tv).sum().backward()
        np.testing.assert_allclose(values.data, tv.detach().numpy(), err_msg=name)
        np.testing.assert_array_equal(indices.data, ti.numpy(), err_msg=name)
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), err_msg=name)
    np.testing.assert_array_equal(Tensor(x).argsort(dim=1).data, torch.from_numpy(x).argsort(dim=1, stable=True).numpy())


@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.9}, {"centered": True, "weight_decay": 0.01},
                                    {"centered": True, "momentum": 0.5, "alpha": 0.9}])
def test_rmsprop_matches_pytorch(kwargs):
    steps_like_pytorch("RMSprop", atol=1e-14, lr=0.01, **kwargs)


@pytest.mark.parametrize("kwargs", [{"patience": 2}, {"patience": 1, "cooldown": 2, "factor": 0.5},
                                    {"mode": "max", "patience": 1, "threshold": 0.01, "threshold_mode": "abs"}])
def test_reduce_lr_on_plateau_matches_pytorch(kwargs):
    torch = torch_or_skip()
    ours = optim.SGD([Tensor(np.zeros(2), requires_grad=True)], lr=1.0)
    theirs = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=1.0)
    a = optim.lr_scheduler.ReduceLROnPlateau(ours, **kwargs)
    b = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **kwargs)
    for metric in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]:
        a.step(metric)
        b.step(metric)
        assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"], rel=1e-12)
    restored = optim.lr_scheduler.ReduceLROnPlateau(ours, **kwargs)
    restored.load_state_dict(a.state_dict())
    assert restored.state_dict() == a.state_dict()


def test_group_norm_and_adaptive_max_pool_match_pytorch():
    torch = torch_or_skip()
    x = np.random.default_rng(0).standard_normal((2, 6, 5, 7))
    ours = nn.GroupNorm(3, 6).double()
    ours.weight.data[:], ours.bias.data[:] = np.linspace(0.5, 2, 6), np.linspace(-1, 1, 6)
    theirs = torch.nn.GroupNorm(3, 6).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.data))
        theirs.bias.copy_(torch.from_numpy(ours.bias.data))
    for layer, reference in [(ours, theirs)] + [(nn.AdaptiveMaxPool2d(s), torch.nn.AdaptiveMaxPool2d(s))
                                                for s in [(1, 1), (2, 3), (3, 2)]]:
        t = Tensor(x, requires_grad=True, dtype=np.float64)
        out = layer(t)
        (out * out).sum().backward()
        tt = torch.tensor(x, requires_grad=True)
        expected = reference(tt)
        (expected * expected).sum().backward()
        np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert list(ours.state_dict()) == list(theirs.state_dict())


# ------------------------------------------------------------------ PyTorch's dtypes and degenerate statistics
def test_dtypes_follow_pytorch_for_integer_products_powers_and_triangles():
    torch = torch_or_skip()
    cases = [(lambda m, a: m.prod(), np.array([2, 3, 4], np.int32)),
             (lambda m, a: m.prod(), np.array([True, False])),
             (lambda m, a: a ** 2.0, np.array([2, 3], np.int32)),
             (lambda m, a: a ** 2, np.array([2, 3], np.int32)),
             (lambda m, a: m.triu(), np.ones((3, 3), bool)),
             (lambda m, a: m.tril(-1), np.arange(9, dtype=np.int32).reshape(3, 3))]
    for fn, array in cases:
        ours = fn(Tensor(array), Tensor(array))
        theirs = fn(torch.from_numpy(array), torch.from_numpy(array))
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), (array.dtype, ours.dtype, theirs.dtype)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("values, correction", [([1.0], 1), ([1.0, 2.0], 2), ([1.0, 2.0], 3), ([], 1)])
def test_degenerate_variance_warns_and_returns_what_pytorch_returns(values, correction):
    torch = torch_or_skip()
    a = np.array(values)
    with pytest.warns(RuntimeWarning, match="degrees of freedom <= 0"):
        var = Tensor(a, dtype=np.float64).var(correction=correction)
    with pytest.warns(RuntimeWarning, match="degrees of freedom <= 0"):
        std = Tensor(a, dtype=np.float64).std(correction=correction)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.from_numpy(a).var(correction=correction).numpy(), torch.from_numpy(a).std(correction=correction)
    np.testing.assert_array_equal(var.numpy(), expected[0])
    np.testing.assert_array_equal(std.numpy(), expected[1].numpy())


# ------------------------------------------------------------------ 1-D layers, resizing, closeness
@pytest.mark.parametrize("kwargs", [{"size": (7, 9)}, {"size": (3, 4)}, {"scale_factor": 2}, {"size": (10, 3)}])
@pytest.mark.parametrize("mode, align_corners", [("nearest", None), ("bilinear", False), ("bilinear", True)])
def test_interpolate_matches_pytorch_values_and_gradients(kwargs, mode, align_corners):
    torch = torch_or_skip()
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 6))
    t = Tensor(x, requires_grad=True, dtype=np.float64)
    out = F.interpolate(t, mode=mode, align_corners=align_corners, **kwargs)
    (out * out).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    expected = torch.nn.functional.interpolate(tt, mode=mode, align_corners=align_corners, **kwargs)
    (expected * expected).sum().backward()
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-10, atol=1e-12)
    layer = nn.Upsample(mode=mode, align_corners=align_corners, **kwargs)
    np.testing.assert_array_equal(layer(Tensor(x, dtype=np.float64)).data, out.data)


def test_conv1d_and_the_1d_pools_match_pytorch():
    torch = torch_or_skip()
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 4, 11)), rng.standard_normal((6, 2, 3)), rng.standard_normal(6)
    t, tw = Tensor(x, requires_grad=True, dtype=np.float64), Tensor(w, requires_grad=True, dtype=np.float64)
    out = F.conv1d(t, tw, Tensor(b, dtype=np.float64), stride=2, padding=1, dilation=2, groups=2)
    (out * out).sum().backward()
    tt, ttw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    expected = torch.nn.functional.conv1d(tt, ttw, torch.from_numpy(b), stride=2, padding=1, dilation=2, groups=2)
    (expected * expected).sum().backward()
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tw.grad, ttw.grad.numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in [(nn.MaxPool1d(3, 2, 1), torch.nn.MaxPool1d(3, 2, 1)),
                         (nn.AvgPool1d(3, 2, 1, count_include_pad=False), torch.nn.AvgPool1d(3, 2, 1, count_include_pad=False))]:
        np.testing.assert_allclose(ours(Tensor(x, dtype=np.float64)).data, theirs(torch.from_numpy(x)).numpy(), rtol=1e-12)
    assert nn.Conv1d(4, 6, 3, padding=1)(Tensor(x.astype(np.float32))).shape == (2, 6, 11)


def test_isclose_and_allclose_follow_pytorch():
    torch = torch_or_skip()
    a, b = np.array([1.0, 1.0 + 1e-6, np.nan, 2.0]), np.array([1.0, 1.0, np.nan, 2.1])
    for equal_nan in (False, True):
        np.testing.assert_array_equal(F.isclose(Tensor(a), Tensor(b), equal_nan=equal_nan).data,
                                      torch.isclose(torch.from_numpy(a), torch.from_numpy(b), equal_nan=equal_nan).numpy())
    assert F.allclose(Tensor(a[:2]), Tensor(b[:2])) and not F.allclose(Tensor(a), Tensor(b))


# ------------------------------------------------------------------ running products and extrema, rounding division
@pytest.mark.parametrize("name", ["cumprod", "cummax", "cummin"])
@pytest.mark.parametrize("dim", [0, 1])
def test_running_products_and_extrema_match_pytorch(name, dim):
    torch = torch_or_skip()
    x = np.random.default_rng(0).integers(-3, 4, (3, 5)).astype(np.float64)  # ties and zeros
    t = Tensor(x, requires_grad=True, dtype=np.float64)
    result = getattr(t, name)(dim)
    values = result[0] if isinstance(result, tuple) else result
    (values * values).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    expected = getattr(tt, name)(dim)
    expected_values = expected[0] if isinstance(expected, tuple) else expected
    (expected_values * expected_values).sum().backward()
    np.testing.assert_allclose(values.data, expected_values.detach().numpy())
    np.testing.assert_allclose(t.grad, tt.grad.numpy())
    if isinstance(result, tuple):
        np.testing.assert_array_equal(result.indices.data, expected.indices.numpy())


def test_rounding_division_fmod_and_remainder_match_pytorch():
    torch = torch_or_skip()
    for a, b in [(np.array([5.0, -5.0, 5.5, -5.5]), np.array([3.0, 3.0, -2.0, -2.0])),
                 (np.array([7, -7, 7, -7]), np.array([2, 2, -2, -2]))]:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        for mode in ("trunc", "floor"):
            np.testing.assert_array_equal(Tensor(a).div(Tensor(b), rounding_mode=mode).data,
                                          ta.div(tb, rounding_mode=mode).numpy())
        np.testing.assert_array_equal((Tensor(a) // Tensor(b)).data, (ta // tb).numpy())
        np.testing.assert_array_equal(Tensor(a).fmod(Tensor(b)).data, torch.fmod(ta, tb).numpy())
        np.testing.assert_array_equal((Tensor(a) % Tensor(b)).data, torch.remainder(ta, tb).numpy())
    a, b = np.array([5.0, -5.0, 5.5]), np.array([3.0, 3.0, -2.0])
    t, u = Tensor(a, requires_grad=True, dtype=np.float64), Tensor(b, requires_grad=True, dtype=np.float64)
    (t.fmod(u) + t % u).sum().backward()
    tt, uu = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (torch.fmod(tt, uu) + torch.remainder(tt, uu)).sum().backward()
    np.testing.assert_allclose(t.grad, tt.grad.numpy())
    np.testing.assert_allclose(u.grad, uu.grad.numpy())
    with pytest.raises(ValueError, match="div: rounding_mode must be None, 'trunc' or 'floor'"):
        Tensor(a).div(2, rounding_mode="round")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted, smoothing", [(False, 0.0), (True, 0.0), (False, 0.2), (True, 0.1)])
def test_cross_entropy_with_class_probabilities_matches_pytorch(reduction, weighted, smoothing):
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5))
    p = rng.random((4, 5))
    p /= p.sum(axis=1, keepdims=True)
    w = np.linspace(0.5, 2.0, 5) if weighted else None
    t = Tensor(x, requires_grad=True, dtype=np.float64)
    out = F.cross_entropy(t, Tensor(p, dtype=np.float64), weight=w, reduction=reduction, label_smoothing=smoothing)
    out.sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(tt, torch.from_numpy(p), weight=None if w is None else torch.from_numpy(w),
                                                 reduction=reduction, label_smoothing=smoothing)
    expected.sum().backward()
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_weight_and_ignore_index_match_pytorch(reduction):
    torch = torch_or_skip()
    x = np.random.default_rng(6).standard_normal((5, 4))
    targets = np.array([0, 3, -100, 2, 3])
    w = np.array([0.5, 1.0, 2.0, 1.5])
    t = Tensor(x, requires_grad=True, dtype=np.float64)
    out = F.nll_loss(F.log_softmax(t, dim=1), targets, weight=w, reduction=reduction)
    out.sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    expected = torch.nn.functional.nll_loss(torch.log_softmax(tt, dim=1), torch.from_numpy(targets),
                                            weight=torch.from_numpy(w), reduction=reduction)
    expected.sum().backward()
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-12, atol=1e-15)


BITWISE = ["x << 1", "x >> 1", "x << y", "x >> y", "x & y", "x | 3", "x ^ y", "~x", "1 << y", "5 & x", "x.bitwise_not()",
           "x.bitwise_left_shift(y)", "x.bitwise_right_shift(2)", "(x > 0) & (x < 50)", "~(x > 0)", "(x > 0) | (y > 2)",
           "(x > 0).logical_xor(x < 50)", "x.logical_and(y)", "x.logical_or(y)", "x.logical_not()"]


@pytest.mark.parametrize("expression", BITWISE)
def test_bitwise_and_logical_ops_match_pytorch_values_and_dtypes(expression):
    torch = torch_or_skip()
    x, y = np.array([-8, -3, 0, 5, 100], np.int32), np.array([0, 1, 2, 3, 4], np.int64)
    ours = eval(expression, {"x": Tensor.wrap(x), "y": Tensor.wrap(y)})
    theirs = eval(expression, {"x": torch.from_numpy(x), "y": torch.from_numpy(y)})
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_bitwise_ops_refuse_floats_by_name():
    with pytest.raises(TypeError, match="bitwise_left_shift: needs integer tensors, got float32"):
        Tensor(np.ones(3, np.float32)) << 1
    with pytest.raises(TypeError, match="bitwise_and: needs integer or bool tensors, got float32"):
        Tensor(np.ones(3, np.float32)) & Tensor(np.ones(3, np.float32))


def test_einsum_takes_pytorch_s_forms():
    import tinygrad_lenet as tl
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    listed = tl.einsum("ij,jk", [tl.from_numpy(a), tl.from_numpy(b)])  # operands in a list, implicit output
    spread = tl.einsum("ij, jk -> ik", tl.from_numpy(a), tl.from_numpy(b))
    assert listed.dtype == np.float32
    np.testing.assert_allclose(listed.data, a @ b, rtol=1e-5)
    np.testing.assert_array_equal(listed.data, spread.data)
    with pytest.raises(TypeError, match="einsum: the equation comes first"):
        tl.einsum(tl.from_numpy(a), "ij")


def test_dilated_pools_and_grouped_dilated_transposed_convs_as_modules_match_pytorch():
    torch = torch_or_skip()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    ours = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=2)
    theirs = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=2)
    assert ours.weight.shape == tuple(theirs.weight.shape) == (4, 3, 3, 3)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.from_numpy(x)).detach().numpy(), atol=1e-5)
    # PyTorch's argument order: a ported MaxPool2d(3, 1, 1, 2) means dilation 2, not ceil_mode
    pool, torch_pool = nn.Sequential(nn.ReLU(), nn.MaxPool2d(3, 1, 1, 2)), torch.nn.Sequential(
        torch.nn.ReLU(), torch.nn.MaxPool2d(3, 1, 1, 2))
    np.testing.assert_array_equal(pool(Tensor(x)).data, torch_pool(torch.from_numpy(x)).numpy())
    np.testing.assert_array_equal(nn.MaxPool1d(3, 1, dilation=2)(Tensor(x[:, :, 0])).data,
                                  torch.nn.MaxPool1d(3, 1, dilation=2)(torch.from_numpy(x[:, :, 0])).numpy())
    with pytest.raises(ValueError, match="MaxPool2d: return_indices=True is not supported"):
        nn.MaxPool2d(2, return_indices=True)


@pytest.mark.parametrize("kind", ["swa", "ema", "ema_avg_fn", "ema_warmup"])
def test_averaged_model_averages_like_pytorch_s(kind):
    """optim.swa_utils.AveragedModel against torch.optim.swa_utils.AveragedModel: the same
    weights after the same SGD steps, for each averaging function (the warm-up EMA written
    for PyTorch as an avg_fn, its formula); state_dict has module.* and n_averaged."""
    torch = torch_or_skip()
    from torch.optim import swa_utils as theirs

    from tinygrad_lenet.optim import swa_utils as ours
    rng = np.random.default_rng(3)
    manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    twin = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    with torch.no_grad():
        for p, q in zip(model.parameters(), twin.parameters()):
            q.copy_(torch.from_numpy(p.data))

    def warmup_avg_fn(averaged, current, num_averaged):
        d = min(0.99, (1 + int(num_averaged)) / (10 + int(num_averaged)))
        return averaged * d + current * (1 - d)

    makers = {"swa": ({}, {}),
              "ema": ({"multi_avg_fn": ours.get_ema_multi_avg_fn(0.9)}, {"multi_avg_fn": theirs.get_ema_multi_avg_fn(0.9)}),
              "ema_avg_fn": ({"avg_fn": ours.get_ema_avg_fn(0.8)}, {"avg_fn": theirs.get_ema_avg_fn(0.8)}),
              "ema_warmup": ({"multi_avg_fn": ours.get_ema_multi_avg_fn(0.99, warmup=True)}, {"avg_fn": warmup_avg_fn})}
    ours_kw, theirs_kw = makers[kind]
    averaged, averaged_twin = ours.AveragedModel(model, **ours_kw), theirs.AveragedModel(twin, **theirs_kw)
    opt, opt_twin = optim.SGD(model.parameters(), lr=0.1), torch.optim.SGD(twin.parameters(), lr=0.1)
    for _ in range(6):
        x = rng.standard_normal((5, 4)).astype(np.float32)
        opt.zero_grad()
        (model(Tensor(x)) ** 2).mean().backward()
        opt.step()
        averaged.update_parameters(model)
        opt_twin.zero_grad()
        (twin(torch.from_numpy(x)) ** 2).mean().backward()
        opt_twin.step()
        averaged_twin.update_parameters(twin)
    state, state_twin = averaged.state_dict(), averaged_twin.state_dict()
    assert list(state) == list(state_twin)
    for key in state:
        np.testing.assert_allclose(state[key], state_twin[key].numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(averaged(Tensor(x)).data, averaged_twin(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    assert not np.array_equal(averaged.module[0].weight.data, model[0].weight.data)  # an average, not the weights

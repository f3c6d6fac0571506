"""The 1998 LeNet-5 (models/lenet5_1998.py) and its layers (tinygrad_lenet/nn/lenet_layers.py):
shapes, the paper's parameter counts, the C3 connection table, gradients, the MAP
criterion and a short training run on real MNIST."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from models import get_model, get_model_for_data, map_loss
from models.layers_1998 import (
    EuclideanRBF,
    MaskedConv2d,
    ScaledTanh,
    ScaleShiftPad2d,
    Subsampling2d,
    count_trainable_parameters,
)
from models.lenet5_1998 import PAPER_PARAMETER_COUNTS, LeNet5_1998, c3_connection_table, digit_codes
from tinygrad_lenet import Tensor, gradcheck, manual_seed, nn, optim
from tinygrad_lenet import functional as F
from tinygrad_lenet.checkpoint import load_checkpoint, save_checkpoint
from tinygrad_lenet.data import DataLoader, get_dataset_spec, load_mnist, normalize_images
from tinygrad_lenet.training import evaluate, train_one_epoch


def images(n: int, seed: int = 0) -> Tensor:
    return Tensor(np.random.default_rng(seed).standard_normal((n, 1, 28, 28)).astype(np.float32))


@contextlib.contextmanager
def parameters_replaced(module: nn.Module, **tensors: Tensor):
    """Run `module` with the given tensors in place of its parameters, so that
    `gradcheck` can differentiate with respect to them."""
    saved = {name: getattr(module, name) for name in tensors}
    try:
        for name, t in tensors.items():
            object.__setattr__(module, name, t)
        yield module
    finally:
        for name, p in saved.items():
            object.__setattr__(module, name, p)


# ------------------------------------------------------------------ the model
def test_output_shape_dtype_and_logits_are_negative_penalties():
    model = get_model("lenet5_1998")
    x = images(3)
    logits, penalties = model(x), model.rbf_outputs(x)
    assert isinstance(model, LeNet5_1998)
    assert logits.shape == penalties.shape == (3, 10)
    assert logits.dtype == penalties.dtype == np.float32
    np.testing.assert_array_equal(logits.data, -penalties.data)
    assert (penalties.data >= 0).all()
    assert (logits.data.argmax(axis=1) == penalties.data.argmin(axis=1)).all()
    assert model.double()(x.double()).dtype == np.float64


def test_bad_input_shape_is_a_clear_error():
    message = r"LeNet5_1998: expected input of shape \(N, 1, 28, 28\), got \(2, 1, 32, 32\)"
    with pytest.raises(ValueError, match=message):
        get_model("lenet5_1998")(Tensor(np.zeros((2, 1, 32, 32), dtype=np.float32)))
    with pytest.raises(ValueError, match="num_classes must be 10"):
        get_model("lenet5_1998", num_classes=5)


def test_parameter_counts_match_the_paper():
    model = get_model("lenet5_1998")
    assert PAPER_PARAMETER_COUNTS == {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164}
    for name, expected in PAPER_PARAMETER_COUNTS.items():
        assert count_trainable_parameters(getattr(model, name)) == expected, name
    assert count_trainable_parameters(model) == model.num_trainable_parameters() == 60000
    # C3 stores all 16 x 6 kernels; the 36 absent ones are masked, not trainable
    assert model.c3.weight.size + model.c3.bias.size == 2416 and model.c3.num_masked_weights == 900
    assert sum(p.size for p in model.parameters()) == 60000 + 900
    assert [n for n, _ in model.named_parameters()] == [
        f"{layer}.{p}" for layer in ("c1", "s2", "c3", "s4", "c5", "f6") for p in ("weight", "bias")]


def test_c3_connection_table_is_the_papers_table_1():
    table = c3_connection_table()  # (16 C3 maps, 6 S2 maps)
    expected = np.zeros((16, 6), dtype=bool)
    for k in range(6):  # every contiguous subset of three S2 maps, then of four
        expected[k, [(k + i) % 6 for i in range(3)]] = True
        expected[6 + k, [(k + i) % 6 for i in range(4)]] = True
    for k, subset in enumerate([(0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5)]):  # discontinuous subsets of four
        expected[12 + k, list(subset)] = True
    expected[15] = True  # the last map sees all six
    np.testing.assert_array_equal(table, expected)
    assert table.sum() == 60


def test_same_seed_gives_the_same_model():
    manual_seed(3)
    a = get_model("lenet5_1998").state_dict()
    manual_seed(3)
    b = get_model("lenet5_1998").state_dict()
    manual_seed(4)
    c = get_model("lenet5_1998").state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["c1.weight"], c["c1.weight"])


def test_initialization_is_uniform_in_2_4_over_fan_in():
    manual_seed(0)
    model = get_model("lenet5_1998")
    for layer, fan_in in (("c1", 25), ("c5", 400), ("f6", 120), ("s2", 4), ("s4", 4)):
        for p in getattr(model, layer).parameters():
            bound = 2.4 / fan_in
            assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.8 * bound, (layer, p.shape)
    # C3: a map's fan-in counts only its connected S2 maps (3, 4 or 6 of them)
    per_map = np.abs(model.c3.weight.data).reshape(16, -1).max(axis=1)
    bounds = 2.4 / (c3_connection_table().sum(axis=1) * 25)
    assert (per_map <= bounds).all() and (per_map > 0.8 * bounds).all()


def test_checkpoint_round_trip_keeps_outputs_and_fixed_buffers(tmp_path):
    manual_seed(1)
    model = get_model("lenet5_1998")
    save_checkpoint(tmp_path / "ckpt.npz", model_state=model.state_dict())
    state = load_checkpoint(tmp_path / "ckpt.npz")["model_state"]
    assert state["c3.connections"].dtype == np.bool_ and state["rbf.centers"].shape == (10, 84)
    manual_seed(2)
    other = get_model("lenet5_1998")
    other.load_state_dict(state)
    x = images(2)
    np.testing.assert_array_equal(other(x).data, model(x).data)


# ----------------------------------------------------------------- C3 masking
@pytest.mark.parametrize("make_optimizer", [
    lambda params: optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3),
    lambda params: optim.Adam(params, lr=0.01, weight_decay=1e-3),
], ids=["sgd-momentum-decay", "adam"])
def test_absent_c3_connections_stay_exactly_zero(make_optimizer):
    manual_seed(0)
    model = get_model("lenet5_1998")
    absent = ~c3_connection_table()
    opt = make_optimizer(model.parameters())
    before = model.c3.weight.data.copy()
    for step in range(2):
        loss = F.cross_entropy(model(images(4, seed=step)), np.array([0, 3, 5, 9]))
        opt.zero_grad()
        loss.backward()
        grad = model.c3.weight.grad
        assert (grad[absent] == 0).all()
        assert np.abs(grad[~absent]).min(axis=(1, 2)).max() > 0
        opt.step()
    assert (model.c3.weight.data[absent] == 0).all()
    present_changed = model.c3.weight.data[~absent] != before[~absent]
    assert present_changed.mean() > 0.99


def test_masked_weights_do_not_affect_the_output():
    manual_seed(0)
    conv = MaskedConv2d(6, 16, 5, connection_table=c3_connection_table())
    x = Tensor(np.random.default_rng(0).standard_normal((2, 6, 10, 10)).astype(np.float32))
    out = conv(x).data.copy()
    conv.weight.data[~c3_connection_table()] = 5.0
    np.testing.assert_array_equal(conv(x).data, out)
    # and the output equals a dense convolution with the absent kernels zeroed
    dense = conv.weight.data * c3_connection_table()[:, :, None, None]
    np.testing.assert_array_equal(out, F.conv2d(x, Tensor(dense), conv.bias).data)


@pytest.mark.parametrize("table, message", [
    (np.ones((3, 2), dtype=bool), r"connection_table must have shape \(out_channels, in_channels\) = \(2, 3\)"),
    (np.array([[1, 0, 1], [0, 0, 0]]), r"output channels \[1\] have no input connection"),
    (np.array([[2, 0, 1], [1, 1, 1]]), "only 0/1"),
])
def test_masked_conv_rejects_bad_tables(table, message):
    with pytest.raises(ValueError, match=message):
        MaskedConv2d(3, 2, 3, connection_table=table)


# ------------------------------------------------------------------- layers
def test_scaled_tanh_is_the_papers_squashing_function():
    f = ScaledTanh()
    a = np.linspace(-3, 3, 13, dtype=np.float32)
    np.testing.assert_allclose(f(Tensor(a)).data, 1.7159 * np.tanh(2 / 3 * a), rtol=1e-6)
    np.testing.assert_allclose(f(Tensor(np.array([1.0, -1.0], dtype=np.float32))).data, [1, -1], atol=2e-4)


def test_input_layer_maps_mnist_pixels_to_the_papers_range():
    pixels = np.zeros((1, 28, 28), dtype=np.uint8)
    pixels[0, 10:20, 5:9] = 255
    x = Tensor(normalize_images(pixels, normalize="mnist"))
    y = get_model("lenet5_1998").scale_input(x).data
    assert y.shape == (1, 1, 32, 32) and y.dtype == np.float32
    np.testing.assert_allclose(y[0, 0, 12:22, 7:11], 1.175, atol=1e-5)  # foreground, shifted by the padding
    background = np.ones((32, 32), dtype=bool)
    background[12:22, 7:11] = False
    np.testing.assert_allclose(y[0, 0][background], -0.1, atol=1e-5)  # including the 2-pixel border
    with pytest.raises(ValueError, match=r"ScaleShiftPad2d: expected a 4-D input"):
        ScaleShiftPad2d(1.0, 0.0, padding=2)(Tensor(np.zeros((28, 28), dtype=np.float32)))


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_model_built_for_a_data_set_maps_its_pixels_to_the_papers_range(dataset):
    pixels = np.zeros((1, 28, 28), dtype=np.uint8)
    pixels[0, 10:20, 5:9] = 255
    x = Tensor(normalize_images(pixels, normalize=dataset))
    y = get_model_for_data("lenet5_1998", get_dataset_spec(dataset).mean_std).scale_input(x).data
    np.testing.assert_allclose(y[0, 0, 12:22, 7:11], 1.175, atol=1e-5)
    np.testing.assert_allclose(y[0, 0, :12], -0.1, atol=1e-5)
    # models that take no statistics are built as get_model builds them
    manual_seed(0)
    plain = get_model("lenet5").state_dict()
    manual_seed(0)
    for_data = get_model_for_data("lenet5", get_dataset_spec(dataset).mean_std).state_dict()
    assert all(np.array_equal(plain[k], for_data[k]) for k in plain)


def test_subsampling_sums_windows_times_a_coefficient_plus_a_bias():
    layer = Subsampling2d(3)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 6)).astype(np.float32)
    window_sums = x.reshape(2, 3, 2, 2, 3, 2).sum(axis=(3, 5))
    expected = window_sums * layer.weight.data[:, None, None] + layer.bias.data[:, None, None]
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)
    assert count_trainable_parameters(layer) == 6
    with pytest.raises(ValueError, match=r"Subsampling2d: expected 3 channels, got input of shape \(2, 4, 4, 6\)"):
        layer(Tensor(np.zeros((2, 4, 4, 6), dtype=np.float32)))


def test_rbf_outputs_are_squared_distances_to_fixed_centers():
    centers = np.array([[1, -1, 1], [-1, -1, -1]], dtype=np.float32)
    rbf = EuclideanRBF(3, 2, centers=centers)
    x = np.array([[1, -1, 1], [0.5, 0, -1]], dtype=np.float32)
    np.testing.assert_allclose(rbf(Tensor(x)).data, ((x[:, None] - centers[None]) ** 2).sum(-1))
    assert list(rbf.parameters()) == [] and not rbf.centers.requires_grad
    with pytest.raises(ValueError, match=r"EuclideanRBF: centers must have shape \(out_features, in_features\)"):
        EuclideanRBF(4, 2, centers=centers)


def test_rbf_centers_are_distinct_digit_glyphs_and_are_not_trained():
    codes = digit_codes()
    assert codes.shape == (10, 84) and set(np.unique(codes)) == {-1.0, 1.0}
    hamming = (codes[:, None] != codes[None]).sum(axis=2)
    assert hamming[~np.eye(10, dtype=bool)].min() >= 6
    manual_seed(0)
    model = get_model("lenet5_1998")
    np.testing.assert_array_equal(model.rbf.centers.data, codes)
    assert all(p is not model.rbf.centers for p in model.parameters())
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = F.cross_entropy(model(images(4)), np.array([1, 2, 3, 4]))
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert model.rbf.centers.grad is None
    np.testing.assert_array_equal(model.rbf.centers.data, codes)


# ---------------------------------------------------------------- gradients
def test_gradcheck_scaled_tanh_and_input_layer():
    x = np.random.default_rng(0).standard_normal((2, 1, 3, 3))
    assert gradcheck(lambda t: ScaledTanh()(t), [x])
    assert gradcheck(lambda t: ScaleShiftPad2d(0.4, 0.07, padding=1, pad_value=-0.1)(t), [x])


def test_gradcheck_subsampling_input_weight_and_bias():
    layer = Subsampling2d(2).double()
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 2, 4, 2)), rng.standard_normal(2), rng.standard_normal(2)

    def fn(x, w, b):
        with parameters_replaced(layer, weight=w, bias=b):
            return layer(x)
    assert gradcheck(fn, [x, w, b])


def test_gradcheck_masked_conv_input_weight_and_bias():
    table = np.array([[1, 0, 1], [0, 1, 0]], dtype=bool)
    layer = MaskedConv2d(3, 2, 2, connection_table=table).double()
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 3, 3, 3)), rng.standard_normal((2, 3, 2, 2)), rng.standard_normal(2)

    def fn(x, w, b):
        with parameters_replaced(layer, weight=w, bias=b):
            return layer(x)
    assert gradcheck(fn, [x, w, b])


def test_gradcheck_rbf_input():
    rbf = EuclideanRBF(4, 3, centers=np.sign(np.random.default_rng(3).standard_normal((3, 4)))).double()
    assert gradcheck(lambda t: rbf(t), [np.random.default_rng(4).standard_normal((2, 4))])


@pytest.mark.parametrize("j", [0.1, 1.0, 5.0])
def test_gradcheck_map_loss(j):
    penalties = np.random.default_rng(5).uniform(0, 4, size=(3, 4))
    assert gradcheck(lambda y: map_loss(y, np.array([0, 3, 1]), j=j), [penalties])


def test_map_loss_is_equation_9():
    rng = np.random.default_rng(6)
    y, targets, j = rng.uniform(0, 5, size=(5, 10)), rng.integers(0, 10, size=5), 0.5
    expected = np.mean(y[np.arange(5), targets] + np.log(np.exp(-j) + np.exp(-y).sum(axis=1)))
    got = map_loss(Tensor(y, dtype=np.float64), targets, j=j)
    assert got.dtype == np.float64 and got.item() == pytest.approx(expected, rel=1e-12)
    # large j: the rubbish class vanishes and the criterion is cross-entropy of -y
    ce = F.cross_entropy(Tensor(-y, dtype=np.float64), targets).item()
    assert map_loss(Tensor(y, dtype=np.float64), targets, j=60.0).item() == pytest.approx(ce, rel=1e-12)
    assert map_loss(Tensor(y.astype(np.float32)), targets).dtype == np.float32


@pytest.mark.parametrize("targets, message", [
    (np.array([0, 1]), r"targets must be 3 integer labels, got shape \(2,\)"),
    (np.array([0.0, 1.0, 2.0]), "dtype float64"),
    (np.array([0, 1, 10]), r"targets must be in \[0, 10\), got values in \[0, 10\]"),
])
def test_map_loss_rejects_bad_targets(targets, message):
    with pytest.raises(ValueError, match=message):
        map_loss(Tensor(np.ones((3, 10), dtype=np.float32)), targets)


def test_model_gradient_matches_finite_differences_on_a_few_weights():
    """End to end through all layers in float64: d map_loss / d (a few weights of each layer)."""
    manual_seed(0)
    model = get_model("lenet5_1998").double()
    x = Tensor(np.random.default_rng(7).standard_normal((2, 1, 28, 28)), dtype=np.float64)
    targets = np.array([3, 8])
    model.zero_grad()
    map_loss(model.rbf_outputs(x), targets).backward()
    rng = np.random.default_rng(8)
    eps = 1e-4  # the loss is ~80: a smaller step would drown the difference in rounding
    for name, p in model.named_parameters():
        flat, grad = p.data.reshape(-1), p.grad.reshape(-1)
        for i in rng.choice(flat.size, size=3, replace=False):
            orig = flat[i]
            flat[i] = orig + eps
            plus = map_loss(model.rbf_outputs(x), targets).item()
            flat[i] = orig - eps
            minus = map_loss(model.rbf_outputs(x), targets).item()
            flat[i] = orig
            assert grad[i] == pytest.approx((plus - minus) / (2 * eps), rel=1e-5, abs=1e-9), (name, i)


# ------------------------------------------------------------ real training
@pytest.fixture
def mnist_dir(real_mnist_dir: str) -> str:
    return real_mnist_dir


@pytest.mark.slow
def test_short_training_on_real_mnist_learns(mnist_dir):
    manual_seed(0)
    train_x, train_y = load_mnist("train", root=mnist_dir)
    test_x, test_y = load_mnist("test", root=mnist_dir)
    model = get_model("lenet5_1998")
    optimizer = optim.Adam(model.parameters(), lr=5e-4)
    loader = DataLoader(train_x[:3000], train_y[:3000], batch_size=16, shuffle=True, seed=0, normalize="mnist")
    stats = train_one_epoch(model, loader, optimizer)  # the scripts' loop: cross_entropy(logits, y), argmax
    _, accuracy, _ = evaluate(model, normalize_images(test_x[:1000], normalize="mnist"), test_y[:1000])
    assert stats.images == 3000
    assert accuracy >= 0.80, accuracy  # chance is 0.10; this run reaches about 0.85


# ------------------------------------------------------------------ second derivatives
@pytest.mark.parametrize("make", [
    lambda: (ScaledTanh(), (2, 3)),
    lambda: (Subsampling2d(2, 2), (1, 2, 4, 4)),
    lambda: (MaskedConv2d(3, 2, 3, np.array([[1, 0, 1], [0, 1, 1]], dtype=bool)), (1, 3, 5, 5)),
    lambda: (EuclideanRBF(4, 3, np.random.default_rng(3).standard_normal((3, 4))), (2, 4)),
], ids=["ScaledTanh", "Subsampling2d", "MaskedConv2d", "EuclideanRBF"])
def test_the_1998_layers_have_second_derivatives(make):
    """gradgradcheck through each layer, with respect to its input and (where the
    layer has them) its parameters used as inputs."""
    from tinygrad_lenet import gradgradcheck
    manual_seed(0)
    layer, shape = make()
    layer.double()
    x = np.random.default_rng(0).standard_normal(shape)
    originals = {n: p for n, p in layer.named_parameters() if p.requires_grad}

    def call(x_t, *ps):  # the layer with this call's tensors as its parameters
        for name, value in zip(originals, ps):
            object.__setattr__(layer, name, value)
        return layer(x_t)

    try:
        assert gradgradcheck(call, [x, *[p.data for p in originals.values()]])
    finally:
        for name, p in originals.items():
            object.__setattr__(layer, name, p)
    assert layer(Tensor(x, dtype=np.float64)).shape  # the layer is whole again


def test_map_loss_has_second_derivatives():
    from tinygrad_lenet import gradgradcheck
    penalties = np.random.default_rng(4).uniform(0.5, 3.0, (3, 4))
    assert gradgradcheck(lambda y: map_loss(y, np.array([0, 3, 1])), [penalties])

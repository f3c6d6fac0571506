"""Tests for `tinygrad_lenet.nn`: module registration and naming, modes, state
dicts and strict loading, initialisation, layers against the functional ops,
module gradients, op annotation with module names, and gradient clipping."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest

from tinygrad_lenet import Tensor, gradcheck, manual_seed, nn
from tinygrad_lenet import functional as F
from tinygrad_lenet.autograd import topological_order
from tinygrad_lenet.nn import init
from tinygrad_lenet.nn.utils import clip_grad_norm_, clip_grad_value_


class Small(nn.Module):
    """conv -> tanh -> pool -> flatten -> linear, with names like LeNet's."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 4), nn.ReLU(), nn.Linear(4, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


def small_input(n: int = 2, seed: int = 0) -> Tensor:
    return Tensor(np.random.default_rng(seed).standard_normal((n, 1, 8, 8)))


# ------------------------------------------------------------------ registration
def test_named_parameters_in_registration_order_with_qualified_names():
    model = Small()
    assert [name for name, _ in model.named_parameters()] == [
        "features.0.weight", "features.0.bias",
        "classifier.1.weight", "classifier.1.bias", "classifier.3.weight", "classifier.3.bias"]
    assert [p.shape for p in model.parameters()] == [(2, 1, 3, 3), (2,), (4, 18), (4,), (3, 4), (3,)]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad and p.dtype == np.float32 for p in model.parameters())


def test_children_and_modules():
    model = Small()
    assert [name for name, _ in model.named_children()] == ["features", "classifier"]
    assert list(model.children()) == [model.features, model.classifier]
    assert [name for name, _ in model.named_modules()] == [
        "", "features", "features.0", "features.1", "features.2",
        "classifier", "classifier.0", "classifier.1", "classifier.2", "classifier.3"]
    assert len(list(model.modules())) == 10


def test_shared_parameter_is_listed_once():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.b = nn.Linear(3, 3)
            self.b.weight = self.a.weight

    names = [n for n, _ in Tied().named_parameters()]
    assert names == ["a.weight", "a.bias", "b.bias"]


def test_reassigning_and_deleting_attributes_updates_registries():
    m = nn.Linear(2, 2)
    m.bias = None
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    assert "bias" not in m.state_dict()
    m.extra = nn.Parameter(np.zeros(3, np.float32))
    del m.extra
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    with pytest.raises(TypeError, match="cannot assign Tensor as parameter 'weight'"):
        m.weight = Tensor(np.zeros((2, 2)))


def test_reassigning_a_parameter_or_child_keeps_its_place_in_the_order():
    model = Small()
    names = [n for n, _ in model.named_parameters()]
    model.features[0].weight = nn.Parameter(np.zeros((2, 1, 3, 3), np.float32))  # e.g. a custom init
    model.features = nn.Sequential(*model.features)
    m = nn.Linear(2, 2)
    m.bias = None
    m.bias = nn.Parameter(np.zeros(2, np.float32))
    assert [n for n, _ in model.named_parameters()] == names  # optimizer/checkpoint indices unchanged
    assert list(model.state_dict()) == names and [n for n, _ in m.named_parameters()] == ["weight", "bias"]


def test_assignment_before_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self) -> None:
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"Broken.*super\(\).__init__\(\)"):
        Broken()


def test_parameter_rejects_integer_data_and_keeps_tensor_dtype():
    with pytest.raises(TypeError, match="floating point"):
        nn.Parameter(np.arange(3))
    p = nn.Parameter(Tensor(np.ones(2), dtype=np.float64))
    assert p.dtype == np.float64 and p.requires_grad and p.is_leaf


def test_train_eval_propagates_to_every_descendant():
    model = Small()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad_sets_grads_to_none():
    model = Small()
    model(small_input()).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_repr_is_nested_like_pytorch():
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.Linear(4, 2, bias=False), nn.Dropout(0.25))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=4, out_features=2, bias=False)\n"
        "  (3): Dropout(p=0.25)\n"
        ")")


def test_module_without_forward_names_its_class():
    class NoForward(nn.Module):
        pass

    with pytest.raises(NotImplementedError, match="NoForward"):
        NoForward()(small_input())


# -------------------------------------------------------------------- state dict
def test_state_dict_round_trip_reproduces_outputs():
    manual_seed(1)
    a = Small()
    manual_seed(2)
    b = Small()
    x = small_input()
    assert not np.allclose(a(x).data, b(x).data)
    state = a.state_dict()
    assert list(state) == [n for n, _ in a.named_parameters()]
    b.load_state_dict(state)
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_state_dict_holds_copies():
    m = nn.Linear(2, 2)
    state = m.state_dict()
    state["weight"][...] = 123.0
    assert not np.any(m.weight.data == 123.0)


def test_load_state_dict_converts_dtype_and_copies_in_place():
    m = nn.Linear(3, 2)
    weight_array = m.weight.data
    state = {k: v.astype(np.float64) + 1 for k, v in m.state_dict().items()}
    m.load_state_dict(state)
    assert m.weight.data is weight_array and m.weight.dtype == np.float32
    np.testing.assert_allclose(m.weight.data, state["weight"], rtol=1e-6)


def test_strict_load_lists_every_missing_unexpected_and_mismatched_key():
    model = Small()
    before = model.state_dict()
    state = model.state_dict()
    del state["features.0.bias"], state["classifier.3.weight"]
    state["classifier.9.weight"] = np.zeros(2, np.float32)
    state["extra"] = np.zeros(1, np.float32)
    state["classifier.1.weight"] = np.zeros((5, 18), np.float32)
    state["features.0.weight"] = np.zeros((2, 1, 5, 5), np.float32)
    with pytest.raises(nn.StateDictError) as info:
        model.load_state_dict(state)
    msg = str(info.value)
    for expected in ["missing key: features.0.bias", "missing key: classifier.3.weight",
                     "unexpected key: classifier.9.weight", "unexpected key: extra",
                     "size mismatch for classifier.1.weight: expected shape (4, 18), got (5, 18)",
                     "size mismatch for features.0.weight: expected shape (2, 1, 3, 3), got (2, 1, 5, 5)",
                     "6 problem(s)", "Small"]:
        assert expected in msg
    # Nothing was loaded: a failed load leaves the model as it was.
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_non_strict_load_reports_keys_but_shapes_still_raise():
    m = nn.Linear(2, 2)
    result = m.load_state_dict({"weight": np.ones((2, 2)), "other": np.ones(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["other"]
    np.testing.assert_array_equal(m.weight.data, np.ones((2, 2)))
    with pytest.raises(nn.StateDictError, match=r"size mismatch for weight: expected shape \(2, 2\), got \(3,\)"):
        m.load_state_dict({"weight": np.ones(3)}, strict=False)


def test_buffers_in_state_dict_unless_not_persistent():
    m = nn.Linear(2, 2)
    m.register_buffer("running_mean", np.zeros(2, np.float32))
    m.register_buffer("scratch", np.zeros(2, np.float32), persistent=False)
    assert list(m.state_dict()) == ["weight", "bias", "running_mean"]
    m.load_state_dict({**m.state_dict(), "running_mean": np.array([1.0, 2.0])})
    np.testing.assert_array_equal(m.running_mean.data, [1.0, 2.0])
    assert m.running_mean.dtype == np.float32


def test_to_double_and_float_convert_parameters():
    m = Small().double()
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert m(small_input().double()).dtype == np.float64
    m.float()
    assert all(p.dtype == np.float32 for p in m.parameters())
    with pytest.raises(TypeError, match="float32 or float64"):
        m.to(np.int32)


# -------------------------------------------------------------------------- init
def _weight(shape: tuple[int, ...]) -> nn.Parameter:
    return nn.Parameter(np.zeros(shape, np.float32))


@pytest.mark.parametrize("fn, bound", [
    (init.lecun_uniform_, lambda fi, fo: 2.4 / fi),
    (init.kaiming_uniform_, lambda fi, fo: math.sqrt(6.0 / fi)),
    (init.xavier_uniform_, lambda fi, fo: math.sqrt(6.0 / (fi + fo))),
])
def test_uniform_inits_fill_their_bounds(fn, bound):
    w = _weight((50, 8, 3, 3))  # fan_in 72, fan_out 450
    fn(w, generator=np.random.default_rng(0))
    b = bound(72, 450)
    assert w.dtype == np.float32
    assert np.abs(w.data).max() <= b * (1 + 1e-6)
    assert np.abs(w.data).max() > 0.99 * b  # 3600 samples reach the edge
    assert abs(w.data.std() - b / math.sqrt(3)) < 0.05 * b  # the std of U(-b, b)


@pytest.mark.parametrize("fn, std", [
    (init.lecun_normal_, lambda fi, fo: 1 / math.sqrt(fi)),
    (init.kaiming_normal_, lambda fi, fo: math.sqrt(2.0 / fi)),
    (init.xavier_normal_, lambda fi, fo: math.sqrt(2.0 / (fi + fo))),
])
def test_normal_inits_have_their_std(fn, std):
    w = _weight((200, 100))
    fn(w, generator=np.random.default_rng(0))
    s = std(100, 200)
    assert w.dtype == np.float32
    assert abs(w.data.std() - s) < 0.03 * s and abs(w.data.mean()) < 0.03 * s


def test_default_layer_init_matches_pytorch_bounds():
    lin = nn.Linear(50, 40)
    conv = nn.Conv2d(3, 30, 5)
    for m, fan_in in ((lin, 50), (conv, 75)):
        for p in (m.weight, m.bias):
            bound = 1 / math.sqrt(fan_in)
            assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.8 * bound


def test_same_seed_same_weights_and_generator_argument():
    manual_seed(7)
    a = Small().state_dict()
    manual_seed(7)
    b = Small().state_dict()
    manual_seed(8)
    c = Small().state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["classifier.1.weight"], c["classifier.1.weight"])
    w32, w64 = _weight((4, 5)), nn.Parameter(Tensor(np.zeros((4, 5)), dtype=np.float64))
    init.lecun_uniform_(w32, generator=np.random.default_rng(3))
    init.lecun_uniform_(w64, generator=np.random.default_rng(3))
    np.testing.assert_array_equal(w32.data, w64.data.astype(np.float32))


def test_init_errors_and_gain():
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(3,\)"):
        init.xavier_uniform_(_weight((3,)))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal_(_weight((3, 3)), mode="fan")
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    w = init.zeros_(_weight((2, 2)))
    assert not w.data.any()


# ------------------------------------------------------------------------ layers
def test_linear_matches_numpy():
    lin = nn.Linear(5, 3)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    out = lin(Tensor(x))
    assert out.shape == (4, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out.data, x @ lin.weight.data.T + lin.bias.data, rtol=1e-5, atol=1e-6)


def test_conv_and_pool_layers_match_functional_ops():
    x = small_input(3)
    conv = nn.Conv2d(1, 4, (3, 2), stride=(2, 1), padding=1)
    out = conv(x)
    assert out.shape == (3, 4, 4, 9)
    np.testing.assert_array_equal(out.data, F.conv2d(x, conv.weight, conv.bias, stride=(2, 1), padding=1).data)
    assert nn.Conv2d(1, 2, 3, bias=False)(x).shape == (3, 2, 6, 6)
    np.testing.assert_array_equal(nn.MaxPool2d(2)(x).data, F.max_pool2d(x, 2).data)
    np.testing.assert_array_equal(nn.AvgPool2d(3, stride=2)(x).data, F.avg_pool2d(x, 3, 2).data)
    assert nn.MaxPool2d(2)(x).shape == (3, 1, 4, 4)


def test_activation_flatten_identity_layers():
    x = small_input()
    np.testing.assert_array_equal(nn.ReLU()(x).data, np.maximum(x.data, 0))
    np.testing.assert_allclose(nn.Tanh()(x).data, np.tanh(x.data), rtol=1e-6)
    np.testing.assert_allclose(nn.Sigmoid()(x).data, 1 / (1 + np.exp(-x.data)), rtol=1e-6)
    assert nn.Flatten()(x).shape == (2, 64)
    assert nn.Flatten(0, 1)(x).shape == (2, 8, 8)
    assert nn.Identity()(x) is x
    with pytest.raises(ValueError, match=r"Flatten: start_dim=5.*\(2, 1, 8, 8\)"):
        nn.Flatten(5)(x)


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="Linear: in_features must be a positive int"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="Conv2d: kernel_size"):
        nn.Conv2d(1, 2, (3, 3, 3))
    with pytest.raises(ValueError, match="MaxPool2d: stride must be a positive int"):
        nn.MaxPool2d(2, stride=0)
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\]"):
        nn.Dropout(1.5)


def test_dropout_train_eval_and_seeded_masks():
    x = Tensor(np.ones((50, 40), np.float32))
    drop = nn.Dropout(0.25)
    manual_seed(3)
    a = drop(x).data
    manual_seed(3)
    b = drop(x).data
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, np.float32(1 / 0.75)}
    assert abs((a == 0).mean() - 0.25) < 0.05
    assert drop.eval()(x) is x
    own = nn.Dropout(0.5, generator=np.random.default_rng(1)).train()
    np.testing.assert_array_equal(own(x).data, nn.Dropout(0.5, generator=np.random.default_rng(1))(x).data)


def test_sequential_indexing_slicing_and_ordered_dict():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and list(seq)[1] is seq[1]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    with pytest.raises(IndexError, match="index 3 is out of range for 3 modules"):
        seq[3]
    named = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.Tanh()))
    assert [n for n, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]
    seq.append(nn.Sigmoid())
    assert [n for n, _ in seq.named_children()][-1] == "3"
    with pytest.raises(TypeError, match=r"int is not a Module \(child '0'\)"):
        nn.Sequential(3)
    x = Tensor(np.ones((4, 2), np.float32))
    np.testing.assert_array_equal(seq(x).data, seq[3](seq[2](seq[1](seq[0](x)))).data)


def test_loss_modules_match_functional():
    logits = Tensor(np.random.default_rng(0).standard_normal((4, 3)))
    y = np.array([0, 2, 1, 2])
    assert nn.CrossEntropyLoss()(logits, y).item() == F.cross_entropy(logits, y).item()
    assert nn.NLLLoss()(logits.log_softmax(), y).item() == F.nll_loss(logits.log_softmax(), y).item()
    assert nn.MSELoss()(logits, np.zeros((4, 3))).item() == pytest.approx(float((logits.data ** 2).mean()))


# ------------------------------------------------------------------- gradients
def _finite_difference_param_grads(module: nn.Module, x: Tensor, seed: np.ndarray, eps: float = 1e-6):
    """d sum(module(x) * seed) / d p for every parameter, by central differences."""
    grads = []
    for p in module.parameters():
        g = np.zeros_like(p.data)
        flat, gflat = p.data.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            plus = float((module(x).data * seed).sum())
            flat[i] = orig - eps
            minus = float((module(x).data * seed).sum())
            flat[i] = orig
            gflat[i] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Linear(4, 3), (2, 4)),
    (lambda: nn.Conv2d(2, 3, 2, stride=2, padding=1), (2, 2, 3, 3)),
])
def test_module_gradients_in_float64(make, shape):
    module = make().double()
    x = np.random.default_rng(0).standard_normal(shape)
    assert gradcheck(lambda t: module(t), [x])  # with respect to the input
    xt = Tensor(x, dtype=np.float64)
    out = module(xt)
    seed = np.random.default_rng(1).standard_normal(out.shape)
    module.zero_grad()
    out.backward(seed)
    for p, numeric in zip(module.parameters(), _finite_difference_param_grads(module, xt, seed)):
        assert p.grad.dtype == np.float64
        np.testing.assert_allclose(p.grad, numeric, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- annotations
def _op_modules(loss: Tensor) -> set[tuple[str, str | None]]:
    return {(t.grad_fn.op, t.grad_fn.module) for t in topological_order(loss) if t.grad_fn is not None}


def test_ops_carry_their_module_name_and_parameters_their_path():
    model = Small()
    loss = F.cross_entropy(model(small_input()), [0, 2])
    ops = _op_modules(loss)
    assert ("conv2d", "features.0") in ops and ("tanh", "features.1") in ops
    assert ("max_pool2d", "features.2") in ops and ("reshape", "classifier.0") in ops
    assert ("linear", "classifier.1") in ops and ("relu", "classifier.2") in ops
    assert ("linear", "classifier.3") in ops
    assert ("cross_entropy", None) in ops  # recorded outside any module
    assert [p.name for p in model.parameters()] == [n for n, _ in model.named_parameters()]
    assert model.features[0]._qualname == "features.0" and model._qualname == ""


def test_names_follow_structure_changes():
    model = Small()
    model(small_input())
    model.classifier = nn.Sequential(nn.Flatten(), nn.Linear(18, 3))
    loss = model(small_input()).sum()
    assert ("linear", "classifier.1") in _op_modules(loss)
    assert model.classifier[1].weight.name == "classifier.1.weight"
    outer = nn.Sequential(OrderedDict(net=model))
    assert ("conv2d", "net.features.0") in _op_modules(outer(small_input()).sum())
    assert model.features[0].weight.name == "net.features.0.weight"


def test_module_scope_is_popped_after_an_error():
    from tinygrad_lenet.autograd import current_module
    model = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(ValueError):
        model(Tensor(np.ones((2, 5), np.float32)))
    assert current_module() is None


# ------------------------------------------------------------------- clipping
def _params_with_grads(*grads: list[float]) -> list[nn.Parameter]:
    params = []
    for g in grads:
        p = nn.Parameter(np.zeros(len(g), np.float32))
        p.grad = np.array(g, np.float32)
        params.append(p)
    return params


def test_clip_grad_norm_scales_to_max_norm_and_returns_total():
    params = _params_with_grads([3.0, 0.0], [0.0, 4.0])
    params.append(nn.Parameter(np.zeros(2, np.float32)))  # no grad: ignored
    total = clip_grad_norm_(params, 1.0)
    assert isinstance(total, float) and total == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([p.grad for p in params[:2]]), [0.6, 0, 0, 0.8], rtol=1e-5)
    assert all(p.grad.dtype == np.float32 for p in params[:2])


def test_clip_grad_norm_leaves_small_grads_and_handles_inf_norm():
    params = _params_with_grads([0.3, -0.4])
    assert clip_grad_norm_(params, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(params[0].grad, np.array([0.3, -0.4], np.float32))
    params = _params_with_grads([1.0, -4.0], [2.0])
    assert clip_grad_norm_(params, 2.0, norm_type=math.inf) == 4.0
    np.testing.assert_allclose(params[0].grad, [0.5, -2.0], rtol=1e-5)
    nan = _params_with_grads([float("nan")])
    with pytest.raises(RuntimeError, match="total norm"):
        clip_grad_norm_(nan, 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0])
def test_clip_grad_norm_of_huge_finite_float32_grads_is_finite_and_clips(norm_type):
    params = _params_with_grads([3e30, 0.0], [0.0, 4e30])  # squares overflow float32, the norm does not
    total = clip_grad_norm_(params, 1.0, norm_type=norm_type)
    assert total == pytest.approx(np.linalg.norm([3e30, 4e30], ord=norm_type), rel=1e-6)
    grads = np.concatenate([p.grad for p in params])
    assert grads.dtype == np.float32 and np.linalg.norm(grads.astype(np.float64), ord=norm_type) == pytest.approx(1.0)


def test_clip_grad_value():
    params = _params_with_grads([-3.0, 0.5, 2.0])
    clip_grad_value_(params, 1.0)
    np.testing.assert_array_equal(params[0].grad, [-1.0, 0.5, 1.0])

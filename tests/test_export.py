"""Export: ONNX graphs checked by the onnx checker and run by onnxruntime on the MNIST
test set, and safetensors weights that PyTorch loads strictly (and the reverse). The
optional packages (the `export` extra, and PyTorch from `bench`) skip these tests on a
user's machine without them; in CI a skip fails."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from script_runner import one_line_error, run_main

from models import get_model
from tinygrad_lenet import Tensor, manual_seed, nn, no_grad
from tinygrad_lenet import functional as F
from tinygrad_lenet.checkpoint import save_checkpoint
from tinygrad_lenet.data import DATASETS, load_mnist, normalize_images
from tinygrad_lenet.export import ExportError, SafetensorsError, load_safetensors, save_safetensors, to_onnx

MNIST_MEAN_STD = DATASETS["mnist"].mean_std  # its published statistics


def needs(*modules: str) -> None:
    for m in modules:
        require(importlib.util.find_spec(m) is not None, f"{m} is not installed (pip install -e '.[export,bench]')")


def checkpoint_of(model_name: str, path: Path, model_spec: str | None = None, model=None) -> Path:
    """A checkpoint as train.py writes one (random weights, seed 1)."""
    manual_seed(1)
    model = model if model is not None else get_model(model_name)
    config = dict(model=model_spec or model_name, dataset="mnist", normalize_mean=MNIST_MEAN_STD[0],
                  normalize_std=MNIST_MEAN_STD[1])
    save_checkpoint(path, model_state=model.state_dict(), extra=dict(epoch=1, config=config))
    return path


def run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": images})[0]


@pytest.mark.parametrize("model_name", ["lenet5", "lenet5_1998"])
def test_onnx_export_gives_the_same_logits_on_the_mnist_test_set(model_name, tmp_path, real_mnist_dir):
    needs("onnx", "onnxruntime")
    import onnx
    ckpt = checkpoint_of(model_name, tmp_path / "ckpt.npz")
    code, out, err = run_main("export", "--checkpoint", ckpt, "--out", tmp_path / "model.onnx")
    assert code == 0, err
    onnx.checker.check_model(onnx.load(str(tmp_path / "model.onnx")), full_check=True)
    from models import load_trained_model
    model = load_trained_model(ckpt).model
    images, _ = load_mnist("test", root=real_mnist_dir)
    x = normalize_images(images, normalize=MNIST_MEAN_STD)
    got = np.concatenate([run_onnx(tmp_path / "model.onnx", x[i:i + 2500]) for i in range(0, 10_000, 2500)])
    with no_grad():
        ours = np.concatenate([model(Tensor(x[i:i + 2500])).data for i in range(0, 10_000, 2500)])
    assert got.shape == (10_000, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, ours, rtol=1e-5, atol=1e-5)
    assert (got.argmax(axis=1) == ours.argmax(axis=1)).all()
    for batch in (1, 7):  # the batch axis is dynamic
        np.testing.assert_allclose(run_onnx(tmp_path / "model.onnx", x[:batch]), ours[:batch], rtol=1e-5, atol=1e-5)


def test_a_model_from_a_users_file_exports(tmp_path):
    needs("onnx", "onnxruntime")
    (tmp_path / "my_net.py").write_text(
        "from tinygrad_lenet import nn\n\n\n"
        "class MyNet(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.GELU('tanh'),\n"
        "                                  nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4 * 14 * 14, 10), nn.Sigmoid())\n\n"
        "    def forward(self, x):\n"
        "        return self.body(x).log_softmax(1)\n")
    spec = f"{tmp_path / 'my_net.py'}:MyNet"
    from models import build_model
    manual_seed(3)
    model = build_model(spec, {})
    model.body[1].running_mean.data[:] = [0.1, -0.2, 0.3, 0.0]
    ckpt = checkpoint_of("unused", tmp_path / "ckpt.npz", model_spec=spec, model=model)
    code, _, err = run_main("export", "--checkpoint", ckpt, "--model", spec, "--format", "onnx",
                            "--out", tmp_path / "my.onnx")
    assert code == 0, err
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    with no_grad():
        ours = model.eval()(Tensor(x)).data
    np.testing.assert_allclose(run_onnx(tmp_path / "my.onnx", x), ours, rtol=1e-5, atol=1e-6)


def test_linear_on_more_than_two_axes_and_without_bias_exports(tmp_path):
    needs("onnx", "onnxruntime")
    import onnx

    class Rows(nn.Module):
        """A linear layer applied to every row of each image (3-D input), then one without bias."""
        def __init__(self):
            super().__init__()
            self.rows = nn.Linear(8, 5)
            self.out = nn.Linear(5, 3, bias=False)

        def forward(self, x):
            return self.out(self.rows(x.reshape(x.shape[0], 8, 8)).relu())

    manual_seed(4)
    model = Rows()
    proto = to_onnx(model, (1, 8, 8))
    onnx.checker.check_model(proto, full_check=True)
    assert {n.op_type for n in proto.graph.node} >= {"MatMul", "Transpose", "Add"}
    onnx.save(proto, str(tmp_path / "rows.onnx"))
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    with no_grad():
        ours = model.eval()(Tensor(x)).data
    np.testing.assert_allclose(run_onnx(tmp_path / "rows.onnx", x), ours, rtol=1e-5, atol=1e-6)


class Lambda(nn.Module):
    """A model whose forward pass is `fn` (no parameters)."""
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


MASK = np.random.default_rng(1).random((3, 4, 5)) > 0.5  # a constant: the same for every input

OP_CASES = {  # op -> forward passes that record it (input (N, 3, 4, 5)), each exported and run
    "clip": [lambda x: x.clip(-0.5, 0.7), lambda x: x.clip(min=0.1), lambda x: x.clip(max=-0.2)],
    "where": [lambda x: F.where(Tensor(MASK), x, x * 2)],
    "pow_tensor": [lambda x: (x.abs() + 1) ** Tensor(np.linspace(0.5, 2.5, 5, dtype=np.float32))],
    "concatenate": [lambda x: F.concatenate([x, x * 2], axis=1), lambda x: F.concatenate([x, -x], axis=-1)],
    "stack": [lambda x: F.stack([x, x + 1], axis=1), lambda x: F.stack([x, x * 3], axis=-1)],
    "elu": [lambda x: F.elu(x, alpha=0.7)],
    "leaky_relu": [lambda x: F.leaky_relu(x, 0.2)],
    "softplus": [lambda x: F.softplus(x), lambda x: F.softplus(x * 3, beta=2.0, threshold=1.0)],  # both branches
    "log1p": [lambda x: x.abs().log1p()],
    "expm1": [lambda x: x.expm1()],
    "flip": [lambda x: x.flip(1, 3), lambda x: x.flip(-1)],
    "cumsum": [lambda x: x.cumsum(2), lambda x: x.cumsum(-1)],
    "silu": [lambda x: F.silu(x)],
    "normalize": [lambda x: F.layer_norm(x, (5,)), lambda x: F.group_norm(x, 3)],
    "layer_norm": [lambda x: F.layer_norm(x, (5,), Tensor(np.linspace(0.5, 1.5, 5, dtype=np.float32)),
                                          Tensor(np.linspace(-1, 1, 5, dtype=np.float32))),
                   lambda x: F.layer_norm(x, (4, 5), Tensor(np.full((4, 5), 2.0, np.float32)),
                                          Tensor(np.full((4, 5), 0.5, np.float32)), eps=0.1)],
    "depthwise_conv2d": [lambda x: F.conv2d(x, Tensor(np.linspace(-1, 1, 27, dtype=np.float32).reshape(3, 1, 3, 3)),
                                            padding=1, groups=3),
                         lambda x: F.conv2d(x, Tensor(np.ones((3, 1, 2, 2), np.float32)), stride=2, dilation=(1, 2),
                                            groups=3)],
    "gelu": [lambda x: F.gelu(x), lambda x: F.gelu(x * 3), lambda x: F.gelu(x * 3, approximate="tanh")],
    "einsum": [lambda x: F.einsum("nchw,w->nch", x, Tensor(np.linspace(-1, 1, 5, dtype=np.float32))),
               lambda x: F.einsum("nchw,ncvw->nchv", x, x * 2), lambda x: F.einsum("...hw", x)],
    "getitem": [lambda x: x[:, 1], lambda x: x[:, ::-1, 1:3], lambda x: x[..., None, 2:],
                lambda x: x[:, -1, None, ::2], lambda x: x[:, 0:2, -3:-1, ::-2], lambda x: x[:, :, 3, -2],
                lambda x: x[:, 1:][:, None, ..., 1]],
}


@pytest.mark.parametrize("op", sorted(OP_CASES))
def test_each_op_exports_and_runs_the_same_in_onnxruntime_at_another_batch_size(op, tmp_path):
    needs("onnx", "onnxruntime")
    import onnx
    x = np.random.default_rng(2).standard_normal((5, 3, 4, 5)).astype(np.float32)  # traced at batch 2, run at 5
    for k, fn in enumerate(OP_CASES[op]):
        model = Lambda(fn)
        proto = to_onnx(model, x.shape[1:])
        onnx.save(proto, str(tmp_path / f"{op}{k}.onnx"))
        with no_grad():
            ours = fn(Tensor(x)).data
        got = run_onnx(tmp_path / f"{op}{k}.onnx", x)
        assert got.shape == ours.shape, (op, k)
        np.testing.assert_allclose(got, ours, rtol=2e-6, atol=2e-6, err_msg=f"{op} case {k}")


def test_every_op_an_eval_forward_pass_records_has_a_mapping_but_the_losses():
    """Unmapped: the losses, dropout and training-mode batch norm (recorded in training
    only) and the derivative ops that only a backward pass records."""
    from tinygrad_lenet import OPS
    from tinygrad_lenet.export.onnx import ONNX_OPS
    derivatives = {name for name in OPS if name.endswith("_grad")}
    assert set(OPS) - set(ONNX_OPS) - derivatives == {"cross_entropy", "mse_loss", "nll_loss", "dropout",
                                                                  "batch_norm"}
    assert set(OP_CASES) <= set(ONNX_OPS)


def test_an_array_index_is_refused_by_name():
    needs("onnx")
    with pytest.raises(ExportError, match="export: getitem with a ndarray index has no ONNX mapping"):
        to_onnx(Lambda(lambda x: x[:, np.array([0, 2])]), (3, 4))


def test_a_constant_computed_from_the_input_is_refused_not_baked_in():
    """x > 0 is not a recorded op: its result, written as a constant, would hold for
    the traced input only."""
    needs("onnx")
    with pytest.raises(ExportError, match=r"export: the 'where' op reads a tensor of shape \(2, 3, 4\) computed "
                                          r"from the model's input outside recorded ops"):
        to_onnx(Lambda(lambda x: F.where(x > 0, x, x * 0.1)), (3, 4))

    def branches(x):
        return x.relu() if float(x.data.max()) > 0 else x.tanh()  # zeros, then random values
    with pytest.raises(ExportError, match="records different ops for different inputs"):
        to_onnx(Lambda(branches), (3, 4))


def test_an_op_without_an_onnx_mapping_is_refused_by_name(tmp_path):
    needs("onnx")

    with pytest.raises(ExportError, match=r"export: op\(s\) 'mse_loss' have no ONNX mapping"):
        to_onnx(Lambda(lambda x: F.mse_loss(x, Tensor(np.zeros((2, 1, 4, 4), np.float32)))), (1, 4, 4))
    ckpt = tmp_path / "c.npz"
    checkpoint_of("lenet5", ckpt)
    code, _, err = run_main("export", "--checkpoint", ckpt, "--out", tmp_path / "model.pt")
    assert code == 2 and "--format: give onnx or safetensors" in one_line_error("export", err)


def torch_lenet5():
    """PyTorch's LeNet-5 with our layer structure (and so our parameter names)."""
    from torch import nn as tnn

    class TorchLeNet5(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
                                           tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2))
            self.classifier = tnn.Sequential(tnn.Flatten(), tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84),
                                             tnn.ReLU(), tnn.Linear(84, 10))

        def forward(self, x):
            return self.classifier(self.features(x))
    return TorchLeNet5().eval()


def test_safetensors_round_trips_with_pytorch(tmp_path):
    needs("safetensors", "torch")
    import safetensors.torch
    import torch
    ckpt = checkpoint_of("lenet5", tmp_path / "ckpt.npz")
    code, _, err = run_main("export", "--checkpoint", ckpt, "--out", tmp_path / "lenet5.safetensors")
    assert code == 0, err
    from models import load_trained_model
    ours = load_trained_model(ckpt).model
    theirs = torch_lenet5()
    theirs.load_state_dict(safetensors.torch.load_file(str(tmp_path / "lenet5.safetensors")), strict=True)
    x = np.random.default_rng(0).standard_normal((5, 1, 28, 28)).astype(np.float32)
    with no_grad(), torch.no_grad():
        np.testing.assert_allclose(theirs(torch.tensor(x)).numpy(), ours(Tensor(x)).data, rtol=1e-5, atol=1e-6)

    torch.manual_seed(0)  # and back: weights written by PyTorch, loaded here
    trained_elsewhere = torch_lenet5()
    safetensors.torch.save_file(trained_elsewhere.state_dict(), str(tmp_path / "torch.safetensors"))
    model = get_model("lenet5")
    model.load_state_dict(load_safetensors(tmp_path / "torch.safetensors"))
    with no_grad(), torch.no_grad():
        np.testing.assert_allclose(model(Tensor(x)).data, trained_elsewhere(torch.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)


def test_batch_norm_weights_load_strictly_in_pytorch(tmp_path):
    needs("safetensors", "torch")
    import safetensors.torch
    import torch
    manual_seed(0)
    ours = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
    ours(Tensor(np.random.default_rng(1).standard_normal((4, 1, 6, 6)).astype(np.float32)))  # running stats move
    save_safetensors(ours.state_dict(), tmp_path / "bn.safetensors")
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU())
    theirs.load_state_dict(safetensors.torch.load_file(str(tmp_path / "bn.safetensors")), strict=True)
    assert int(theirs[1].num_batches_tracked) == 1
    x = np.random.default_rng(2).standard_normal((2, 1, 6, 6)).astype(np.float32)
    ours.eval()
    theirs.eval()
    with no_grad(), torch.no_grad():
        np.testing.assert_allclose(theirs(torch.tensor(x)).numpy(), ours(Tensor(x)).data, rtol=1e-5, atol=1e-5)


def test_a_broken_safetensors_file_is_a_clear_error(tmp_path):
    needs("safetensors")
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(SafetensorsError, match="broken.safetensors: not a readable safetensors file"):
        load_safetensors(path)
    with pytest.raises(FileNotFoundError, match="safetensors file not found"):
        load_safetensors(tmp_path / "missing.safetensors")


# ------------------------------------------------------------------ layers beyond LeNet-5
def conv(**kwargs):
    return lambda: nn.Conv2d(kwargs.pop("c_in", 4), kwargs.pop("c_out", 6), kwargs.pop("k", 3), **kwargs)


LAYER_CASES = {  # every attribute away from its default somewhere; input (N, 4, 9, 8)
    "conv stride 2": conv(stride=2),
    "conv stride (1, 2), padding (0, 2)": conv(stride=(1, 2), padding=(0, 2)),
    "conv kernel (3, 2), no bias": conv(k=(3, 2), bias=False),
    "conv dilation 2": conv(dilation=2, padding=1),
    "conv dilation (2, 1), stride 2": conv(dilation=(2, 1), stride=2),
    "conv groups 2": conv(c_out=6, groups=2, padding=1),
    "conv depthwise": conv(c_out=4, groups=4, padding=1),
    "conv padding 'same'-sized": conv(k=5, padding=2),
    "conv transpose stride 2": lambda: nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
    "conv transpose 2x2, stride 2 (batch innermost in its reshapes)": lambda: nn.ConvTranspose2d(4, 3, 2, stride=2),
    "conv dilation (3, 2), groups 2 (by phases)": conv(c_out=6, groups=2, dilation=(3, 2), padding=2),
    "max pool 3, stride 1": lambda: nn.MaxPool2d(3, stride=1),
    "max pool (2, 3), stride (1, 2)": lambda: nn.MaxPool2d((2, 3), stride=(1, 2)),
    "max pool 3, stride 2, padding 1": lambda: nn.MaxPool2d(3, stride=2, padding=1),
    "max pool 2, ceil_mode": lambda: nn.MaxPool2d(2, ceil_mode=True),
    "avg pool 3, stride 1": lambda: nn.AvgPool2d(3, stride=1),
    "avg pool 3, stride 2, padding 1": lambda: nn.AvgPool2d(3, stride=2, padding=1),
    "avg pool padding 1, count_include_pad=False": lambda: nn.AvgPool2d(3, stride=2, padding=1,
                                                                        count_include_pad=False),
    "avg pool 2, ceil_mode": lambda: nn.AvgPool2d(2, ceil_mode=True),
    "adaptive avg pool (4, 3)": lambda: nn.AdaptiveAvgPool2d((4, 3)),
    "batch norm": lambda: nn.BatchNorm2d(4),
    "layer norm": lambda: nn.LayerNorm(8),
    "GELU": lambda: nn.GELU(),
    "GELU tanh": lambda: nn.GELU("tanh"),
    "constant padding -1": lambda: Lambda(lambda x: x.pad(((0, 0), (0, 0), (1, 2), (0, 1)), value=-1.0)),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_layers_beyond_lenet5_export_and_run_from_the_file_alone(case, tmp_path):
    """Each layer (with trained-looking statistics for batch norm) exported by export_onnx,
    then run by onnxruntime from the file at a batch size the trace never saw."""
    needs("onnx", "onnxruntime")
    from tinygrad_lenet.export import export_onnx
    manual_seed(4)
    layer = LAYER_CASES[case]()
    for name, buffer in layer.named_buffers():
        if name.endswith("running_mean"):
            buffer.data[:] = np.linspace(-0.5, 0.5, buffer.shape[0])
        elif name.endswith("running_var"):
            buffer.data[:] = np.linspace(0.5, 2.0, buffer.shape[0])
    path = tmp_path / "layer.onnx"
    export_onnx(layer, path, (4, 9, 8))
    x = np.random.default_rng(5).standard_normal((5, 4, 9, 8)).astype(np.float32)
    with no_grad():
        ours = layer.eval()(Tensor(x)).data
    got = run_onnx(path, x)
    assert got.shape == ours.shape
    np.testing.assert_allclose(got, ours, rtol=1e-5, atol=1e-5, err_msg=case)


def test_the_attributes_of_conv_and_pooling_nodes_are_onnx_s():
    """pads [top, left, bottom, right], strides and kernel_shape as the ONNX spec orders them."""
    needs("onnx")
    import onnx
    manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, (3, 5), stride=(1, 2), padding=(0, 2)), nn.MaxPool2d(3, stride=1),
                          nn.AvgPool2d((2, 1), stride=(1, 1)))
    nodes = {n.op_type: {a.name: list(onnx.helper.get_attribute_value(a)) for a in n.attribute}
             for n in to_onnx(model, (1, 12, 12)).graph.node}
    assert nodes["Conv"] == dict(pads=[0, 2, 0, 2], strides=[1, 2], kernel_shape=[3, 5])
    assert nodes["MaxPool"] == dict(kernel_shape=[3, 3], strides=[1, 1])
    assert nodes["AveragePool"] == dict(kernel_shape=[2, 1], strides=[1, 1])


# ------------------------------------------------------------------ what export refuses
class Branchy(nn.Module):
    """Python control flow on the input's values: one ONNX graph cannot hold both ways."""
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        h = self.fc(x.reshape(x.shape[0], -1))
        if float(x.data.mean()) > 0:
            return h.relu() * 2
        return h.tanh()


class BatchSizeBaked(nn.Module):
    """A branch on the batch size: every trace input has the trace's batch, so only the
    held-out batch of another size shows it."""
    def forward(self, x):
        return x.reshape(x.shape[0], -1) * (1.0 if x.shape[0] == 2 else -1.0)


def test_data_dependent_control_flow_is_refused_by_name(tmp_path):
    needs("onnx", "onnxruntime")
    from tinygrad_lenet.export import export_onnx
    with pytest.raises(ExportError, match=r"records different ops for different inputs .*Python control flow on "
                                          r"the input's values"):
        export_onnx(Branchy(), tmp_path / "b.onnx", (1, 4, 4))
    with pytest.raises(ExportError, match=r"onnxruntime disagrees with the model on a held-out batch \(largest "
                                          r"difference .*\); the file was not written"):
        export_onnx(BatchSizeBaked(), tmp_path / "c.onnx", (1, 4, 4))
    assert list(tmp_path.iterdir()) == []


def test_export_py_refuses_a_branchy_users_model_and_writes_nothing(tmp_path):
    needs("onnx", "onnxruntime")
    (tmp_path / "branchy.py").write_text(
        "from tinygrad_lenet import nn\n\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(28 * 28, 10)\n\n"
        "    def forward(self, x):\n"
        "        h = self.fc(x.reshape(x.shape[0], -1))\n"
        "        return h.relu() if float(x.data.mean()) > 0 else h.tanh()\n")
    spec = f"{tmp_path / 'branchy.py'}:Net"
    from models import build_model
    ckpt = checkpoint_of("unused", tmp_path / "ckpt.npz", model_spec=spec, model=build_model(spec, {}))
    code, _, err = run_main("export", "--checkpoint", ckpt, "--model", spec, "--out", tmp_path / "m.onnx")
    assert code == 2 and "Python control flow on the input's values" in one_line_error("export", err)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("kind", ["device", "fifo", "directory", "symlink to a device"])
def test_export_writes_only_new_paths_or_regular_files(tmp_path, kind):
    import os
    import stat
    ckpt = checkpoint_of("lenet5", tmp_path / "ckpt.npz")
    target = {"device": tmp_path / "null", "fifo": tmp_path / "fifo", "directory": tmp_path / "dir",
              "symlink to a device": tmp_path / "link"}[kind]
    device = tmp_path / "null"
    try:  # a device node of its own (as root), so that a failing export cannot replace the system's
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:  # elsewhere /dev is not writable, so the system's cannot be replaced either
        device = Path("/dev/null")
        target = device if kind == "device" else target
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    elif kind == "symlink to a device":
        target.symlink_to(device)
    before = os.lstat(target)
    for fmt in ("onnx", "safetensors"):
        code, out, err = run_main("export", "--checkpoint", ckpt, "--format", fmt, "--out", target)
        line = one_line_error("export", err)
        assert code == 2 and f"--out: {target} is a" in line and "not a regular file" in line, line
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)


def test_atomic_writes_never_replace_a_special_file(tmp_path):
    import os

    from tinygrad_lenet.atomic import atomic_write_bytes
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError, match="fifo is a FIFO, not a regular file"):
        atomic_write_bytes(tmp_path / "fifo", b"x")
    atomic_write_bytes(tmp_path / "new", b"x")
    atomic_write_bytes(tmp_path / "new", b"y")  # a regular file is replaced
    assert (tmp_path / "new").read_bytes() == b"y" and sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "new"]


def consumer_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python cannot import tinygrad_lenet (a package of that name
    first on the path refuses), as a consumer who has only the .onnx file."""
    import os
    blocker = tmp_path / "blocked" / "tinygrad_lenet"
    blocker.mkdir(parents=True, exist_ok=True)
    (blocker / "__init__.py").write_text("raise ImportError('the consumer has only the .onnx file')\n")
    return {**os.environ, "PYTHONPATH": str(blocker.parent), "PYTHONWARNINGS": "error"}


@pytest.mark.slow
def test_a_consumer_with_only_the_onnx_file_classifies_pictures_as_predict_py_does(tmp_path, real_mnist_dir):
    """Export a trained LeNet-5 (with and without normalization in the graph), then, in a
    Python that cannot import this project, read the file's metadata and classify PNGs of
    MNIST test digits drawn as people have them: inverted, enlarged, small and off-centre."""
    needs("onnx", "onnxruntime")
    import json
    import subprocess
    import sys

    import onnx
    from PIL import Image
    from script_runner import ROOT
    code, _, err = run_main("train", "--epochs", "1", "--train-subset", "20000", "--out", tmp_path / "run",
                            "--data-dir", real_mnist_dir, "--seed", "0")
    assert code == 0, err
    images, labels = load_mnist("test", root=real_mnist_dir)
    pictures = []
    for n in range(12):
        digit = images[n]
        if n % 3 == 1:  # dark ink on white paper, four times the size
            picture = 255 - np.kron(digit, np.ones((4, 4), np.uint8))
        elif n % 3 == 2:  # small, off-centre, on a big white page
            picture = np.full((90, 120), 250, np.uint8)
            picture[10:38, 70:98] = 255 - digit
        else:
            picture = digit
        pictures.append(tmp_path / f"digit{n}.png")
        Image.fromarray(picture).save(pictures[-1])
    code, out, err = run_main("predict", "--checkpoint", tmp_path / "run" / "checkpoint.npz", "--image", *pictures,
                              "--json")
    assert code == 0, err
    expected = [p["predicted"] for p in json.loads(out)["predictions"]]
    assert sum(e == y for e, y in zip(expected, labels[:12])) >= 10, expected  # a trained model reads them

    for raw in (False, True):
        path = tmp_path / f"lenet5{'_raw' if raw else ''}.onnx"
        code, _, err = run_main("export", "--checkpoint", tmp_path / "run" / "checkpoint.npz", "--out", path,
                                *(["--with-preprocessing"] if raw else []))
        assert code == 0, err
        proto = onnx.load(str(path))
        meta = {p.key: p.value for p in proto.metadata_props}
        assert json.loads(meta["classes"]) == [str(k) for k in range(10)]
        assert meta["normalization_in_graph"] == ("yes" if raw else "no")
        assert float(meta["normalize_mean"]) == pytest.approx(MNIST_MEAN_STD[0], rel=1e-6)
        assert "white ink on a black background" in meta["polarity"] and "centre of mass" in meta["preprocessing"]
        assert meta["dataset"] == "mnist" and 0.9 < float(meta["test_accuracy"]) <= 1.0
        assert "Input 'input': float32 (batch, 1, 28, 28)" in proto.doc_string and "0.1307" in proto.doc_string
        proc = subprocess.run([sys.executable, str(ROOT / "examples" / "onnx_predict.py"), str(path), *map(str, pictures),
                               "--json"], cwd=tmp_path, env=consumer_env(tmp_path), capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        got = [int(r["class"]) for r in json.loads(proc.stdout)]
        assert got == expected, (raw, got, expected)


def test_the_consumer_really_cannot_import_the_project(tmp_path):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", "import tinygrad_lenet"], env=consumer_env(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "the consumer has only the .onnx file" in proc.stderr


def test_raw_pixel_graph_normalizes_as_the_data_loader_does(tmp_path):
    """--with-preprocessing's graph on raw 0-255 pixels gives the logits the model gives on
    the loader's normalized images."""
    needs("onnx", "onnxruntime")
    from tinygrad_lenet.data import pixel_scale_shift
    from tinygrad_lenet.export import InputScaling
    manual_seed(3)
    model = get_model("lenet5").eval()
    pixels = np.random.default_rng(0).integers(0, 256, (4, 1, 28, 28)).astype(np.uint8)
    proto = to_onnx(InputScaling(model, *pixel_scale_shift(np.dtype(np.uint8), MNIST_MEAN_STD)), (1, 28, 28))
    (tmp_path / "raw.onnx").write_bytes(proto.SerializeToString())
    with no_grad():
        ours = model(Tensor(normalize_images(pixels, normalize=MNIST_MEAN_STD))).data
    np.testing.assert_allclose(run_onnx(tmp_path / "raw.onnx", pixels.astype(np.float32)), ours, rtol=1e-5, atol=1e-5)

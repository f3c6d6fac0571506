"""A model defined in the user's own file goes through every script, rebuilt from the
checkpoint alone; bad model specs, the overwrite guard, --resume alone and IDX
directories of other data sets."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from script_runner import run_script as run

from models import ModelSpecError, build_model, load_trained_model
from tinygrad_lenet.config import RunConfig
from tinygrad_lenet.data import write_idx

ROOT = Path(__file__).resolve().parents[1]

MY_NET = '''
from tinygrad_lenet import nn


class MyNet(nn.Module):
    """A small CNN with dropout."""

    def __init__(self, width: int = 8, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.25), nn.Linear(2 * width * 7 * 7, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def tiny(num_classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, num_classes))


NOT_A_MODEL = 42


class NotAModule:
    pass


def wrong_size():
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 7))
'''


@pytest.fixture
def my_net(tmp_path: Path) -> Path:
    path = tmp_path / "my_net.py"
    path.write_text(MY_NET)
    return path


@pytest.mark.slow
def test_a_model_from_a_file_goes_through_every_script(my_net, tmp_path, real_mnist_dir):
    out = tmp_path / "run"
    trained = run("train.py", "--model", f"{my_net}:MyNet", "--model-arg", "width=6", "--train-subset", "6000",
                  "--test-subset", "1000", "--epochs", "2", "--no-progress", "--out", str(out))
    assert "MyNet" in trained.stdout or "my_net" in trained.stdout
    ckpt = out / "checkpoint.npz"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_test_accuracy"] > 0.8  # chance is 0.1
    assert metrics["config"]["model_args"] == {"width": 6, "num_classes": 10}
    assert len(metrics["config"]["model_sha256"]) == 64

    # the checkpoint names code: no script imports it unasked, and each says in one line what to add
    refused = run("evaluate.py", "--checkpoint", str(ckpt), check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"--model {my_net}:MyNet" in refused.stderr.strip().splitlines()[-1]

    # every other script needs the checkpoint and the model file's name: no --model-arg
    spec = f"{my_net}:MyNet"
    evaluated = run("evaluate.py", "--checkpoint", str(ckpt), "--model", spec, "--test-subset", "1000")
    assert f"accuracy: {metrics['final_test_accuracy']:.4f}" in evaluated.stdout
    predicted = json.loads(run("predict.py", "--checkpoint", str(ckpt), "--model", spec, "--index", "0", "1",
                               "--json").stdout)
    assert predicted["model"] == spec and len(predicted["predictions"]) == 2
    run("visualize.py", "--checkpoint", str(ckpt), "--model", spec, "--out", str(tmp_path / "g.dot"))
    run("export.py", "--checkpoint", str(ckpt), "--model", spec, "--out", str(tmp_path / "my_net.onnx"))
    assert (tmp_path / "my_net.onnx").stat().st_size > 0
    assert "features.0" in (tmp_path / "g.dot").read_text()
    run("visualize.py", "--model", spec, "--model-arg", "width=4", "--out", str(tmp_path / "m.dot"))
    trusted = run("evaluate.py", "--checkpoint", str(ckpt), "--trust-checkpoint-code", "--test-subset", "1000")
    assert f"accuracy: {metrics['final_test_accuracy']:.4f}" in trusted.stdout

    from viz.app import DigitPredictor, make_server
    predictor = DigitPredictor.from_checkpoint(ckpt, model=spec)
    server = make_server(predictor, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        drawing = np.zeros((100, 100), np.uint8)
        drawing[20:80, 45:55] = 255  # a "1"
        body = json.dumps(dict(width=100, height=100, pixels=base64.b64encode(drawing.tobytes()).decode()))
        host, port = server.server_address[:2]
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 200, answer
        conn.request("GET", "/info")
        info = json.loads(conn.getresponse().read())
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert len(answer["probabilities"]) == 10 and answer["layers"][0]["name"] == "features.0"
    assert answer["model"] == f"{my_net}:MyNet" and info["heading"] == "Draw a digit"

    # the file changes after training: said clearly, and the weights still load when they fit
    my_net.write_text(MY_NET + "\n# edited\n")
    warnings: list[str] = []
    model = load_trained_model(ckpt, warn=warnings.append, model=spec).model
    assert len(warnings) == 1 and "has changed since" in warnings[0]
    assert model.features[0].weight.shape == (6, 1, 3, 3)
    proc = run("evaluate.py", "--checkpoint", str(ckpt), "--model", spec, "--test-subset", "100")
    assert "has changed since" in proc.stderr
    # trusting the checkpoint's code covers the file it was trained with, not another one
    proc = run("evaluate.py", "--checkpoint", str(ckpt), "--trust-checkpoint-code", check=False)
    assert proc.returncode == 2 and "has changed since" in proc.stderr.strip().splitlines()[-1]


def test_a_model_from_a_module_path_and_a_function(my_net, tmp_path):
    sys.path.insert(0, str(my_net.parent))
    try:
        model = build_model("my_net:tiny", {"num_classes": 3})
    finally:
        sys.path.remove(str(my_net.parent))
    assert next(model.parameters()).shape == (3, 28 * 28)
    assert next(build_model(f"{my_net}:tiny").parameters()).shape == (10, 28 * 28)


@pytest.mark.parametrize("attr, message", [
    ("Missing", "has no attribute 'Missing'; it defines: MyNet, NotAModule, tiny, wrong_size"),
    ("NOT_A_MODEL", "NOT_A_MODEL is a int, not an nn.Module subclass or a function returning a module"),
    ("NotAModule", "NotAModule is a class but not an nn.Module subclass"),
])
def test_bad_model_attributes_are_clear_errors(my_net, attr, message):
    with pytest.raises(ModelSpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_model(f"{my_net}:{attr}")


def test_script_errors_come_before_any_training(my_net, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def model(:\n    pass\n")
    cases = [
        ([f"{tmp_path / 'nowhere.py'}:Net"], "no such file"),
        ([f"{broken}:model"], "syntax error in"),
        ([f"{my_net}:Missing"], "has no attribute 'Missing'"),
        ([f"{my_net}:NotAModule"], "is a class but not an nn.Module subclass"),
        ([f"{my_net}:wrong_size"], "outputs shape (2, 7) for a batch of 2 images, but the data set has 10 classes"),
        ([f"{my_net}:MyNet", "--model-arg", "depth=3"], "cannot build it with depth=3"),
        (["no_such_package.module:Net"], "cannot import no_such_package.module"),
    ]
    data = tmp_path / "data"
    write_idx_dataset(data, num_classes=10, n_train=40, n_test=10)
    for spec, message in cases:
        proc = run("train.py", "--model", *spec, "--dataset", str(data), "--out", str(tmp_path / "o"), check=False)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, (spec, proc.stderr)
        assert not (tmp_path / "o").exists()


def write_idx_dataset(directory: Path, num_classes: int, n_train: int, n_test: int, seed: int = 0) -> None:
    """A learnable IDX data set in MNIST's layout: class k is a bright k-th band of rows."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % num_classes
        images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            row = k * 28 // num_classes
            images[i, row:row + 2, 4:24] = 255
        write_idx(directory / f"{split}-images-idx3-ubyte", images)
        write_idx(directory / f"{split}-labels-idx1-ubyte.gz" if split == "train" else
                  directory / f"{split}-labels-idx1-ubyte", labels.astype(np.uint8))


def test_an_idx_directory_with_26_classes_trains_a_26_way_model(my_net, tmp_path):
    data = tmp_path / "letters"
    write_idx_dataset(data, num_classes=26, n_train=520, n_test=104)
    (data / "classes.txt").write_text("\n".join(chr(ord("a") + k) for k in range(26)) + "\n")
    out = tmp_path / "run"
    run("train.py", "--model", f"{my_net}:MyNet", "--dataset", str(data), "--epochs", "3", "--batch-size", "32",
        "--no-progress", "--out", str(out))
    trained = load_trained_model(out / "checkpoint.npz", model=f"{my_net}:MyNet")
    assert trained.classes == tuple("abcdefghijklmnopqrstuvwxyz")
    assert trained.model.classifier[-1].weight.shape[0] == 26
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_test_accuracy"] > 0.5  # chance is 1/26
    evaluated = run("evaluate.py", "--checkpoint", str(out / "checkpoint.npz"), "--model", f"{my_net}:MyNet")
    assert "per-class accuracy: a: " in evaluated.stdout


def test_runs_are_never_overwritten_and_resume_needs_no_options(tmp_path):
    data = tmp_path / "data"
    write_idx_dataset(data, num_classes=10, n_train=64, n_test=20)
    out = tmp_path / "run"
    common = ["--dataset", str(data), "--batch-size", "16", "--no-progress", "--out", str(out)]
    run("train.py", *common, "--epochs", "3", "--stop-after", "1")
    ckpt = out / "checkpoint.npz"
    first = ckpt.read_bytes()

    proc = run("train.py", *common, "--epochs", "2", check=False)
    assert proc.returncode == 2 and f"{out} already holds a checkpoint" in proc.stderr
    assert ckpt.read_bytes() == first  # nothing was lost

    resumed = run("train.py", "--resume", str(ckpt), "--no-progress")  # the stored settings, the same directory
    assert "epoch 3:" in resumed.stdout and "epoch 1:" not in resumed.stdout
    assert json.loads((out / "metrics.json").read_text())["epochs"][-1]["epoch"] == 3

    conflict = run("train.py", "--resume", str(ckpt), "--lr", "0.2", check=False)
    lr = RunConfig().lr  # the run's, the default
    assert conflict.returncode == 2 and f"was trained with other settings: lr={lr} (now 0.2)" in conflict.stderr
    run("train.py", "--resume", str(ckpt), "--lr", str(lr), "--no-progress")  # agreeing options are fine

    again = run("train.py", *common, "--epochs", "1", "--overwrite")
    assert "epoch 1:" in again.stdout and json.loads((out / "metrics.json").read_text())["epochs"][-1]["epoch"] == 1


def test_a_wrong_data_dir_is_an_error_even_with_the_environment_variable_set(tmp_path, real_mnist_dir):
    env_set = os.environ.get("TINYGRAD_LENET_DATA")
    assert env_set  # real_mnist_dir guarantees it
    proc = run("train.py", "--data-dir", str(tmp_path / "typo"), "--out", str(tmp_path / "o"), check=False)
    assert proc.returncode == 2 and f"--data-dir: no such directory: {tmp_path / 'typo'}" in proc.stderr


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    data = tmp_path / "data"
    write_idx_dataset(data, num_classes=10, n_train=256, n_test=20)
    out = tmp_path / "run"
    common = ["--dataset", str(data), "--batch-size", "16", "--no-progress", "--out", str(out), "--epochs", "1"]
    run("train.py", *common)
    good = (out / "checkpoint.npz").read_bytes()
    proc = run("train.py", *common, "--overwrite", "--lr", "1e30", "--schedule", "none", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert re.search(r"train.py: error: epoch 1: loss is (nan|inf) at step \d+", proc.stderr), proc.stderr
    assert "the last good checkpoint" in proc.stderr
    assert (out / "checkpoint.npz").read_bytes() == good


def test_a_checkpoint_with_non_finite_weights_is_refused_by_every_script(tmp_path):
    from models import get_model
    from tinygrad_lenet.checkpoint import save_checkpoint
    state = get_model("lenet5").state_dict()
    state["features.0.weight"] = np.full_like(np.asarray(state["features.0.weight"]), np.nan)
    ckpt = tmp_path / "nan.npz"
    save_checkpoint(ckpt, model_state=state, extra=dict(config=dict(model="lenet5", dataset="mnist")))
    message = f"cannot load {ckpt}: non-finite values (NaN or infinity) in features.0.weight (150 of 150)"
    for script, args in (("evaluate.py", []), ("predict.py", ["--index", "0"]), ("digit_app.py", ["--port", "0"])):
        proc = run(script, "--checkpoint", str(ckpt), *args, check=False)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert load_trained_model(ckpt, allow_non_finite=True).model is not None  # for inspection

"""End-to-end tests of scripts/train.py and scripts/evaluate.py on real MNIST
(TINYGRAD_LENET_DATA points at the files; CI sets it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from script_runner import run_script

from models import get_model, load_trained_model
from tinygrad_lenet.checkpoint import load_checkpoint, save_checkpoint
from tinygrad_lenet.data import DATASETS, get_dataset_spec, load_mnist, locate_files, normalize_images
from tinygrad_lenet.data.idx import read_idx_bytes
from tinygrad_lenet.training import evaluate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mnist_dir(real_mnist_dir: str) -> str:
    return real_mnist_dir


def small_run(out: Path, *extra: str) -> list[str]:
    return ["--train-subset", "512", "--test-subset", "256", "--batch-size", "64", "--epochs", "2",
            "--no-progress", "--out", str(out), *extra]


@pytest.mark.slow
def test_short_training_on_real_mnist_is_clearly_above_chance(mnist_dir, tmp_path):
    out = tmp_path / "run"
    proc = run_script("train.py", "--train-subset", "10000", "--test-subset", "2000", "--epochs", "2",
                      "--optimizer", "adam", "--lr", "0.002", "--schedule", "none", "--weight-decay", "0",
                      "--no-progress", "--out", str(out))
    metrics = json.loads((out / "metrics.json").read_text())
    accuracy = metrics["final_test_accuracy"]
    assert accuracy >= 0.95, proc.stdout
    assert len(metrics["epochs"]) == 2
    assert {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "train_seconds", "images_per_s",
            "lr"} <= set(metrics["epochs"][0])
    assert metrics["config"]["model"] == "lenet5"

    evaluated = run_script("evaluate.py", "--checkpoint", str(out / "checkpoint.npz"), "--test-subset", "2000")
    line = next(t for t in evaluated.stdout.splitlines() if t.startswith("accuracy: "))
    assert float(line.split()[1]) == pytest.approx(accuracy, abs=1e-4)
    assert "confusion matrix" in evaluated.stdout


def test_same_seed_gives_the_same_weights_and_losses(mnist_dir, tmp_path):
    run_script("train.py", *small_run(tmp_path / "a"))
    run_script("train.py", *small_run(tmp_path / "b"))
    a, b = load_checkpoint(tmp_path / "a" / "checkpoint.npz"), load_checkpoint(tmp_path / "b" / "checkpoint.npz")
    for key in a["model_state"]:
        np.testing.assert_array_equal(a["model_state"][key], b["model_state"][key])
    losses = [[e["train_loss"] for e in json.loads((tmp_path / r / "metrics.json").read_text())["epochs"]]
              for r in ("a", "b")]
    assert losses[0] == losses[1]

    run_script("train.py", *small_run(tmp_path / "c", "--seed", "1"))
    c = load_checkpoint(tmp_path / "c" / "checkpoint.npz")
    assert not np.array_equal(a["model_state"]["features.0.weight"], c["model_state"]["features.0.weight"])


@pytest.mark.parametrize("extra", [(), ("--augment", "--optimizer", "adam", "--schedule", "step")])
def test_resume_continues_exactly_where_it_stopped(mnist_dir, tmp_path, extra):
    run_script("train.py", *small_run(tmp_path / "full", *extra))
    # The same run stopped after one epoch (its checkpoint), then resumed for the second.
    first = small_run(tmp_path / "part", *extra)
    first[first.index("--epochs") + 1] = "1"
    run_script("train.py", *first)
    partial = load_checkpoint(tmp_path / "part" / "checkpoint.npz")
    assert partial["extra"]["epoch"] == 1
    # a stopped run has a schedule of its own length; resuming asks for the full length
    full_cfg = small_run(tmp_path / "part", *extra)
    ckpt_file = tmp_path / "part" / "checkpoint.npz"
    proc = run_script("train.py", *full_cfg, "--resume", str(ckpt_file), check=False)
    assert proc.returncode == 2 and "epochs" in proc.stderr, proc.stderr

    # resuming a run that was configured for 2 epochs and stopped after 1
    run_script("train.py", *small_run(tmp_path / "stopped", *extra), "--stop-after", "1")
    stopped = tmp_path / "stopped" / "checkpoint.npz"
    assert load_checkpoint(stopped)["extra"]["epoch"] == 1
    run_script("train.py", *small_run(tmp_path / "stopped", *extra), "--resume", str(stopped))
    full, resumed = load_checkpoint(tmp_path / "full" / "checkpoint.npz"), load_checkpoint(stopped)
    assert resumed["extra"]["epoch"] == 2
    for key in full["model_state"]:
        np.testing.assert_array_equal(full["model_state"][key], resumed["model_state"][key], err_msg=key)
    full_hist = [{k: v for k, v in e.items() if k not in ("train_seconds", "images_per_s")}
                 for e in full["extra"]["history"]]
    resumed_hist = [{k: v for k, v in e.items() if k not in ("train_seconds", "images_per_s")}
                    for e in resumed["extra"]["history"]]
    assert full_hist == resumed_hist


@pytest.mark.parametrize("args, message", [
    (["--resume", "does/not/exist.npz"], "argument --resume: no such file: does/not/exist.npz"),
    (["--lr", "-0.1"], "--lr: must be a positive finite number, got -0.1"),
    (["--lr", "inf"], "--lr: must be a positive finite number, got inf"),
    (["--lr", "abc"], "argument --lr: expected a number, got 'abc'"),
    (["--batch-size", "0"], "--batch-size: must be a positive integer"),
    (["--epochs", "0"], "--epochs: must be a positive integer"),
    (["--weight-decay", "-1"], "--weight-decay: must be a finite number >= 0, got -1.0"),
    (["--label-smoothing", "1.5"], "--label-smoothing: must be in [0, 1], got 1.5"),
    (["--momentum", "5"], "--momentum: must be in [0, 1), got 5.0"),
    (["--momentum", "1"], "--momentum: must be in [0, 1), got 1.0"),
    (["--momentum", "-0.5"], "--momentum: must be in [0, 1), got -0.5"),
    (["--momentum", "nan"], "--momentum: must be in [0, 1), got nan"),
    (["--gamma", "3"], "--gamma: must be in (0, 1] (a factor the learning rate is multiplied by), got 3.0"),
    (["--weight-decay", "nan"], "--weight-decay: must be a finite number >= 0, got nan"),
    (["--clip-grad-norm", "0"], "--clip-grad-norm: must be a positive finite number, got 0.0"),
    (["--target-accuracy", "1.5"], "--target-accuracy: must be in (0, 1], got 1.5"),
    (["--model", "nope"], "--model nope: not a registered model (lenet5, lenet5_1998)"),
    (["--model", "../../etc/passwd:X"], "--model ../../etc/passwd:X: '../../etc/passwd' is neither a module path"),
    (["--model", ".hidden:X"], "--model .hidden:X: '.hidden' is a relative module path"),
    (["--model", "..foo:X"], "--model ..foo:X: '..foo' is a relative module path"),
    (["--model", "os:1x"], "--model os:1x: '1x' is not a Python name"),
    (["--seed", "-1"], "--seed: must be an integer >= 0, got -1"),
    (["--workers", "0"], "--workers: must be a positive integer"),
    (["--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    (["--model-arg", "no_equals_sign"], "expected KEY=VALUE"),
    (["--data-dir", "does/not/exist"], "--data-dir: no such directory: does/not/exist"),
    (["--dataset", "does/not/exist"], "--dataset: 'does/not/exist' is neither mnist, fashion-mnist nor a directory"),
])
def test_bad_arguments_are_argparse_errors(args, message):
    proc = run_script("train.py", *args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_resume_of_a_file_that_is_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "bogus.npz"
    bogus.write_bytes(b"not a checkpoint")
    proc = run_script("train.py", "--resume", str(bogus), "--out", str(tmp_path / "o"), check=False)
    assert proc.returncode == 2
    assert str(bogus) in proc.stderr


def test_evaluate_of_a_missing_checkpoint(tmp_path):
    proc = run_script("evaluate.py", "--checkpoint", str(tmp_path / "missing.npz"), check=False)
    assert proc.returncode == 2 and "missing.npz" in proc.stderr


FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def test_lenet5_1998_on_fashion_mnist_is_built_for_its_normalization(tmp_path):
    """lenet5_1998 maps its normalized input back to pixels, so train, evaluate and
    predict must build it with the statistics the data were normalized with."""
    require(FASHION_DIR.is_dir(), f"{FASHION_DIR} is missing (apt-get install dataset-fashion-mnist)")
    out = tmp_path / "run"
    run_script("train.py", "--model", "lenet5_1998", "--dataset", "fashion-mnist", "--train-subset", "256",
               "--test-subset", "200", "--batch-size", "64", "--epochs", "1", "--no-progress", "--out", str(out))
    ckpt = out / "checkpoint.npz"
    state = load_checkpoint(ckpt)["model_state"]
    images, labels = load_mnist("test", dataset="fashion-mnist", download=False)
    x = normalize_images(images[:200], normalize="fashion-mnist")

    def test_loss(model) -> float:
        model.load_state_dict(state)
        return evaluate(model, x, labels[:200])[0]

    mean, std = get_dataset_spec("fashion-mnist").mean_std
    expected = test_loss(get_model("lenet5_1998", input_mean=mean, input_std=std))
    assert abs(test_loss(get_model("lenet5_1998")) - expected) > 1e-4  # MNIST's statistics would show
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"][-1]["test_loss"] == pytest.approx(expected, rel=1e-6)
    run_script("evaluate.py", "--checkpoint", str(ckpt), "--test-subset", "200", "--json", str(tmp_path / "e.json"))
    assert json.loads((tmp_path / "e.json").read_text())["loss"] == pytest.approx(expected, rel=1e-6)
    model = load_trained_model(ckpt).model
    assert test_loss(model) == pytest.approx(expected, rel=1e-6)


def other_architecture_checkpoint(path: Path) -> None:
    """A checkpoint whose config says lenet5 but whose weights are of another shape."""
    state = get_model("lenet5").state_dict()
    state["features.0.weight"] = state["features.0.weight"][:3]
    del state["classifier.5.bias"]
    save_checkpoint(path, model_state=state, extra=dict(epoch=1, config=dict(model="lenet5", dataset="mnist")))


def test_evaluate_of_another_architecture_lists_the_mismatches(tmp_path):
    ckpt = tmp_path / "other.npz"
    other_architecture_checkpoint(ckpt)
    proc = run_script("evaluate.py", "--checkpoint", str(ckpt), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"--checkpoint: cannot load {ckpt}: the weights do not fit lenet5" in proc.stderr
    assert "1 missing key (classifier.5.bias)" in proc.stderr
    assert "size mismatch for features.0.weight: expected shape (6, 1, 5, 5), got (3, 1, 5, 5)" in proc.stderr


def test_evaluate_rejects_an_empty_test_subset(tmp_path):
    proc = run_script("evaluate.py", "--test-subset", "0", check=False)
    assert proc.returncode == 2 and "--test-subset: must be a positive integer, got 0" in proc.stderr


@pytest.fixture
def corrupted_mnist(real_mnist_dir: str, tmp_path: Path) -> Path:
    """Real MNIST with the test labels' last byte changed (a valid gzip of wrong bytes)."""
    directory = tmp_path / "corrupted"
    directory.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (directory / name).write_bytes(read_idx_bytes(locate_files(
            "train" if name.startswith("train") else "test", root=real_mnist_dir, download=False)[
            0 if "images" in name else 1]))
    labels = bytearray(read_idx_bytes(locate_files("test", root=real_mnist_dir, download=False)[1]))
    labels[-1] = (labels[-1] + 1) % 10
    (directory / "t10k-labels-idx1-ubyte").write_bytes(bytes(labels))
    return directory


def test_corrupted_data_is_a_clear_error_in_train_and_evaluate(corrupted_mnist, tmp_path):
    expected_sha = DATASETS["mnist"].files["test"][1].sha256
    ckpt = tmp_path / "ck.npz"
    save_checkpoint(ckpt, model_state=get_model("lenet5").state_dict(),
                    extra=dict(epoch=1, config=dict(model="lenet5", dataset="mnist")))
    for script, args in [("train.py", ["--out", str(tmp_path / "o")]), ("evaluate.py", ["--checkpoint", str(ckpt)])]:
        proc = run_script(script, "--data-dir", str(corrupted_mnist), *args, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert str(corrupted_mnist / "t10k-labels-idx1-ubyte") in proc.stderr and expected_sha in proc.stderr
    assert not (tmp_path / "o" / "checkpoint.npz").exists()


def test_resume_of_a_checkpoint_not_written_by_train(tmp_path):
    ckpt = tmp_path / "weights.npz"
    save_checkpoint(ckpt, model_state=get_model("lenet5").state_dict())
    proc = run_script("train.py", "--resume", str(ckpt), "--out", str(tmp_path / "o"), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"--resume: {ckpt} has no run config, epoch and history" in proc.stderr


def test_evaluate_json_goes_into_a_new_directory(mnist_dir, tmp_path):
    ckpt = tmp_path / "ck.npz"
    save_checkpoint(ckpt, model_state=get_model("lenet5").state_dict(),
                    extra=dict(epoch=1, config=dict(model="lenet5", dataset="mnist")))
    out = tmp_path / "new" / "dir" / "eval.json"
    proc = run_script("evaluate.py", "--checkpoint", str(ckpt), "--test-subset", "100", "--json", str(out),
                      check=False)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(out.read_text())) == {"accuracy", "loss", "classes", "per_class_accuracy",
                                                      "confusion_matrix"}


def test_a_stored_config_without_label_smoothing_means_none():
    """Checkpoints written before the setting existed were trained without it: resuming
    one must not switch it on because today's default does."""
    from tinygrad_lenet.config import RunConfig
    stored = RunConfig(lr=0.05).to_dict()
    del stored["label_smoothing"]
    assert RunConfig().label_smoothing > 0 and RunConfig.from_dict(stored).label_smoothing == 0.0
    assert RunConfig.from_dict(RunConfig().to_dict()) == RunConfig()


def test_train_one_epoch_minimizes_the_label_smoothed_loss():
    """The loss train_one_epoch reports and steps on is cross-entropy with the given label
    smoothing: one SGD step from the same weights equals one taken by hand."""
    from tinygrad_lenet import Tensor, grad, manual_seed, optim
    from tinygrad_lenet import functional as F
    from tinygrad_lenet.training import train_one_epoch
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 8)
    models = []
    for _ in range(2):
        manual_seed(0)
        models.append(get_model("lenet5"))
    by_loop, by_hand = models
    stats = train_one_epoch(by_loop, [(x, y)], optim.SGD(by_loop.parameters(), lr=0.1), label_smoothing=0.3)
    by_hand.train()
    loss = F.cross_entropy(by_hand(Tensor(x)), y, label_smoothing=0.3)
    assert stats.loss == pytest.approx(loss.item(), rel=1e-6)
    bias = by_hand.classifier[5].bias  # the output bias's gradient without smoothing differs
    (plain,) = grad(F.cross_entropy(by_hand(Tensor(x)), y), [bias])
    loss.backward()
    assert np.abs(plain.data - bias.grad).max() > 0.01
    optim.SGD(by_hand.parameters(), lr=0.1).step()
    for (name, a), (_, b) in zip(by_loop.named_parameters(), by_hand.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_outlier_exposure_is_on_for_mnist_and_off_for_other_data_unless_given():
    from tinygrad_lenet.config import RunConfig
    assert RunConfig().outlier_exposure is None  # decided when the data is known
    assert RunConfig(dataset="mnist").resolve_outlier_exposure((28, 28)).outlier_exposure is True
    assert RunConfig(dataset="fashion-mnist").resolve_outlier_exposure((28, 28)).outlier_exposure is False
    assert RunConfig(dataset="my_digits").resolve_outlier_exposure((28, 28)).outlier_exposure is False
    assert RunConfig(dataset="mnist", outlier_exposure=False).resolve_outlier_exposure((28, 28)).outlier_exposure is False
    assert RunConfig(dataset="x", outlier_exposure=True).resolve_outlier_exposure((28, 28)).outlier_exposure is True
    import argparse

    from tinygrad_lenet.cli import add_run_arguments, run_config_from_args
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    assert run_config_from_args(parser, parser.parse_args(["--no-outlier-exposure"])).outlier_exposure is False
    assert run_config_from_args(parser, parser.parse_args(["--outlier-exposure"])).outlier_exposure is True
    assert run_config_from_args(parser, parser.parse_args([])).outlier_exposure is None

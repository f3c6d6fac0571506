"""scripts/train.py on a small synthetic IDX data set (no real MNIST needed, so these
always run): determinism, exact resumption, and clear errors when the output cannot
be written, including a disk that fills up mid-run."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from script_runner import one_line_error, run_main

from tinygrad_lenet.checkpoint import load_checkpoint
from tinygrad_lenet.data import write_fake_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "data"
    write_fake_dataset(root, n_train=96, n_test=40)
    return root


def train(data: Path, out: Path, *extra) -> tuple[int, str, str]:
    return run_main("train", "--dataset", data, "--batch-size", "32", "--epochs", "3", "--no-progress", "--out", out,
                    *extra)


def weights(out: Path) -> dict[str, np.ndarray]:
    return load_checkpoint(out / "checkpoint.npz")["model_state"]


def history(out: Path) -> list[dict]:
    """The recorded epochs without their timings."""
    return [{k: v for k, v in e.items() if k not in ("train_seconds", "images_per_s")}
            for e in load_checkpoint(out / "checkpoint.npz")["extra"]["history"]]


def test_it_learns_and_the_same_seed_gives_the_same_weights_and_losses(data, tmp_path):
    for run in ("a", "b"):
        code, out, err = train(data, tmp_path / run)
        assert code == 0, err
    assert history(tmp_path / "a") == history(tmp_path / "b")
    for key, value in weights(tmp_path / "a").items():
        np.testing.assert_array_equal(value, weights(tmp_path / "b")[key], err_msg=key)
    losses = [e["train_loss"] for e in history(tmp_path / "a")]
    assert losses[-1] < losses[0]
    assert train(data, tmp_path / "c", "--seed", "1")[0] == 0
    assert history(tmp_path / "c") != history(tmp_path / "a")


@pytest.mark.parametrize("extra", [(), ("--augment", "--optimizer", "adam", "--schedule", "step", "--step-size", "1"),
                                   ("--schedule", "onecycle", "--clip-grad-norm", "1"), ("--workers", "2")])
def test_a_resumed_run_ends_exactly_as_the_uninterrupted_one(data, tmp_path, extra):
    assert train(data, tmp_path / "full", *extra)[0] == 0
    assert train(data, tmp_path / "part", *extra, "--stop-after", "1")[0] == 0
    assert load_checkpoint(tmp_path / "part" / "checkpoint.npz")["extra"]["epoch"] == 1
    code, _, err = run_main("train", "--resume", tmp_path / "part" / "checkpoint.npz", "--no-progress",
                            "--stop-after", "2")
    assert code == 0, err
    code, _, err = run_main("train", "--resume", tmp_path / "part" / "checkpoint.npz", "--no-progress")
    assert code == 0, err
    assert history(tmp_path / "part") == history(tmp_path / "full")
    for key, value in weights(tmp_path / "full").items():
        np.testing.assert_array_equal(value, weights(tmp_path / "part")[key], err_msg=key)
    full = load_checkpoint(tmp_path / "full" / "checkpoint.npz")
    part = load_checkpoint(tmp_path / "part" / "checkpoint.npz")
    assert json.dumps(full["optimizer_state"]["param_groups"]) == json.dumps(part["optimizer_state"]["param_groups"])


def test_two_processes_learn_the_same_weights_to_rounding_and_repeat_exactly(data, tmp_path):
    """--workers 2 shares each batch between two processes (DataParallel): the same run as
    one process but for the order of sums, and bit-identical from run to run."""
    for run, extra in (("one", ()), ("two", ("--workers", "2")), ("again", ("--workers", "2"))):
        code, out, err = train(data, tmp_path / run, *extra)
        assert code == 0, err
    assert "2 processes" in out
    one, two, again = (weights(tmp_path / run) for run in ("one", "two", "again"))
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-3, atol=1e-5, err_msg=key)
        np.testing.assert_array_equal(again[key], two[key], err_msg=key)
    assert load_checkpoint(tmp_path / "two" / "checkpoint.npz")["extra"]["config"]["workers"] == 2


def test_an_out_that_is_a_file_is_a_one_line_error(data, tmp_path):
    (tmp_path / "taken").write_text("not a directory")
    for out, message in [(tmp_path / "taken", "exists and is not a directory"),
                         (tmp_path / "taken" / "run", "cannot write to")]:
        code, _, err = train(data, out)
        assert code == 2
        line = one_line_error("train", err)
        assert str(out) in line and message in line, line
    assert (tmp_path / "taken").read_text() == "not a directory"


def test_a_full_disk_keeps_the_last_checkpoint_and_names_the_file(data, tmp_path, monkeypatch):
    """The third epoch's checkpoint cannot be written: the second one stays, nothing half-written is left."""
    import tinygrad_lenet.atomic as atomic
    calls = []
    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):  # files, not the directory fsync after a rename
            calls.append(fd)
            if len(calls) == 10:  # checkpoint, metrics, curves, dashboard per epoch, graph viewer once: the third checkpoint
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    code, out, err = train(data, tmp_path / "run")
    monkeypatch.undo()
    assert code == 2, err
    line = one_line_error("train", err)
    assert f"cannot write {tmp_path / 'run' / 'checkpoint.npz'}: No space left on device" in line
    assert "the previous checkpoint is kept" in line
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz")["extra"]["epoch"] == 2
    assert sorted(os.listdir(tmp_path / "run")) == ["checkpoint.npz", "curves.png", "dashboard.html", "graph.html",
                                                  "metrics.json"]


def test_pictures_of_a_run(data, tmp_path):
    """train.py draws the curves every epoch, evaluate.py the confusion matrix and the
    mistakes, plot.py overlays runs: valid pictures of the expected size."""
    from PIL import Image
    assert train(data, tmp_path / "a")[0] == 0
    assert train(data, tmp_path / "b", "--plot-format", "svg", "--seed", "2")[0] == 0
    with Image.open(tmp_path / "a" / "curves.png") as picture:
        assert picture.size == (1200, 360)
    assert (tmp_path / "b" / "curves.svg").read_text().lstrip().startswith("<?xml")
    code, out, err = run_main("evaluate", "--checkpoint", tmp_path / "a" / "checkpoint.npz", "--data-dir", data)
    assert code == 0, err
    for name in ("confusion.png", "mistakes.png"):
        with Image.open(tmp_path / "a" / name) as picture:
            picture.verify()
    with Image.open(tmp_path / "a" / "confusion.png") as picture:
        assert picture.size[0] >= 500 and picture.size[1] >= 450
    code, out, err = run_main("plot", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "both.png")
    assert code == 0 and "wrote" in out, err
    with Image.open(tmp_path / "both.png") as picture:
        assert picture.size == (1200, 360)
    code, _, err = run_main("plot", tmp_path / "nothing-here")
    assert code == 2 and "not a metrics file" in one_line_error("plot", err)


def test_momentum_with_a_one_cycle_schedule_says_it_is_not_used(data, tmp_path):
    code, _, err = train(data, tmp_path / "onecycle", "--schedule", "onecycle", "--momentum", "0.8", "--epochs", "1")
    assert code == 0 and "--momentum is not used with --schedule onecycle" in err, err
    code, _, err = train(data, tmp_path / "cosine", "--schedule", "cosine", "--momentum", "0.8", "--epochs", "1")
    assert code == 0 and "--momentum" not in err, err


def test_a_model_that_does_not_learn_is_told_what_to_try(tmp_path):
    """A recipe under which the loss stays at chance level gets a note after the first epoch."""
    write_fake_dataset(tmp_path / "data", n_train=256, n_test=32)
    code, _, err = run_main("train", "--dataset", tmp_path / "data", "--epochs", "2", "--batch-size", "32",
                            "--lr", "1e-7", "--schedule", "none", "--out", tmp_path / "run", "--no-progress")
    assert code == 0, err
    notes = [line for line in err.splitlines() if "is still at chance level" in line]
    assert len(notes) == 1 and notes[0].startswith("train.py: note: epoch 1: the training loss (2.3")
    assert "try a smaller --lr (e.g. 1e-08), or --optimizer adam --lr 0.001" in notes[0]
    code, _, err = run_main("train", "--dataset", tmp_path / "data", "--epochs", "2", "--batch-size", "32",
                            "--out", tmp_path / "run2", "--no-progress")
    assert "chance level" not in err  # the default recipe learns these images

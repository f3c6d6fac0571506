"""scripts/predict.py: checkpoint + picture or data set index -> class probabilities.

The checkpoints here hold random weights (made with the real model and checkpoint code):
these tests check the plumbing (preprocessing, normalization, softmax, output, errors)
against an independent computation, not the accuracy of a trained model.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from script_runner import run_script

from models import get_model
from tinygrad_lenet import manual_seed
from tinygrad_lenet.checkpoint import save_checkpoint
from tinygrad_lenet.data import DATASETS, load_mnist, write_fake_dataset
from tinygrad_lenet.image import read_digit
from tinygrad_lenet.training import predict_logits


def write_image(path: Path, pixels: np.ndarray) -> None:
    """uint8 pixels to a picture file (format from the suffix)."""
    Image.fromarray(pixels).save(path)

ROOT = Path(__file__).resolve().parents[1]
MNIST_MEAN_STD = DATASETS["mnist"].mean_std  # its published statistics

_spec = importlib.util.spec_from_file_location("predict_script", ROOT / "scripts" / "predict.py")
predict = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(predict)


def make_checkpoint(path: Path, config: dict | None) -> dict[str, np.ndarray]:
    """A LeNet-5 checkpoint with random weights, the output layer scaled up so the
    probabilities are far from uniform (and so differ visibly between inputs)."""
    manual_seed(1)
    state = get_model("lenet5").state_dict()
    last = [k for k in state if k.endswith("weight")][-1]
    state[last] = state[last] * np.float32(40)
    save_checkpoint(path, model_state=state, extra=dict(epoch=1, config=config) if config is not None else None)
    return state


def reference_probabilities(state: dict[str, np.ndarray], images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Softmax of the model's logits for uint8 (N, 28, 28) images, computed here step by step."""
    model = get_model("lenet5")
    model.load_state_dict(state)
    x = ((images.astype(np.float32) / np.float32(255) - np.float32(mean)) / np.float32(std))[:, None]
    logits = predict_logits(model, x).astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def draw_two(size: int = 60) -> np.ndarray:
    """A float32 '2'-ish glyph (1 = ink) on a size x size canvas."""
    y, x = np.mgrid[0:size, 0:size] / size
    top_arc = (np.abs(np.hypot(y - 0.3, x - 0.5) - 0.2) < 0.05) & (y < 0.35)
    diagonal = np.abs((x - 0.7) + (y - 0.35) * 0.9) < 0.05
    base = (np.abs(y - 0.8) < 0.05) & (x > 0.25) & (x < 0.8)
    return ((top_arc | (diagonal & (y >= 0.35) & (y <= 0.8)) | base)).astype(np.float32)


@pytest.fixture
def checkpoint(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path / "checkpoint.npz"
    state = make_checkpoint(path, dict(model="lenet5", dataset="mnist", normalize_mean=MNIST_MEAN_STD[0],
                                       normalize_std=MNIST_MEAN_STD[1]))
    return path, state


def run_predict(*args: str) -> subprocess.CompletedProcess:
    return run_script("predict", *args, check=False, timeout=120)


def test_pictures_end_to_end(checkpoint, tmp_path):
    path, state = checkpoint
    ink = draw_two()
    rgb = np.repeat(np.rint((1 - ink) * 255).astype(np.uint8)[:, :, None], 3, axis=2)  # black on white, RGB
    write_image(tmp_path / "two.png", rgb)
    write_image(tmp_path / "two.pgm", np.rint(ink * 255).astype(np.uint8))  # white on black, grayscale
    proc = run_predict("--checkpoint", str(path), "--image", str(tmp_path / "two.png"), str(tmp_path / "two.pgm"),
                      "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model"] == "lenet5" and out["dataset"] == "mnist" and len(out["predictions"]) == 2
    expected = reference_probabilities(state, read_digit(tmp_path / "two.png")[None], *MNIST_MEAN_STD)[0]
    for result in out["predictions"]:
        probs = np.array(result["probabilities"])
        assert probs.shape == (10,) and abs(probs.sum() - 1) < 1e-5
        assert result["predicted"] == int(probs.argmax()) and result["label"] is None
        np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-6)
    assert expected.max() > 0.3  # the test checkpoint is not uniform, so a mix-up would show
    assert [r["image"] for r in out["predictions"]] == [str(tmp_path / "two.png"), str(tmp_path / "two.pgm")]


def test_real_mnist_index_end_to_end(checkpoint, real_mnist_dir):
    path, state = checkpoint
    proc = run_predict("--checkpoint", str(path), "--index", "0", "7")
    assert proc.returncode == 0, proc.stderr
    images, labels = load_mnist("test", download=False)
    probs = reference_probabilities(state, images[[0, 7]], *MNIST_MEAN_STD)
    lines = proc.stdout.splitlines()
    assert lines[0] == f"checkpoint: {path} (lenet5, trained on mnist)"
    for n, i in enumerate([0, 7]):
        head = lines[1 + 11 * n]
        k = int(probs[n].argmax())
        assert head.startswith(f"mnist test #{i}: label {labels[i]}, predicted {k} (p={probs[n][k]:.4f})")
        assert head.endswith("correct" if k == labels[i] else "WRONG")
        rows = lines[2 + 11 * n: 12 + 11 * n]
        assert [row.split()[:2] for row in rows] == [[str(c), f"{p:.4f}"] for c, p in enumerate(probs[n])]
        assert [row.endswith("<-") for row in rows] == [c == k for c in range(10)]


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "data"
    spec = write_fake_dataset(directory, "mnist", n_train=4, n_test=6)
    monkeypatch.setitem(DATASETS, "mnist", spec)
    return directory


def test_index_reports_label_and_input(checkpoint, fake_mnist, capsys):
    path, state = checkpoint
    assert predict.main(["--checkpoint", str(path), "--index", "5", "--data-dir", str(fake_mnist),
                         "--json", "--show"]) == 0
    result = json.loads(capsys.readouterr().out)["predictions"][0]
    images, labels = load_mnist("test", root=fake_mnist, download=False)
    assert result["source"] == "mnist test #5" and result["index"] == 5 and result["label"] == int(labels[5])
    np.testing.assert_array_equal(result["input"], images[5])
    np.testing.assert_allclose(result["probabilities"], reference_probabilities(state, images[5:6], *MNIST_MEAN_STD)[0],
                               rtol=1e-4, atol=1e-6)


def test_index_out_of_range(checkpoint, fake_mnist, capsys):
    with pytest.raises(SystemExit) as info:
        predict.main(["--checkpoint", str(checkpoint[0]), "--index", "6", "--data-dir", str(fake_mnist)])
    assert info.value.code == 2
    assert "--index 6 is out of range: mnist test has 6 images (0..5)" in capsys.readouterr().err


@pytest.mark.parametrize("config, mean_std", [
    (dict(model="lenet5", dataset="mnist", normalize_mean=0.5, normalize_std=0.25), (0.5, 0.25)),
    (dict(model="lenet5", dataset="fashion-mnist"), (0.2860, 0.3530)),  # no stored statistics: the data set's
    (None, MNIST_MEAN_STD),  # no config at all: MNIST's
])
def test_normalization_comes_from_the_checkpoint(tmp_path, capsys, config, mean_std):
    path = tmp_path / "ck.npz"
    state = make_checkpoint(path, config)
    write_image(tmp_path / "two.png", np.rint(draw_two() * 255).astype(np.uint8))
    assert predict.main(["--checkpoint", str(path), "--image", str(tmp_path / "two.png"), "--json"]) == 0
    probs = json.loads(capsys.readouterr().out)["predictions"][0]["probabilities"]
    digit = read_digit(tmp_path / "two.png")[None]
    np.testing.assert_allclose(probs, reference_probabilities(state, digit, *mean_std)[0], rtol=1e-4, atol=1e-6)
    other = reference_probabilities(state, digit, 0.0, 1.0)[0]  # no normalization: visibly different
    assert np.abs(np.array(probs) - other).max() > 1e-3


def test_table_and_show_output(checkpoint, tmp_path, capsys):
    write_image(tmp_path / "two.png", np.rint(draw_two() * 255).astype(np.uint8))
    assert predict.main(["--checkpoint", str(checkpoint[0]), "--image", str(tmp_path / "two.png"), "--show"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"{tmp_path / 'two.png'}: predicted ")
    table, picture = lines[2:12], lines[12:]
    probs = [float(row.split()[1]) for row in table]
    assert abs(sum(probs) - 1) < 1e-3 and sum(row.endswith("<-") for row in table) == 1
    assert len(picture) == 28 and all(len(row) == 56 for row in picture)
    ink_rows = [i for i, row in enumerate(picture) if row.strip()]
    assert ink_rows[-1] - ink_rows[0] + 1 == 20  # the digit's 20-pixel box


def test_bad_pictures_are_named(checkpoint, tmp_path, capsys):
    write_image(tmp_path / "whole.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "broken.png").write_bytes((tmp_path / "whole.png").read_bytes()[:40])
    write_image(tmp_path / "blank.png", np.full((10, 10), 200, np.uint8))
    files = [str(tmp_path / name) for name in ("broken.png", "blank.png", "missing.pgm")]
    assert predict.main(["--checkpoint", str(checkpoint[0]), "--image", *files]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"predict.py: error: {files[0]}: ") and len(err[0]) > len(files[0]) + 25
    assert err[1].startswith(f"predict.py: error: {files[1]}: no ink found")
    assert err[2] == f"predict.py: error: {files[2]}: no such file"


def test_bad_checkpoints_and_arguments(tmp_path, capsys):
    image = tmp_path / "two.png"
    write_image(image, np.rint(draw_two() * 255).astype(np.uint8))
    for args, message in [
        (["--checkpoint", str(tmp_path / "none.npz"), "--image", str(image)], "--checkpoint: no such file"),
        (["--checkpoint", str(image), "--image", str(image)], f"--checkpoint: cannot load {image}"),
        (["--index", "1", "--image", str(image)], "not allowed with argument"),
        (["--index", "-1"], "must be >= 0"),
    ]:
        with pytest.raises(SystemExit) as info:
            predict.main(args)
        assert info.value.code == 2
        assert message in capsys.readouterr().err


def test_checkpoint_of_another_architecture_lists_the_mismatches(tmp_path, capsys):
    state = get_model("lenet5_1998").state_dict()
    path = tmp_path / "other.npz"
    save_checkpoint(path, model_state=state, extra=dict(epoch=1, config=dict(model="lenet5", dataset="mnist")))
    write_image(tmp_path / "two.png", np.rint(draw_two() * 255).astype(np.uint8))
    with pytest.raises(SystemExit) as info:
        predict.main(["--checkpoint", str(path), "--image", str(tmp_path / "two.png")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"--checkpoint: cannot load {path}" in err
    assert "10 missing keys (features.0.weight, features.0.bias" in err and "14 unexpected keys (c1.weight" in err


def test_not_a_digit_is_reported_from_the_stored_energy_threshold(tmp_path, capsys):
    """The energy of each picture against the checkpoint's threshold: above it, the output says so."""
    state = get_model("lenet5").state_dict()
    write_image(tmp_path / "two.png", np.rint(draw_two() * 255).astype(np.uint8))
    config = dict(model="lenet5", dataset="mnist", normalize_mean=MNIST_MEAN_STD[0], normalize_std=MNIST_MEAN_STD[1])
    results = {}
    for name, threshold in (("low", -1e9), ("high", 1e9), ("none", None)):
        extra = dict(epoch=1, config=config, **({} if threshold is None else dict(energy_threshold=threshold)))
        save_checkpoint(tmp_path / f"{name}.npz", model_state=state, extra=extra)
        assert predict.main(["--checkpoint", str(tmp_path / f"{name}.npz"), "--image", str(tmp_path / "two.png"),
                             "--json"]) == 0
        results[name] = json.loads(capsys.readouterr().out)["predictions"][0]
    assert results["low"]["not_a_digit"] is True and results["high"]["not_a_digit"] is False
    assert results["none"]["not_a_digit"] is None
    assert results["low"]["energy"] == pytest.approx(results["high"]["energy"]) and np.isfinite(results["low"]["energy"])
    assert predict.main(["--checkpoint", str(tmp_path / "low.npz"), "--image", str(tmp_path / "two.png")]) == 0
    assert "not a digit?" in capsys.readouterr().out

""""Not a digit": the energy score (-logsumexp of the logits) above the threshold that
99% of training images stay below, or ink too small to read. Measured on real data with
the default recipe's LeNet-5, trained with outlier exposure (on for MNIST: procedural non-digits,
`data.not_digits`, with uniform targets; those measured here come from another seed):
at most 2% of MNIST test digits are flagged, at least 90% of Fashion-MNIST test images
and of procedural non-digits; and on the drawn set (viz/app/drawn_set.py, drawings as
people make them in the app, none trained on) at least 90% of non-digits and at most 5%
of digits are flagged, and at least 97% of the digits are read right."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import require
from script_runner import run_main

from models import load_trained_model
from tinygrad_lenet.data import load_mnist, normalize_images, not_digits
from tinygrad_lenet.training import energy, predict_logits

FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.slow
def test_not_a_digit_rates_on_real_data(real_mnist_dir, tmp_path):
    require(os.path.isdir(FASHION), "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    code, out, err = run_main("train", "--data-dir", real_mnist_dir,  # the default recipe: outlier exposure on
                              "--out", tmp_path / "run", "--no-progress")
    assert code == 0, err
    trained = load_trained_model(tmp_path / "run" / "checkpoint.npz")
    threshold = trained.checkpoint["extra"]["energy_threshold"]

    def flagged(images: np.ndarray) -> float:
        logits = predict_logits(trained.model, normalize_images(images, normalize=trained.mean_std))
        return float((energy(logits) > threshold).mean())

    digits, _ = load_mnist("test", root=real_mnist_dir)
    fashion, _ = load_mnist("test", root=FASHION, dataset="fashion-mnist")
    rates = dict(mnist=flagged(digits), fashion=flagged(fashion), scribbles=flagged(not_digits(2000, seed=12345)))
    print(f"flagged as not a digit: {rates}")
    assert rates["mnist"] <= 0.02 and rates["fashion"] >= 0.90 and rates["scribbles"] >= 0.90, rates
    code, out, err = run_main("not_a_digit", "--checkpoint", tmp_path / "run" / "checkpoint.npz", "--data-dir",
                              real_mnist_dir, "--json", tmp_path / "drawn.json", "--show-misses")
    assert code == 0, err
    print(out)
    assert "NOT MET" not in out, out


def test_procedural_non_digits_are_seeded_and_drawn_in_every_family():
    from tinygrad_lenet.data.outliers import FAMILIES
    a, b = not_digits(2 * len(FAMILIES), seed=4), not_digits(2 * len(FAMILIES), seed=4)
    assert a.dtype == np.uint8 and a.shape == (2 * len(FAMILIES), 28, 28)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, not_digits(2 * len(FAMILIES), seed=5))
    assert all(image.max() > 100 for image in a)  # each has ink
    assert len({image.tobytes() for image in a}) == len(a)


def test_a_dot_is_too_small_to_be_a_digit():
    """A single click: cropping and scaling would make it a full-size disc (read as 0)."""
    import tempfile
    from pathlib import Path

    from test_digit_app import make_checkpoint

    from viz.app import DigitPredictor
    from viz.app.drawn_set import Drawing, rasterize
    with tempfile.TemporaryDirectory() as tmp:
        make_checkpoint(Path(tmp) / "c.npz")
        predictor = DigitPredictor.from_checkpoint(Path(tmp) / "c.npz")
    dot = rasterize(Drawing("dot", False, (((140.0, 140.0), (141.0, 141.0)),)))
    answer = predictor.predict(dot.astype(np.float32) / np.float32(255))
    assert answer["too_small"] is True and answer["not_a_digit"] is True
    seven = rasterize(Drawing("7", True, (((100.0, 90.0), (180.0, 90.0), (130.0, 200.0)),)))
    assert predictor.predict(seven.astype(np.float32) / np.float32(255))["too_small"] is False


def render_each_segment_over_the_canvas(strokes, rng, size):
    """The straightforward rendering: every segment's distance over the whole canvas, the
    nearest one kept (the fast renderer measures a few segments at a time over only the
    pixels the brush reaches, and compares squared distances)."""
    scale = rng.uniform(0.25, 0.9) * size
    offset = rng.uniform(0.05 * size, size - scale - 0.05 * size, 2) if scale < 0.9 * size else np.full(2, 0.05 * size)
    brush = rng.uniform(1.5, 3.5)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    distance = np.full((size, size), np.inf)
    for stroke in strokes:
        points = stroke * scale + offset
        for (a, b), (c, d) in zip(points[:-1], points[1:]):
            length2 = max((c - a) ** 2 + (d - b) ** 2, 1e-9)
            t = np.clip(((yy - a) * (c - a) + (xx - b) * (d - b)) / length2, 0, 1)
            distance = np.minimum(distance, np.hypot(yy - (a + t * (c - a)), xx - (b + t * (d - b))))
    return np.clip(brush + 0.5 - distance, 0, 1)


def test_procedural_non_digits_are_drawn_as_the_straightforward_rendering_draws_them(monkeypatch):
    from tinygrad_lenet.data import outliers
    n = 12 * len(outliers.FAMILIES)
    fast = not_digits(n, seed=7)
    monkeypatch.setattr(outliers, "_render", render_each_segment_over_the_canvas)
    slow = not_digits(n, seed=7)
    differ = fast.astype(int) - slow
    assert np.abs(differ).max() <= 1 and np.count_nonzero(differ) <= fast.size // 1000  # float rounding at most

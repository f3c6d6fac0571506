"""Vectorized affine augmentation: geometry, identity, determinism, dtypes and speed."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_lenet.data import RandomAffine, affine_transform


def batch(b=6, c=None, h=28, w=28, seed=0) -> np.ndarray:
    shape = (b, h, w) if c is None else (b, c, h, w)
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def shifted(img: np.ndarray, dx: int, dy: int, fill: float = 0.0) -> np.ndarray:
    """`img` (H, W) moved dx right and dy down, uncovered pixels = fill."""
    h, w = img.shape
    out = np.full_like(img, fill)
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = img[max(-dy, 0):h - max(dy, 0),
                                                                      max(-dx, 0):w - max(dx, 0)]
    return out


def params(n, angle=0.0, shift=(0.0, 0.0), scale=1.0):
    return np.full(n, angle), np.tile(np.asarray(shift, float), (n, 1)), np.full(n, scale)


@pytest.mark.parametrize("shape", [(5, 28, 28), (5, 1, 28, 28), (3, 3, 12, 10)])
def test_shape_and_dtype_preserved(shape):
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    out = RandomAffine()(x, np.random.default_rng(1))
    assert out.shape == shape and out.dtype == np.float32
    assert out is not x


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_zero_magnitudes_are_the_identity(interpolation):
    x = batch(c=1)
    out = RandomAffine(degrees=0, translate=(0, 0), scale=(1, 1), interpolation=interpolation)(
        x, np.random.default_rng(0))
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("dx, dy", [(2, 0), (0, -3), (-1, 2), (3, 3)])
def test_integer_translation_moves_pixels(dx, dy, interpolation):
    x = batch(b=2)
    out = affine_transform(x, *params(2, shift=(dx, dy)), fill=0.25, interpolation=interpolation)
    for i in range(2):
        np.testing.assert_array_equal(out[i], shifted(x[i], dx, dy, fill=0.25))


def test_random_pure_shifts_are_whole_pixels_within_range():
    x = batch(b=32)
    aug = RandomAffine(degrees=0, translate=(0.1, 0.1), scale=(1, 1))
    out = aug(x, np.random.default_rng(3))
    _, shifts, _ = aug.sample_params(32, 28, 28, np.random.default_rng(3))  # the same draws
    assert np.all(np.abs(shifts) <= 3)  # round(0.1 * 28)
    assert np.all(shifts == np.round(shifts)) and np.any(shifts != 0)
    for i, (dx, dy) in enumerate(shifts.astype(int)):
        np.testing.assert_array_equal(out[i], shifted(x[i], dx, dy))


def test_half_pixel_shift_interpolates_bilinearly():
    x = batch(b=1, h=5, w=6)
    out = affine_transform(x, *params(1, shift=(0.5, 0)))
    np.testing.assert_allclose(out[0, :, 1:], (x[0, :, 1:] + x[0, :, :-1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(out[0, :, 0], x[0, :, 0] / 2, rtol=1e-6)  # half from the zero fill


def test_positive_angle_rotates_counter_clockwise():
    x = np.zeros((1, 9, 9), np.float32)
    x[0, 4, 7] = 1.0  # right of the centre (4, 4)
    out = affine_transform(x, *params(1, angle=90.0))
    expected = np.zeros_like(x)
    expected[0, 1, 4] = 1.0  # above the centre
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_scale_enlarges_about_the_centre():
    x = np.zeros((1, 9, 9), np.float32)
    x[0, 4, 5] = 1.0
    x[0, 6, 4] = 0.5
    out = affine_transform(x, *params(1, scale=2.0), interpolation="nearest")
    assert out[0, 4, 6] == 1.0 and out[0, 8, 4] == 0.5
    out = affine_transform(x, *params(1, scale=2.0))
    assert out[0, 4, 6] == 1.0 and out[0, 8, 4] == 0.5
    assert out[0, 4, 5] == 0.5 and out[0, 7, 4] == 0.25  # half way between two source pixels


def test_rotation_keeps_a_centred_blob_mass():
    yy, xx = np.mgrid[:28, :28]
    blob = np.exp(-((yy - 13.5) ** 2 + (xx - 13.5) ** 2) / 20).astype(np.float32)[None]
    out = affine_transform(np.repeat(blob, 4, 0), np.array([-10.0, 5.0, 30.0, 90.0]), np.zeros((4, 2)), np.ones(4))
    np.testing.assert_allclose(out.sum(axis=(1, 2)), blob.sum(), rtol=1e-3)


def test_same_seed_same_output_different_seed_different_output():
    x = batch(b=8, c=1)
    aug = RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))
    a = aug(x, np.random.default_rng(5))
    b = aug(x, np.random.default_rng(5))
    c = aug(x, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    per_image_changed = np.any(a != x, axis=(1, 2, 3))
    assert per_image_changed.all()


def test_input_is_not_modified():
    x = batch()
    before = x.copy()
    RandomAffine()(x, np.random.default_rng(0))
    np.testing.assert_array_equal(x, before)


def test_channels_get_the_same_transform():
    x = batch(b=4, c=1)
    out3 = RandomAffine()(np.repeat(x, 3, axis=1), np.random.default_rng(2))
    out1 = RandomAffine()(x, np.random.default_rng(2))
    for ch in range(3):
        np.testing.assert_array_equal(out3[:, ch], out1[:, 0])


def test_bad_inputs():
    with pytest.raises(TypeError, match="float32"):
        RandomAffine()(np.zeros((2, 28, 28)), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(B, H, W\) or \(B, C, H, W\)"):
        RandomAffine()(np.zeros((28, 28), np.float32))
    with pytest.raises(ValueError, match="2 images but 3 angles"):
        affine_transform(batch(b=2), np.zeros(3), np.zeros((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="scales must be positive"):
        affine_transform(batch(b=1), np.zeros(1), np.zeros((1, 2)), np.zeros(1))
    with pytest.raises(ValueError, match="scale must be"):
        RandomAffine(scale=(1.1, 0.9))
    with pytest.raises(ValueError, match="interpolation"):
        RandomAffine(interpolation="cubic")

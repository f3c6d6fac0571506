"""DataLoader: batching, dtypes, seeded per-epoch shuffling and resuming, normalization, augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_lenet import Tensor, manual_seed
from tinygrad_lenet.data import DataLoader, RandomAffine, fake_images_labels, get_dataset_spec, normalize_images


def indexed_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose every pixel is the sample's index (n <= 256), labels index % 10."""
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None], (n, 28, 28)).copy()
    return images, (np.arange(n) % 10).astype(np.uint8)


def epoch_indices(loader: DataLoader) -> np.ndarray:
    """The sample indices of the next epoch, read back from the batches themselves."""
    return np.concatenate([np.rint(x.numpy()[:, 0, 0, 0] * 255).astype(int) for x, _ in loader])


def test_batches_shapes_dtypes_and_order():
    images, labels = indexed_data(10)
    loader = DataLoader(images, labels, batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [len(y) for _, y in batches] == [4, 4, 2]
    for x, y in batches:
        assert isinstance(x, Tensor) and isinstance(y, Tensor)  # as PyTorch's DataLoader serves them
        assert x.dtype == np.float32 and x.shape == (len(y), 1, 28, 28) and not x.requires_grad
        assert y.dtype == np.int64
    x = np.concatenate([b[0] for b in batches])
    np.testing.assert_allclose(x, images[:, None] / 255.0, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), labels)


def test_drop_last():
    images, labels = indexed_data(10)
    loader = DataLoader(images, labels, batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [len(y) for _, y in loader] == [4, 4]
    assert len(DataLoader(images, labels, batch_size=5, drop_last=True)) == 2
    assert len(DataLoader(images, labels, batch_size=11, drop_last=True)) == 0


def test_shuffle_keeps_images_and_labels_paired_and_covers_every_sample():
    images, labels = indexed_data(50)
    loader = DataLoader(images, labels, batch_size=8, shuffle=True, seed=1)
    for _ in range(2):
        seen = []
        for x, y in loader:
            idx = np.rint(x.numpy()[:, 0, 0, 0] * 255).astype(int)
            np.testing.assert_array_equal(y, idx % 10)
            seen.append(idx)
        order = np.concatenate(seen)
        assert sorted(order) == list(range(50)) and not np.array_equal(order, np.arange(50))


def test_same_seed_same_orders_new_order_each_epoch():
    images, labels = indexed_data(64)
    a = DataLoader(images, labels, batch_size=16, shuffle=True, seed=7)
    b = DataLoader(images, labels, batch_size=16, shuffle=True, seed=7)
    epochs_a = [epoch_indices(a) for _ in range(3)]
    epochs_b = [epoch_indices(b) for _ in range(3)]
    for ea, eb in zip(epochs_a, epochs_b):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(epochs_a[0], epochs_a[1]) and not np.array_equal(epochs_a[1], epochs_a[2])
    other = DataLoader(images, labels, batch_size=16, shuffle=True, seed=8)
    assert not np.array_equal(epoch_indices(other), epochs_a[0])
    assert a.epoch == 3


def test_resume_at_epoch_and_mid_epoch_reproduces_uninterrupted_run():
    images, labels = fake_images_labels(40, seed=3)
    kw = dict(batch_size=8, shuffle=True, seed=11, normalize=True, augment=RandomAffine())
    full = DataLoader(images, labels, **kw)
    run = [list(full) for _ in range(3)]
    resumed = DataLoader(images, labels, **kw)
    resumed.set_epoch(2)
    for (x, y), (rx, ry) in zip(run[2], resumed, strict=True):
        np.testing.assert_array_equal(rx, x)
        np.testing.assert_array_equal(ry, y)
    mid = DataLoader(images, labels, **kw)
    mid.set_epoch(1, start_batch=3)
    rest = list(mid)
    assert len(rest) == len(run[1]) - 3
    for (x, _), (rx, _) in zip(run[1][3:], rest, strict=True):
        np.testing.assert_array_equal(rx, x)
    assert mid.epoch == 2 and len(list(mid)) == len(mid)  # then on to a full epoch 2


def test_default_seed_comes_from_manual_seed_and_generator():
    images, labels = indexed_data(30)
    manual_seed(5)
    first = epoch_indices(DataLoader(images, labels, batch_size=30, shuffle=True))
    manual_seed(5)
    np.testing.assert_array_equal(epoch_indices(DataLoader(images, labels, batch_size=30, shuffle=True)), first)
    g1 = DataLoader(images, labels, batch_size=30, shuffle=True, generator=np.random.default_rng(9))
    g2 = DataLoader(images, labels, batch_size=30, shuffle=True, generator=np.random.default_rng(9))
    assert g1.seed == g2.seed
    np.testing.assert_array_equal(epoch_indices(g1), epoch_indices(g2))


def test_normalization_with_the_datas_own_statistics_gives_zero_mean_unit_std():
    images, labels = fake_images_labels(100, seed=0)
    unit = images / 255.0
    loader = DataLoader(images, labels, batch_size=32, normalize=(unit.mean(), unit.std()))
    x = np.concatenate([x for x, _ in loader])
    assert x.dtype == np.float32
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1) < 1e-5


@pytest.mark.parametrize("normalize, stats", [(True, get_dataset_spec("mnist").mean_std),
                                              ("fashion-mnist", get_dataset_spec("fashion-mnist").mean_std),
                                              ((0.5, 0.25), (0.5, 0.25))])
def test_normalize_choices(normalize, stats):
    images, labels = fake_images_labels(10, seed=1)
    x, _ = next(iter(DataLoader(images, labels, batch_size=10, normalize=normalize)))
    expected = (images[:, None] / 255.0 - stats[0]) / stats[1]
    np.testing.assert_allclose(x, expected, rtol=0, atol=2e-6)


@pytest.mark.parametrize("normalize", [None, True, "fashion-mnist", (0.5, 0.25)])
def test_normalize_images_matches_the_loader_exactly(normalize):
    images, labels = fake_images_labels(21, seed=5)
    served = np.concatenate([x for x, _ in DataLoader(images, labels, batch_size=8, normalize=normalize)])
    whole = normalize_images(images, normalize)
    assert whole.dtype == np.float32 and whole.shape == (21, 1, 28, 28)
    np.testing.assert_array_equal(whole, served)
    np.testing.assert_array_equal(normalize_images(images[:, None], normalize), whole)


def test_identity_augment_changes_nothing_and_sees_unit_range_images():
    images, labels = fake_images_labels(20, seed=2)
    seen = []

    def record(x, rng):
        seen.append((x.min(), x.max(), type(rng)))
        return RandomAffine(degrees=0, translate=(0, 0), scale=(1, 1))(x, rng)

    plain = list(DataLoader(images, labels, batch_size=8, normalize=True))
    augmented = list(DataLoader(images, labels, batch_size=8, normalize=True, augment=record))
    for (x, y), (ax, ay) in zip(plain, augmented, strict=True):
        np.testing.assert_allclose(ax, x, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(ay, y)
    assert all(lo >= 0 and hi <= 1 and rng is np.random.Generator for lo, hi, rng in seen)


def test_augmentation_differs_by_batch_and_epoch_and_keeps_labels():
    images, labels = fake_images_labels(16, seed=4)
    loader = DataLoader(images, labels, batch_size=16, augment=RandomAffine(degrees=15))
    (x0, y0), = list(loader)
    (x1, y1), = list(loader)
    assert x0.dtype == np.float32 and not np.array_equal(x0, x1)
    np.testing.assert_array_equal(y0, labels)
    np.testing.assert_array_equal(y1, labels)


def test_float32_images_are_used_as_is():
    images = np.random.default_rng(0).random((6, 1, 28, 28), dtype=np.float32)
    x, _ = next(iter(DataLoader(images, np.zeros(6, np.int64), batch_size=6)))
    np.testing.assert_array_equal(x, images)


def test_bad_arguments_are_rejected():
    images, labels = indexed_data(10)
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        DataLoader(images, labels[:9])
    with pytest.raises(TypeError, match="uint8 or float32, got float64"):
        DataLoader(images.astype(np.float64), labels)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        DataLoader(images, labels, batch_size=0)
    with pytest.raises(ValueError, match=r"shape \(N, H, W\) or \(N, 1, H, W\), got \(10, 3, 28, 28\)"):
        DataLoader(np.zeros((10, 3, 28, 28), np.uint8), labels)
    with pytest.raises(ValueError, match="no normalization statistics for 'cifar'"):
        DataLoader(images, labels, normalize="cifar")
    with pytest.raises(ValueError, match="start_batch"):
        DataLoader(images, labels, batch_size=4).set_epoch(0, start_batch=4)
    with pytest.raises(TypeError, match="augment must return float32"):
        next(iter(DataLoader(images, labels, augment=lambda x, rng: x.astype(np.float64))))

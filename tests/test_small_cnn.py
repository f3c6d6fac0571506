"""A small modern CNN built from the everyday ops (BatchNorm, a depthwise-separable
convolution, dropout, one-cycle SGD) trains on real MNIST: the loss falls and test
accuracy passes 97% after 600 steps."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_lenet import Tensor, manual_seed, nn, no_grad, optim
from tinygrad_lenet import functional as F
from tinygrad_lenet.data import DATASETS, load_mnist, normalize_images
from tinygrad_lenet.optim.lr_scheduler import OneCycleLR

MNIST_MEAN_STD = DATASETS["mnist"].mean_std  # its published statistics


@pytest.mark.slow
def test_a_cnn_with_batch_norm_depthwise_conv_and_dropout_learns_mnist(real_mnist_dir):
    manual_seed(0)
    train_x, train_y = load_mnist("train", root=real_mnist_dir)
    test_x, test_y = load_mnist("test", root=real_mnist_dir)
    train_x, train_y = normalize_images(train_x[:20000], normalize=MNIST_MEAN_STD), train_y[:20000]
    test_x, test_y = normalize_images(test_x[:2000], normalize=MNIST_MEAN_STD), test_y[:2000]
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1, groups=16),  # depthwise
        nn.Conv2d(16, 32, 1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),  # pointwise
        nn.Flatten(), nn.Dropout(0.2), nn.Linear(32 * 7 * 7, 10))
    steps = 600
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    schedule = OneCycleLR(opt, max_lr=0.1, total_steps=steps)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        batch = rng.integers(0, len(train_x), 64)
        loss = F.cross_entropy(model(Tensor(train_x[batch])), train_y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        losses.append(loss.item())
    assert np.mean(losses[-50:]) < 0.3 * np.mean(losses[:50])
    model.eval()  # BatchNorm's running statistics, no dropout
    with no_grad():
        predictions = np.concatenate([model(Tensor(test_x[i:i + 500])).data.argmax(axis=1) for i in range(0, 2000, 500)])
    accuracy = float((predictions == test_y).mean())
    assert accuracy > 0.97, accuracy
    assert model[1].running_var.data.min() > 0 and np.abs(model[1].running_mean.data).max() > 0

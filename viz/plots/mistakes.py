"""A grid of the most confidently misclassified images."""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from .figure import new_figure, save_figure


def most_confident_mistakes(labels: np.ndarray, probabilities: np.ndarray, count: int) -> np.ndarray:
    """Indices of wrong predictions, the most confident first."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:count]


def plot_mistakes(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, classes: Sequence[str],
                  path: str | os.PathLike, count: int = 24) -> None:
    """Up to `count` of the most confident mistakes: each image with its true label,
    the prediction and its probability."""
    chosen = most_confident_mistakes(labels, probabilities, count)
    cols = 8
    rows = max(1, math.ceil(len(chosen) / cols))
    fig = new_figure(cols * 1.3, rows * 1.55 + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, chosen):
        p = probabilities[i]
        ax.imshow(images[i], cmap="gray_r")
        ax.set_title(f"true {classes[labels[i]]}\npred {classes[p.argmax()]} {p.max():.0%}", fontsize=7)
    fig.suptitle(f"{len(chosen)} most confident mistakes" if len(chosen) else "no mistakes", fontsize=9)
    save_figure(fig, path)

"""The confusion matrix with its counts."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from .figure import new_figure, save_figure


def plot_confusion(counts: np.ndarray, classes: Sequence[str], path: str | os.PathLike, title: str = "") -> None:
    """counts[i, j]: images of true class i predicted as j; class names on the axes."""
    k = len(classes)
    fig = new_figure(max(5.0, 0.55 * k + 2), max(4.5, 0.5 * k + 1.5))
    ax = fig.subplots()
    shown = np.log1p(counts)  # the diagonal dwarfs the mistakes otherwise
    ax.imshow(shown, cmap="Blues")
    top = shown.max() if shown.size else 1
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=7,
                    color="white" if shown[i, j] > 0.6 * top else "black")
    ax.set_xticks(range(k), classes, rotation=45 if max(map(len, classes)) > 2 else 0, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"{title + ': ' if title else ''}accuracy {accuracy:.2%} of {int(counts.sum()):,}")
    save_figure(fig, path)

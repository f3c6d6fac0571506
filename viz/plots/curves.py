"""Loss, accuracy and learning rate per epoch, for one run or several overlaid."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

from .figure import new_figure, save_figure


def plot_curves(runs: Mapping[str, Sequence[Mapping[str, float]]], path: str | os.PathLike) -> None:
    """`runs` maps a label to its epoch records (train.py's history: epoch, train_loss,
    test_loss, train_accuracy, test_accuracy, lr). Three panels: loss, accuracy, learning rate."""
    fig = new_figure(12, 3.6)
    loss, acc, lr = fig.subplots(1, 3)
    many = len(runs) > 1
    for i, (label, history) in enumerate(runs.items()):
        epochs = [h["epoch"] for h in history]
        color = f"C{i}"
        prefix = f"{label}: " if many else ""
        loss.plot(epochs, [h["train_loss"] for h in history], color=color, linestyle="--", marker=".",
                  label=f"{prefix}train")
        loss.plot(epochs, [h["test_loss"] for h in history], color=color, marker="o", label=f"{prefix}test")
        acc.plot(epochs, [h["train_accuracy"] for h in history], color=color, linestyle="--", marker=".",
                 label=f"{prefix}train")
        acc.plot(epochs, [h["test_accuracy"] for h in history], color=color, marker="o", label=f"{prefix}test")
        lr.plot(epochs, [h["lr"] for h in history], color=color, marker="o", label=label)
    for ax, title in ((loss, "loss"), (acc, "accuracy"), (lr, "learning rate (end of epoch)")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    loss.set_yscale("log")
    save_figure(fig, path)

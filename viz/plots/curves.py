"""Loss, accuracy and learning rate per epoch, for one run or several overlaid."""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from .figure import new_figure, save_figure


def smoothing_floor(label_smoothing: float, num_classes: int) -> float:
    """The least cross-entropy a prediction can have against label-smoothed targets: the
    entropy of the smoothed target (true class 1 - e + e/K, the others e/K each)."""
    if label_smoothing <= 0:
        return 0.0
    low = label_smoothing / num_classes
    high = 1 - label_smoothing + low
    return -(high * math.log(high) + (num_classes - 1) * low * math.log(low))


def plot_curves(runs: Mapping[str, Sequence[Mapping[str, float]]], path: str | os.PathLike,
                label_smoothing: float = 0.0, num_classes: int = 10) -> None:
    """Write `curves_figure` to `path` (.png or .svg)."""
    save_figure(curves_figure(runs, label_smoothing, num_classes), path)


def curves_figure(runs: Mapping[str, Sequence[Mapping[str, float]]], label_smoothing: float = 0.0,
                  num_classes: int = 10) -> Figure:
    """`runs` maps a label to its epoch records (train.py's history: epoch, train_loss,
    test_loss, train_accuracy, test_accuracy, lr). Three panels: loss, accuracy, learning
    rate, with whole-number epochs. With label smoothing the training loss is measured
    against smoothed targets and cannot fall below `smoothing_floor`: the loss panel draws
    that floor and says why the training loss stays above the test loss."""
    fig = new_figure(12, 3.6)
    loss, acc, lr = fig.subplots(1, 3)
    many = len(runs) > 1
    losses = []
    for i, (label, history) in enumerate(runs.items()):
        epochs = [h["epoch"] for h in history]
        color = f"C{i}"
        prefix = f"{label}: " if many else ""
        losses += [h["train_loss"] for h in history] + [h["test_loss"] for h in history]
        loss.plot(epochs, [h["train_loss"] for h in history], color=color, linestyle="--", marker=".",
                  label=f"{prefix}train")
        loss.plot(epochs, [h["test_loss"] for h in history], color=color, marker="o", label=f"{prefix}test")
        acc.plot(epochs, [h["train_accuracy"] for h in history], color=color, linestyle="--", marker=".",
                 label=f"{prefix}train")
        acc.plot(epochs, [h["test_accuracy"] for h in history], color=color, marker="o", label=f"{prefix}test")
        lr.plot(epochs, [h["lr"] for h in history], color=color, marker="o", label=label if many else None)
    floor = smoothing_floor(label_smoothing, num_classes)
    if floor > 0:
        loss.axhline(floor, color="0.4", linestyle=":", linewidth=1, label=f"smoothing floor ({floor:.3f})")
        losses.append(floor)
        fig.supxlabel(f"The training loss is measured against label-smoothed targets (label_smoothing="
                      f"{label_smoothing:g}): it cannot go below {floor:.3f}, so it stays above the test loss, "
                      "which uses the true labels.", fontsize=8, color="0.3")
    for ax, title in ((loss, "loss"), (acc, "accuracy"), (lr, "learning rate (end of epoch)")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    log_axis_with_its_ends(loss, [v for v in losses if v > 0])
    return fig


def log_axis_with_its_ends(ax, values: Sequence[float]) -> None:
    """A log y axis whose ticks are 1, 2 and 5 times powers of ten, labelled as plain
    numbers, with the limits on ticks, so the top and bottom values are read."""
    if not values:
        return
    ax.set_yscale("log")
    low, high = min(values), max(values)
    ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 2)
             for m in (1, 2, 5)]
    below = max([t for t in ticks if t <= low], default=low)
    above = min([t for t in ticks if t >= high], default=high)
    ax.set_ylim(below, above if above > below else below * 10)
    ax.set_yticks([t for t in ticks if below <= t <= above])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())

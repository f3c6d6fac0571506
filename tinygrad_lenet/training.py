"""The training and evaluation loops shared by the scripts and the tests."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from . import functional as F
from .autograd import no_grad
from .data_parallel import DataParallel, shares
from .distributed import DistributedDataParallel
from .nn import Module
from .nn.utils import clip_grad_norm_
from .tensor import Tensor

OUTLIER_WEIGHT = 0.5  # of the uniform cross-entropy on outliers, beside the classification loss


UNLIKE_TRAINING_QUANTILE = 0.99  # the "not a digit" threshold: the energy 99% of training images stay below


def energy_threshold(model: Module, train_images: np.ndarray) -> float:
    """The energy above which an input counts as unlike the training data: the
    UNLIKE_TRAINING_QUANTILE quantile over (normalized) training images."""
    return float(np.quantile(energy(predict_logits(model, train_images)), UNLIKE_TRAINING_QUANTILE))


def energy(logits: np.ndarray) -> np.ndarray:
    """-logsumexp of each row of logits: low for inputs like the training data, high for
    inputs unlike any class (the energy score, e.g. for "not a digit")."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=1)
    return -(top + np.log(np.exp(z - top[:, None]).sum(axis=1)))


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss (the step is named; no update was applied)."""


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    images: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        """Training images per second over the epoch."""
        return self.images / self.seconds if self.seconds > 0 else float("nan")


def train_one_epoch(model: Module, batches: Iterable[tuple[Tensor, Tensor]], optimizer: Any,
                    scheduler: Any = None, step_scheduler_per_batch: bool = False,
                    clip_grad_norm: float | None = None, progress: Any = None,
                    outliers: np.ndarray | None = None, outlier_rng: np.random.Generator | None = None,
                    on_step: Callable[[float, float, int], None] | None = None,
                    label_smoothing: float = 0.0, parallel: DataParallel | None = None,
                    distributed: DistributedDataParallel | None = None, averaged: Any = None) -> EpochStats:
    """One pass over `batches` of (images float32 (B, 1, H, W), labels (B,)), Tensors or arrays.

    `progress`, if given, is a tqdm bar: it advances per batch and shows the
    running loss, accuracy and images/s. With `outliers` (normalized images of
    non-members, e.g. `data.not_digits`), each step also draws B/4 of them (from
    `outlier_rng`) and adds OUTLIER_WEIGHT times their cross-entropy to the uniform
    distribution: outlier exposure, which teaches low logits for what is unlike any class.
    `on_step(loss, accuracy, images)`, if given, is called after every step (e.g. a dashboard).
    The loss is cross-entropy, with `label_smoothing` as in `functional.cross_entropy`.
    With `parallel` (a `DataParallel` of this model, whose loss is that cross-entropy),
    each batch's forward and backward passes are shared between its processes, and the
    outliers' (if any) run in this one, their gradient added to the batch's.
    With `distributed` (a `DistributedDataParallel` of this model), `batches` are the
    whole job's batches, the same on every rank: each rank computes its rows (every
    world-size-th from its rank) and its rows of the outliers, weighted by their share,
    so that the one allreduce of gradients gives every rank the gradient one process
    would compute for the whole batch; the loss, accuracy and counts are the whole job's.
    `averaged` (an `optim.swa_utils.AveragedModel` of this model), if given, takes in the
    weights after every step."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    # numpy's overflow/invalid warnings are replaced by the loss check below, which names the step
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for step, (x, y) in enumerate(batches, 1):
            x, y = _as_tensor(x), _as_tensor(y)
            if distributed is not None:
                optimizer.zero_grad()
                value, hits = _distributed_share_step(model, distributed, x, y, label_smoothing, outliers, outlier_rng)
                logits = loss = None
            elif parallel is not None:
                optimizer.zero_grad()
                value, scores = parallel.forward_backward(x, y)  # every .grad is the whole batch's
                logits, loss = Tensor.wrap(scores), None
            else:
                logits = model(x)
                loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
                value = loss.item()
            if outliers is not None and distributed is None:
                uniform_ce = uniform_cross_entropy(model, outliers[draw_outliers(outliers, outlier_rng, len(y))])
                if loss is None:  # the batch's gradient is in .grad already (parallel): add the outliers' to it
                    (uniform_ce * OUTLIER_WEIGHT).backward()
                else:
                    loss = loss + uniform_ce * OUTLIER_WEIGHT
            if not math.isfinite(value):
                raise NonFiniteLossError(f"loss is {value} at step {step} (batch of {len(y)} images)")
            if loss is not None:
                optimizer.zero_grad()
                loss.backward()
            if clip_grad_norm is not None:
                clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(model)
            if scheduler is not None and step_scheduler_per_batch:
                scheduler.step()
            n = len(y)
            if logits is not None:
                hits = int((logits.data.argmax(axis=1) == y.data).sum())
            total_loss += value * n
            correct += hits
            seen += n
            if on_step is not None:
                on_step(value, hits / n, n)
            if progress is not None:
                elapsed = time.perf_counter() - start
                progress.update(1)
                progress.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}",
                                     img_s=f"{seen / elapsed:.0f}", refresh=False)
    if scheduler is not None and not step_scheduler_per_batch:
        scheduler.step()
    seconds = time.perf_counter() - start
    return EpochStats(total_loss / max(seen, 1), correct / max(seen, 1), seen, seconds)


def _distributed_share_step(model: Module, ddp: DistributedDataParallel, x: Tensor, y: Tensor,
                            label_smoothing: float, outliers: np.ndarray | None,
                            outlier_rng: np.random.Generator | None) -> tuple[float, int]:
    """This rank's forward and backward of its rows of the batch (and of the outliers), each
    term weighted by its share, then the allreduce: (the batch's loss, its correct count)."""
    rows = slice(ddp.rank, None, ddp.world_size)
    xs, ys = x.data[rows], y.data[rows]
    loss, value, hits = None, 0.0, 0
    if len(ys):
        logits = model(Tensor.wrap(xs))
        loss = F.cross_entropy(logits, Tensor.wrap(ys), label_smoothing=label_smoothing) * (len(ys) / len(y))
        value = loss.item()
        hits = int((logits.data.argmax(axis=1) == ys).sum())
    if outliers is not None:  # the draw one process would make, the same on every rank; this rank's rows of it
        if outlier_rng is None:
            raise ValueError("train_one_epoch: with distributed, outlier_rng must be given (seeded alike on every "
                             "rank), so that the ranks share one draw of outliers")
        picked = draw_outliers(outliers, outlier_rng, len(y))
        mine = picked[rows]
        if len(mine):
            term = uniform_cross_entropy(model, outliers[mine]) * (OUTLIER_WEIGHT * len(mine) / len(picked))
            loss = term if loss is None else loss + term
    if loss is not None:
        loss.backward()
    value, correct = ddp.reduce_gradients(extras=(value, hits))
    return float(value), int(round(correct))


def draw_outliers(outliers: np.ndarray, rng: np.random.Generator | None, batch: int) -> np.ndarray:
    """Indices of the outliers a step of `batch` images adds: a quarter batch (at least one)."""
    return (rng or np.random.default_rng()).integers(0, len(outliers), max(1, batch // 4))


def uniform_cross_entropy(model: Module, images: np.ndarray) -> Tensor:
    """The mean cross-entropy of the model's predictions on `images` to the uniform
    distribution (up to a constant): low when it rates no class likely."""
    return -model(Tensor.wrap(images)).log_softmax(1).mean()


def _as_tensor(batch: Any) -> Tensor:
    return batch if isinstance(batch, Tensor) else Tensor.wrap(np.asarray(batch))


@no_grad()
def predict_logits(model: Module, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Logits (N, classes) for float32 images (N, 1, H, W), in eval mode, batch by batch."""
    was_training = model.training
    model.eval()
    try:
        outs = [model(Tensor.wrap(images[i:i + batch_size])).data for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(outs) if outs else np.zeros((0, 0), dtype=np.float32)


def evaluate(model: Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000) -> tuple[float, float, np.ndarray]:
    """(mean cross-entropy, accuracy, predicted classes) over a labelled set."""
    logits = predict_logits(model, images, batch_size)
    with no_grad():
        loss = F.cross_entropy(Tensor.wrap(logits), Tensor.wrap(labels.astype(np.int64))).item()
    preds = logits.argmax(axis=1)
    return loss, float((preds == labels).mean()), preds


def evaluate_distributed(model: Module, images: np.ndarray, labels: np.ndarray, ddp: DistributedDataParallel,
                         batch_size: int = 1000) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over a labelled set, each rank evaluating a contiguous
    share of it, the sums combined by one allreduce (the same on every rank)."""
    a, b = shares(len(labels), ddp.world_size)[ddp.rank]
    loss, correct = 0.0, 0
    if b > a:
        loss, _, preds = evaluate(model, images[a:b], labels[a:b], batch_size)
        correct = int((preds == labels[a:b]).sum())
    total = ddp.group.allreduce_(np.array([loss * (b - a), correct], dtype=np.float64), "the evaluation's allreduce")
    n = max(len(labels), 1)
    return float(total[0] / n), float(total[1] / n)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels.astype(np.int64), preds.astype(np.int64)), 1)
    return counts

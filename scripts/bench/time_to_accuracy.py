"""Time to 99.0% test accuracy with train.py's recipe, ours and PyTorch's, per seed."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from models import build_model
from tinygrad_lenet import functional as F
from tinygrad_lenet import manual_seed
from tinygrad_lenet.config import RunConfig, build_averaged_model
from tinygrad_lenet.data_parallel import DataParallel
from tinygrad_lenet.ops.parallel import get_num_threads
from tinygrad_lenet.optim.swa_utils import warmup_decay

from .common import make_torch, torch_threads_matching


def bench_time_to_accuracy(args: argparse.Namespace, target: float = 0.99) -> dict[str, Any]:
    """train.py's default recipe (RunConfig defaults: SGD with Nesterov momentum, one-cycle
    learning rate, weight decay, label smoothing) on MNIST, here and in PyTorch with the
    same initial weights and the same batches in the same order, alternating epoch by
    epoch, once per seed (--seeds: the recipe's seed and the next ones). Which epoch first
    reaches the target can differ between the two by rounding alone (the same sums in
    another order), so each seed is one repeat and the ratios are medians over seeds.
    PyTorch trains at our thread count ("torch") and, as a second model from the same
    start, at its default of one thread per core when that differs ("torch_default"), and
    at one thread when neither is ("torch_one_thread"), so that its best is among the runs.
    With --workers N our steps share each batch between N processes (DataParallel) and
    PyTorch's "our thread count" is N. Training time only (the test evaluation after each
    epoch is not counted)."""
    from tinygrad_lenet.data import DATASETS, load_mnist, normalize_images

    config = RunConfig() if args.max_epochs is None else RunConfig(epochs=args.max_epochs)
    config = config.replace(train_subset=args.train_subset)
    mean_std = (DATASETS["mnist"].mean, DATASETS["mnist"].std)  # its published statistics
    test_x, test_y = load_mnist("test")
    train_x, train_y = load_mnist("train")
    if config.train_subset:  # the first N images, as train.py's --train-subset takes them
        train_x, train_y = train_x[:config.train_subset], train_y[:config.train_subset]
    data = dict(train=(train_x, train_y), test=(normalize_images(test_x, normalize=mean_std), test_y),
                mean_std=mean_std)
    cores = torch_threads_matching(args)
    torch_threads = {"torch": cores}
    if (os.cpu_count() or 1) != cores:
        torch_threads["torch_default"] = os.cpu_count() or 1
    if 1 not in torch_threads.values():  # one thread was PyTorch's best in some runs here
        torch_threads["torch_one_thread"] = 1
    seeds = [time_to_accuracy_seed(config.replace(seed=config.seed + k), data, torch_threads, target, args.workers)
             for k in range(args.seeds)]
    return dict(target=target, recipe=config.to_dict(), threads=dict(ours=get_num_threads(), **torch_threads),
                workers=args.workers, seeds=seeds, **medians_over_seeds(seeds))


RATIOS = {  # time-to-accuracy ratios: key -> against what
    "ratio": "PyTorch at our thread count", "ratio_default": "PyTorch at its default threads",
    "ratio_best": "PyTorch at its best", "training_ratio_best": None,
}


def medians_over_seeds(seeds: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each of RATIOS as the median over the seeds that have it (a seed whose run
    did not reach the target has none), None when no seed has it."""
    out = {}
    for key in RATIOS:
        values = [s[key] for s in seeds if s[key] is not None]
        out[key] = float(np.median(values)) if values else None
    return out


def time_to_accuracy_seed(config: RunConfig, data: dict[str, Any], torch_threads: dict[str, int],
                          target: float, workers: int = 1) -> dict[str, Any]:
    """One seed of bench_time_to_accuracy: each run's accuracy per epoch, training
    seconds, and the epoch and time at which it first reached the target."""
    import torch

    from tinygrad_lenet.config import build_optimizer, build_scheduler
    from tinygrad_lenet.data import DataLoader
    from tinygrad_lenet.training import evaluate

    (train_x, train_y), (test_images, test_y), mean_std = data["train"], data["test"], data["mean_std"]
    manual_seed(config.seed)
    ours = build_model(config.model, {}, mean_std)
    optimizer = build_optimizer(config, ours.parameters())
    loader = DataLoader(train_x, train_y, batch_size=config.batch_size, shuffle=True, seed=config.seed, normalize=mean_std)
    scheduler, per_batch = build_scheduler(config, optimizer, len(loader))
    averaged = build_averaged_model(config, ours)
    smoothing = config.label_smoothing
    parallel = DataParallel(ours, workers=workers,
                            loss=lambda logits, y: F.cross_entropy(logits, y, label_smoothing=smoothing))
    theirs = {}
    for name in torch_threads:
        _, model, _ = make_torch(ours, get_num_threads())
        t_opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True,
                                weight_decay=config.weight_decay)
        t_sched = torch.optim.lr_scheduler.OneCycleLR(t_opt, max_lr=config.lr, total_steps=config.epochs * len(loader))
        theirs[name] = (model, t_opt, t_sched, torch_averaged(torch, model, config))
    runs = {name: dict(seconds=0.0, reached=None, accuracy=[]) for name in ("ours", *theirs)}
    for epoch in range(config.epochs):
        loader.set_epoch(epoch)
        batches = [(x.data, y.data) for x, y in loader]
        ours.train()
        start = time.perf_counter()
        for x, y in batches:
            optimizer.zero_grad()
            parallel.forward_backward(x, y)  # one process: forward and backward here, as train.py runs it
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(ours)
            if per_batch:
                scheduler.step()
        runs["ours"]["seconds"] += time.perf_counter() - start
        accuracy = {"ours": evaluate(ours if averaged is None else averaged, test_images, test_y)[1]}
        for name, (model, t_opt, t_sched, t_averaged) in theirs.items():
            torch.set_num_threads(torch_threads[name])
            model.train()
            start = time.perf_counter()
            for x, y in batches:
                loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y.astype(np.int64)),
                                                         label_smoothing=smoothing)
                t_opt.zero_grad(set_to_none=True)
                loss.backward()
                t_opt.step()
                if t_averaged is not None:
                    t_averaged.update_parameters(model)
                t_sched.step()
            runs[name]["seconds"] += time.perf_counter() - start
            tested = model if t_averaged is None else t_averaged
            tested.eval()
            with torch.no_grad():
                accuracy[name] = float((tested(torch.from_numpy(test_images)).argmax(1).numpy() == test_y).mean())
        for name, run in runs.items():
            run["accuracy"].append(accuracy[name])
            if run["reached"] is None and accuracy[name] >= target:
                run["reached"] = dict(epoch=epoch + 1, seconds=run["seconds"])

    def ratio(names: list[str]) -> float | None:
        reached = [runs[n]["reached"]["seconds"] for n in names if runs[n]["reached"]]
        return runs["ours"]["reached"]["seconds"] / min(reached) if runs["ours"]["reached"] and reached else None
    # the same epochs of the same batches: the speed of training alone, whichever epoch first reached the target
    training_ratio_best = runs["ours"]["seconds"] / min(runs[n]["seconds"] for n in theirs)
    parallel.close()
    return dict(seed=config.seed, runs=runs, ratio=ratio(["torch"]),
                ratio_default=ratio(["torch_default" if "torch_default" in runs else "torch"]),
                ratio_best=ratio(list(theirs)), training_ratio_best=training_ratio_best)


def torch_averaged(torch: Any, model: Any, config: RunConfig) -> Any:
    """PyTorch's AveragedModel of `model` averaging as the recipe's (`build_averaged_model`:
    the exponential moving average with TensorFlow's warm-up), or None without one."""
    if config.ema_decay is None:
        return None

    def ema_update(averaged: list, current: list, num_averaged: Any) -> None:
        torch._foreach_lerp_(averaged, current, 1 - warmup_decay(config.ema_decay, int(num_averaged)))
    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=ema_update)


def report_time_to_accuracy(r: dict[str, Any]) -> list[str]:
    """Lines for --time-to-accuracy: per seed, each run's time and epoch to the target
    and its accuracy per epoch; then the ratios ours / PyTorch, medians over seeds."""
    subset = r["recipe"].get("train_subset")
    lines = [f"trained on the first {subset:,} training images only (--train-subset)"] if subset else []
    for one in r["seeds"]:
        lines.append(f"seed {one['seed']}:")
        for name, run in one["runs"].items():
            threads = r["threads"][name]
            label = f"{'ours' if name == 'ours' else 'PyTorch'} ({threads} thread{'s' if threads > 1 else ''})"
            if name == "ours" and r.get("workers", 1) > 1:
                label = f"ours ({r['workers']} processes)"
            reached = run["reached"]
            when = f"{reached['seconds']:.1f} s (epoch {reached['epoch']})" if reached else "not reached"
            lines.append(f"  time to {r['target']:.1%}, {label}: {when}; test accuracy per epoch "
                         f"{', '.join(f'{a:.2%}' for a in run['accuracy'])}; {run['seconds']:.1f} s of training")
        lines.append("  ours / PyTorch at its best: time to {:.1%} {}, training time {:.2f}".format(
            r["target"], "-" if one["ratio_best"] is None else f"{one['ratio_best']:.2f}", one["training_ratio_best"]))
    count = len(r["seeds"])
    over = f"median over {count} seeds" if count > 1 else f"seed {r['seeds'][0]['seed']}"
    for key, what in RATIOS.items():
        if what is not None and r[key] is not None:
            lines.append(f"time to {r['target']:.1%}: ours / {what} = {r[key]:.2f} ({over})")
    epochs = len(r["seeds"][0]["runs"]["ours"]["accuracy"])
    lines.append(f"training time for all {epochs} epoch{'s' if epochs > 1 else ''} (the same batches): "
                 f"ours / PyTorch at its best = {r['training_ratio_best']:.2f} ({over})")
    return lines

#!/usr/bin/env python3
"""Train a model (LeNet-5 by default) on MNIST or Fashion-MNIST.

    python scripts/train.py                       # the default recipe
    python scripts/train.py --augment --epochs 30 # with random shifts/rotations/scaling
    python scripts/train.py --resume runs/lenet5/checkpoint.npz

Writes OUT/checkpoint.npz (model, optimizer and scheduler state, epoch, run
config; npz without pickle, written atomically) and OUT/metrics.json after
every epoch. The same seed gives the same weights and losses, and a resumed run
continues exactly as the uninterrupted one would have.
"""

from __future__ import annotations

import os

# Before numpy loads: OpenBLAS's own threads spin while they wait, which makes
# LeNet-5's small matrix products slower, not faster (see the README's speed
# section). Set OPENBLAS_NUM_THREADS / TINYGRAD_LENET_NUM_THREADS to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path
from typing import Any

from tqdm import tqdm  # noqa: E402

from models import available_models, get_model_for_data  # noqa: E402
from tinygrad_lenet import manual_seed, optim  # noqa: E402
from tinygrad_lenet.atomic import atomic_write_text  # noqa: E402
from tinygrad_lenet.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from tinygrad_lenet.data import NORMALIZATION, DataLoader, RandomAffine, load_mnist, normalize_images  # noqa: E402
from tinygrad_lenet.memory import retain_freed_memory  # noqa: E402
from tinygrad_lenet.nn.lenet_layers import count_trainable_parameters  # noqa: E402
from tinygrad_lenet.training import evaluate, train_one_epoch  # noqa: E402

DEFAULTS = dict(model="lenet5", dataset="mnist", epochs=12, batch_size=128, optimizer="sgd", lr=0.05,
                momentum=0.9, schedule="onecycle", weight_decay=5e-4, seed=0)


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such checkpoint file: {path}")
    return path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=available_models(), default=DEFAULTS["model"])
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default=DEFAULTS["dataset"])
    p.add_argument("--epochs", type=positive_int, default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=positive_int, default=DEFAULTS["batch_size"])
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default=DEFAULTS["optimizer"])
    p.add_argument("--lr", type=positive_float, default=DEFAULTS["lr"],
                   help="learning rate (the peak rate for --schedule onecycle)")
    p.add_argument("--momentum", type=non_negative_float, default=DEFAULTS["momentum"], help="SGD momentum (Nesterov)")
    p.add_argument("--schedule", choices=["none", "step", "cosine", "onecycle"], default=DEFAULTS["schedule"])
    p.add_argument("--step-size", type=positive_int, default=4, help="epochs between decays for --schedule step")
    p.add_argument("--gamma", type=positive_float, default=0.3, help="decay factor for --schedule step")
    p.add_argument("--weight-decay", type=non_negative_float, default=DEFAULTS["weight_decay"])
    p.add_argument("--clip-grad-norm", type=positive_float, default=None)
    p.add_argument("--augment", action="store_true", help="random shifts, small rotations and scaling")
    p.add_argument("--seed", type=non_negative_int, default=DEFAULTS["seed"])
    p.add_argument("--data-dir", type=Path, default=None, help="directory with the IDX files "
                   "(default: $TINYGRAD_LENET_DATA, then the cache, else download)")
    p.add_argument("--out", type=Path, default=None,
                   help="output directory (default: runs/MODEL, or runs/MODEL-DATASET when not MNIST)")
    p.add_argument("--resume", type=existing_file, default=None, help="checkpoint to continue from")
    p.add_argument("--stop-after", type=positive_int, default=None,
                   help="stop after this epoch, as an interrupted run would; --resume continues it")
    p.add_argument("--train-subset", type=positive_int, default=None, help="use only the first N training images")
    p.add_argument("--test-subset", type=positive_int, default=None, help="use only the first N test images")
    p.add_argument("--target-accuracy", type=float, default=0.99,
                   help="report the training time until test accuracy first reaches this")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in logs)")
    return p


def make_optimizer(args: argparse.Namespace, params: list) -> Any:
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=args.lr, momentum=args.momentum, nesterov=args.momentum > 0,
                         weight_decay=args.weight_decay)
    cls = optim.Adam if args.optimizer == "adam" else optim.AdamW
    return cls(params, lr=args.lr, weight_decay=args.weight_decay)


def make_scheduler(args: argparse.Namespace, optimizer: Any, steps_per_epoch: int) -> tuple[Any, bool]:
    """The scheduler and whether it steps per batch (else per epoch)."""
    total = args.epochs * steps_per_epoch
    if args.schedule == "step":
        return optim.lr_scheduler.StepLR(optimizer, step_size=args.step_size, gamma=args.gamma), False
    if args.schedule == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total), True
    if args.schedule == "onecycle":
        return optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=total), True
    return None, False


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    for machine_specific in ("data_dir", "out", "resume", "no_progress", "stop_after"):
        config.pop(machine_specific, None)
    config["normalize_mean"], config["normalize_std"] = NORMALIZATION[args.dataset]
    return config


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = Path("runs") / (args.model if args.dataset == "mnist" else f"{args.model}-{args.dataset}")
    config = run_config(args)
    start_epoch, history = 0, []

    if args.resume is not None:
        try:
            ckpt = load_checkpoint(args.resume)
        except (OSError, ValueError) as e:
            parser.error(f"--resume: cannot load {args.resume}: {e}")
        saved = ckpt["extra"].get("config")
        if not isinstance(saved, dict) or "epoch" not in ckpt["extra"] or "history" not in ckpt["extra"]:
            parser.error(f"--resume: {args.resume} has no run config, epoch and history: "
                         "it was not written by scripts/train.py")
        mismatched = [k for k in sorted(config) if saved.get(k) != config.get(k)]
        if mismatched:
            parser.error("--resume: the checkpoint was trained with different settings: " + ", ".join(
                f"{k}={saved.get(k)!r} (now {config.get(k)!r})" for k in mismatched))
        start_epoch, history = ckpt["extra"]["epoch"], ckpt["extra"]["history"]

    retain_freed_memory()  # reuse freed arrays instead of page-faulting them back every step
    manual_seed(args.seed)
    try:
        train_x, train_y = load_mnist("train", root=args.data_dir, dataset=args.dataset)
        test_x, test_y = load_mnist("test", root=args.data_dir, dataset=args.dataset)
    except (OSError, ValueError) as e:
        parser.error(f"cannot load {args.dataset}: {e}")
    if args.train_subset:
        train_x, train_y = train_x[:args.train_subset], train_y[:args.train_subset]
    if args.test_subset:
        test_x, test_y = test_x[:args.test_subset], test_y[:args.test_subset]
    test_images = normalize_images(test_x, normalize=args.dataset)

    model = get_model_for_data(args.model, (config["normalize_mean"], config["normalize_std"]))
    augment = RandomAffine() if args.augment else None
    loader = DataLoader(train_x, train_y, batch_size=args.batch_size, shuffle=True, seed=args.seed,
                        normalize=args.dataset, augment=augment)
    optimizer = make_optimizer(args, model.parameters())
    scheduler, per_batch = make_scheduler(args, optimizer, len(loader))

    if args.resume is not None:
        model.load_state_dict(ckpt["model_state"])
        optimizer.load_state_dict(ckpt["optimizer_state"])
        if scheduler is not None:
            scheduler.load_state_dict(ckpt["scheduler_state"])

    args.out.mkdir(parents=True, exist_ok=True)
    n_params = count_trainable_parameters(model)
    print(f"{args.model}: {n_params:,} parameters | {args.dataset}: {len(train_x):,} train / {len(test_x):,} test "
          f"| {args.optimizer} lr={args.lr} schedule={args.schedule} batch={args.batch_size}"
          f"{' | augment' if args.augment else ''}")

    train_seconds = sum(h["train_seconds"] for h in history)
    last_epoch = min(args.epochs, args.stop_after or args.epochs)
    for epoch in range(start_epoch, last_epoch):
        loader.set_epoch(epoch)
        bar = tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch",
                   disable=args.no_progress, leave=True, dynamic_ncols=True)
        stats = train_one_epoch(model, loader, optimizer, scheduler, per_batch, args.clip_grad_norm, progress=bar)
        bar.close()
        train_seconds += stats.seconds
        test_loss, test_acc, _ = evaluate(model, test_images, test_y)
        history.append(dict(epoch=epoch + 1, train_loss=stats.loss, train_accuracy=stats.accuracy,
                            test_loss=test_loss, test_accuracy=test_acc, train_seconds=stats.seconds,
                            images_per_s=stats.images_per_s, lr=float(optimizer.param_groups[0]["lr"])))
        print(f"epoch {epoch + 1}: train loss {stats.loss:.4f} acc {stats.accuracy:.4f} | test loss {test_loss:.4f} "
              f"acc {test_acc:.4f} | {stats.seconds:.1f} s, {stats.images_per_s:.0f} img/s", flush=True)
        save_checkpoint(args.out / "checkpoint.npz", model_state=model.state_dict(),
                        optimizer_state=optimizer.state_dict(),
                        scheduler_state=scheduler.state_dict() if scheduler is not None else None,
                        extra=dict(epoch=epoch + 1, config=config, history=history))
        atomic_write_text(args.out / "metrics.json", json.dumps(summary(config, history, args.target_accuracy),
                                                                 indent=2) + "\n")

    result = summary(config, history, args.target_accuracy)
    reached = result["time_to_target_seconds"]
    print(f"final test accuracy: {result['final_test_accuracy']:.4f} after {len(history)} epochs, "
          f"{result['train_seconds']:.1f} s of training"
          + (f"; {args.target_accuracy:.2%} first reached after {reached:.1f} s (epoch {result['epochs_to_target']})"
             if reached is not None else f"; {args.target_accuracy:.2%} not reached"))
    print(f"wrote {args.out / 'checkpoint.npz'} and {args.out / 'metrics.json'}")
    return 0


def summary(config: dict, history: list[dict], target: float) -> dict[str, Any]:
    seconds, to_target, epochs_to_target = 0.0, None, None
    for h in history:
        seconds += h["train_seconds"]
        if to_target is None and h["test_accuracy"] >= target:
            to_target, epochs_to_target = seconds, h["epoch"]
    return dict(config=config, epochs=history, final_test_accuracy=history[-1]["test_accuracy"] if history else None,
                train_seconds=seconds, target_accuracy=target, time_to_target_seconds=to_target,
                epochs_to_target=epochs_to_target)


if __name__ == "__main__":
    sys.exit(main())

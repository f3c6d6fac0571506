#!/usr/bin/env python3
"""Train a model (LeNet-5 by default, or your own) on MNIST, Fashion-MNIST or a
directory of IDX files.

    python scripts/train.py                                  # the default recipe
    python scripts/train.py --augment --epochs 20            # random shifts/rotations/scaling
    python scripts/train.py --model my_net.py:MyNet --model-arg width=32
    python scripts/train.py --resume runs/lenet5/checkpoint.npz
    mpiexec -n 2 python scripts/train.py                     # data-parallel over MPI ranks

Writes OUT/checkpoint.npz (model, optimizer and scheduler state, epoch, run config,
class names; npz without pickle, written atomically), OUT/metrics.json and OUT/curves.png
(loss, accuracy and learning rate per epoch) after every epoch. OUT defaults to
runs/NAME; a directory that already holds a checkpoint is refused unless --overwrite
(start again) or --resume (continue it) is given.
`--resume CHECKPOINT` alone continues with the settings stored in it. The same seed
gives the same weights and losses, and a resumed run continues exactly as the
uninterrupted one would have.

Under `mpiexec -n N` (or with --distributed) the run is data-parallel over N ranks
(tinygrad_lenet.distributed, the `distributed` extra): --batch-size is the whole job's
batch, each rank computing every N-th image of it, so the training is one process's up
to rounding; --batch-per-rank B makes the batch N x B instead. Rank 0 prints and writes;
an error on any rank ends every rank. --resume works with the same or another N.
"""

from __future__ import annotations

import os

# Before numpy loads: OpenBLAS's own threads spin while they wait, which makes
# LeNet-5's small matrix products slower, not faster (see docs/guides/speed.md,
# "threads"). Set OPENBLAS_NUM_THREADS / TINYGRAD_LENET_NUM_THREADS to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/ and viz/: from the checkout, not installed

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from models import (  # noqa: E402
    CheckpointError,
    ModelSpecError,
    accepts_argument,
    build_model,
    check_output_size,
    config_of,
    count_trainable_parameters,
    file_sha256,
    model_to_build,
    resolve_builder,
)
from scripts.options import (
    CHECKPOINT,
    DASHBOARD,
    GRAPH_VIEWER,
    METRICS,
    RUNS,
    add_data_dir_argument,
    check_data_dir,
    wait_for_interrupt,
)
from tinygrad_lenet import manual_seed  # noqa: E402
from tinygrad_lenet.atomic import atomic_write_text  # noqa: E402
from tinygrad_lenet.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from tinygrad_lenet.cli import (  # noqa: E402
    add_checkpoint_code_arguments,
    add_run_arguments,
    existing_file,
    given_run_options,
    port_number,
    positive_int,
    run_config_from_args,
)
from tinygrad_lenet.config import RunConfig, build_averaged_model, build_optimizer, build_scheduler  # noqa: E402
from tinygrad_lenet.data import (  # noqa: E402
    DataLoader,
    RandomAffine,
    describe_dataset,
    is_known_dataset,
    load_split,
    normalize_images,
    not_digits,
)
from tinygrad_lenet.data_parallel import DataParallel, DataParallelError  # noqa: E402
from tinygrad_lenet.distributed import (  # noqa: E402
    DistributedDataParallel,
    DistributedError,
    ProcessGroup,
    init_process_group,
    launched_world_size,
)
from tinygrad_lenet.functional import cross_entropy  # noqa: E402
from tinygrad_lenet.memory import retain_freed_memory  # noqa: E402
from tinygrad_lenet.nn import StateDictError  # noqa: E402
from tinygrad_lenet.nn.fusion import unfused  # noqa: E402
from tinygrad_lenet.nn.utils import non_finite_entries  # noqa: E402
from tinygrad_lenet.training import (  # noqa: E402
    NonFiniteLossError,
    energy_threshold,
    evaluate,
    evaluate_distributed,
    train_one_epoch,
)
from viz import draw_graph, explore, layer_names_of  # noqa: E402
from viz.dashboard import DashboardState, snapshot_html, start_dashboard  # noqa: E402
from viz.plots import plot_curves  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    add_data_dir_argument(p)
    p.add_argument("--out", type=Path, default=None,
                   help="output directory (default: runs/NAME; with --resume, the checkpoint's directory)")
    p.add_argument("--overwrite", action="store_true", help="start again in an --out that holds a checkpoint")
    p.add_argument("--resume", type=existing_file, default=None,
                   help="checkpoint to continue from, with the settings stored in it")
    add_checkpoint_code_arguments(p, model=False)
    p.add_argument("--stop-after", type=positive_int, default=None,
                   help="stop after this epoch, as an interrupted run would; --resume continues it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in logs)")
    p.add_argument("--dashboard", type=port_number, nargs="?", const=8001, default=None, metavar="PORT",
                   help="serve a live dashboard of the training on 127.0.0.1:PORT (default 8001; 0: a free port); "
                        "every run also writes OUT/dashboard.html, which opens without a server")
    p.add_argument("--dashboard-keep", action="store_true",
                   help="with --dashboard: after the run ends, keep serving its final state until Ctrl+C")
    p.add_argument("--plot-format", choices=("png", "svg"), default="png",
                   help="format of OUT/curves.* (loss, accuracy and learning rate per epoch)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI ranks (implied when started by mpiexec with more than one rank)")
    p.add_argument("--batch-per-rank", type=positive_int, default=None, metavar="B",
                   help="under MPI: each rank's batch; the job's batch is ranks x B (instead of --batch-size)")
    return p


def run_name(config: RunConfig) -> str:
    """runs/NAME: the model's name (a file's stem and attribute), and the data set when not MNIST."""
    model = config.model
    if ":" in model:
        where, attr = model.rsplit(":", 1)
        model = f"{Path(where).stem if where.endswith('.py') else where.rsplit('.', 1)[-1]}-{attr}"
    name = model if config.dataset == "mnist" else f"{model}-{Path(config.dataset).name or 'data'}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def resumed_config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[RunConfig, dict]:
    """The stored config of --resume's checkpoint; options given now must agree with it."""
    try:
        ckpt = load_checkpoint(args.resume)
        config = config_of(ckpt, args.resume)
    except (OSError, ValueError) as e:
        parser.error(f"--resume: {e}")
    extra = ckpt["extra"]
    if ("config" not in extra or not isinstance(extra.get("epoch"), int)
            or not isinstance(extra.get("history"), list)):
        parser.error(f"--resume: {args.resume} has no run config, epoch and history: it was not written by "
                     "scripts/train.py")
    problem = history_problem(extra["epoch"], extra["history"])
    if problem:
        parser.error(f"--resume: {args.resume}: {problem}")
    given = given_run_options(args)
    try:
        wanted = config.replace(**given)
    except ValueError as e:
        parser.error(f"--resume: {e}")
    conflicts = config.differences(wanted, sorted(given))
    if conflicts:
        parser.error(f"--resume: {args.resume} was trained with other settings: " + ", ".join(conflicts)
                     + "; leave them out to continue the run as it was")
    try:  # the model code it names is imported only with the user's consent
        model_to_build(config, args.resume, given.get("model"), args.trust_checkpoint_code)
    except CheckpointError as e:
        parser.error(f"--resume: {e}")
    return config, ckpt


@dataclass
class Data:
    """The data set's splits (the training images as read, the test images normalized)."""
    info: Any
    train_x: np.ndarray
    train_y: np.ndarray
    test_images: np.ndarray
    test_y: np.ndarray


@dataclass
class Training:
    """What the epochs need: the model, its batches, optimizer and schedule, and where a
    resumed run stands."""
    model: Any
    loader: DataLoader
    optimizer: Any
    scheduler: Any
    per_batch: bool
    start_epoch: int = 0
    history: list = field(default_factory=list)
    distributed: DistributedDataParallel | None = None  # under MPI: the model's ranks
    averaged: Any = None  # the average of the weights the run evaluates and saves (RunConfig.ema_decay)

    @property
    def evaluated(self) -> Any:
        """The model the run tests and saves: the averaged weights, or the weights."""
        return self.model if self.averaged is None else self.averaged

    def evaluated_state(self) -> Any:
        """The evaluated model's state dict, under the model's own names."""
        return (self.model if self.averaged is None else self.averaged.module).state_dict()


def is_lead(training: Training) -> bool:
    """Whether this process prints and writes the run's files: one process, or rank 0."""
    return training.distributed is None or training.distributed.rank == 0


def ranks(training: Training) -> int:
    return 1 if training.distributed is None else training.distributed.world_size


def main(argv: list[str] | None = None) -> int:
    """The named steps of a run: settings, data, model, output directory, the epochs, a summary."""
    parser = build_parser()
    args = parser.parse_args(argv)
    group = join_ranks(parser, args)
    if group is None:
        return run(parser, args, None)
    quiet = open(os.devnull, "w") if group.rank != 0 else None  # rank 0 prints; the others report only errors
    try:  # an error on any rank ends every rank (the others would wait for it at the next step)
        with contextlib.redirect_stdout(quiet) if quiet else contextlib.nullcontext():
            code = run(parser, args, group)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
        if code:
            group.abort(code)
        raise
    except DistributedError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        group.abort(1)
    except BaseException:
        traceback.print_exc()
        group.abort(1)
    finally:
        if quiet is not None:
            quiet.close()
    if code:
        group.abort(code)
    return code


def join_ranks(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ProcessGroup | None:
    """The MPI ranks of a run under mpiexec (or --distributed), None for one process; the
    options that depend on it checked."""
    if not args.distributed and launched_world_size() == 1:
        if args.batch_per_rank is not None:
            parser.error("--batch-per-rank: only under MPI (mpiexec -n N ... or --distributed); use --batch-size")
        return None
    try:
        group = init_process_group()
    except DistributedError as e:
        parser.error(f"--distributed: {e}")
    if group.size > 1:  # an error names the rank it happened on
        error = parser.error
        parser.error = lambda message: error(f"rank {group.rank} of {group.size}: {message}")  # type: ignore[method-assign]
    if getattr(args, "workers", 1) > 1:
        print(f"train.py: error: --workers: under MPI each rank is one process; start more ranks instead "
              f"(mpiexec -n {group.size * args.workers})", file=sys.stderr)
        group.abort(2)
    if args.batch_per_rank is not None:
        if hasattr(args, "batch_size"):
            parser.error("--batch-per-rank: give it or --batch-size (the job's batch), not both")
        args.batch_size = args.batch_per_rank * group.size
    if group.rank != 0:  # one progress bar: rank 0's
        args.no_progress = True
    return group


def run(parser: argparse.ArgumentParser, args: argparse.Namespace, group: ProcessGroup | None) -> int:
    """The run on this process (a rank's part of it under MPI)."""
    config, ckpt, out = run_settings(parser, args)
    retain_freed_memory()  # reuse freed arrays instead of page-faulting them back every step
    manual_seed(config.seed)
    data, config = load_data(parser, args, config, fresh=ckpt is None)
    training = build_training(parser, args, config, data, ckpt)
    if group is not None:  # every rank starts from rank 0's weights
        training.distributed = DistributedDataParallel(training.model, group)
    if is_lead(training):
        prepare_out(parser, out)
    print(f"{config.model}: {count_trainable_parameters(training.model):,} parameters | {data.info.title}: "
          f"{len(data.train_x):,} train / {len(data.test_y):,} test, {data.info.num_classes} classes | "
          f"{config.optimizer} lr={config.lr} schedule={config.schedule} batch={config.batch_size}"
          f"{' | augment' if config.augment else ''}{f' | {config.workers} processes' if config.workers > 1 else ''}"
          f"{f' | {group.size} ranks ({config.batch_size / group.size:g} images per rank)' if group else ''}")
    code = train_epochs(parser, args, config, data, training, out)
    if code:
        return code
    result = summary(config, training.history, ranks(training))
    reached = result["time_to_target_seconds"]
    print(f"final test accuracy: {result['final_test_accuracy']:.4f} after {len(training.history)} epochs, "
          f"{result['train_seconds']:.1f} s of training"
          + (f"; {config.target_accuracy:.2%} first reached after {reached:.1f} s (epoch {result['epochs_to_target']})"
             if reached is not None else f"; {config.target_accuracy:.2%} not reached"))
    print(f"wrote {out / CHECKPOINT} and {out / METRICS}")
    return 0


def run_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[RunConfig, dict | None, Path]:
    """The run's config (from the options, or --resume's checkpoint), that checkpoint, and
    the output directory; every option is checked here, before any data is read."""
    if args.resume is not None and args.overwrite:
        parser.error("--resume continues a run and --overwrite starts it again: give one of them")
    if args.dashboard_keep and args.dashboard is None:
        parser.error("--dashboard-keep: keeps a served dashboard; give --dashboard too")
    check_data_dir(parser, args)
    ckpt = None
    if args.resume is not None:
        config, ckpt = resumed_config(parser, args)
        out = args.out or args.resume.parent
    else:
        config = run_config_from_args(parser, args)
        out = args.out or RUNS / run_name(config)
        if (out / CHECKPOINT).exists() and not args.overwrite:
            parser.error(f"--out: {out} already holds a checkpoint of an earlier run; continue it with "
                         f"--resume {out / CHECKPOINT}, start again with --overwrite, or choose another --out")
    if out.exists() and not out.is_dir():
        parser.error(f"--out: {out} exists and is not a directory")
    if hasattr(args, "momentum") and config.schedule == "onecycle" and config.optimizer == "sgd":
        print("train.py: note: --momentum is not used with --schedule onecycle: the momentum cycles between "
              "0.85 and 0.95, as in PyTorch's OneCycleLR", file=sys.stderr)
    if not is_known_dataset(config.dataset) and not Path(config.dataset).is_dir():
        parser.error(f"--dataset: {config.dataset!r} is neither mnist, fashion-mnist nor a directory of IDX files")
    try:
        resolve_builder(config.model)  # a wrong --model is reported before the data is read
    except ModelSpecError as e:
        parser.error(f"{model_source(args)}{e}")
    return config, ckpt, out


def model_source(args: argparse.Namespace) -> str:
    """What an error about the model names: the checkpoint it came from, when resuming."""
    return f"--resume: {args.resume}: " if args.resume is not None else ""


def load_data(parser: argparse.ArgumentParser, args: argparse.Namespace, config: RunConfig,
              fresh: bool) -> tuple[Data, RunConfig]:
    """The splits (cut to the subsets asked for), and for a fresh run the config completed
    with the data's normalization and the model's arguments."""
    try:
        train_x, train_y = load_split(config.dataset, "train", root=args.data_dir)
        test_x, test_y = load_split(config.dataset, "test", root=args.data_dir)
        info = describe_dataset(config.dataset, train_x, train_y)
    except (OSError, ValueError) as e:
        parser.error(f"cannot load {config.dataset}: {e}")
    if fresh:
        config = config.replace(normalize_mean=info.mean, normalize_std=info.std)
        config = config.resolve_outlier_exposure(info.image_shape)
        try:
            config = with_model_details(config, info.num_classes)
        except ModelSpecError as e:
            parser.error(str(e))
    if config.train_subset:
        train_x, train_y = train_x[:config.train_subset], train_y[:config.train_subset]
    if config.test_subset:
        test_x, test_y = test_x[:config.test_subset], test_y[:config.test_subset]
    return Data(info, train_x, train_y, normalize_images(test_x, normalize=config.mean_std), test_y), config


def build_training(parser: argparse.ArgumentParser, args: argparse.Namespace, config: RunConfig, data: Data,
                   ckpt: dict | None) -> Training:
    """The model, loader, optimizer and scheduler of the config; resumed from `ckpt` when given."""
    try:
        model = build_model(config.model, config.model_args, config.mean_std)
        check_output_size(model, config.model, data.info.image_shape, data.info.num_classes)
    except ModelSpecError as e:
        parser.error(f"{model_source(args)}{e}")
    augment = RandomAffine() if config.augment else None
    loader = DataLoader(data.train_x, data.train_y, batch_size=config.batch_size, shuffle=True, seed=config.seed,
                        normalize=config.mean_std, augment=augment)
    optimizer = build_optimizer(config, model.parameters())
    scheduler, per_batch = build_scheduler(config, optimizer, len(loader))
    training = Training(model, loader, optimizer, scheduler, per_batch, averaged=build_averaged_model(config, model))
    if ckpt is None:
        return training
    try:
        if training.averaged is None:
            model.load_state_dict(ckpt["model_state"])
        else:  # the checkpoint's model is the average; training continues from the weights
            if ckpt["training_model_state"] is None:
                raise ValueError("it holds no training weights beside the averaged ones")
            model.load_state_dict(ckpt["training_model_state"])
            training.averaged.module.load_state_dict(ckpt["model_state"])
            training.averaged.n_averaged.data[...] = int(ckpt["extra"].get("averaged_steps", 0))
        optimizer.load_state_dict(ckpt["optimizer_state"])
        if scheduler is not None:
            scheduler.load_state_dict(ckpt["scheduler_state"])
    except StateDictError as e:
        parser.error(f"--resume: {args.resume} does not fit {config.model}: {e.summary()}")
    except (ValueError, KeyError, TypeError) as e:
        parser.error(f"--resume: {args.resume} does not fit {config.model}: {e}")
    bad = non_finite_entries(model) + ([] if training.averaged is None else non_finite_entries(training.averaged.module))
    if bad:
        parser.error(f"--resume: {args.resume} holds non-finite values (NaN or infinity) in {', '.join(bad[:3])}: "
                     "resume from an earlier checkpoint, with a smaller --lr")
    training.start_epoch, training.history = ckpt["extra"]["epoch"], ckpt["extra"]["history"]
    return training


def prepare_out(parser: argparse.ArgumentParser, out: Path) -> None:
    """The output directory, created and known to be writable now, not after an epoch."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as e:
        parser.error(f"--out: cannot write to {out}: {e.strerror or e}")


def train_epochs(parser: argparse.ArgumentParser, args: argparse.Namespace, config: RunConfig, data: Data,
                 training: Training, out: Path) -> int:
    """Train to the last epoch (or --stop-after), evaluating, checkpointing and plotting after
    each; 0, or the exit code of a run that had to stop (its last checkpoint is kept). The
    dashboard's state follows the run and ends "finished" or "stopped" with the error."""
    dashboard = make_dashboard(parser, args, config, data, training)
    code, error = run_epochs(parser, args, config, data, training, out, dashboard)
    dashboard.state.finish(error)
    if is_lead(training):
        write_dashboard_snapshot(dashboard.state, out)
    if dashboard.server is not None:
        if args.dashboard_keep:
            print(f"dashboard: the run has ended; still serving {dashboard.server.url} (Ctrl+C to stop)", flush=True)
            wait_for_interrupt()
        else:
            time.sleep(FINISH_GRACE_SECONDS)  # open pages poll once more and show how the run ended
        dashboard.server.shutdown()
    return code


def run_epochs(parser: argparse.ArgumentParser, args: argparse.Namespace, config: RunConfig, data: Data,
               training: Training, out: Path, dashboard: Dashboard) -> tuple[int, str | None]:
    """The epochs: (0, None), or (the exit code, the error) of a run that had to stop."""
    model, loader, optimizer = training.model, training.loader, training.optimizer
    outliers = None
    if config.outlier_exposure:
        if tuple(data.info.image_shape) != (28, 28):
            parser.error(f"--outlier-exposure: needs 28x28 images, {data.info.title} has {data.info.image_shape}")
        outliers = normalize_images(not_digits(4000, seed=config.seed + 1), normalize=config.mean_std)
    calibration = normalize_images(data.train_x[:10_000], normalize=config.mean_std)  # the "not a digit" threshold
    ddp, lead = training.distributed, is_lead(training)
    parallel = None  # its workers stop when it is closed or dropped, whichever way this returns
    if config.workers > 1:
        smoothing = config.label_smoothing
        parallel = DataParallel(model, workers=config.workers,
                                loss=lambda logits, y: cross_entropy(logits, y, label_smoothing=smoothing))
    history = training.history
    for epoch in range(training.start_epoch, min(config.epochs, args.stop_after or config.epochs)):
        loader.set_epoch(epoch)
        bar = tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                   disable=args.no_progress, leave=True, dynamic_ncols=True)
        try:
            stats = train_one_epoch(model, loader, optimizer, training.scheduler, training.per_batch,
                                    config.clip_grad_norm, progress=bar, outliers=outliers,
                                    outlier_rng=np.random.default_rng([config.seed, epoch, 1]),
                                    on_step=dashboard.on_step, label_smoothing=config.label_smoothing,
                                    parallel=parallel, distributed=ddp, averaged=training.averaged)
        except NonFiniteLossError as e:
            bar.close()
            kept = f"; the last good checkpoint, {out / CHECKPOINT}, is kept" if (out / CHECKPOINT).exists() else ""
            print(f"train.py: error: epoch {epoch + 1}: {e}; try a smaller --lr or --weight-decay{kept}",
                  file=sys.stderr)
            return 1, f"epoch {epoch + 1}: {e}"
        except DataParallelError as e:  # a worker died or was stopped: its processes are ended already
            bar.close()
            kept = (f"; continue from the last checkpoint with --resume {out / CHECKPOINT}"
                    if (out / CHECKPOINT).exists() else "; no checkpoint was written yet")
            print(f"train.py: error: epoch {epoch + 1}: {e}; training stopped{kept}", file=sys.stderr)
            return 1, f"epoch {epoch + 1}: {e}"
        bar.close()
        if ddp is None:
            test_loss, test_acc, _ = evaluate(training.evaluated, data.test_images, data.test_y)
        else:  # each rank a share of the test set; then every rank's weights checked against rank 0's
            test_loss, test_acc = evaluate_distributed(training.evaluated, data.test_images, data.test_y, ddp)
            ddp.sync_state(f"the broadcast of rank 0's buffers after epoch {epoch + 1}", buffers_only=True)
            ddp.check_in_sync(f"after epoch {epoch + 1}")
        history.append(dict(epoch=epoch + 1, train_loss=stats.loss, train_accuracy=stats.accuracy,
                            test_loss=test_loss, test_accuracy=test_acc, train_seconds=stats.seconds,
                            images_per_s=stats.images_per_s, lr=float(optimizer.param_groups[0]["lr"])))
        dashboard.state.record_epoch(history[-1])
        if epoch == training.start_epoch:
            note_if_not_learning(config, data.info.num_classes, epoch + 1, stats.loss, stats.accuracy)
        print(f"epoch {epoch + 1}: train loss {stats.loss:.4f} acc {stats.accuracy:.4f} | test loss {test_loss:.4f} "
              f"acc {test_acc:.4f} | {stats.seconds:.1f} s, {stats.images_per_s:.0f} img/s", flush=True)
        if not lead:
            continue
        try:
            save_run(out, config, data, training, energy_threshold(training.evaluated, calibration), args.plot_format)
            write_dashboard_snapshot(dashboard.state, out)
        except OSError as e:
            name = e.filename or out / CHECKPOINT
            kept = "the previous checkpoint is kept" if (out / CHECKPOINT).exists() else "no checkpoint was written"
            print(f"train.py: error: cannot write {name}: {e.strerror or e}; {kept}", file=sys.stderr)
            return 2, f"cannot write {name}: {e.strerror or e}"
    if parallel is not None:
        parallel.close()
    return 0, None


FINISH_GRACE_SECONDS = 2.0  # a served dashboard's last answers after the run ends (its pages poll every second)


def note_if_not_learning(config: RunConfig, num_classes: int, epoch: int, loss: float, accuracy: float) -> None:
    """Say so when the first epoch ends with the training loss still at chance level
    (within 3% of ln C, what uniform predictions score): the recipe does not suit the
    model, and what to try."""
    chance = math.log(num_classes)
    if loss < 0.97 * chance:
        return
    print(f"train.py: note: epoch {epoch}: the training loss ({loss:.3f}) is still at chance level "
          f"(ln {num_classes} = {chance:.3f}) and the accuracy {accuracy:.1%}: the model is not learning with this "
          f"recipe; try a smaller --lr (e.g. {config.lr / 10:g}), or --optimizer adam --lr 0.001", file=sys.stderr)


@dataclass
class Dashboard:
    """What the run shows of itself: the state (always recorded; every run directory gets
    its snapshot), the server when --dashboard asked for one, and the per-step callback."""
    state: DashboardState
    server: Any
    on_step: Any


def make_dashboard(parser: argparse.ArgumentParser, args: argparse.Namespace, config: RunConfig, data: Data,
                   training: Training) -> Dashboard:
    """The run's dashboard state (epochs of a resumed run included), served with --dashboard."""
    lead = is_lead(training)
    svg, viewer = model_graphs(training.model, training.loader) if lead else (None, None)
    state = DashboardState(training.model, f"{config.model} on {data.info.title}", len(training.loader), svg, viewer)
    for record in training.history:
        state.record_epoch(record)
    server = None
    if args.dashboard is not None and lead:
        try:
            server = start_dashboard(state, args.dashboard)
        except OSError as e:
            parser.error(f"--dashboard: cannot listen on 127.0.0.1:{args.dashboard}: {e.strerror or e}")
        print(f"dashboard: {server.url}", flush=True)

    def on_step(loss: float, accuracy: float, images: int) -> None:
        state.record_step(loss, accuracy, images, training.optimizer.param_groups[0]["lr"])
    return Dashboard(state, server, on_step)


def write_dashboard_snapshot(state: DashboardState, out: Path) -> None:
    """OUT/dashboard.html: the dashboard as it is now, one file that opens without a server;
    OUT/graph.html: the graph viewer it links to."""
    if out.is_dir():
        if state.graph_html is not None and not (out / GRAPH_VIEWER).exists():
            atomic_write_text(out / GRAPH_VIEWER, state.graph_html)
        atomic_write_text(out / DASHBOARD, snapshot_html(state))


def save_run(out: Path, config: RunConfig, data: Data, training: Training, threshold: float, plot_format: str) -> None:
    """The checkpoint (everything --resume needs), metrics.json and the curves, each written atomically."""
    scheduler, history, averaged = training.scheduler, training.history, training.averaged
    averaging = {} if averaged is None else dict(averaged_steps=int(averaged.n_averaged.data))
    save_checkpoint(out / CHECKPOINT, model_state=training.evaluated_state(),
                    training_model_state=None if averaged is None else training.model.state_dict(),
                    optimizer_state=training.optimizer.state_dict(),
                    scheduler_state=scheduler.state_dict() if scheduler is not None else None,
                    extra=dict(epoch=len(history), config=config.to_dict(), history=history,
                               classes=list(data.info.classes), energy_threshold=threshold, **averaging))
    atomic_write_text(out / METRICS, json.dumps(summary(config, history, ranks(training)), indent=2) + "\n")
    plot_curves({run_name(config): history}, out / f"curves.{plot_format}", label_smoothing=config.label_smoothing,
                num_classes=data.info.num_classes)


HISTORY_NUMBERS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "train_seconds", "images_per_s", "lr")


def history_problem(epoch: int, history: list) -> str | None:
    """What is wrong with a checkpoint's epoch and history (one entry per epoch), or None."""
    if not 0 <= epoch == len(history):
        return f"its epoch ({epoch}) and history ({len(history)} entries) disagree"
    for i, h in enumerate(history):
        if (not isinstance(h, dict) or h.get("epoch") != i + 1
                or not all(isinstance(h.get(k), (int, float)) and not isinstance(h.get(k), bool) for k in HISTORY_NUMBERS)):
            return f"history entry {i} is not an epoch record (epoch, {', '.join(HISTORY_NUMBERS)})"
    return None


def model_graphs(model: Any, loader: Any) -> tuple[str | None, str]:
    """The model's graph for four images of one batch: the module-level drawing as SVG
    (None without graphviz's `dot`) and the interactive viewer's page."""
    x, y = next(iter(loader))
    model.eval()  # no running statistics or dropout masks consumed: the run stays as it would be without
    try:
        with unfused():  # every layer drawn (relu apart from max_pool2d)
            loss = cross_entropy(model(x[:4]), y.data[:4])
        loss.name = "loss"
        viewer = explore(loss, model).html()
        try:
            svg = draw_graph(loss, level="module", layer_names=layer_names_of(model)).pipe(format="svg").decode()
        except (OSError, RuntimeError, ValueError):  # graphviz.ExecutableNotFound is a RuntimeError
            svg = None
        return svg, viewer
    finally:
        model.train()


def with_model_details(config: RunConfig, num_classes: int) -> RunConfig:
    """The config with what a later rebuild needs: the data's class count for a model
    that takes `num_classes`, and the SHA-256 of a model file."""
    model_args = dict(config.model_args)
    if accepts_argument(config.model, "num_classes") and "num_classes" not in model_args:
        model_args["num_classes"] = num_classes
    return config.replace(model_args=model_args, model_sha256=file_sha256(config.model))


def summary(config: RunConfig, history: list[dict], ranks: int = 1) -> dict[str, Any]:
    """metrics.json: the config, every epoch's record, and the run's results (`ranks`: MPI
    processes that trained it)."""
    seconds, to_target, epochs_to_target = 0.0, None, None
    for h in history:
        seconds += h["train_seconds"]
        if to_target is None and h["test_accuracy"] >= config.target_accuracy:
            to_target, epochs_to_target = seconds, h["epoch"]
    return dict(config=config.to_dict(), epochs=history,
                final_test_accuracy=history[-1]["test_accuracy"] if history else None,
                train_seconds=seconds, target_accuracy=config.target_accuracy, time_to_target_seconds=to_target,
                epochs_to_target=epochs_to_target, ranks=ranks)


if __name__ == "__main__":
    sys.exit(main())

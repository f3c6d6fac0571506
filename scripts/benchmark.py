#!/usr/bin/env python3
"""Benchmark LeNet-5 training and inference, against PyTorch when installed.

    python scripts/benchmark.py                   # full run, table on stdout
    python scripts/benchmark.py --quick           # smoke run in a few seconds
    python scripts/benchmark.py --threads 1 --json bench.json
    python scripts/benchmark.py --server          # the digit app's server under load
    python scripts/benchmark.py --dashboard       # train.py's speed with and without --dashboard
    python scripts/benchmark.py --all             # the speed guide's figures in one run (about 9 minutes)
    python scripts/benchmark.py --mpi 2           # 2 ranks over MPI against fork workers and PyTorch's DDP

Measures on MNIST-shaped random float32 data (28x28, 10 classes):
  * training (forward + backward + SGD momentum step) at batch sizes 32, 128,
    256: ms/step, images/s, time for an epoch of 60,000 images;
  * inference at batch 1000: time for 10,000 images, images/s;
  * the same model (same layers and initial weights) in PyTorch, measured
    interleaved with ours in the same run, and the ratio ours / PyTorch;
  * a per-op profile at batch 128 (tinygrad_lenet.profiler): forward and
    backward ms per op, and the share of a step spent outside op kernels;
  * a per-kernel roofline of LeNet-5's step (scripts/bench/roofline.py): each
    convolution, gradient, pooling and linear kernel's time, work, bytes and the
    share of its bound it reaches;
  * peak resident memory while training and RSS after each epoch-worth of
    steps, each batch size in its own subprocess so numbers stay separate.

Every timing is a median over repeated blocks of steps after a warm-up, with
its spread (10th-90th percentile).

Threads are set before numpy loads: --threads N (default 1) for our ops
(TINYGRAD_LENET_NUM_THREADS), OpenMP (OMP_NUM_THREADS) and PyTorch
(torch.set_num_threads); --blas-threads M (default 1) for numpy's BLAS
(OPENBLAS_NUM_THREADS, MKL_NUM_THREADS); OMP_WAIT_POLICY defaults to PASSIVE
so idle OpenMP threads sleep instead of spinning. numpy's BLAS gets one
thread because our ops parallelize themselves, and on a shared 2-core machine
OpenBLAS's own threads (which spin while waiting) made steps 3-50x slower
whenever the other core was busy. --threads 2 uses both cores.

Each measurement is a module of scripts/bench/ (training, inference, profile,
compute_bound, memory, server, plain_program, time_to_accuracy, dashboard, layers, mpi
with its rank program ranks; targets
holds --all and the speed targets); this script parses the options, sets the
threads before numpy loads, and runs them.

The report names the OpenBLAS kernels numpy runs and whether OPENBLAS_CORETYPE
chose them: AVX-512 kernels multiply about twice as fast as AVX2 ones, so compare
figures only between runs with the same kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # models/, viz/ and these measurements (scripts/bench/): from the checkout

from scripts.bench.threads import BLAS_THREAD_VARS, OP_THREAD_VARS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="few repetitions and steps: a smoke run")
    p.add_argument("--model", default="lenet5", help="a registered model, package.module:attr or "
                   "path/to/file.py:attr (PyTorch comparison for lenet5 only)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="argument for the model's constructor (repeatable; read after numpy loads)")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for our ops, OpenMP and PyTorch (default 1; see the module docstring)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes sharing each training step's batch (tinygrad_lenet.data_parallel; default 1); "
                        "PyTorch then runs at this many threads")
    p.add_argument("--blas-threads", type=int, default=1,
                   help="threads of numpy's BLAS (default 1; see the module docstring)")
    p.add_argument("--batch-sizes", default="32,128,256", help="training batch sizes (comma-separated)")
    p.add_argument("--repeats", type=int, help="timed blocks per measurement (default 15, quick 3)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    p.add_argument("--no-retain-memory", action="store_true",
                   help="leave glibc malloc's defaults (see tinygrad_lenet.memory)")
    p.add_argument("--server", action="store_true", help="benchmark the digit app's server instead: concurrent "
                   "clients, idle connections, half-sent bodies")
    p.add_argument("--dashboard", action="store_true", help="measure train.py's training time with and without "
                   "--dashboard (alternating runs on a synthetic MNIST-shaped data set)")
    p.add_argument("--time-to-accuracy", action="store_true", help="train LeNet-5 with train.py's default recipe "
                   "here and in PyTorch (same initial weights and batches), reporting the time to 99.0%% test accuracy")
    p.add_argument("--max-epochs", type=int, help="epochs for --time-to-accuracy (default: the recipe's)")
    p.add_argument("--train-subset", type=int, metavar="N", help="--time-to-accuracy: train on the first N "
                   "training images only (a smoke run: --all --quick trains one epoch of 15,000)")
    p.add_argument("--seeds", type=int, default=3, help="--time-to-accuracy: seeds trained, each one repeat "
                   "(default 3: the recipe's seed and the next two)")
    p.add_argument("--layers", action="store_true", help="every everyday layer's forward + backward against "
                   "PyTorch's, 1 thread (ratios; target: none above 1.5x), then two user models' training step and "
                   "evaluation share")
    p.add_argument("--mpi", type=int, metavar="N", help="data-parallel over N ranks: ours over MPI (shared memory, "
                   "TCP) against one process, --workers N and PyTorch's DDP (gloo), step times, allreduce share, "
                   "scaling efficiency, and time to 99.0%% (needs the distributed and bench extras)")
    p.add_argument("--plain-program", action="store_true", help="a batch-128 step of the docs' hand-written "
                   "loop in a fresh process that sets nothing, against the same step set up as train.py "
                   "(medians of 3 processes each; 1 with --quick)")
    p.add_argument("--all", action="store_true", help="every figure of the speed guide in one run: "
                   "the default benchmark at 1 and 2 threads and on 2 processes, --plain-program and "
                   "--time-to-accuracy on 1 and 2 processes, each in its own process, then a summary")
    p.add_argument("--memory-probe", type=int, metavar="BATCH", help=argparse.SUPPRESS)
    p.add_argument("--memory-epochs", type=int, help=argparse.SUPPRESS)
    p.add_argument("--memory-steps-per-epoch", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads < 1 or args.blas_threads < 1 or args.workers < 1:
        p.error(f"--threads, --blas-threads and --workers must be >= 1, got {args.threads}, {args.blas_threads} "
                f"and {args.workers}")
    try:
        args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batch-sizes must be comma-separated integers, got {args.batch_sizes!r}")
    if not args.batch_sizes or min(args.batch_sizes) < 1:
        p.error(f"--batch-sizes must be positive integers, got {args.batch_sizes}")
    if args.repeats is None:
        args.repeats = 3 if args.quick else 15
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.mpi is not None and args.mpi < 2:
        p.error(f"--mpi must be >= 2, got {args.mpi}")
    if args.seeds < 1:
        p.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.train_subset is not None and args.train_subset < 1:
        p.error(f"--train-subset must be >= 1, got {args.train_subset}")
    return args


def configure_threads(threads: int, blas_threads: int) -> None:
    """Must run before numpy (and its BLAS) is imported."""
    for var in OP_THREAD_VARS:
        os.environ[var] = str(threads)
    for var in BLAS_THREAD_VARS:
        os.environ[var] = str(blas_threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# Parse and set the thread environment before anything imports numpy.
ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    configure_threads(ARGS.threads, ARGS.blas_threads)

from models import ModelSpecError
from scripts.bench.common import environment, model_of, torch_available, torch_threads_matching
from scripts.bench.compute_bound import bench_compute_bound
from scripts.bench.dashboard import bench_dashboard
from scripts.bench.inference import bench_app_prediction, bench_inference
from scripts.bench.layers import bench_layers, report_layers
from scripts.bench.memory import bench_memory, memory_probe
from scripts.bench.mpi import bench_mpi, report_mpi
from scripts.bench.plain_program import bench_plain_program
from scripts.bench.profile import bench_profile
from scripts.bench.report import report
from scripts.bench.roofline import bench_roofline
from scripts.bench.server import bench_server, report_server
from scripts.bench.targets import report_all, run_all
from scripts.bench.time_to_accuracy import bench_time_to_accuracy, report_time_to_accuracy
from scripts.bench.training import bench_training
from scripts.bench.user_models import bench_user_models, report_user_models
from tinygrad_lenet.atomic import atomic_write_text
from tinygrad_lenet.cli import model_arg
from tinygrad_lenet.memory import retain_freed_memory


def write_json(args: argparse.Namespace, results: dict[str, Any]) -> int:
    """--json's file, when given, with `results`; the exit code 0."""
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    return 0


def main(args: argparse.Namespace) -> int:
    if args.all:
        if not torch_available():
            print("benchmark.py: error: --all needs PyTorch (pip install -e '.[bench]')", file=sys.stderr)
            return 2
        try:
            r = run_all(args)
        except RuntimeError as e:  # a part failed: it said why above
            print(f"benchmark.py: error: {e}", file=sys.stderr)
            return 1
        print(report_all(r))
        return write_json(args, {"all": r})
    if args.time_to_accuracy:
        if not torch_available():
            print("benchmark.py: error: --time-to-accuracy needs PyTorch (pip install -e '.[bench]')", file=sys.stderr)
            return 2
        try:
            r = bench_time_to_accuracy(args)
        except (OSError, ValueError) as e:  # MNIST not found (and no download), unreadable or not MNIST
            print(f"benchmark.py: error: --time-to-accuracy needs MNIST: {str(e).splitlines()[0]} (set "
                  "TINYGRAD_LENET_DATA to the directory holding its files)", file=sys.stderr)
            return 2
        print("\n".join(report_time_to_accuracy(r)))
        return write_json(args, {"time_to_accuracy": r})
    if args.layers:
        if not torch_available():
            print("benchmark.py: error: --layers needs PyTorch (pip install -e '.[bench]')", file=sys.stderr)
            return 2
        if not args.no_retain_memory:  # as train.py and the step benchmark run: freed arrays reused, not page-faulted back
            retain_freed_memory()
        r = bench_layers(args)
        report_layers(r)
        models = bench_user_models(args)
        report_user_models(models)
        return write_json(args, {"layers": r, "user_models": models})
    if args.mpi is not None:
        if not torch_available():
            print("benchmark.py: error: --mpi needs PyTorch (pip install -e '.[bench]')", file=sys.stderr)
            return 2
        retain_freed_memory()
        args.model_args = {}
        r = bench_mpi(args)
        print("\n".join(report_mpi(r)))
        return write_json(args, {"mpi": r})
    if args.plain_program:
        r = bench_plain_program(runs=1 if args.quick else 3)
        print(f"hand-written loop, batch 128, medians of {r['runs']} fresh processes each: {r['plain_ms']:.2f} ms per step "
              f"in a program that sets nothing, {r['as_train_ms']:.2f} ms set up as train.py (ratio {r['ratio']:.3f})")
        return write_json(args, {"plain_program": r})
    if args.dashboard:
        r = bench_dashboard(args)
        print(f"train.py, one epoch of 20,000 images at batch 128, medians of {r['runs']} alternating runs: "
              f"{r['plain_s']:.2f} s without --dashboard, {r['dashboard_s']:.2f} s with it "
              f"(ratio {r['ratio']:.3f})")
        return write_json(args, {"dashboard": r})
    if args.server:
        results = bench_server(args)
        print(report_server(results))
        return write_json(args, {"server": results})
    retained = False if args.no_retain_memory else retain_freed_memory()
    try:
        args.model_args = dict(model_arg(text) for text in args.model_arg)
    except argparse.ArgumentTypeError as e:
        print(f"benchmark.py: error: --model-arg: {e}", file=sys.stderr)
        return 2
    if args.memory_probe is not None:
        print(json.dumps(memory_probe(args, args.memory_probe, args.memory_epochs, args.memory_steps_per_epoch)))
        return 0
    try:
        model_of(args)
    except ModelSpecError as e:
        print(f"benchmark.py: error: {e}", file=sys.stderr)
        return 2
    with_torch = not args.no_torch and args.model == "lenet5" and torch_available()
    if with_torch:
        import torch
        torch.set_num_threads(torch_threads_matching(args))
    results: dict[str, Any] = {"quick": args.quick, "repeats": args.repeats}
    if not with_torch:
        results["torch_missing"] = ("skipped (--no-torch)" if args.no_torch
                                    else f"no PyTorch twin of {args.model}" if args.model != "lenet5"
                                    else "not installed, no comparison (pip install torch==2.13.0)")
    results["environment"] = environment(with_torch, retained, args.workers)
    results["training"] = [bench_training(b, args, with_torch) for b in args.batch_sizes]
    results["compute_bound"] = bench_compute_bound(results["training"], args)
    results["inference"] = bench_inference(args, with_torch)
    results["profile"] = bench_profile(args)
    if args.model == "lenet5":  # its kernels at their batch-128 shapes against their bounds
        results["roofline"] = bench_roofline(args)
    results["app_prediction"] = bench_app_prediction(args)
    results["memory"] = [] if args.no_memory else [bench_memory(b, args) for b in args.batch_sizes]
    print(report(results))
    return write_json(args, results)


if __name__ == "__main__":
    sys.exit(main(ARGS))

#!/usr/bin/env python3
"""Benchmark LeNet-5 training and inference, against PyTorch when installed.

    python scripts/benchmark.py                   # full run, table on stdout
    python scripts/benchmark.py --quick           # smoke run in a few seconds
    python scripts/benchmark.py --threads 1 --json bench.json
    python scripts/benchmark.py --server          # the digit app's server under load
    python scripts/benchmark.py --dashboard       # train.py's speed with and without --dashboard
    python scripts/benchmark.py --all             # the README's speed figures in one run (about 9 minutes)

Measures on MNIST-shaped random float32 data (28x28, 10 classes):
  * training (forward + backward + SGD momentum step) at batch sizes 32, 128,
    256: ms/step, images/s, time for an epoch of 60,000 images;
  * inference at batch 1000: time for 10,000 images, images/s;
  * the same model (same layers and initial weights) in PyTorch, measured
    interleaved with ours in the same run, and the ratio ours / PyTorch;
  * a per-op profile at batch 128 (tinygrad_lenet.profiler): forward and
    backward ms per op, and the share of a step spent outside op kernels;
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

The report names the OpenBLAS kernels numpy runs and whether OPENBLAS_CORETYPE
chose them: AVX-512 kernels multiply about twice as fast as AVX2 ones, so compare
figures only between runs with the same kernels.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
OP_THREAD_VARS = ("OMP_NUM_THREADS", "TINYGRAD_LENET_NUM_THREADS")
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
THREAD_VARS = OP_THREAD_VARS + BLAS_THREAD_VARS
EPOCH_IMAGES = 60_000
TEST_IMAGES = 10_000
INFERENCE_BATCH = 1000


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
    p.add_argument("--seeds", type=int, default=3, help="--time-to-accuracy: seeds trained, each one repeat "
                   "(default 3: the recipe's seed and the next two)")
    p.add_argument("--plain-program", action="store_true", help="a batch-128 step of the README's hand-written "
                   "loop in a fresh process that sets nothing, against the same step set up as train.py")
    p.add_argument("--all", action="store_true", help="every figure of the README's speed section in one run: "
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
    if args.seeds < 1:
        p.error(f"--seeds must be >= 1, got {args.seeds}")
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
sys.path.insert(0, str(ROOT))  # models/ and viz/: from the checkout, not installed

import numpy as np  # noqa: E402

from models import ModelSpecError, build_model  # noqa: E402
from tinygrad_lenet import Tensor, manual_seed, no_grad, optim  # noqa: E402
from tinygrad_lenet import functional as F  # noqa: E402
from tinygrad_lenet.atomic import atomic_write_text  # noqa: E402
from tinygrad_lenet.cli import model_arg  # noqa: E402
from tinygrad_lenet.config import RunConfig  # noqa: E402
from tinygrad_lenet.data_parallel import DataParallel  # noqa: E402
from tinygrad_lenet.memory import retain_freed_memory  # noqa: E402
from tinygrad_lenet.ops.parallel import get_num_threads  # noqa: E402
from tinygrad_lenet.profiler import profile_ops  # noqa: E402

RECIPE = RunConfig()  # the default training recipe: its SGD settings are timed here
LR, MOMENTUM, WEIGHT_DECAY = RECIPE.lr, RECIPE.momentum, RECIPE.weight_decay


# ------------------------------------------------------------------ data and models

def random_batches(batch: int, count: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` batches of normalized-looking float32 images and int64 labels."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((batch, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, batch))
            for _ in range(count)]


def model_of(args: argparse.Namespace) -> Any:
    """A new model of --model with its --model-arg arguments (read by main into args.model_args)."""
    return build_model(args.model, args.model_args)


def make_ours(args: argparse.Namespace, seed: int = 0,
              workers: int = 1) -> tuple[Any, Callable[[np.ndarray, np.ndarray], None]]:
    """Our model and a training step; with `workers` > 1 each step's batch is shared
    between that many processes (`DataParallel`, whose workers stop at exit)."""
    manual_seed(seed)
    model = model_of(args)
    model.train()
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    if workers > 1:
        parallel = DataParallel(model, workers=workers)

        def parallel_step(x: np.ndarray, y: np.ndarray) -> None:
            opt.zero_grad()
            parallel.forward_backward(x, y)
            opt.step()
        return model, parallel_step

    def step(x: np.ndarray, y: np.ndarray) -> None:
        loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, step


def torch_threads_matching(args: argparse.Namespace) -> int:
    """PyTorch's thread count for a comparison: the cores we use (threads or worker processes)."""
    return max(get_num_threads(), args.workers)


def make_torch(ours_model: Any, threads: int) -> tuple[Any, Any, Callable[[Any, Any], None]]:
    """PyTorch's LeNet-5 with the same layers and our model's initial weights."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    ours = [p.data for p in ours_model.parameters()]
    theirs = list(model.parameters())
    if [a.shape for a in ours] != [tuple(t.shape) for t in theirs]:
        raise RuntimeError(f"benchmark: parameter shapes differ: ours {[a.shape for a in ours]}, "
                           f"PyTorch {[tuple(t.shape) for t in theirs]}")
    with torch.no_grad():
        for a, t in zip(ours, theirs):
            t.copy_(torch.from_numpy(a))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)

    def step(x: Any, y: Any) -> None:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return torch, model, step


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------ timing
def summarize(seconds: list[float]) -> dict[str, float]:
    a = np.asarray(seconds) * 1e3
    return {"median_ms": float(np.median(a)), "p10_ms": float(np.percentile(a, 10)),
            "p90_ms": float(np.percentile(a, 90)), "min_ms": float(a.min()), "samples": len(a)}


def interleaved(runs: dict[str, Callable[[], None]], repeats: int, warmup: int) -> dict[str, dict[str, float]]:
    """Median per call of each runner, timed in alternating blocks so that a
    change in machine load hits every runner alike."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    return {name: summarize(t) for name, t in times.items()}


def training_runner(step: Callable, batches: list, steps: int) -> Callable[[], None]:
    """A block of `steps` training steps cycling through `batches`; the
    summary divides by `steps` afterwards."""
    state = {"k": 0}

    def run() -> None:
        for _ in range(steps):
            x, y = batches[state["k"] % len(batches)]
            state["k"] += 1
            step(x, y)
    return run


def per_step(stats: dict[str, float], steps: int) -> dict[str, float]:
    return {k: (v / steps if k.endswith("_ms") else v) for k, v in stats.items()}


def bench_training(batch: int, args: argparse.Namespace, with_torch: bool) -> dict[str, Any]:
    steps = 2 if args.quick else max(2, 1280 // batch)
    batches = random_batches(batch, 4, seed=batch)
    model, step = make_ours(args, workers=args.workers)
    runs = {"ours": training_runner(step, batches, steps)}
    if with_torch:
        torch, _, tstep = make_torch(model, torch_threads_matching(args))
        tbatches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
        runs["torch"] = training_runner(tstep, tbatches, steps)
    stats = interleaved(runs, args.repeats, warmup=1 if args.quick else 3)
    out: dict[str, Any] = {"batch_size": batch, "steps_per_sample": steps}
    for name, s in stats.items():
        s = per_step(s, steps)
        out[name] = {**s, "images_per_s": batch / (s["median_ms"] / 1e3),
                     "epoch_s": EPOCH_IMAGES / batch * s["median_ms"] / 1e3}
    if with_torch:
        out["ratio_ours_over_torch"] = out["ours"]["median_ms"] / out["torch"]["median_ms"]
    return out


def bench_inference(args: argparse.Namespace, with_torch: bool) -> dict[str, Any]:
    count = 2 * INFERENCE_BATCH if args.quick else TEST_IMAGES
    images = random_batches(count, 1, seed=1)[0][0]
    model, _ = make_ours(args)
    model.eval()

    @no_grad()
    def ours() -> None:
        for i in range(0, count, INFERENCE_BATCH):
            model(Tensor(images[i:i + INFERENCE_BATCH]))
    runs = {"ours": ours}
    if with_torch:
        torch, tmodel, _ = make_torch(model, get_num_threads())
        tmodel.eval()
        timages = torch.from_numpy(images)

        def theirs() -> None:
            with torch.inference_mode():
                for i in range(0, count, INFERENCE_BATCH):
                    tmodel(timages[i:i + INFERENCE_BATCH])
        runs["torch"] = theirs
    stats = interleaved(runs, max(2, args.repeats // 2), warmup=1)
    out: dict[str, Any] = {"batch_size": INFERENCE_BATCH, "images": count,
                           "extrapolated_to_10k": count != TEST_IMAGES}
    for name, s in stats.items():
        seconds = s["median_ms"] / 1e3
        out[name] = {**s, "seconds_for_10k": seconds * TEST_IMAGES / count, "images_per_s": count / seconds}
    if with_torch:
        out["ratio_ours_over_torch"] = out["ours"]["median_ms"] / out["torch"]["median_ms"]
    return out


def bench_profile(args: argparse.Namespace) -> dict[str, Any]:
    """Per-op times at batch 128, with the optimizer step timed on its own, so
    that what is left (autograd bookkeeping, Python) shows separately."""
    batch, steps = 128, (5 if args.quick else 50)
    batches = random_batches(batch, 4, seed=2)
    manual_seed(0)
    model = model_of(args)
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    optimizer_s = 0.0

    def step(k: int) -> None:
        nonlocal optimizer_s
        x, y = batches[k % len(batches)]
        loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        start = time.perf_counter()
        opt.step()
        optimizer_s += time.perf_counter() - start

    for k in range(3):  # warm-up
        step(k)
    optimizer_s = 0.0
    with profile_ops() as prof:
        for k in range(steps):
            step(k)
    result = prof.as_dict(per=steps)
    result["batch_size"] = batch
    result["optimizer_ms"] = optimizer_s * 1e3 / steps
    overhead = result["wall_ms"] - result["kernel_ms"] - result["optimizer_ms"]
    result["autograd_python_ms"] = overhead
    result["autograd_python_share"] = overhead / result["wall_ms"]
    result["table"] = prof.table(per=steps)
    return result


# ------------------------------------------------------------------ compute bound
def step_flops(batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """Floating-point operations (2 per multiply-add) of the products in one training
    step: each Conv2d and Linear layer's forward product, its weight gradient (as many)
    and its input gradient (as many; none for the first layer, whose input is the data)."""
    from tinygrad_lenet import nn

    model = model_of(args)
    layers: list[tuple[str, int]] = []

    def count(module: Any, inputs: tuple, output: Any) -> None:
        if isinstance(module, nn.Conv2d):  # weight (O, C / groups, kh, kw): the taps behind each output
            layers.append((type(module).__name__, 2 * output.data.size * math.prod(module.weight.shape[1:])))
        elif isinstance(module, nn.Linear):
            layers.append((type(module).__name__, 2 * output.data.size * module.weight.shape[1]))

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with no_grad():
        model(Tensor(random_batches(batch, 1)[0][0]))
    for h in handles:
        h.remove()
    forward = sum(f for _, f in layers)
    first = layers[0][1] if layers else 0
    return dict(batch_size=batch, forward=forward, step=3 * forward - first, layers=len(layers))


def sgemm_gflops(repeats: int, threads: int = 1) -> float:
    """numpy's float32 matrix product rate (1024^3 products, one BLAS thread each) with
    `threads` threads multiplying at once, in GFLOP/s for all of them together: two
    threads need not double it (cores may share vector units or memory bandwidth)."""
    from tinygrad_lenet.runtime import compute_scope

    mats = [np.random.default_rng(k).standard_normal((1024, 1024), dtype=np.float32) for k in range(threads)]
    rounds = 3
    barrier = threading.Barrier(threads)

    def work(a: np.ndarray) -> None:
        barrier.wait()
        for _ in range(rounds):
            a @ a

    times = []
    with compute_scope():  # one BLAS thread unless TINYGRAD_LENET_BLAS_THREADS says otherwise
        mats[0] @ mats[0]
        for _ in range(max(5, repeats)):
            pool = [threading.Thread(target=work, args=(a,)) for a in mats[1:]]
            for t in pool:
                t.start()
            start = time.perf_counter()
            work(mats[0])
            for t in pool:
                t.join()
            times.append(time.perf_counter() - start)
    return threads * rounds * 2 * 1024 ** 3 / float(np.median(times)) / 1e9


def bench_compute_bound(training: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each measured step against the time its products take at numpy's sgemm rate
    on the cores in use (measured with that many threads multiplying at once): the
    fraction of the compute bound the step achieves."""
    cores = min(torch_threads_matching(args), os.cpu_count() or 1)
    one = sgemm_gflops(args.repeats)
    rate = one if cores == 1 else sgemm_gflops(args.repeats, cores)
    out = []
    for t in training:
        flops = step_flops(t["batch_size"], args)
        bound_ms = flops["step"] / (rate * 1e9) * 1e3
        out.append(dict(**flops, sgemm_gflops_per_core=one, sgemm_gflops=rate, cores=cores, bound_ms=bound_ms,
                        step_ms=t["ours"]["median_ms"], fraction=bound_ms / t["ours"]["median_ms"]))
    return out


# ------------------------------------------------------------------ the digit app's prediction
def bench_app_prediction(args: argparse.Namespace) -> dict[str, Any] | None:
    """DigitPredictor.predict on one 280x280 drawing: preprocessing, the forward pass
    with the feature maps captured, the saliency backward pass and the JSON-ready answer."""
    if args.model != "lenet5":
        return None
    from models import TrainedModel, get_model
    from viz.app import DigitPredictor

    manual_seed(0)
    predictor = DigitPredictor(TrainedModel(get_model("lenet5").eval(), RunConfig(), tuple("0123456789"), {}))
    gray = np.zeros((280, 280), np.float32)
    gray[60:220, 130:150] = 1.0  # a "1"
    gray[60:80, 100:150] = 1.0
    times = []
    for k in range(3 + (5 if args.quick else 40)):
        start = time.perf_counter()
        predictor.predict(gray)
        if k >= 3:
            times.append(time.perf_counter() - start)
    return summarize(times)


# ------------------------------------------------------------------ memory
def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def memory_probe(args: argparse.Namespace, batch: int, epochs: int, steps_per_epoch: int) -> dict[str, Any]:
    """Train `epochs` x `steps_per_epoch` steps in this (fresh) process and
    record RSS after each epoch-worth and the peak."""
    batches = random_batches(batch, 4, seed=batch)
    _, step = make_ours(args)
    rss_start = rss_bytes()
    after = []
    for _ in range(epochs):
        for k in range(steps_per_epoch):
            step(*batches[k % len(batches)])
        after.append(rss_bytes())
    return {"batch_size": batch, "steps_per_epoch": steps_per_epoch, "epochs": epochs,
            "rss_before_mb": rss_start / 2**20, "rss_after_each_epoch_mb": [a / 2**20 for a in after],
            "peak_rss_mb": peak_rss_bytes() / 2**20,
            "growth_after_first_epoch_mb": (after[-1] - after[0]) / 2**20}


def bench_memory(batch: int, args: argparse.Namespace) -> dict[str, Any]:
    epochs = 2 if args.quick else 3
    steps = 3 if args.quick else -(-EPOCH_IMAGES // batch)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-probe", str(batch),
           "--memory-epochs", str(epochs), "--memory-steps-per-epoch", str(steps), "--model", args.model]
    cmd += [f"--model-arg={text}" for text in args.model_arg]
    if args.no_retain_memory:
        cmd.append("--no-retain-memory")
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark: memory probe at batch {batch} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ environment
def environment(with_torch: bool, retained: bool, workers: int = 1) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
        "cpus": os.cpu_count(), "our_op_threads": get_num_threads(), "workers": workers,
        "malloc_retains_freed_memory": retained,
        "env": {var: os.environ.get(var) for var in THREAD_VARS + ("OMP_WAIT_POLICY",)},
    }
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        env["numpy_blas"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration")}
    except Exception as e:  # show_config's layout is not a stable API
        env["numpy_blas"] = f"unavailable ({type(e).__name__})"
    try:
        from threadpoolctl import threadpool_info
        env["threadpools"] = threadpool_info()
    except ImportError:
        pass
    env["blas_kernels"] = blas_kernels(env.get("threadpools", []))
    env["openblas_env"] = {var: os.environ.get(var) for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    if with_torch:
        import torch
        env["torch"] = {"version": torch.__version__, "num_threads": torch.get_num_threads(),
                        "num_interop_threads": torch.get_num_interop_threads()}
    return env


def blas_kernels(threadpools: list[dict[str, Any]]) -> list[str]:
    """The kernel sets ("SkylakeX", "Haswell", ...) of the BLAS libraries in threadpoolctl's info."""
    return sorted({str(t["architecture"]) for t in threadpools if t.get("user_api") == "blas" and t.get("architecture")})


# ------------------------------------------------------------------ report
def blas_kernels_line(env: dict[str, Any]) -> str:
    """Which OpenBLAS kernels numpy runs, and whether the environment chose them:
    AVX-512 ("SkylakeX") products run about twice as fast as AVX2 ("Haswell") ones."""
    kernels = ", ".join(env.get("blas_kernels") or ["unknown"])
    chosen = ", ".join(f"{k}={v}" for k, v in env["openblas_env"].items() if v is not None)
    return (f"numpy's OpenBLAS kernels: {kernels} (" + (f"set by {chosen})" if chosen else
                                                        "its own choice: OPENBLAS_CORETYPE unset)"))


def fmt_ms(s: dict[str, float]) -> str:
    return f"{s['median_ms']:8.2f} ms [{s['p10_ms']:.2f}-{s['p90_ms']:.2f}]"


def sgemm_rate(c: dict[str, Any]) -> str:
    """The sgemm rate a compute bound used, in words."""
    if c["cores"] == 1:
        return f"{c['sgemm_gflops_per_core']:.0f} GFLOP/s, 1 core"
    return (f"{c['sgemm_gflops']:.0f} GFLOP/s with {c['cores']} threads multiplying at once, "
            f"{c['sgemm_gflops_per_core']:.0f} with one")


def report(results: dict[str, Any]) -> str:
    lines = ["LeNet-5 benchmark (random MNIST-shaped data; median [p10-p90])"]
    env = results["environment"]
    lines.append(f"threads: ours {env['our_op_threads']} (training processes: {env.get('workers', 1)}), "
                 + ", ".join(f"{k}={v}" for k, v in env["env"].items())
                 + (f", torch {env['torch']['num_threads']}" if "torch" in env else ""))
    lines.append(f"numpy {env['numpy']} BLAS: {env['numpy_blas']}; malloc retains freed memory: "
                 f"{env['malloc_retains_freed_memory']}")
    lines.append(blas_kernels_line(env))
    if "torch" not in env:
        lines.append(f"PyTorch: {results['torch_missing']}")
    lines.append("")
    lines.append("training step (forward + backward + SGD momentum)")
    for t in results["training"]:
        b = t["batch_size"]
        o = t["ours"]
        line = (f"  batch {b:4d}: ours {fmt_ms(o)}  {o['images_per_s']:8.0f} img/s  epoch {o['epoch_s']:6.2f} s")
        if "torch" in t:
            line += f" | torch {fmt_ms(t['torch'])}  ratio {t['ratio_ours_over_torch']:.2f}"
        lines.append(line)
    for c in results["compute_bound"]:
        lines.append(f"  batch {c['batch_size']:4d}: {c['step'] / 1e9:.3f} GFLOP of products per step; at numpy's "
                     f"sgemm rate ({sgemm_rate(c)}) that is {c['bound_ms']:.2f} ms: the step runs at "
                     f"{c['fraction']:.0%} of the compute bound")
    inf = results["inference"]
    scope = f"extrapolated from {inf['images']:,}" if inf["extrapolated_to_10k"] else "measured"
    line = (f"inference, 10,000 images ({scope}) at batch {inf['batch_size']}: "
            f"ours {inf['ours']['seconds_for_10k']:.3f} s "
            f"({inf['ours']['images_per_s']:.0f} img/s)")
    if "torch" in inf:
        line += f" | torch {inf['torch']['seconds_for_10k']:.3f} s  ratio {inf['ratio_ours_over_torch']:.2f}"
    lines.append(line)
    prof = results["profile"]
    lines.append("")
    lines.append(f"per-op profile, batch {prof['batch_size']} (ms per step; the profiled step took "
                 f"{prof['wall_ms']:.2f} ms)")
    lines.extend("  " + row for row in prof["table"].splitlines())
    lines.append(f"  optimizer.step {prof['optimizer_ms']:.3f} ms; autograd + Python overhead "
                 f"{prof['autograd_python_ms']:.3f} ms = {prof['autograd_python_share']:.1%} of the step")
    if results.get("app_prediction"):
        a = results["app_prediction"]
        lines.append(f"digit app, one drawing (prediction, feature maps, saliency): {fmt_ms(a)}")
    if results.get("memory"):
        lines.append("")
        lines.append("memory while training (fresh process per batch size)")
        for m in results["memory"]:
            after = ", ".join(f"{a:.0f}" for a in m["rss_after_each_epoch_mb"])
            lines.append(f"  batch {m['batch_size']:4d}: peak RSS {m['peak_rss_mb']:.0f} MiB; RSS after each of "
                         f"{m['epochs']} x {m['steps_per_epoch']} steps: {after} MiB "
                         f"(growth after the first: {m['growth_after_first_epoch_mb']:+.1f} MiB)")
    return "\n".join(lines)


# ---------------------------------------------------------------- the digit app's server
SERVER_REQUESTS = 300  # per client count; every fifth a prediction, each on its own connection


def bench_server(args: argparse.Namespace) -> dict[str, Any]:
    """The digit app (LeNet-5, random weights) on 127.0.0.1 under load: failures and latency
    for 16 and 64 concurrent clients, threads held by 200 idle connections, and memory held
    by 60 clients that send half of a 1.3 MB body and stall."""
    import base64
    import socket
    import threading
    import tracemalloc
    from concurrent.futures import ThreadPoolExecutor

    from models import TrainedModel, get_model
    from tinygrad_lenet.config import RunConfig
    from viz.app import DigitPredictor, make_server

    manual_seed(0)
    predictor = DigitPredictor(TrainedModel(get_model("lenet5").eval(), RunConfig(), tuple("0123456789"), {}))
    app = make_server(predictor, "127.0.0.1", 0, quiet=True, request_timeout=5.0)
    thread = threading.Thread(target=app.serve_forever, daemon=True)
    thread.start()
    host, port = app.server_address[:2]
    rng = np.random.default_rng(0)
    pixels = (rng.random((280, 280)) > 0.97).astype(np.uint8) * 255
    drawing = json.dumps(dict(width=280, height=280, pixels=base64.b64encode(pixels.tobytes()).decode())).encode()
    requests = {"info": b"GET /info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                "predict": (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(drawing)}\r\n\r\n"
                            .encode() + drawing)}

    def one(i: int) -> tuple[bool, float]:
        start = time.perf_counter()
        try:
            with socket.create_connection((host, port), timeout=30) as conn:
                conn.sendall(requests["predict" if i % 5 == 0 else "info"])
                answer = b"".join(iter(lambda: conn.recv(65536), b""))
            ok = answer.startswith(b"HTTP/1.1 200 ")
        except OSError:
            ok = False
        return ok, time.perf_counter() - start

    results: dict[str, Any] = {"requests": SERVER_REQUESTS, "load": []}
    try:
        for clients in (16, 64):
            with ThreadPoolExecutor(max_workers=clients) as pool:
                outcomes = list(pool.map(one, range(SERVER_REQUESTS)))
            latency = np.array([s for _, s in outcomes])
            results["load"].append(dict(clients=clients, failures=sum(not ok for ok, _ in outcomes),
                                        p50_ms=float(np.percentile(latency, 50) * 1e3),
                                        p99_ms=float(np.percentile(latency, 99) * 1e3)))
        before = threading.active_count()
        idle = [socket.create_connection((host, port)) for _ in range(200)]
        time.sleep(0.5)
        results["idle"] = dict(connections=200, threads_before=before, threads_with_idle=threading.active_count(),
                               info_meanwhile=one(1), prediction_meanwhile=one(0))
        for conn in idle:
            conn.close()
        size = 1_300_000
        tracemalloc.start()
        stalled = []
        for _ in range(60):
            conn = socket.create_connection((host, port))
            conn.sendall(f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n\r\n".encode())
            conn.sendall(b"x" * (size // 2))
            stalled.append(conn)
        time.sleep(1.0)
        results["half_sent"] = dict(clients=60, body_bytes=size, sent_bytes=size // 2,
                                    held_bytes=tracemalloc.get_traced_memory()[1], info_meanwhile=one(1),
                                    prediction_meanwhile=one(0))
        tracemalloc.stop()
        for conn in stalled:
            conn.close()
    finally:
        app.shutdown()
        app.server_close()
    return results


def report_server(r: dict[str, Any]) -> str:
    lines = [f"digit app server on 127.0.0.1 (LeNet-5), {r['requests']} requests per row, every fifth a prediction, "
             "one connection each"]
    lines += [f"  {x['clients']:>3} concurrent clients: {x['failures']} failed, latency p50 {x['p50_ms']:.1f} ms, "
              f"p99 {x['p99_ms']:.1f} ms" for x in r["load"]]
    i, h = r["idle"], r["half_sent"]

    def meanwhile(x: dict[str, Any]) -> str:
        return ", ".join(f"{what} {'served' if ok else 'FAILED'} in {s * 1e3:.0f} ms"
                         for what, (ok, s) in (("GET /info", x["info_meanwhile"]), ("a prediction", x["prediction_meanwhile"])))
    lines.append(f"  {i['connections']} idle connections: threads {i['threads_before']} -> {i['threads_with_idle']}; "
                 f"meanwhile {meanwhile(i)}")
    lines.append(f"  {h['clients']} clients stalled after {h['sent_bytes']:,} of {h['body_bytes']:,} body bytes: "
                 f"{h['held_bytes'] / 2**20:.1f} MiB held (Python allocations); meanwhile {meanwhile(h)} "
                 f"(their bytes count against the body budget; each is answered 408 at the 5 s request deadline here)")
    return "\n".join(lines)


_SET_UP_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                "TINYGRAD_LENET_NUM_THREADS", "TINYGRAD_LENET_BLAS_THREADS", "TINYGRAD_LENET_RETAIN_MEMORY")


def bench_plain_program(runs: int = 3) -> dict[str, Any]:
    """Median step time of the README loop in fresh processes: one with no environment
    variables set (as a user's program), one set up as train.py is; alternating runs."""
    plain_env = {k: v for k, v in os.environ.items() if k not in _SET_UP_VARS}
    train_env = {**plain_env, "OPENBLAS_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    results: dict[str, list[float]] = {"plain": [], "as-train.py": []}
    for _ in range(runs):
        for kind, env in (("plain", plain_env), ("as-train.py", train_env)):
            done = subprocess.run([sys.executable, str(ROOT / "scripts" / "plain_loop.py"), kind], capture_output=True,
                                  text=True, env=env, cwd=ROOT, check=True)
            results[kind].append(json.loads(done.stdout.strip().splitlines()[-1]))
    plain, trained = (float(np.median(results[k])) for k in ("plain", "as-train.py"))
    return dict(runs=runs, plain_ms=plain * 1e3, as_train_ms=trained * 1e3, ratio=plain / trained, seconds=results)


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
    mean_std = (DATASETS["mnist"].mean, DATASETS["mnist"].std)  # its published statistics
    test_x, test_y = load_mnist("test")
    data = dict(train=load_mnist("train"), test=(normalize_images(test_x, normalize=mean_std), test_y),
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
    smoothing = config.label_smoothing
    parallel = DataParallel(ours, workers=workers,
                            loss=lambda logits, y: F.cross_entropy(logits, y, label_smoothing=smoothing))
    theirs = {}
    for name in torch_threads:
        _, model, _ = make_torch(ours, get_num_threads())
        t_opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True,
                                weight_decay=config.weight_decay)
        t_sched = torch.optim.lr_scheduler.OneCycleLR(t_opt, max_lr=config.lr, total_steps=config.epochs * len(loader))
        theirs[name] = (model, t_opt, t_sched)
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
            if per_batch:
                scheduler.step()
        runs["ours"]["seconds"] += time.perf_counter() - start
        accuracy = {"ours": evaluate(ours, test_images, test_y)[1]}
        for name, (model, t_opt, t_sched) in theirs.items():
            torch.set_num_threads(torch_threads[name])
            model.train()
            start = time.perf_counter()
            for x, y in batches:
                loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y.astype(np.int64)),
                                                         label_smoothing=smoothing)
                t_opt.zero_grad(set_to_none=True)
                loss.backward()
                t_opt.step()
                t_sched.step()
            runs[name]["seconds"] += time.perf_counter() - start
            model.eval()
            with torch.no_grad():
                accuracy[name] = float((model(torch.from_numpy(test_images)).argmax(1).numpy() == test_y).mean())
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


def report_time_to_accuracy(r: dict[str, Any]) -> list[str]:
    """Lines for --time-to-accuracy: per seed, each run's time and epoch to the target
    and its accuracy per epoch; then the ratios ours / PyTorch, medians over seeds."""
    lines = []
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


def _poll(url: str, proc: subprocess.Popen) -> None:
    import urllib.request
    while proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
        except OSError:
            pass
        time.sleep(0.25)


def bench_dashboard(args: argparse.Namespace, runs: int = 5) -> dict[str, Any]:
    """train.py's own training seconds (metrics.json) for one epoch of 20,000 synthetic
    images at batch 128, with and without --dashboard (its state polled 4 times a
    second), alternating, in fresh processes."""
    import tempfile

    from tinygrad_lenet.data import write_fake_dataset

    seconds: dict[str, list[float]] = {"plain": [], "dashboard": []}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_fake_dataset(data, n_train=20_000, n_test=100)
        for i in range(runs):
            for kind in ("plain", "dashboard"):
                out = Path(tmp) / f"{kind}{i}"
                extra = ["--dashboard", "0"] if kind == "dashboard" else []
                proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), "--dataset", str(data),
                                         "--epochs", "1", "--no-progress", "--out", str(out), *extra],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
                for line in proc.stdout:  # with the dashboard, a client polls it 4 times a second, as a page would
                    if line.startswith("dashboard: "):
                        threading.Thread(target=_poll, args=(line.split()[1] + "state", proc), daemon=True).start()
                        break
                proc.stdout.read()
                if proc.wait() != 0:
                    raise RuntimeError(f"train.py failed ({kind} run {i})")
                seconds[kind].append(json.loads((out / "metrics.json").read_text())["train_seconds"])
    plain, dash = (float(np.median(seconds[k])) for k in ("plain", "dashboard"))
    return dict(runs=runs, plain_s=plain, dashboard_s=dash, ratio=dash / plain, seconds=seconds)


ALL_PARTS = (  # (key, arguments) of each part of --all, run as its own process
    ("threads_1", ["--threads", "1"]),
    ("threads_2", ["--threads", "2", "--batch-sizes", "128", "--no-memory"]),
    ("workers_2", ["--workers", "2", "--batch-sizes", "128", "--no-memory"]),
    ("plain_program", ["--plain-program"]),
    ("time_to_accuracy", ["--time-to-accuracy"]),
    ("time_to_accuracy_workers_2", ["--time-to-accuracy", "--workers", "2"]),
)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Each part of ALL_PARTS in a fresh process (threads are fixed before numpy loads),
    its report printed as it comes, its --json results collected."""
    import tempfile

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, extra in ALL_PARTS:
            if args.quick:
                quick = ["--quick", "--repeats", str(args.repeats), "--batch-sizes", "128"]
                extra = extra + (["--max-epochs", "1", "--seeds", "1"] if key.startswith("time_to_accuracy") else
                                 [] if key == "plain_program" else quick)
            print(f"\n== python scripts/benchmark.py {' '.join(extra)}", flush=True)
            out = Path(tmp) / f"{key}.json"
            done = subprocess.run([sys.executable, str(Path(__file__).resolve()), *extra, "--json", str(out)], cwd=ROOT)
            if done.returncode != 0:
                raise RuntimeError(f"benchmark.py {' '.join(extra)} failed (exit code {done.returncode})")
            results[key] = json.loads(out.read_text())
    results["own_blas_kernels"] = own_blas_kernels()
    results["targets"] = judge_targets(speed_figures(results))
    return results


class Target(NamedTuple):
    """A speed target: its name, its limit, "max" (at most) or "min" (at least), and how
    its figure is read from --all's results (None when not measured)."""
    what: str
    limit: float
    kind: str
    figure: Callable[[dict[str, Any]], float | None]


def _ratio_to_best(part: str) -> Callable[[dict[str, Any]], float | None]:
    """Our batch-128 step in `part` over PyTorch's fastest batch-128 step of --all."""
    def figure(r: dict[str, Any]) -> float | None:
        best = best_torch_ms(r)
        return best and batch_128(r[part])["ours"]["median_ms"] / best
    return figure


def _recipe_seed_run(r: dict[str, Any]) -> dict[str, Any]:
    return r["time_to_accuracy"]["time_to_accuracy"]["seeds"][0]["runs"]["ours"]


def _app_ms(r: dict[str, Any]) -> float | None:
    app = r["threads_1"].get("app_prediction")
    return app["median_ms"] if app else None


# The project's speed targets, batch 128. Both cores: 2 worker processes (DataParallel);
# PyTorch's best: its fastest batch-128 step at 1 or 2 threads. The epoch is infinite
# when no epoch reached 99.0%.
SPEED_TARGETS = (
    Target("program that sets nothing / train.py, step", 1.10, "max",
           lambda r: r["plain_program"]["plain_program"]["ratio"]),
    Target("1-thread step / PyTorch's 1-thread step", 0.6, "max",
           lambda r: batch_128(r["threads_1"]).get("ratio_ours_over_torch")),
    Target("1-thread step / PyTorch at its best", 0.6, "max", _ratio_to_best("threads_1")),
    Target("both cores (2 processes) step / PyTorch's 2-thread step", 0.6, "max",
           lambda r: batch_128(r["workers_2"]).get("ratio_ours_over_torch")),
    Target("both cores (2 processes) step / PyTorch at its best", 0.6, "max", _ratio_to_best("workers_2")),
    Target("time to 99.0%, both cores / PyTorch at its best, median over seeds", 0.6, "max",
           lambda r: r["time_to_accuracy_workers_2"]["time_to_accuracy"]["ratio_best"]),
    Target("epoch in which ours first reaches 99.0%, recipe's seed", 4, "max",
           lambda r: _recipe_seed_run(r)["reached"]["epoch"] if _recipe_seed_run(r)["reached"] else math.inf),
    Target("final test accuracy (%), recipe's seed", 99.2, "min", lambda r: 100 * _recipe_seed_run(r)["accuracy"][-1]),
    Target("peak memory while training (MiB)", 67, "max", lambda r: peak_memory_128(r)),
    Target("inference, 10,000 images, 1 thread (s)", 0.24, "max",
           lambda r: r["threads_1"]["inference"]["ours"]["seconds_for_10k"]),
    Target("digit app, one drawing (ms)", 20, "max", _app_ms),
)


def speed_figures(r: dict[str, Any]) -> dict[str, float | None]:
    """Each target's figure from --all's results, by the target's name."""
    return {t.what: t.figure(r) for t in SPEED_TARGETS}


def peak_memory_128(r: dict[str, Any]) -> float | None:
    """Peak resident memory (MiB) while training at batch 128, one thread; None when not measured."""
    return next((m["peak_rss_mb"] for m in r["threads_1"].get("memory", []) if m["batch_size"] == 128), None)


def batch_128(part: dict[str, Any]) -> dict[str, Any]:
    """A benchmark part's batch-128 training figures."""
    return next(t for t in part["training"] if t["batch_size"] == 128)


def best_torch_ms(r: dict[str, Any]) -> float | None:
    """PyTorch's fastest batch-128 step in --all's parts (1 and 2 threads), None without PyTorch."""
    times = [batch_128(r[k])["torch"]["median_ms"] for k in ("threads_1", "threads_2", "workers_2")
             if "torch" in batch_128(r[k])]
    return min(times) if times else None


def judge_targets(figures: dict[str, float | None]) -> list[dict[str, Any]]:
    """Each of SPEED_TARGETS with its figure and whether it is met (None: not measured)."""
    judged = []
    for what, limit, kind, _ in SPEED_TARGETS:
        value = figures[what]
        met = None if value is None else bool(value <= limit if kind == "max" else value >= limit)
        judged.append(dict(what=what, value=value if value is None or math.isfinite(value) else None,
                           limit=limit, kind=kind, met=met))
    return judged


def report_targets(judged: list[dict[str, Any]]) -> list[str]:
    """One line per judged target: the figure, the limit, and whether it is met."""
    verdicts = {True: "met", False: "NOT met", None: "not measured"}

    def shown(t: dict[str, Any]) -> str:
        return format(t["value"], ".3g") if t["value"] is not None else "never" if t["met"] is False else "-"
    return [f"{t['what']}: {shown(t)} "
            f"({'at most' if t['kind'] == 'max' else 'at least'} {t['limit']:g}): {verdicts[t['met']]}"
            for t in judged]


def own_blas_kernels() -> str | None:
    """The OpenBLAS kernels numpy would run here with OPENBLAS_CORETYPE and
    OPENBLAS_L2_SIZE unset (None when neither is set, or when threadpoolctl cannot
    tell): a fresh process, since OpenBLAS picks its kernels when it loads."""
    dropped = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    if not any(os.environ.get(var) for var in dropped):
        return None
    probe = "import json, numpy, threadpoolctl; print(json.dumps(threadpoolctl.threadpool_info()))"
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    return ", ".join(blas_kernels(json.loads(done.stdout))) or None if done.returncode == 0 else None


def report_all(r: dict[str, Any]) -> str:
    """The summary of --all: per-step ratios at 1 and 2 threads against PyTorch at 1 and
    2 threads (its default is one thread per core) and at its best; the compute bound,
    time to 99%, memory, inference, the digit app and the plain program."""
    one, two, procs = (batch_128(r[k]) for k in ("threads_1", "threads_2", "workers_2"))
    lines = ["", "== summary (batch 128 unless noted; medians)", "  " + blas_kernels_line(r["threads_1"]["environment"])]
    if r.get("own_blas_kernels"):
        lines.append(f"  numpy's own choice here, with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset: "
                     f"{r['own_blas_kernels']} (measure it: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "
                     f"python scripts/benchmark.py --all)")
    best = best_torch_ms(r)
    if best is not None:
        default = " (its default on 2 cores)" if r["threads_2"]["environment"]["cpus"] == 2 else ""
        for label, t in (("1 thread ", one), ("2 threads", two), ("2 processes", procs)):
            lines.append(f"  training step, {label}: ours {t['ours']['median_ms']:.2f} ms | PyTorch at the same "
                         f"number of cores {t['torch']['median_ms']:.2f} ms (ratio {t['ratio_ours_over_torch']:.2f}), "
                         f"PyTorch at 2 threads{default} {two['torch']['median_ms']:.2f} ms (ratio "
                         f"{t['ours']['median_ms'] / two['torch']['median_ms']:.2f}), at its best {best:.2f} ms "
                         f"(ratio {t['ours']['median_ms'] / best:.2f})")
    for label, k in (("1 thread ", "threads_1"), ("2 threads", "threads_2"), ("2 processes", "workers_2")):
        c = next(c for c in r[k]["compute_bound"] if c["batch_size"] == 128)
        lines.append(f"  compute bound, {label}: {c['step'] / 1e9:.3f} GFLOP at {sgemm_rate(c)} = "
                     f"{c['bound_ms']:.2f} ms; the step is {c['fraction']:.0%} of it")
    for label, k in (("1 process", "time_to_accuracy"), ("2 processes", "time_to_accuracy_workers_2")):
        lines.append(f"  time to accuracy, ours on {label}:")
        lines += ["    " + line for line in report_time_to_accuracy(r[k]["time_to_accuracy"])]
    mem = peak_memory_128(r)
    if mem is not None:
        lines.append(f"  peak memory while training: {mem:.0f} MiB")
    for label, k in (("1 thread", "threads_1"), ("2 threads", "threads_2")):
        inf = r[k]["inference"]
        lines.append(f"  inference, 10,000 images, {label}: ours {inf['ours']['seconds_for_10k']:.3f} s"
                     + (f" | PyTorch {inf['torch']['seconds_for_10k']:.3f} s (ratio {inf['ratio_ours_over_torch']:.2f})"
                        if "torch" in inf else ""))
    app = r["threads_1"].get("app_prediction")
    if app:
        lines.append(f"  digit app, one drawing with feature maps and saliency: {app['median_ms']:.1f} ms")
    plain = r["plain_program"]["plain_program"]
    lines.append(f"  README loop in a program that sets nothing: {plain['plain_ms']:.2f} ms per step vs "
                 f"{plain['as_train_ms']:.2f} ms set up as train.py (ratio {plain['ratio']:.3f})")
    lines.append("  targets, with these BLAS kernels:")
    lines += ["    " + line for line in report_targets(r["targets"])]
    return "\n".join(lines)


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
        r = run_all(args)
        print(report_all(r))
        return write_json(args, {"all": r})
    if args.time_to_accuracy:
        if not torch_available():
            print("benchmark.py: error: --time-to-accuracy needs PyTorch (pip install -e '.[bench]')", file=sys.stderr)
            return 2
        r = bench_time_to_accuracy(args)
        print("\n".join(report_time_to_accuracy(r)))
        return write_json(args, {"time_to_accuracy": r})
    if args.plain_program:
        r = bench_plain_program()
        print(f"README loop, batch 128, medians of {r['runs']} fresh processes each: {r['plain_ms']:.2f} ms per step "
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
    results["app_prediction"] = bench_app_prediction(args)
    results["memory"] = [] if args.no_memory else [bench_memory(b, args) for b in args.batch_sizes]
    print(report(results))
    return write_json(args, results)


if __name__ == "__main__":
    sys.exit(main(ARGS))

"""What the measurements share: the timed model and step (ours and PyTorch's), random batches,
timing in alternating blocks, and the machine's environment."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from models import build_model
from tinygrad_lenet import Tensor, manual_seed, optim
from tinygrad_lenet import functional as F
from tinygrad_lenet.config import RunConfig
from tinygrad_lenet.data_parallel import DataParallel
from tinygrad_lenet.ops.parallel import get_num_threads

from .threads import THREAD_VARS

ROOT = Path(__file__).resolve().parents[2]
EPOCH_IMAGES = 60_000
TEST_IMAGES = 10_000
INFERENCE_BATCH = 1000
RECIPE = RunConfig()  # the default training recipe: its SGD settings are timed here
LR, MOMENTUM, WEIGHT_DECAY = RECIPE.lr, RECIPE.momentum, RECIPE.weight_decay


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


def blas_kernels_line(env: dict[str, Any]) -> str:
    """Which OpenBLAS kernels numpy runs, and whether the environment chose them:
    AVX-512 ("SkylakeX") products run about twice as fast as AVX2 ("Haswell") ones."""
    kernels = ", ".join(env.get("blas_kernels") or ["unknown"])
    chosen = ", ".join(f"{k}={v}" for k, v in env["openblas_env"].items() if v is not None)
    return (f"numpy's OpenBLAS kernels: {kernels} (" + (f"set by {chosen})" if chosen else
                                                        "its own choice: OPENBLAS_CORETYPE unset)"))


def fmt_ms(s: dict[str, float]) -> str:
    return f"{s['median_ms']:8.2f} ms [{s['p10_ms']:.2f}-{s['p90_ms']:.2f}]"


def batch_128(part: dict[str, Any]) -> dict[str, Any]:
    """A benchmark part's batch-128 training figures."""
    return next(t for t in part["training"] if t["batch_size"] == 128)

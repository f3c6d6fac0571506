"""--all: every part in its own process, then the project's speed targets, each a named
record that reads its figure from the parts' results."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

from .common import ROOT, batch_128, blas_kernels, blas_kernels_line
from .compute_bound import sgemm_rate
from .time_to_accuracy import report_time_to_accuracy

ALL_PARTS = (  # (key, arguments) of each part of --all, run as its own process
    ("threads_1", ["--threads", "1"]),
    ("threads_2", ["--threads", "2", "--batch-sizes", "128", "--no-memory"]),
    ("workers_2", ["--workers", "2", "--batch-sizes", "128", "--no-memory"]),
    ("plain_program", ["--plain-program"]),
    ("time_to_accuracy", ["--time-to-accuracy"]),
    ("time_to_accuracy_workers_2", ["--time-to-accuracy", "--workers", "2"]),
    ("layers", ["--layers"]),
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
                extra = extra + (["--max-epochs", "1", "--seeds", "1", "--train-subset", "15000"]
                                 if key.startswith("time_to_accuracy") else
                                 ["--quick"] if key == "plain_program" else
                                 ["--quick", "--repeats", str(args.repeats)] if key == "layers" else quick)
            print(f"\n== python scripts/benchmark.py {' '.join(extra)}", flush=True)
            out = Path(tmp) / f"{key}.json"
            done = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark.py"), *extra, "--json", str(out)], cwd=ROOT)
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


def _seeds(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Our run of each seed of the 1-process time to accuracy."""
    return [seed["runs"]["ours"] for seed in r["time_to_accuracy"]["time_to_accuracy"]["seeds"]]


def _latest_epoch_to_99(r: dict[str, Any]) -> float:
    """The latest epoch in which a seed first reached 99.0% (infinite when one never did)."""
    return max(run["reached"]["epoch"] if run["reached"] else math.inf for run in _seeds(r))


def _compute_share(part: str) -> Callable[[dict[str, Any]], float]:
    return lambda r: 100 * next(c for c in r[part]["compute_bound"] if c["batch_size"] == 128)["fraction"]


def _app_ms(r: dict[str, Any]) -> float | None:
    app = r["threads_1"].get("app_prediction")
    return app["median_ms"] if app else None


def _gelu_over_relu(r: dict[str, Any]) -> float:
    layers = r["layers"]["layers"]
    return layers["GELU (exact)"]["ours_ms"] / layers["ReLU"]["ours_ms"]


def _user_models(key: str) -> Callable[[dict[str, Any]], float | None]:
    """The larger of the two user models' `key` (measured by --layers)."""
    def figure(r: dict[str, Any]) -> float | None:
        models = r["layers"].get("user_models")
        return max(m[key] for m in models.values()) if models else None
    return figure


# The project's speed targets, batch 128 (issue 29). Both cores: 2 worker processes
# (DataParallel); PyTorch's best: its fastest batch-128 step at 1 or 2 threads. An epoch
# is infinite when no epoch reached 99.0%.
SPEED_TARGETS = (
    Target("program that sets nothing / train.py, step", 1.10, "max",
           lambda r: r["plain_program"]["plain_program"]["ratio"]),
    Target("share of the compute bound, 1 thread (%)", 45, "min", _compute_share("threads_1")),
    Target("share of the compute bound, both cores: 2 processes (%)", 40, "min", _compute_share("workers_2")),
    Target("1-thread step / PyTorch's 1-thread step", 0.40, "max",
           lambda r: batch_128(r["threads_1"]).get("ratio_ours_over_torch")),
    Target("1-thread step / PyTorch at its best", 0.60, "max", _ratio_to_best("threads_1")),
    Target("both cores (2 processes) step / PyTorch at its best", 0.6, "max", _ratio_to_best("workers_2")),
    Target("time to 99.0%, both cores / PyTorch at its best, median over seeds", 0.30, "max",
           lambda r: r["time_to_accuracy_workers_2"]["time_to_accuracy"]["ratio_best"]),
    Target("latest epoch in which a seed first reaches 99.0%", 2, "max", _latest_epoch_to_99),
    Target("lowest final test accuracy over the seeds (%)", 99.2, "min",
           lambda r: 100 * min(run["accuracy"][-1] for run in _seeds(r))),
    Target("slowest everyday layer / PyTorch's, 1 thread", 1.5, "max",
           lambda r: max(layer["ratio"] for layer in r["layers"]["layers"].values())),
    Target("exact GELU / our ReLU, forward + backward", 2.0, "max", _gelu_over_relu),
    Target("two user models' step / PyTorch's", 0.8, "max", _user_models("ratio")),
    Target("evaluation's share of a user model's epoch (%)", 15, "max", _user_models("ours_eval_share")),
    Target("peak memory while training (MiB)", 70, "max", lambda r: peak_memory_128(r)),
    Target("inference, 10,000 images, 1 thread / PyTorch's", 0.5, "max",
           lambda r: r["threads_1"]["inference"].get("ratio_ours_over_torch")),
    Target("digit app, one drawing (ms)", 20, "max", _app_ms),
)


def speed_figures(r: dict[str, Any]) -> dict[str, float | None]:
    """Each target's figure from --all's results, by the target's name."""
    return {t.what: t.figure(r) for t in SPEED_TARGETS}


def peak_memory_128(r: dict[str, Any]) -> float | None:
    """Peak resident memory (MiB) while training at batch 128, one thread; None when not measured."""
    return next((m["peak_rss_mb"] for m in r["threads_1"].get("memory", []) if m["batch_size"] == 128), None)


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
    time to 99%, memory, inference, the digit app, the plain program and the everyday layers."""
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
    lines.append(f"  hand-written loop in a program that sets nothing: {plain['plain_ms']:.2f} ms per step vs "
                 f"{plain['as_train_ms']:.2f} ms set up as train.py (ratio {plain['ratio']:.3f})")
    layers = r["layers"]["layers"]
    worst = max(layers, key=lambda name: layers[name]["ratio"])
    lines.append(f"  everyday layers, forward + backward, 1 thread: {sum(v['ratio'] <= 1.5 for v in layers.values())} "
                 f"of {len(layers)} within 1.5x PyTorch's time; the slowest, {worst}, {layers[worst]['ratio']:.2f}x")
    lines.append("  targets, with these BLAS kernels:")
    lines += ["    " + line for line in report_targets(r["targets"])]
    return "\n".join(lines)

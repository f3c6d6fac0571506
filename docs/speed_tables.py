"""The speed guide's tables, rendered from the benchmark's JSON committed beside them
(docs/benchmarks/), so a figure on the page is always one a run printed.

    python scripts/benchmark.py --all --json docs/benchmarks/all.json
    python scripts/benchmark.py --mpi 2 --json docs/benchmarks/mpi.json
    python docs/speed_tables.py          # rewrite the tables in the guides (PAGES)

In a page each table sits between `<!-- table: NAME -->` and `<!-- end table -->`;
the tests check that every one is the rendering of the committed JSON.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

DOCS = Path(__file__).resolve().parent
PAGES = [DOCS / "guides" / "speed.md", DOCS / "guides" / "parallel.md"]
MARKED = re.compile(r"(<!-- table: (\w+) -->\n)(.*?)(<!-- end table -->)", re.S)


def _load(name: str) -> dict[str, Any]:
    return json.loads((DOCS / "benchmarks" / f"{name}.json").read_text(encoding="utf-8"))


def _ms(s: dict[str, Any]) -> str:
    return f"{s['median_ms']:.2f} ms"


def machine() -> str:
    """The machine and software of the --all run, in one paragraph."""
    env = _load("all")["all"]["threads_1"]["environment"]
    blas = env["numpy_blas"]
    return (f"Measured by `python scripts/benchmark.py --all` on {env['cpus']} cores ({env['platform']}), "
            f"Python {env['python']}, numpy {env['numpy']} with {blas['name']} {blas['version']} running its "
            f"{', '.join(env['blas_kernels'])} kernels (one BLAS thread), PyTorch {env['torch']['version']}; "
            "medians of 15 blocks, PyTorch timed alternately in the same process, ratios from this one run.\n")


def summary() -> str:
    """Ours against PyTorch, the figures of one --all run."""
    r = _load("all")["all"]
    one, two, workers = r["threads_1"], r["threads_2"], r["workers_2"]
    rows = []
    for t in one["training"]:
        rows.append((f"training step, batch {t['batch_size']}, 1 thread", _ms(t["ours"]), _ms(t["torch"]),
                     f"{t['ratio_ours_over_torch']:.2f}"))
    t = two["training"][0]
    rows.append(("training step, batch 128, 2 threads", _ms(t["ours"]), _ms(t["torch"]),
                 f"{t['ratio_ours_over_torch']:.2f}"))
    t = workers["training"][0]
    rows.append(("training step, batch 128, both cores: 2 processes (PyTorch: 2 threads)", _ms(t["ours"]),
                 _ms(t["torch"]), f"{t['ratio_ours_over_torch']:.2f}"))
    for key, label in (("time_to_accuracy", "1 process"), ("time_to_accuracy_workers_2", "2 processes")):
        tta = r[key]["time_to_accuracy"]
        seed = tta["seeds"][0]["runs"]
        best = min((run["reached"]["seconds"], name) for name, run in seed.items()
                   if name != "ours" and run["reached"])
        ours = seed["ours"]["reached"]
        rows.append((f"time to 99.0% test accuracy, {label}, seed {tta['seeds'][0]['seed']} (PyTorch at its best)",
                     f"{ours['seconds']:.1f} s (epoch {ours['epoch']})",
                     f"{best[0]:.1f} s (epoch {seed[best[1]]['reached']['epoch']})",
                     f"{tta['seeds'][0]['ratio_best']:.2f}"))
        rows.append((f"the same, median over seeds {', '.join(str(s['seed']) for s in tta['seeds'])}", "", "",
                     f"{tta['ratio_best']:.2f}"))
    for part, label in ((one, "1 thread"), (two, "2 threads")):
        inf = part["inference"]
        rows.append((f"inference, 10,000 test images at batch 1000, {label}", f"{inf['ours']['seconds_for_10k']:.3f} s",
                     f"{inf['torch']['seconds_for_10k']:.3f} s", f"{inf['ratio_ours_over_torch']:.2f}"))
    lines = ["| | ours | PyTorch | ours / PyTorch |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines) + "\n"


def targets() -> str:
    """The speed targets as the run judged them."""
    lines = ["| target | this run | limit | |", "|---|---|---|---|"]
    for t in _load("all")["all"]["targets"]:
        lines.append(f"| {t['what']} | {t['value']:.3g} | {'at most' if t['kind'] == 'max' else 'at least'} "
                     f"{t['limit']:g} | {'met' if t['met'] else '**not met**'} |")
    return "\n".join(lines) + "\n"


def mpi() -> str:
    """Data parallelism over 2 ranks every way, from one --mpi 2 run."""
    r = _load("mpi")["mpi"]
    n = r["ranks"]
    rows = [("ours, 1 process", r["one_process_ms"], ""),
            (f"ours, {n} processes forked (`--workers {n}`)", r["fork_ms"], f"{r['fork_efficiency']:.0%}")]
    for key, label in (("mpi_shared_memory", "shared memory"), ("mpi_tcp", "TCP over loopback")):
        m = r[key]
        rows.append((f"ours, {n} ranks over MPI, {label} (allreduce {m['allreduce']['median_ms']:.2f} ms a step, "
                     "waiting included)", m["step"]["median_ms"], f"{m['efficiency']:.0%}"))
    rows += [("PyTorch, 1 process, 1 thread", r["torch_one_process_ms"], ""),
             (f"PyTorch DDP, {n} ranks, gloo", r["torch_ddp_gloo"]["step"]["median_ms"],
              f"{r['torch_ddp_gloo']['efficiency']:.0%}")]
    lines = ["| | ms per step | images/s | scaling efficiency |", "|---|---|---|---|"]
    lines += [f"| {a} | {b:.2f} | {128 / b * 1e3:,.0f} | {c} |" for a, b, c in rows]
    tta = r.get("time_to_accuracy")
    if tta:
        ours, theirs = tta["ours"]["reached"], tta["torch"]["reached"]
        lines += ["", f"Time to 99.0% on {n} ranks (the default recipe without outlier exposure, the same weights "
                      f"and batches): ours over MPI {ours['seconds']:.1f} s (epoch {ours['epoch']}), PyTorch's DDP "
                      f"{theirs['seconds']:.1f} s (epoch {theirs['epoch']}): "
                      f"{ours['seconds'] / theirs['seconds']:.2f}x."]
    return "\n".join(lines) + "\n"


def roofline() -> str:
    """LeNet-5's kernels at batch 128, 1 thread, each against its bound (compute or memory)."""
    r = _load("all")["all"]["threads_1"]["roofline"]
    lines = [f"At numpy's measured product rate ({r['sgemm_gflops']:.0f} GFLOP/s) and copy rate in the cache "
             f"({r['copy_gbytes_per_s']:.1f} GB/s), batch {r['batch_size']}, 1 thread:", "",
             "| kernel | ms | GFLOP | MiB moved | bound (ms) | bound by | share of the bound | above it (ms) |",
             "|---|---|---|---|---|---|---|---|"]
    for k in sorted(r["kernels"], key=lambda k: k["bound_ms"] - k["ms"]):
        lines.append(f"| {k['kernel']} | {k['ms']:.3f} | {k['gflop']:.4f} | {k['mbytes']:.2f} | {k['bound_ms']:.3f} | "
                     f"{k['limit']} | {k['share']:.0%} | {k['ms'] - k['bound_ms']:.3f} |")
    return "\n".join(lines) + "\n"


TABLES: dict[str, Callable[[], str]] = {"machine": machine, "summary": summary, "targets": targets, "mpi": mpi,
                                        "roofline": roofline}


def rendered(page: str) -> str:
    """`page` with every marked table replaced by its rendering from the JSON."""
    return MARKED.sub(lambda m: m.group(1) + TABLES[m.group(2)]() + m.group(4), page)


if __name__ == "__main__":
    for page in PAGES:
        page.write_text(rendered(page.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"rewrote the tables of {page}")

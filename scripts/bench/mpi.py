"""--mpi N: data-parallel training over N ranks, ours over MPI (shared memory and TCP on
loopback) against one process, the fork-based `--workers N` path, and PyTorch's
DistributedDataParallel over gloo at the same N, in one run; then the time to 99.0%
with N ranks, ours against PyTorch's DDP (the same recipe, weights and batches)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
from typing import Any

from .common import ROOT, interleaved, make_ours, make_torch, random_batches, training_runner

# As root (containers, CI) Open MPI refuses to start unless told it may.
ALLOW_ROOT = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
# Unpinned (other jobs may run beside), and allowed more ranks than cores.
PLACEMENT = ("--bind-to", "none", "--map-by", ":OVERSUBSCRIBE")
# Open MPI's TCP transport alone, on the loopback interface: what ranks on other hosts would use.
TCP = ("--mca", "pml", "ob1", "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo")
MPI_ENV = {**ALLOW_ROOT, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "TINYGRAD_LENET_NUM_THREADS": "1"}


def _rank_zero_json(command: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark: {' '.join(command[:6])} ... failed ({proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()[-800:]}")
    return json.loads(lines[-1])


def run_ours(ranks: int, mode: str, tcp: bool = False, quick: bool = False, timeout: float = 900) -> dict[str, Any]:
    """scripts/bench/ranks.py as an MPI job of `ranks` ranks."""
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        raise RuntimeError("benchmark: --mpi needs mpiexec: pip install -e '.[distributed]'")
    command = [mpiexec, *PLACEMENT, "-n", str(ranks), *(TCP if tcp else ()),
               sys.executable, "-m", "scripts.bench.ranks", "ours", mode, *(["--quick"] if quick else [])]
    return _rank_zero_json(command, {**os.environ, **MPI_ENV}, timeout)


def run_torch(ranks: int, mode: str, quick: bool = False, timeout: float = 900) -> dict[str, Any]:
    """scripts/bench/ranks.py once per rank, PyTorch's DDP over gloo (rendezvous on loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(ranks):
        env = {**os.environ, **MPI_ENV, "RANK": str(rank), "WORLD_SIZE": str(ranks), "MASTER_PORT": str(port)}
        command = [sys.executable, "-m", "scripts.bench.ranks", "torch", mode, *(["--quick"] if quick else [])]
        procs.append(subprocess.Popen(command, cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=timeout) for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"benchmark: PyTorch's DDP job failed: {outs[0][1].strip()[-800:]}")
    return json.loads([line for line in outs[0][0].splitlines() if line.startswith("{")][-1])


def bench_mpi(args: argparse.Namespace) -> dict[str, Any]:
    """Step times at the job's batch of 128 for 1 process and N ranks every way, the
    allreduce's share, scaling efficiency (1-process time / (N x N-rank time)); then
    time to 99.0% with N ranks, ours and PyTorch's."""
    n = args.mpi
    batches = random_batches(128, 4, seed=128)
    steps = 2 if args.quick else 10
    one_model, one_step = make_ours(args)
    torch, _, torch_step = make_torch(one_model, 1)
    tbatches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
    _, fork_step = make_ours(args, workers=n)
    single = interleaved({"ours": training_runner(one_step, batches, steps),
                          "torch": training_runner(torch_step, tbatches, steps),
                          "fork": training_runner(fork_step, batches, steps)}, args.repeats, warmup=2)
    result: dict[str, Any] = dict(ranks=n, one_process_ms=single["ours"]["median_ms"] / steps,
                                  torch_one_process_ms=single["torch"]["median_ms"] / steps,
                                  fork_ms=single["fork"]["median_ms"] / steps)
    result["mpi_shared_memory"] = run_ours(n, "steps", quick=args.quick)
    result["mpi_tcp"] = run_ours(n, "steps", tcp=True, quick=args.quick)
    result["torch_ddp_gloo"] = run_torch(n, "steps", quick=args.quick)
    for key, base in (("mpi_shared_memory", "one_process_ms"), ("mpi_tcp", "one_process_ms"),
                      ("torch_ddp_gloo", "torch_one_process_ms")):
        result[key]["efficiency"] = result[base] / (n * result[key]["step"]["median_ms"])
    result["fork_efficiency"] = result["one_process_ms"] / (n * result["fork_ms"])
    if not args.quick:
        result["time_to_accuracy"] = dict(ours=run_ours(n, "accuracy"), torch=run_torch(n, "accuracy"))
    return result


def report_mpi(r: dict[str, Any]) -> list[str]:
    n = r["ranks"]

    def row(label: str, ms: float, rest: str = "") -> str:
        return f"  {label:44s}{ms:7.2f} ms {128 / ms * 1e3:7.0f} img/s{rest}"
    lines = [f"Data-parallel LeNet-5 training, the job's batch 128 split over {n} ranks, 1 thread each "
             f"(ms per step, median; scaling efficiency = 1-process time / ({n} x this)):",
             row("ours, 1 process", r["one_process_ms"]),
             row(f"ours, {n} processes (fork, --workers {n})", r["fork_ms"], f"   efficiency {r['fork_efficiency']:.0%}")]
    for key, label in (("mpi_shared_memory", "shared memory"), ("mpi_tcp", "TCP over loopback")):
        m = r[key]
        lines.append(row(f"ours, {n} ranks over MPI, {label}", m["step"]["median_ms"],
                         f"   efficiency {m['efficiency']:.0%}; allreduce {m['allreduce']['median_ms']:.3f} ms a step "
                         f"({m['allreduce']['median_ms'] / m['step']['median_ms']:.0%}, waiting for the slower rank "
                         "included)"))
    t = r["torch_ddp_gloo"]
    lines += [row("PyTorch, 1 process (1 thread)", r["torch_one_process_ms"]),
              row(f"PyTorch DDP, {n} ranks, gloo", t["step"]["median_ms"], f"   efficiency {t['efficiency']:.0%}"),
              f"  ours over MPI (shared memory) / PyTorch's DDP: "
              f"{r['mpi_shared_memory']['step']['median_ms'] / t['step']['median_ms']:.2f}"]
    tta = r.get("time_to_accuracy")
    if tta:
        for name, label in (("ours", "ours over MPI"), ("torch", "PyTorch DDP, gloo")):
            run = tta[name]
            when = (f"{run['reached']['seconds']:.1f} s (epoch {run['reached']['epoch']})" if run["reached"]
                    else "not reached")
            lines.append(f"  time to {run['target']:.1%}, {n} ranks, {label}: {when}; test accuracy per epoch "
                         f"{', '.join(f'{a:.2%}' for a in run['accuracy'])}; {run['seconds']:.1f} s of training")
        if tta["ours"]["reached"] and tta["torch"]["reached"]:
            lines.append(f"  time to {tta['ours']['target']:.1%}: ours / PyTorch's DDP = "
                         f"{tta['ours']['reached']['seconds'] / tta['torch']['reached']['seconds']:.2f}")
    return lines

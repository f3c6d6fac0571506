"""Per-op timing: how long each op's forward and backward kernels take, and how
much of a stretch of work is spent outside them (graph bookkeeping, Python).

    with profile_ops() as prof:
        for _ in range(20):
            train_step()
    print(prof.table(per=20))          # milliseconds per step
    prof.outside_share()               # e.g. 0.05 = 5% of the time outside kernels

It uses the engine's `autograd.op_timer` hook, which costs one `is None` check
per op when no profile is running. A fused op (`ops.fused`) is timed as itself.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Iterator

from . import autograd


@dataclass
class OpStats:
    """Totals for one op name."""

    forward_calls: int = 0
    backward_calls: int = 0
    forward_s: float = 0.0
    backward_s: float = 0.0

    @property
    def total_s(self) -> float:
        """Forward plus backward seconds."""
        return self.forward_s + self.backward_s


class OpProfile:
    """What `profile_ops` measured: per-op kernel times and the wall time of
    the whole block (`wall_s`, set when the block ends)."""

    def __init__(self) -> None:
        self.ops: dict[str, OpStats] = {}
        self.wall_s = 0.0

    def record(self, op: str, phase: str, seconds: float) -> None:
        """Add one timed kernel call of `op` in `phase` (forward or backward)."""
        stats = self.ops.get(op)
        if stats is None:
            stats = self.ops[op] = OpStats()
        if phase == "forward":
            stats.forward_calls += 1
            stats.forward_s += seconds
        else:
            stats.backward_calls += 1
            stats.backward_s += seconds

    def kernel_s(self) -> float:
        """Seconds spent inside op forward/backward kernels."""
        return sum(s.total_s for s in self.ops.values())

    def outside_share(self) -> float:
        """Fraction of the block's wall time spent outside op kernels."""
        return 1.0 - self.kernel_s() / self.wall_s if self.wall_s > 0 else float("nan")

    def as_dict(self, per: int = 1) -> dict:
        """Milliseconds per `per` repetitions (e.g. per training step), by op."""
        scale = 1e3 / per
        return {
            "ops": {name: {"forward_ms": s.forward_s * scale, "backward_ms": s.backward_s * scale,
                           "forward_calls": s.forward_calls / per, "backward_calls": s.backward_calls / per}
                    for name, s in self.sorted_ops()},
            "kernel_ms": self.kernel_s() * scale,
            "wall_ms": self.wall_s * scale,
            "outside_share": self.outside_share(),
        }

    def sorted_ops(self) -> list[tuple[str, OpStats]]:
        """(op, stats) pairs, the most time first."""
        return sorted(self.ops.items(), key=lambda kv: -kv[1].total_s)

    def table(self, per: int = 1) -> str:
        """A text table in milliseconds per `per` repetitions, slowest op first."""
        scale = 1e3 / per
        lines = [f"{'op':<16}{'forward ms':>12}{'backward ms':>13}{'total ms':>10}{'share':>8}"]
        wall = self.wall_s or float("nan")
        for name, s in self.sorted_ops():
            lines.append(f"{name:<16}{s.forward_s * scale:>12.3f}{s.backward_s * scale:>13.3f}"
                         f"{s.total_s * scale:>10.3f}{s.total_s / wall:>8.1%}")
        outside = self.wall_s - self.kernel_s()
        lines.append(f"{'(outside ops)':<16}{'':>12}{'':>13}{outside * scale:>10.3f}{self.outside_share():>8.1%}")
        lines.append(f"{'(wall)':<16}{'':>12}{'':>13}{self.wall_s * scale:>10.3f}")
        return "\n".join(lines)


@contextlib.contextmanager
def profile_ops() -> Iterator[OpProfile]:
    """Time every op kernel run inside the block (not re-entrant)."""
    if autograd.op_timer is not None:
        raise RuntimeError("profile_ops: a profile is already running; profiles do not nest")
    prof = OpProfile()
    autograd.op_timer = prof.record
    start = time.perf_counter()
    try:
        yield prof
    finally:
        prof.wall_s = time.perf_counter() - start
        autograd.op_timer = None

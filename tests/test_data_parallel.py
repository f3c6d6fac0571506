"""DataParallel: a batch's shares computed in forked worker processes give the whole
batch's gradient (to float32 rounding), deterministically, and failures are named."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from conftest import require

from models import LeNet5
from tinygrad_lenet import Tensor, manual_seed, nn, optim
from tinygrad_lenet import functional as F
from tinygrad_lenet.data_parallel import DataParallel, DataParallelError, shares

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="DataParallel's workers need os.fork")


def batch(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, n)


def one_process_gradients(model, x, y, loss=F.cross_entropy):
    for p in model.parameters():
        p.grad = None
    value = loss(model(Tensor(x)), Tensor(y))
    value.backward()
    return value.item(), [p.grad.copy() for p in model.parameters()]


def test_shares_are_contiguous_and_differ_by_at_most_one():
    assert shares(128, 2) == [(0, 64), (64, 128)]
    assert shares(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert shares(5, 2) == [(0, 3), (3, 5)]
    assert shares(1, 1) == [(0, 1)]


@pytest.mark.parametrize("n, workers", [(16, 2), (7, 3), (5, 2)])
def test_gradients_and_loss_are_the_whole_batchs(n, workers):
    """Equal and unequal shares: each share's gradient is weighted by its size."""
    manual_seed(0)
    model = LeNet5()
    x, y = batch(n)
    ref_loss, ref = one_process_gradients(model, x, y)
    with np.errstate(all="ignore"), DataParallel(model, workers=workers) as dp:
        loss, logits = dp.forward_backward(x, y)
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    with_one = model(Tensor(x)).data
    np.testing.assert_allclose(logits, with_one, rtol=1e-5, atol=1e-6)  # in batch order
    for p, r in zip(model.parameters(), ref):
        np.testing.assert_allclose(p.grad, r, rtol=2e-5, atol=1e-6 * float(np.abs(r).max()))


def test_images_reach_a_worker_through_shared_memory_or_the_pipe_with_the_same_gradients():
    """A worker's share of the images is copied into its shared room (sized by the first
    batch) and only their count is sent; a larger share, or images of another shape or
    dtype, go through the pipe. Either way the gradients are one process's."""
    manual_seed(0)
    model = LeNet5()
    with np.errstate(all="ignore"), DataParallel(model, workers=2) as dp:
        for n in (8, 16, 6):  # room for 4 images: shared, then the pipe (8), then shared again (3)
            x, y = batch(n, seed=n)
            ref_loss, ref = one_process_gradients(model, x, y)
            loss, _ = dp.forward_backward(x, y)
            assert loss == pytest.approx(ref_loss, rel=1e-6)
            for p, r in zip(model.parameters(), ref):
                np.testing.assert_allclose(p.grad, r, rtol=2e-5, atol=1e-6 * float(np.abs(r).max()))
        x = batch(8)[0]
        assert dp._handed(1, x[4:]) == 4 and np.array_equal(dp._inputs[0], x[4:])
        assert dp._handed(1, x) is x  # more than the room holds
        assert isinstance(dp._handed(1, x[:2].astype(np.float64)), np.ndarray)  # another dtype
        assert isinstance(dp._handed(1, np.zeros((2, 1, 32, 32), np.float32)), np.ndarray)  # another shape


def test_training_with_workers_follows_one_process_and_repeats_bit_for_bit():
    """Ten SGD steps: the same weights as one process to rounding, and the same bits
    on a second run (the optimizer's in-place updates are what the workers read)."""
    def train(workers: int) -> list[np.ndarray]:
        manual_seed(3)
        model = LeNet5()
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        with DataParallel(model, workers=workers) as dp:
            for k in range(10):
                x, y = batch(32, seed=k)
                opt.zero_grad()
                dp.forward_backward(x, y)
                opt.step()
        return [p.data.copy() for p in model.parameters()]

    one, two, again = train(1), train(2), train(2)
    for a, b, c in zip(one, two, again):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(b, c)


def test_outlier_exposure_with_workers_follows_one_process():
    """train_one_epoch with outliers: the batch shared between two processes and the
    outliers' gradient added here gives one process's weights, to rounding."""
    from tinygrad_lenet.data import normalize_images, not_digits
    from tinygrad_lenet.training import train_one_epoch
    outliers = normalize_images(not_digits(64, seed=1), normalize=(0.1307, 0.3081))
    batches = [batch(32, seed=k) for k in range(4)]

    def train(workers: int) -> list[np.ndarray]:
        manual_seed(3)
        model = LeNet5()
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        dp = DataParallel(model, workers=workers, loss=lambda logits, y: F.cross_entropy(logits, y)) \
            if workers > 1 else None
        try:
            train_one_epoch(model, batches, opt, outliers=outliers, outlier_rng=np.random.default_rng(0), parallel=dp)
        finally:
            if dp is not None:
                dp.close()
        return [p.data.copy() for p in model.parameters()]

    for a, b in zip(train(1), train(2)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_new_parameter_values_reach_the_workers_whether_written_in_place_or_replaced():
    """load_state_dict writes into the parameters' arrays; code may also assign new
    arrays to .data: the next step copies those into shared memory."""
    manual_seed(0)
    model = LeNet5()
    x, y = batch(8)
    with DataParallel(model, workers=2) as dp:
        dp.forward_backward(x, y)
        manual_seed(1)
        model.load_state_dict(LeNet5().state_dict())
        for p in model.parameters():
            p.data = p.data * np.float32(0.5)  # a new array
        _, ref = one_process_gradients(model, x, y)
        dp.forward_backward(x, y)
    for p, r in zip(model.parameters(), ref):
        np.testing.assert_allclose(p.grad, r, rtol=2e-5, atol=1e-6 * float(np.abs(r).max()))


def test_a_workers_error_is_raised_here_naming_the_worker():
    manual_seed(0)
    model = LeNet5()
    x, y = batch(8)
    y[6] = 12  # in the worker's share only
    with DataParallel(model, workers=2) as dp:
        with pytest.raises(DataParallelError, match=r"data parallel: worker 1: DimError: cross_entropy: target "
                                                    r"values must lie in \[0, 10\)"):
            dp.forward_backward(x, y)
        y[6] = 3
        dp.forward_backward(x, y)  # the worker serves on


def test_a_killed_worker_is_a_clear_error_not_a_hang():
    manual_seed(0)
    model = LeNet5()
    x, y = batch(8)
    dp = DataParallel(model, workers=2, timeout=30)
    dp.forward_backward(x, y)
    (worker,) = dp.worker_processes
    os.kill(worker.pid, signal.SIGKILL)
    worker.join(10)
    with pytest.raises(DataParallelError, match=rf"data parallel: worker 1 \(pid {worker.pid}\) was killed by "
                                                r"SIGKILL; all workers were ended$"):
        dp.forward_backward(x, y)
    assert not dp.started
    dp.forward_backward(x, y)  # the next step starts new workers, as the docstring says
    assert dp.started and dp.worker_processes[0].pid != worker.pid
    dp.close()


def test_a_stopped_worker_is_seen_at_once_and_killed():
    """SIGSTOP: no answer will ever come, and terminate() cannot end it; it is killed."""
    manual_seed(0)
    model = LeNet5()
    x, y = batch(8)
    dp = DataParallel(model, workers=2, timeout=60)
    dp.forward_backward(x, y)
    (worker,) = dp.worker_processes
    os.kill(worker.pid, signal.SIGSTOP)
    start = time.monotonic()
    try:
        with pytest.raises(DataParallelError, match=rf"data parallel: worker 1 \(pid {worker.pid}\) is stopped "
                                                    r"\(SIGSTOP or SIGTSTP\); all workers were ended$"):
            dp.forward_backward(x, y)
        seconds = time.monotonic() - start
        assert worker.exitcode == -signal.SIGKILL  # ended and reaped, not orphaned
    finally:
        if worker.exitcode is None:
            os.kill(worker.pid, signal.SIGKILL)
    assert seconds < 10, f"took {seconds:.1f} s (the timeout is 60 s)"
    dp.close()


class SlowInWorkers(nn.Module):
    """Sleeps in every process but the one that made it."""

    def __init__(self):
        super().__init__()
        self.parent = os.getpid()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        if os.getpid() != self.parent:
            time.sleep(30)
        return self.fc(x)


def test_a_worker_that_does_not_answer_in_time_is_named_and_ended():
    dp = DataParallel(SlowInWorkers(), workers=2, timeout=0.5)
    x, y = np.zeros((4, 4), np.float32), np.zeros(4, np.int64)
    start = time.monotonic()
    with pytest.raises(DataParallelError, match=r"data parallel: worker 1 \(pid \d+\) did not answer within "
                                                r"0.5 s; all workers were ended$"):
        dp.forward_backward(x, y)
    assert time.monotonic() - start < 10 and not dp.started
    dp.close()


def test_close_stops_the_workers_and_the_model_trains_on_alone():
    manual_seed(0)
    model = LeNet5()
    x, y = batch(8)
    dp = DataParallel(model, workers=2)
    dp.forward_backward(x, y)
    procs = dp.worker_processes
    dp.close()
    dp.close()  # idempotent
    assert all(not p.is_alive() for p in procs)
    _, ref = one_process_gradients(model, x, y)  # parameters stay usable (in shared memory)
    assert all(np.isfinite(g).all() for g in ref)


def test_inputs_and_targets_of_different_batch_sizes_are_refused_before_any_work():
    x, y = batch(8)
    with DataParallel(LeNet5(), workers=2) as dp:
        with pytest.raises(ValueError, match=r"DataParallel: inputs of shape \(8, 1, 28, 28\) and targets of shape "
                                             r"\(6,\) do not make one batch"):
            dp.forward_backward(x, y[:6])
        assert not dp.started


def test_models_with_buffers_and_bad_worker_counts_are_refused():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    with pytest.raises(ValueError, match=r"DataParallel: the model has buffers \(1\.running_mean, 1\.running_var"):
        DataParallel(model, workers=2)
    DataParallel(model, workers=1).close()  # one process: nothing is shared
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="workers must be an integer >= 1"):
            DataParallel(LeNet5(), workers=bad)


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux's /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def is_gone(pid: int) -> bool:
    """Not running (a zombie waiting for its parent counts as running: it was not reaped)."""
    return not os.path.exists(f"/proc/{pid}")


@pytest.mark.parametrize("sig, what", [(signal.SIGKILL, "was killed by SIGKILL"),
                                       (signal.SIGSTOP, r"is stopped \(SIGSTOP or SIGTSTP\)")])
def test_train_py_exits_with_one_line_when_a_worker_dies_or_stops(tmp_path, sig, what):
    import re
    import subprocess
    import sys
    from pathlib import Path

    from test_digit_app import stop, wait_for_line

    from tinygrad_lenet.data import write_fake_dataset
    require(os.path.isdir("/proc"), "finding the workers needs Linux's /proc")
    write_fake_dataset(tmp_path / "data", n_train=4000, n_test=100)
    log, out = tmp_path / "log.txt", tmp_path / "run"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1")
    script = Path(__file__).resolve().parents[1] / "scripts" / "train.py"
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, str(script), "--dataset", str(tmp_path / "data"), "--workers", "2",
                                 "--epochs", "500", "--batch-size", "32", "--no-progress", "--out", str(out)],
                                env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_line(log, r"epoch 2: ", proc, timeout=120)  # epoch 1's checkpoint is written
        workers = children_of(proc.pid)
        assert len(workers) == 1, workers
        os.kill(workers[0], sig)
        code = proc.wait(timeout=60)
        text = log.read_text()
    finally:
        stop(proc)
        for pid in children_of(proc.pid):
            os.kill(pid, signal.SIGKILL)
    assert code == 1 and "Traceback" not in text, text
    last = text.strip().splitlines()[-1]
    assert re.fullmatch(rf"train.py: error: epoch \d+: data parallel: worker 1 \(pid {workers[0]}\) {what}; all "
                        rf"workers were ended; training stopped; continue from the last checkpoint with --resume "
                        rf"{re.escape(str(out / 'checkpoint.npz'))}", last), last
    assert is_gone(workers[0])
    from models import load_trained_model  # intact: the last finished epoch's, whole
    trained = load_trained_model(out / "checkpoint.npz")
    assert trained.checkpoint["extra"]["epoch"] == max(int(n) for n in re.findall(r"^epoch (\d+): ", text, re.M))
    assert trained.config.workers == 2

"""Data-parallel training over MPI (tinygrad_lenet.distributed): the sampler against
PyTorch's, the engine's end-of-backward callbacks, and real MPI jobs of 2 and 4 ranks
(shared memory and TCP over loopback) against one process, a killed rank, Ctrl+C on
mpiexec, and a rank that cannot read its data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import require_module
from mpi import ROOT, mpi_env, mpiexec, mpiexec_command, rank_pids

from tinygrad_lenet import Tensor, autograd
from tinygrad_lenet import distributed as dist
from tinygrad_lenet.checkpoint import load_checkpoint
from tinygrad_lenet.config import RunConfig
from tinygrad_lenet.data import DataLoader, TensorDataset, write_fake_dataset

STEPS = ROOT / "tests" / "mpi_programs" / "steps.py"
TRAIN = ROOT / "scripts" / "train.py"


# ---------------------------------------------------------------- without MPI
@pytest.mark.parametrize("n", [10, 11, 13, 3])
@pytest.mark.parametrize("replicas", [2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shares_are_pytorchs(n, replicas, drop_last):
    torch = require_module("torch", "pip install torch==2.13.0")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler
    for rank in range(replicas):
        ours = dist.DistributedSampler(n, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(torch.arange(n), num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_sampler_splits_the_loaders_shuffle_between_ranks():
    n, ranks = 1000, 4
    one = DataLoader(np.zeros((n, 28, 28), np.uint8), np.arange(n), shuffle=True, seed=7)
    for epoch in (0, 1):
        samplers = [dist.DistributedSampler(n, num_replicas=ranks, rank=r, seed=7) for r in range(ranks)]
        for s in samplers:
            s.set_epoch(epoch)
        shares = [list(s) for s in samplers]
        assert sorted(sum(shares, [])) == list(range(n))  # disjoint, and every sample once
        order = one.order(epoch)
        assert all(share == order[r::ranks].tolist() for r, share in enumerate(shares))
    assert list(samplers[0]) != (samplers[0].set_epoch(0) or list(samplers[0]))  # a new order each epoch


def test_loader_serves_a_samplers_indices():
    images, labels = np.arange(10, dtype=np.uint8).reshape(10, 1, 1).repeat(4, 1).reshape(10, 2, 2), np.arange(10)
    sampler = dist.DistributedSampler(10, num_replicas=3, rank=1, shuffle=False)
    loader = DataLoader(TensorDataset(images, labels), batch_size=2, sampler=sampler)
    assert len(loader) == 2 and [y.data.tolist() for _, y in loader] == [[1, 4], [7, 0]]  # padded with index 0
    with pytest.raises(ValueError, match="sampler gives the order"):
        DataLoader(images, labels, sampler=sampler, shuffle=True)
    with pytest.raises(IndexError, match="index 12 for a data set of 10"):
        list(DataLoader(images, labels, sampler=[0, 12]))


def test_without_a_process_group_the_error_says_what_to_call():
    for call in (dist.get_rank, dist.get_world_size, lambda: dist.DistributedSampler(10)):
        with pytest.raises(dist.DistributedError, match=r"init_process_group\(\) first"):
            call()


def test_world_size_is_read_from_the_launchers_environment(monkeypatch):
    for name in ("OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert dist.launched_world_size() == 1
    monkeypatch.setenv("PMI_SIZE", "3")
    assert dist.launched_world_size() == 3


def test_a_queued_callback_runs_once_every_gradient_is_in():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    seen = []
    out = (w * w).sum()
    out.register_hook(lambda g: autograd.queue_callback(lambda: seen.append(w.grad.copy())))
    (out * 3).backward()
    assert len(seen) == 1 and np.array_equal(seen[0], [6.0, 12.0])
    with pytest.raises(RuntimeError, match="no backward pass is running"):
        autograd.queue_callback(lambda: None)


# ---------------------------------------------------------------- MPI jobs
@pytest.fixture(scope="module")
def one_process_steps(tmp_path_factory, real_mnist_dir):
    """Per-step losses of one process (no MPI) for each style of program."""
    out = {}
    for style in ("loop", "ddp"):
        path = tmp_path_factory.mktemp("one") / f"{style}.json"
        subprocess.run([sys.executable, str(STEPS), str(path), "--style", style], check=True, cwd=ROOT,
                       env={**os.environ, "PYTHONWARNINGS": "error"}, timeout=240)
        out[style] = json.loads(path.read_text())["losses"]
    return out


@pytest.mark.parametrize("style,ranks,tcp", [("loop", 2, False), ("loop", 2, True), ("loop", 4, True),
                                              ("ddp", 2, False), ("ddp", 4, True)],
                         ids=["loop, 2 ranks, shared memory", "loop, 2 ranks, TCP",
                              "loop, 4 ranks on 2 cores (oversubscribed), TCP", "ddp, 2 ranks, shared memory",
                              "ddp, 4 ranks on 2 cores (oversubscribed), TCP"])
def test_ranks_train_as_one_process_does(tmp_path, one_process_steps, style, ranks, tcp):
    """50 steps of the default recipe: the same losses up to summation order, every rank's
    parameters bit-identical to rank 0's after every step (the program checks each step)."""
    path = tmp_path / "steps.json"
    mpiexec(ranks, STEPS, path, "--style", style, tcp=tcp)
    result = json.loads(path.read_text())
    assert result["ranks"] == ranks
    one, many = np.array(one_process_steps[style]), np.array(result["losses"])
    assert len(one) == len(many) == 50
    np.testing.assert_allclose(many, one, rtol=1e-5)


@pytest.mark.slow
def test_two_ranks_train_the_default_recipe_and_one_process_resumes_it(tmp_path):
    """`mpiexec -n 2 python scripts/train.py --batch-per-rank 32` (the job's batch: the
    default 64) on all of MNIST, stopped after epoch 3: rank 0 alone prints and writes,
    99.0% is reached by epoch 2 (weight averaging on every rank alike); one process
    resumes it, and the run ends >= 99.2% (one process alone: 99.25%, past 99.0% in
    epoch 2)."""
    assert RunConfig().batch_size == 64
    two = mpiexec(2, TRAIN, "--out", tmp_path, "--batch-per-rank", "32", "--stop-after", "3", timeout=600)
    assert two.stdout.count("epoch 1: ") == 1 and "batch=64 | 2 ranks (32 images per rank)" in two.stdout
    assert two.stderr.count("epoch 1/4:   0%|          | 0/938 ") == 1  # one progress bar (its first draw): rank 0's
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["ranks"] == 2 and metrics["epochs_to_target"] is not None and metrics["epochs_to_target"] <= 2
    one = subprocess.run([sys.executable, str(TRAIN), "--resume", str(tmp_path / "checkpoint.npz"), "--no-progress"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env=mpi_env())
    assert one.returncode == 0, one.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["ranks"] == 1 and len(metrics["epochs"]) == 4
    assert metrics["final_test_accuracy"] >= 0.992


def test_train_script_refuses_workers_under_mpi_and_batch_per_rank_without(tmp_path):
    proc = mpiexec(2, TRAIN, "--workers", "2", "--out", tmp_path, check=False, timeout=120)
    assert proc.returncode != 0 and "--workers: under MPI each rank is one process" in proc.stderr
    alone = subprocess.run([sys.executable, str(TRAIN), "--batch-per-rank", "64", "--out", str(tmp_path)],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert alone.returncode == 2 and "--batch-per-rank: only under MPI" in alone.stderr.strip().splitlines()[-1]


def start_training(tmp_path: Path, epochs: int = 6) -> tuple[subprocess.Popen, Path]:
    """mpiexec -n 2 train.py in the background; returns once its first checkpoint is on disk."""
    out = tmp_path / "run"
    proc = subprocess.Popen(mpiexec_command(2, TRAIN, "--train-subset", "8000", "--test-subset", "500", "--epochs",
                                            str(epochs), "--out", out, "--no-progress"),
                            cwd=ROOT, env=mpi_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not (out / "checkpoint.npz").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 180 s"
        time.sleep(0.1)
    return proc, out


def ended_within(proc: subprocess.Popen, seconds: float) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the job did not end within {seconds} s") from None


@pytest.mark.slow
def test_a_killed_rank_ends_the_job_and_the_checkpoint_resumes(tmp_path):
    proc, out = start_training(tmp_path)
    pids = rank_pids(str(out))
    assert sorted(pids) == [0, 1], pids
    os.kill(pids[1], signal.SIGKILL)  # mid-epoch 2
    stdout, stderr = ended_within(proc, 30)
    assert proc.returncode != 0
    assert "rank 1" in stderr and "signal 9" in stderr, stderr
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids.values())
    ckpt = load_checkpoint(out / "checkpoint.npz")  # intact: written atomically by rank 0
    assert ckpt["extra"]["epoch"] >= 1
    resumed = mpiexec(2, TRAIN, "--resume", out / "checkpoint.npz", "--stop-after", str(ckpt["extra"]["epoch"] + 1),
                      "--no-progress")
    assert f"epoch {ckpt['extra']['epoch'] + 1}: train loss" in resumed.stdout


@pytest.mark.slow
def test_ctrl_c_on_mpiexec_stops_every_rank(tmp_path):
    proc, out = start_training(tmp_path)
    pids = rank_pids(str(out))
    proc.send_signal(signal.SIGINT)
    ended_within(proc, 30)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids.values()), "a rank outlived mpiexec"
    assert load_checkpoint(out / "checkpoint.npz")["extra"]["epoch"] >= 1


def test_a_rank_that_cannot_read_the_data_ends_the_job(tmp_path):
    """Rank 1's data directory holds a truncated file: the job ends with that rank's error,
    not a hang (the other rank is waiting for it at the first broadcast)."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    write_fake_dataset(good, n_train=64, n_test=32)
    write_fake_dataset(bad, n_train=64, n_test=32)
    victim = sorted(bad.iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:50])
    args = ("--epochs", "1", "--no-progress", "--out", tmp_path / "out")
    command = mpiexec_command(1, TRAIN, "--dataset", good, *args)
    command += [":", "-n", "1", sys.executable, str(TRAIN), "--dataset", str(bad), *map(str, args)]
    start = time.monotonic()
    proc = subprocess.run(command, cwd=ROOT, env=mpi_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and time.monotonic() - start < 60
    assert f"train.py: error: rank 1 of 2: cannot load {bad}" in proc.stderr, proc.stderr
    assert victim.name in proc.stderr and "MPI_ABORT was invoked on rank 1" in proc.stderr, proc.stderr


def test_pytorchs_ddp_surface_and_a_missed_deadline():
    """tests/mpi_programs/api.py asserts each behaviour (broadcast at construction, averaged
    gradients, no_sync, buffers at forward, state_dict keys), then rank 1 never joins an
    allreduce: rank 0 raises at its 2 s deadline, names itself, and aborts the job."""
    start = time.monotonic()
    proc = mpiexec(2, ROOT / "tests" / "mpi_programs" / "api.py", check=False, timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "rank 0 of 2: all_reduce did not complete within 2 s: another rank stopped answering" in proc.stdout
    assert time.monotonic() - start < 15  # not rank 1's 20 s sleep


def test_the_distributed_example_trains_under_mpiexec(real_mnist_dir):
    """examples/distributed_mnist.py, PyTorch's DDP program shape, as its user runs it."""
    proc = mpiexec(2, ROOT / "examples" / "distributed_mnist.py", "--epochs", "1", "--train-subset", "2000",
                   "--test-subset", "500")
    assert proc.stdout.count("Train Epoch: 1 (2 ranks)") == 1 and proc.stdout.count("Test set:") == 1
    correct = int(proc.stdout.split("Accuracy: ")[1].split("/")[0])
    assert correct >= 0.7 * 500, proc.stdout  # well above chance after 2,000 images


class OneRank:
    """What train_one_epoch asks of a DistributedDataParallel, for a job of one rank: its
    allreduce returns the extras as they are (the gradients stay this rank's)."""
    rank, world_size = 0, 1

    @staticmethod
    def reduce_gradients(extras=()):
        return np.array(extras, dtype=np.float64)


def test_the_distributed_step_of_one_rank_is_the_plain_step():
    """The rank's share of the batch and of the outliers, weighted by its share, is the
    whole loss when the job has one rank: the same weights after two steps."""
    from models import build_model
    from tinygrad_lenet import manual_seed, optim
    from tinygrad_lenet.training import train_one_epoch

    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((16, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 16)) for _ in range(2)]
    outliers = rng.standard_normal((20, 1, 28, 28), dtype=np.float32)
    weights = []
    for distributed in (None, OneRank()):
        manual_seed(0)
        model = build_model("lenet5", {}, None)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        stats = train_one_epoch(model, batches, opt, outliers=outliers, outlier_rng=np.random.default_rng(1),
                                distributed=distributed)
        weights.append((stats.loss, [p.data.copy() for p in model.parameters()]))
    assert weights[0][0] == pytest.approx(weights[1][0], rel=1e-6)
    for a, b in zip(weights[0][1], weights[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="outlier_rng must be given"):  # the ranks must share one draw
        train_one_epoch(model, batches, opt, outliers=outliers, distributed=OneRank())

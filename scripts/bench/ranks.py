"""One rank of a data-parallel benchmark job, ours over MPI or PyTorch's DDP over gloo;
rank 0 prints one JSON line. Started by `scripts/bench/mpi.py` (`benchmark.py --mpi N`):

    mpiexec -n 2 python -m scripts.bench.ranks ours steps [--quick]
    RANK=0 WORLD_SIZE=2 MASTER_PORT=29500 python -m scripts.bench.ranks torch steps   # one per rank

steps: batch-128 training steps on random MNIST-shaped data, the job's batch split by
rows (every rank computes batch / ranks images), medians over blocks; for ours also the
allreduce's share. accuracy: train.py's default recipe on MNIST (no outlier exposure,
as the single-process time-to-accuracy benchmark), the same batches for both, training
seconds and test accuracy per epoch (the evaluation, on rank 0, is not timed).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

from models import build_model  # noqa: E402
from scripts.bench.common import make_torch, random_batches, summarize  # noqa: E402
from scripts.bench.time_to_accuracy import torch_averaged  # noqa: E402
from tinygrad_lenet import distributed as dist  # noqa: E402
from tinygrad_lenet import manual_seed  # noqa: E402
from tinygrad_lenet.config import RunConfig, build_averaged_model, build_optimizer, build_scheduler  # noqa: E402
from tinygrad_lenet.data import DATASETS, DataLoader, load_mnist, normalize_images  # noqa: E402
from tinygrad_lenet.training import evaluate, train_one_epoch  # noqa: E402

BATCH, STEPS, WARMUP = 128, 20, 3


def ours_setup(config: RunConfig) -> tuple[Any, Any, Any]:
    """Our LeNet-5 wrapped for MPI (rank 0's weights everywhere), its optimizer, the group."""
    group = dist.init_process_group()
    manual_seed(config.seed)
    model = build_model("lenet5", {}, (DATASETS["mnist"].mean, DATASETS["mnist"].std))
    return model, dist.DistributedDataParallel(model, group), build_optimizer(config, model.parameters())


def torch_setup(config: RunConfig, steps_per_epoch: int) -> tuple[Any, Any, Any, Any, int, int]:
    """PyTorch's LeNet-5 with our initial weights in DDP over gloo, one thread, its SGD and one-cycle."""
    import torch
    import torch.distributed as tdist
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{os.environ['MASTER_PORT']}", rank=rank,
                             world_size=size)
    manual_seed(config.seed)
    ours = build_model("lenet5", {}, (DATASETS["mnist"].mean, DATASETS["mnist"].std))
    _, model, _ = make_torch(ours, 1)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True,
                          weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch)
    return ddp, opt, sched, torch, rank, size


def torch_step(ddp: Any, opt: Any, torch: Any, smoothing: float) -> Callable[[np.ndarray, np.ndarray], None]:
    def step(x: np.ndarray, y: np.ndarray) -> None:
        loss = torch.nn.functional.cross_entropy(ddp(torch.from_numpy(x)), torch.from_numpy(y.astype(np.int64)),
                                                 label_smoothing=smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # averaged over the ranks (equal shares: the job's batch mean)
        opt.step()
    return step


def steps(framework: str, quick: bool = False) -> dict[str, Any] | None:
    config = RunConfig()
    batches = random_batches(BATCH, 4, seed=BATCH)
    allreduce: list[float] = []
    if framework == "ours":
        model, ddp, opt = ours_setup(config)
        rank, size = ddp.rank, ddp.world_size
        reduce = ddp.reduce_gradients

        def timed_reduce(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            out = reduce(*a, **k)
            allreduce.append(time.perf_counter() - start)
            return out
        ddp.reduce_gradients = timed_reduce  # type: ignore[method-assign]

        def step(x: np.ndarray, y: np.ndarray) -> None:
            train_one_epoch(model, [(x, y)], opt, distributed=ddp)
    else:
        ddp, opt, _, torch, rank, size = torch_setup(config, 1)
        torch_step_fn = torch_step(ddp, opt, torch, 0.0)

        def step(x: np.ndarray, y: np.ndarray) -> None:
            torch_step_fn(x[rank::size], y[rank::size])
    blocks, per_block, warmup = [], 2 if quick else STEPS, 1 if quick else WARMUP
    for k in range(warmup + (3 if quick else 15)):
        start = time.perf_counter()
        for i in range(per_block):
            x, y = batches[i % len(batches)]
            step(x, y)
        if k >= warmup:
            blocks.append((time.perf_counter() - start) / per_block)
    if rank != 0:
        return None
    out = dict(framework=framework, ranks=size, step=summarize(blocks))
    if allreduce:
        out["allreduce"] = summarize(allreduce[warmup * per_block:])
    return out


def accuracy(framework: str, quick: bool = False) -> dict[str, Any] | None:
    config = RunConfig()
    mean_std = (DATASETS["mnist"].mean, DATASETS["mnist"].std)
    train_x, train_y = load_mnist("train")
    test_x, test_y = load_mnist("test")
    test_images = normalize_images(test_x, normalize=mean_std)
    loader = DataLoader(train_x, train_y, batch_size=config.batch_size, shuffle=True, seed=config.seed,
                        normalize=mean_std)
    if framework == "ours":
        model, ddp, opt = ours_setup(config)
        scheduler, per_batch = build_scheduler(config, opt, len(loader))
        averaged = build_averaged_model(config, model)  # the recipe's average, the same on every rank
        rank, size = ddp.rank, ddp.world_size
    else:
        tddp, topt, tsched, torch, rank, size = torch_setup(config, len(loader))
        tstep = torch_step(tddp, topt, torch, config.label_smoothing)
        t_averaged = torch_averaged(torch, tddp.module, config)
    seconds, history, reached = 0.0, [], None
    for epoch in range(config.epochs):
        loader.set_epoch(epoch)
        batches = [(x.data, y.data) for x, y in loader]
        start = time.perf_counter()
        if framework == "ours":
            train_one_epoch(model, batches, opt, scheduler, per_batch, label_smoothing=config.label_smoothing,
                            distributed=ddp, averaged=averaged)
            ddp.group.barrier()
            seconds += time.perf_counter() - start
            tested = model if averaged is None else averaged
            acc = evaluate(tested, test_images, test_y)[1] if rank == 0 else None
        else:
            tddp.train()
            for x, y in batches:
                tstep(x[rank::size], y[rank::size])
                if t_averaged is not None:
                    t_averaged.update_parameters(tddp.module)
                tsched.step()
            torch.distributed.barrier()
            seconds += time.perf_counter() - start
            if rank == 0:
                tested = tddp.module if t_averaged is None else t_averaged
                tested.eval()
                with torch.no_grad():
                    acc = float((tested(torch.from_numpy(test_images)).argmax(1).numpy() == test_y).mean())
        if rank == 0:
            history.append(acc)
            if reached is None and acc >= config.target_accuracy:
                reached = dict(epoch=epoch + 1, seconds=seconds)
    if rank != 0:
        return None
    return dict(framework=framework, ranks=size, accuracy=history, seconds=seconds, reached=reached,
                target=config.target_accuracy)


if __name__ == "__main__":
    framework, mode = sys.argv[1], sys.argv[2]
    result = (steps if mode == "steps" else accuracy)(framework, quick="--quick" in sys.argv[3:])
    if result is not None:
        print(json.dumps(result), flush=True)

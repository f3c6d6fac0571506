"""Trains LeNet-5 for a number of steps on an MNIST subset, alone or as one rank of an
MPI job, and (rank 0) writes every step's loss as JSON; under MPI every step also
checks that all ranks hold bit-identical parameters.

    python tests/mpi_programs/steps.py OUT.json --style loop        # train_one_epoch, as train.py
    mpiexec -n 2 python tests/mpi_programs/steps.py OUT.json --style loop
    mpiexec -n 2 python tests/mpi_programs/steps.py OUT.json --style ddp   # PyTorch's DDP program shape

The default recipe of train.py (its one-cycle schedule laid out over a whole epoch).
--style loop: the job's batch is --batch, each rank computing its rows (train.py's way),
with outlier exposure. --style ddp: DistributedSampler + DistributedDataParallel +
loss.backward(), each rank's batch --batch / ranks, so the average of the ranks'
gradients is the gradient of the same --batch images one process sees.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

import tinygrad_lenet.functional as F  # noqa: E402
from models import build_model  # noqa: E402
from tinygrad_lenet import distributed as dist  # noqa: E402
from tinygrad_lenet import manual_seed  # noqa: E402
from tinygrad_lenet.config import RunConfig, build_optimizer, build_scheduler  # noqa: E402
from tinygrad_lenet.data import DataLoader, TensorDataset, load_mnist, normalize_images, not_digits  # noqa: E402
from tinygrad_lenet.training import train_one_epoch  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--style", choices=("loop", "ddp"), default="loop")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args()
    ranks = dist.launched_world_size()
    ddp = None
    manual_seed(0)
    model = build_model("lenet5", {}, (0.1307, 0.3081))
    if ranks > 1:
        dist.init_process_group(timeout=120)
        ddp = dist.DistributedDataParallel(model)
    images, labels = load_mnist("train")
    images, labels = images[:args.steps * args.batch], labels[:args.steps * args.batch]
    config = RunConfig()  # the default recipe, its schedule laid out over a whole MNIST epoch's steps
    optimizer = build_optimizer(config, model.parameters())
    scheduler, per_batch = build_scheduler(config, optimizer, -(-60_000 // args.batch))
    losses: list[float] = []
    rank = 0 if ddp is None else ddp.rank
    if args.style == "loop":
        loader = DataLoader(images, labels, batch_size=args.batch, shuffle=True, seed=3, normalize="mnist")
        outliers = normalize_images(not_digits(256, seed=1), normalize="mnist")

        def on_step(loss: float, accuracy: float, n: int) -> None:
            losses.append(loss)
            if ddp is not None:
                ddp.check_in_sync(f"after step {len(losses)}")
        train_one_epoch(model, loader, optimizer, scheduler, per_batch, on_step=on_step, outliers=outliers,
                        outlier_rng=np.random.default_rng(5), label_smoothing=config.label_smoothing, distributed=ddp)
    else:
        dataset = TensorDataset(images, labels)
        sampler = dist.DistributedSampler(dataset, seed=3) if ddp is not None else None
        loader = DataLoader(dataset, batch_size=args.batch // ranks, shuffle=sampler is None, seed=3,
                            normalize="mnist", sampler=sampler)
        net = ddp if ddp is not None else model
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(net(x), y, label_smoothing=config.label_smoothing)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total = np.array([loss.item()])
            if ddp is not None:  # the job's loss: the mean of the ranks' means (equal shares)
                dist.all_reduce(total)
                total /= ranks
                ddp.check_in_sync(f"after step {len(losses) + 1}")
            losses.append(float(total[0]))
    if rank == 0:
        args.out.write_text(json.dumps(dict(ranks=ranks, losses=losses)))


if __name__ == "__main__":
    main()

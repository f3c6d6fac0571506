#!/usr/bin/env python3
"""PyTorch's DistributedDataParallel pattern, on tinygrad_lenet over MPI: every rank
holds the whole model (`examples/pytorch_mnist.py`'s network), reads its share of the
training set through a DistributedSampler, and the gradients are averaged over the
ranks inside `loss.backward()`; rank 0 evaluates and prints.

    mpiexec -n 2 python examples/distributed_mnist.py
    mpiexec -n 2 python examples/distributed_mnist.py --epochs 1 --train-subset 2000 --test-subset 1000
    mpiexec --hostfile hosts -n 8 python examples/distributed_mnist.py     # several machines

A PyTorch program of this shape ports by changing its imports: `torch.distributed` is
`tinygrad_lenet.distributed`, whose `init_process_group()` reads the ranks from mpiexec
(no MASTER_ADDR, no backend to choose), and `DistributedDataParallel` and
`DistributedSampler` come from it too. `--batch-size` is each rank's batch, as in PyTorch.
"""

from __future__ import annotations

import argparse

from pytorch_mnist import Net, subset, test

import tinygrad_lenet as torch
import tinygrad_lenet.distributed as dist
import tinygrad_lenet.nn.functional as F
import tinygrad_lenet.optim as optim
from tinygrad_lenet.data import MNIST
from tinygrad_lenet.distributed import DistributedDataParallel as DDP
from tinygrad_lenet.distributed import DistributedSampler
from tinygrad_lenet.optim.lr_scheduler import StepLR


def main(argv=None):
    parser = argparse.ArgumentParser(description="DistributedDataParallel on tinygrad_lenet, over MPI")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="each rank's batch")
    parser.add_argument("--epochs", type=int, default=3, metavar="N")
    parser.add_argument("--lr", type=float, default=1.0, metavar="LR")
    parser.add_argument("--gamma", type=float, default=0.7, metavar="M")
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument("--train-subset", type=int, default=None, metavar="N")
    parser.add_argument("--test-subset", type=int, default=None, metavar="N")
    args = parser.parse_args(argv)

    dist.init_process_group()
    rank, world_size = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(args.seed)
    device = torch.device("cpu")

    train_set = subset(MNIST(train=True), args.train_subset)
    sampler = DistributedSampler(train_set, shuffle=True, seed=args.seed)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, sampler=sampler)
    test_loader = torch.utils.data.DataLoader(subset(MNIST(train=False), args.test_subset), batch_size=1000)

    model = DDP(Net().to(device))  # rank 0's weights, broadcast to every rank
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    accuracy = 0.0
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch)
        model.train()
        for data, target in train_loader:
            optimizer.zero_grad()
            loss = F.nll_loss(model(data), target)
            loss.backward()  # every rank's gradients averaged over the ranks
            optimizer.step()
        if rank == 0:
            print(f"Train Epoch: {epoch} ({world_size} ranks)\tLoss: {loss.item():.6f}")
            accuracy = test(model.module, device, test_loader)
        scheduler.step()
    dist.barrier()
    return accuracy


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch's MNIST example (the official examples repository's mnist/main.py), written
again for tinygrad_lenet: the program is PyTorch code, and only its imports differ.

    python examples/pytorch_mnist.py                # 14 epochs of Adadelta, about 99% test accuracy
    python examples/pytorch_mnist.py --epochs 1 --train-subset 2000 --test-subset 1000

The imports are the lines a port changes: `import tinygrad_lenet as torch` and the
project's MNIST dataset, which yields the normalized tensors that torchvision's
`ToTensor()` + `Normalize((0.1307,), (0.3081,))` give. `--train-subset` and
`--test-subset` are this copy's own options, for quick runs.
"""

from __future__ import annotations

import argparse

import tinygrad_lenet as torch
import tinygrad_lenet.nn as nn
import tinygrad_lenet.nn.functional as F
import tinygrad_lenet.optim as optim
from tinygrad_lenet.data import MNIST
from tinygrad_lenet.data import TensorDataset as _Subset
from tinygrad_lenet.optim.lr_scheduler import StepLR


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            seen = batch_idx * len(data)
            print(f"Train Epoch: {epoch} [{seen}/{len(train_loader.dataset)} "
                  f"({100.0 * batch_idx / len(train_loader):.0f}%)]\tLoss: {loss.item():.6f}")
            if args.dry_run:
                break


def test(model, device, test_loader):
    model.eval()
    test_loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    accuracy = correct / len(test_loader.dataset)
    print(f"\nTest set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{len(test_loader.dataset)} "
          f"({100.0 * accuracy:.0f}%)\n")
    return accuracy


def subset(dataset, n):
    """This copy's own helper: the first n samples (all when n is None)."""
    return dataset if n is None else _Subset(*(a[:n] for a in dataset.tensors))


def main(argv=None):
    parser = argparse.ArgumentParser(description="PyTorch's MNIST example, on tinygrad_lenet")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N")
    parser.add_argument("--test-batch-size", type=int, default=1000, metavar="N")
    parser.add_argument("--epochs", type=int, default=14, metavar="N")
    parser.add_argument("--lr", type=float, default=1.0, metavar="LR")
    parser.add_argument("--gamma", type=float, default=0.7, metavar="M")
    parser.add_argument("--no-cuda", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument("--log-interval", type=int, default=10, metavar="N")
    parser.add_argument("--save-model", action="store_true")
    parser.add_argument("--train-subset", type=int, default=None, metavar="N")
    parser.add_argument("--test-subset", type=int, default=None, metavar="N")
    args = parser.parse_args(argv)

    use_cuda = not args.no_cuda and torch.cuda.is_available()
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if use_cuda else "cpu")

    train_kwargs = {"batch_size": args.batch_size, "shuffle": True}
    test_kwargs = {"batch_size": args.test_batch_size}
    dataset1 = subset(MNIST(train=True), args.train_subset)
    dataset2 = subset(MNIST(train=False), args.test_subset)
    train_loader = torch.utils.data.DataLoader(dataset1, **train_kwargs)
    test_loader = torch.utils.data.DataLoader(dataset2, **test_kwargs)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    accuracy = 0.0
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch)
        accuracy = test(model, device, test_loader)
        scheduler.step()
    if args.save_model:
        torch.save(model.state_dict(), "mnist_cnn.npz")
    return accuracy


if __name__ == "__main__":
    main()

"""Two models written as PyTorch users write them, from one source for both frameworks
(`define(torch)` with PyTorch or with `tinygrad_lenet`): PyTorch's MNIST example network
and a GELU + depthwise-separable + LayerNorm network. For each, 1 thread, the same
initial weights and batch: a batch-128 training step (forward, loss, backward, SGD with
momentum), ours against PyTorch's, and the share of an MNIST epoch (60,000 training
images at batch 128, then the 10,000 test images at batch 1,000) spent evaluating,
from the measured times of one step and of one evaluation batch."""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from tinygrad_lenet import manual_seed

from .common import interleaved

BATCH, EVAL_BATCH = 128, 1000
TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000
STEP_LIMIT, EVAL_SHARE_LIMIT = 0.8, 15.0  # the bounds: step time / PyTorch's, evaluation's share (%)


def define(torch: Any) -> dict[str, Any]:
    """The two models' classes, written against `torch` (PyTorch or tinygrad_lenet)."""
    nn, F = torch.nn, torch.nn.functional

    class MnistExample(nn.Module):  # PyTorch's examples/mnist/main.py
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

    class SeparableGelu(nn.Module):  # GELU, a depthwise-separable convolution, LayerNorm
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 16, 3, padding=1)
            self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16)
            self.pointwise = nn.Conv2d(16, 32, 1)
            self.fc1 = nn.Linear(32 * 7 * 7, 128)
            self.norm = nn.LayerNorm(128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = F.max_pool2d(F.gelu(self.stem(x)), 2)
            x = F.max_pool2d(F.gelu(self.pointwise(self.depthwise(x))), 2)
            x = F.gelu(self.norm(self.fc1(torch.flatten(x, 1))))
            return F.log_softmax(self.fc2(x), dim=1)

    return {"MNIST example (conv 32, conv 64, dropout, linear)": MnistExample,
            "GELU + depthwise-separable conv + LayerNorm": SeparableGelu}


def bench_user_models(args: argparse.Namespace) -> dict[str, Any]:
    """Each model's step and evaluation batch, ours and PyTorch's, timed in alternating blocks."""
    import torch

    import tinygrad_lenet

    torch.set_num_threads(1)
    ours_defs, theirs_defs = define(tinygrad_lenet), define(torch)
    return {name: bench_model(torch, tinygrad_lenet, ours_defs[name], theirs_defs[name], args.repeats)
            for name in ours_defs}


def bench_model(torch: Any, ours_lib: Any, ours_cls: Any, theirs_cls: Any, repeats: int) -> dict[str, Any]:
    manual_seed(0)
    ours, theirs = ours_cls(), theirs_cls()
    with torch.no_grad():
        for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            q.copy_(torch.from_numpy(p.data))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)
    test = rng.standard_normal((EVAL_BATCH, 1, 28, 28), dtype=np.float32)
    ours_opt = ours_lib.optim.SGD(ours.parameters(), lr=0.01, momentum=0.9)
    theirs_opt = torch.optim.SGD(theirs.parameters(), lr=0.01, momentum=0.9)
    xt, yt, test_t = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(test)

    def step_ours() -> None:
        ours.train()
        ours_opt.zero_grad()
        ours_lib.nn.functional.nll_loss(ours(ours_lib.tensor(x)), y).backward()
        ours_opt.step()

    def step_theirs() -> None:
        theirs.train()
        theirs_opt.zero_grad()
        torch.nn.functional.nll_loss(theirs(xt), yt).backward()
        theirs_opt.step()

    def eval_ours() -> None:
        ours.eval()
        with ours_lib.no_grad():
            ours(ours_lib.tensor(test))

    def eval_theirs() -> None:
        theirs.eval()
        with torch.no_grad():
            theirs(test_t)

    times = interleaved({"ours": step_ours, "pytorch": step_theirs, "ours_eval": eval_ours,
                         "pytorch_eval": eval_theirs}, repeats=repeats, warmup=2)
    out: dict[str, Any] = {name: t["median_ms"] for name, t in times.items()}
    for who, step, batch in (("ours", "ours", "ours_eval"), ("pytorch", "pytorch", "pytorch_eval")):
        train_s = out[step] * math.ceil(TRAIN_IMAGES / BATCH) / 1e3
        eval_s = out[batch] * math.ceil(TEST_IMAGES / EVAL_BATCH) / 1e3
        out[f"{who}_eval_share"] = 100 * eval_s / (train_s + eval_s)
    out["ratio"] = out["ours"] / out["pytorch"]
    return out


def report_user_models(results: dict[str, Any]) -> None:
    print(f"\nTwo user models, 1 thread: a batch-{BATCH} training step (target: at most {STEP_LIMIT}x PyTorch's) and "
          f"the share of an MNIST epoch spent evaluating (target: at most {EVAL_SHARE_LIMIT:g}%)")
    print(f"  {'model':<52} {'ours ms':>8} {'PyTorch ms':>11} {'ratio':>6}  {'eval share: ours':>16} {'PyTorch':>8}")
    for name, r in results.items():
        verdict = "met" if r["ratio"] <= STEP_LIMIT and r["ours_eval_share"] <= EVAL_SHARE_LIMIT else "NOT MET"
        print(f"  {name:<52} {r['ours']:8.2f} {r['pytorch']:11.2f} {r['ratio']:5.2f}x  {r['ours_eval_share']:15.1f}% "
              f"{r['pytorch_eval_share']:7.1f}%  {verdict}")

#!/usr/bin/env python3
"""The docs' hand-written training loop (docs/guides/your-own-model.md), as a user's
own program would run it: LeNet-5, SGD with momentum, batch 128, 260 steps on one random batch. Prints the
median step time (s) of the last 200 steps as JSON.

    python scripts/plain_loop.py plain          # nothing set up, as a program that only imports us
    python scripts/plain_loop.py as-train.py    # malloc keeps freed memory, as train.py does

`benchmark.py --plain-program` runs it in fresh processes with and without
train.py's environment variables.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/: from the checkout, not installed

import numpy as np

from models import LeNet5
from tinygrad_lenet import Tensor, optim
from tinygrad_lenet import functional as F
from tinygrad_lenet.memory import retain_freed_memory


def main(argv: list[str]) -> int:
    if argv[:1] not in (["plain"], ["as-train.py"]):
        print("plain_loop.py: error: give plain or as-train.py", file=sys.stderr)
        return 2
    if argv[0] == "as-train.py":
        retain_freed_memory()
    model = LeNet5()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    times = []
    for _ in range(260):
        start = time.perf_counter()
        loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    print(json.dumps(float(np.median(times[60:]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

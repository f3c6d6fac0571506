"""Run under mpiexec -n 2: PyTorch's DDP surface used as PyTorch programs use it, each
behaviour checked by assertion (a failed one aborts the job with its message).

- construction broadcasts rank 0's parameters and buffers (the ranks start unequal);
- loss.backward() through the wrapper leaves the ranks' average gradient;
- inside no_sync() gradients stay local and accumulate; the next backward averages them all;
- in training mode rank 0's buffers are broadcast at every forward;
- state_dict keys start with "module.", as PyTorch's;
- a collective that a rank never joins misses its deadline: DistributedError, then abort.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

import tinygrad_lenet.nn as nn  # noqa: E402
from tinygrad_lenet import Tensor, manual_seed  # noqa: E402
from tinygrad_lenet import distributed as dist  # noqa: E402


def main() -> None:
    group = dist.init_process_group(timeout=60)  # generous while both ranks take part
    rank, size = dist.get_rank(), dist.get_world_size()
    assert size == 2, size
    manual_seed(rank)  # unequal on purpose
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2, momentum=0.0))  # momentum 0: forward leaves the running mean
    net[1].running_mean.data[...] = rank + 1
    model = dist.DistributedDataParallel(net)
    every = group.allgather(net[0].weight.data.ravel())
    assert np.array_equal(every[0], every[1]), "construction did not broadcast rank 0's weights"
    assert np.all(net[1].running_mean.data == 1), "construction did not broadcast rank 0's buffers"
    assert list(model.state_dict())[0] == "module.0.weight", list(model.state_dict())

    x = np.arange(12, dtype=np.float32).reshape(4, 3) * (rank + 1)  # each rank its own batch
    model(Tensor(x)).sum().backward()
    mine = np.array(net[0].weight.grad)
    # what each rank computed alone, then averaged by hand
    for p in net.parameters():
        p.grad = None
    with model.no_sync():
        model(Tensor(x)).sum().backward()
    local = np.array(net[0].weight.grad)
    both = group.allgather(local)
    assert not np.array_equal(both[0], both[1]), "inside no_sync the gradients must stay each rank's own"
    np.testing.assert_allclose(mine, both.mean(axis=0), rtol=1e-6)
    model(Tensor(x)).sum().backward()  # accumulated: local (no_sync) + local, then averaged over ranks
    np.testing.assert_allclose(net[0].weight.grad, 2 * both.mean(axis=0), rtol=1e-6)

    net[1].running_mean.data[...] = 5 + rank
    model(Tensor(x))
    assert np.all(net[1].running_mean.data == 5), "rank 0's buffers were not broadcast at the forward"

    group.barrier()
    group.timeout = 2.0
    if rank == 1:
        time.sleep(20)  # never joins: rank 0's allreduce misses its 2 s deadline
    try:
        dist.all_reduce(np.ones(3))
    except dist.DistributedError as e:
        print(e, flush=True)
        group.abort(3)
    raise AssertionError("the allreduce should have missed its deadline")


if __name__ == "__main__":
    main()

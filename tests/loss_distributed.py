"""Worker for the DDP test: each process trains on its half of the batch with SimLoss.

Run through ``torch.multiprocessing.spawn`` from ``test_loss.py``; DistributedDataParallel
averages the gradients, so after a few steps every process must hold the parameters a
single process gets by training on the whole batch.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from simloss import ClassOrder, SimLoss

C = 7
N = 24
STEPS = 4


def data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(11)
    return torch.randn(N, 5, generator=gen, dtype=torch.float64), torch.randint(
        0, C, (N,), generator=gen
    )


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(5, C).double()


def train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    criterion = SimLoss(ClassOrder(C, 0.6), label_smoothing=0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(STEPS):
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()


def worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        x, y = data()
        shard = slice(rank * N // world_size, (rank + 1) * N // world_size)
        model = DistributedDataParallel(make_model())
        train(model, x[shard], y[shard])
        torch.save(model.module.state_dict(), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()

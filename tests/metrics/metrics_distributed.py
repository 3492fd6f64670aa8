"""Worker for the torch.distributed test: each process updates the metrics on its own shard.

Run through ``torch.multiprocessing.spawn`` from ``test_metrics_modules.py``; every
process computes the metrics (a collective) and saves what it got, so the test can
compare each process's result with the value on the whole set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from simloss import ClassOrder
from simloss.metrics import (
    Accuracy,
    AverageHierarchicalDistance,
    AverageMeanAbsoluteError,
    ClassHierarchy,
    CohenKappa,
    FailedSuperclassAccuracy,
    HierarchicalF1,
    MaximumMeanAbsoluteError,
    MeanAbsoluteError,
    MeanPredictedDistribution,
    MeanSimilarity,
    MeanSquaredError,
    MinimumSensitivity,
    MistakeSeverity,
    OffByKAccuracy,
    RankedProbabilityScore,
    SuperclassAccuracy,
)

C = 6
N = 60
SHARDS = [13, 47]  # uneven on purpose
IGNORE = -100


def data() -> tuple[torch.Tensor, torch.Tensor]:
    """The whole set: logits (N, C) float64 and targets (N,), some ignored."""
    rng = np.random.default_rng(2020)
    logits = torch.from_numpy(rng.normal(size=(N, C)))
    target = torch.from_numpy(rng.integers(0, C, N))
    target[::7] = IGNORE
    return logits, target


def make_metrics() -> dict[str, Any]:
    mapping = [0, 0, 1, 1, 2, 2]
    distance = (np.arange(C)[:, None] - np.arange(C)[None, :]) ** 2.0
    return {
        "acc": Accuracy(ignore_index=IGNORE),
        "top2": Accuracy(2, ignore_index=IGNORE),
        "mae": MeanAbsoluteError(class_values=np.arange(C) * 5.0, ignore_index=IGNORE),
        "mse": MeanSquaredError(ignore_index=IGNORE),
        "off1": OffByKAccuracy(1, ignore_index=IGNORE),
        "sa": SuperclassAccuracy(mapping, ignore_index=IGNORE),
        "fsa": FailedSuperclassAccuracy(mapping, ignore_index=IGNORE),
        "sim": MeanSimilarity(ClassOrder(C, 0.5), ignore_index=IGNORE),
        "severity": MistakeSeverity(distance, ignore_index=IGNORE),
        "dist": MeanPredictedDistribution(C, ignore_index=IGNORE),
        "qwk": CohenKappa(num_classes=C, ignore_index=IGNORE),
        "amae": AverageMeanAbsoluteError(num_classes=C, ignore_index=IGNORE),
        "mmae": MaximumMeanAbsoluteError(num_classes=C, ignore_index=IGNORE, decoder="median"),
        "rps": RankedProbabilityScore(ignore_index=IGNORE),
        "ms": MinimumSensitivity(num_classes=C, ignore_index=IGNORE),
        "hdist": AverageHierarchicalDistance(
            ClassHierarchy.from_superclasses(mapping), top_k=2, ignore_index=IGNORE
        ),
        "hf": HierarchicalF1(ClassHierarchy.from_superclasses(mapping), ignore_index=IGNORE),
        "acc_min_risk": Accuracy(ignore_index=IGNORE, decoder="min_risk", cost=distance),
    }


def results(metrics: dict[str, Any]) -> dict[str, torch.Tensor]:
    out = {}
    for name, metric in metrics.items():
        value = metric.compute()
        if name == "dist":
            out["dist.mean"], out["dist.per_class"], out["dist.counts"] = value
        else:
            out[name] = value
    return out


def worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        logits, target = data()
        start = sum(SHARDS[:rank])
        shard = slice(start, start + SHARDS[rank])
        metrics = make_metrics()
        for metric in metrics.values():
            metric.update(logits[shard], target[shard])
        first = results(metrics)
        second = results(metrics)  # compute must not fold the synced sums into the states
        torch.save({"first": first, "second": second}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()

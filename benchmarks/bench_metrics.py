"""Time of simloss's metrics against torchmetrics (or a plain argmax) on the same inputs.

Baselines, measured in the same run on the same float32 scores (N, C) and
int64 targets, single-threaded:

  accuracy     torchmetrics ``multiclass_accuracy(x, y, num_classes=C, average="micro")``
               (its defaults, argument validation on), and a plain
               ``(x.argmax(1) == y).double().mean()``
  Accuracy     torchmetrics ``MulticlassAccuracy(num_classes=C, average="micro").update``
  MAE          torchmetrics ``mean_absolute_error(v[x.argmax(1)], v[y])`` (what a
               torchmetrics user writes for MAE in class-value units), and the plain
               ``(v[x.argmax(1)] - v[y]).abs().mean()``
  QWK          torchmetrics ``multiclass_cohen_kappa(x, y, C, weights="quadratic")``
  CohenKappa   torchmetrics ``MulticlassCohenKappa(C, weights="quadratic").update``

against ``simloss.metrics.accuracy``, ``Accuracy().update``,
``mean_absolute_error(x, y, class_values=v)``, ``cohen_kappa(x, y)`` and
``CohenKappa(num_classes=C).update``, which validate their inputs and refuse NaN
scores. simloss's classes are torchmetrics ``Metric`` subclasses (torchmetrics is a
dependency of simloss), so the ``update`` rows compare the statistics and checks,
not the state machinery. Without torchmetrics the plain baselines stand in.

Each implementation is called in interleaved rounds (rotating order) so that
machine noise hits all alike; printed per shape: the median time of each and
the ratio of medians simloss / baseline (torchmetrics, and the plain argmax
where there is one), as min-max over ``--repeats`` independent repeats.
Target: <= 1.2x torchmetrics.

Run: python benchmarks/bench_metrics.py [--rounds 60] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchmetrics
from torchmetrics.classification import MulticlassAccuracy, MulticlassCohenKappa
from torchmetrics.functional import mean_absolute_error as tm_mae
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_cohen_kappa

from simloss.metrics import Accuracy, CohenKappa, accuracy, cohen_kappa, mean_absolute_error

SHAPES = [(1024, 10), (1024, 100), (4096, 100), (1024, 1000), (256, 10_000)]


def implementations(
    x: torch.Tensor, y: torch.Tensor, v: torch.Tensor
) -> dict[str, dict[str, Callable[[], object]]]:
    """Per metric: simloss first, then the baselines."""
    num_classes = x.shape[1]
    ours_state = Accuracy().to(x.device)
    groups: dict[str, dict[str, Callable[[], object]]] = {
        "accuracy": {
            "simloss": lambda: accuracy(x, y),
            "plain argmax": lambda: (x.argmax(1) == y).double().mean(),
        },
        "Accuracy.update": {"simloss": lambda: ours_state.update(x, y)},
        "MAE (class values)": {
            "simloss": lambda: mean_absolute_error(x, y, class_values=v),
            "plain argmax": lambda: (v[x.argmax(1)] - v[y]).abs().mean(),
        },
    }
    if num_classes <= 1000:  # a (C, C) confusion matrix: not at C = 10,000
        kappa_state = CohenKappa(num_classes=num_classes).to(x.device)
        groups["QWK"] = {"simloss": lambda: cohen_kappa(x, y)}
        groups["CohenKappa.update"] = {"simloss": lambda: kappa_state.update(x, y)}
    tm_state = MulticlassAccuracy(num_classes=num_classes, average="micro").to(x.device)
    groups["accuracy"]["torchmetrics"] = lambda: multiclass_accuracy(
        x, y, num_classes=num_classes, average="micro"
    )
    groups["Accuracy.update"]["torchmetrics"] = lambda: tm_state.update(x, y)
    groups["MAE (class values)"]["torchmetrics"] = lambda: tm_mae(v[x.argmax(1)], v[y])
    if "QWK" in groups:
        tm_kappa = MulticlassCohenKappa(num_classes, weights="quadratic").to(x.device)
        groups["QWK"]["torchmetrics"] = lambda: multiclass_cohen_kappa(
            x, y, num_classes, weights="quadratic"
        )
        groups["CohenKappa.update"]["torchmetrics"] = lambda: tm_kappa.update(x, y)
    return groups


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def medians(
    impls: dict[str, Callable[[], object]], rounds: int, device: torch.device
) -> dict[str, float]:
    names = list(impls)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up
        impls[name]()
    for k in range(rounds):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            sync(device)
            start = time.perf_counter()
            impls[name]()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(series) for name, series in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    baseline = "torchmetrics"
    print(
        f"simloss metrics against torchmetrics {torchmetrics.__version__}, {device}, 1 thread, float32 scores; "
        f"median of {args.rounds} interleaved rounds, ratio min-max over {args.repeats} repeats"
    )
    header = (
        f"{'metric':<20} {'N x C':>11} {'simloss':>10} {baseline:>13} {'ratio':>12} "
        f"{'plain argmax':>13} {'ratio':>12}"
    )
    print(header)
    print("-" * len(header))
    for n, c in SHAPES:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(n, c, generator=gen).to(device)
        y = torch.randint(0, c, (n,), generator=gen).to(device)
        v = (torch.arange(c, dtype=torch.float64) + 1).to(device)
        for metric, impls in implementations(x, y, v).items():
            runs = [medians(impls, args.rounds, device) for _ in range(args.repeats)]
            cells = [f"{metric:<20} {f'{n}x{c}':>11}"]
            cells.append(f"{statistics.median(run['simloss'] for run in runs) * 1e6:8.0f}us")
            for name in (baseline, "plain argmax"):
                if name == "plain argmax" and (name == baseline or name not in impls):
                    cells.append(f"{'-':>13} {'-':>12}")
                    continue
                ratios = [run["simloss"] / run[name] for run in runs]
                theirs = statistics.median(run[name] for run in runs)
                cells.append(f"{theirs * 1e6:11.0f}us {min(ratios):5.2f}-{max(ratios):.2f}x")
            print(" ".join(cells))


if __name__ == "__main__":
    main()

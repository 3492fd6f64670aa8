"""Time to build the class-order matrix: ``class_order`` against the paper's Python double loop.

Baseline: the paper's construction of Eq. 2, a Python double loop that fills
a float32 numpy matrix one entry at a time with ``r ** abs(i - j)``. The loop
is quadratic, so it is timed at ``--loop-classes`` (1,000 by default) and
extrapolated to ``--classes`` (10,000) by the factor (C / C_loop)^2; pass
``--loop-classes 10000`` to time it directly (minutes). ``class_order`` is
timed at ``--classes`` directly (best of ``--repeats``). Printed: both times,
the ratio loop / class_order, and a check that the two constructions give the
same matrix at the loop's size.

Also printed, for scale: the other dense builders of ``simloss.similarity``
at the same C (``from_values`` on 0..C-1, ``from_embeddings`` on random
100-d vectors).

Run: python benchmarks/bench_similarity.py [--classes 10000] [--loop-classes 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from simloss.similarity import class_order, from_embeddings, from_values


def paper_loop(num_classes: int, r: float) -> np.ndarray:
    """Eq. 2 the way the paper's code builds it: one Python assignment per entry."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.float32)
    for i in range(num_classes):
        for j in range(num_classes):
            matrix[i, j] = r ** abs(i - j)
    return matrix


def best_time(build: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        build()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=10_000)
    parser.add_argument("--loop-classes", type=int, default=1_000)
    parser.add_argument("--r", type=float, default=0.9)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # a fair comparison with a single-threaded loop

    big, small, r = args.classes, args.loop_classes, args.r
    loop_matrix = paper_loop(small, r)
    same = np.array_equal(loop_matrix, class_order(small, r).numpy())
    max_diff = float(np.abs(loop_matrix - class_order(small, r).numpy()).max())
    loop_small = best_time(lambda: paper_loop(small, r), 1)
    loop_big = loop_small * (big / small) ** 2
    ours = best_time(lambda: class_order(big, r), args.repeats)

    print(f"class-order matrix, r = {r}, float32, 1 torch thread")
    print(f"  paper double loop, C = {small:>6,}: {loop_small:10.3f} s (timed)")
    how = "timed" if small == big else f"extrapolated x (C / {small:,})^2"
    print(f"  paper double loop, C = {big:>6,}: {loop_big:10.3f} s ({how})")
    print(f"  class_order,       C = {big:>6,}: {ours:10.3f} s (best of {args.repeats})")
    print(f"  ratio loop / class_order at C = {big:,}: {loop_big / ours:,.0f}x")
    print(
        f"  same matrix at C = {small:,}: {'yes, bit for bit' if same else 'no'} "
        f"(max abs difference {max_diff:.3g})"
    )

    values = np.arange(big, dtype=np.float64)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(big, 100)).astype(np.float32)
    print(f"other dense builders at the same C (best of {args.repeats}, 1 torch thread):")
    timed = best_time(lambda: from_values(values, r), args.repeats)
    print(f"  from_values(0..C-1, r):           {timed:8.3f} s")
    timed = best_time(lambda: from_embeddings(vectors, 0.5), args.repeats)
    print(f"  from_embeddings(C x 100, l=0.5):  {timed:8.3f} s")


if __name__ == "__main__":
    main()

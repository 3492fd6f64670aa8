"""Time to build the class-order matrix: ``class_order`` against the paper's Python double loop.

Baseline: the paper's construction of Eq. 2, a Python double loop that fills
a float32 numpy matrix one entry at a time with ``r ** abs(i - j)``. The loop
is quadratic, so it is timed at ``--loop-classes`` (1,000 by default) and
extrapolated to ``--classes`` (10,000) by the factor (C / C_loop)^2; pass
``--loop-classes 10000`` to time it directly (minutes). ``class_order`` is
timed at ``--classes`` directly (best of ``--repeats``). Printed: both times,
the ratio loop / class_order, and a check that the two constructions give the
same matrix at the loop's size.

``from_values`` against its baseline, the plain one-line float32 formula
``torch.tensor(r) ** (v[:, None] - v[None, :]).abs()`` on the same values
(``--value-classes`` values, 10,000 by default, each a quarter-integer so
both see the same exact distances): the two are timed in interleaved rounds
(``--repeats``), and printed are min / median / max of each, the ratio of the
medians (target: <= 1.2x), and how far the values differ (relative, where
both are normal float32 numbers; ``from_values`` rounds the float64 value
once and cuts subnormal entries to 0).

Also printed, for scale: ``from_embeddings`` on random 100-d vectors at C.

Run: python benchmarks/bench_similarity.py [--classes 10000] [--loop-classes 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
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
    parser.add_argument("--value-classes", type=int, default=10_000)
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

    print(
        f"from_values against the plain float32 formula, C = {args.value_classes:,}, r = {r}, "
        f"{args.repeats} interleaved rounds, 1 torch thread:"
    )
    rng = np.random.default_rng(0)
    values = np.sort(rng.permutation(4 * args.value_classes)[: args.value_classes]) / 4.0
    v32 = torch.from_numpy(values).float()
    base = torch.tensor(r, dtype=torch.float32)

    def plain() -> torch.Tensor:
        return base ** (v32[:, None] - v32[None, :]).abs()

    times: dict[str, list[float]] = {"plain float32 one-liner": [], "from_values": []}
    for _ in range(args.repeats):
        times["plain float32 one-liner"].append(best_time(plain, 1))
        times["from_values"].append(best_time(lambda: from_values(values, r), 1))
    for name, series in times.items():
        print(
            f"  {name:<24} min {min(series):7.3f} s, median {statistics.median(series):7.3f} s, "
            f"max {max(series):7.3f} s"
        )
    ratio = statistics.median(times["from_values"]) / statistics.median(
        times["plain float32 one-liner"]
    )
    print(f"  ratio from_values / plain (medians): {ratio:.2f}x (target <= 1.2x)")
    ours, theirs = from_values(values, r), plain()
    tiny = torch.finfo(torch.float32).smallest_normal
    both = (ours > 0) & (theirs >= tiny)
    relative = ((ours - theirs).abs() / ours.clamp_min(tiny))[both]
    drift = "" if float(np.float32(r)) == r else f" (r = {r} is inexact in float32: plain drifts)"
    print(
        f"  same values: max relative difference {float(relative.max()):.2e} where both are "
        f"normal{drift}; {int(((theirs > 0) & (theirs < tiny)).sum()):,} subnormal entries of "
        f"plain are 0 in from_values; {int((both != (theirs >= tiny)).sum())} other differences"
    )

    vectors = rng.normal(size=(big, 100)).astype(np.float32)
    timed = best_time(lambda: from_embeddings(vectors, 0.5), args.repeats)
    print(f"from_embeddings(C x 100, l=0.5), C = {big:,}: {timed:8.3f} s (best of {args.repeats})")


if __name__ == "__main__":
    main()

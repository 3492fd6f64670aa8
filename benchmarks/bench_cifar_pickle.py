"""Cost of bounding a CIFAR-100 pickle's allocations against plain unpickling.

Input: a synthetic ``train`` pickle of the official size and layout (50,000
random uint8 rows of 3,072 bytes, fine and coarse label lists, file names),
written with protocol 2 (as Python 3 writes the official format: bytes go
through ``_codecs.encode``) and protocol 4. Baseline: ``pickle.loads`` (no
checks at all). Compared: the size scan alone (every length field and memo
index against the bytes that follow) and the whole restricted read
(``simloss.experiments.data.cifar100._unpickle``: scan, allowed globals only,
numeric arrays of at most the pickle's size).

Run::

    python benchmarks/bench_cifar_pickle.py
"""

from __future__ import annotations

import argparse
import pickle
import time
from collections.abc import Callable

import numpy as np

from simloss.experiments.data.cifar100 import _check_pickle_sizes, _unpickle


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    n = 50_000
    content = {
        b"filenames": [f"image_{i:05d}.png".encode() for i in range(n)],
        b"batch_label": b"training batch 1 of 1",
        b"fine_labels": rng.integers(0, 100, n).tolist(),
        b"coarse_labels": rng.integers(0, 20, n).tolist(),
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
    }
    print(f"{'pickle':22s} {'MB':>7s} {'what':26s} {'seconds':>8s} {'ratio':>7s}")
    for protocol in (2, 4):
        data = pickle.dumps(content, protocol=protocol)
        base = best_of(lambda data=data: pickle.loads(data), args.repeats)  # type: ignore[misc]
        scan = best_of(lambda data=data: _check_pickle_sizes(data, "x"), args.repeats)  # type: ignore[misc]
        whole = best_of(lambda data=data: _unpickle(data, "x"), args.repeats)  # type: ignore[misc]
        label = f"train, protocol {protocol}"
        for what, seconds in [
            ("pickle.loads (baseline)", base),
            ("size scan alone", scan),
            ("restricted read (all)", whole),
        ]:
            print(
                f"{label:22s} {len(data) / 1e6:7.1f} {what:26s} {seconds:8.3f} {seconds / base:7.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Cost of the image cache's content key against the old key of paths and sizes (UTKFace).

The decoded-image cache (``simloss.experiments.data._images``) is found by a key.
Baseline ("old key"): the key before this change, a SHA-256 of every file's
relative path and byte size (one ``stat`` per file); it serves stale pixels
when a file is replaced by another of the same size. Compared with it:

- "stat key": path, size, ``st_mtime_ns`` and ``st_ino`` (what build tools such
  as make/ninja/ccache's direct mode rely on); it still misses a same-size
  rewrite in place whose time stamp is restored (``cp -p``, ``rsync -t``,
  ``tar x`` keep time stamps);
- "content key": :func:`cache_key`, SHA-256 of every file's path and bytes
  (what the cache uses);
- "load from cache (np.load)": reading the decoded images back;
- "load_utkface from cache": a whole cached load as training does it (list,
  key, read, split, standardisation statistics);
- "first load_utkface": the first, uncached load (decode and write).

Every key is computed ``--repeats`` times, alternating, and the best time is
reported (the files are then in the page cache, as on any second run).

Run::

    python benchmarks/bench_cache_key.py --data-dir ../shared/data/utkface/crop_part1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from simloss.experiments.data._images import cache_key
from simloss.experiments.data.utkface import list_utkface, load_utkface


def old_key(source: Path, files: list[Path], size: int) -> str:
    """The key before the change: relative paths and byte sizes."""
    entries = [[str(p.relative_to(source)), p.stat().st_size] for p in files]
    payload = json.dumps({"files": entries, "size": size}, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def stat_key(source: Path, files: list[Path], size: int) -> str:
    """Paths, sizes, modification times and inodes."""
    entries = []
    for p in files:
        st = p.stat()
        entries.append([str(p.relative_to(source)), st.st_size, st.st_mtime_ns, st.st_ino])
    payload = json.dumps({"files": entries, "size": size}, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="a UTKFace folder")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    source = args.data_dir
    files, ages = list_utkface(source)
    files = [f for f, age in zip(files, ages, strict=True) if 1 <= age <= 90]  # the cached list
    megabytes = sum(p.stat().st_size for p in files) / 1e6
    size = 60
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch)
        start = time.perf_counter()
        load_utkface(source, cache_dir=cache)
        decode_s = time.perf_counter() - start
        (cache_file,) = cache.glob("utkface-*.npz")

        def load_cached() -> None:
            with np.load(cache_file) as cached:
                cached["images"]

        cache_key(source, files, size)  # warm the page cache
        keys: dict[str, Callable[[], object]] = {
            "old key (paths + sizes)": lambda: old_key(source, files, size),
            "stat key": lambda: stat_key(source, files, size),
            "content key": lambda: cache_key(source, files, size),
        }
        timings = dict.fromkeys(keys, float("inf"))
        for _ in range(args.repeats):  # alternate, so load changes hit all alike
            for name, fn in keys.items():
                timings[name] = min(timings[name], best_of(fn, 1))
        load_s = best_of(load_cached, args.repeats)
        whole_s = best_of(lambda: load_utkface(source, cache_dir=cache), args.repeats)
    baseline = timings["old key (paths + sizes)"]
    print(f"{source}: {len(files)} files, {megabytes:.1f} MB; best of {args.repeats}")
    print(f"{'what':34s} {'seconds':>8s} {'ratio':>7s}")
    for name, seconds in timings.items():
        print(f"{name:34s} {seconds:8.3f} {seconds / baseline:7.2f}")
    for name, seconds in [
        ("load from cache (np.load)", load_s),
        ("load_utkface from cache", whole_s),
        ("first load_utkface (decode)", decode_s),
    ]:
        print(f"{name:34s} {seconds:8.3f} {seconds / baseline:7.2f}")
    extra = timings["content key"] - baseline
    print(
        f"content key over the old key: +{extra:.3f} s = {extra / whole_s:+.1%} of a cached "
        f"load_utkface, {extra / decode_s:+.2%} of a first load"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

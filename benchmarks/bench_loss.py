"""Forward + backward time and peak memory of SimLoss against F.cross_entropy.

Baseline: ``torch.nn.functional.cross_entropy`` on the same logits and
targets, timed interleaved with the other implementations in the same run
(rounds of one call each, in rotating order), so machine noise hits all of
them alike. Printed: the median time of each implementation divided by the
baseline's median, and the peak extra resident memory of one forward+backward
(measured in a fresh subprocess per implementation) divided by the baseline's.

Implementations:
  simloss-dense    sim_loss with a dense (C, C) class-order matrix
  simloss-order    sim_loss with ClassOrder (no C x C matrix)
  paper            the paper's code: softmax, S[y] . p, -log(. + 1e-8) (wrong for confident mistakes)

Run: python benchmarks/bench_loss.py [--repeats 30] [--no-memory] [--device cuda]
(on CUDA, memory is the peak of torch.cuda.max_memory_allocated above the inputs)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from simloss import ClassOrder, sim_loss
from simloss.similarity import class_order

SHAPES = [(1024, 10), (1024, 100), (4096, 100), (1024, 1000), (64, 100_000)]
R = 0.7
DEVICE = torch.device("cpu")
DENSE_LIMIT = 20_000  # a dense float32 S above this many classes is not built (C = 1e5: 40 GB)


def paper_loss(logits: torch.Tensor, target: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    probs = torch.softmax(logits, dim=1)
    return -torch.log((S[target] * probs).sum(1) + 1e-8).mean()


def implementations(
    num_classes: int,
) -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    impls: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "cross_entropy": lambda z, y: F.cross_entropy(z, y),
    }
    order = ClassOrder(num_classes, R).to(DEVICE)
    if num_classes <= DENSE_LIMIT:
        dense = class_order(num_classes, R, device=DEVICE)
        impls["simloss-dense"] = lambda z, y: sim_loss(z, y, dense, validate=False)
        impls["paper"] = lambda z, y: paper_loss(z, y, dense)
    impls["simloss-order"] = lambda z, y: sim_loss(z, y, order)
    return impls


def make_inputs(n: int, num_classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, num_classes, generator=gen) * 2).to(DEVICE).requires_grad_()
    target = torch.randint(0, num_classes, (n,), generator=gen).to(DEVICE)
    return logits, target


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def step(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    z: torch.Tensor,
    y: torch.Tensor,
    calls: int = 1,
) -> float:
    """Seconds per forward+backward, averaged over ``calls`` back-to-back calls."""
    synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        z.grad = None
        fn(z, y).backward()
    synchronize()
    return (time.perf_counter() - start) / calls


def time_shape(n: int, num_classes: int, repeats: int) -> dict[str, float]:
    """Median time per call of each implementation, in rotating interleaved order.

    Each sample is a block of back-to-back calls lasting about 5 ms for the
    baseline, so timer resolution and single scheduler hiccups average out.
    """
    z, y = make_inputs(n, num_classes)
    impls = implementations(num_classes)
    names = list(impls)
    for name in names:  # warm-up
        step(impls[name], z, y, calls=3)
    calls = max(1, min(200, round(5e-3 / step(impls["cross_entropy"], z, y, calls=5))))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeats):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            samples[name].append(step(impls[name], z, y, calls=calls))
    return {name: statistics.median(values) for name, values in samples.items()}


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def reset_peak_rss() -> None:
    """Reset the kernel's resident-set high-water mark (VmHWM) of this process."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM not found in /proc/self/status")


def memory_child(name: str, n: int, num_classes: int) -> None:
    """Print the peak extra resident memory of one forward+backward (run in a fresh process)."""
    z, y = make_inputs(n, num_classes)
    fn = implementations(num_classes)[name]
    fn(z, y).backward()  # first call: one-time allocations (thread pools, caches)
    z.grad = None
    before = rss_bytes()
    reset_peak_rss()
    fn(z, y).backward()
    print(json.dumps({"extra_bytes": max(peak_rss_bytes() - before, 0)}))


def measure_memory(name: str, n: int, num_classes: int) -> int:
    if DEVICE.type == "cuda":
        z, y = make_inputs(n, num_classes)
        fn = implementations(num_classes)[name]
        fn(z, y).backward()
        z.grad = None
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn(z, y).backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    # Every allocation above 16 KiB gets its own mapping, returned on free, so the
    # resident set follows live tensor memory and its high-water mark is the peak.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "16384"}
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", name, str(n), str(num_classes)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return int(json.loads(out.stdout.strip().splitlines()[-1])["extra_bytes"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument(
        "--memory-child", nargs=3, metavar=("IMPL", "N", "C"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if args.memory_child:
        name, n, c = args.memory_child
        memory_child(name, int(n), int(c))
        return

    where = (
        torch.cuda.get_device_name()
        if DEVICE.type == "cuda"
        else f"{torch.get_num_threads()} CPU threads"
    )
    print(f"torch {torch.__version__}, {where}, float32, r = {R}")
    print(
        "baseline: F.cross_entropy; time = median forward+backward / baseline median; "
        "memory = peak extra memory of one step / baseline's\n"
    )
    header = f"{'(N, C)':>14} {'implementation':>15} {'CE ms':>8} {'time x CE':>10} {'peak KiB':>9} {'mem x CE':>9}"
    print(header)
    print("-" * len(header))
    for n, num_classes in SHAPES:
        repeats = args.repeats if n * num_classes <= 5_000_000 else max(10, args.repeats // 2)
        medians = time_shape(n, num_classes, repeats)
        base = medians["cross_entropy"]
        memory: dict[str, int] = {}
        if not args.no_memory:
            for name in medians:
                memory[name] = measure_memory(name, n, num_classes)
        for name, value in medians.items():
            if name == "cross_entropy":
                continue
            mem = (
                f"{memory[name] / 2**10:9.0f} {memory[name] / max(memory['cross_entropy'], 1):9.2f}"
                if memory
                else f"{'-':>9} {'-':>9}"
            )
            print(
                f"{f'({n}, {num_classes})':>14} {name:>15} {base * 1e3:8.2f} {value / base:10.2f} {mem}"
            )
        if memory:
            print(
                f"{'':>14} {'cross_entropy':>15} {base * 1e3:8.2f} {1.0:10.2f} {memory['cross_entropy'] / 2**10:9.0f} {1.0:9.2f}"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Forward + backward time and peak memory of SimLoss against F.cross_entropy.

Baseline: ``torch.nn.functional.cross_entropy`` on the same logits and targets,
timed interleaved with the other implementations in the same run (rounds of one
block each, in rotating order), so machine noise hits all of them alike. Each
cell is the implementation's median time divided by the baseline's median; the
whole measurement is repeated (``--repeats``, default 3) and the cell shows the
minimum, median and maximum ratio over the repeats (``min/median/max``).

Rows:
  dense-random     SimLoss(dense S), S random in [0, 1] with a unit diagonal
  dense-order      SimLoss(dense class-order S), r = 0.7
  ClassOrder       SimLoss(ClassOrder(C, 0.7)) (no C x C matrix)
  functional       sim_loss(z, y, S) with its default validate=True (dense class-order S)
  paper            the paper's code: softmax, S[y] . p, -log(. + 1e-8) (wrong for confident mistakes)
  compiled-dense   torch.compile(fullgraph=True) of a function calling SimLoss(dense S)
  compiled-order   torch.compile(fullgraph=True) of a function calling SimLoss(ClassOrder)
  compiled-CE      torch.compile(fullgraph=True) of F.cross_entropy
(compiled rows: ratio to eager cross-entropy; compile time printed separately)

Then a whole training step (MLP 512-256-C, batch 1024, Adam; loss.backward()
and opt.step() outside the compiled function): SimLoss(dense S) and
SimLoss(ClassOrder) against the same step with F.cross_entropy, eager and compiled.

Then peak extra memory of one forward+backward (fresh subprocess per
implementation) divided by cross-entropy's, where the dense matrix is absent.

Timing uses the wall clock by default. ``--clock cpu --threads 1`` times the
CPU time of the one computing thread instead (``time.thread_time``): on a
machine shared with other jobs it leaves out the time the process waits to be
scheduled, which the wall clock counts at random.

``--profile N C`` prints instead where the time of one eager forward+backward
goes: pieces of the loss timed alone (see ``breakdown``), then ``torch.profiler``'s
self time per operator (the least average over 20 runs of 100 calls) for
cross-entropy and SimLoss with a dense S and ``ClassOrder``.

Run: python benchmarks/bench_loss.py [--repeats 3] [--no-compile] [--no-memory] [--device cuda]
                                     [--clock wall|cpu] [--threads N] [--profile N C]
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
from typing import Any

import torch
import torch.nn.functional as F

from simloss import ClassOrder, SimLoss, sim_loss
from simloss.similarity import class_order

SHAPES = [
    (256, 10),
    (1024, 10),
    (1024, 100),
    (4096, 100),
    (1024, 1000),
    (256, 10_000),
    (64, 100_000),
]
R = 0.7
DEVICE = torch.device("cpu")
CLOCK = time.perf_counter  # or time.thread_time (--clock cpu)
DENSE_LIMIT = 20_000  # a dense float32 S above this many classes is not built (C = 1e5: 40 GB)
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def paper_loss(logits: torch.Tensor, target: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    probs = torch.softmax(logits, dim=1)
    return -torch.log((S[target] * probs).sum(1) + 1e-8).mean()


def random_similarity(num_classes: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    S = torch.rand(num_classes, num_classes, generator=gen)
    S.fill_diagonal_(1.0)
    return S.to(DEVICE)


def eager_implementations(num_classes: int) -> dict[str, Loss]:
    impls: dict[str, Loss] = {"cross_entropy": lambda z, y: F.cross_entropy(z, y)}
    if num_classes <= DENSE_LIMIT:
        dense = class_order(num_classes, R, device=DEVICE)
        impls["dense-random"] = SimLoss(random_similarity(num_classes))
        impls["dense-order"] = SimLoss(dense)
    impls["ClassOrder"] = SimLoss(ClassOrder(num_classes, R)).to(DEVICE)
    if num_classes <= DENSE_LIMIT:
        impls["functional"] = lambda z, y: sim_loss(z, y, dense)
        impls["paper"] = lambda z, y: paper_loss(z, y, dense)
    return impls


def compiled_implementations(n: int, num_classes: int) -> dict[str, tuple[Loss, float]]:
    """Compiled losses and their compile times (first call: forward + backward)."""
    candidates: dict[str, Loss] = {}
    if num_classes <= DENSE_LIMIT:
        dense_loss = SimLoss(class_order(num_classes, R, device=DEVICE))
        candidates["compiled-dense"] = lambda z, y: dense_loss(z, y)
    order_loss = SimLoss(ClassOrder(num_classes, R)).to(DEVICE)
    candidates["compiled-order"] = lambda z, y: order_loss(z, y)
    candidates["compiled-CE"] = lambda z, y: F.cross_entropy(z, y)
    out: dict[str, tuple[Loss, float]] = {}
    for name, fn in candidates.items():
        compiled = torch.compile(fn, fullgraph=True, dynamic=False)
        z, y = make_inputs(n, num_classes)
        start = time.perf_counter()
        compiled(z, y).backward()
        synchronize()
        out[name] = (compiled, time.perf_counter() - start)
    return out


def make_inputs(n: int, num_classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, num_classes, generator=gen) * 2).to(DEVICE).requires_grad_()
    target = torch.randint(0, num_classes, (n,), generator=gen).to(DEVICE)
    return logits, target


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def step(fn: Loss, z: torch.Tensor, y: torch.Tensor, calls: int = 1) -> float:
    """Seconds per forward+backward, averaged over ``calls`` back-to-back calls."""
    synchronize()
    start = CLOCK()
    for _ in range(calls):
        z.grad = None
        fn(z, y).backward()
    synchronize()
    return (CLOCK() - start) / calls


def interleaved_medians(
    impls: dict[str, Loss], z: torch.Tensor, y: torch.Tensor, rounds: int
) -> dict[str, float]:
    """Median seconds per call of each implementation, in rotating interleaved order.

    Each sample is a block of back-to-back calls lasting about 5 ms for the
    baseline, so timer resolution and single scheduler hiccups average out.
    """
    names = list(impls)
    for name in names:  # warm-up
        step(impls[name], z, y, calls=3)
    calls = max(1, min(200, round(5e-3 / step(impls["cross_entropy"], z, y, calls=5))))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            samples[name].append(step(impls[name], z, y, calls=calls))
    return {name: statistics.median(values) for name, values in samples.items()}


def time_losses(repeats: int, rounds: int, compile_too: bool) -> None:
    header = ["implementation"] + [f"{n}x{c}" for n, c in SHAPES]
    ratios: dict[str, dict[str, list[float]]] = {}
    compile_times: dict[str, dict[str, float]] = {}
    ce_ms: dict[str, float] = {}
    for n, num_classes in SHAPES:
        key = f"{n}x{num_classes}"
        z, y = make_inputs(n, num_classes)
        impls = eager_implementations(num_classes)
        if compile_too:
            torch._dynamo.reset()
            for name, (fn, seconds) in compiled_implementations(n, num_classes).items():
                impls[name] = fn
                compile_times.setdefault(name, {})[key] = seconds
        shape_rounds = rounds if n * num_classes <= 5_000_000 else max(5, rounds // 3)
        for _ in range(repeats):
            medians = interleaved_medians(impls, z, y, shape_rounds)
            base = medians["cross_entropy"]
            ce_ms[key] = min(ce_ms.get(key, float("inf")), base * 1e3)
            for name, value in medians.items():
                if name != "cross_entropy":
                    ratios.setdefault(name, {}).setdefault(key, []).append(value / base)
        print(f"  measured {key}", file=sys.stderr, flush=True)
    width = 15
    print("time / F.cross_entropy's (eager), min/median/max over repeats")
    print(f"{header[0]:>16} " + " ".join(f"{h:>{width}}" for h in header[1:]))
    print(f"{'CE ms (min)':>16} " + " ".join(f"{ce_ms[f'{n}x{c}']:>{width}.3f}" for n, c in SHAPES))
    for name, by_shape in ratios.items():
        cells = []
        for n, c in SHAPES:
            values = by_shape.get(f"{n}x{c}")
            cells.append(spread(values) if values else "-")
        print(f"{name:>16} " + " ".join(f"{cell:>{width}}" for cell in cells))
    for name, by_shape in compile_times.items():
        cells = [
            f"{by_shape[f'{n}x{c}']:.1f}s" if f"{n}x{c}" in by_shape else "-" for n, c in SHAPES
        ]
        print(
            f"{'compile ' + name.removeprefix('compiled-'):>16} "
            + " ".join(f"{c:>{width}}" for c in cells)
        )
    sys.stdout.flush()


def spread(values: list[float]) -> str:
    """``min/median/max`` of ratios over the repeats."""
    return f"{min(values):.2f}/{statistics.median(values):.2f}/{max(values):.2f}"


def make_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    compiled: bool,
) -> Callable[[], None]:
    """One training step; the model's forward and the loss compiled together when asked."""

    def forward(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return loss(model(a), b)

    if compiled:
        forward = torch.compile(forward, fullgraph=True, dynamic=False)

    def one_step() -> None:
        optimizer.zero_grad()
        forward(x, y).backward()
        optimizer.step()

    return one_step


def training_steps(repeats: int, compile_too: bool) -> None:
    """A whole training step (MLP 512-256-C, batch 1024, Adam) with each loss."""
    print("\ntraining step (MLP 512-256-C, batch 1024, Adam) / the same step with F.cross_entropy")
    print(
        f"{'C':>6} {'loss':>12} {'eager':>15} {'compiled':>15} {'CE eager ms':>12} "
        f"{'CE compiled ms':>15}"
    )
    for num_classes in (100, 1000):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(512, 256), torch.nn.ReLU(), torch.nn.Linear(256, num_classes)
        ).to(DEVICE)
        optimizer = torch.optim.Adam(model.parameters())
        x = torch.randn(1024, 512, device=DEVICE)
        y = torch.randint(0, num_classes, (1024,), device=DEVICE)
        losses: dict[str, Loss] = {
            "CE": lambda z, t: F.cross_entropy(z, t),
            "dense": SimLoss(class_order(num_classes, R, device=DEVICE)),
            "ClassOrder": SimLoss(ClassOrder(num_classes, R)).to(DEVICE),
        }
        steps: dict[str, Callable[[], None]] = {}
        for name, loss in losses.items():
            for compiled in (False, True) if compile_too else (False,):
                one_step = make_step(model, optimizer, loss, x, y, compiled)
                one_step()  # compile / warm up
                steps[f"{name}-{'compiled' if compiled else 'eager'}"] = one_step
        results: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(repeats):
            samples: dict[str, list[float]] = {name: [] for name in steps}
            names = list(steps)
            for i in range(15):
                for name in names[i % len(names) :] + names[: i % len(names)]:
                    synchronize()
                    start = CLOCK()
                    for _ in range(3):
                        steps[name]()
                    synchronize()
                    samples[name].append((CLOCK() - start) / 3)
            for name in steps:
                results[name].append(statistics.median(samples[name]))
        ce_eager = statistics.median(results["CE-eager"])
        ce_compiled = statistics.median(results["CE-compiled"]) if compile_too else float("nan")
        for name in ("dense", "ClassOrder"):
            eager = [
                v / b for v, b in zip(results[f"{name}-eager"], results["CE-eager"], strict=True)
            ]
            compiled = (
                [
                    v / b
                    for v, b in zip(
                        results[f"{name}-compiled"], results["CE-compiled"], strict=True
                    )
                ]
                if compile_too
                else []
            )
            print(
                f"{num_classes:>6} {name:>12} {spread(eager):>15} "
                + (f"{spread(compiled):>15}" if compiled else f"{'-':>15}")
                + f" {ce_eager * 1e3:>12.2f} {ce_compiled * 1e3:>15.2f}"
            )
        sys.stdout.flush()


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
    fn = eager_implementations(num_classes)[name]
    fn(z, y).backward()  # first call: one-time allocations (thread pools, caches)
    z.grad = None
    before = rss_bytes()
    reset_peak_rss()
    fn(z, y).backward()
    print(json.dumps({"extra_bytes": max(peak_rss_bytes() - before, 0)}))


def measure_memory(name: str, n: int, num_classes: int) -> int:
    if DEVICE.type == "cuda":
        z, y = make_inputs(n, num_classes)
        fn = eager_implementations(num_classes)[name]
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


def memory_table() -> None:
    print("\npeak extra memory of one forward+backward / F.cross_entropy's")
    print(f"{'(N, C)':>14} {'implementation':>14} {'peak KiB':>9} {'mem x CE':>9}")
    for n, num_classes in ((1024, 1000), (64, 100_000)):
        names = [name for name in eager_implementations(num_classes) if name != "paper"]
        memory = {name: measure_memory(name, n, num_classes) for name in names}
        for name in names:
            ratio = memory[name] / max(memory["cross_entropy"], 1)
            print(
                f"{f'({n}, {num_classes})':>14} {name:>14} {memory[name] / 2**10:9.0f} {ratio:9.2f}"
            )
        sys.stdout.flush()


def breakdown(n: int, num_classes: int, repeats: int = 9) -> None:
    """Where an eager forward+backward's time goes: pieces of the loss timed alone.

    Blocks of back-to-back calls as in the timing table, the median of
    ``repeats`` blocks, the thread's CPU time. ``fused kernel + rows`` is the
    autograd function on gathered rows without argument handling, ``fused
    arithmetic`` its forward computation without autograd; the last four lines
    are the costs of the routes tried instead (see docs/benchmarks.md).
    """
    from simloss._fused import _index_forward, fused_index_loss
    from simloss.similarity.dispatch import as_similarity_operator

    z, y = make_inputs(n, num_classes)
    plain = z.detach()
    S = class_order(num_classes, R, device=DEVICE)
    module, operator = SimLoss(S), as_similarity_operator(S, num_classes)

    class Empty(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, scores: torch.Tensor) -> torch.Tensor:
            ctx.grad = torch.empty_like(scores)
            return scores.sum()

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
            out, ctx.grad = ctx.grad, None
            return out

    @torch.library.custom_op("bench_loss::empty", mutates_args=())
    def empty_op(scores: torch.Tensor) -> torch.Tensor:
        return scores.sum()

    empty_op.register_fake(lambda scores: scores.new_empty(()))
    empty_op.register_autograd(
        lambda ctx, grad: torch.empty_like(ctx.scores),
        setup_context=lambda ctx, inputs, output: setattr(ctx, "scores", inputs[0]),
    )

    def composite(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        exp = torch.exp(a - a.detach().amax(1, keepdim=True))
        return (exp.sum(1).log() - (S.index_select(0, b) * exp).sum(1).log()).mean()

    pieces: dict[str, Callable[[], object]] = {
        "cross_entropy": lambda: F.cross_entropy(z, y).backward(),
        "SimLoss (module)": lambda: module(z, y).backward(),
        "sim_loss (function)": lambda: sim_loss(z, y, S).backward(),
        "fused kernel + rows": lambda: fused_index_loss(
            z,
            y,
            operator.rows(y, z.dtype),
            operator,
            input_is_logits=True,
            coef=1.0 / n,
            reduce=True,
        ).backward(),
        "fused arithmetic, no autograd": lambda: _index_forward(
            plain, y, operator.rows(y, z.dtype), operator, input_is_logits=True, need_grad=True
        ),
        "target check (aminmax, 2 reads)": lambda: [int(v) for v in torch.aminmax(y)],
        "empty autograd.Function": lambda: Empty.apply(z).backward(),
        "empty custom_op with autograd": lambda: empty_op(z).backward(),
        "native sum, native backward": lambda: z.sum().backward(),
        "composite of native ops": lambda: composite(z, y).backward(),
    }

    def block(piece: Callable[[], object], calls: int) -> float:
        synchronize()
        start = CLOCK()
        for _ in range(calls):
            z.grad = None
            piece()
        synchronize()
        return (CLOCK() - start) / calls

    calls = max(50, 6_000_000 // (n * num_classes))
    for piece in pieces.values():
        block(piece, calls)
    samples: dict[str, list[float]] = {name: [] for name in pieces}
    for _ in range(repeats):
        for name, piece in pieces.items():
            samples[name].append(block(piece, calls))
    print(f"\n({n}, {num_classes}), us per call, median of {repeats} blocks of {calls} calls")
    for name, values in samples.items():
        print(f"  {name:34s} {statistics.median(values) * 1e6:7.1f}")


def profile(n: int, num_classes: int, calls: int = 100, runs: int = 20) -> None:
    """Self time per operator of one forward+backward, for CE and SimLoss (dense, ClassOrder).

    The profiler reads the wall clock, so each operator's figure is its smallest
    average over ``runs`` profiled runs of ``calls`` calls: a run the machine
    interrupted does not count.
    """
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    z, y = make_inputs(n, num_classes)
    impls = eager_implementations(num_classes)
    for name in ("cross_entropy", "dense-order", "ClassOrder"):
        fn = impls[name]
        step(fn, z, y, calls=50)  # warm-up
        best: dict[str, float] = {}
        counts: dict[str, int] = {}
        for _ in range(runs):
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                step(fn, z, y, calls=calls)
            for event in prof.key_averages():
                per_call = event.self_cpu_time_total / calls
                best[event.key] = min(best.get(event.key, float("inf")), per_call)
                counts[event.key] = event.count // calls
        print(
            f"\n{name} at ({n}, {num_classes}): {sum(best.values()):.1f} us self time per call "
            f"(each operator's least over {runs} profiled runs of {calls} calls)"
        )
        print(f"{'operator or Python function':>60} {'us per call':>12} {'calls':>6}")
        for key in sorted(best, key=lambda k: -best[k])[:25]:
            print(f"{key[:60]:>60} {best[key]:12.2f} {counts[key]:6d}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per repeat")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-steps", action="store_true", help="skip the training-step table")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall clock (default) or the computing thread's CPU time (use with --threads 1)",
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--profile", nargs=2, type=int, metavar=("N", "C"), help="profile one shape instead"
    )
    parser.add_argument(
        "--memory-child", nargs=3, metavar=("IMPL", "N", "C"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    global DEVICE, CLOCK
    DEVICE = torch.device(args.device)
    if args.clock == "cpu":
        if DEVICE.type != "cpu":
            parser.error("--clock cpu times CPU work; use the wall clock with --device cuda")
        CLOCK = time.thread_time
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        name, n, c = args.memory_child
        memory_child(name, int(n), int(c))
        return
    if args.profile:
        breakdown(*args.profile)
        profile(*args.profile)
        return
    where = (
        torch.cuda.get_device_name()
        if DEVICE.type == "cuda"
        else f"{torch.get_num_threads()} CPU threads"
    )
    clock = "wall clock" if args.clock == "wall" else "thread CPU time"
    print(
        f"torch {torch.__version__}, {where}, float32, r = {R}, {args.repeats} repeats, {clock}\n"
    )
    time_losses(args.repeats, args.rounds, not args.no_compile)
    if not args.no_steps:
        training_steps(args.repeats, not args.no_compile)
    if not args.no_memory:
        memory_table()


if __name__ == "__main__":
    main()

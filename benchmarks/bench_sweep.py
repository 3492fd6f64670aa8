"""Wall time of a 2-worker sweep against the same runs one after another in one process.

Baseline: the 8 training runs of the sweep (Abalone, r in {0, 0.3, 0.6, 0.9} x
2 runs, a fixed number of epochs so that every run does the same work), each
done by ``run_training`` in this process, one after another, with torch's
default threads (all cores). Measured: ``run_sweep`` over the same grid with
``--workers`` worker processes (default 2; cores / workers threads each), in a
fresh folder with the default SQLite storage, timed from the call to its return
(worker start-up included).

Printed:
  - both wall times and their ratio sweep / sequential (on 2 cores with
    2 workers, ideally 0.5 or a little below: two 1-thread runs side by side
    outrun one 2-thread run);
  - the engine's own time per trial, read back from the storage: for each
    worker, its busy span (first trial start to last trial end) minus the
    ``wall_time_s`` of its training runs, divided by its trials. This is the
    storage traffic (claim, heartbeats, record and state writes, the look for
    duplicates) and config building; worker start-up is reported separately.
    It is shown as a share of the mean training run.
  - for both, the cores actually used (CPU seconds of this process and its
    workers / wall seconds): on a machine shared with other jobs the sweep can
    only be as parallel as the cores it gets, and this number says how many.

Run: python benchmarks/bench_sweep.py [--epochs 400] [--workers 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import torch

from simloss.experiments.config import TrainConfig, point_config
from simloss.experiments.sweep import Grid, run_sweep, sqlite_url
from simloss.experiments.train import run_training

GRID = Grid("r", (0.0, 0.3, 0.6, 0.9), 2)


def sequential(base: TrainConfig, out: Path) -> float:
    """The sweep's runs one after another in this process; returns the wall time."""
    started = time.perf_counter()
    for value, run in GRID.points():
        config = point_config(base, "r", value, run)
        run_training(config, out / f"r={value}_run={run}")
    return time.perf_counter() - started


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its finished child processes."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def engine_overhead(out: Path, study_name: str) -> tuple[list[float], list[float], float]:
    """Per-trial engine seconds, per-trial training seconds, and start-up seconds."""
    study = optuna.load_study(study_name=study_name, storage=sqlite_url(out / "study.db"))
    trials = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    by_worker: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for trial in trials:
        by_worker.setdefault(str(trial.user_attrs["worker"]), []).append(trial)
    overhead: list[float] = []
    training = [float(t.user_attrs["record"]["wall_time_s"]) for t in trials]
    for worker_trials in by_worker.values():
        start = min(t.datetime_start for t in worker_trials if t.datetime_start)
        end = max(t.datetime_complete for t in worker_trials if t.datetime_complete)
        busy = (end - start).total_seconds()
        trained = sum(float(t.user_attrs["record"]["wall_time_s"]) for t in worker_trials)
        overhead += [(busy - trained) / len(worker_trials)] * len(worker_trials)
    first_start = min(t.datetime_start for t in trials if t.datetime_start)
    return overhead, training, first_start.timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--epochs", type=int, default=400, help="epochs per run (all of them)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", help="working folder (default: a temporary one)")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="bench_sweep_"))
    base = TrainConfig(dataset="abalone", epochs=args.epochs, patience=args.epochs, progress=False)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    run_training(TrainConfig(dataset="abalone", r=0.5, epochs=1, progress=False), root / "warm")
    cpu = cpu_seconds()
    seq = sequential(base, root / "sequential")
    seq_cores = (cpu_seconds() - cpu) / seq
    cpu = cpu_seconds()
    started = time.perf_counter()
    wall_start = time.time()
    result = run_sweep(base, GRID, root / "sweep", workers=args.workers, progress=False)
    swept = time.perf_counter() - started
    sweep_cores = (cpu_seconds() - cpu) / swept
    if not result.ok:
        raise SystemExit(f"the sweep did not finish:\n{result.summary()}")
    overhead, training, first_start = engine_overhead(root / "sweep", result.study_name)

    mean_run = statistics.mean(training)
    per_trial = statistics.mean(overhead)
    print(f"machine: {torch.get_num_threads()} torch threads by default; {len(training)} runs")
    print(
        f"sequential (1 process, {torch.get_num_threads()} threads): {seq:8.2f} s"
        f"   cores used {seq_cores:.2f}"
    )
    print(
        f"sweep ({args.workers} workers, default SQLite storage): {swept:8.2f} s"
        f"   cores used {sweep_cores:.2f}"
    )
    print(f"ratio sweep / sequential: {swept / seq:.3f}   (ideal on 2 cores: <= 0.5)")
    print(f"worker start-up (call to first trial start): {first_start - wall_start:.2f} s")
    print(f"mean training run inside the sweep: {mean_run:.3f} s")
    print(
        f"engine overhead per trial: {1000 * per_trial:.1f} ms "
        f"= {100 * per_trial / mean_run:.2f} % of a mean run of this benchmark"
    )


if __name__ == "__main__":
    main()

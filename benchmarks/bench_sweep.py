"""Wall time of 2-worker sweeps on SQLite and PostgreSQL against the same runs one after another.

Baseline: the 8 training runs of the sweep (Abalone, r in {0, 0.3, 0.6, 0.9} x
2 runs, a fixed number of epochs so that every run does the same work), each
done by ``run_training`` in this process, one after another, with torch's
default threads (all cores). Measured, each in a fresh folder and study:

  - ``run_sweep`` with ``--workers`` worker processes (default 2; cores /
    workers threads each) and the default SQLite storage;
  - the same with a PostgreSQL storage;
  - two ``simloss sweep`` commands started at once on that PostgreSQL server
    (two "machines": own folders, one worker each, one study), timed from the
    start of both to the end of the last.

Every sweep is timed from the call to its return (worker start-up included).
The PostgreSQL server is the one of ``--postgres URL`` (a database the user may
create databases on: each sweep gets a new database, dropped afterwards), else
a throw-away server that ``scripts/postgres.sh`` starts and stops here; without
PostgreSQL's programs the PostgreSQL lines are skipped, saying so.

Printed:
  - the wall times and their ratio sweep / sequential (on 2 cores with
    2 workers, ideally 0.5 or a little below: two 1-thread runs side by side
    outrun one 2-thread run);
  - the engine's own time per trial on each storage, read back from it: for
    each worker, its busy span (first trial start to last trial end) minus the
    ``wall_time_s`` of its training runs, divided by its trials. This is the
    storage traffic (claim, heartbeats, record and state writes, the look for
    duplicates) and config building; worker start-up is reported separately.
    It is shown as a share of the mean training run, and PostgreSQL's as a
    ratio to SQLite's.
  - for each, the cores actually used (CPU seconds of this process and its
    workers / wall seconds): on a machine shared with other jobs the sweep can
    only be as parallel as the cores it gets, and this number says how many.

Run: python benchmarks/bench_sweep.py [--epochs 400] [--workers 2] [--postgres URL] [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch

from simloss.experiments.config import TrainConfig, point_config
from simloss.experiments.sweep import Grid, run_sweep, sqlite_url
from simloss.experiments.train import run_training

GRID = Grid("r", (0.0, 0.3, 0.6, 0.9), 2)
STUDY = "simloss-abalone"
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Timing:
    """One measured sweep."""

    label: str
    wall_s: float
    cores: float
    overhead_s: float  # engine seconds per trial
    mean_run_s: float
    startup_s: float


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


def engine_overhead(url: str, wall_start: float) -> tuple[float, float, float]:
    """Mean engine seconds per trial, mean training seconds and start-up seconds."""
    study = optuna.load_study(study_name=STUDY, storage=url)
    trials = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    if len(trials) != len(GRID.points()):
        raise SystemExit(f"{url}: {len(trials)} of {len(GRID.points())} trials finished")
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
    return (
        statistics.mean(overhead),
        statistics.mean(training),
        first_start.timestamp() - wall_start,
    )


def timed_sweep(label: str, base: TrainConfig, out: Path, workers: int, url: str) -> Timing:
    """``run_sweep`` in this process, on the storage ``url``."""
    cpu = cpu_seconds()
    wall_start = time.time()
    started = time.perf_counter()
    storage = None if url.startswith("sqlite") else url
    result = run_sweep(base, GRID, out, workers=workers, progress=False, storage=storage)
    wall = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"the sweep did not finish:\n{result.summary()}")
    cores = (cpu_seconds() - cpu) / wall
    return Timing(label, wall, cores, *engine_overhead(url, wall_start))


def timed_commands(label: str, epochs: int, root: Path, url: str) -> Timing:
    """Two ``simloss sweep`` commands (one worker each) started at once on ``url``."""

    def command(i: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "simloss",
            "sweep",
            "--dataset=abalone",
            "--grid=r=0,0.3,0.6,0.9",
            "--runs=2",
            f"--epochs={epochs}",
            f"--patience={epochs}",
            f"--out={root / f'machine{i}'}",
            f"--storage={url}",
            "--workers=1",
            "--no-progress",
        ]

    cpu = cpu_seconds()
    wall_start = time.time()
    started = time.perf_counter()
    procs = [subprocess.Popen(command(i), stdout=subprocess.PIPE, text=True) for i in range(2)]
    for proc in procs:
        output, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a sweep command failed:\n{output}")
    wall = time.perf_counter() - started
    cores = (cpu_seconds() - cpu) / wall
    return Timing(label, wall, cores, *engine_overhead(url, wall_start))


@contextlib.contextmanager
def postgres_server(url: str | None) -> Iterator[str | None]:
    """The admin URL of a PostgreSQL server: ``url``, else a throw-away one (or None)."""
    if url is not None:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="bench_pg_") as folder:
        script = ["bash", str(ROOT / "scripts" / "postgres.sh")]
        started = subprocess.run(
            [*script, "start", folder], capture_output=True, text=True, check=False
        )
        if started.returncode != 0:
            print(f"PostgreSQL skipped: {started.stderr.strip().splitlines()[-1]}")
            yield None
            return
        try:
            yield started.stdout.strip()
        finally:
            subprocess.run([*script, "stop", folder], capture_output=True, check=False)


@contextlib.contextmanager
def new_database(admin: str) -> Iterator[str]:
    """A new database on the server of ``admin``, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(admin)
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"bench_sweep_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--epochs", type=int, default=400, help="epochs per run (all of them)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres", help="a PostgreSQL URL (default: a throw-away server)")
    parser.add_argument("--out", help="working folder (default: a temporary one)")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="bench_sweep_"))
    base = TrainConfig(dataset="abalone", epochs=args.epochs, patience=args.epochs, progress=False)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    run_training(TrainConfig(dataset="abalone", r=0.5, epochs=1, progress=False), root / "warm")
    cpu = cpu_seconds()
    seq = sequential(base, root / "sequential")
    seq_cores = (cpu_seconds() - cpu) / seq
    timings = [
        timed_sweep(
            f"sweep ({args.workers} workers, SQLite)",
            base,
            root / "sqlite",
            args.workers,
            sqlite_url(root / "sqlite" / "study.db"),
        )
    ]
    with postgres_server(args.postgres) as admin:
        if admin is not None:
            with new_database(admin) as url:
                timings.append(
                    timed_sweep(
                        f"sweep ({args.workers} workers, PostgreSQL)",
                        base,
                        root / "postgres",
                        args.workers,
                        url,
                    )
                )
            with new_database(admin) as url:
                timings.append(
                    timed_commands(
                        "2 sweep commands x 1 worker, PostgreSQL",
                        args.epochs,
                        root / "machines",
                        url,
                    )
                )

    threads = torch.get_num_threads()
    print(f"machine: {threads} torch threads by default; {len(GRID.points())} runs per line")
    width = max(len(t.label) for t in timings) + 2
    print(f"{'what':<{width}} {'wall s':>8} {'ratio':>7} {'cores':>6} {'engine ms/trial':>16}")
    print(
        f"{f'sequential (1 process, {threads} threads)':<{width}} {seq:8.2f} {1:7.3f} "
        f"{seq_cores:6.2f} {'':>16}"
    )
    for t in timings:
        print(
            f"{t.label:<{width}} {t.wall_s:8.2f} {t.wall_s / seq:7.3f} {t.cores:6.2f} "
            f"{1000 * t.overhead_s:16.1f}"
        )
    print("ratio = wall / sequential wall (ideal on 2 cores with 2 workers: <= 0.5)")
    for t in timings:
        print(
            f"{t.label}: worker start-up {t.startup_s:.2f} s, mean run {t.mean_run_s:.3f} s, "
            f"engine {1000 * t.overhead_s:.1f} ms/trial = "
            f"{100 * t.overhead_s / t.mean_run_s:.2f} % of a mean run"
        )
    if len(timings) > 1:
        print(
            "engine overhead per trial, PostgreSQL / SQLite (both 2-worker run_sweep): "
            f"{timings[1].overhead_s / timings[0].overhead_s:.2f}"
        )


if __name__ == "__main__":
    main()

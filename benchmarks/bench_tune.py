"""``simloss tune`` against the grid it replaces: epochs, wall time and the value found.

Baseline: the grid of the paper, r in {0.0, 0.1, ..., 0.9} x ``--runs`` seeds
(runs 0 .. runs - 1), run by ``run_sweep`` with one worker (a grid already in
``--out`` is reused; its wall time is always read from its storage: the first
trial's start to the last trial's end).
Its best value is the one with the best mean validation objective over its
runs; its standard error is that value's sample standard deviation over
the runs divided by sqrt(runs).

Measured: ``run_tune`` for each objective of ``--objectives`` (default
``val_mae`` and ``val_mse``; the grid is run once and serves both), with the
same ``--runs`` seeds for its confirmation, one worker, and a budget of
``--fraction`` (1/3) of the epochs the grid actually trained, once per sampler
(``--samplers``) and sampler seed (``--repeats``), each in a fresh folder, each sampler with its
default pruner (TPE: median; GP: none, as it learns nothing from pruned runs).

Printed, per method: total epochs (and as a fraction of the grid's), wall time
(and as a fraction of the grid's), the chosen r, its mean validation MAE with
its standard error over the runs, its test MAE and test accuracy with their
standard deviation over the runs, and the target: the chosen r's mean
validation objective is within one standard error of the grid's best mean (the
tune's confirmation runs use the grid's seeds, so both means average the same
seeds) at no more than the fraction of the grid's epochs. Also shown: the
grid's own mean at the grid value nearest to the chosen r (``grid@r``).
Then, per sampler: targets met, mean epochs and wall-time ratios, and the
sampler's own time per trial (the tune's wall time less its training time,
divided by its trials).

Abalone (embedded) always; UTKFace ``crop_part1`` with ``--utkface`` when the
data is present, with a reduced setup stated in the output (a subset of
images, a small epoch cap and patience: a full grid there takes a day on 2 CPU
cores).

Run: python benchmarks/bench_tune.py [--runs 6] [--samplers tpe,gp] [--repeats 3]
     [--objectives val_mae,val_mse]
     [--fraction 0.333] [--out DIR] [--utkface [--utk-limit 1500 --utk-epochs 12]]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simloss.experiments.config import TrainConfig
from simloss.experiments.points import format_value
from simloss.experiments.specs import metric_spec
from simloss.experiments.sweep import Grid, load_records, run_sweep
from simloss.experiments.tune import run_tune

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass
class Row:
    """One line of the table."""

    method: str
    epochs: int
    wall_s: float
    r: float
    objective: tuple[float, float]  # mean, standard error
    test_mae: tuple[float, float]  # mean, sd
    test_acc: tuple[float, float]  # mean, sd (fraction)
    grid_at_r: float | None = None
    target: str = ""
    seconds_per_trial: float | None = None


def _mean_se_sd(values: list[float]) -> tuple[float, float, float]:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    return mean, sd / math.sqrt(len(values)), sd


def _elapsed(folder: Path) -> float:
    """Seconds from the first trial's start to the last trial's end of a sweep (its wall
    time with one worker, also when an earlier command of this script ran it)."""
    import optuna

    from simloss.experiments.sweep import read_sweep_file, sqlite_url

    name = read_sweep_file(folder)["study_name"]
    trials = optuna.load_study(study_name=name, storage=sqlite_url(folder / "study.db")).trials
    start = min(t.datetime_start for t in trials if t.datetime_start is not None)
    end = max(t.datetime_complete for t in trials if t.datetime_complete is not None)
    return (end - start).total_seconds()


def grid_rows(
    records: list[dict[str, Any]], metric: str
) -> dict[float, dict[str, tuple[float, float, float]]]:
    """Per grid value: (mean, SE, sd) of the validation objective, test MAE, test accuracy."""
    by_value: dict[float, list[dict[str, Any]]] = {}
    for rec in records:
        by_value.setdefault(rec["value"], []).append(rec)
    table = {}
    for value, recs in sorted(by_value.items()):
        table[value] = {
            name: _mean_se_sd([r["metrics"][split][key] for r in recs])
            for name, split, key in (
                ("objective", "val", metric),
                ("test_mae", "test", "mae"),
                ("test_acc", "test", "acc"),
            )
        }
    return table


def bench(
    title: str,
    base: TrainConfig,
    out: Path,
    runs: int,
    samplers: list[str],
    repeats: int,
    fraction: float,
    objectives: list[str],
) -> None:
    """Grid, then the tunes of each objective; print a table per objective."""
    grid = Grid.parse("r=0:0.9:0.1", runs=runs)
    result = run_sweep(base, grid, out / "grid", workers=1, progress=False)
    if not result.ok:
        raise RuntimeError(result.summary())
    grid_wall = _elapsed(out / "grid")
    records = [dict(r) for r in load_records(out / "grid")]
    grid_epochs = sum(int(r["epochs_run"]) for r in records)
    budget = int(fraction * grid_epochs)
    for objective in objectives:
        metric = objective.removeprefix("val_")
        lower = metric_spec(metric).higher_is_better is False  # type: ignore[union-attr]
        sign = 1.0 if lower else -1.0
        table = grid_rows(records, metric)
        best = min(table, key=lambda v: sign * table[v]["objective"][0])
        best_mean, best_se, _ = table[best]["objective"]
        rows = [
            Row(
                f"grid 10 x {runs}",
                grid_epochs,
                grid_wall,
                best,
                table[best]["objective"][:2],
                (table[best]["test_mae"][0], table[best]["test_mae"][2]),
                (table[best]["test_acc"][0], table[best]["test_acc"][2]),
            )
        ]
        for sampler in samplers:
            for seed in range(repeats):
                rows.append(
                    tune_row(base, out / f"tune-{metric}-{sampler}-{seed}", objective, budget,
                             runs, sampler, seed, table, sign * (best_mean + sign * best_se),
                             sign, fraction * grid_epochs)
                )  # fmt: skip
        _print(f"{title}, objective {objective}", rows, grid_epochs, grid_wall, best_mean,
               best_se, sign, budget, samplers)  # fmt: skip


def tune_row(
    base: TrainConfig,
    folder: Path,
    objective: str,
    budget: int,
    runs: int,
    sampler: str,
    seed: int,
    table: dict[float, dict[str, tuple[float, float, float]]],
    signed_limit: float,
    sign: float,
    max_epochs: float,
) -> Row:
    """One tune, as a row of the table."""
    metric = objective.removeprefix("val_")
    started = time.perf_counter()
    tuned = run_tune(
        base,
        folder,
        objectives=[objective],
        budget=budget,
        runs=runs,
        sampler=sampler,
        sampler_seed=seed,
        progress=False,
        write=False,
    )
    wall = time.perf_counter() - started
    if not tuned.complete:
        raise RuntimeError(tuned.text())
    r = tuned.best[0]
    val = tuned.stats(r, "val", metric)
    test = tuned.stats(r, "test", "mae")
    acc = tuned.stats(r, "test", "acc")
    assert val is not None and test is not None and acc is not None
    nearest = min(table, key=lambda v: (abs(v - r), v))
    within = sign * val.mean <= signed_limit
    cheap = tuned.epochs() <= max_epochs + 1e-9
    target = ("yes" if within and cheap else "NO") + ("" if cheap else " (epochs)")
    return Row(
        f"tune {sampler}+{tuned.settings.pruner} seed {seed}",
        tuned.epochs(),
        wall,
        r,
        (val.mean, val.std / math.sqrt(val.n)),
        (test.mean, test.std),
        (acc.mean, acc.std),
        grid_at_r=table[nearest]["objective"][0],
        target=target,
        seconds_per_trial=(wall - tuned.seconds()) / max(tuned.count(), 1),
    )


def _print(
    title: str,
    rows: list[Row],
    grid_epochs: int,
    grid_wall: float,
    best_mean: float,
    best_se: float,
    sign: float,
    budget: int,
    samplers: list[str],
) -> None:
    print(f"\n{title}")
    limit = best_mean + sign * best_se
    relation = "<=" if sign > 0 else ">="
    print(
        f"grid best {best_mean:.4f}, SE {best_se:.4f}: target {relation} {limit:.4f}; "
        f"tune budget {budget} epochs"
    )
    header = (
        f"{'method':<24}{'epochs':>8}{'x grid':>8}{'wall s':>9}{'x grid':>8}{'r':>7}"
        f"{'objective (SE)':>19}{'grid@r':>8}{'test MAE (sd)':>17}{'test Acc % (sd)':>17}  target"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        grid_at = "" if row.grid_at_r is None else f"{row.grid_at_r:.4f}"
        print(
            f"{row.method:<24}{row.epochs:>8}{row.epochs / grid_epochs:>8.2f}{row.wall_s:>9.1f}"
            f"{row.wall_s / grid_wall:>8.2f}{format_value(row.r):>7}"
            f"{row.objective[0]:>11.4f} ({row.objective[1]:.4f}){grid_at:>8}"
            f"{row.test_mae[0]:>9.4f} ({row.test_mae[1]:.4f})"
            f"{100 * row.test_acc[0]:>9.2f} ({100 * row.test_acc[1]:.2f})  {row.target}"
        )
    for sampler in samplers:
        mine = [row for row in rows if row.method.startswith(f"tune {sampler}+")]
        if not mine:
            continue
        hits = sum(row.target == "yes" for row in mine)
        epochs = statistics.fmean(r.epochs for r in mine) / grid_epochs
        wall = statistics.fmean(r.wall_s for r in mine) / grid_wall
        engine = statistics.fmean(r.seconds_per_trial or 0 for r in mine)
        print(
            f"{sampler}: target met {hits}/{len(mine)}; epochs {epochs:.2f} x grid, wall "
            f"{wall:.2f} x grid, engine + sampler {engine:.2f} s per trial"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=6, help="seeds per value (grid and confirmation)"
    )
    parser.add_argument("--samplers", default="tpe,gp")
    parser.add_argument("--objectives", default="val_mae,val_mse")
    parser.add_argument("--repeats", type=int, default=3, help="sampler seeds per sampler")
    parser.add_argument("--fraction", type=float, default=1 / 3, help="tune budget / grid epochs")
    parser.add_argument("--out", type=Path, help="a folder for the runs (default: a temporary one)")
    parser.add_argument("--skip-abalone", action="store_true")
    parser.add_argument("--utkface", action="store_true", help="also UTKFace crop_part1 (slow)")
    parser.add_argument("--utk-dir", type=Path, default=SHARED / "utkface" / "crop_part1")
    parser.add_argument("--utk-limit", type=int, default=1500)
    parser.add_argument("--utk-epochs", type=int, default=12)
    parser.add_argument("--utk-patience", type=int, default=3)
    parser.add_argument("--utk-runs", type=int, default=3)
    parser.add_argument("--utk-repeats", type=int, default=1)
    args = parser.parse_args()
    samplers = [s for s in args.samplers.split(",") if s]
    objectives = [o for o in args.objectives.split(",") if o]
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-tune-"))
    print(f"runs in {out}")
    if not args.skip_abalone:
        bench(
            f"Abalone (embedded, all 4,177 rows; the dataset's defaults: MLP, epoch cap 500, "
            f"patience 20; {args.runs} seeds; 1 worker)",
            TrainConfig(dataset="abalone", progress=False),
            out / "abalone",
            args.runs,
            samplers,
            args.repeats,
            args.fraction,
            objectives,
        )
    if args.utkface:
        if not args.utk_dir.is_dir():
            print(f"\nUTKFace skipped: {args.utk_dir} is absent")
            return
        base = TrainConfig(
            dataset="utkface",
            data_dir=str(args.utk_dir),
            limit=args.utk_limit,
            epochs=args.utk_epochs,
            patience=args.utk_patience,
            progress=False,
        )
        bench(
            f"UTKFace crop_part1, REDUCED: {args.utk_limit} images, epoch cap {args.utk_epochs}, "
            f"patience {args.utk_patience} (the paper: all images, 200, 10); {args.utk_runs} seeds; "
            "1 worker",
            base,
            out / "utkface",
            args.utk_runs,
            samplers,
            args.utk_repeats,
            args.fraction,
            objectives,
        )


if __name__ == "__main__":
    main()

"""``simloss report``: the paper's tables, significance tests and figures for a sweep."""

from __future__ import annotations

import argparse
from pathlib import Path

EXTRA = "experiments"

__all__ = ["parse_values", "register"]

EXAMPLES = """\
examples:
  # tables (Markdown printed, LaTeX, CSV) and figures into sweeps/utk/report
  simloss report sweeps/utk

  # a sweep whose trials live in a shared database; --out is then required
  simloss report postgresql://user:pass@dbhost/simloss --study-name simloss-utkface \\
      --out reports/utk

  # Figure 2 for chosen r values and class (age) 40, tables only without figures
  simloss report sweeps/utk --figure2-values 0,0.3,0.8,0.9 --figure2-class 40
  simloss report sweeps/utk --no-figures

  # a benchmark folder: ranks, Friedman, Nemenyi, CD diagrams, win/tie/loss
  simloss report benchmarks/ordinal

A sweep still running is reported as far as it has finished; the report lists
what is missing. Test values are marked + or - where a two-sided Wilcoxon
signed-rank test at the 5% level (paired by run against r = 0.0, or l = 0.99)
finds them significantly better or worse; the report says how many runs entered
each test and why a test could not be made.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="tables, significance tests and figures of a sweep (the paper's Tables 1/2, Fig. 2)",
        description=(
            "Write a sweep's result tables in the paper's layout (Markdown, LaTeX, CSV) with "
            "Wilcoxon significance marks against CCE, the paper's own numbers beside them, "
            "and figures (PNG and PDF) into the sweep's report/ folder."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "source",
        metavar="SWEEP_DIR_OR_STORAGE",
        help="a sweep folder, an Optuna storage URL, or a benchmark folder (simloss benchmark)",
    )
    parser.add_argument("--study-name", help="the study (needed for a URL with several studies)")
    parser.add_argument(
        "--out", help="the report folder (default: SWEEP_DIR/report; required for a URL)"
    )
    parser.add_argument(
        "--dataset", help="refuse records of another dataset (default: the records' own)"
    )
    parser.add_argument("--no-figures", action="store_true", help="write the tables only")
    parser.add_argument(
        "--figure2-values",
        type=parse_values,
        help="comma-separated r values of Figure 2 (default: CCE and the best validation "
        "value of each metric, as in the paper)",
    )
    parser.add_argument(
        "--figure2-class",
        type=float,
        help="class value (age) of Figure 2 (b) (default: 30, else the most frequent class)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the Markdown report")
    parser.set_defaults(func=handler)


def parse_values(text: str) -> list[float]:
    """Parse ``"0,0.3,0.8"`` into floats.

    Example:
        >>> parse_values("0, 0.3,0.8")
        [0.0, 0.3, 0.8]
    """
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 0,0.3,0.8, but found {text!r}"
        ) from exc
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one value, but found {text!r}")
    return values


def _expected(
    source: str, study_name: str | None
) -> tuple[list[float] | None, int | None, list[tuple[str, str | None, float | None, int]]]:
    """The study's grids: SimLoss's values and runs, and every (loss, param, value, run).

    Read from the study itself (``sweep.json`` only mirrors it), so a folder and
    a storage URL give the same and a hand-edited ``sweep.json`` cannot hide runs;
    a study that stores no grid (made by an early version) falls back to its
    folder's ``sweep.json``.
    """
    from simloss.experiments.sweep import SWEEP_FILE, load_grids, read_sweep_file
    from simloss.experiments.sweep.grid import grids_from_attr

    grids = load_grids(source, study_name)
    if not grids and "://" not in source:
        stored = read_sweep_file(source).get("grid")
        try:
            grids = grids_from_attr(stored)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"Expected 'grid' in {Path(source) / SWEEP_FILE} to be a grid or a list of "
                f"grids, but found {stored!r} ({exc})"
            ) from exc
    points = [(g.loss, g.param, v, run) for g in grids for v, run in g.points()]
    simloss = [g for g in grids if g.loss == "simloss" and g.param is not None]
    if len(grids) == 1 and simloss:
        return [float(v) for v in simloss[0].values], simloss[0].runs, points
    return None, None, points


def _refuse_tune(source: str, study_name: str | None) -> None:
    """Refuse a tune's folder or study: a sweep report would rank its one-run search
    values beside the confirmed means (its report is ``OUT/result/report.md``)."""
    import optuna

    from simloss.experiments.sweep.storage import (
        SWEEP_FILE,
        TUNE_FILE,
        hide_password,
        reading_storage,
        resolve_source,
    )
    from simloss.experiments.tune.plan import SETTINGS_ATTR

    hint = (
        "its report of the confirmation runs is the tune folder's result/report.md, "
        "written by simloss tune (rerun its command to write it); load_records() reads "
        "every run of it"
    )
    folder = Path(source)
    if "://" not in source and not (folder / SWEEP_FILE).is_file():
        if (folder / TUNE_FILE).is_file():
            raise ValueError(f"Expected a sweep folder, but {source} is a tune folder: {hint}")
        return
    url, name = resolve_source(source, study_name)
    with reading_storage(url) as storage:
        names = optuna.get_all_study_names(storage)
        name = names[0] if name is None and len(names) == 1 else name
        if name not in names:
            return  # load_records names what is wrong
        attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
    if SETTINGS_ATTR in attrs:
        raise ValueError(
            f"Expected a sweep's study, but study {name!r} in {hide_password(url)} is a tune: "
            f"{hint}"
        )


#: Flags of a sweep's report that a benchmark folder has no use for (its tasks and studies
#: are its own; Figure 2 belongs to one SimLoss sweep).
_SWEEP_ONLY = {
    "dataset": "--dataset",
    "study_name": "--study-name",
    "figure2_values": "--figure2-values",
    "figure2_class": "--figure2-class",
}


def _benchmark_report(args: argparse.Namespace) -> int:
    """Rank a benchmark folder's losses across tasks (``benchmark.md``) and print it."""
    from simloss.experiments._outputs import check_output
    from simloss.experiments.benchmark import write_benchmark_report

    source = Path(args.source)
    given = [flag for dest, flag in _SWEEP_ONLY.items() if getattr(args, dest) is not None]
    if given:
        raise ValueError(
            f"Expected no {', '.join(given)} for a benchmark folder ({source}: its tasks and "
            f"studies are its own; see each task's report under report/tasks), but found "
            f"{' '.join(given)}"
        )
    out = Path(args.out) if args.out is not None else source / "report"
    root, target = source.resolve(), out.resolve()
    if target != root / "report" and (target == root or root in target.parents):
        raise ValueError(
            f"Expected --out outside the benchmark folder {source} or its report/ folder itself, "
            f"but found {out}"
        )
    check_output(out, flag="--out", command="report")
    path = write_benchmark_report(source, out, figures=not args.no_figures)
    if not args.quiet:
        print(path.read_text(encoding="utf-8"))
    print(f"report written to {path.parent}")
    return 0


def handler(args: argparse.Namespace) -> int:
    """Load the sweep's finished records and write the report; print its Markdown."""
    from simloss.experiments.report import write_report
    from simloss.experiments.sweep import load_records
    from simloss.experiments.sweep.storage import hide_password

    source = str(args.source)
    shown = hide_password(source)
    if (Path(source) / "benchmark.json").is_file():  # a benchmark folder: ranks across tasks
        return _benchmark_report(args)
    if args.out is not None:
        out = Path(args.out)
    elif "://" in source:
        raise ValueError(f"Expected --out for a storage URL source ({shown}), but found none")
    else:
        out = Path(source) / "report"
    from simloss.experiments._outputs import check_output
    from simloss.experiments.sweep import SWEEP_FILE
    from simloss.experiments.sweep.storage import TUNE_FILE

    folder = Path(source)
    settings_files = (SWEEP_FILE, TUNE_FILE)
    if (
        "://" not in source
        and folder.is_dir()
        and not any((folder / name).is_file() for name in settings_files)
    ):
        raise FileNotFoundError(
            f"Expected SWEEP_DIR_OR_STORAGE to be a sweep folder ({SWEEP_FILE}) or a "
            f"benchmark folder (benchmark.json), but {source} holds neither"
        )
    _refuse_tune(source, args.study_name)  # a tune's own report is named before its --out
    check_output(out, flag="--out", command="report")
    records = load_records(source, args.study_name)
    if not records:
        raise RuntimeError(f"no finished trial in {shown}: nothing to report yet")
    expected_values, expected_runs, expected_points = _expected(source, args.study_name)
    path = write_report(
        records,
        out,
        dataset=args.dataset,
        figures=not args.no_figures,
        expected_values=expected_values,
        expected_runs=expected_runs,
        expected_points=expected_points,
        figure2_values=args.figure2_values,
        figure2_class=args.figure2_class,
    )
    if not args.quiet:
        print(path.read_text(encoding="utf-8"))
    print(f"report written to {path.parent}")
    return 0

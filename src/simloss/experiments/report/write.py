"""A sweep's report on disk: the tables in three formats and the figures, nothing stale."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simloss.experiments._files import atomic_write_text
from simloss.experiments.record import SweepRecord
from simloss.experiments.report.render import to_csv, to_latex, to_markdown
from simloss.experiments.report.summary import summarize_sweep

if TYPE_CHECKING:
    from simloss.experiments.report.compare import ExpectedPoint

__all__ = ["REPORT_FILES", "check_report_folder", "write_report"]

#: The files a report may hold (``*`` stands for the swept parameter's name).
REPORT_FILES = (
    "report.md",
    "report.tex",
    "report.csv",
    "metrics_vs_*.png",
    "metrics_vs_*.pdf",
    "figure2.png",
    "figure2.pdf",
    "similarity.png",
    "similarity.pdf",
    "losses.png",
    "losses.pdf",
)


def write_report(
    records: Sequence[SweepRecord] | Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    figures: bool = True,
    expected_values: Sequence[float] | None = None,
    expected_runs: int | None = None,
    expected_points: Sequence[ExpectedPoint] | None = None,
    figure2_values: Sequence[float] | None = None,
    figure2_class: float | None = None,
    other_files: Sequence[str] = (),
) -> Path:
    """Write a sweep's report: Markdown, LaTeX and CSV tables and the figures.

    Files written into ``out_dir`` (created when absent): ``report.md``,
    ``report.tex``, ``report.csv`` and, with ``figures``, ``metrics_vs_<param>``,
    ``figure2`` (from the recorded distributions) and ``similarity`` as PNG and
    PDF. Figures that the records cannot support are skipped with a note in the
    report. Report files of an earlier report in ``out_dir`` that this one does
    not write are removed, so the folder never mixes two reports.

    Args:
        records: run records as returned by ``load_records``.
        out_dir: the output folder, usually ``<sweep>/report``.
        dataset: the dataset the records must belong to (default: theirs).
        figures: whether to draw the figures.
        expected_values: the sweep's grid, to list values with no finished run.
        expected_runs: runs per value of a complete sweep.
        expected_points: every ``(loss, param, value, run)`` of a study's grids
            (all its losses); a study of several losses lists those without a
            finished run (a SimLoss-only study uses ``expected_values`` and
            ``expected_runs``).
        figure2_values: parameter values drawn in Figure 2 (default: CCE and the
            values with the best validation mean of each metric, as in the paper).
        figure2_class: the class value of Figure 2 (b) (default: age 30, or the
            most frequent test class where no class has the value 30).
        other_files: glob patterns of the caller's own files in ``out_dir``
            (a tune's ``tune.md``, ...); any other file there is refused.

    A study of several losses (records whose ``loss`` is not SimLoss alone)
    gets the comparison report instead (:mod:`.compare`, :mod:`.compare_tables`):
    each loss at its best validation parameter with its spread and Wilcoxon
    marks against CCE, MAE/MSE under every decoder, every row of the grid, and
    the figure ``losses`` (accuracy against MAE, or SA and FSA).

    Returns:
        The path of ``report.md``.
    """
    from simloss.experiments.report.compare import record_loss

    check_report_folder(Path(out_dir), other_files)
    losses = {record_loss(r) for r in records} | {p[0] for p in expected_points or ()}
    if losses != {"simloss"}:
        return _write_comparison(
            records, Path(out_dir), dataset=dataset, figures=figures, expected=expected_points
        )
    summary = summarize_sweep(
        records, dataset=dataset, expected_values=expected_values, expected_runs=expected_runs
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure_names: list[str] = []
    if figures:
        from simloss.experiments.report.figures import draw_report_figures

        figure_names, figure_notes = draw_report_figures(
            summary, out, figure2_values=figure2_values, figure2_class=figure2_class
        )
        summary.notes.extend(figure_notes)
    md_path = out / "report.md"
    atomic_write_text(out / "report.csv", to_csv(summary))
    atomic_write_text(out / "report.tex", to_latex(summary))
    atomic_write_text(md_path, to_markdown(summary, figures=figure_names))
    _remove_stale(out, figure_names)
    return md_path


def check_report_folder(out: Path, other_files: Sequence[str] = ()) -> None:
    """Refuse a report folder that holds files no report writes (before any work).

    A report replaces its own files (:data:`REPORT_FILES`) and removes those it
    no longer writes; written into a run's or a sweep's folder it would sit
    beside their files, so such a folder is refused, naming what it holds.

    Raises:
        FileExistsError: ``out`` is a file, or holds other entries.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"Expected the report folder {out} to be a folder, but it is a file")
    if not out.is_dir():
        return
    own = (*REPORT_FILES, *other_files)
    # A peer writing the same report (two commands finishing one study) leaves the atomic
    # writer's temporary files beside them for a moment: ".NAME.XXXX.tmp".
    patterns = (*own, *(f".{pattern}.*" for pattern in own))
    foreign = sorted(
        p.name for p in out.iterdir() if not any(fnmatch.fnmatchcase(p.name, g) for g in patterns)
    )
    if foreign:
        raise FileExistsError(
            f"Expected the report folder {out} to be new, empty or a report's, but it also "
            f"holds {foreign[:5]}{' ...' if len(foreign) > 5 else ''}; choose another --out"
        )


def _remove_stale(out: Path, figure_names: list[str]) -> None:
    written = {"report.md", "report.tex", "report.csv"}
    written |= {f"{Path(n).stem}.{ext}" for n in figure_names for ext in ("png", "pdf")}
    for pattern in REPORT_FILES:
        for stale in out.glob(pattern):
            if stale.name not in written:
                stale.unlink()


def _write_comparison(
    records: Sequence[Mapping[str, Any]],
    out: Path,
    *,
    dataset: str | None,
    figures: bool,
    expected: Sequence[ExpectedPoint] | None = None,
) -> Path:
    from simloss.experiments.report.compare import compare_losses
    from simloss.experiments.report.compare_tables import (
        comparison_csv,
        comparison_latex,
        comparison_markdown,
    )

    comparison = compare_losses(records, expected=expected)
    if dataset is not None and dataset.lower() != comparison.dataset.lower():
        raise ValueError(
            f"Expected records of dataset {dataset!r} (`dataset`), but found {comparison.dataset!r}"
        )
    out.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    if figures:
        from simloss.experiments.report.figures import plot_loss_comparison, save_figure

        names.append(save_figure(plot_loss_comparison(comparison), out, "losses")[0])
    md_path = out / "report.md"
    atomic_write_text(out / "report.csv", comparison_csv(comparison))
    atomic_write_text(out / "report.tex", comparison_latex(comparison))
    atomic_write_text(md_path, comparison_markdown(comparison, figures=names))
    _remove_stale(out, names)
    return md_path

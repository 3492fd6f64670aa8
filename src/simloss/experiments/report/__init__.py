"""Reports of sweeps: the paper's tables, significance tests and figures.

The rooms:

- :mod:`~simloss.experiments.report.stats`: the Wilcoxon signed-rank test against CCE.
- :mod:`~simloss.experiments.report.summary`: :func:`summarize_sweep`, the
  statistics of a sweep (means, spreads, best values, tests, what is missing,
  what differs from the paper's setup).
- :mod:`~simloss.experiments.report.tables`: the one table model.
- :mod:`~simloss.experiments.report.render`: Markdown and LaTeX from the table
  model, CSV in long form.
- :mod:`~simloss.experiments.report.figures`: metrics against the parameter,
  Figure 2, similarity heatmaps.
- :mod:`~simloss.experiments.report.write`: :func:`write_report`, the report on disk.
- :mod:`~simloss.experiments.report.paper`: the paper's published Tables 1 and 2.
- :mod:`~simloss.experiments.report.checkpoints`: Figure 2 from the authors'
  published UTKFace checkpoints (``simloss figure2``).

References:
    Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
    https://arxiv.org/abs/2003.03182
"""

from __future__ import annotations

from simloss.experiments.report.render import CSV_COLUMNS, to_csv, to_latex, to_markdown
from simloss.experiments.report.stats import (
    WilcoxonResult,
    min_pairs_for_significance,
    wilcoxon_against_baseline,
)
from simloss.experiments.report.summary import (
    CellStats,
    SweepSummary,
    paper_differences,
    summarize_sweep,
)
from simloss.experiments.report.write import write_report

__all__ = [
    "CSV_COLUMNS",
    "CellStats",
    "SweepSummary",
    "WilcoxonResult",
    "min_pairs_for_significance",
    "paper_differences",
    "summarize_sweep",
    "to_csv",
    "to_latex",
    "to_markdown",
    "wilcoxon_against_baseline",
    "write_report",
]

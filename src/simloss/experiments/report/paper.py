"""The paper's published result tables (Kobs et al., 2020, Tables 1 and 2) as data.

Both tables ship with the package as long-format CSV files,
``simloss/data/paper_table1.csv`` (age estimation on UTKFace and AFAD, one row
per reduction factor ``r``) and ``simloss/data/paper_table2.csv`` (CIFAR-100,
one row per lower bound ``l``), with the columns

    dataset, param, value, split, metric, mean, mark, bold

- ``value`` is the hyper-parameter as printed (``"0.0"``, ``"0.90"``, ...),
- ``split`` is ``val`` or ``test``, ``metric`` one of ``acc``, ``mae``, ``mse``,
  ``sa``, ``fsa``,
- ``mean`` is the number as printed: Acc, SA and FSA in percent, MAE and MSE in
  years (squared years),
- ``mark`` is ``+``/``-`` where the paper marks a test value significantly
  better/worse than CCE (empty otherwise),
- ``bold`` is 1 for the best validation value of a column. The plain-text copy of
  the paper does not keep typefaces, so this column follows the caption's rule
  ("best validation values are written in bold"), which agrees with the
  surrounding text and the spacing artefacts left by the bold cells of Table 2.

References:
    Kobs, Steininger, Zehe, Lautenschlager, Hotho. "SimLoss: Class Similarities in
    Cross Entropy", ISMIS 2020. https://arxiv.org/abs/2003.03182
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from importlib import resources

from simloss.experiments.specs import METRIC_ORDER

__all__ = [
    "PAPER_TABLE_FILES",
    "PaperCell",
    "format_paper_row",
    "load_paper_table",
    "paper_cells_for",
    "paper_table_to_csv",
]

PAPER_TABLE_FILES: dict[int, str] = {1: "paper_table1.csv", 2: "paper_table2.csv"}
"""The packaged CSV file of each of the paper's tables."""

_COLUMNS = ("dataset", "param", "value", "split", "metric", "mean", "mark", "bold")
_SPLITS = ("val", "test")
_METRICS = METRIC_ORDER  # the record metrics, in the paper's order
_MARKS = ("", "+", "-")


@dataclass(frozen=True)
class PaperCell:
    """One published number of the paper's tables.

    Attributes:
        dataset: ``"utkface"``, ``"afad"`` or ``"cifar100"``.
        param: ``"r"`` (class-order reduction factor) or ``"l"`` (lower bound).
        value: the hyper-parameter as printed, e.g. ``"0.3"`` or ``"0.90"``.
        split: ``"val"`` or ``"test"``.
        metric: ``"acc"``, ``"mae"``, ``"mse"``, ``"sa"`` or ``"fsa"``.
        mean: the number as printed (percent for acc/sa/fsa).
        mark: ``"+"``, ``"-"`` or ``""`` (the paper's significance mark).
        bold: whether the cell is the best validation value of its column.
    """

    dataset: str
    param: str
    value: str
    split: str
    metric: str
    mean: float
    mark: str
    bold: bool

    @property
    def param_value(self) -> float:
        """The hyper-parameter as a float."""
        return float(self.value)

    @property
    def text(self) -> str:
        """The cell as printed in the paper's plain text: ``"15.17+"``."""
        return f"{self.mean:.2f}{self.mark}"


def _parse_rows(text: str, source: str) -> list[PaperCell]:
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != _COLUMNS:
        raise ValueError(
            f"Expected `{source}` to have the columns {list(_COLUMNS)}, "
            f"but found {reader.fieldnames}"
        )
    cells: list[PaperCell] = []
    for line, row in enumerate(reader, start=2):
        if row["split"] not in _SPLITS or row["metric"] not in _METRICS:
            raise ValueError(
                f"Expected split in {_SPLITS} and metric in {_METRICS} in `{source}` "
                f"line {line}, but found split={row['split']!r}, metric={row['metric']!r}"
            )
        if row["mark"] not in _MARKS or row["bold"] not in ("0", "1"):
            raise ValueError(
                f"Expected mark in {_MARKS} and bold in ('0', '1') in `{source}` line {line}, "
                f"but found mark={row['mark']!r}, bold={row['bold']!r}"
            )
        mean = float(row["mean"])
        if not math.isfinite(mean):
            raise ValueError(f"Expected a finite mean in `{source}` line {line}, found {mean}")
        cells.append(
            PaperCell(
                dataset=row["dataset"],
                param=row["param"],
                value=row["value"],
                split=row["split"],
                metric=row["metric"],
                mean=mean,
                mark=row["mark"],
                bold=row["bold"] == "1",
            )
        )
    return cells


def load_paper_table(table: int) -> list[PaperCell]:
    """Load one of the paper's result tables from the packaged CSV file.

    Args:
        table: 1 (age estimation, UTKFace and AFAD) or 2 (CIFAR-100).

    Returns:
        The table's cells in file order (column by column, rows in the paper's order).

    Example:
        >>> cells = load_paper_table(1)
        >>> [c.text for c in cells if c.dataset == "utkface" and c.value == "0.3"
        ...  and c.split == "test"]
        ['15.17+', '7.19+', '125.70']
    """
    if table not in PAPER_TABLE_FILES:
        raise ValueError(
            f"Expected `table` to be one of {sorted(PAPER_TABLE_FILES)}, but found {table!r}"
        )
    name = PAPER_TABLE_FILES[table]
    text = resources.files("simloss").joinpath("data", name).read_text(encoding="utf-8")
    return _parse_rows(text, name)


def paper_table_to_csv(cells: list[PaperCell]) -> str:
    """Write cells in the packaged CSV format (the inverse of :func:`load_paper_table`).

    Args:
        cells: cells as returned by :func:`load_paper_table`.

    Returns:
        The CSV text, header included, ``\\n`` line endings.

    Example:
        >>> cells = load_paper_table(2)
        >>> _parse_rows(paper_table_to_csv(cells), "copy") == cells
        True
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for c in cells:
        writer.writerow(
            [c.dataset, c.param, c.value, c.split, c.metric, f"{c.mean:.2f}", c.mark, int(c.bold)]
        )
    return out.getvalue()


def paper_cells_for(dataset: str, param: str) -> dict[tuple[float, str, str], PaperCell]:
    """The paper's numbers for one dataset, keyed by ``(param value, split, metric)``.

    Args:
        dataset: a dataset name as used in run records (case-insensitive).
        param: ``"r"`` or ``"l"``.

    Returns:
        The matching cells; empty when the paper has no table for the setting.

    Example:
        >>> cells = paper_cells_for("UTKFace", "r")
        >>> cells[(0.0, "val", "mae")].mean
        7.09
        >>> paper_cells_for("abalone", "r")
        {}
    """
    key = dataset.lower()
    found: dict[tuple[float, str, str], PaperCell] = {}
    for table in PAPER_TABLE_FILES:
        for cell in load_paper_table(table):
            if cell.dataset == key and cell.param == param:
                found[(cell.param_value, cell.split, cell.metric)] = cell
    return found


def format_paper_row(cells: list[PaperCell], dataset: str, value: str) -> str:
    """One row of a paper table in the paper's plain-text layout.

    The row holds the hyper-parameter followed by the validation then test cells
    of ``dataset`` in the paper's metric order, e.g.
    ``"0.3 16.25 6.95 117.67 15.17+ 7.19+ 125.70"``.

    Args:
        cells: cells as returned by :func:`load_paper_table`.
        dataset: the dataset whose columns to print.
        value: the hyper-parameter as printed.

    Returns:
        The row as space-separated tokens.

    Example:
        >>> format_paper_row(load_paper_table(2), "cifar100", "0.40")
        '0.40 38.03 50.58 20.28 32.18- 44.58- 18.30+'
    """
    row = [c for c in cells if c.dataset == dataset and c.value == value]
    if not row:
        raise ValueError(
            f"Expected a row for dataset {dataset!r} and value {value!r}, but found none"
        )
    order = {m: i for i, m in enumerate(_METRICS)}
    row.sort(key=lambda c: (_SPLITS.index(c.split), order[c.metric]))
    return " ".join([value, *(c.text for c in row)])

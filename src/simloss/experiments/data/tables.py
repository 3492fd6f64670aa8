"""Table files (CSV, TSV, Parquet) as tasks: features encoded on the training split, labels to classes.

A table task (:class:`~simloss.experiments.task.DataSource` of kind
``"table"``) names its label column; every other column (or the declared
``features``) is a feature:

- a **numeric** column (every cell a number in plain decimal notation, read
  strictly: ``1_0``, ``nan``, ``inf`` or a full-width digit is refused, as is
  a value beyond the float32 range, naming the line and column) is
  standardised, ``(x - mean) / std`` with the training split's mean and
  standard deviation (``std = 0`` counts as 1), unless declared ``unscaled``;
- a **categorical** column (declared, or every cell text) is one-hot encoded
  over its levels (declared in order, else the sorted levels of the training
  split); a level unseen in training is refused by name, or encoded as all
  zeros where the task says ``unseen = "zeros"``. A column of numbers and
  text mixed is refused (declare it categorical), never guessed.

The encoding is a :class:`TableEncoding`, stored with a run
(:class:`~simloss.experiments.data.Preprocessing`), so ``simloss predict``
encodes new rows exactly as the training rows were. Parquet files need
pandas and pyarrow.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simloss.experiments._files import read_text_file
from simloss.experiments.data._types import PreparedData, prepared_data
from simloss.experiments.data.classes import (
    FLOAT32_MAX,
    build_classes,
    check_training_classes,
    encode_labels,
    is_number_text,
    number_column,
)
from simloss.experiments.data.splits import declared_split, split_examples, subset_indices
from simloss.experiments.task import DataSource, Task

__all__ = [
    "FeatureColumn",
    "Table",
    "TableEncoding",
    "load_table_task",
    "read_table",
]

logger = logging.getLogger(__name__)


class RowNames(Sequence[str]):
    """Where each row of a table is (``"wine.csv line 7"``), made only when a message needs one."""

    def __init__(self, where: str, lines: list[int], word: str, detail: str = "") -> None:
        self.where, self.lines, self.word, self.detail = where, lines, word, detail

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [f"{self.where} {self.word} {n}{self.detail}" for n in self.lines[index]]
        return f"{self.where} {self.word} {self.lines[index]}{self.detail}"


@dataclass(frozen=True)
class Table:
    """The cells of a table file, column by column, as text (or numbers from Parquet).

    Attributes:
        where: the file, for messages.
        names: the column names.
        columns: the cells of every column, in row order.
        lines: the line number (CSV) or row number (Parquet) of each row.
        text: whether every cell is text (CSV/TSV); Parquet cells are values.
    """

    where: str
    names: tuple[str, ...]
    columns: dict[str, list[Any]]
    lines: list[int]
    text: bool = True

    @property
    def rows(self) -> RowNames:
        """Where each row is (``"wine.csv line 7"``; ``"... row 7"`` in Parquet files)."""
        return RowNames(self.where, self.lines, "line" if self.text else "row")

    def cells(self, column: str) -> RowNames:
        """Where each cell of a column is (``"wine.csv line 7, column 'quality'"``)."""
        return RowNames(
            self.where, self.lines, "line" if self.text else "row", f", column {column!r}"
        )

    def __len__(self) -> int:
        return len(self.lines)

    def take(self, rows: np.ndarray) -> Table:
        """The table of the given rows, in that order."""
        if len(rows) == 0:
            return Table(self.where, self.names, {n: [] for n in self.names}, [], self.text)
        pick = operator.itemgetter(*rows.tolist())

        def taken(values: list[Any]) -> list[Any]:
            got = pick(values)
            return list(got) if len(rows) > 1 else [got]

        columns = {name: taken(cells) for name, cells in self.columns.items()}
        return Table(self.where, self.names, columns, taken(self.lines), self.text)

    def column(self, name: str, what: str = "column") -> list[Any]:
        """The cells of a column, or an error naming the file and its columns."""
        if name not in self.columns:
            raise ValueError(
                f"Expected {what} {name!r} in {self.where}, but found the columns "
                f"{list(self.names)}"
            )
        return self.columns[name]


def csv_lines(text: str) -> io.StringIO:
    """The lines of a CSV text as :mod:`csv` must read them: only ``\\n`` ends a line.

    Python's :meth:`str.splitlines` also breaks at ``\\r``, ``\\x0c``, ``\\x85``,
    ``U+2028`` and more, which split a cell (and a quoted cell holding a newline)
    into invented rows and shift every later line number; ``\\r\\n`` endings are
    read by :mod:`csv` itself, and a line break inside a quoted cell stays in the cell.

    Example:
        >>> list(csv.reader(csv_lines('a,"x\\ny"\\nb,u\\u2028v\\r\\n')))
        [['a', 'x\\ny'], ['b', 'u\\u2028v']]
    """
    return io.StringIO(text, newline="\n")


def _csv_error(exc: csv.Error) -> str:
    if "new-line character seen in unquoted field" in str(exc):
        return (
            "a carriage return (\\r) without \\n inside an unquoted cell (only \\n and \\r\\n end "
            "rows: quote the cell, or convert the file's line endings)"
        )
    return str(exc)


#: Field separators a table may use, for the hint when another one was read.
_SEPARATORS = (",", ";", "\t", "|")


def _delimiter_hint(text: str, delimiter: str) -> str:
    """``"; did you mean delimiter ';'? ..."`` when the first line holds another separator.

    Only a hint for a message: the delimiter is declared, never guessed.

    Example:
        >>> print(_delimiter_hint('"a";"b"\\n1;2\\n', ","))
        ; did you mean delimiter ';'? (`data.delimiter = ";"` in the task file, or --delimiter ';' of simloss task new)
        >>> print(_delimiter_hint("a\\tb\\n", ","))
        ; did you mean delimiter '\\t'? (`data.delimiter = "\\t"` in the task file, or --delimiter '\\t' of simloss task new)
        >>> _delimiter_hint("a,b\\n", ",")
        ''
    """
    first = text.split("\n", 1)[0]
    counts = {c: first.count(c) for c in _SEPARATORS if c != delimiter}
    best = max(counts, key=lambda c: counts[c])
    if not counts[best]:
        return ""
    shown = "'\\t'" if best == "\t" else repr(best)
    return (
        f"; did you mean delimiter {shown}? (`data.delimiter = {json.dumps(best)}` in the task "
        f"file, or --delimiter {shown} of simloss task new)"
    )


def _delimiter(path: Path, declared: str | None) -> str:
    if declared is not None:
        return declared
    return "\t" if path.suffix.lower() in (".tsv", ".tab") else ","


def read_table(
    path: Path | None,
    *,
    header: bool,
    columns: Sequence[str] | None,
    delimiter: str | None,
    embedded: str | None = None,
    optional: str | None = None,
    what: str = "table file",
) -> Table:
    """Read a CSV/TSV (or Parquet) file into columns of cells.

    Blank lines are skipped; every other row must have one cell per column.

    Args:
        path: the file (``None``: the packaged file ``embedded``).
        header: whether the first row names the columns.
        columns: the column names of a file without a header row.
        delimiter: the field separator (``None``: tab for ``.tsv``/``.tab``, else comma).
        embedded: a file in ``simloss/data`` read when ``path`` is ``None``.
        what: what the file is, for messages (``"row file"`` for ``predict``).
        optional: a column rows may leave out (the label, in rows given to
            ``predict`` of a table without a header, wherever it is): a row of
            one cell fewer than the columns gets an empty cell there.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a row with another number of cells, a header with a
            repeated or empty name, no rows (naming the file and line).
    """
    if path is None:
        if embedded is None:
            raise ValueError("Expected a table file, but found none")
        text = resources.files("simloss").joinpath("data", embedded).read_text(encoding="utf-8")
        where = f"simloss/data/{embedded}"
        delim = _delimiter(Path(embedded), delimiter)
    else:
        file = Path(path)
        if file.suffix.lower() == ".parquet":
            return _read_parquet(file, columns)
        text = read_text_file(file, what)
        where = str(file)
        delim = _delimiter(file, delimiter)
    names, cells, lines = _parse_rows(text, delim, where, header, columns, optional)
    by_column = dict(zip(names, map(list, zip(*cells, strict=True)), strict=True))
    return Table(where, tuple(names), by_column, lines)


def _parse_rows(
    text: str,
    delimiter: str,
    where: str,
    header: bool,
    columns: Sequence[str] | None,
    optional: str | None,
) -> tuple[list[str], list[list[str]], list[int]]:
    """The column names, the rows (blank lines skipped) and each row's first line number."""
    reader = csv.reader(csv_lines(text), delimiter=delimiter, strict=True)
    try:
        if '"' not in text:  # no quoted cells: one row per line, parsed in C
            parsed = list(reader)
            numbers = range(1, len(parsed) + 1)
        else:  # a quoted cell may span lines: the reader counts them
            parsed, numbers_list = [], []
            end = 0  # the last line read: a row starts on the line after the previous one's
            for row in reader:
                parsed.append(row)
                numbers_list.append(end + 1)
                end = reader.line_num
            numbers = numbers_list  # type: ignore[assignment]
    except csv.Error as exc:
        hint = _delimiter_hint(text, delimiter) if reader.line_num <= 1 else ""
        raise ValueError(
            f"Could not read {where} line {reader.line_num}: {_csv_error(exc)}{hint}"
        ) from exc
    if all(parsed):  # no blank line (csv gives [] for one): every row kept as read
        kept = list(zip(parsed, numbers, strict=True))
    else:
        kept = [(row, number) for row, number in zip(parsed, numbers, strict=True) if row]
    names: list[str] | None = None if header else list(columns or ())
    if names is None:
        if not kept:
            raise ValueError(f"Expected rows of data in {where}, but found none")
        (first, line), kept = kept[0], kept[1:]
        names = [c.strip() for c in first]
        hint = _delimiter_hint(text, delimiter) if len(names) == 1 else ""
        if hint:
            raise ValueError(
                f"Expected columns separated by {delimiter!r} in the header of {where} (line "
                f"{line}), but found one column {names[0][:60]!r}{hint}"
            )
        empty = [i + 1 for i, n in enumerate(names) if not n]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if empty or repeated:
            raise ValueError(
                f"Expected distinct, non-empty column names in the header of {where} "
                f"(line {line}), but found "
                + (f"empty column(s) {empty}" if empty else f"repeats {repeated}")
            )
    if not kept:
        raise ValueError(f"Expected rows of data in {where}, but found none")
    rows = [row for row, _ in kept]
    lines = [number for _, number in kept]
    width = len(names)
    if optional is not None and optional in names:
        k = names.index(optional)
        rows = [[*row[:k], "", *row[k:]] if len(row) == width - 1 else row for row in rows]
    if set(map(len, rows)) != {width}:  # a line of spaces is blank too; then refuse
        spaces = [len(row) == 1 and not row[0].strip() and width > 1 for row in rows]
        rows = [row for row, blank in zip(rows, spaces, strict=True) if not blank]
        lines = [line for line, blank in zip(lines, spaces, strict=True) if not blank]
    if not rows:
        raise ValueError(f"Expected rows of data in {where}, but found none")
    if set(map(len, rows)) != {width}:
        bad = next(i for i, row in enumerate(rows) if len(row) != width)
        hint = _delimiter_hint(text, delimiter) if len(rows[bad]) == 1 else ""
        raise ValueError(
            f"Expected {width} cells in {where} line {lines[bad]} (columns {names}), but "
            f"found {len(rows[bad])}{hint}"
        )
    return names, rows, lines


def _read_parquet(file: Path, columns: Sequence[str] | None) -> Table:
    from simloss._optional import require

    pandas = require("pandas", "tables")
    if not file.is_file():
        raise FileNotFoundError(f"Table file {file} does not exist")
    try:
        frame = pandas.read_parquet(file)
    except Exception as exc:  # pyarrow raises many kinds
        raise ValueError(f"Could not read Parquet file {file}: {exc}") from exc
    names = tuple(str(c) for c in frame.columns)
    if columns is not None:
        raise ValueError(
            f"Expected no `data.columns` for Parquet file {file} (it names its columns)"
        )
    if len(frame) == 0:
        raise ValueError(f"Expected rows of data in {file}, but found none")
    data = {str(c): _parquet_cells(pandas, frame[c], str(c), file) for c in frame.columns}
    return Table(str(file), names, data, list(range(1, len(frame) + 1)), text=False)


def _parquet_cells(pandas: Any, series: Any, name: str, file: Path) -> list[Any]:
    """A Parquet column's cells: numbers, text or booleans, none missing (else refused by row).

    Dates, durations and intervals have no one number or category per value that
    simloss could choose (one category per date would be no feature), and a list
    or mapping in a cell is no scalar: both are refused, naming the column and its
    dtype, as is a missing value (``None``, NaN, ``<NA>``), naming its row.
    """
    types = pandas.api.types
    dtype = series.dtype
    if (
        types.is_datetime64_any_dtype(dtype)
        or types.is_timedelta64_dtype(dtype)
        or isinstance(dtype, (pandas.PeriodDtype, pandas.IntervalDtype))
    ):
        raise ValueError(
            f"Expected numbers or text in column {name!r} of {file}, but found dtype {dtype} "
            "(convert it to numbers or categories first)"
        )
    missing = series.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"Expected a value in {file} row {row + 1}, column {name!r}, but found a missing "
            f"value ({series.iloc[row]})"
        )
    cells: list[Any] = series.tolist()
    if not (types.is_numeric_dtype(dtype) or types.is_bool_dtype(dtype)):
        for row, cell in enumerate(cells):
            if not isinstance(cell, (str, int, float, np.number, np.bool_)):
                shown = repr(cell)
                raise ValueError(
                    f"Expected a number or text in {file} row {row + 1}, column {name!r} (dtype "
                    f"{dtype}), but found a {type(cell).__name__} "
                    f"{shown if len(shown) <= 60 else shown[:57] + '...'}"
                )
    return cells


@dataclass(frozen=True)
class FeatureColumn:
    """How one table column becomes model inputs.

    Attributes:
        name: the column.
        kind: ``"numeric"`` or ``"categorical"``.
        levels: a categorical column's levels, in one-hot order.
        unseen: a level not among ``levels``: ``"error"`` or ``"zeros"``.
        nonnegative: a negative value is refused.
        scaled: whether a numeric column is standardised.
    """

    name: str
    kind: str
    levels: tuple[str, ...] = ()
    unseen: str = "error"
    nonnegative: bool = False
    scaled: bool = True

    @property
    def outputs(self) -> tuple[str, ...]:
        """The names of the model inputs it gives (``sex_M``, ``sex_F``, ... for one-hot)."""
        if self.kind == "categorical":
            return tuple(f"{self.name}_{level}" for level in self.levels)
        return (self.name,)


@dataclass(frozen=True)
class TableEncoding:
    """A table's feature encoding, fitted on the training split and stored with a run.

    Attributes:
        features: the feature columns, in input order.
        label: the label column (absent from rows given to ``predict``).
        header: whether files have a header row.
        columns: the column names of files without one.
        delimiter: the field separator (``None``: from the extension).
    """

    features: tuple[FeatureColumn, ...]
    label: str
    header: bool = True
    columns: tuple[str, ...] | None = None
    delimiter: str | None = None
    split_column: str | None = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The model's inputs, in order."""
        return tuple(name for column in self.features for name in column.outputs)

    @property
    def scaled(self) -> np.ndarray:
        """bool ``(F,)``: which inputs are standardised."""
        return np.array(
            [
                column.kind == "numeric" and column.scaled
                for column in self.features
                for _ in column.outputs
            ],
            dtype=bool,
        )

    def encode(self, table: Table, parsed: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """The float32 inputs ``(N, F)`` of a table's rows (before standardisation).

        Raises:
            ValueError: a missing column, a cell that is not a number, a
                negative value where the column must be >= 0, an unseen
                category (naming the line, the column and the value).
        """
        blocks: list[np.ndarray] = []
        for column in self.features:
            cells = table.column(column.name, "feature column")
            if column.kind == "numeric":
                known = None if parsed is None else parsed.get(column.name)
                blocks.append(_numeric(cells, column, table, known)[:, None])
            else:
                blocks.append(_one_hot(cells, column, table))
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {
            "label": self.label,
            "header": self.header,
            "columns": None if self.columns is None else list(self.columns),
            "delimiter": self.delimiter,
            "split_column": self.split_column,
            "features": [
                {
                    "name": c.name,
                    "kind": c.kind,
                    "levels": list(c.levels),
                    "unseen": c.unseen,
                    "nonnegative": c.nonnegative,
                    "scaled": c.scaled,
                }
                for c in self.features
            ],
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> TableEncoding:
        """Rebuild from :meth:`to_dict`'s form; errors name ``where``."""
        try:
            features = tuple(
                FeatureColumn(
                    name=str(f["name"]),
                    kind=str(f["kind"]),
                    levels=tuple(str(v) for v in f["levels"]),
                    unseen=str(f["unseen"]),
                    nonnegative=bool(f["nonnegative"]),
                    scaled=bool(f["scaled"]),
                )
                for f in data["features"]
            )
            columns = data.get("columns")
            encoding = cls(
                features=features,
                label=str(data["label"]),
                header=bool(data["header"]),
                columns=None if columns is None else tuple(str(c) for c in columns),
                delimiter=data.get("delimiter"),
                split_column=data.get("split_column"),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"Could not read the table encoding in {where}: {exc!r}") from exc
        if not features or any(c.kind not in ("numeric", "categorical") for c in features):
            raise ValueError(f"Expected numeric or categorical feature columns in {where}")
        return encoding


def _numeric(
    cells: list[Any], column: FeatureColumn, table: Table, known: np.ndarray | None = None
) -> np.ndarray:
    values: np.ndarray | None = known
    if values is None and table.text:
        values = number_column(cells)
    elif values is None:  # Parquet: numbers (or None/NaN) as objects
        try:
            values = np.array(cells, dtype=np.float64)
        except (TypeError, ValueError):
            values = None
    if values is None:
        bad = next(i for i, v in enumerate(cells) if not _is_number_cell(v))
        raise ValueError(
            f"Expected a number in {table.rows[bad]}, column {column.name!r}, but found "
            f"{cells[bad]!r}"
        )
    finite = np.isfinite(values) & (np.abs(values) <= FLOAT32_MAX)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"Expected a finite number within the float32 range (|x| <= 3.4e38) in "
            f"{table.rows[bad]}, column {column.name!r}, but found {cells[bad]!r}"
        )
    if column.nonnegative and (values < 0).any():
        bad = int(np.flatnonzero(values < 0)[0])
        raise ValueError(
            f"Expected a value >= 0 in {table.rows[bad]}, column {column.name!r} (a "
            f"measurement), but found {cells[bad]!r}"
        )
    return values


def _is_number_cell(value: Any) -> bool:
    if isinstance(value, str):
        return is_number_text(value)
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _one_hot(cells: list[Any], column: FeatureColumn, table: Table) -> np.ndarray:
    index = {level: i for i, level in enumerate(column.levels)}
    out = np.zeros((len(cells), len(column.levels)), dtype=np.float32)
    for row, cell in enumerate(cells):
        k = index.get(str(cell).strip())
        if k is None:
            if column.unseen == "zeros":
                continue
            raise ValueError(
                f"Expected a category of column {column.name!r} seen in training "
                f"({list(column.levels)}), but {table.rows[row]} has {str(cell)!r} (declare "
                f'`data.categories.{column.name}`, or `data.unseen = "zeros"`)'
            )
        out[row, k] = 1.0
    return out


def _fit_encoding(
    source: DataSource, table: Table, train_rows: np.ndarray, parsed: dict[str, np.ndarray]
) -> TableEncoding:
    label = source.label or ""
    table.column(label, "label column")
    if source.split_column is not None:
        table.column(source.split_column, "split column")
    excluded = {label, source.split_column}
    names = source.features or tuple(n for n in table.names if n not in excluded)
    if not names:
        raise ValueError(
            f"Expected feature columns besides the label in {table.where}, but found none"
        )
    declared = set(source.categorical or ())
    features: list[FeatureColumn] = []
    for name in names:
        cells = table.column(name, "feature column")
        categorical = name in declared or name in source.categories
        values = None
        if not categorical and table.text:
            values = number_column(cells)
            if values is not None:
                parsed[name] = values  # read once: encode() takes it from here
        all_numbers = values is not None or (not table.text and all(map(_is_number_cell, cells)))
        if source.categorical is None and not categorical and not all_numbers:
            if not any(map(_is_number_cell, cells)):
                categorical = True
            else:
                bad = next(i for i, v in enumerate(cells) if not _is_number_cell(v))
                raise ValueError(
                    f"Expected column {name!r} of {table.where} to hold numbers only or "
                    f"categories only, but {table.rows[bad]} has {cells[bad]!r} among numbers "
                    f"(declare it in `data.categorical` if it is a category)"
                )
        if categorical:
            levels = source.categories.get(name)
            if levels is None:
                levels = tuple(sorted({str(cells[i]).strip() for i in train_rows}))
            features.append(FeatureColumn(name, "categorical", tuple(levels), source.unseen))
        else:
            features.append(
                FeatureColumn(
                    name,
                    "numeric",
                    nonnegative=name in source.nonnegative,
                    scaled=name not in source.unscaled,
                )
            )
    return TableEncoding(
        features=tuple(features),
        label=label,
        header=source.header,
        columns=source.columns,
        delimiter=source.delimiter,
        split_column=source.split_column,
    )


def _check_named_columns(task: Task, table: Table) -> None:
    """Refuse a column list of the task naming no feature column of the table (a typo).

    ``features``, ``categorical``, ``categories``, ``nonnegative`` and ``unscaled``
    name feature columns: a name that is not a column of the file, or is the label
    or split column, would be silently ignored.
    """
    source = task.data
    lists = {
        "features": source.features or (),
        "categorical": source.categorical or (),
        "categories": tuple(source.categories),
        "nonnegative": source.nonnegative,
        "unscaled": source.unscaled,
    }
    others = {source.label: "the label column", source.split_column: "the split column"}
    declared = task.file or f"task {task.name!r}"
    for key, names in lists.items():
        for name in names:
            if name not in table.columns:
                raise ValueError(
                    f"Expected `data.{key}` in {declared} to name columns of {table.where}, but "
                    f"found {name!r}, which is none of its columns {list(table.names)}"
                )
            if name in others:
                raise ValueError(
                    f"Expected `data.{key}` in {declared} to name feature columns, but found "
                    f"{name!r}, {others[name]}"
                )
            if source.features is not None and key != "features" and name not in source.features:
                raise ValueError(
                    f"Expected `data.{key}` in {declared} to name columns of `data.features`, "
                    f"but found {name!r}, which is not among {list(source.features)}"
                )


def feature_stats(
    inputs: np.ndarray, train: np.ndarray, scaled: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation ``(1, F)`` of the training rows' scaled inputs (float64, then float32).

    Unscaled inputs (one-hot, declared ``unscaled``) get mean 0 and std 1; a
    constant input gets std 1.
    """
    block = inputs[train].astype(np.float64)
    mean = np.where(scaled, block.mean(axis=0), 0.0)
    spread = block.std(axis=0)
    std = np.where(scaled & (spread > 0), spread, 1.0)
    return (
        torch.tensor(mean, dtype=torch.float32).reshape(1, -1),
        torch.tensor(std, dtype=torch.float32).reshape(1, -1),
    )


def load_table_task(
    task: Task,
    *,
    path: str | Path | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    limit: int | None = None,
) -> PreparedData:
    """Load a table task: read, map labels to classes, split, encode and standardise.

    Args:
        task: a task of data kind ``"table"``.
        path: the table file (``data_dir``), overriding the declared path.
        val_fraction, test_fraction: the seeded split's fractions (a declared
            split column takes precedence).
        split_seed: seed of the split and of ``limit``'s subset.
        limit: use a random subset of at most this many rows.

    Returns:
        A :class:`PreparedData` of float features ``(N, F)`` with the table
        encoding in its preprocessing.

    Raises:
        ValueError: the errors of :func:`read_table`, :class:`TableEncoding`
            and :mod:`.classes`, each one line naming the file, row and column.
    """
    source = task.data
    file = Path(path) if path is not None else source.path
    if file is not None and file.is_dir() and source.embedded is not None:
        file = file / source.embedded  # a folder of the embedded file's name (abalone.data)
    if file is not None and file.is_dir():
        raise IsADirectoryError(
            f"Expected a table file for task {task.name!r}, but {file} is a folder"
        )
    table = read_table(
        file,
        header=source.header,
        columns=source.columns,
        delimiter=source.delimiter,
        embedded=source.embedded if file is None else None,
    )
    labels = table.column(source.label or "", "label column")
    _check_named_columns(task, table)
    label_cells = table.cells(source.label or "")
    classes = build_classes(task.classes, labels, table.where, rows=label_cells)
    codes = encode_labels(classes, task.classes, labels, label_cells, table.where)
    kept = np.flatnonzero(codes.keep)
    declared = None
    if source.split_column is not None:
        cells = table.column(source.split_column, "split column")
        declared = declared_split(
            [cells[i] for i in kept],
            [table.rows[i] for i in kept],
            source.split_column,
            table.where,
        )
    chosen = subset_indices(len(kept), limit, split_seed)
    rows = kept[chosen]
    targets = codes.targets[chosen]
    train, val, test = split_examples(
        targets,
        source.split,
        None if declared is None else declared[chosen],
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        where=table.where,
    )
    check_training_classes(classes, task.classes, targets[train], table.where)
    subset = table if np.array_equal(rows, np.arange(len(table))) else table.take(rows)
    parsed: dict[str, np.ndarray] = {}
    encoding = _fit_encoding(source, subset, train, parsed)
    inputs = encoding.encode(subset, parsed)
    mean, std = feature_stats(inputs, train, encoding.scaled)
    info: dict[str, Any] = {"found": len(table), "used": len(rows), "source": table.where}
    info.update(codes.info())
    if limit is not None:
        info["limit_dropped"] = len(kept) - len(rows)
    return prepared_data(
        task,
        classes,
        torch.from_numpy(inputs),
        targets,
        (train, val, test),
        scale=1.0,
        mean=mean,
        std=std,
        info=info,
        feature_names=encoding.feature_names,
        table=encoding,
    )

"""The paper's Tables 1 and 2 shipped as data: round trip and agreement with the paper text."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from conftest import shared_path
from simloss.experiments.report.paper import (
    format_paper_row,
    load_paper_table,
    paper_cells_for,
    paper_table_to_csv,
)

PAPER_TEXT = ("..", "seeds", "000_798cb4bb8722eebe.txt")


@pytest.mark.parametrize("table", [1, 2], ids=["table1", "table2"])
def test_csv_round_trip_is_byte_identical(table: int) -> None:
    name = f"paper_table{table}.csv"
    text = resources.files("simloss").joinpath("data", name).read_text(encoding="utf-8")
    assert paper_table_to_csv(load_paper_table(table)) == text


@pytest.mark.parametrize(
    ("table", "n_cells", "n_marks"), [(1, 120, 32), (2, 66, 18)], ids=["table1", "table2"]
)
def test_table_sizes_and_mark_counts(table: int, n_cells: int, n_marks: int) -> None:
    cells = load_paper_table(table)
    assert len(cells) == n_cells
    assert sum(c.mark != "" for c in cells) == n_marks
    assert all(c.split == "test" for c in cells if c.mark)


@pytest.mark.parametrize("table", [1, 2], ids=["table1", "table2"])
def test_bold_is_best_validation_value_per_column(table: int) -> None:
    cells = load_paper_table(table)
    columns = {(c.dataset, c.split, c.metric) for c in cells}
    for dataset, split, metric in columns:
        column = [c for c in cells if (c.dataset, c.split, c.metric) == (dataset, split, metric)]
        pick = min if metric in ("mae", "mse") else max
        best = pick(c.mean for c in column)
        expected = {c.value for c in column if split == "val" and c.mean == best}
        assert {c.value for c in column if c.bold} == expected


def test_known_cells() -> None:
    utk = paper_cells_for("utkface", "r")
    assert utk[(0.3, "val", "acc")].bold
    assert utk[(0.8, "test", "acc")].text == "12.57-"
    assert utk[(0.9, "test", "mse")].text == "117.62+"
    cifar = paper_cells_for("cifar100", "l")
    assert cifar[(0.99, "test", "acc")].mean == 39.51
    assert cifar[(0.0, "test", "fsa")].mark == "-"
    assert paper_cells_for("utkface", "l") == {}


def test_unknown_table_is_rejected() -> None:
    with pytest.raises(ValueError, match="`table`"):
        load_paper_table(3)


def _normalise(line: str) -> str:
    spaced = " ".join(line.replace("\u2212", "-").replace("%", " ").split())
    return re.sub(r" ([+-])(?= |$)", r"\1", spaced)


def test_rows_match_the_paper_text() -> None:
    path = shared_path(*PAPER_TEXT)
    lines = {_normalise(line) for line in path.read_text(encoding="utf-8").splitlines()}
    table1 = load_paper_table(1)
    values1 = sorted({c.value for c in table1})
    assert len(values1) == 10
    for value in values1:
        utk = format_paper_row(table1, "utkface", value)
        afad = format_paper_row(table1, "afad", value).split(" ", 1)[1]
        assert f"{utk} {afad}" in lines
    table2 = load_paper_table(2)
    values2 = sorted({c.value for c in table2})
    assert len(values2) == 11
    for value in values2:
        assert _normalise(format_paper_row(table2, "cifar100", value)) in lines

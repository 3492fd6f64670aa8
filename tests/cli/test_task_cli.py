"""``simloss task new`` and ``simloss task check``: a declaration from flags, checked on its data."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from simloss.cli import main
from simloss.experiments.config import TrainConfig
from simloss.experiments.data import load_data

#: The header of UCI's winequality-red.csv (Cortez et al. 2009): quoted names, ';' between.
WINE_HEADER = (
    '"fixed acidity";"volatile acidity";"citric acid";"residual sugar";"chlorides";'
    '"free sulfur dioxide";"total sulfur dioxide";"density";"pH";"sulphates";"alcohol";"quality"'
)
#: Its first four rows as the file holds them.
WINE_ROWS = [
    "7.4;0.7;0;1.9;0.076;11;34;0.9978;3.51;0.56;9.4;5",
    "7.8;0.88;0;2.6;0.098;25;67;0.9968;3.2;0.68;9.8;5",
    "7.8;0.76;0.04;2.3;0.092;15;54;0.997;3.26;0.65;9.8;5",
    "11.2;0.28;0.56;1.9;0.075;17;60;0.998;3.16;0.58;9.8;6",
]


def _wine(folder: Path) -> Path:
    """A file in the layout of UCI's winequality-red.csv: its rows, then seeded rows of 5, 6, 7."""
    rng = np.random.default_rng(0)
    rows = list(WINE_ROWS)
    for quality in [5, 6, 7] * 10:
        values = rng.uniform(0.1, 10.0, size=11)
        rows.append(";".join([*(f"{v:.4g}" for v in values), str(quality)]))
    path = folder / "winequality-red.csv"
    path.write_text(WINE_HEADER + "\n" + "\n".join(rows) + "\n")
    return path


def test_the_uci_wine_layout_needs_its_delimiter_and_the_error_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pandas = pytest.importorskip("pandas")
    wine = _wine(tmp_path)
    out = tmp_path / "wine.toml"
    assert main(["task", "new", "--table", str(wine), "--label", "quality", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"Could not read {wine} line 1" in err
    assert "did you mean delimiter ';'? (`data.delimiter = \";\"` in the task file, or " in err
    assert "--delimiter ';' of simloss task new)" in err and not out.exists()
    assert len(err.strip().splitlines()) == 1
    argv = ["task", "new", "--table", str(wine), "--delimiter", ";", "--label", "quality"]
    assert main([*argv, "--out", str(out)]) == 0
    assert tomllib.loads(out.read_text())["data"]["delimiter"] == ";"
    data = load_data(TrainConfig(task=str(out)))
    frame = pandas.read_csv(wine, sep=";")  # an independent reader of the same file
    assert list(data.feature_names or ()) == list(frame.columns[:-1])
    assert data.class_values == sorted(float(v) for v in frame["quality"].unique())
    assert sum(len(s) for s in (data.train, data.val, data.test)) == len(frame)
    rows = np.concatenate([s.inputs.numpy() for s in (data.train, data.val, data.test)])
    expected = frame.iloc[:, :-1].to_numpy(np.float32)
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, expected.tolist()))


def test_a_header_of_one_column_holding_another_separator_suggests_it(tmp_path: Path) -> None:
    wine = _wine(tmp_path)
    wine.write_text(wine.read_text().replace('"', ""))  # the header without quotes
    task = tmp_path / "wine.toml"
    task.write_text(f'name = "wine"\n[data]\nkind = "table"\npath = "{wine}"\nlabel = "quality"\n')
    with pytest.raises(
        ValueError,
        match=r"Expected columns separated by ',' in the header of .*winequality-red.csv \(line "
        r"1\), but found one column 'fixed acidity;volatile acidity;.*; did you mean delimiter ';'\?",
    ):
        load_data(TrainConfig(task=str(task)))


@pytest.mark.parametrize(
    ("flags", "out", "message"),
    [
        (["--name", "bad name"], "w.toml", "Expected --name to be a task name of letters, digits and _.+- (used in records and reports), but found 'bad name'"),
        (["--name", "UTKFace"], "w.toml", "Expected --name to be other than a built-in dataset's"),
        ([], "my wine.toml", "Expected the name of --out {out} (its stem; or give --name) to be a task name"),
        ([], "missing/w.toml", "Expected the folder of --out {out} to exist, but {folder} does not"),
        (["--order", "5,6,5"], "w.toml", "Expected `classes.order` in {out} to be labels without repeats"),
    ],
    ids=["bad-name", "builtin-name", "bad-out-name", "missing-folder", "declaration-error"],
)  # fmt: skip
def test_task_new_errors_name_the_flag_or_the_out_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], out: str, message: str
) -> None:
    wine = _wine(tmp_path)
    target = tmp_path / out
    argv = ["task", "new", "--table", str(wine), "--delimiter", ";", "--label", "quality"]
    assert main([*argv, *flags, "--out", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    assert message.format(out=target, folder=target.parent) in err, err
    assert len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["winequality-red.csv"]  # nothing left


def test_task_new_refuses_an_image_size_by_its_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    argv = ["task", "new", "--images", str(folder), "--size", "3"]
    assert main([*argv, "--out", str(tmp_path / "i.toml")]) == 1
    assert "Expected --size in [4, 4096] (pixels), but found 3" in capsys.readouterr().err

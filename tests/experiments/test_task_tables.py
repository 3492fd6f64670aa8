"""A user's table file as a task: real ordinal benchmark tables through train, sweep, report, predict."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from task_fixtures import (
    skordinal_table,
    write_abalone_csv,
    write_abalone_npz,
    write_skordinal_csv,
    write_task,
)

from simloss.cli import main
from simloss.experiments.config import TrainConfig
from simloss.experiments.data import load_data
from simloss.experiments.predict import load_run, predict_features, predict_rows
from simloss.experiments.report import write_report
from simloss.experiments.sweep import Grid, load_records, run_sweep
from simloss.experiments.train import run_training

QUICK = {"epochs": 3, "progress": False, "batch_size": 64, "num_threads": 1}


def _era_task(tmp_path: Path, extra: str = "") -> Path:
    write_skordinal_csv(tmp_path / "data", "era")
    return write_task(
        tmp_path / "era.toml",
        f"""
name = "era"
title = "ERA (job candidates, 9 acceptance levels)"
[data]
kind = "table"
path = "data/era.csv"
label = "label"
{extra}
""",
    )


def test_era_classes_and_stratified_split_match_a_hand_count(tmp_path: Path) -> None:
    task = _era_task(tmp_path)
    names, rows, labels = skordinal_table("era")
    data = load_data(TrainConfig(task=str(task)))
    counts = np.bincount([int(v) - 1 for v in labels], minlength=9)
    assert data.name == "era" and data.num_classes == 9 and data.ordinal
    assert data.class_values == [float(v) for v in range(1, 10)]
    assert data.class_names == [str(v) for v in range(1, 10)]
    assert list(data.feature_names or ()) == names
    split_counts = [
        np.bincount(s.targets.numpy(), minlength=9) for s in (data.train, data.val, data.test)
    ]
    assert np.array_equal(sum(split_counts), counts)
    # Stratified: round(n_c * 0.2) of each class to validation and to test.
    expected = np.floor(counts * 0.2 + 0.5).astype(int)
    assert np.array_equal(split_counts[1], expected) and np.array_equal(split_counts[2], expected)
    # Features standardised with the training rows' statistics only.
    x = np.array(rows, dtype=np.float64)
    train_rows = data.train.inputs.numpy().astype(np.float64)
    assert np.allclose(data.mean.numpy()[0], train_rows.mean(0), atol=1e-6)
    assert np.allclose(data.std.numpy()[0], train_rows.std(0), atol=1e-6)
    assert set(np.unique(x)) >= set(np.unique(train_rows))


def test_era_trains_sweeps_two_losses_reports_and_predicts(tmp_path: Path) -> None:
    task = _era_task(tmp_path)
    record = run_training(TrainConfig(task=str(task), r=0.5, **QUICK), tmp_path / "run")
    assert record["dataset"] == "era" and record["config"]["task"] == str(task)
    assert record["class_values"] == [float(v) for v in range(1, 10)]
    assert {"acc", "mae", "mse", "mae_expectation"} <= set(record["metrics"]["test"])
    base = TrainConfig(task=str(task), **QUICK)
    out = tmp_path / "sweep"
    assert run_sweep(base, Grid("r", (0.0, 0.5), 2), out).ok
    assert run_sweep(base, Grid(None, (), 2, loss="ce"), out).ok
    records = load_records(out)
    assert sorted({(r["loss"], r["value"]) for r in records}) == [
        ("ce", None),
        ("simloss", 0.0),
        ("simloss", 0.5),
    ]
    assert all(r["dataset"] == "era" for r in records)
    report = write_report(records, tmp_path / "report").read_text()
    assert "# Loss comparison: era" in report and "| CE | 2 |" in report
    # Predict rows with the training table's columns; the label column may be absent.
    names, rows, _ = skordinal_table("era")
    new = tmp_path / "new.csv"
    new.write_text(",".join(names) + "\n" + "\n".join(",".join(r) for r in rows[:5]) + "\n")
    predictions = predict_rows(load_run(tmp_path / "run"), new)
    assert [p.input for p in predictions] == [f"{new}:{i}" for i in range(2, 7)]
    assert all(1 <= p.value <= 9 and 0 < p.probability <= 1 for p in predictions)


def test_the_cli_takes_a_task_in_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = _era_task(tmp_path)
    common = ["--task", str(task), "--epochs", "2", "--batch-size", "64", "--no-progress"]
    assert main(["train", *common, "--r", "0.3", "--out", str(tmp_path / "run")]) == 0
    assert (
        main(["sweep", *common, "--grid", "r=0,0.6", "--runs", "1", "--out", str(tmp_path / "s")])
        == 0
    )
    assert main(["sweep", *common, "--loss", "sord", "--grid", "alpha=1", "--runs", "1",
                 "--out", str(tmp_path / "s")]) == 0  # fmt: skip
    assert main(["report", str(tmp_path / "s"), "--out", str(tmp_path / "r")]) == 0
    assert "SORD alpha=1" in (tmp_path / "r" / "report.md").read_text()
    rows = tmp_path / "rows.csv"
    names, cells, _ = skordinal_table("era")
    rows.write_text(",".join(names) + "\n" + ",".join(cells[0]) + "\n")
    capsys.readouterr()
    assert main(["predict", "--run", str(tmp_path / "run"), str(rows)]) == 0
    out = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert out[0] == ["input", "class", "value", "name", "probability"] and len(out) == 2


def _abalone_task(tmp_path: Path, data: str, classes: str = "") -> Path:
    return write_task(
        tmp_path / "abalone-user.toml",
        f"""
name = "abalone-user"
[data]
{data}
split = "random"
[classes]
range = [4, 20]
outside = "clip"
empty = "allow"
names = ["<=4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", ">=20"]
{classes}
[train]
epochs = 500
patience = 20
monitor = "mae"
batch_size = 256
""",
    )


_SAME = ("history", "best_epoch", "metrics", "distributions", "class_values", "num_examples")


def _same_run(a: dict, b: dict) -> None:
    for key in _SAME:
        if key == "history":
            strip = [{k: v for k, v in h.items() if not k.endswith("time_s")} for h in a[key]]
            assert strip == [
                {k: v for k, v in h.items() if not k.endswith("time_s")} for h in b[key]
            ]
        else:
            assert a[key] == b[key], key


def test_abalone_as_a_csv_and_as_arrays_gives_the_builtin_runs(tmp_path: Path) -> None:
    settings = {"r": 0.5, "epochs": 3, "limit": 400, "progress": False, "num_threads": 1}
    builtin = run_training(TrainConfig(**settings), tmp_path / "builtin")
    csv_task = _abalone_task(
        tmp_path / "csv",
        f"""kind = "table"
path = "{write_abalone_csv(tmp_path / "csv")}"
label = "rings"
categories = {{ sex = ["M", "F", "I"] }}
nonnegative = ["length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight", "shell_weight"]""",
    )
    from_csv = run_training(TrainConfig(task=str(csv_task), **settings), tmp_path / "from-csv")
    _same_run(builtin, from_csv)
    assert (
        from_csv["dataset"] == "abalone-user" and from_csv["class_names"] == builtin["class_names"]
    )
    npz_task = _abalone_task(
        tmp_path / "npz",
        f"""kind = "arrays"
path = "{write_abalone_npz(tmp_path / "npz")}"
unscaled_columns = [0, 1, 2]""",
    )
    from_npz = run_training(TrainConfig(task=str(npz_task), **settings), tmp_path / "from-npz")
    _same_run(builtin, from_npz)
    # The arrays run predicts from arrays, the table runs from rows; the same answers.
    rows_file = tmp_path / "rows.data"
    rows_file.write_text(
        "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\nI,0.33,0.255,0.08,0.205,0.0895,0.0395,0.055,7\n"
    )
    x = tmp_path / "x.npy"
    np.save(x, np.array([[1, 0, 0, 0.455, 0.365, 0.095, 0.514, 0.2245, 0.101, 0.15],
                         [0, 0, 1, 0.33, 0.255, 0.08, 0.205, 0.0895, 0.0395, 0.055]], dtype=np.float32))  # fmt: skip
    by_rows = predict_rows(load_run(tmp_path / "builtin"), rows_file)
    by_arrays = predict_features(load_run(tmp_path / "from-npz"), x)
    assert [p.class_index for p in by_rows] == [p.class_index for p in by_arrays]
    assert [p.probability for p in by_rows] == pytest.approx([p.probability for p in by_arrays])


def test_a_tsv_file_and_a_declared_split_column(tmp_path: Path) -> None:
    path = write_skordinal_csv(tmp_path, "lev", delimiter="\t")
    lines = path.read_text().splitlines()
    folds = ["train", "val", "test"]
    lines = [lines[0] + "\tfold"] + [
        f"{line}\t{folds[i % 5 % 3]}" for i, line in enumerate(lines[1:])
    ]
    path.write_text("\n".join(lines) + "\n")
    task = write_task(
        tmp_path / "lev.toml",
        f'name = "lev"\n[data]\nkind = "table"\npath = "{path}"\nlabel = "label"\nsplit_column = "fold"\n',
    )
    data = load_data(TrainConfig(task=str(task)))
    assert data.num_classes == 5 and data.input_shape == (4,)  # the fold is not a feature
    expected = [sum(1 for i in range(1000) if i % 5 % 3 == k) for k in range(3)]
    assert [len(data.train), len(data.val), len(data.test)] == expected


def test_text_labels_need_a_declared_order(tmp_path: Path) -> None:
    path = write_skordinal_csv(tmp_path, "balance_scale")
    plain = write_task(
        tmp_path / "b.toml",
        f'name = "balance"\n[data]\nkind = "table"\npath = "{path}"\nlabel = "label"\n',
    )
    with pytest.raises(
        ValueError,
        match=r"Expected numeric labels or a declared class order .* text labels \['B', 'L', 'R'\]",
    ):
        load_data(TrainConfig(task=str(plain)))
    ordered = write_task(
        tmp_path / "o.toml", plain.read_text() + '[classes]\norder = ["L", "B", "R"]\n'
    )
    data = load_data(TrainConfig(task=str(ordered)))
    assert data.class_names == ["L", "B", "R"] and data.class_values == [0.0, 1.0, 2.0]
    _, _, labels = skordinal_table("balance_scale")
    all_targets = torch.cat([s.targets for s in (data.train, data.val, data.test)]).numpy()
    assert np.array_equal(np.bincount(all_targets), [labels.count(c) for c in ("L", "B", "R")])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('label = "label"', 'label = "grade"'),
         r"Expected label column 'grade' in .*era.csv, but found the columns \['in1', 'in2', 'in3', 'in4', 'label'\]"),
        (lambda t: t + '[classes]\norder = [1, 2, 3, 4, 5, 6, 7, 8]\n',
         r"Expected a label among the classes of .*era.csv .* but .*era.csv line \d+, column 'label' has '9'"),
        (lambda t: t + '[classes]\norder = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n',
         r"Expected a training example of every class of .*era.csv, but found none of class '10'"),
        (lambda t: t.replace('label = "label"', 'label = "label"\nlabl = 1'),
         r"Unknown key\(s\) \['data.labl'\] in .*era.toml"),
        (lambda t: t.replace('kind = "table"', 'kind = "tabel"'),
         r"Expected `data.kind` in .*era.toml to be one of \['table', 'images', 'arrays', 'factory'\], but found 'tabel'"),
    ],
    ids=["missing-label-column", "label-outside-classes", "class-without-example", "unknown-key", "bad-kind"],
)  # fmt: skip
def test_bad_declarations_are_one_line_errors(tmp_path: Path, edit: object, message: str) -> None:
    task = _era_task(tmp_path)
    task.write_text(edit(task.read_text()))  # type: ignore[operator]
    with pytest.raises(ValueError, match=message) as info:
        load_data(TrainConfig(task=str(task)))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (
            "abc",
            r"Expected column 'in2' of .* to hold numbers only or categories only, but .* line 4 has 'abc'",
        ),
        ("nan", r"Expected column 'in2' .* line 4 has 'nan'"),
        ("1e300", r"float32 range .* line 4, column 'in2', but found '1e300'"),
        ("1_0", r"Expected column 'in2' .* line 4 has '1_0'"),
        ("inf", r"Expected column 'in2' .* line 4 has 'inf'"),
    ],
)
def test_bad_cells_name_the_line_and_column(tmp_path: Path, cell: str, message: str) -> None:
    task = _era_task(tmp_path)
    data = tmp_path / "data" / "era.csv"
    lines = data.read_text().splitlines()
    fields = lines[3].split(",")
    fields[1] = cell
    lines[3] = ",".join(fields)
    data.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=message):
        load_data(TrainConfig(task=str(task)))


def test_categories_are_fitted_on_training_rows_and_unseen_ones_refused_or_zeroed(
    tmp_path: Path,
) -> None:
    names, rows, labels = skordinal_table("esl")
    colours = ["red", "green", "blue"]
    lines = [",".join([*names, "colour", "label"])]
    lines += [
        ",".join([*r, colours[i % 3], lab])
        for i, (r, lab) in enumerate(zip(rows, labels, strict=True))
    ]
    path = tmp_path / "esl.csv"
    path.write_text("\n".join(lines) + "\n")
    task = write_task(
        tmp_path / "esl.toml",
        f'name = "esl"\n[data]\nkind = "table"\npath = "{path}"\nlabel = "label"\n',
    )
    record = run_training(TrainConfig(task=str(task), r=0.5, **QUICK), tmp_path / "run")
    table = record["preprocessing"]["table"]
    assert table["features"][-1] == {"name": "colour", "kind": "categorical", "levels": ["blue", "green", "red"],
                                     "unseen": "error", "nonnegative": False, "scaled": True}  # fmt: skip
    assert record["preprocessing"]["feature_names"][-3:] == [
        "colour_blue",
        "colour_green",
        "colour_red",
    ]
    new = tmp_path / "new.csv"
    new.write_text(",".join([*names, "colour"]) + "\n" + ",".join([*rows[0], "purple"]) + "\n")
    with pytest.raises(
        ValueError,
        match=r"category of column 'colour' seen in training .*new.csv line 2 has 'purple'",
    ):
        predict_rows(load_run(tmp_path / "run"), new)
    zeros = write_task(
        tmp_path / "esl0.toml",
        task.read_text().replace('label = "label"', 'label = "label"\nunseen = "zeros"'),
    )
    run_training(TrainConfig(task=str(zeros), r=0.5, **QUICK), tmp_path / "run0")
    (p,) = predict_rows(load_run(tmp_path / "run0"), new)
    assert 0 < p.probability <= 1


def test_a_changed_task_file_is_refused_by_a_sweep(tmp_path: Path) -> None:
    task = _era_task(tmp_path)
    base = TrainConfig(task=str(task), epochs=1, progress=False)
    assert run_sweep(base, Grid("r", (0.5,), 1), tmp_path / "s").ok
    task.write_text(
        task.read_text().replace('label = "label"', 'label = "label"\nsplit = "random"')
    )
    with pytest.raises(
        ValueError,
        match=r"another declaration of task 'era' \(task file sha256 [0-9a-f]{64}, now [0-9a-f]{64}\)",
    ):
        run_sweep(
            TrainConfig(task=str(task), epochs=1, progress=False),
            Grid("r", (0.5,), 1),
            tmp_path / "s",
        )
    # The data's content is fingerprinted too: one changed cell is another sweep.
    task.write_text(task.read_text().replace('\nsplit = "random"', ""))
    data = tmp_path / "data" / "era.csv"
    lines = data.read_text().splitlines()
    lines[1] = lines[1][:-1] + ("2" if lines[1][-1] != "2" else "3")  # one label changed
    data.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"was made on other data"):
        run_sweep(
            TrainConfig(task=str(task), epochs=1, progress=False),
            Grid("r", (0.5,), 1),
            tmp_path / "s",
        )


def test_parquet_tables_when_pandas_reads_them(tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    names, rows, labels = skordinal_table("swd")
    frame = pandas.DataFrame(np.array(rows, dtype=np.float64), columns=names)
    frame["label"] = [int(v) for v in labels]
    frame.to_parquet(tmp_path / "swd.parquet")
    task = write_task(
        tmp_path / "swd.toml",
        f'name = "swd"\n[data]\nkind = "table"\npath = "{tmp_path / "swd.parquet"}"\nlabel = "label"\n',
    )
    data = load_data(TrainConfig(task=str(task)))
    csv_task = write_task(
        tmp_path / "swd-csv.toml",
        f'name = "swd"\n[data]\nkind = "table"\npath = "{write_skordinal_csv(tmp_path, "swd")}"\nlabel = "label"\n',
    )
    same = load_data(TrainConfig(task=str(csv_task)))
    assert torch.equal(data.train.inputs, same.train.inputs) and torch.equal(
        data.test.targets, same.test.targets
    )


def test_a_record_of_a_table_task_is_plain_json(tmp_path: Path) -> None:
    task = _era_task(tmp_path)
    run_training(TrainConfig(task=str(task), r=0.5, epochs=1, progress=False), tmp_path / "run")
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["preprocessing"]["kind"] == "table"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["dataset"] == "era"


@pytest.mark.parametrize("quoted", [True, False], ids=["quoted-newlines", "no-quotes"])
def test_only_newlines_end_rows_and_line_numbers_count_them(tmp_path: Path, quoted: bool) -> None:
    pandas = pytest.importorskip("pandas")
    names, rows, labels = skordinal_table("era")
    notes = ["u\u2028v", "p\x0cq", "r\x85s", "plain", "t\u2029w"]
    if quoted:
        notes += ['"two\nlines"', '"cr\r\nlf"']
    lines = [",".join([*names, "note", "label"])]
    lines += [",".join([*r, notes[i % len(notes)], lab]) for i, (r, lab) in enumerate(zip(rows, labels, strict=True))]  # fmt: skip
    path = tmp_path / "era.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode())
    task = write_task(
        tmp_path / "era.toml",
        f'name = "era"\n[data]\nkind = "table"\npath = "{path}"\nlabel = "label"\n',
    )
    data = load_data(TrainConfig(task=str(task)))
    # pandas' C parser reads the same rows and cells (only newlines end its rows, as ours).
    frame = pandas.read_csv(path, dtype=str, keep_default_na=False)
    assert len(frame) == len(rows) == sum(len(s) for s in (data.train, data.val, data.test))
    levels = sorted(frame["note"].unique())
    assert list(data.feature_names or ())[4:] == [f"note_{level}" for level in levels]
    assert len(levels) == len(notes)
    # A bad cell in the 900th row is named at the line an editor shows: one plus the
    # newlines before it in the file's bytes.
    text = path.read_bytes().decode()
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    row_start = text.index("\n" + ",".join(rows[899]) + ",", 0) + 1
    bad = text[:row_start] + "abc" + text[row_start + len(rows[899][0]) :]
    path.write_bytes(bad.encode())
    line = starts.index(row_start) + 1
    with pytest.raises(ValueError, match=rf"era.csv line {line} has 'abc'"):
        load_data(TrainConfig(task=str(task)))
    assert line != 901 or not quoted  # the quoted cells' newlines count as lines


def test_a_lone_carriage_return_in_a_cell_is_refused_not_a_row_end(tmp_path: Path) -> None:
    task = _era_task(tmp_path)
    data = tmp_path / "data" / "era.csv"
    lines = data.read_text().splitlines()
    crlf = data.with_name("crlf.csv")
    crlf.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    same = load_data(TrainConfig(task=str(task), data_dir=str(crlf)))
    plain = load_data(TrainConfig(task=str(task)))
    assert torch.equal(same.train.inputs, plain.train.inputs)
    lines[6] = lines[6].replace(",", ",\r", 1)
    data.write_bytes(("\n".join(lines) + "\n").encode())
    with pytest.raises(ValueError, match=r"era.csv line 7: a carriage return \(\\r\) without \\n"):
        load_data(TrainConfig(task=str(task)))


def test_a_byte_order_mark_reads_as_the_same_file_without_it(tmp_path: Path) -> None:
    from simloss.experiments.task import read_task
    from simloss.similarity import read_hierarchy

    bom = "\ufeff".encode()
    task = _era_task(tmp_path)
    data = tmp_path / "data" / "era.csv"
    plain = load_data(TrainConfig(task=str(task)))
    marked = tmp_path / "marked"
    (marked / "data").mkdir(parents=True)
    (marked / "data" / "era.csv").write_bytes(bom + data.read_bytes())  # Excel's "CSV UTF-8"
    (marked / "era.toml").write_bytes(bom + task.read_bytes())
    same = load_data(TrainConfig(task=str(marked / "era.toml")))
    assert same.feature_names == plain.feature_names == ("in1", "in2", "in3", "in4")
    assert torch.equal(same.train.inputs, plain.train.inputs)
    assert read_task(marked / "era.toml").sha256 == read_task(task).sha256
    declaration = {
        "name": "era",
        "data": {"kind": "table", "path": "data/era.csv", "label": "label"},
    }
    (marked / "era.json").write_bytes(bom + json.dumps(declaration).encode())
    assert read_task(marked / "era.json").data.label == "label"
    tree = tmp_path / "tree.txt"
    tree.write_bytes(bom + b"root a\nroot b\n")
    assert read_hierarchy(tree).edges == [("root", "a"), ("root", "b")]
    tree_json = tmp_path / "tree.json"
    tree_json.write_bytes(bom + b'{"root": ["a", "b"]}')
    assert read_hierarchy(tree_json).classes == ["a", "b"]
    # A manifest (path,label) with a byte-order mark finds its `path` column.
    from simloss.experiments.data.images import list_manifest

    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(b"not decoded here")
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(bom + b"path,label\na.png,1\nb.png,2\n")
    files, labels, _, _ = list_manifest(manifest, None)
    assert [f.name for f in files] == ["a.png", "b.png"] and labels == ["1", "2"]


def _with_label(tmp_path: Path, row: int, label: str) -> Path:
    """The ERA task with the label of data row ``row`` (0-based, line row + 2) replaced."""
    task = _era_task(tmp_path)
    data = tmp_path / "data" / "era.csv"
    lines = data.read_text().splitlines()
    lines[row + 1] = lines[row + 1].rsplit(",", 1)[0] + "," + label
    data.write_text("\n".join(lines) + "\n")
    return task


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("", r"Expected a label in .*era.csv line 18, column 'label', but found '' \(a missing label\)"),
        ("nan", r"Expected a number \(a class label\) in .*era.csv line 18, column 'label', but found 'nan'"),
        ("1_0", r"Expected a number \(a class label\) in .*era.csv line 18, column 'label', but found '1_0'"),
        ("1e300", r"Expected a finite label within the float32 range .* in .*era.csv line 18, column 'label', but found '1e300'"),
        ("9007199254740993", r"Expected an integer label within \+-2\*\*53 .* in .*era.csv line 18, column 'label', but found '9007199254740993'"),
    ],
    ids=["empty", "nan", "underscore", "beyond-float32", "beyond-2**53"],
)  # fmt: skip
def test_a_bad_label_is_named_by_its_line_and_column(
    tmp_path: Path, label: str, message: str
) -> None:
    task = _with_label(tmp_path, 16, label)
    with pytest.raises(ValueError, match=message) as info:
        load_data(TrainConfig(task=str(task)))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("other", ["+3", "03", "3.0", "3e0"])
def test_two_texts_of_one_number_are_refused_naming_both(tmp_path: Path, other: str) -> None:
    _, _, labels = skordinal_table("era")
    first = labels.index("3")  # the first 3, on line first + 2
    later = next(i for i in range(first + 1, len(labels)) if labels[i] == "3")
    task = _with_label(tmp_path, later, other)
    shown = sorted(["3", other])
    lines = {"3": first + 2, other: later + 2}
    with pytest.raises(
        ValueError,
        match=rf"Expected distinct labels to be distinct numbers in .*era.csv, but "
        rf"'{re.escape(shown[0])}' \(.*era.csv line {lines[shown[0]]}, column 'label'\) and "
        rf"'{re.escape(shown[1])}' \(.*era.csv line {lines[shown[1]]}, column 'label'\) are both 3",
    ):
        load_data(TrainConfig(task=str(task)))
    # The same under a declared order: the labels are still mapped by number.
    task.write_text(task.read_text() + "[classes]\norder = [1, 2, 3, 4, 5, 6, 7, 8, 9]\n")
    with pytest.raises(ValueError, match=r"are both 3"):
        load_data(TrainConfig(task=str(task)))


def test_array_labels_beyond_2_53_and_nan_labels_are_named_by_row(tmp_path: Path) -> None:
    path = tmp_path / "big.npz"
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = np.array([2**53 + (i % 2) for i in range(40)], dtype=np.int64)  # two distinct int64s
    assert float(y[0]) == float(y[1])  # ... that float64 makes one number
    np.savez(path, X=x, y=y)
    task = write_task(
        tmp_path / "a.toml",
        f'name = "a"\n[data]\nkind = "arrays"\npath = "{path}"\n[classes]\nordered = false\n',
    )
    with pytest.raises(
        ValueError,
        match=rf"integer label within \+-2\*\*53 .* in {path} row 1 of y, but found {2**53 + 1}",
    ):
        load_data(TrainConfig(task=str(task)))
    y = np.arange(40, dtype=np.float64) % 3
    y[7] = np.nan
    np.savez(path, X=x, y=y)
    with pytest.raises(ValueError, match=rf"Expected a label in {path} row 7 of y, but found nan"):
        load_data(TrainConfig(task=str(task)))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('unscaled = ["aa"]', r"Expected `data.unscaled` in .*era.toml to name columns of .*era.csv, but found 'aa', which is none of its columns \['in1', 'in2', 'in3', 'in4', 'label'\]"),
        ('nonnegative = ["bb"]', r"Expected `data.nonnegative` in .*era.toml to name columns of .*era.csv, but found 'bb'"),
        ('categorical = ["fold2"]', r"Expected `data.categorical` .* but found 'fold2', which is none of its columns"),
        ('categories = { zz = ["a", "b"] }', r"Expected `data.categories` .* but found 'zz', which is none of its columns"),
        ('features = ["in1", "in9"]', r"Expected `data.features` .* but found 'in9', which is none of its columns"),
        ('nonnegative = ["label"]', r"Expected `data.nonnegative` in .*era.toml to name feature columns, but found 'label', the label column"),
        ('features = ["in1", "in2"]\nunscaled = ["in3"]', r"Expected `data.unscaled` .* to name columns of `data.features`, but found 'in3', which is not among \['in1', 'in2'\]"),
    ],
    ids=["unscaled", "nonnegative", "categorical", "categories", "features", "the-label", "not-a-feature"],
)  # fmt: skip
def test_a_column_list_naming_no_feature_column_is_refused(
    tmp_path: Path, line: str, message: str
) -> None:
    task = _era_task(tmp_path, line)
    with pytest.raises(ValueError, match=message) as info:
        load_data(TrainConfig(task=str(task)))
    assert "\n" not in str(info.value)


def test_the_split_column_is_no_feature(tmp_path: Path) -> None:
    task = _era_task(tmp_path, 'split_column = "fold"\nfeatures = ["in1", "fold"]')
    with pytest.raises(
        ValueError,
        match=r"Expected `data.features` in .*era.toml to be columns other than the split column "
        r"'fold', but found",
    ):
        load_data(TrainConfig(task=str(task)))


def _swd_frame() -> object:
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    names, rows, labels = skordinal_table("swd")
    frame = pandas.DataFrame(np.array(rows, dtype=np.float64), columns=names)
    frame["colour"] = [["red", "green", "blue"][i % 3] for i in range(len(frame))]
    frame["label"] = [int(v) for v in labels]
    return frame


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f, pd: f.assign(colour=f["colour"].where(f.index != 6, None)),
         r"Expected a value in .*swd.parquet row 7, column 'colour', but found a missing value \((None|nan)\)"),
        (lambda f, pd: f.assign(in2=f["in2"].where(f.index != 11, np.nan)),
         r"Expected a value in .*swd.parquet row 12, column 'in2', but found a missing value \(nan\)"),
        (lambda f, pd: f.assign(count=pd.array([None if i == 3 else i for i in range(len(f))], dtype="Int64")),
         r"Expected a value in .*swd.parquet row 4, column 'count', but found a missing value \(<NA>\)"),
        (lambda f, pd: f.assign(label=pd.array([None if i == 9 else v for i, v in enumerate(f["label"])], dtype="Int64")),
         r"Expected a value in .*swd.parquet row 10, column 'label', but found a missing value \(<NA>\)"),
        (lambda f, pd: f.assign(day=pd.date_range("2024-01-01", periods=len(f))),
         r"Expected numbers or text in column 'day' of .*swd.parquet, but found dtype datetime64\[(ns|us)\]"),
        (lambda f, pd: f.assign(tags=[["a", "b"]] * len(f)),
         r"Expected a number or text in .*swd.parquet row 1, column 'tags' \(dtype object\), but found a (list|ndarray)"),
    ],
    ids=["none-in-text", "nan-in-numbers", "na-in-int64", "na-in-label", "datetime", "list-cells"],
)  # fmt: skip
def test_parquet_cells_that_are_no_scalar_value_are_named(
    tmp_path: Path, change: object, message: str
) -> None:
    import pandas

    frame = change(_swd_frame(), pandas)  # type: ignore[operator]
    frame.to_parquet(tmp_path / "swd.parquet")
    task = write_task(
        tmp_path / "swd.toml",
        f'name = "swd"\n[data]\nkind = "table"\npath = "{tmp_path / "swd.parquet"}"\nlabel = "label"\n',
    )
    with pytest.raises(ValueError, match=message) as info:
        load_data(TrainConfig(task=str(task)))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('data_dir = "d.csv"', r"Expected no `train.data_dir` in .*era.toml: data_dir is a local setting \(where or how a run happens\), not a task default; the data's path is `data.path`"),
        ('vectors = "v.npy"', r"Expected no `train.vectors` .* class vectors are `similarity.vectors`"),
        ("num_threads = 1", r"Expected no `train.num_threads` .* give it to a run \(--num-threads\)"),
        ('device = "cpu"', r"Expected no `train.device` .* give it to a run \(--device\)"),
        ("progress = false", r"Expected no `train.progress`"),
        ('cache_dir = "c"', r"Expected no `train.cache_dir`"),
        ("epochs = -3", r"Expected `train.epochs` in .*era.toml >= 1, but found -3"),
        ("lr = 0.0", r"Expected `train.lr` in .*era.toml > 0 and finite, but found 0.0"),
        ("val_fraction = 0.6\ntest_fraction = 0.5", r"Expected `train.val_fraction` \+ `train.test_fraction` < 1 in .*era.toml"),
    ],
    ids=["data_dir", "vectors", "num_threads", "device", "progress", "cache_dir", "epochs", "lr", "fractions"],
)  # fmt: skip
def test_train_settings_of_a_task_are_checked_naming_the_file_and_key(
    tmp_path: Path, line: str, message: str
) -> None:
    task = _era_task(tmp_path, f"[train]\n{line}")
    with pytest.raises(ValueError, match=message) as info:
        load_data(TrainConfig(task=str(task)))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["utkface", "Abalone", "cifar100"])
def test_a_task_cannot_take_a_builtin_datasets_name(tmp_path: Path, name: str) -> None:
    from simloss.experiments.task import BUILTIN_TASKS

    task = _era_task(tmp_path)
    task.write_text(task.read_text().replace('name = "era"', f'name = "{name}"'))
    with pytest.raises(
        ValueError,
        match=rf"Expected `name` in .*era.toml to be other than a built-in dataset's "
        rf"{re.escape(str(list(BUILTIN_TASKS)))} .* but found '{name}'",
    ):
        load_data(TrainConfig(task=str(task)))


def test_rows_of_a_headerless_table_may_leave_out_the_label_wherever_it_is(
    tmp_path: Path,
) -> None:
    names, rows, labels = skordinal_table("era")
    path = tmp_path / "era.data"  # no header; the label is the first column
    path.write_text(
        "".join(",".join([lab, *r]) + "\n" for r, lab in zip(rows, labels, strict=True))
    )
    columns = ", ".join(f'"{c}"' for c in ["rating", *names])
    task = write_task(
        tmp_path / "era.toml",
        f'name = "era"\n[data]\nkind = "table"\npath = "{path}"\nlabel = "rating"\n'
        f"header = false\ncolumns = [{columns}]\n",
    )
    run_training(TrainConfig(task=str(task), r=0.5, **QUICK), tmp_path / "run")
    run = load_run(tmp_path / "run")
    full = tmp_path / "full.data"
    full.write_text("".join(",".join([labels[i], *rows[i]]) + "\n" for i in range(5)))
    bare = tmp_path / "bare.data"
    bare.write_text("".join(",".join(rows[i]) + "\n" for i in range(5)))
    with_label, without = predict_rows(run, full), predict_rows(run, bare)
    assert [p.probability for p in with_label] == [p.probability for p in without]
    assert [p.input for p in without] == [f"{bare}:{i}" for i in range(1, 6)]
    short = tmp_path / "short.data"
    short.write_text(",".join(rows[0][:-1]) + "\n")  # a feature missing: refused by line
    with pytest.raises(ValueError, match=rf"Expected 5 cells in {short} line 1"):
        predict_rows(run, short)

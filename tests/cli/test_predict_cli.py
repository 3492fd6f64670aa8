"""``simloss predict``: a trained run applied to new rows and images, from the command line."""

from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simloss.cli import main


def _rows(path: Path, count: int) -> Path:
    text = resources.files("simloss").joinpath("data/abalone.data").read_text()
    path.write_text("\n".join(text.splitlines()[:count]) + "\n")
    return path


def test_predict_prints_and_writes_a_csv_for_abalone_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--r", "0.5", "--epochs", "3", "--limit", "300",
                 "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    first, second = _rows(tmp_path / "a.csv", 3), _rows(tmp_path / "b.csv", 2)
    out = tmp_path / "predictions.csv"
    assert main(["predict", "--run", str(run), str(first), str(second), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed == out.read_text()
    table = list(csv.DictReader(io.StringIO(printed)))
    assert [r["input"] for r in table] == [f"{first}:1", f"{first}:2", f"{first}:3",
                                          f"{second}:1", f"{second}:2"]  # fmt: skip
    same_row = [(0, 3), (1, 4)]  # the same abalone.data rows in both files
    for i, j in same_row:  # float32 batches of different sizes may differ in the last digit
        same = ("class", "value", "name")
        assert {k: table[i][k] for k in same} == {k: table[j][k] for k in same}
        assert float(table[i]["probability"]) == pytest.approx(
            float(table[j]["probability"]), rel=1e-5
        )
    for row in table:
        assert 4 <= int(row["value"]) <= 20 and int(row["class"]) == int(row["value"]) - 4
        assert 0 < float(row["probability"]) <= 1


def test_predict_gives_the_age_of_face_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faces = tmp_path / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    for i, age in enumerate(range(20, 40)):
        pixels = rng.integers(0, 256, (70, 70, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(faces / f"{age}_0_0_201701011234{i:03d}.jpg.chip.jpg")
    run = tmp_path / "run"
    argv = ["train", "--dataset", "utkface", "--data-dir", str(faces), "--cache-dir",
            str(tmp_path / "cache"), "--r", "0.3", "--epochs", "1", "--out", str(run),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    images = sorted(faces.iterdir())[:3]
    assert main(["predict", "--run", str(run), *map(str, images)]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["input"] for r in table] == list(map(str, images))
    assert all(int(r["value"]) == int(r["class"]) + 1 and r["name"] == "" for r in table)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--run", "{tmp}/absent", "x.jpg"], "does not exist"),
        (["--run", "{tmp}", "x.jpg"], "record.json is missing"),
        (["--run", "{tmp}", "x.jpg", "--batch-size", "0"], "Expected --batch-size >= 1"),
    ],
)
def test_predict_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["predict", *(a.format(tmp=tmp_path) for a in argv)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("simloss predict: error:") and message in err and "\n" not in err


def test_bad_files_and_outputs_of_an_abalone_run_are_named_before_any_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--r", "0.5", "--epochs", "1", "--limit", "200",
                 "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    image = tmp_path / "face.jpg"  # a JPEG starts with the bytes FF D8 FF (the JFIF standard)
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(image)
    assert image.read_bytes()[:3] == b"\xff\xd8\xff"
    rows = _rows(tmp_path / "rows.csv", 2)
    cases = [
        ([str(image)], f"Expected row file {image} to be UTF-8 text, but byte 0 is 0xff"),
        ([str(tmp_path)], f"Expected row file {tmp_path} to be a file, but it is a folder"),
        ([str(rows), "--out", str(tmp_path)], f"Expected --out {tmp_path} to be a CSV file"),
    ]
    for argv, message in cases:
        assert main(["predict", "--run", str(run), *argv]) == 1
        captured = capsys.readouterr()
        assert captured.out == ""  # nothing printed before the error
        err = captured.err.strip()
        assert err.startswith("simloss predict: error:") and message in err and "\n" not in err
    record = run / "record.json"
    record.write_text(record.read_text().replace("{", '{"loss": "ce", ', 1))  # a key twice
    assert main(["predict", "--run", str(run), str(rows)]) == 1
    assert "Expected each key once in run record" in capsys.readouterr().err

"""``simloss predict --decoder``: the median and the minimum-risk class of a trained run."""

from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from simloss.cli import main
from simloss.experiments.config import TrainConfig
from simloss.experiments.data import load_abalone
from simloss.experiments.data.splits import random_split, subset_indices
from simloss.experiments.predict import load_run, predict_rows, run_cost
from simloss.experiments.train import run_training


@pytest.fixture(scope="module")
def abalone_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    """A SimLoss run (r = 0.5) on 800 Abalone rows, and its test rows as a file."""
    folder = tmp_path_factory.mktemp("predict")
    record = run_training(TrainConfig(r=0.5, epochs=10, limit=800, progress=False), folder / "run")
    lines = resources.files("simloss").joinpath("data/abalone.data").read_text().splitlines()
    chosen = [lines[i] for i in subset_indices(len(lines), 800, 0)]
    _, _, test = random_split(800, 0.2, 0.2, 0)
    rows = folder / "rows.csv"
    rows.write_text("".join(chosen[i] + "\n" for i in test))
    return folder / "run", record, rows


def _true_values(rows: Path) -> np.ndarray:
    rings = np.array([int(line.split(",")[8]) for line in rows.read_text().splitlines()])
    return np.clip(rings, 4, 20)


def test_the_median_decoder_reproduces_the_runs_median_mae(abalone_run) -> None:
    folder, record, rows = abalone_run
    predictions = predict_rows(load_run(folder), rows, decoder="median")
    value = np.array([p.value for p in predictions])
    mae_median = np.mean(np.abs(value - _true_values(rows)))
    assert record["metrics"]["test"]["mae_median"] == pytest.approx(mae_median)


def test_min_risk_defaults_to_one_minus_the_runs_similarity(abalone_run) -> None:
    folder, _, rows = abalone_run
    run = load_run(folder)
    order = torch.arange(17, dtype=torch.float64)
    expected_cost = 1.0 - 0.5 ** (order[:, None] - order[None, :]).abs()
    torch.testing.assert_close(run_cost(run), expected_cost)
    argmax = predict_rows(run, rows)
    decided = predict_rows(run, rows, decoder="min_risk")
    test = load_abalone(limit=800, split_seed=0).test  # the rows of the file, encoded
    values = np.array(run.class_values)
    assert values[test.targets.numpy()].tolist() == _true_values(rows).tolist()
    probs = torch.softmax(run.outputs(test.inputs)[0].double(), dim=1)
    risk = probs @ expected_cost.T  # risk[n, k] = sum_c p_c cost[k, c]
    brute = risk.numpy().argmin(axis=1)
    assert [p.class_index for p in decided] == brute.tolist()
    expected = lambda ks: risk[torch.arange(len(ks)), torch.tensor(ks)]  # noqa: E731
    chosen = expected([p.class_index for p in decided])
    assert bool((chosen <= expected([p.class_index for p in argmax]) + 1e-12).all())
    # |v_k - v_c| as the cost is the median
    values = torch.tensor(run.class_values, dtype=torch.float64)
    absolute = (values[:, None] - values[None, :]).abs().numpy()
    by_cost = predict_rows(run, rows, decoder="min_risk", cost=absolute)
    assert [p.value for p in by_cost] == [
        p.value for p in predict_rows(run, rows, decoder="median")
    ]


def test_the_command_takes_a_decoder_and_a_cost_file(
    abalone_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _, rows = abalone_run
    cost = tmp_path / "cost.npy"
    values = np.arange(4, 21, dtype=np.float64)
    np.save(cost, np.abs(values[:, None] - values[None, :]))
    assert main(["predict", "--run", str(folder), str(rows), "--decoder", "min_risk",
                 "--cost", str(cost)]) == 0  # fmt: skip
    by_cost = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert main(["predict", "--run", str(folder), str(rows), "--decoder", "median"]) == 0
    median = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["class"] for r in by_cost] == [r["class"] for r in median]
    assert main(["predict", "--run", str(folder), str(rows), "--cost", str(cost)]) == 1
    assert "--cost only with --decoder min_risk" in capsys.readouterr().err
    np.save(cost, np.ones((3, 3)))
    assert main(["predict", "--run", str(folder), str(rows), "--decoder", "min_risk",
                 "--cost", str(cost)]) == 1  # fmt: skip
    assert f"Expected --cost {cost} of shape (17, 17)" in capsys.readouterr().err


def _write_cost(path: Path, kind: str) -> str:
    """A bad --cost file of one kind; returns what its error must say."""
    values = np.arange(4, 21, dtype=np.float64)
    if kind == "empty":
        path.write_bytes(b"")
        return "but the file is empty"
    if kind == "csv-text":
        path.write_text("0,1\n1,zero\n")
        return "to hold numbers only"
    if kind == "garbage-npy":
        path.write_bytes(b"not an array at all")
        return "not a .npy file"
    if kind == "npz":
        np.savez(path, cost=np.zeros((17, 17)))
        return "but found a '.npz' file"
    if kind == "folder":
        path.mkdir()
        return "but it is a folder"
    if kind == "missing":
        return "but it does not exist"
    if kind == "nan":
        cost = np.abs(values[:, None] - values[None, :])
        cost[3, 4] = np.nan
        np.save(path, cost)
        return "Expected `--cost` to be finite, but found nan at (3, 4)"
    if kind == "not-square":
        np.save(path, np.zeros((17, 3)))
        return "square"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("empty", "c.npy"),
        ("csv-text", "c.csv"),
        ("garbage-npy", "c.npy"),
        ("npz", "c.npz"),
        ("folder", "c"),
        ("missing", "c.npy"),
        ("nan", "c.npy"),
        ("not-square", "c.npy"),
    ],
)
def test_a_bad_cost_file_is_one_line_naming_it(
    abalone_run, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, name: str
) -> None:
    folder, _, rows = abalone_run
    path = tmp_path / name
    message = _write_cost(path, kind)
    code = main(["predict", "--run", str(folder), str(rows), "--decoder", "min_risk",
                 "--cost", str(path)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert message in err and str(path) in err and "--cost" in err
    assert len(err.strip().splitlines()) == 1


def test_a_csv_cost_file_is_read_as_numbers(
    abalone_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _, rows = abalone_run
    values = np.arange(4, 21, dtype=np.float64)
    absolute = np.abs(values[:, None] - values[None, :])
    np.savetxt(tmp_path / "c.csv", absolute, delimiter=",")
    assert main(["predict", "--run", str(folder), str(rows), "--decoder", "min_risk",
                 "--cost", str(tmp_path / "c.csv")]) == 0  # fmt: skip
    by_csv = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    # |v_k - v_c| as the cost gives the median class
    median = predict_rows(load_run(folder), rows, decoder="median")
    assert [int(r["class"]) for r in by_csv] == [p.class_index for p in median]


def test_min_risk_rebuilds_a_class_values_similarity(tmp_path: Path) -> None:
    config = TrainConfig(similarity="values", r=0.5, epochs=1, limit=300, progress=False)
    run_training(config, tmp_path / "run")
    run = load_run(tmp_path / "run")
    values = np.array(run.class_values)
    scale = config.task_spec.similarity.scale
    expected = 1.0 - 0.5 ** (np.abs(values[:, None] - values[None, :]) / scale)  # Eq. 2, float64
    np.testing.assert_allclose(run_cost(run).numpy(), expected, rtol=0, atol=1e-6)


def test_min_risk_rebuilds_a_class_vector_similarity(tmp_path: Path) -> None:
    from sklearn.metrics.pairwise import cosine_similarity

    vectors = np.random.default_rng(0).normal(size=(17, 5))
    np.save(tmp_path / "v.npy", vectors)
    config = TrainConfig(
        similarity="embeddings", l=0.2, vectors=str(tmp_path / "v.npy"), epochs=1, limit=300,
        progress=False,
    )  # fmt: skip
    run_training(config, tmp_path / "run")
    run = load_run(tmp_path / "run")
    similarity = np.maximum(0.0, np.maximum(0.0, cosine_similarity(vectors)) - 0.2) / 0.8  # Eq. 3
    np.fill_diagonal(similarity, 1.0)
    np.testing.assert_allclose(run_cost(run).numpy(), 1.0 - similarity, rtol=0, atol=1e-6)
    # the vectors file gone: the error says why and names the way out
    (tmp_path / "v.npy").unlink()
    with pytest.raises(ValueError, match=r"'embeddings'.*v\.npy does not exist.*--cost"):
        run_cost(run)


def test_min_risk_rebuilds_a_hierarchy_similarity(tmp_path: Path) -> None:
    from simloss.experiments.data import load_data
    from simloss.experiments.losses import build_similarity

    names = ["<=4", *map(str, range(5, 20)), ">=20"]
    tree = tmp_path / "tree.txt"
    tree.write_text(
        "".join(f"young {n}\n" for n in names[:8]) + "".join(f"old {n}\n" for n in names[8:])
        + "all young\nall old\n"
    )  # fmt: skip
    config = TrainConfig(
        similarity="hierarchy", l=0.0, hierarchy=str(tree), epochs=1, limit=300, progress=False
    )
    run_training(config, tmp_path / "run")
    run = load_run(tmp_path / "run")
    trained = build_similarity(config.resolve(), load_data(config.resolve()))  # what it trained on
    torch.testing.assert_close(run_cost(run), 1.0 - trained.double())
    # a pair in one subtree is closer than a pair across the root
    assert run_cost(run)[0, 1] < run_cost(run)[0, 16]

"""The ``simloss tune`` command: help, one-line errors, a real multi-objective tune and its front."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from simloss.cli import main
from simloss.experiments.sweep import sqlite_url
from simloss.experiments.tune import load_tune

TINY = ["--dataset=abalone", "--epochs=15", "--patience=15", "--limit=600", "--threads=1"]
TINY += ["--no-progress"]


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["tune", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--objective val_acc" in text and "optuna-dashboard" in text
    for flag in ("--budget", "--sampler", "--pruner", "--range", "--runs", "--lr", "--storage"):
        assert flag in text
    assert "--r " not in text and "--l " not in text  # the tuned parameters are no flags


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--objective=test_mae", "--budget=100"], "would leak it into the choice"),
        (["--objective=val_sa", "--budget=100"], "for dataset 'abalone', but found 'val_sa'"),
        (["--objective=val_mae", "--budget=0"], "--budget to be an int >= 1"),
        (["--objective=val_mae", "--budget=9", "--range=0.3:0.9"], "to contain r = 0.0 (CCE"),
        (["--objective=val_mae", "--budget=9", "--range=0:1.5"], "Expected `r` in [0, 1)"),
        (["--objective=val_mae", "--budget=9", "--range=0-0.9"], "Expected --range like"),
        (["--objective=val_mae", "--budget=9", "--runs=1"], "--runs to be an int >= 2"),
        (
            ["--objective=val_mae", "--objective=val_acc", "--budget=9", "--pruner=median"],
            "--pruner none with 2 objectives",
        ),
        (["--objective=val_mae", "--budget=9", "--param=l"], "Expected --range for --param 'l'"),
        (
            ["--objective=val_mae", "--budget=9", "--param=l", "--range=0:0.99"],
            "Expected `--vectors`",
        ),
        (["--objective=val_mae", "--budget=9", "--workers=0"], "`--workers` to be an int >= 1"),
        (["--objective=val_mae", "--budget=9", "--storage=nowhere"], "a storage URL"),
        (["--objective=val_mae", "--budget=9", "--loss=sord"], "Expected `--loss` 'simloss'"),
    ],
    ids=[
        "test-objective",
        "unknown-metric",
        "budget",
        "range-without-cce",
        "range-invalid-r",
        "range-syntax",
        "runs",
        "multi-pruner",
        "param-without-range",
        "l-without-vectors",
        "workers",
        "storage",
        "peer-loss",
    ],
)
def test_bad_arguments_exit_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], reason: str
) -> None:
    out = tmp_path / "out"
    code = main(["tune", *TINY, f"--out={out}", *args])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("simloss tune: error: ") and reason in err, err
    assert err.count("\n") == 1
    assert not (out / "study.db").exists()  # refused before anything was made


def _dominated(points: list[tuple[float, float]], signs: tuple[float, float]) -> set[int]:
    """Brute force: i is dominated when some j is no worse everywhere and better somewhere."""
    bad = set()
    for i, j in itertools.permutations(range(len(points)), 2):
        a = [s * x for s, x in zip(signs, points[j], strict=True)]
        b = [s * x for s, x in zip(signs, points[i], strict=True)]
        if all(x <= y for x, y in zip(a, b, strict=True)) and a != b:
            bad.add(i)
    return bad


def test_multi_objective_tune_gives_a_non_dominated_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tune"
    args = ["--objective=val_mae", "--objective=val_acc", "--budget=330", "--runs=2"]
    code = main(["tune", *TINY, f"--out={out}", *args])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    assert stdout.strip().splitlines()[-1] == str(out.resolve() / "result")
    result = load_tune(out)
    assert result.complete and result.settings.multi
    study = optuna.load_study(
        study_name="simloss-tune-abalone", storage=sqlite_url(out / "study.db")
    )
    assert study.metric_names == ["val_mae", "val_acc"]  # shown by optuna-dashboard
    assert not [
        t
        for t in study.trials
        if t.state == TrialState.PRUNED and "duplicate_of" not in t.user_attrs
    ]
    signs = (1.0, -1.0)  # MAE lower, accuracy higher is better

    # The search's front: complete run-0 trials, checked by brute force.
    pool = [
        t
        for t in study.trials
        if t.state == TrialState.COMPLETE
        and t.user_attrs["run"] == 0
        and "duplicate_of" not in t.user_attrs
    ]
    points = [(t.values[0], t.values[1]) for t in pool]
    expected = {pool[i].number for i in set(range(len(pool))) - _dominated(points, signs)}
    assert set(result.search_front()) == expected and expected

    # The confirmed front: means over the runs' records, checked by brute force.
    means = {}
    for value in result.confirmed:
        recs = [
            t.user_attrs["record"]["metrics"]["val"]
            for t in study.trials
            if t.state == TrialState.COMPLETE
            and "record" in t.user_attrs
            and t.user_attrs["value"] == value
        ]
        assert len(recs) == 2
        means[value] = (np.mean([r["mae"] for r in recs]), np.mean([r["acc"] for r in recs]))
    values = list(means)
    front = set(range(len(values))) - _dominated([means[v] for v in values], signs)
    assert set(result.best) == {values[i] for i in front}

    data = json.loads((out / "result" / "tune.json").read_text())
    assert [b["value"] for b in data["best"]] == sorted(result.best)
    assert set(data["search_front"]) == expected
    markdown = (out / "result" / "tune.md").read_text()
    assert "Chosen values (the Pareto front)" in markdown and "on search front" in markdown
    assert (out / "result" / "tune_r.png").is_file()


def test_a_budget_too_small_for_any_search_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A budget below CCE's and one candidate's runs (2 x 2 runs of at least
    # min(epochs, patience + 1) = 15 epochs) is refused before anything is written.
    out = tmp_path / "tune"
    code = main(["tune", *TINY, f"--out={out}", "--objective=val_mae", "--budget=59", "--runs=2"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and not out.exists()
    assert "Expected --budget >= 60 epochs" in err and "but found 59" in err
    # With patience 3 a run may take 4 epochs (16 in all), but CCE's takes 6: one
    # search run and the confirmation's reserve do not fit.
    code = main(
        [
            "tune",
            *TINY,
            "--patience=3",
            f"--out={out}",
            "--objective=val_mae",
            "--budget=16",
            "--runs=2",
        ]
    )
    *status, err = capsys.readouterr().err.splitlines()  # status lines, then the error
    assert code == 1 and err.startswith("simloss tune: error: "), err
    assert all(line.startswith("tune simloss-tune-abalone ") for line in status), status
    assert "no search trial completed within the budget (0 started, 0 pruned)" in err
    assert "rerun with a larger --budget" in err
    assert not (out / "result").exists()
    # The budget may grow until the confirmation is planned: the search goes on.
    args = ["--objective=val_mae", "--budget=200", "--runs=2", "--patience=3"]
    assert main(["tune", *TINY, f"--out={out}", *args]) == 0
    assert (
        load_tune(out).complete
        and json.loads((out / "tune.json").read_text())["tune"]["budget"] == 200
    )


def test_a_budget_raised_from_another_folder_is_the_budget_every_folder_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two machines (folders) share one tune; the second raises the budget of the first,
    # which ran out before any search run. Each folder's result states the study's budget.
    url = sqlite_url(tmp_path / "shared.db")
    args = [*TINY, "--patience=3", "--objective=val_mae", "--runs=2", f"--storage={url}"]
    assert main(["tune", *args, f"--out={tmp_path / 'a'}", "--budget=16"]) == 1
    capsys.readouterr()
    assert main(["tune", *args, f"--out={tmp_path / 'b'}", "--budget=200"]) == 0
    study = optuna.load_study(study_name="simloss-tune-abalone", storage=url)
    assert study.user_attrs["simloss_tune"]["tune"]["budget"] == 200
    for folder in ("a", "b"):
        assert load_tune(tmp_path / folder).settings.budget == 200

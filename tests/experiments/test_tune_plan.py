"""The tune's settings, budget ledger, candidates and Pareto front (no training)."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from pathlib import Path

import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from simloss.experiments.tune.plan import (
    CONVERGED_AFTER,
    Ledger,
    make_pruner,
    make_sampler,
    pareto_front,
    select_candidates,
)
from simloss.experiments.tune.settings import DEFAULT_RUNS, TuneSettings

DIST = FloatDistribution(0.0, 0.9, step=0.001)


def _trial(
    number: int,
    phase: str,
    value: float,
    state: TrialState = TrialState.COMPLETE,
    values: list[float] | None = None,
    epochs: int | None = None,
    reported: int = 0,
    **attrs: object,
) -> FrozenTrial:
    user = {"phase": phase, "param": "r", "value": value, "run": 0, **attrs}
    if epochs is not None:
        user["epochs"] = epochs
    trial = create_trial(
        state=state,
        params={"r": value},
        distributions={"r": DIST},
        values=values if state == TrialState.COMPLETE else None,
        user_attrs=user,
        intermediate_values={step: 1.0 for step in range(1, reported + 1)},
    )
    trial.number = number
    return trial


def _settings(**changes: object) -> TuneSettings:
    kwargs: dict = {"objectives": ["val_mae"], "budget": 1000}
    kwargs.update(changes)
    return TuneSettings.create("abalone", **kwargs)


def test_defaults_come_from_the_specs() -> None:
    s = _settings()
    assert (s.param, s.low, s.high, s.cce_value) == ("r", 0.0, 0.9, 0.0)
    assert s.runs == DEFAULT_RUNS == 6  # the fewest pairs for p < 0.05 (two-sided Wilcoxon)
    assert s.pruner == "median" and s.sampler == "tpe" and s.candidates == 1
    multi = _settings(objectives=["val_mae", "val_acc"])
    assert multi.pruner == "none" and multi.candidates == 2
    assert multi.directions == ("minimize", "maximize")
    assert TuneSettings.from_dict(multi.to_dict()) == multi
    assert _settings(sampler="gp").pruner == "none"  # GPSampler ignores pruned trials


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"objectives": ["test_mae"]}, "would leak it into the choice"),
        ({"objectives": ["val_sa"]}, "for dataset 'abalone', but found 'val_sa'"),
        ({"objectives": []}, "at least one --objective"),
        ({"objectives": ["val_mae", "val_mae"]}, "distinct --objective"),
        ({"budget": 0}, "--budget to be an int >= 1"),
        ({"runs": 1}, "--runs to be an int >= 2"),
        ({"candidates": 0}, "--candidates to be an int >= 1"),
        ({"search_range": (0.3, 0.9)}, "to contain r = 0.0 (CCE"),
        ({"search_range": (0.5, 0.5)}, "LOW < HIGH"),
        ({"search_range": (0.0, float("nan"))}, "finite numbers"),
        ({"param": "l"}, "Expected --range for --param 'l'"),
        ({"param": "q"}, "--param to be one of ['r', 'l']"),
        ({"sampler": "cma"}, "--sampler to be one of ['tpe', 'gp']"),
        ({"objectives": ["val_mae", "val_acc"], "pruner": "median"}, "--pruner none with 2"),
        ({"search_range": (0.0, 0.5, 0.9)}, "a pair (low, high), but found 3 values"),
        ({"search_range": "0:0.9"}, "a pair (low, high), but found str '0:0.9'"),
        ({"objectives": "val_mae"}, "a list of names such as ['val_mae'], but found str"),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_bad_settings_are_one_line_errors(changes: dict, message: str) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        _settings(**changes)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("search_range", "step"),
    [((0.0, 0.9), 0.001), ((0.0, 0.99), 0.001), ((0.0, 0.5), 0.001), ((0.0, 0.1234), 0.0001)],
)
def test_step_divides_the_range_into_at_least_100_steps(
    search_range: tuple[float, float], step: float
) -> None:
    s = _settings(search_range=search_range)
    assert s.step == step
    low, high = search_range
    assert (high - low) / s.step >= 100
    for point in (low, high, s.cce_value):  # all on the grid
        assert abs(point / step - round(point / step)) < 1e-6


def test_ledger_counts_epochs_and_reserves_the_confirmation() -> None:
    s = _settings(budget=1000, runs=3, candidates=1)
    trials = [
        _trial(0, "cce", 0.0, epochs=100, values=[1.4]),
        _trial(1, "search", 0.5, epochs=60, values=[1.5]),
        _trial(2, "search", 0.7, TrialState.PRUNED, epochs=40),
        _trial(3, "search", 0.2, TrialState.RUNNING, reported=30),
        _trial(4, "search", 0.3, TrialState.FAIL, reported=7),
    ]
    ledger = Ledger.count(trials, s, epoch_cap=500, planned=False)
    assert ledger.expected == 80.0  # mean of the complete runs (100, 60); pruned ones excluded
    assert ledger.spent == 100 + 60 + 40 + 30 + 7
    assert ledger.committed == ledger.spent + (80 - 30)  # the running trial's expected rest
    assert ledger.spread == pytest.approx(statistics.stdev([100, 60]))
    # CCE and one candidate, runs 1 and 2, each at the mean plus one standard deviation
    per_run = 80 + statistics.stdev([100, 60])
    assert ledger.reserve(s) == pytest.approx((1 + 1) * (3 - 1) * per_run)
    need = ledger.committed + 80 + 4 * per_run  # one more search run, then the confirmation
    assert ledger.can_search(_settings(budget=math.ceil(need), runs=3, candidates=1))
    assert not ledger.can_search(_settings(budget=math.floor(need), runs=3, candidates=1))
    planned = Ledger.count(trials, s, epoch_cap=500, planned=True)
    assert planned.reserve(s) == 0 and not planned.can_search(s)


def test_ledger_before_any_finished_run_expects_the_epoch_cap() -> None:
    s = _settings(budget=10_000, runs=2)
    ledger = Ledger.count([_trial(0, "cce", 0.0, TrialState.WAITING)], s, 500, planned=False)
    assert ledger.expected == 500 and ledger.spent == 0 and ledger.committed == 500


def test_search_converges_after_repeated_proposals() -> None:
    s = _settings(budget=10**6)
    trials = [_trial(0, "cce", 0.0, epochs=10, values=[1.0])]
    trials += [
        _trial(i, "search", 0.1, values=[1.0], epochs=0, duplicate_of=0)
        for i in range(1, CONVERGED_AFTER + 1)
    ]
    assert Ledger.count(trials, s, 10, planned=False).converged
    assert not Ledger.count(trials[:-1], s, 10, planned=False).converged


def test_candidates_single_objective_best_first_with_a_gap() -> None:
    s = _settings(candidates=3)  # gap 0.05 * 0.9 = 0.045
    trials = [
        _trial(0, "cce", 0.0, values=[0.5]),  # CCE is never a candidate (it is confirmed anyway)
        _trial(1, "search", 0.40, values=[1.10]),
        _trial(2, "search", 0.42, values=[1.05]),  # best
        _trial(3, "search", 0.80, values=[1.20]),
        _trial(4, "search", 0.60, TrialState.PRUNED),
        _trial(5, "search", 0.20, values=[1.30]),
        _trial(6, "search", 0.42, values=[1.05], duplicate_of=2),
    ]
    # 0.40 is within the gap of 0.42, so the next ones are 0.8 and 0.2.
    assert select_candidates(trials, s) == (0.42, 0.8, 0.2)
    assert select_candidates(trials, _settings(candidates=1)) == (0.42,)


def test_candidates_multi_objective_take_each_objectives_best_then_spread() -> None:
    s = _settings(objectives=["val_mae", "val_acc"], candidates=3)
    trials = [
        _trial(1, "search", 0.10, values=[1.50, 0.20]),  # best MAE
        _trial(2, "search", 0.90, values=[1.90, 0.30]),  # best accuracy
        _trial(3, "search", 0.30, values=[1.60, 0.25]),  # on the front
        _trial(4, "search", 0.70, values=[1.70, 0.27]),  # on the front, farther from 0.1 and 0.9
        _trial(5, "search", 0.50, values=[1.95, 0.10]),  # dominated
    ]
    # 0.3 is 0.2 from 0.1; 0.7 is 0.2 from 0.9: a tie, the earlier trial wins.
    assert select_candidates(trials, s) == (0.1, 0.9, 0.3)


def _dominated_brute_force(points: list[tuple[float, ...]], signs: list[float]) -> set[int]:
    bad = set()
    for i, j in itertools.permutations(range(len(points)), 2):
        a = [s * x for s, x in zip(signs, points[j], strict=True)]
        b = [s * x for s, x in zip(signs, points[i], strict=True)]
        if all(x <= y for x, y in zip(a, b, strict=True)) and any(
            x < y for x, y in zip(a, b, strict=True)
        ):
            bad.add(i)
    return bad


@pytest.mark.parametrize("seed", range(20))
def test_pareto_front_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    k = rng.choice([2, 3])
    directions = [rng.choice(["minimize", "maximize"]) for _ in range(k)]
    # Few distinct levels so ties and equal points occur.
    points = [tuple(float(rng.randint(0, 4)) for _ in range(k)) for _ in range(rng.randint(1, 12))]
    signs = [1.0 if d == "minimize" else -1.0 for d in directions]
    expected = sorted(set(range(len(points))) - _dominated_brute_force(points, signs))
    assert pareto_front(points, directions) == expected


def test_sampler_and_pruner_are_optunas() -> None:
    import optuna

    s = _settings()
    assert isinstance(make_sampler(s), optuna.samplers.TPESampler)
    assert isinstance(make_sampler(_settings(sampler="gp")), optuna.samplers.GPSampler)
    assert isinstance(make_pruner(s, 20), optuna.pruners.MedianPruner)
    assert isinstance(
        make_pruner(_settings(pruner="halving"), 20), optuna.pruners.SuccessiveHalvingPruner
    )
    assert isinstance(make_pruner(_settings(pruner="none"), 20), optuna.pruners.NopPruner)


def test_orphaned_asked_trials_are_failed(tmp_path: Path) -> None:
    # A worker killed between study.ask() and its first heartbeat leaves a running
    # trial without a point that no heartbeat check finds.
    import optuna

    from simloss.experiments.sweep.storage import dispose, open_storage, sqlite_url
    from simloss.experiments.tune.worker import fail_orphans

    url = sqlite_url(f"{tmp_path}/s.db")
    storage = open_storage(url)
    try:
        study = optuna.create_study(study_name="t", storage=storage)
        orphan = study.ask()
        live = study.ask()
        study_id = storage.get_study_id_from_name("t")
        live_id = storage.get_trial_id_from_study_id_trial_number(study_id, live.number)
        storage.set_trial_user_attr(live_id, "phase", "search")
        assert fail_orphans(study, storage, study_id, grace_s=3600) == []  # too young
        assert fail_orphans(study, storage, study_id, grace_s=0) == [orphan.number]
        states = [t.state for t in study.get_trials()]
        assert states == [TrialState.FAIL, TrialState.RUNNING]
        assert "first heartbeat" in study.get_trials()[0].user_attrs["error"]
    finally:
        dispose(storage)


def test_repeated_proposals_are_settled_without_training(tmp_path: Path) -> None:
    import optuna

    from simloss.experiments.sweep.storage import dispose, open_storage, sqlite_url
    from simloss.experiments.tune.worker import settle_repeat

    storage = open_storage(sqlite_url(tmp_path / "s.db"))
    try:
        study = optuna.create_study(study_name="t", storage=storage)
        study_id = storage.get_study_id_from_name("t")
        study.add_trial(_trial(0, "search", 0.3, values=[1.5], epochs=40))
        study.add_trial(_trial(1, "search", 0.147, TrialState.PRUNED, epochs=12))

        def ask(value: float) -> tuple[FrozenTrial, int]:
            asked = study.ask({"r": DIST})
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, asked.number)
            for key, item in {"phase": "search", "param": "r", "value": value, "run": 0}.items():
                storage.set_trial_user_attr(trial_id, key, item)
            return storage.get_trial(trial_id), trial_id

        again, again_id = ask(0.3)  # a complete point: its values
        assert settle_repeat(study, storage, again, again_id, None)
        settled = storage.get_trial(again_id)
        assert settled.state == TrialState.COMPLETE and settled.values == [1.5]
        assert settled.user_attrs["duplicate_of"] == 0 and settled.user_attrs["epochs"] == 0

        pruned, pruned_id = ask(0.147)  # a pruned point: pruned as it was
        assert settle_repeat(study, storage, pruned, pruned_id, None)
        assert storage.get_trial(pruned_id).state == TrialState.PRUNED
        assert storage.get_trial(pruned_id).user_attrs["duplicate_of"] == 1

        third, third_id = ask(0.3)  # a repeat of a repeat names the trained trial
        assert settle_repeat(study, storage, third, third_id, None)
        assert storage.get_trial(third_id).user_attrs["duplicate_of"] == 0

        fresh, fresh_id = ask(0.5)  # a new point is left to be trained
        assert not settle_repeat(study, storage, fresh, fresh_id, None)
        assert storage.get_trial(fresh_id).state == TrialState.RUNNING
    finally:
        dispose(storage)

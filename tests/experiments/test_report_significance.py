"""The significance marks follow the test that was made: rank sums, exact null, effect size.

Each case's p-value is checked against scipy (``scipy.stats.wilcoxon`` with its exact
null where scipy has one, and its permutation null with ties), never against our own
numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simloss.experiments.report.stats import signed_rank_test, wilcoxon_against_baseline


def _paired(differences, base: float = 5.0):
    """Rows of paired runs whose differences (row - CCE) are ``differences``."""
    baseline = {i: base for i in range(len(differences))}
    values = {i: base + d for i, d in enumerate(differences)}
    return values, baseline


def _exact_permutation_p(differences) -> float:
    nonzero = np.asarray(differences, dtype=np.float64)
    nonzero = nonzero[nonzero != 0]
    method = stats.PermutationMethod(n_resamples=2 ** len(nonzero))
    return float(stats.wilcoxon(nonzero, method=method).pvalue)


def test_the_mark_follows_the_ranks_not_the_mean_of_one_outlier() -> None:
    # 12 runs of an MAE: 11 favour this row by 0.02 .. 0.22, one is 2.5 worse. The mean
    # difference is worse, the signed ranks (W+ = 12, W- = 66) and the Hodges-Lehmann
    # shift say better, and the test of the ranks is significant.
    differences = [-0.02 * k for k in range(1, 12)] + [2.5]
    result = wilcoxon_against_baseline(*_paired(differences), lower_is_better=True)
    assert result.mean_difference > 0  # worse on average ...
    assert result.p_value == pytest.approx(stats.wilcoxon(differences, method="exact").pvalue)
    assert result.p_value == pytest.approx(0.0342, abs=1e-4)
    assert result.mark == "+"  # ... better by the statistic that was tested
    assert result.hodges_lehmann < 0
    assert result.effect == pytest.approx((66 - 12) / 78)
    assert result.reason.startswith(
        "significantly better (p = 0.0342, exact; rank-biserial r_rb = +0.69"
    )


def test_nineteen_small_gains_and_one_large_loss_are_significantly_better() -> None:
    differences = [-0.01 * k for k in range(1, 20)] + [10.0]
    result = wilcoxon_against_baseline(*_paired(differences), lower_is_better=True)
    assert result.p_value == pytest.approx(stats.wilcoxon(differences, method="exact").pvalue)
    assert result.p_value == pytest.approx(0.0007, abs=1e-4)
    assert result.mark == "+" and result.reason.startswith("significantly better")
    # the same numbers for a metric where higher is better are significantly worse
    flipped = wilcoxon_against_baseline(*_paired(differences), lower_is_better=False)
    assert flipped.mark == "-" and flipped.reason.startswith("significantly worse")


def test_a_significant_p_is_never_reported_as_not_significant() -> None:
    # 12 pairs: 11 x -0.25 and one +2.75, mean exactly 0; the ranks are significant
    differences = [-0.25] * 11 + [2.75]
    result = wilcoxon_against_baseline(*_paired(differences), lower_is_better=True)
    assert result.mean_difference == pytest.approx(0.0, abs=1e-12)
    assert result.p_value == pytest.approx(_exact_permutation_p(differences))
    assert result.p_value < 0.05
    assert result.mark == "+"
    assert "not significant" not in result.reason


def test_ties_get_the_exact_null_not_the_normal_approximation() -> None:
    # 16 runs, two zero differences and ties among the rest: scipy's method="auto" uses
    # the normal approximation (p = 0.049); the exact permutation null gives 0.057
    differences = np.array([-2, 4, -1, 3, 0, 0, 5, 1, 1, 1, -3, 3, 3, 2, 1, 1]) * 1e-3
    result = wilcoxon_against_baseline(
        *_paired(differences.tolist(), base=0.5), lower_is_better=False
    )
    assert stats.wilcoxon(np.round(differences, 12), method="auto").pvalue < 0.05
    assert result.p_value == pytest.approx(_exact_permutation_p(np.round(differences, 12)))
    assert result.p_value == pytest.approx(0.0565, abs=1e-4)
    assert result.method == "exact" and result.mark == ""
    assert result.reason.startswith("not significant (p = 0.0565, exact")


@pytest.mark.parametrize("n", [6, 9, 13, 25])
def test_exact_p_values_equal_scipys_without_ties(n: int) -> None:
    x = np.random.default_rng(n).normal(size=n)
    assert signed_rank_test(x).p_value == pytest.approx(
        stats.wilcoxon(x, method="exact").pvalue, rel=1e-12
    )


def test_beyond_the_exact_limit_the_normal_approximation_is_named() -> None:
    x = np.random.default_rng(0).normal(loc=0.1, size=450)
    test = signed_rank_test(x)
    assert test.method == "normal approximation"
    assert test.p_value == pytest.approx(
        stats.wilcoxon(x, method="approx", correction=False).pvalue, rel=1e-9
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=str)
@pytest.mark.parametrize("side", ["values", "baseline"])
def test_a_value_that_is_not_finite_is_refused_naming_its_run(bad: float, side: str) -> None:
    values, baseline = _paired([0.1 + 0.01 * i for i in range(8)], base=0.5)
    (values if side == "values" else baseline)[3] = bad
    with pytest.raises(ValueError, match=rf"Expected finite `{side}`.*run 3 is {bad}"):
        wilcoxon_against_baseline(values, baseline, lower_is_better=False)
    if bad != bad:  # scipy refuses a NaN too when asked not to propagate it
        with pytest.raises(ValueError):
            stats.wilcoxon(np.array([*values.values()]) - np.array([*baseline.values()]),
                           nan_policy="raise")  # fmt: skip


def test_signed_rank_test_refuses_a_difference_that_is_not_finite() -> None:
    with pytest.raises(ValueError, match="Expected finite `differences`, but found nan at index 2"):
        signed_rank_test(np.array([0.1, -0.2, np.nan, 0.3, 0.4, 0.5]))
    with pytest.raises(ValueError, match=r"of shape \(n,\)"):
        signed_rank_test(np.ones((2, 3)))


def test_the_csvs_give_the_effect_and_the_hodges_lehmann_shift() -> None:
    import csv
    import io
    import itertools

    from simloss.experiments.report import summarize_sweep
    from simloss.experiments.report.compare import compare_losses
    from simloss.experiments.report.compare_tables import comparison_csv, verdict_lines
    from simloss.experiments.report.render import to_csv

    gains = [0.03, 0.01, 0.05, -0.02, 0.04, 0.06, 0.02, 0.07]  # MAE of r = 0.5 minus CCE's
    records = [
        {"dataset": "toy", "param": "r", "value": v, "run": i,
         "metrics": {"val": {"mae": 2.0}, "test": {"mae": 2.0 + (g if v else 0.0)}}}
        for v in (0.0, 0.5) for i, g in enumerate(gains)
    ]  # fmt: skip
    diffs = np.round(np.array(gains), 12)
    walsh = [(a + b) / 2 for a, b in itertools.combinations_with_replacement(diffs, 2)]
    shift = float(np.median(walsh))  # Hodges-Lehmann: the median of the Walsh averages
    ranks = stats.rankdata(np.abs(diffs))
    # lower MAE is better: +1 would be every pair favouring r = 0.5
    effect = (ranks[diffs < 0].sum() - ranks[diffs > 0].sum()) / ranks.sum()
    rows = list(csv.DictReader(io.StringIO(to_csv(summarize_sweep(records)))))
    (row,) = [r for r in rows if r["value"] == "0.5" and r["split"] == "test"]
    assert float(row["hodges_lehmann"]) == pytest.approx(shift)
    assert float(row["effect"]) == pytest.approx(effect)
    assert "r_rb =" in row["note"] and "rank-biserial r =" not in row["note"]
    # the loss comparison: the same columns, and its verdict gives p with effect and null
    losses = [
        {**r, "loss": "ce" if r["value"] == 0.0 else "sord", "param": None, "value": None,
         "monitor": "mae"}
        for r in records
    ]  # fmt: skip
    comparison = compare_losses(losses)
    (line,) = [r for r in csv.DictReader(io.StringIO(comparison_csv(comparison)))
               if r["loss"] == "sord" and r["split"] == "test"]  # fmt: skip
    assert float(line["hodges_lehmann"]) == pytest.approx(shift)
    verdict = " ".join(verdict_lines(comparison))
    assert "exact, rank-biserial r_rb =" in verdict or "the CCE row itself" in verdict


def test_the_more_metrics_text_names_every_metric_of_its_table() -> None:
    from simloss.experiments.report.render import EXTRA_TEXT
    from simloss.experiments.report.tables import extra_metrics
    from simloss.metrics import metric_facts, metric_keys

    keys = metric_keys(ordered=True) + metric_keys(superclasses=True, hierarchy=True)
    for key in extra_metrics(list(keys)):
        label = metric_facts(key).label
        if label.isupper():  # the ordinal abbreviations (QWK, AMAE, ..., GMS)
            assert f"({label})" in EXTRA_TEXT, label


@pytest.mark.parametrize("base", [0.5, 3e2, 1e5, 2.5e7], ids=lambda b: f"base={b:g}")
def test_differences_that_tie_in_exact_arithmetic_tie_at_any_scale(base: float) -> None:
    # the review's case: differences of +-0.1, +-0.2, ... that tie exactly, on values of
    # any size (e.g. an MSE in squared years); scipy's permutation null on the exact ones
    intended = [0.1, 0.1, 0.2, -0.1, 0.3, 0.2, 0.1, 0.4, 0.3, 0.2]
    rng = np.random.default_rng(1)
    baseline = {i: round(base * rng.uniform(1.0, 3.0), 1) for i in range(len(intended))}
    values = {i: round(baseline[i] + d, 1) for i, d in enumerate(intended)}
    result = wilcoxon_against_baseline(values, baseline, lower_is_better=True)
    assert result.p_value == pytest.approx(_exact_permutation_p(intended), rel=1e-12)
    assert result.hodges_lehmann == pytest.approx(0.2, abs=1e-9)

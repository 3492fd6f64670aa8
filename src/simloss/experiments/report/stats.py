"""The significance test of the report: Wilcoxon signed-rank against the CCE row.

As in Tables 1 and 2 of the paper: for every test value, a two-sided Wilcoxon
signed-rank test at the 5 % level against the CCE row (``r = 0.0`` or
``l = 0.99``), paired by run index.

References:
    Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
    https://arxiv.org/abs/2003.03182
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

__all__ = [
    "TestStatus",
    "WilcoxonResult",
    "min_pairs_for_significance",
    "wilcoxon_against_baseline",
]

TestStatus = Literal["tested", "too_few_runs", "all_zero", "no_baseline", "unknown_direction"]


def min_pairs_for_significance(alpha: float) -> int:
    """The fewest non-zero paired differences a two-sided signed-rank test needs to reach ``alpha``.

    With ``n`` non-zero differences the smallest two-sided p-value is ``2 / 2**n``
    (all differences of one sign), so fewer pairs can never be significant.

    Args:
        alpha: significance level in (0, 1).

    Returns:
        The smallest ``n`` with ``2 ** (1 - n) < alpha``.

    Example:
        >>> min_pairs_for_significance(0.05)
        6
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"Expected `alpha` in (0, 1), but found {alpha}")
    n = 1
    while 2.0 ** (1 - n) >= alpha:
        n += 1
    return n


@dataclass(frozen=True)
class WilcoxonResult:
    """Outcome of one significance test of a test value against the CCE row.

    Attributes:
        status: ``"tested"`` when the test was made; otherwise why not:
            ``"too_few_runs"``, ``"all_zero"`` (every paired difference is zero),
            ``"no_baseline"`` (no CCE runs to pair with) or ``"unknown_direction"``
            (a metric whose better direction is not known).
        n_pairs: runs present in both rows (paired by run index).
        n_nonzero: pairs with a non-zero difference (those the test ranks).
        mean_difference: mean of ``value - baseline`` over the pairs (``None``
            without pairs).
        statistic: the signed-rank statistic (``None`` when not tested).
        p_value: the two-sided p-value (``None`` when not tested).
        mark: ``"+"`` (significantly better), ``"-"`` (significantly worse) or ``""``.
        reason: a short human-readable account of the outcome.
    """

    status: TestStatus
    n_pairs: int
    n_nonzero: int
    mean_difference: float | None
    statistic: float | None
    p_value: float | None
    mark: str
    reason: str

    @property
    def made(self) -> bool:
        """Whether the test was made."""
        return self.status == "tested"


def wilcoxon_against_baseline(
    values: Mapping[int, float],
    baseline: Mapping[int, float],
    *,
    lower_is_better: bool | None,
    alpha: float = 0.05,
) -> WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test of one row against the CCE row, paired by run.

    Runs present in both mappings are paired; zero differences are discarded
    (``zero_method="wilcox"``) and ``scipy.stats.wilcoxon`` chooses the exact or
    permutation null distribution for small samples (``method="auto"``). The test
    is not made when fewer non-zero differences remain than
    :func:`min_pairs_for_significance` requires, or when all differences are zero.
    The mark follows the sign of the mean paired difference and the metric's
    direction: ``+`` for significantly better, ``-`` for significantly worse.

    Args:
        values: metric value per run index for the row under test.
        baseline: metric value per run index for the CCE row.
        lower_is_better: the metric's direction (``None``: unknown, no test).
        alpha: significance level (two-sided).

    Returns:
        A :class:`WilcoxonResult`.

    Example:
        >>> base = {i: 0.10 for i in range(8)}
        >>> better = {i: 0.12 + 0.001 * i for i in range(8)}
        >>> res = wilcoxon_against_baseline(better, base, lower_is_better=False)
        >>> res.mark, res.n_pairs, round(res.p_value, 4)
        ('+', 8, 0.0078)
        >>> wilcoxon_against_baseline(base, base, lower_is_better=False).status
        'all_zero'
    """
    min_pairs = min_pairs_for_significance(alpha)
    common = sorted(set(values) & set(baseline))
    n_pairs = len(common)
    diffs = np.array([values[i] - baseline[i] for i in common], dtype=np.float64)
    # Rounding removes sub-ulp noise from the subtraction, so tied differences tie exactly.
    diffs = np.round(diffs, 12)
    n_nonzero = int(np.count_nonzero(diffs))
    mean_diff = float(diffs.mean()) if n_pairs else None
    if not baseline:
        return WilcoxonResult("no_baseline", 0, 0, None, None, None, "", "no CCE runs")
    if lower_is_better is None:
        return WilcoxonResult(
            "unknown_direction", n_pairs, n_nonzero, mean_diff, None, None, "",
            "not made: the metric's better direction is unknown",
        )  # fmt: skip
    if n_pairs > 0 and n_nonzero == 0:
        return WilcoxonResult(
            "all_zero", n_pairs, 0, mean_diff, None, None, "",
            f"not made: all {n_pairs} paired differences are zero",
        )  # fmt: skip
    if n_nonzero < min_pairs:
        return WilcoxonResult(
            "too_few_runs", n_pairs, n_nonzero, mean_diff, None, None, "",
            f"not made: too few runs ({n_nonzero} non-zero of {n_pairs} pairs; "
            f"{min_pairs} needed)",
        )  # fmt: skip
    result = stats.wilcoxon(diffs, zero_method="wilcox", alternative="two-sided", method="auto")
    p_value = float(result.pvalue)
    statistic = float(result.statistic)
    mark = ""
    if p_value < alpha and mean_diff is not None and mean_diff != 0.0:
        better = (mean_diff < 0.0) if lower_is_better else (mean_diff > 0.0)
        mark = "+" if better else "-"
    verdict = {"+": "significantly better", "-": "significantly worse", "": "not significant"}
    return WilcoxonResult(
        "tested", n_pairs, n_nonzero, mean_diff, statistic, p_value, mark,
        f"{verdict[mark]} (p = {p_value:.3g}, n = {n_nonzero} of {n_pairs} pairs)",
    )  # fmt: skip

"""The significance test of the report: Wilcoxon signed-rank against the CCE row.

As in Tables 1 and 2 of the paper: for every test value, a two-sided Wilcoxon
signed-rank test at the 5 % level against the CCE row (``r = 0.0`` or
``l = 0.99``), paired by run index.

References:
    Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
    https://arxiv.org/abs/2003.03182
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

__all__ = [
    "EXACT_LIMIT",
    "SignedRankTest",
    "TestStatus",
    "WilcoxonResult",
    "min_pairs_for_significance",
    "signed_rank_test",
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


#: Above this many non-zero differences the exact null distribution (O(n^3) work) gives
#: way to the normal approximation; the result says which was used.
EXACT_LIMIT = 400


@dataclass(frozen=True)
class SignedRankTest:
    """A two-sided Wilcoxon signed-rank test of paired differences (zeros discarded).

    Attributes:
        n: non-zero differences ranked.
        w_plus: the sum of the (mid)ranks of the positive differences.
        w_minus: the same for the negative ones (``w_plus + w_minus = n (n + 1) / 2``).
        p_value: two-sided, from the exact null distribution of ``w_plus`` under
            random signs (midranks included, so ties are exact too) or, above
            :data:`EXACT_LIMIT` differences, from the normal approximation with the
            tie correction.
        method: ``"exact"`` or ``"normal approximation"``.
        rank_biserial: the matched-pairs rank-biserial correlation
            ``(w_plus - w_minus) / (w_plus + w_minus)`` in [-1, 1] (Kerby 2014): +1 when
            every non-zero difference is positive.
        hodges_lehmann: the median of the Walsh averages of the differences, the shift
            estimate that goes with the signed-rank test.
    """

    n: int
    w_plus: float
    w_minus: float
    p_value: float
    method: str
    rank_biserial: float
    hodges_lehmann: float


def signed_rank_test(differences: np.ndarray) -> SignedRankTest:
    """The two-sided signed-rank test of ``differences``, exact whenever affordable.

    The statistic is the rank sum of the positive differences among the non-zero ones
    (``zero_method="wilcox"``), ties taking their midranks. The null distribution is
    the exact one of that statistic under independent random signs, for any ties
    (computed on doubled midranks, which are integers), up to :data:`EXACT_LIMIT`
    differences; scipy's ``method="auto"`` switches to the normal approximation
    as soon as differences tie (with 14 or more pairs), where the exact test can
    disagree at the 5 % level.

    Raises:
        ValueError: a NaN or infinite difference (naming its index), or none non-zero.

    Example:
        >>> test = signed_rank_test(np.array([-0.2, 0.1, -0.3, -0.4, -0.5, -0.6]))
        >>> test.w_plus, test.w_minus, round(test.p_value, 4), test.method, round(test.rank_biserial, 3)
        (1.0, 20.0, 0.0625, 'exact', -0.905)
    """
    values = np.asarray(differences, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"Expected `differences` of shape (n,), but found shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(
            f"Expected finite `differences`, but found {values[bad[0]]} at index {int(bad[0])}"
        )
    nonzero = values[values != 0.0]
    n = int(nonzero.size)
    if n == 0:
        raise ValueError("Expected at least one non-zero difference, but found none")
    ranks = stats.rankdata(np.abs(nonzero))  # midranks for ties
    w_plus = float(ranks[nonzero > 0].sum())
    total = n * (n + 1) / 2.0
    w_minus = total - w_plus
    if n <= EXACT_LIMIT:
        doubled = np.rint(2.0 * ranks).astype(np.int64)
        probabilities = _null_distribution(doubled)
        observed = round(2.0 * w_plus)
        lower = float(probabilities[: observed + 1].sum())
        upper = float(probabilities[observed:].sum())
        p_value = min(1.0, 2.0 * min(lower, upper))
        method = "exact"
    else:
        _, counts = np.unique(np.abs(nonzero), return_counts=True)
        variance = n * (n + 1) * (2 * n + 1) / 24.0 - float((counts**3 - counts).sum()) / 48.0
        z = (w_plus - total / 2.0) / np.sqrt(variance)
        p_value = float(min(1.0, 2.0 * stats.norm.sf(abs(z))))
        method = "normal approximation"
    walsh = (values[:, None] + values[None, :]) / 2.0
    upper_triangle = walsh[np.triu_indices(values.size)]
    return SignedRankTest(
        n=n,
        w_plus=w_plus,
        w_minus=w_minus,
        p_value=p_value,
        method=method,
        rank_biserial=(w_plus - w_minus) / total,
        hodges_lehmann=float(np.median(upper_triangle)),
    )


def _null_distribution(doubled_ranks: np.ndarray) -> np.ndarray:
    """P(2 W+ = s) for s = 0 .. sum, each rank's sign + or - with probability 1/2."""
    size = int(doubled_ranks.sum()) + 1
    probabilities = np.zeros(size, dtype=np.float64)
    probabilities[0] = 1.0
    reach = 0
    for rank in doubled_ranks.tolist():
        shifted = np.zeros(size, dtype=np.float64)
        shifted[rank : rank + reach + 1] = probabilities[: reach + 1]
        probabilities = 0.5 * (probabilities + shifted)
        reach += rank
    return probabilities


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
            without pairs); shown for information, never the mark's direction.
        statistic: the signed-rank statistic ``min(W+, W-)`` (``None`` when not tested).
        p_value: the two-sided p-value (``None`` when not tested).
        mark: ``"+"`` (significantly better), ``"-"`` (significantly worse) or ``""``.
        reason: a short human-readable account of the outcome.
        effect: the matched-pairs rank-biserial correlation, signed so that +1 means
            every non-zero pair favours this row (``None`` when not tested).
        method: the null distribution used, ``"exact"`` or ``"normal approximation"``.
        hodges_lehmann: the Hodges-Lehmann estimate of ``value - baseline``.
    """

    status: TestStatus
    n_pairs: int
    n_nonzero: int
    mean_difference: float | None
    statistic: float | None
    p_value: float | None
    mark: str
    reason: str
    effect: float | None = None
    method: str | None = None
    hodges_lehmann: float | None = None

    @property
    def made(self) -> bool:
        """Whether the test was made."""
        return self.status == "tested"


#: Paired differences keep this many significant decimals of the largest value they come from.
SIGNIFICANT_DECIMALS = 12


def _tie_exactly(values: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """``values - baseline`` rounded to :data:`SIGNIFICANT_DECIMALS` significant decimals of
    the largest magnitude among them, so that differences equal in exact arithmetic tie.

    The subtraction's rounding error is about one ulp of the operands, so a fixed number
    of decimals restores ties only for small values (``np.round(d, 12)`` fails above
    about 1e4); decimals counted from the largest value hold at any scale. A difference
    below 1e-12 of the values counts as zero.

    Example:
        >>> a = np.array([262654.1, 282551.2]); b = np.array([262654.0, 282551.1])
        >>> np.round(a - b, 12).tolist(), _tie_exactly(a, b).tolist()
        ([0.099999999977, 0.100000000035], [0.1, 0.1])
    """
    diffs = values - baseline
    scale = float(max(np.abs(values).max(), np.abs(baseline).max())) if diffs.size else 0.0
    if scale == 0.0:
        return diffs
    decimals = SIGNIFICANT_DECIMALS - int(np.floor(np.log10(scale)))
    return np.round(diffs, decimals)


def wilcoxon_against_baseline(
    values: Mapping[int, float],
    baseline: Mapping[int, float],
    *,
    lower_is_better: bool | None,
    alpha: float = 0.05,
) -> WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test of one row against the CCE row, paired by run.

    Runs present in both mappings are paired; zero differences are discarded
    (``zero_method="wilcox"``) and the p-value comes from the exact null distribution
    (:func:`signed_rank_test`; the normal approximation only above
    :data:`EXACT_LIMIT` differences, and the reason says which). The test is not
    made when fewer non-zero differences remain than
    :func:`min_pairs_for_significance` requires, or when all differences are zero.
    **The mark follows the statistic that was tested**: the rank sums ``W+`` and
    ``W-`` of the positive and negative differences (``value - baseline``), with the
    metric's direction: ``+`` when the ranks favour this row and the test is
    significant, ``-`` when they favour CCE. The mean difference can point the other
    way (one large outlier against many small gains) and is never used for the mark.
    The reason gives p, the null used and the rank-biserial effect size.

    Args:
        values: metric value per run index for the row under test.
        baseline: metric value per run index for the CCE row.
        lower_is_better: the metric's direction (``None``: unknown, no test).
        alpha: significance level (two-sided).

    Returns:
        A :class:`WilcoxonResult`.

    Raises:
        ValueError: a NaN or infinite value in either mapping, naming the run (the
            report leaves such runs out with a note before testing; here nothing is
            dropped silently).

    Example:
        >>> base = {i: 0.10 for i in range(8)}
        >>> better = {i: 0.12 + 0.001 * i for i in range(8)}
        >>> res = wilcoxon_against_baseline(better, base, lower_is_better=False)
        >>> res.mark, res.n_pairs, round(res.p_value, 4), res.effect
        ('+', 8, 0.0078, 1.0)
        >>> res.reason
        'significantly better (p = 0.00781, exact; rank-biserial r_rb = +1.00; n = 8 of 8 pairs)'
        >>> wilcoxon_against_baseline(base, base, lower_is_better=False).status
        'all_zero'
    """
    min_pairs = min_pairs_for_significance(alpha)
    for name, mapping in (("values", values), ("baseline", baseline)):
        for run, value in mapping.items():
            if not math.isfinite(value):
                raise ValueError(
                    f"Expected finite `{name}` (one metric value per run), but run {run} is {value}"
                )
    common = sorted(set(values) & set(baseline))
    n_pairs = len(common)
    diffs = _tie_exactly(
        np.array([values[i] for i in common], dtype=np.float64),
        np.array([baseline[i] for i in common], dtype=np.float64),
    )
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
    test = signed_rank_test(diffs)
    # +1: every non-zero pair favours this row (lower values when lower is better).
    effect = -test.rank_biserial if lower_is_better else test.rank_biserial
    mark = ""
    if test.p_value < alpha and effect != 0.0:
        mark = "+" if effect > 0 else "-"
    verdict = {"+": "significantly better", "-": "significantly worse", "": "not significant"}
    return WilcoxonResult(
        "tested", n_pairs, n_nonzero, mean_diff, min(test.w_plus, test.w_minus), test.p_value,
        mark,
        f"{verdict[mark]} (p = {test.p_value:.3g}, {test.method}; rank-biserial r_rb = "
        f"{effect:+.2f}; n = {n_nonzero} of {n_pairs} pairs)",
        effect=effect, method=test.method, hodges_lehmann=test.hodges_lehmann,
    )  # fmt: skip

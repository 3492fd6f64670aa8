"""Find the similarity parameter's best value(s) at a fraction of a grid's cost: ``simloss tune``.

A tune is an Optuna study on the sweep's engine (the same storage opener,
records, workers and crash safety as :mod:`simloss.experiments.sweep`): CCE's
run, then a search in which Optuna's sampler proposes values of ``r`` (or
``l``) and its pruner stops runs that fall behind after any epoch, then the
confirmation of the best values and CCE with several seeds, so the result is a
mean with its run-to-run spread and a Wilcoxon test against CCE. With several
objectives the result is the Pareto front. See ``docs/tuning.md``.

The rooms:

- :mod:`~simloss.experiments.tune.settings`: :class:`TuneSettings`, the fixed settings.
- :mod:`~simloss.experiments.tune.plan`: the phases, the budget ledger, the
  candidates, the Pareto front, the sampler and the pruner.
- :mod:`~simloss.experiments.tune.worker`: the worker loop (search, report, prune).
- :mod:`~simloss.experiments.tune.run`: :func:`run_tune`, one command.
- :mod:`~simloss.experiments.tune.result`: :func:`load_tune`, the result read back.
- :mod:`~simloss.experiments.tune.tables` and :mod:`~simloss.experiments.tune.write`:
  the result as tables (the report's table model), figure and files.
"""

from __future__ import annotations

from simloss.experiments.tune.plan import pareto_front, select_candidates
from simloss.experiments.tune.result import TUNE_FILE, TrialSummary, TuneResult, load_tune
from simloss.experiments.tune.run import run_tune
from simloss.experiments.tune.settings import DEFAULT_RUNS, PRUNERS, SAMPLERS, TuneSettings

__all__ = [
    "DEFAULT_RUNS",
    "PRUNERS",
    "SAMPLERS",
    "TUNE_FILE",
    "TrialSummary",
    "TuneResult",
    "TuneSettings",
    "load_tune",
    "pareto_front",
    "run_tune",
    "select_candidates",
]

"""Which loss for related classes? SimLoss and its peers across many real datasets.

:func:`plan_benchmark` checks a request (tasks x losses) and
:func:`run_benchmark` runs it on the sweep engine, every task x loss x
parameter value x seed once; :func:`write_benchmark_report` ranks the losses
across tasks with the field's statistics (Friedman, Nemenyi, critical-difference
diagrams, win/tie/loss). ``simloss benchmark`` and ``simloss report`` call them.
"""

from __future__ import annotations

from simloss.experiments.benchmark.datasets import BENCHMARK_DATASETS, write_task
from simloss.experiments.benchmark.report import benchmark_tables, write_benchmark_report
from simloss.experiments.benchmark.run import (
    BENCHMARK_FILE,
    BENCHMARK_METRICS,
    DEFAULT_TASKS,
    BenchmarkPlan,
    check_run_args,
    estimate,
    estimate_text,
    plan_benchmark,
    run_benchmark,
)

__all__ = [
    "BENCHMARK_DATASETS",
    "BENCHMARK_FILE",
    "BENCHMARK_METRICS",
    "DEFAULT_TASKS",
    "BenchmarkPlan",
    "benchmark_tables",
    "check_run_args",
    "estimate",
    "estimate_text",
    "plan_benchmark",
    "run_benchmark",
    "write_benchmark_report",
    "write_task",
]

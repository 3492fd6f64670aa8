"""The record of a training run and of a sweep trial, as typed dictionaries.

A run record is the JSON object that
:func:`simloss.experiments.train.run_training` writes to ``record.json`` (the
layout of ``docs/architecture.md``, ``schema_version`` 1). A sweep stores it
with its trial, and :func:`simloss.experiments.sweep.load_records` returns it
with the trial's point added (:class:`SweepRecord`). Reports read both types.
Records may carry keys beyond these; readers ignore keys they do not know.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = [
    "Distributions",
    "EpochEntry",
    "RunRecord",
    "SplitMetrics",
    "SweepRecord",
]


#: Metric name -> value (``None``: undefined, e.g. FSA without a mistake).
SplitMetrics = dict[str, float | None]


class EpochEntry(TypedDict, total=False):
    """One entry of a record's ``history``."""

    epoch: int
    train_loss: float
    val_loss: float
    val: SplitMetrics
    time_s: float
    train_time_s: float


class Distributions(TypedDict, total=False):
    """Mean predicted distributions over the test set (``None``: no example of a class)."""

    test_mean: list[float]
    test_per_class: list[list[float] | None]
    test_label: list[float]


class RunRecord(TypedDict, total=False):
    """The record of one training run (``record.json``)."""

    schema_version: int
    config: dict[str, Any]
    seed: int
    dataset: str
    loss: str
    param: str | None
    param_value: float | None
    class_values: list[float]
    class_names: list[str] | None
    history: list[EpochEntry]
    best_epoch: int
    metrics: dict[str, SplitMetrics]
    distributions: Distributions
    weights: str
    wall_time_s: float
    num_examples: dict[str, int]
    monitor: str
    epochs_run: int
    stop_reason: str
    fine_to_coarse: list[int] | None
    source_class_indices: list[int] | None
    data_info: dict[str, Any]
    device: str
    versions: dict[str, str]


class SweepRecord(RunRecord, total=False):
    """A run record read from a sweep, with the trial's point.

    ``loss`` is the loss (SimLoss where the trial names none:
    :func:`simloss.experiments.loss_catalog.stored_loss`), ``param`` the swept parameter (``None`` for a loss without one),
    ``value`` its value (rounded by :func:`simloss.experiments.points.value_key`;
    ``None`` without a parameter) and ``run`` the run index.
    """

    value: float | None
    run: int

"""The table of facts: every entry agrees with the code it names."""

from __future__ import annotations

import importlib
import inspect

import pytest

from simloss.experiments.config import TrainConfig, setting_choices
from simloss.experiments.data import load_task
from simloss.experiments.report.paper import load_paper_table
from simloss.experiments.specs import (
    DATA_OPTIONS,
    METRIC_ORDER,
    MODELS,
    MONITORS,
    PARAMS,
    metric_spec,
)
from simloss.experiments.task import BUILTIN_TASKS

_READER_KEYWORDS = {
    "table": "load_table_task",
    "images": "load_image_task",
    "arrays": "load_array_task",
}


@pytest.mark.parametrize("name", list(BUILTIN_TASKS))
def test_reader_takes_exactly_the_declared_settings(name: str) -> None:
    task = BUILTIN_TASKS[name]
    if task.data.kind == "factory":
        module, function = (task.data.factory or "").split(":")
        reader = getattr(importlib.import_module(module), function)
        parameters = set(inspect.signature(reader).parameters)
        assert set(task.data.settings.values()) == parameters
    else:
        module = importlib.import_module(f"simloss.experiments.data.{task.data.kind.rstrip('s')}s")
        reader = getattr(module, _READER_KEYWORDS[task.data.kind])
        parameters = set(inspect.signature(reader).parameters) - {"task"}
        assert set(task.data.settings.values()) <= parameters
    assert set(task.data.settings) <= set(TrainConfig.field_names())
    assert callable(load_task)


@pytest.mark.parametrize("name", list(BUILTIN_TASKS))
def test_dataset_entries_are_consistent(name: str) -> None:
    spec = BUILTIN_TASKS[name]
    assert spec.name == name and spec.param in PARAMS
    assert set(spec.defaults) <= set(TrainConfig.field_names())
    assert spec.defaults["model"] in MODELS and spec.defaults["monitor"] in spec.monitors
    assert spec.model == spec.defaults["model"]
    assert all(metric_spec(m) is not None for m in spec.metrics)
    if spec.paper is not None:
        assert set(spec.paper) <= set(TrainConfig.field_names())
        # the paper's settings make a valid config
        TrainConfig(dataset=name, data_dir="d", **dict(spec.paper))
    assert spec.grid[0] == 0.0 and spec.cce_value in spec.grid
    TrainConfig(dataset=name, data_dir=None if spec.embedded else "d").resolve()


def test_data_options_are_settings_some_loader_takes() -> None:
    for option in DATA_OPTIONS:
        assert option in TrainConfig.field_names()
        assert any(spec.takes(option) for spec in BUILTIN_TASKS.values())
        assert not all(spec.takes(option) for spec in BUILTIN_TASKS.values())


def test_every_metric_of_the_papers_tables_is_declared() -> None:
    for table in (1, 2):
        for cell in load_paper_table(table):
            assert cell.metric in BUILTIN_TASKS[cell.dataset].metrics
            assert cell.param == BUILTIN_TASKS[cell.dataset].param
            assert BUILTIN_TASKS[cell.dataset].paper_table == table


def test_monitor_choices_are_the_metrics() -> None:
    from simloss.metrics import metric_keys

    assert setting_choices("monitor") == MONITORS
    ordinal = metric_keys(ordered=True, decoders=("argmax", "expectation", "median"))
    hierarchical = metric_keys(superclasses=True, hierarchy=True)
    assert (*dict.fromkeys((*ordinal, *hierarchical)), "loss") == MONITORS
    assert set(MONITORS) >= {*METRIC_ORDER, "qwk", "amae", "rps", "mae_median", "hf", "loss"}
    higher = {m for m in MONITORS if metric_spec(m).higher_is_better}
    assert higher >= {"acc", "qwk", "ms", "sa", "fsa", "hf"}
    assert not higher & {"mae", "mse", "amae", "mmae", "rps", "mistake_severity", "loss"}


def test_metric_facts_come_from_the_metric_classes() -> None:
    from simloss.metrics import Accuracy, FailedSuperclassAccuracy, MeanAbsoluteError

    assert metric_spec("acc").higher_is_better is Accuracy.higher_is_better
    assert metric_spec("mae").higher_is_better is MeanAbsoluteError.higher_is_better
    assert metric_spec("fsa").percent is FailedSuperclassAccuracy.is_percent

"""Training records stored with a sweep's trials: writing them, reading them back.

Each finished trial carries the user attributes ``loss`` (absent: SimLoss,
:func:`~simloss.experiments.loss_catalog.stored_loss`), ``param`` (``"r"``, ``"l"``, the
loss's own parameter, or ``None``), ``value`` (float, or ``None`` for a loss
without a parameter), ``run`` (int), ``record`` (the run record of
:func:`simloss.experiments.train.run_training`) and ``record_path`` (the record
file, relative to the sweep folder), plus flat ``val_<metric>`` /
``test_<metric>`` attributes so that ``optuna-dashboard`` shows the metrics as
columns. :func:`load_records` reads them back, read-only, from a sweep folder
or from any Optuna storage URL; sweeps written by earlier versions of simloss
read the same way.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import optuna

from simloss.experiments.loss_catalog import stored_loss
from simloss.experiments.points import LossPoint, loss_point_key, point_label
from simloss.experiments.record import RunRecord, SweepRecord
from simloss.experiments.sweep.grid import GRID_ATTR, Grid, grids_from_attr
from simloss.experiments.sweep.storage import hide_password, reading_storage, resolve_source

logger = logging.getLogger(__name__)

__all__ = ["attach_record", "load_grids", "load_records"]


def attach_record(
    storage: optuna.storages.BaseStorage,
    trial_id: int,
    record: RunRecord | Mapping[str, Any],
    record_path: str,
) -> None:
    """Store a training record with a running trial (user attributes).

    Sets ``record``, ``record_path`` and one flat attribute per metric
    (``val_acc``, ``test_mae``, ...) for the dashboard.

    Args:
        storage: the study's storage.
        trial_id: the storage's id of the trial (running).
        record: the record returned by ``run_training``.
        record_path: the record file, relative to the sweep folder.
    """
    metrics = record.get("metrics")
    if not isinstance(metrics, Mapping):
        raise ValueError(f"Expected the record to have a 'metrics' mapping, found {metrics!r}")
    storage.set_trial_user_attr(trial_id, "record", dict(record))
    storage.set_trial_user_attr(trial_id, "record_path", record_path)
    for split in ("val", "test"):
        for name, metric in (metrics.get(split) or {}).items():
            if isinstance(metric, (int, float)) and math.isfinite(metric):
                storage.set_trial_user_attr(trial_id, f"{split}_{name}", float(metric))


def _pick_study(storage: optuna.storages.BaseStorage, url: str, study_name: str | None) -> str:
    names = optuna.get_all_study_names(storage)
    if study_name is not None:
        if study_name not in names:
            raise ValueError(
                f"Expected a study named {study_name!r} in {hide_password(url)}, found {names}"
            )
        return study_name
    if len(names) != 1:
        raise ValueError(
            f"Expected `study_name` for storage {hide_password(url)}, which holds {len(names)} "
            f"studies: {names}"
        )
    return names[0]


def load_records(source: str | Path, study_name: str | None = None) -> list[SweepRecord]:
    """The records of a sweep's finished trials, read without writing to the storage.

    Args:
        source: a sweep folder (``sweep.json`` names the storage and study) or an
            Optuna storage URL.
        study_name: the study; needed for a URL whose storage holds several.

    Returns:
        One record per finished trial, sorted by (loss, value, run): the training
        record plus the keys ``loss``, ``param``, ``value`` and ``run``. Of two
        finished trials of one point (loss, value, run), the earlier is kept and
        the later logged as its repeat (two commands ran it at once).
        A finished trial with the attribute ``duplicate_of`` (a tune's repeat of a
        point, which holds no record of its own) is skipped.

    Example:
        >>> import tempfile, optuna
        >>> from optuna.trial import create_trial
        >>> from simloss.experiments.sweep.storage import sqlite_url
        >>> url = sqlite_url(tempfile.mkdtemp() + "/s.db")
        >>> study = optuna.create_study(study_name="demo", storage=url)
        >>> rec = {"metrics": {"val": {"mae": 1.5}, "test": {"mae": 1.7}}}
        >>> attrs = {"param": "r", "value": 0.3, "run": 0, "record": rec,
        ...          "record_path": "trials/r=0.3_run=0/record.json"}
        >>> study.add_trial(create_trial(value=1.5, user_attrs=attrs))
        >>> [(r["loss"], r["param"], r["value"], r["run"], r["metrics"]["test"]["mae"])
        ...  for r in load_records(url)]
        [('simloss', 'r', 0.3, 0, 1.7)]
    """
    url, name = resolve_source(source, study_name)
    with reading_storage(url) as storage:
        name = _pick_study(storage, url, name)
        study = optuna.load_study(study_name=name, storage=storage)
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    seen: dict[LossPoint, int] = {}
    records: list[SweepRecord] = []
    for trial in complete:
        attrs = trial.user_attrs
        if "duplicate_of" in attrs:
            continue  # repeats another trial's point (a tune's sampler proposed it again)
        missing = [k for k in ("param", "value", "run", "record") if k not in attrs]
        if missing:
            raise ValueError(
                f"Expected finished trial {trial.number} of study {name!r} to carry the "
                f"user attributes param, value, run and record, but {missing} are missing"
            )
        loss = stored_loss(attrs.get("loss"))
        key = loss_point_key(loss, attrs["value"], attrs["run"])
        if key in seen:
            # Two commands ran the same point at once (e.g. two tunes' samplers proposed
            # one value): the same config, so the same run; the first trial is kept.
            logger.warning(
                "study %r: trial %d repeats %s run %d of trial %d; trial %d is kept",
                name, trial.number, point_label(loss, attrs["param"], key[1]), key[2],
                seen[key], seen[key],
            )  # fmt: skip
            continue
        seen[key] = trial.number
        record = cast(SweepRecord, dict(attrs["record"]))
        record["loss"] = loss
        record["param"], record["value"], record["run"] = attrs["param"], key[1], key[2]
        records.append(record)
    records.sort(key=lambda r: (r["loss"], _order(r["value"]), r["run"]))
    return records


def _order(value: float | None) -> float:
    return -math.inf if value is None else value


def load_grids(source: str | Path, study_name: str | None = None) -> list[Grid]:
    """The grids a sweep's study was asked for (one per loss), read without writing.

    The study holds them (``sweep.json`` only mirrors them), so a report can
    name the points that have no finished run, for a folder or a storage URL.

    Args:
        source, study_name: as :func:`load_records`.

    Returns:
        The grids (empty for a study made without one, e.g. by ``simloss tune``).

    Raises:
        ValueError: the stored grids are not grids (named with the study).
    """
    url, name = resolve_source(source, study_name)
    with reading_storage(url) as storage:
        name = _pick_study(storage, url, name)
        stored = optuna.load_study(study_name=name, storage=storage).user_attrs.get(GRID_ATTR)
    try:
        return grids_from_attr(stored)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Expected study {name!r} in {hide_password(url)} to store its grids as "
            f"{GRID_ATTR!r}, but found {stored!r} ({exc})"
        ) from exc

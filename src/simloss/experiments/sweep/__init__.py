"""Grid sweeps over SimLoss's hyper-parameter that survive crashes and scale out.

A sweep is an Optuna study. Its trials are the grid points x run indices (for
example ``r`` in {0.0, ..., 0.9} x runs 0..9), each one training run of
:func:`simloss.experiments.train.run_training`. The study lives in an Optuna
storage: by default a SQLite file ``study.db`` in the sweep folder, or any
storage URL (e.g. PostgreSQL) that several machines share; every machine runs
the same command and takes the next unfinished trial.

The rooms:

- :mod:`~simloss.experiments.sweep.grid`: :class:`Grid`, the points.
- :mod:`~simloss.experiments.sweep.settings`: the fixed settings and the data
  fingerprint a sweep keeps, and their checks.
- :mod:`~simloss.experiments.sweep.storage`: the sweep folder and the one
  storage opener (with a true read-only mode and a driver check).
- :mod:`~simloss.experiments.sweep.storage_errors`: one-line storage errors,
  and storage calls retried while a database server cannot be reached.
- :mod:`~simloss.experiments.sweep.queue`: enqueueing, counting and claiming trials.
- :mod:`~simloss.experiments.sweep.trials`: the loop that claims, trains and
  records trials (heartbeats, failures, a full disk).
- :mod:`~simloss.experiments.sweep.workers`: the worker processes, their
  threads, logs and progress bar.
- :mod:`~simloss.experiments.sweep.records`: records stored with trials and
  :func:`load_records`.
- :mod:`~simloss.experiments.sweep.engine`: the steps every command on the
  engine shares (arguments, folder, lock, storage, study, settings, workers):
  a sweep, a tune and a benchmark each call them in a few lines.
- :mod:`~simloss.experiments.sweep.run`: :func:`run_sweep`, one sweep command.

Example:
    >>> grid = Grid.parse("r=0:0.3:0.1", runs=2)
    >>> grid.values, len(grid.points())
    ((0.0, 0.1, 0.2, 0.3), 8)
"""

from __future__ import annotations

from simloss.experiments.sweep.grid import MAX_GRID_VALUES, Grid, default_grid
from simloss.experiments.sweep.queue import FailedPoint
from simloss.experiments.sweep.records import attach_record, load_grids, load_records
from simloss.experiments.sweep.run import SweepResult, run_sweep
from simloss.experiments.sweep.settings import data_fingerprint, fixed_settings
from simloss.experiments.sweep.storage import (
    DB_FILE,
    SWEEP_FILE,
    open_storage,
    read_sweep_file,
    resolve_source,
    sqlite_url,
)
from simloss.experiments.sweep.workers import threads_per_worker

__all__ = [
    "DB_FILE",
    "MAX_GRID_VALUES",
    "SWEEP_FILE",
    "FailedPoint",
    "Grid",
    "SweepResult",
    "attach_record",
    "data_fingerprint",
    "default_grid",
    "fixed_settings",
    "load_grids",
    "load_records",
    "open_storage",
    "read_sweep_file",
    "resolve_source",
    "run_sweep",
    "sqlite_url",
    "threads_per_worker",
]

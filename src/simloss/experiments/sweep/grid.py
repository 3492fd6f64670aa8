"""The points of a sweep: one loss, values of its hyper-parameter x run indices.

A study may hold the grids of several losses (one per ``simloss sweep --loss``
command); each is a :class:`Grid`, stored together (:func:`grids_to_attr`).

Example:
    >>> grid = Grid.parse("r=0:0.3:0.1", runs=2)
    >>> grid.values, len(grid.points())
    ((0.0, 0.1, 0.2, 0.3), 8)
    >>> Grid.parse("alpha=1,2", runs=1, loss="sord").loss_points()
    [('sord', 1.0, 0), ('sord', 2.0, 0)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from simloss.experiments.loss_catalog import DEFAULT_LOSS
from simloss.experiments.points import (
    LossPoint,
    format_value,
    loss_point_key,
    point_label,
    value_key,
)
from simloss.experiments.specs import DEFAULT_RUNS, PARAMS, loss_spec, swept_param
from simloss.experiments.task import BUILTIN_TASKS, Task, builtin_task

__all__ = [
    "GRID_ATTR",
    "MAX_GRID_VALUES",
    "Grid",
    "default_grid",
    "grids_from_attr",
    "grids_to_attr",
]

#: The study attribute that holds the sweep's whole grid (a list of grids, one per
#: loss, once a study holds several losses; :func:`grids_to_attr`).
GRID_ATTR = "simloss_grid"

#: The most values a grid may have. Each value is ``runs`` training runs: a grid
#: beyond this is a typo (a step too small), not a sweep anyone can run.
MAX_GRID_VALUES = 1000


@dataclass(frozen=True)
class Grid:
    """The points of a sweep: one loss, values of its hyper-parameter x run indices.

    Args:
        param: the loss's parameter: ``"r"`` (class order) or ``"l"`` (class-name
            similarity) for SimLoss and soft labels, the loss's own for the others
            (``"alpha"`` for SORD, ...; :data:`simloss.experiments.specs.LOSSES`),
            ``None`` for a loss without one (``ce``, ``emd``, ``corn``).
        values: the hyper-parameter values, distinct, rounded by
            :func:`simloss.experiments.points.value_key` (empty without a parameter).
        runs: runs per value (run indices ``0 .. runs - 1``).
        loss: the loss (default SimLoss: :data:`~simloss.experiments.loss_catalog.DEFAULT_LOSS`).

    Example:
        >>> Grid("r", (0.0, 0.5), 2).points()
        [(0.0, 0), (0.5, 0), (0.0, 1), (0.5, 1)]
        >>> Grid(None, (), 2, loss="ce").points()
        [(None, 0), (None, 1)]
    """

    param: str | None
    values: tuple[float, ...]
    runs: int
    loss: str = DEFAULT_LOSS

    def __post_init__(self) -> None:
        spec = loss_spec(self.loss)
        if spec.uses_similarity:
            if self.param not in PARAMS:
                raise ValueError(
                    f"Expected the grid parameter of loss {self.loss!r} to be one of "
                    f"{list(PARAMS)} ('r' or 'l'), found {self.param!r}"
                )
        else:
            own = None if spec.param is None else spec.param.name
            if self.param != own:
                raise ValueError(
                    f"Expected the grid parameter of loss {self.loss!r} to be {own!r}, found "
                    f"{self.param!r}"
                )
        if isinstance(self.runs, bool) or not isinstance(self.runs, int) or self.runs < 1:
            raise ValueError(f"Expected `runs` to be an int >= 1, found {self.runs!r}")
        if self.param is None:
            if self.values:
                raise ValueError(
                    f"Expected no grid values for loss {self.loss!r} (it has no parameter), "
                    f"found {list(self.values)}"
                )
            object.__setattr__(self, "values", ())
            return
        if not self.values:
            raise ValueError("Expected at least one grid value, found none")
        try:
            _check_size(len(self.values))
        except _TooLarge as exc:
            raise ValueError(f"Grid over {self.param!r} {exc}") from None
        rounded = []
        for value in self.values:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Expected grid values to be numbers, found {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"Expected finite grid values, found {value!r}")
            rounded.append(value_key(value))
        duplicates = sorted({v for v in rounded if rounded.count(v) > 1})
        if duplicates:
            raise ValueError(f"Expected distinct grid values, found {duplicates} more than once")
        limits = None if spec.uses_similarity else spec.param
        outside = [v for v in rounded if limits is not None and not limits.contains(v)]
        if limits is not None and outside:
            raise ValueError(
                f"Expected {self.loss} {limits.name} values in {limits.range_text()}, "
                f"found {outside}"
            )
        object.__setattr__(self, "values", tuple(rounded))

    @classmethod
    def parse(cls, text: str, runs: int = DEFAULT_RUNS, loss: str = DEFAULT_LOSS) -> Grid:
        """Parse ``param=start:stop:step`` (stop included) or ``param=v1,v2,...``.

        Args:
            text: e.g. ``"r=0:0.9:0.1"``, ``"r=0,0.3,0.6,0.9"``, ``"l=0.99"``,
                ``"alpha=0.5,1,2"`` (with ``loss="sord"``).
            runs: runs per value.
            loss: the loss whose parameter the grid varies.

        Returns:
            The grid; values are rounded to 10 decimals, so ``0:0.9:0.1`` gives
            exactly ``0.3``, not ``0.30000000000000004``.

        Raises:
            ValueError: bad syntax, or more than :data:`MAX_GRID_VALUES` values
                (counted before any is made).

        Example:
            >>> Grid.parse("l=0.9,0.99", runs=1).values
            (0.9, 0.99)
            >>> Grid.parse("r=0:0.9:0.1").values[3]
            0.3
        """
        if not isinstance(text, str) or "=" not in text:
            raise ValueError(
                f"Expected a grid like 'r=0:0.9:0.1' or 'r=0,0.3,0.6', but found {text!r}"
            )
        param, spec = (part.strip() for part in text.split("=", 1))
        try:
            if ":" in spec:
                parts = [float(p) for p in spec.split(":")]
                if len(parts) != 3:
                    raise ValueError("needs start:stop:step")
                values = _arange(*parts)
            else:
                values = tuple(float(p) for p in spec.split(","))
        except _TooLarge as exc:
            raise ValueError(f"Grid {text!r} {exc}") from None
        except ValueError as exc:
            raise ValueError(
                f"Expected a grid like 'r=0:0.9:0.1' or 'r=0,0.3,0.6', but found {text!r} ({exc})"
            ) from exc
        return cls(param, values, runs, loss)

    def points(self) -> list[tuple[float | None, int]]:
        """All (value, run) pairs, run by run (so a partial sweep has whole runs)."""
        values: tuple[float | None, ...] = self.values if self.param is not None else (None,)
        return [(value, run) for run in range(self.runs) for value in values]

    def loss_points(self) -> list[LossPoint]:
        """All (loss, value, run) points, in the order of :meth:`points`."""
        return [loss_point_key(self.loss, value, run) for value, run in self.points()]

    def label(self, value: float | None) -> str:
        """A point's name: ``r=0.3``, ``sord alpha=2.0``, ``ce``."""
        return point_label(self.loss, self.param, value)

    def merged(self, other: Grid) -> Grid:
        """The union of two grids of one parameter (values sorted, the larger run count).

        Example:
            >>> Grid("r", (0.0, 0.5), 2).merged(Grid("r", (0.3,), 3))
            Grid(param='r', values=(0.0, 0.3, 0.5), runs=3, loss='simloss')
        """
        if other.param != self.param or other.loss != self.loss:
            raise ValueError(
                f"Expected a grid over {self.param!r} (the sweep's parameter of loss "
                f"{self.loss!r}), but found one over {other.param!r} of loss {other.loss!r}"
            )
        values = tuple(sorted(set(self.values) | set(other.values)))
        return Grid(self.param, values, max(self.runs, other.runs), self.loss)

    def check_task(self, task: Task) -> None:
        """Refuse a grid over another parameter than the one the task sweeps for its loss.

        Example:
            >>> Grid("l", (0.5,), 1).check_task(builtin_task("abalone"))
            Traceback (most recent call last):
            ...
            ValueError: Expected a grid over 'r' for dataset 'abalone', but found one over 'l'
        """
        spec = loss_spec(self.loss)
        if not spec.applies_to(task):
            users = [d for d, t in BUILTIN_TASKS.items() if spec.applies_to(t)]
            kind = "ordered" if task.ordinal else "unordered"
            raise ValueError(
                f"Expected a dataset of {spec.task} classes (e.g. {users}) for loss "
                f"{self.loss!r}, but dataset {task.name!r} has {kind} classes"
            )
        swept = swept_param(task, self.loss)
        expected = None if swept is None else swept.name
        if self.param != expected:
            if expected is None and spec.uses_similarity:
                raise ValueError(
                    f"Expected a similarity for loss {self.loss!r}, but dataset {task.name!r} "
                    "declares none (similarity kind 'identity')"
                )
            raise ValueError(
                f"Expected a grid over {expected!r} for dataset {task.name!r}, "
                f"but found one over {self.param!r}"
            )

    def describe(self) -> str:
        """The loss and its values in words, e.g. ``"SORD alpha=0.5,1,2 x 6 runs"``.

        Example:
            >>> Grid("r", (0.0, 0.5), 3).describe(), Grid(None, (), 2, loss="ce").describe()
            ('SimLoss r=0.0,0.5 x 3 runs', 'CE x 2 runs')
        """
        title = loss_spec(self.loss).title
        values = ",".join(format_value(v) for v in self.values)
        what = f"{title} {self.param}={values}" if self.param is not None else title
        return f"{what} x {self.runs} run{'s' if self.runs != 1 else ''}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (``loss`` only when it is not SimLoss: a stored grid without one is SimLoss's)."""
        data: dict[str, Any] = {"param": self.param, "values": list(self.values), "runs": self.runs}
        if self.loss != DEFAULT_LOSS:
            data["loss"] = self.loss
        return data


class _TooLarge(ValueError):
    pass


def _check_size(count: int) -> None:
    if count > MAX_GRID_VALUES:
        raise _TooLarge(
            f"has {count:,} values; a sweep takes at most {MAX_GRID_VALUES:,} (each value is "
            "--runs training runs): use a larger step"
        )


def _arange(start: float, stop: float, step: float) -> tuple[float, ...]:
    if not (math.isfinite(start) and math.isfinite(stop) and math.isfinite(step)):
        raise ValueError("start, stop and step must be finite")
    if step <= 0:
        raise ValueError(f"step must be > 0, got {step}")
    if stop < start:
        raise ValueError(f"stop {stop} is below start {start}")
    steps = (stop - start) / step
    _check_size(round(steps) + 1)
    if abs(steps - round(steps)) > 1e-9:
        raise ValueError(f"stop {stop} is not start {start} plus a whole number of steps {step}")
    return tuple(value_key(start + i * step) for i in range(round(steps) + 1))


def default_grid(task: Task | str, runs: int = DEFAULT_RUNS, loss: str = DEFAULT_LOSS) -> Grid:
    """The default grid of a loss on a task: the task's (the paper's) for SimLoss, else the loss's own.

    Example:
        >>> default_grid("cifar100").values[-2:], default_grid("utkface").runs
        ((0.9, 0.99), 10)
        >>> default_grid("abalone", loss="sord").values, default_grid("abalone", loss="ce").values
        ((0.5, 1.0, 2.0, 4.0), ())
    """
    spec = builtin_task(task) if isinstance(task, str) else task
    swept = swept_param(spec, loss)
    if swept is None:
        return Grid(None, (), runs, loss)
    return Grid(swept.name, swept.grid, runs, loss)


def grids_to_attr(grids: list[Grid]) -> Any:
    """The stored form of a study's grids: one grid a dict, several a list (both read back).

    Example:
        >>> grids_to_attr([Grid("r", (0.0,), 1)])
        {'param': 'r', 'values': [0.0], 'runs': 1}
    """
    if len(grids) == 1:
        return grids[0].to_dict()
    return [g.to_dict() for g in grids]


def grids_from_attr(stored: Any) -> list[Grid]:
    """A study's grids from their stored form (a dict, or a list of dicts; ``None``: none).

    Example:
        >>> grids_from_attr([{"param": "r", "values": [0.0], "runs": 1},
        ...                  {"param": None, "values": [], "runs": 1, "loss": "ce"}])[1].loss
        'ce'
    """
    if stored is None:
        return []
    items = stored if isinstance(stored, list) else [stored]
    grids = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"Expected a stored grid to be an object, but found {item!r}")
        grids.append(Grid(**item))
    losses = [g.loss for g in grids]
    if len(set(losses)) != len(losses):
        raise ValueError(f"Expected one stored grid per loss, but found losses {losses}")
    return grids

"""The points of a sweep: values of one hyper-parameter x run indices.

Example:
    >>> grid = Grid.parse("r=0:0.3:0.1", runs=2)
    >>> grid.values, len(grid.points())
    ((0.0, 0.1, 0.2, 0.3), 8)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from simloss.experiments.points import value_key
from simloss.experiments.specs import DEFAULT_RUNS, PARAMS, dataset_spec

__all__ = ["MAX_GRID_VALUES", "Grid", "default_grid"]

#: The most values a grid may have. Each value is ``runs`` training runs: a grid
#: beyond this is a typo (a step too small), not a sweep anyone can run.
MAX_GRID_VALUES = 1000


@dataclass(frozen=True)
class Grid:
    """The points of a sweep: values of one hyper-parameter x run indices.

    Args:
        param: ``"r"`` (class order) or ``"l"`` (class-name similarity).
        values: the hyper-parameter values, distinct, rounded by
            :func:`simloss.experiments.points.value_key`.
        runs: runs per value (run indices ``0 .. runs - 1``).

    Example:
        >>> Grid("r", (0.0, 0.5), 2).points()
        [(0.0, 0), (0.5, 0), (0.0, 1), (0.5, 1)]
    """

    param: str
    values: tuple[float, ...]
    runs: int

    def __post_init__(self) -> None:
        if self.param not in PARAMS:
            raise ValueError(
                f"Expected the grid parameter to be one of {list(PARAMS)} ('r' or 'l'), "
                f"found {self.param!r}"
            )
        if isinstance(self.runs, bool) or not isinstance(self.runs, int) or self.runs < 1:
            raise ValueError(f"Expected `runs` to be an int >= 1, found {self.runs!r}")
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
        object.__setattr__(self, "values", tuple(rounded))

    @classmethod
    def parse(cls, text: str, runs: int = DEFAULT_RUNS) -> Grid:
        """Parse ``param=start:stop:step`` (stop included) or ``param=v1,v2,...``.

        Args:
            text: e.g. ``"r=0:0.9:0.1"``, ``"r=0,0.3,0.6,0.9"``, ``"l=0.99"``.
            runs: runs per value.

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
        return cls(param, values, runs)

    def points(self) -> list[tuple[float, int]]:
        """All (value, run) pairs, run by run (so a partial sweep has whole runs)."""
        return [(value, run) for run in range(self.runs) for value in self.values]

    def merged(self, other: Grid) -> Grid:
        """The union of two grids of one parameter (values sorted, the larger run count).

        Example:
            >>> Grid("r", (0.0, 0.5), 2).merged(Grid("r", (0.3,), 3))
            Grid(param='r', values=(0.0, 0.3, 0.5), runs=3)
        """
        if other.param != self.param:
            raise ValueError(
                f"Expected a grid over {self.param!r} (the sweep's parameter), "
                f"but found one over {other.param!r}"
            )
        values = tuple(sorted(set(self.values) | set(other.values)))
        return Grid(self.param, values, max(self.runs, other.runs))

    def check_dataset(self, dataset: str) -> None:
        """Refuse a grid over another parameter than the one the dataset sweeps.

        Example:
            >>> Grid("l", (0.5,), 1).check_dataset("abalone")
            Traceback (most recent call last):
            ...
            ValueError: Expected a grid over 'r' for dataset 'abalone', but found one over 'l'
        """
        expected = dataset_spec(dataset).param
        if self.param != expected:
            raise ValueError(
                f"Expected a grid over {expected!r} for dataset {dataset!r}, "
                f"but found one over {self.param!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"param": self.param, "values": list(self.values), "runs": self.runs}


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


def default_grid(dataset: str, runs: int = DEFAULT_RUNS) -> Grid:
    """The paper's grid for a dataset (its spec's ``param`` and ``grid``).

    Example:
        >>> default_grid("cifar100").values[-2:], default_grid("utkface").runs
        ((0.9, 0.99), 10)
    """
    spec = dataset_spec(dataset)
    return Grid(spec.param, spec.grid, runs)

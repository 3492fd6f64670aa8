"""What a tune found, read back from its storage: the chosen value(s), the front, the compute.

:func:`load_tune` reads a tune folder (read-only, as ``simloss report`` reads
a sweep) into a :class:`TuneResult`: every trial in short, the confirmation's
records (CCE and the candidates, ``runs`` seeds each) summarised by the
report's :func:`~simloss.experiments.report.summarize_sweep` (means, spreads,
the Wilcoxon test of each value against CCE, paired by run), the chosen
value(s) and the compute spent.

The chosen value of one objective is the confirmed value (CCE included) with
the best mean validation objective over its runs; with several objectives,
the confirmed values whose means no other confirmed value dominates (the
Pareto front).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from simloss.experiments._files import read_json_object
from simloss.experiments.points import format_value, value_key
from simloss.experiments.record import SweepRecord
from simloss.experiments.report.stats import WilcoxonResult
from simloss.experiments.report.summary import CellStats, SweepSummary, summarize_sweep
from simloss.experiments.sweep.queue import trial_error
from simloss.experiments.sweep.records import load_records
from simloss.experiments.sweep.storage import (
    DB_FILE,
    TUNE_FILE,
    hide_password,
    reading_storage,
    sqlite_url,
)
from simloss.experiments.tune.plan import (
    CANDIDATES_ATTR,
    PHASES,
    SETTINGS_ATTR,
    pareto_front,
    trial_epochs,
    trial_phase,
)
from simloss.experiments.tune.settings import TuneSettings

__all__ = ["TUNE_FILE", "TrialSummary", "TuneResult", "load_tune", "read_tune_file"]

_STATES = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


@dataclass(frozen=True)
class TrialSummary:
    """One trial of a tune, in short.

    Attributes:
        number: the Optuna trial number.
        phase: ``"cce"``, ``"search"`` or ``"confirm"``.
        value: the parameter's value.
        run: the run index (seed = base seed + run).
        state: ``"complete"``, ``"pruned"``, ``"failed"``, ``"running"`` or ``"waiting"``.
        epochs: epochs trained.
        values: the objective values (complete trials), else ``None``.
        val: the record's validation metrics (complete and pruned trials: a
            pruned run's at its best epoch before it was stopped), else ``None``.
        seconds: training time (the record's ``wall_time_s``; ``None`` without a record).
        duplicate_of: the trial whose point this one repeated (it was not trained).
        error: a failed trial's error.
    """

    number: int
    phase: str
    value: float
    run: int
    state: str
    epochs: int
    values: tuple[float, ...] | None
    val: dict[str, float | None] | None
    seconds: float | None
    duplicate_of: int | None = None
    error: str | None = None


@dataclass
class TuneResult:
    """A tune as far as it has got.

    Attributes:
        out_dir: the tune folder.
        storage: its storage URL.
        study_name: its study.
        dataset: the dataset.
        settings: the tune's settings.
        trials: every trial, in order.
        candidates: the values chosen for confirmation (``None``: not yet chosen).
        records: the confirmation's finished records (CCE and the candidates).
        summary: their summary (``None`` without records).
        best: the chosen value(s): one for one objective, the confirmed Pareto
            front for several (empty until the confirmation has finished).
        missing: what the confirmation still lacks, one line each.
        wall_time_s: seconds the command that produced this result took
            (``None`` when only read).
        elapsed_s: seconds from the first trial's start to the last trial's end
            (over every command of the tune; ``None`` before a trial ended).
        notes: other facts the reader must know (a budget overrun, failures, ...).
    """

    out_dir: Path
    storage: str
    study_name: str
    dataset: str
    settings: TuneSettings
    trials: tuple[TrialSummary, ...]
    candidates: tuple[float, ...] | None
    records: list[SweepRecord]
    summary: SweepSummary | None
    best: tuple[float, ...]
    missing: tuple[str, ...]
    wall_time_s: float | None = None
    elapsed_s: float | None = None
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------- questions
    @property
    def complete(self) -> bool:
        """Whether the confirmation has finished (the result is final)."""
        return bool(self.candidates) and not self.missing

    @property
    def starved(self) -> bool:
        """Whether the budget ran out before any search trial completed (nothing to confirm)."""
        searched = any(t.phase == "search" and t.state == "complete" for t in self.trials)
        live = any(t.state in ("running", "waiting") for t in self.trials)
        return self.candidates is None and not searched and not live

    @property
    def confirmed(self) -> tuple[float, ...]:
        """CCE and the candidates, in table order (CCE first)."""
        cce = value_key(self.settings.cce_value)
        return (cce, *(v for v in (self.candidates or ()) if v != cce))

    def epochs(self, phase: str | None = None) -> int:
        """Epochs trained (by the trials of ``phase``; ``None``: all)."""
        return sum(t.epochs for t in self.trials if phase in (None, t.phase))

    def seconds(self, phase: str | None = None) -> float:
        """Training time in seconds (sum over the trials of ``phase``; ``None``: all)."""
        return sum(t.seconds or 0.0 for t in self.trials if phase in (None, t.phase))

    def count(self, phase: str | None = None, state: str | None = None) -> int:
        """Trials of a phase and state (``None``: any)."""
        return sum(
            phase in (None, t.phase) and state in (None, t.state) and t.duplicate_of is None
            for t in self.trials
        )

    def stats(self, value: float, split: str, metric: str) -> CellStats | None:
        """Mean and spread of a metric over a confirmed value's runs."""
        if self.summary is None:
            return None
        return self.summary.cells.get((value_key(value), split, metric))

    def versus_cce(self, value: float, metric: str) -> WilcoxonResult | None:
        """The report's Wilcoxon test of a value against CCE on the test split."""
        if self.summary is None:
            return None
        return self.summary.tests.get((value_key(value), metric))

    def search_front(self) -> tuple[int, ...]:
        """Trial numbers of the search's Pareto front (complete CCE and search trials, run 0)."""
        pool = [
            t
            for t in self.trials
            if t.state == "complete"
            and t.run == 0
            and t.values is not None
            and t.duplicate_of is None
        ]
        front = pareto_front([t.values for t in pool if t.values], self.settings.directions)
        return tuple(pool[i].number for i in front)

    def text(self) -> str:
        """A few lines for people: the choice with its spread, the tests, the compute."""
        s = self.settings
        lines = [f"tune {self.study_name}: {s.describe()}"]
        lines.append(
            f"  compute: {self.epochs()} epochs in {self.count()} trials "
            f"({self.count('search', 'pruned')} pruned), training {self.seconds():.1f} s"
            + (f", elapsed {self.elapsed_s:.1f} s" if self.elapsed_s is not None else "")
            + (f", this command {self.wall_time_s:.1f} s" if self.wall_time_s is not None else "")
        )
        for value in self.best:
            parts = []
            for objective, metric in zip(s.objectives, s.metrics, strict=True):
                val = self.stats(value, "val", metric)
                test = self.stats(value, "test", metric)
                if val is None or test is None:
                    continue
                check = self.versus_cce(value, metric)
                verdict = "" if check is None else f", vs CCE: {check.mark or '='} {check.reason}"
                parts.append(
                    f"{objective} {_shown(val, metric)}, test {_shown(test, metric)}{verdict}"
                )
            label = "front" if s.multi else "chosen"
            label += " (CCE)" if value == value_key(s.cce_value) else ""
            lines.append(f"  {label} {s.param} = {format_value(value)}: " + "; ".join(parts))
        lines += [f"  missing: {item}" for item in self.missing]
        lines += [f"  note: {item}" for item in self.notes]
        return "\n".join(lines)


def _shown(cell: CellStats, metric: str) -> str:
    from simloss.experiments.specs import metric_spec

    spec = metric_spec(metric)
    scale = 1.0 if spec is None else spec.scale()
    unit = " %" if scale != 1.0 else ""
    se = cell.std / math.sqrt(cell.n) if cell.n > 1 else math.nan
    return f"{cell.mean * scale:.3f}{unit} ± {se * scale:.3f} SE (sd {cell.std * scale:.3f}, n={cell.n})"


def read_tune_file(folder: str | Path) -> dict[str, Any]:
    """Read a tune folder's ``tune.json`` (one-line errors naming the file)."""
    path = Path(folder) / TUNE_FILE
    if not path.exists():  # a folder in its place: read_json_object says so
        raise FileNotFoundError(f"{folder} is not a tune folder: {path} does not exist")
    data = read_json_object(path, "tune file")
    if "study_name" not in data or "tune" not in data:
        raise ValueError(  # not the data itself: it may hold the storage URL's password
            f"Expected {path} to be a tune file with 'study_name' and 'tune', found the keys "
            f"{sorted(data)}"
        )
    return data


def _summary(trial: FrozenTrial, settings: TuneSettings) -> TrialSummary:
    attrs = trial.user_attrs
    value = attrs.get("value", trial.params.get(settings.param, math.nan))
    record = attrs.get("record")
    seconds = record.get("wall_time_s") if isinstance(record, dict) else None
    val = (record.get("metrics") or {}).get("val") if isinstance(record, dict) else None
    values = tuple(trial.values) if trial.state == TrialState.COMPLETE and trial.values else None
    return TrialSummary(
        number=trial.number,
        phase=trial_phase(trial) or "search",
        value=value_key(value)
        if isinstance(value, (int, float)) and math.isfinite(value)
        else math.nan,
        run=int(attrs.get("run", 0)),
        state=_STATES.get(trial.state, trial.state.name.lower()),
        epochs=trial_epochs(trial),
        values=values,
        val=dict(val) if isinstance(val, dict) else None,
        seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
        duplicate_of=attrs.get("duplicate_of"),
        error=attrs.get("error"),
    )


def load_tune(folder: str | Path) -> TuneResult:
    """Read a tune folder into a :class:`TuneResult`, without writing to its storage.

    Args:
        folder: a tune folder (its ``tune.json`` names the storage and study).

    Raises:
        FileNotFoundError: not a tune folder.
        ValueError: a damaged file or storage.
        RuntimeError: the storage fails.
    """
    out = Path(folder).resolve()
    stored = read_tune_file(out)
    url = stored.get("storage") or sqlite_url(out / DB_FILE)
    name = str(stored["study_name"])
    settings = TuneSettings.from_dict(stored["tune"])
    with reading_storage(url) as storage:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
            trials = study.get_trials(deepcopy=False)
            planned = study.user_attrs.get(CANDIDATES_ATTR)
            # The study's settings are the tune's: another machine's command may have
            # raised the budget since this folder's tune.json was written.
            shared = study.user_attrs.get(SETTINGS_ATTR)
            if isinstance(shared, dict) and isinstance(shared.get("tune"), dict):
                settings = TuneSettings.from_dict(shared["tune"])
        except (KeyError, ValueError) as exc:
            shown = hide_password(url)
            raise ValueError(f"Expected a tune study {name!r} in {shown}: {exc}") from exc
    summaries = tuple(_summary(t, settings) for t in trials)
    candidates = None if planned is None else tuple(value_key(v) for v in planned)
    cce = value_key(settings.cce_value)
    confirmed = {cce, *(candidates or ())}
    records: list[SweepRecord] = []
    if candidates:
        records = [
            r
            for r in load_records(url, name)
            if r["value"] in confirmed and r["run"] < settings.runs
        ]
    result = TuneResult(
        out_dir=out,
        storage=url,
        study_name=name,
        dataset=str(stored["dataset"]),
        settings=settings,
        trials=summaries,
        candidates=candidates,
        records=records,
        summary=summarize_sweep(
            records, expected_values=sorted(confirmed), expected_runs=settings.runs
        )
        if records
        else None,
        best=(),
        missing=(),
    )
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    if starts and ends:
        result.elapsed_s = max(0.0, (max(ends) - min(starts)).total_seconds())
    result.missing = _missing(result, summaries)
    if result.complete:
        result.best = _best(result)
    result.notes = _notes(result)
    return result


def _missing(result: TuneResult, trials: tuple[TrialSummary, ...]) -> tuple[str, ...]:
    if result.candidates is None:
        return ("the confirmation is not planned yet (the search has not ended)",)
    have = {(r["value"], r["run"]) for r in result.records}
    lines = []
    param = result.settings.param
    for value in result.confirmed:
        lacking = [run for run in range(result.settings.runs) if (value, run) not in have]
        if not lacking:
            continue
        errors = [
            t.error
            for t in trials
            if t.value == value and t.run in lacking and t.state == "failed" and t.error
        ]
        why = f" (last error: {errors[-1]})" if errors else ""
        lines.append(f"{param} = {format_value(value)}: runs {lacking} not finished{why}")
    return tuple(lines)


def _best(result: TuneResult) -> tuple[float, ...]:
    s = result.settings
    means = []
    for value in result.confirmed:
        cells = [result.stats(value, "val", metric) for metric in s.metrics]
        means.append([c.mean if c is not None else math.nan for c in cells])
    if not s.multi:
        sign = 1.0 if s.directions[0] == "minimize" else -1.0
        index = min(range(len(means)), key=lambda i: (sign * means[i][0], i))
        return (result.confirmed[index],)
    front = pareto_front(means, s.directions)
    return tuple(sorted(result.confirmed[i] for i in front))


def _notes(result: TuneResult) -> list[str]:
    notes = []
    if result.starved:
        s = result.settings
        notes.append(
            f"no search trial completed within the budget ({result.count('search')} started, "
            f"{result.count('search', 'pruned')} pruned), so nothing was confirmed: rerun with "
            f"a larger --budget (CCE's run took {result.epochs('cce')} epochs; the confirmation "
            f"needs {(s.candidates + 1) * (s.runs - 1)} more runs)"
        )
    over = result.epochs() - result.settings.budget
    if over > 0 and result.complete:
        notes.append(
            f"the tune used {over} epochs more than its budget of {result.settings.budget}: runs "
            "stopped later than expected (the budget is planned with the mean epochs of finished runs)"
        )
    # A failed trial (its run's error, or a worker killed mid-run) is put back in
    # the queue (a search trial's value may be one the sampler proposes again);
    # once its point has finished, the failure cost epochs but lost nothing.
    ended = {(t.value, t.run) for t in result.trials if t.state in ("complete", "pruned")}
    for phase in PHASES:
        by_reason: dict[str, list[TrialSummary]] = {}
        for t in result.trials:
            if t.phase == phase and t.state == "failed" and t.duplicate_of is None:
                by_reason.setdefault(trial_error(t.error), []).append(t)
        for reason, group in by_reason.items():
            rerun = sum((t.value, t.run) in ended for t in group)
            notes.append(
                f"{len(group)} {phase} trial(s) failed: {reason}"
                + (f" ({rerun} of them run again to the end)" if rerun else "")
            )
    return notes

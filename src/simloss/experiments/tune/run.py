"""One tune command: check everything, set up the study, run the workers, write the result.

Rerunning the same command resumes a tune: finished trials are kept, the
trials of killed workers are failed (no heartbeat) and run again, and the
search, the confirmation and the result go on from where they were. A command
with other fixed settings (run settings, data, tune settings) is refused,
naming what differs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna

from simloss.experiments.config import TrainConfig, point_config
from simloss.experiments.points import format_value
from simloss.experiments.sweep.engine import (
    SWEEP_ENTRIES,
    check_engine_args,
    claim_settings,
    folder_lock,
    folder_storage,
    prepare_folder,
    run_engine,
    startup,
    stored_url,
    study_session,
    worker_args,
    write_settings_file,
)
from simloss.experiments.sweep.queue import census, enqueue_missing
from simloss.experiments.sweep.settings import (
    data_place,
    differences,
    fixed_settings,
    hashed_files,
)
from simloss.experiments.sweep.storage import SWEEP_FILE, dispose, open_storage
from simloss.experiments.sweep.trials import DEFAULT_HEARTBEAT_S, WorkerArgs, heartbeat_study
from simloss.experiments.sweep.workers import quiet_optuna, worker_threads
from simloss.experiments.tune.plan import CANDIDATES_ATTR, SETTINGS_ATTR, Ledger
from simloss.experiments.tune.result import TUNE_FILE, TuneResult, load_tune, read_tune_file
from simloss.experiments.tune.settings import DEFAULT_RUNS, TUNED_LOSS, TuneSettings
from simloss.experiments.tune.worker import work

#: What a tune writes into its folder: a sweep's entries with ``tune.json`` and ``result/``.
TUNE_ENTRIES: frozenset[str] = (SWEEP_ENTRIES - {SWEEP_FILE, "report"}) | {TUNE_FILE, "result"}

__all__ = ["SCHEMA_VERSION", "run_tune"]

#: Version of the layout of ``tune.json`` and the study's settings.
SCHEMA_VERSION = 1


def run_tune(
    base: TrainConfig,
    out_dir: str | Path,
    *,
    objectives: Sequence[str],
    budget: int,
    param: str | None = None,
    search_range: tuple[float, float] | None = None,
    runs: int = DEFAULT_RUNS,
    candidates: int | None = None,
    sampler: str = "tpe",
    pruner: str | None = None,
    sampler_seed: int = 0,
    workers: int = 1,
    threads: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    progress: bool | None = None,
    heartbeat_interval: int | None = None,
    poll_interval: float = 1.0,
    write: bool = True,
    status_lines: bool = False,
) -> TuneResult:
    """Find the similarity parameter's best value(s) for the objective(s) within a budget of epochs.

    The search trains one run per proposed value (Optuna's sampler, pruned after
    any epoch by Optuna's pruner), then confirms the best values and CCE with
    ``runs`` seeds each, so the result is a mean with its spread and a
    Wilcoxon test against CCE (``docs/tuning.md``).

    Args:
        base: the settings every run shares (its ``r``/``l`` is replaced);
            local settings (``data_dir``, ``device``, ...) may differ between
            reruns and machines, the others are fixed for the tune.
        out_dir: the tune folder (created): ``tune.json``, ``study.db`` with the
            default storage, ``trials/``, ``logs/`` and ``result/`` (the result's
            tables, figure and the report of the confirmation runs).
        objectives: ``val_<metric>`` names; several make a multi-objective study.
        budget: training epochs for the whole tune (CCE, search, confirmation).
        param: the tuned parameter (default: the dataset's).
        search_range: ``(low, high)`` (default: the span of the dataset's paper grid).
        runs: seeds per confirmed value (default 6: the fewest with which the
            two-sided Wilcoxon test against CCE can reach p < 0.05).
        candidates: values confirmed (default: one per objective).
        sampler: ``"tpe"`` (default) or ``"gp"``.
        pruner: ``"median"`` (default for one objective with ``tpe``),
            ``"halving"`` or ``"none"`` (the default with ``gp``, which learns
            nothing from pruned trials, and the only choice for several objectives).
        sampler_seed: the sampler's seed.
        workers: local worker processes (one runs in this process).
        threads: torch threads per worker (as for a sweep).
        storage: an Optuna storage URL (default: ``sqlite:///OUT/study.db``).
        study_name: default ``simloss-tune-<dataset>``.
        progress: a progress bar over the budget's epochs (default: when stderr
            is a terminal).
        heartbeat_interval: seconds between heartbeats (fixed at creation; 10).
        poll_interval: seconds between looks at the storage while waiting.
        write: write the result files into ``OUT/result`` once the tune is complete.
        status_lines: without a progress bar, print a line to stderr whenever a
            trial ends (the command line does when stderr is no terminal).

    Returns:
        A :class:`~simloss.experiments.tune.result.TuneResult`.

    Raises:
        ValueError, TypeError: bad arguments, or settings or data that differ
            from the tune's (checked before anything runs).
        FileNotFoundError: a missing data folder or storage folder.
        RuntimeError: no such device; the storage failed; the disk is full.
    """
    started = time.monotonic()
    if not isinstance(base, TrainConfig):
        raise TypeError(f"Expected `base` to be a TrainConfig, found {type(base).__name__}")
    if base.loss not in (None, TUNED_LOSS):
        raise ValueError(
            f"Expected `loss` {TUNED_LOSS!r} (or none) for a tune of r or l, but found "
            f"{base.loss!r}; the peer losses' own parameters are swept with simloss sweep"
        )
    settings = TuneSettings.create(
        base.task_spec,
        objectives=objectives,
        budget=budget,
        param=param,
        search_range=search_range,
        runs=runs,
        candidates=candidates,
        sampler=sampler,
        pruner=pruner,
        seed=sampler_seed,
    )
    threads = worker_threads(base, workers, threads)
    for value in (settings.low, settings.high, settings.cce_value):
        point_config(base, settings.param, value, 0, loss=TUNED_LOSS).resolve()  # a valid run
    storage = check_engine_args(
        base,
        settings.runs,
        heartbeat_interval=heartbeat_interval,
        poll_interval=poll_interval,
        storage=storage,
        study_name=study_name,
    )
    _check_budget(settings, point_config(base, settings.param, settings.low, 0).resolve())
    if progress is None:
        progress = bool(base.progress if base.progress is not None else base.resolve().progress)
    out, data, local = prepare_folder(base, out_dir, threads, TUNE_ENTRIES, what="tune")

    with folder_lock(out):
        previous = read_tune_file(out) if (out / TUNE_FILE).exists() else None
        url, name = folder_storage(
            out, previous, f"simloss-tune-{base.task_spec.name}", storage, study_name
        )
        interval = _prepare(out, url, name, storage, base, settings, heartbeat_interval, data)

    quiet_optuna()
    args = worker_args(
        out, url, name, local, threads=threads, heartbeat_interval=interval,
        poll_interval=poll_interval,
    )  # fmt: skip
    low = point_config(base, settings.param, settings.low, 0, loss=TUNED_LOSS).resolve()
    epoch_cap = int(low.epochs or 1)
    monitor = startup(
        url, lambda: _BudgetProgress(args, settings, epoch_cap, progress, lines=status_lines)
    )
    worker_errors = run_engine(args, workers, monitor, loop=work)
    result = load_tune(out)
    result.wall_time_s = time.monotonic() - started
    result.notes.extend(worker_errors)
    if write and result.complete:
        from simloss.experiments.tune.write import write_tune_report

        with folder_lock(out):  # two commands finishing one tune write its result in turn
            write_tune_report(result, out / "result")
    return result


def _check_budget(settings: TuneSettings, run: TrainConfig) -> None:
    """Refuse a budget that cannot pay for CCE and the confirmation, before any training.

    CCE and each candidate are trained with ``runs`` seeds, never pruned; each
    run trains at least ``min(epochs, patience + 1)`` epochs (early stopping
    needs ``patience`` epochs after the first without an improvement).
    """
    epochs = int(run.epochs or 1)
    patience = run.patience if run.patience is not None else epochs
    shortest = max(1, min(epochs, int(patience) + 1))
    runs = (settings.candidates + 1) * settings.runs
    if settings.budget < runs * shortest:
        raise ValueError(
            f"Expected --budget >= {runs * shortest} epochs (CCE and {settings.candidates} "
            f"candidate(s) x {settings.runs} runs, each at least {shortest} epochs: epochs="
            f"{epochs}, patience={patience}), but found {settings.budget}"
        )


def _prepare(
    out: Path,
    url: str,
    name: str,
    storage_arg: str | None,
    base: TrainConfig,
    settings: TuneSettings,
    heartbeat_interval: int | None,
    data: dict[str, Any],
) -> int:
    """Create or load the study, check its settings, enqueue CCE's search run; write ``tune.json``.

    Returns:
        The heartbeat interval.
    """
    quiet_optuna()
    fixed = fixed_settings(base, settings.param)
    tune = settings.to_dict()
    wanted = {
        "schema_version": SCHEMA_VERSION,
        "dataset": base.task_spec.name,
        "param": settings.param,
        "fixed": fixed,
        "data": data,
        "heartbeat_interval": heartbeat_interval or DEFAULT_HEARTBEAT_S,
        "tune": tune,
    }

    def setup() -> dict[str, Any]:
        with study_session(
            url, name, directions=settings.directions, metric_names=settings.objectives
        ) as study:
            stored = claim_settings(
                study,
                SETTINGS_ATTR,
                wanted,
                url=url,
                kind="Tune",
                heartbeat_given=heartbeat_interval is not None,
                data_place=data_place(base),
                files=hashed_files(base),
            )
            before = dict(stored.get("tune", {}))
            diffs = differences({**before, "budget": tune["budget"]}, tune)
            if diffs:
                raise ValueError(
                    f"Tune {name!r} was made with other tune settings: {'; '.join(diffs)}. Fixed "
                    "settings of a tune cannot change: use another --out or --study-name"
                )
            if before.get("budget") != tune["budget"]:
                # The budget may change until the confirmation is planned: a larger one searches on.
                planned = study.user_attrs.get(CANDIDATES_ATTR)
                if planned is not None:
                    raise ValueError(
                        f"Tune {name!r} has planned its confirmation ({settings.param} = "
                        f"{', '.join(format_value(v) for v in planned)}), so its budget cannot change "
                        f"(budget={before.get('budget')}, now {tune['budget']}): use another --out"
                    )
                stored = {**stored, "tune": tune}
                study.set_user_attr(SETTINGS_ATTR, stored)
            return stored

    stored = startup(url, setup)
    interval = int(stored["heartbeat_interval"])

    def enqueue() -> None:
        with heartbeat_study(url, name, interval) as study:
            trials = study.get_trials(deepcopy=False)
            # CCE's run 0 first, so the search compares with it from the start.
            cce = [(TUNED_LOSS, settings.cce_value, 0)]
            enqueue_missing(
                study,
                settings.param,
                cce,
                settings.runs,
                census(trials, cce),
                {"phase": "cce"},
                settings.distribution(),
            )

    startup(url, enqueue)

    write_settings_file(
        out / TUNE_FILE,
        {
            "schema_version": SCHEMA_VERSION,
            "study_name": name,
            "storage": storage_arg if storage_arg is not None else stored_url(out, url),
            "dataset": base.task_spec.name,
            "tune": settings.to_dict(),
            "fixed": fixed,
            "data": stored["data"],
            "heartbeat_interval": interval,
        },
        url,
    )
    return interval


class _BudgetProgress:
    """The progress bar of a tune: epochs spent of the budget, trials by state."""

    def __init__(
        self,
        args: WorkerArgs,
        settings: TuneSettings,
        epoch_cap: int,
        show: bool,
        *,
        lines: bool = False,
    ) -> None:
        import sys

        from tqdm.auto import tqdm

        self._lines = lines and not show
        self._seen: tuple[int, ...] = ()
        self._started = time.monotonic()
        self._name = args.study_name
        self._settings = settings
        self._cap = epoch_cap
        self._storage = open_storage(args.url)
        self._study = optuna.load_study(study_name=args.study_name, storage=self._storage)
        self._bar = tqdm(
            total=settings.budget,
            unit="epoch",
            desc=f"tune {args.study_name}",
            disable=not show,
            file=sys.stderr,
            dynamic_ncols=True,
            smoothing=0.0,
        )
        self.poll()

    def poll(self) -> None:
        trials = self._study.get_trials(deepcopy=False)
        planned = CANDIDATES_ATTR in self._study.user_attrs
        ledger = Ledger.count(trials, self._settings, self._cap, planned)
        if ledger.spent > self._bar.n:
            self._bar.update(ledger.spent - self._bar.n)
        states = [t.state.name.lower() for t in trials]
        ended = tuple(states.count(s) for s in ("complete", "pruned", "fail"))
        if self._lines and ended != self._seen:
            import sys

            self._seen = ended
            print(
                f"tune {self._name} ({'confirm' if planned else 'search'}): {ledger.spent} of "
                f"{self._settings.budget} epochs, {ended[0]} complete, {ended[1]} pruned, "
                f"{ended[2]} failed ({time.monotonic() - self._started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        self._bar.set_postfix(
            phase="confirm" if planned else "search",
            complete=states.count("complete"),
            pruned=states.count("pruned"),
            failed=states.count("fail"),
            running=states.count("running"),
            refresh=True,
        )

    def close(self) -> None:
        self._bar.close()
        dispose(self._storage)

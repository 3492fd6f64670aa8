"""The worker processes of a sweep (or a tune): how many, how many threads, their logs and progress.

This process is one worker; ``workers - 1`` more are spawned, each running a
worker loop (:func:`simloss.experiments.sweep.trials.work` for a sweep,
:func:`simloss.experiments.tune.worker.work` for a tune) with its output in
``logs/<host>-<pid>.log``. A thread of this process feeds the progress bar
from the storage. Ctrl-C or SIGTERM stops them all; each marks its trial failed
(``interrupted``) so the next command reruns it at once. The spawned workers
start with SIGINT ignored: Ctrl-C in a terminal reaches this process only
(and the command prints one line), which stops them with SIGTERM.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TextIO

import optuna

from simloss.experiments._runtime import check_threads, usable_cores
from simloss.experiments.config import TrainConfig
from simloss.experiments.sweep.queue import Point, census
from simloss.experiments.sweep.storage import dispose, is_storage_error, open_storage
from simloss.experiments.sweep.trials import STOP, DiskFullError, WorkerArgs, host, log_line, work

__all__ = [
    "Progress",
    "SweepProgress",
    "WorkerLoop",
    "quiet_optuna",
    "run_workers",
    "threads_per_worker",
    "worker_threads",
]


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads per worker so that workers share the cores without oversubscribing.

    Example:
        >>> threads_per_worker(2, cores=16), threads_per_worker(4, cores=2)
        (8, 1)
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"Expected `workers` to be an int >= 1, found {workers!r}")
    if cores is None:
        cores = usable_cores()
    return max(1, cores // workers)


def worker_threads(
    base: TrainConfig, workers: int, threads: int | None = None, cores: int | None = None
) -> int:
    """Torch threads of each worker of a sweep.

    The first of: ``threads``; the base config's ``num_threads``; the dataset's
    default (Abalone's small MLP: 1, faster than several, and two workers with
    all cores each slow each other down badly); the cores shared among the
    workers (:func:`threads_per_worker`).

    Example:
        >>> worker_threads(TrainConfig(dataset="abalone"), 2, cores=16)
        1
        >>> worker_threads(TrainConfig(dataset="utkface", data_dir="d"), 2, cores=16)
        8
        >>> worker_threads(TrainConfig(dataset="abalone", num_threads=3), 2, cores=16)
        3
    """
    shared = threads_per_worker(workers, cores)
    if threads is None:
        default = base.task_spec.defaults.get("num_threads")
        chosen: int = base.num_threads or default or shared
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"Expected `threads` to be an int >= 1 or None, found {threads!r}")
    else:
        chosen = threads
    check_threads(chosen, cores=cores)
    return chosen


def quiet_optuna() -> None:
    """Keep Optuna's per-trial info lines out of the output."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)


#: A worker loop: runs trials of the study in ``args`` until none is left (picklable:
#: a module-level function, as the spawned processes receive it).
WorkerLoop = Callable[[WorkerArgs, TextIO], None]


class Progress(Protocol):
    """What :func:`run_workers` shows while the workers run: polled, then closed."""

    def poll(self) -> None:
        """Look at the storage and update the display."""

    def close(self) -> None:
        """Release the display and the storage."""


class SweepProgress:
    """A sweep's progress bar over its points, fed by looking at the storage.

    With ``lines`` (and no bar), a status line goes to stderr whenever a trial
    finishes or fails, so a log of a long command run without a terminal
    (``nohup``, a batch job) shows where it is.
    """

    def __init__(
        self,
        args: WorkerArgs,
        points: list[Point],
        finished_before: int,
        progress: bool,
        *,
        lines: bool = False,
    ) -> None:
        from tqdm.auto import tqdm

        self._lines = lines and not progress
        self._seen = (finished_before, 0)
        self._started = time.monotonic()
        self._name = args.study_name
        self._points = points
        self._storage = open_storage(args.url)
        self._study = optuna.load_study(study_name=args.study_name, storage=self._storage)
        self._bar = tqdm(
            total=len(self._points),
            initial=finished_before,
            unit="trial",
            desc=f"sweep {args.study_name}",
            disable=not progress,
            file=sys.stderr,
            dynamic_ncols=True,
            smoothing=0.0,
        )

    def poll(self) -> None:
        try:
            trials = self._study.get_trials(deepcopy=False)
        except Exception as exc:  # a database server restarting: the next poll shows it
            if is_storage_error(exc):
                return
            raise
        counts = census(trials, self._points)
        if len(counts.finished) > self._bar.n:
            self._bar.update(len(counts.finished) - self._bar.n)
        # A line per finished or failed trial; an interrupt is said by the command's
        # own one line ("simloss demo: interrupted"), not by a status line.
        now = (len(counts.finished), len(counts.failed))
        if self._lines and now != self._seen:
            self._seen = now
            stopped = f"{len(counts.interrupted)} interrupted, " if counts.interrupted else ""
            print(
                f"sweep {self._name}: {now[0]}/{len(self._points)} finished, {now[1]} failed, "
                f"{stopped}{counts.running_trials} running "
                f"({time.monotonic() - self._started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        self._bar.set_postfix(
            finished=len(counts.finished),
            failed=len(counts.failed),
            running=counts.running_trials,
            refresh=True,
        )

    def close(self) -> None:
        self._bar.close()
        dispose(self._storage)


def run_workers(
    args: WorkerArgs, workers: int, monitor: Progress, loop: WorkerLoop = work
) -> list[str]:
    """Run the workers and show progress until they have all ended.

    This process is one of the workers (it starts at once, while the others,
    ``workers - 1`` spawned processes, import torch); a thread polls
    ``monitor``, which is closed at the end. Every worker runs ``loop`` and
    logs to ``logs/<host>-<pid>.log``; worker ``i`` gets ``args.index = i``.

    Returns:
        One line per worker process that exited abnormally.

    Raises:
        DiskFullError: this process's worker found the disk full (the other
            workers are stopped).
    """
    from multiprocessing.connection import wait

    done = threading.Event()

    def watch() -> None:
        while not done.wait(args.poll_interval):
            monitor.poll()

    context = multiprocessing.get_context("spawn")  # fork is unsafe with torch's thread pools
    processes = [
        context.Process(
            target=_worker_main,
            args=(dataclasses.replace(args, index=i), loop),
            name=f"simloss-worker-{i}",
        )
        for i in range(1, workers)
    ]
    thread = threading.Thread(target=watch, daemon=True)
    on_main_thread = threading.current_thread() is threading.main_thread()
    # SIGTERM (a scheduler's preemption, `kill`) ends this process like Ctrl-C: its
    # trial is marked interrupted and the worker processes are stopped.
    STOP.clear()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if on_main_thread else None
    # Ctrl-C likewise sets STOP: Python swallows a KeyboardInterrupt that lands in a
    # finaliser (a weakref callback of torch's), and the loop would run on.
    previous_int = signal.signal(signal.SIGINT, _raise_interrupt) if on_main_thread else None
    unraisable = sys.unraisablehook
    sys.unraisablehook = _quiet_stop(unraisable)
    try:
        with _sigint_blocked():
            for process in processes:
                process.start()
        thread.start()
        with _openlog(args.out_dir) as log:
            loop(dataclasses.replace(args, parent_pid=None, index=0), log)
        while alive := [p for p in processes if p.exitcode is None]:
            wait([p.sentinel for p in alive], timeout=args.poll_interval)
        if STOP.is_set():  # a SIGTERM whose KeyboardInterrupt was swallowed
            raise KeyboardInterrupt
    except BaseException:
        for process in processes:
            if process.exitcode is None:
                process.terminate()  # the worker marks its trial failed and stops
        for process in processes:
            process.join(timeout=60)
            if process.exitcode is None:
                process.kill()
        raise
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)
            restored = signal.default_int_handler if previous_int is None else previous_int
            signal.signal(signal.SIGINT, restored)
        sys.unraisablehook = unraisable
        done.set()
        if thread.is_alive():
            thread.join()
        monitor.poll()
        monitor.close()
    errors = []
    for process in processes:
        process.join()
        if process.exitcode != 0:
            log_path = _log_path(args.out_dir, process.pid)
            errors.append(
                f"worker {process.pid} exited with code {process.exitcode} (log: {log_path})"
            )
    return errors


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Start worker processes with SIGINT ignored, so that they never receive it.

    Ctrl-C in a terminal signals the whole process group, and a worker still
    importing torch would print a traceback to the terminal before its output goes
    to its log. A signal ignored stays ignored through ``exec`` (and Python then
    installs no handler of its own), whereas the blocked mask does not survive
    multiprocessing's spawn. Ignoring it for good, the workers leave Ctrl-C to this
    process, which stops them with SIGTERM (each marks its trial ``interrupted``).
    This process ignores SIGINT too while it starts them (milliseconds): a Ctrl-C
    in that moment is lost, and the next one stops the command.
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no process-group signals
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    on_main_thread = threading.current_thread() is threading.main_thread()
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN) if on_main_thread else None
    try:
        yield
    finally:
        if on_main_thread:
            signal.signal(signal.SIGINT, signal.SIG_DFL if handler is None else handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _log_path(out_dir: str, pid: int | None) -> Path:
    return Path(out_dir) / "logs" / f"{host()}-{pid}.log"


@contextmanager
def _openlog(out_dir: str) -> Iterator[TextIO]:
    path = _log_path(out_dir, os.getpid())
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as log:
        yield log


def _worker_main(args: WorkerArgs, loop: WorkerLoop) -> None:
    """Entry point of a worker process: output to a log file, then the worker loop."""
    path = _log_path(args.out_dir, os.getpid())
    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "a", buffering=1)  # noqa: SIM115 (kept open until os._exit)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    # Threads are set before torch is imported, so its pools are sized once.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    quiet_optuna()
    from tqdm import tqdm

    # A thread lock instead of tqdm's default process-shared one: no semaphore is
    # left behind by the os._exit below.
    tqdm.set_lock(threading.RLock())
    import torch

    torch.set_num_threads(args.threads)
    code = 0
    try:
        loop(args, log)
    except KeyboardInterrupt:
        log_line(log, "interrupted")
        code = 130
    except DiskFullError as exc:
        log_line(log, f"stopped: {exc}")
        code = 3
    except BaseException:
        log_line(log, f"worker failed:\n{traceback.format_exc()}")
        code = 1
    # Everything is in the storage; skip the interpreter's slow teardown of torch.
    log.flush()
    os._exit(code)


def _quiet_stop(hook: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``sys.unraisablehook`` that says nothing of the interrupt a finaliser swallowed
    (STOP carries it on); everything else goes to ``hook``."""

    def quiet(unraisable: Any) -> Any:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and STOP.is_set():
            return None
        return hook(unraisable)

    return quiet


def _raise_interrupt(signum: int, frame: Any) -> None:
    STOP.set()  # read between trials, should this KeyboardInterrupt be swallowed
    raise KeyboardInterrupt

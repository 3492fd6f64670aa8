"""A run's output folder, built beside its place and moved there only when finished.

A run writes into a hidden sibling ``.<name>.partial-<host>-<pid>-<random>``
and :func:`staged_run_folder` renames it onto ``<name>`` once the run has
finished, so a folder never holds files of two runs, and an interrupted,
failed or killed run leaves nothing that looks like a run:

- a new or empty ``<name>`` is taken by one atomic ``rename``;
- a non-empty ``<name>`` is refused before any work, unless ``overwrite``; then
  the old run stays whole until the new one has finished, is moved aside
  (``.<name>.replaced-...``), the new one is moved in, and the old one deleted.
  Only a folder that looks like a run (holds nothing but :data:`RUN_FILES`) is
  replaced, so a mistyped ``--out ~ --overwrite`` cannot delete a home folder;
- an exception (also ``KeyboardInterrupt``) removes the partial folder; a
  SIGKILL cannot be caught and leaves it, hidden, and the next run into the
  folder removes such leftovers of processes of this host that have ended, of
  any run name (a sweep retries a killed trial under a new name), and restores
  a run that was moved aside when the kill came between the two renames.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simloss.experiments._files import _umask

__all__ = ["RUN_FILES", "check_out_folder", "staged_run_folder"]

#: The files a finished run folder holds.
RUN_FILES: frozenset[str] = frozenset({"config.json", "model.pt", "record.json"})

_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|replaced)-(?P<host>\w*)-(?P<pid>\d+)-")


def _host() -> str:
    return re.sub(r"\W", "", socket.gethostname())[:32]


def check_out_folder(out: str | Path, *, overwrite: bool) -> Path:
    """The absolute output folder, after checking that a run may be written there.

    Raises:
        FileExistsError: ``out`` is a non-empty folder and ``overwrite`` is
            ``False``, or ``out`` holds files no run writes (even with
            ``overwrite``), or ``out`` is a file.
        ValueError: ``out`` names no folder (``/``).
    """
    path = Path(out).expanduser().resolve()
    if not path.name:
        raise ValueError(f"Expected `out` to name a run folder, but found {str(out)!r}")
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"Expected `out` {path} to be a folder, but it is a file")
    entries = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    if not entries:
        return path
    if not overwrite:
        raise FileExistsError(
            f"Expected `out` {path} to be a new or empty folder, but it holds {entries[:5]}; "
            "pass overwrite=True (--overwrite) to replace that run once the new one has finished"
        )
    foreign = [name for name in entries if name not in RUN_FILES]
    if foreign:
        raise FileExistsError(
            f"Expected `out` {path} to hold only a run's files {sorted(RUN_FILES)} to be "
            f"replaced, but it also holds {foreign[:5]}; move them or choose another folder"
        )
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        return True
    return True


def _clean_leftovers(out: Path) -> None:
    """Remove hidden folders that ended processes of this host left beside ``out``.

    All of them, not only those of ``out``'s name: a sweep retries a killed
    trial under a new folder name, so the killed one's name never comes back.
    """
    host = _host()
    if not out.name or not out.parent.is_dir():
        return
    for entry in sorted(out.parent.iterdir()):
        match = _LEFTOVER.match(entry.name)
        if not match or match["host"] != host or not entry.is_dir():
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or _alive(pid):
            continue
        place = out.parent / match["name"]
        if match["kind"] == "replaced" and not place.exists():
            os.rename(entry, place)  # killed between the two renames: the old run comes back
        else:
            shutil.rmtree(entry, ignore_errors=True)


@contextmanager
def staged_run_folder(out: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``out``; move it onto ``out`` on success.

    Args:
        out: the run folder (created with its parents if needed).
        overwrite: replace a finished run at ``out`` (only once the new one has
            finished; the old one stays untouched if the new one fails).

    Raises:
        FileExistsError: as :func:`check_out_folder` (before anything is
            written), or when ``out`` was filled by something else while the
            run was working (the finished run is then kept in the hidden folder
            the message names).

    Example:
        >>> folder = Path(tempfile.mkdtemp()) / "run"
        >>> with staged_run_folder(folder) as stage:
        ...     _ = (stage / "record.json").write_text("{}")
        ...     folder.exists()
        False
        >>> sorted(p.name for p in folder.iterdir())
        ['record.json']
    """
    _clean_leftovers(Path(out).expanduser().resolve())
    target = check_out_folder(out, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}.partial-{_host()}-{os.getpid()}-"
    stage = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual permissions
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _publish(stage, target, overwrite=overwrite)


def _publish(stage: Path, target: Path, *, overwrite: bool) -> None:
    try:
        os.rename(stage, target)  # atomic; replaces a missing or empty folder
        return
    except OSError as exc:
        busy = exc
    if overwrite:
        try:
            check_out_folder(target, overwrite=True)
        except FileExistsError:
            pass
        else:
            aside = target.parent / (
                f".{target.name}.replaced-{_host()}-{os.getpid()}-{secrets.token_hex(4)}"
            )
            os.rename(target, aside)
            try:
                os.rename(stage, target)
            except BaseException:
                os.rename(aside, target)
                raise
            shutil.rmtree(aside, ignore_errors=True)
            return
    raise FileExistsError(
        f"Expected `out` {target} to stay empty while the run worked, but it was filled "
        f"meanwhile ({busy.strerror}); the finished run is kept in {stage}"
    )

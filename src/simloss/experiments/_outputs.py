"""Where a command may write: never into the files of a run, a sweep or a tune.

A run folder (``record.json``, ``model.pt``, ``config.json``), a sweep folder
(``sweep.json``) and a tune folder (``tune.json``) hold the files their
command wrote; another command's output there (``predict --out
runs/ce/record.json``, a report beside a run's weights, a run inside a sweep's
``trials/``) would replace or mix with them. :func:`check_output` refuses such
a path before any work, except the entries those folders keep for that
purpose: a sweep's ``report/`` (``simloss report``'s default output).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["OWN_ENTRIES", "check_output", "folder_kind"]

#: The entry of each kind of folder another command may write into: (kind, entry) -> command.
OWN_ENTRIES: dict[tuple[str, str], str] = {("sweep", "report"): "report"}


def folder_kind(folder: Path) -> str | None:
    """``"run"``, ``"sweep"`` or ``"tune"`` for a folder of that kind, else ``None``.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "sweep.json").write_text("{}")
        >>> folder_kind(folder), folder_kind(folder.parent)
        ('sweep', None)
    """
    if not folder.is_dir():
        return None
    if (folder / "tune.json").exists():
        return "tune"
    if (folder / "sweep.json").exists():
        return "sweep"
    if (folder / "record.json").exists() or (
        (folder / "config.json").exists() and (folder / "model.pt").exists()
    ):
        return "run"
    return None


def check_output(path: str | Path, *, flag: str, command: str, own_kind: str | None = None) -> None:
    """Refuse an output path inside (or being) a run, sweep or tune folder.

    Args:
        path: the file or folder the command writes (or a file prefix).
        flag: the option that named it, for the message (``"--out"``).
        command: the command (``"predict"``, ``"report"``, ...), which may
            write into the entries of :data:`OWN_ENTRIES` meant for it.
        own_kind: the kind the path itself may be: the command's own folder,
            resumed or replaced (``"sweep"`` for ``simloss sweep``; its own
            checks say what it may hold).

    Raises:
        FileExistsError: one line naming the path and the folder it lies in.
    """
    target = Path(path).expanduser().resolve()
    for folder in (target, *target.parents):
        kind = folder_kind(folder)
        if kind is None:
            continue
        inside = target.relative_to(folder).parts
        if inside and OWN_ENTRIES.get((kind, inside[0])) == command:
            return
        if not inside and kind == own_kind:
            continue
        where = "is" if not inside else "lies inside"
        raise FileExistsError(
            f"Expected {flag} {path} outside the files of a {kind}, but it {where} the {kind} "
            f"folder {folder}; choose another {flag}"
        )

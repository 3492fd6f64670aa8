"""Command-line flags derived from :class:`~simloss.experiments.config.TrainConfig`.

Every setting of a run is a field of ``TrainConfig``; ``simloss train``,
``simloss sweep`` and ``simloss demo`` get their flags from those fields (the
name with ``-`` for ``_``, the type from the type hint, choices and help from
the field), so a new setting is one new field. Booleans get ``--x`` and
``--no-x``. Every flag defaults to "not given", so ``--config FILE`` supplies
the base and only the flags actually given override it. The sweep engine's
flags (workers, threads, storage, study name, heartbeat) are declared once here
for ``simloss sweep`` and ``simloss tune``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["add_config_arguments", "add_engine_arguments", "config_from_args", "settings_from_args"]

_CONFIG_DEST = "config"


def _dest(name: str) -> str:
    return f"setting_{name}"


def add_config_arguments(
    parser: argparse.ArgumentParser,
    *,
    exclude: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
) -> None:
    """Add ``--config FILE`` and one flag per ``TrainConfig`` setting.

    Args:
        parser: the subcommand's parser.
        exclude: settings that the command sets itself (e.g. the swept ``r``/``l``).
        defaults: the command's own defaults, shown in the help and applied when
            neither the flag nor the config file gives the setting.
    """
    from simloss.experiments.config import (
        TrainConfig,
        setting_choices,
        setting_help,
        setting_type,
    )

    shown = dict(defaults or {})
    skipped = set(exclude)
    parser.set_defaults(_setting_defaults=shown, _setting_exclude=tuple(sorted(skipped)))
    group = parser.add_argument_group("run settings (TrainConfig; see docs/experiments.md)")
    group.add_argument(
        "--config",
        dest=_CONFIG_DEST,
        type=Path,
        metavar="FILE",
        help="JSON file of TrainConfig settings (e.g. a run's config.json); flags override it"
        + (
            f"; its {', '.join(sorted(skipped))} are this command's to set (ignored)"
            if skipped
            else ""
        ),
    )
    field_defaults = TrainConfig().to_dict()
    for name in TrainConfig.field_names():
        if name in skipped:
            continue
        kind, _ = setting_type(name)
        flag = "--" + name.replace("_", "-")
        help_text = setting_help(name)
        if name in shown:
            help_text += f" (default here: {shown[name]})"
        elif field_defaults[name] is not None and kind is not bool:
            help_text += f" (default {field_defaults[name]})"
        kwargs: dict[str, Any] = {"dest": _dest(name), "default": None, "help": help_text}
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        choices = setting_choices(name)
        if choices:
            kwargs["choices"] = choices
        metavar = name.upper() if not choices else None
        group.add_argument(flag, type=kind, metavar=metavar, **kwargs)


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The run settings of parsed arguments, as a dict of ``TrainConfig`` keys.

    Precedence, lowest first: the command's ``defaults`` (given to
    :func:`add_config_arguments`), the ``--config`` file, then the flags given.
    The file's values of the settings the command sets itself (its
    ``exclude``: a sweep's ``r``, ``l`` and ``loss_param`` come from its grid)
    are left out, and with them a ``similarity`` that only restates the
    file's ``r`` or ``l`` (a run's resolved ``config.json`` says ``order``
    beside ``r``), so a run's config can be the base of a sweep of any loss.
    """
    from simloss.experiments.config import TrainConfig, read_config_file
    from simloss.experiments.specs import PARAMS

    settings: dict[str, Any] = dict(getattr(args, "_setting_defaults", {}))
    path = getattr(args, _CONFIG_DEST, None)
    if path is not None:
        from_file = read_config_file(path)
        excluded = set(getattr(args, "_setting_exclude", ()))
        implied = {
            p.similarity
            for name, p in PARAMS.items()
            if name in excluded and from_file.get(name) is not None
        }
        if from_file.get("similarity") in implied:
            excluded.add("similarity")
        settings.update({k: v for k, v in from_file.items() if k not in excluded})
    for name in TrainConfig.field_names():
        value = getattr(args, _dest(name), None)
        if value is not None:
            settings[name] = value
    return settings


def config_from_args(args: argparse.Namespace, *, overrides: dict[str, Any] | None = None) -> Any:
    """The ``TrainConfig`` of parsed arguments (:func:`settings_from_args`), then ``overrides``.

    Returns:
        A :class:`~simloss.experiments.config.TrainConfig` (not resolved).
    """
    from simloss.experiments.config import TrainConfig

    return TrainConfig.from_dict({**settings_from_args(args), **(overrides or {})})


def add_engine_arguments(parser: argparse.ArgumentParser, *, what: str, study: str) -> None:
    """The sweep engine's options, shared by ``simloss sweep`` and ``simloss tune``.

    Args:
        parser: the command's parser.
        what: the command's noun in the help texts ("sweep", "tune").
        study: the default study name as the help shows it ("simloss-DATASET").
    """
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument(
        "--threads",
        type=int,
        dest="setting_num_threads",
        metavar="N",
        help="torch threads per worker, the same as --num-threads (default: the dataset's, "
        "else the cores divided among the workers)",
    )
    parser.add_argument(
        "--storage",
        help="an Optuna storage URL shared by several machines (default: OUT/study.db, SQLite)",
    )
    parser.add_argument("--study-name", help=f"the study's name (default: {study})")
    parser.add_argument(
        "--heartbeat",
        type=int,
        help="seconds between heartbeats of a running trial; one silent for 3x this long "
        f"is rerun (set when the {what} is created; default 10)",
    )

"""The ``simloss`` command line.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds an ``argparse`` parser whose ``func``
default runs the command and returns an exit code. Subcommand modules keep
heavy imports inside their handlers so that ``simloss --help`` stays fast, and
import nothing at module level beyond the core (torch, numpy) and the
standard library. A module whose command needs an extra says so with
``EXTRA = "experiments"``: when that extra is not installed, the command is
listed as needing it and running it prints one line naming the extra.

Exit codes: 0 on success, 2 for usage errors (argparse), 1 for any other
error, reported as one line ``simloss <command>: error: <reason>``, 130 for an
interrupt (Ctrl-C or SIGTERM), reported as ``simloss <command>: interrupted``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys
from collections.abc import Sequence

from simloss import __version__
from simloss._optional import install_hint, missing_from_extra

__all__ = ["build_parser", "main"]

#: ``parser.set_defaults`` key of a command whose extra is missing: the one-line error.
_UNAVAILABLE = "_unavailable"


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand module registered."""
    parser = argparse.ArgumentParser(
        prog="simloss",
        description="SimLoss: similarity-aware classification losses and the paper's experiments.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"simloss {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        extra: str | None = getattr(module, "EXTRA", None)
        missing = missing_from_extra(extra) if extra else []
        if extra and missing:
            _register_unavailable(subparsers, info.name, module.__doc__ or "", extra, missing)
        else:
            module.register(subparsers)
    return parser


def _register_unavailable(
    subparsers: argparse._SubParsersAction,
    name: str,
    doc: str,
    extra: str,
    missing: list[str],
) -> None:
    """List ``name`` in the help as needing ``extra``; running it gives one line saying so."""
    summary = doc.strip().splitlines()[0] if doc.strip() else ""
    summary = summary.split(":", 1)[-1].strip().rstrip(".")  # "``simloss x``: what it does."
    parser = subparsers.add_parser(name, help=f"[needs simloss[{extra}]] {summary}", add_help=False)
    parser.set_defaults(
        **{
            _UNAVAILABLE: f"needs the `{extra}` extra (not installed: {', '.join(missing)}); "
            f"install it with: {install_hint(extra)}"
        }
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    command = "simloss"
    options: dict[str, str] = {}
    try:
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
        if args.command is not None:
            command = f"simloss {args.command}"
            options = _options(parser, args.command)
        unavailable = getattr(args, _UNAVAILABLE, None)
        if unavailable is not None:  # any options, --help included: say what to install
            print(f"{command}: error: {unavailable}", file=sys.stderr)
            return 1
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        if args.command is None:
            parser.print_help()
            return 2
        code: int = args.func(args)
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except (
        ValueError,
        TypeError,
        FileNotFoundError,
        NotADirectoryError,
        ImportError,
        RuntimeError,
        OSError,
    ) as exc:
        message = _flags(" ".join(str(exc).split()), options)
        print(f"{command}: error: {message}", file=sys.stderr)
        return 1
    return code


_SETTING = re.compile(r"`([a-z][a-z0-9_]*)`")


# Python arguments whose flag has another name (``run_sweep(heartbeat_interval=)``: --heartbeat).
_PYTHON_NAMES = {"heartbeat_interval": "heartbeat"}


def _options(parser: argparse.ArgumentParser, command: str) -> dict[str, str]:
    """One subcommand's flags by the names the library gives them: an option's own
    name (``data_dir`` for ``--data-dir``), its destination (``workers``), and the
    Python argument it stands for (``heartbeat_interval`` for ``--heartbeat``)."""
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        choices = getattr(action, "choices", None) or {}
        if command in choices:
            names: dict[str, str] = {}
            for option in choices[command]._actions:
                flags = [o for o in option.option_strings if o.startswith("--")]
                for flag in flags:
                    names.setdefault(flag[2:].replace("-", "_"), flag)
                if flags and option.dest.isidentifier():
                    names.setdefault(option.dest, flags[0])
            for python, dest in _PYTHON_NAMES.items():
                if dest in names:
                    names.setdefault(python, names[dest])
            return names
    return {}


def _flags(message: str, options: dict[str, str]) -> str:
    """A message as a command line user reads it: a setting named as its flag.

    The library names settings as its fields and arguments (`data_dir`,
    `workers`); on the command line they are flags (`--data-dir`) where the
    command has one (``options``, from :func:`_options`). Other names in
    backticks are left as they are.

    Example:
        >>> _flags("Expected `data_dir` for dataset 'utkface', but found None", {"data_dir": "--data-dir"})
        "Expected `--data-dir` for dataset 'utkface', but found None"
        >>> _flags("Expected `l` in [0, 1)", {"lower_bound": "--lower-bound"})
        'Expected `l` in [0, 1)'
    """

    def flag(match: re.Match[str]) -> str:
        option = options.get(match[1])
        return f"`{option}`" if option is not None else match[0]

    return _SETTING.sub(flag, message)

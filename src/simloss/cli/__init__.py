"""The ``simloss`` command line.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds an ``argparse`` parser whose ``func``
default runs the command and returns an exit code. Subcommand modules keep
heavy imports inside their handlers so that ``simloss --help`` stays fast.

Exit codes: 0 on success, 2 for usage errors (argparse), 1 for any other
error, reported as one line ``simloss <command>: error: <reason>``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from simloss import __version__

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand module registered."""
    parser = argparse.ArgumentParser(
        prog="simloss",
        description="SimLoss: similarity-aware classification losses and the paper's experiments.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"simloss {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print(f"simloss {args.command}: interrupted", file=sys.stderr)
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
        message = " ".join(str(exc).split())
        print(f"simloss {args.command}: error: {message}", file=sys.stderr)
        return 1
    return code

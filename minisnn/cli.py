"""The `minisnn` command line: subcommands are the modules of minisnn.commands.

Each command module defines register(subparsers), which adds its parser and sets `func`, a
function of the parsed arguments returning the exit code (modules named _* are helpers). Every
error, a bad option value or a problem found while running, is one line on stderr naming the
problem, with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings

from . import __version__, commands
from .backends.base import BackendUnavailable


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (the usage itself is one `--help` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def one_line(message: str) -> str:
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="minisnn",
        description="minisnn: a framework-free engine for Self-Normalizing Neural Networks "
        "(SELU, LeCun-normal init, alpha dropout) on NumPy, Numba and CuPy backends.",
        epilog="Run `minisnn COMMAND --help` for a command's options. `minisnn train` with no options "
        "trains an 8-layer SNN on a built-in synthetic problem.",
    )
    parser.add_argument("--version", action="version", version=f"minisnn {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"{commands.__name__}.{info.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    previous_showwarning = warnings.showwarning
    warnings.showwarning = _one_line_warning(args.command)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, RuntimeError, ImportError, BackendUnavailable) as exc:
        print(f"minisnn {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"minisnn {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous_showwarning


def _one_line_warning(command: str):
    """A warnings.showwarning that prints "minisnn COMMAND: warning: MESSAGE" on one line."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"minisnn {command}: warning: {one_line(message)}", file=file or sys.stderr)

    return show


if __name__ == "__main__":
    sys.exit(main())

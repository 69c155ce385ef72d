"""Option types and help formatting shared by the commands.

Each type function turns an option's text into a value or raises argparse.ArgumentTypeError,
which argparse reports as one line naming the option and exits with status 2.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable


def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{'an integer' if kind is int else 'a number'} is needed, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"a finite number is needed, got {text!r}")
    return value


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An integer in [low, high] (either bound may be open)."""

    def parse(text: str) -> int:
        value = _number(text, int)
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {_range(low, high, True, True)}, got {text}")
        return value

    parse.__name__ = "integer"  # argparse names the type in "invalid integer value" messages
    return parse


def number(low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False) -> Callable[[str], float]:
    """A finite float between low and high, each bound included unless marked open."""

    def parse(text: str) -> float:
        value = _number(text, float)
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and (value >= high if high_open else value > high)
        if below or above:
            raise argparse.ArgumentTypeError(f"must be {_range(low, high, not low_open, not high_open)}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


def _range(low, high, low_closed: bool, high_closed: bool) -> str:
    if low is not None and high is not None:
        return f"in {'[' if low_closed else '('}{low:g}, {high:g}{']' if high_closed else ')'}"
    if low is not None:
        return f"{'>=' if low_closed else '>'} {low:g}"
    return f"{'<=' if high_closed else '<'} {high:g}"


FRACTION = number(0.0, 1.0, high_open=True)  # [0, 1): dropout rates, hold-out fractions, momenta, Adam betas
POSITIVE = number(0.0, low_open=True)
NON_NEGATIVE = number(0.0)
FINITE = number()
COUNT = integer(1)  # epochs, batch sizes, widths, threads, patience
SEED = integer(0, 2**63 - 1)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" only where it informs: not for flags, not for None (the help text
    says what happens then), not where the help already states its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.default in (None, argparse.SUPPRESS) or isinstance(action.default, bool)
                or "default" in text or action.nargs == 0):
            return text
        return super()._get_help_string(action)

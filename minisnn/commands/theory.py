"""`minisnn theory`: the SNN mathematics as a report (constants, Jacobian, convergence, theorems, parameters)."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, TextIO

import numpy as np

from ..constants import ALPHA_01, LAMBDA_01
from ._options import FINITE, FRACTION, POSITIVE, HelpFormatter, integer

DEFAULT_TARGETS = ((0.0, 1.0), (0.0, 2.0), (0.0, 4.0), (0.0, 0.5))
CONVERGENCE_STARTS = ((1.0, 3.0), (0.0, 0.2), (-0.5, 8.0), (0.3, 1.5))
CONVERGENCE_STEPS = (0, 1, 2, 5, 10, 20, 30)
MAX_GRID = 61  # the checks hold n^4 points in memory at once: 41 takes about 0.5 GB, 61 about 2.5 GB


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "theory",
        help="print the SNN theory: constants, Jacobian at the fixed point, convergence, Theorems 1-3, parameters",
        description="Evaluate the mathematics of self-normalizing networks (Klambauer et al. 2017): the SELU "
        "constants, the moment map g and its Jacobian at the fixed point, how fast iterating g converges, "
        "a grid check of Theorems 1-3, and SELU / alpha-dropout parameters for other fixed points. Needs "
        "SciPy (minisnn[theory]).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--omega", type=FINITE, default=0.0, help="sum of a unit's weights (0 for normalized weights)")
    p.add_argument("--tau", type=POSITIVE, default=1.0, help="sum of a unit's squared weights (1 for normalized weights)")
    p.add_argument("--target", nargs=2, type=FINITE, action="append", metavar=("MU", "NU"), default=None,
                   help="fixed point to compute SELU parameters for (repeatable; default: (0,1) (0,2) (0,4) (0,0.5)); "
                   "a target no SELU parameters reach is an error (exit status 2) after the report")
    p.add_argument("--dropout", type=FRACTION, default=0.05, help="alpha-dropout rate for the parameter table")
    p.add_argument("--grid", type=integer(2, MAX_GRID), default=21,
                   help="grid points per axis for the Theorem checks (n^4 points; memory grows as n^4)")
    p.add_argument("--no-theorems", dest="theorems", action="store_false", help="skip the Theorem checks")
    p.set_defaults(func=run)


def _constants_section() -> list[str]:
    return [
        "SELU constants for the fixed point (0, 1) (paper Eq. 14)",
        f"  alpha_01       = {ALPHA_01!r}   (float32 {np.float32(ALPHA_01)!s})",
        f"  lambda_01      = {LAMBDA_01!r}   (float32 {np.float32(LAMBDA_01)!s})",
        f"  lambda*alpha   = {LAMBDA_01 * ALPHA_01!r}   (alpha' = -lambda*alpha, SELU's saturation value)",
    ]


def _fixed_point_section(theory, omega: float, tau: float) -> list[str]:
    fp = theory.fixed_point(omega, tau)
    H = fp.jacobian
    eig = ", ".join(f"{complex(e).real:.10f}" if abs(complex(e).imag) < 1e-15 else f"{complex(e):.6f}" for e in fp.eigenvalues)
    return [
        f"Fixed point of g for (omega, tau) = ({omega:g}, {tau:g}): (mu, nu) = ({fp.mu:.10f}, {fp.nu:.10f})",
        "  Jacobian H = d(mu~, nu~)/d(mu, nu) there:",
        f"    [[{H[0, 0]:+.12f}, {H[0, 1]:+.12f}],",
        f"     [{H[1, 0]:+.12f}, {H[1, 1]:+.12f}]]",
        (f"  spectral norm {fp.spectral_norm:.10f} ({'< 1: stable and attracting' if fp.stable else '>= 1: not a contraction'}); "
        f"eigenvalues {eig}"),
    ]


def _convergence_section(theory, omega: float, tau: float) -> list[str]:
    lines = [f"Iterating g (omega={omega:g}, tau={tau:g}): variance nu after k layers",
             f"  {'start (mu, nu)':<16}" + "".join(f"{'k=' + str(k):>12}" for k in CONVERGENCE_STEPS)]
    for start in CONVERGENCE_STARTS:
        trajectory = theory.iterate(*start, steps=max(CONVERGENCE_STEPS), omega=omega, tau=tau)  # (31, 2)
        lines.append(f"  {start!s:<16}" + "".join(f"{trajectory[k, 1]:>12.6f}" for k in CONVERGENCE_STEPS))
    return lines


def _params_section(theory, targets, omega: float, tau: float, rate: float, failed: list[str]) -> list[str]:
    """The parameter table; targets no SELU parameters reach are listed in the table and added to `failed`."""
    lines = [(f"SELU parameters for other fixed points, with (omega, tau) = ({omega:g}, {tau:g}) "
             f"(the SNN authors' notebook uses omega = 1), and alpha dropout at rate {rate:g}"),
             f"  {'target':<14}{'alpha':>20}{'lambda':>20}{'norm(H)':>10}{'a':>14}{'b':>14}{'dropped':>14}"]
    for mu, nu in targets:
        try:
            p = theory.selu_params(mu, nu, omega, tau)
        except ValueError as exc:
            lines.append(f"  ({mu:g}, {nu:g}): {exc}")
            failed.append(f"({mu:g}, {nu:g})")
            continue
        norm = f"{p.fixed_point().spectral_norm:10.6f}"
        d = p.dropout(rate)
        lines.append(f"  {f'({mu:g}, {nu:g})':<14}{p.alpha:>20.15f}{p.lam:>20.15f}{norm}{d.a:>14.10f}{d.b:>14.10f}"
                     f"{d.dropped_value:>14.10f}")
    lines.append("  use: LinearSELU(d_in, d_out, backend, dropout=RATE, alpha=ALPHA, lam=LAMBDA, mu=MU, nu=NU)")
    return lines


@contextmanager
def progress(what: str, stream: TextIO = sys.stderr) -> Iterator[None]:
    """On a terminal, "<what> ... Ns" on stderr, updated every second until the block ends; elsewhere nothing."""
    if not (hasattr(stream, "isatty") and stream.isatty()):
        yield
        return
    done, start = threading.Event(), time.perf_counter()

    def tick() -> None:
        while not done.wait(1.0):
            stream.write(f"\r{what} ... {time.perf_counter() - start:.0f}s")
            stream.flush()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
        stream.write(f"\r{what} ... done in {time.perf_counter() - start:.1f}s\n")
        stream.flush()


def run(args) -> int:
    from .. import theory

    targets = [tuple(t) for t in args.target] if args.target else list(DEFAULT_TARGETS)
    unreachable: list[str] = []
    sections = [
        _constants_section(),
        _fixed_point_section(theory, args.omega, args.tau),
        _convergence_section(theory, args.omega, args.tau),
        _params_section(theory, targets, args.omega, args.tau, args.dropout, unreachable),
    ]
    if args.theorems:
        with progress(f"checking Theorems 1-3 on a {args.grid}^4 grid"):
            checks = theory.verify_theorems(args.grid)
        sections.append(["Theorems 1-3 on a grid (alpha_01, lambda_01)", theory.format_checks(checks)])
    print("\n\n".join("\n".join(section) for section in sections))
    if unreachable:
        print(f"minisnn theory: error: no SELU parameters reach the fixed point {', '.join(unreachable)} "
              f"(see the table above)", file=sys.stderr)
        return 2
    return 0

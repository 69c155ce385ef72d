"""Numerical verification of the paper's Theorems 1-3 on a grid over their domains (alpha_01, lam_01).

Each check evaluates g (and for Theorem 1 the spectral norm of its Jacobian H) at every point of
an n^4 grid over (mu, omega, nu, tau), vectorized, and reports the extreme values with where they
occur. The grid includes the domain's corners, where all the extremes in docs/MATH.md section 3 lie. A grid
check is evidence, not a proof: the paper bounds the values between grid points analytically.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..constants import ALPHA_01, LAMBDA_01
from .jacobian import jacobian, spectral_norm
from .moments import moment_map

AXES = ("mu", "omega", "nu", "tau")


@dataclass(frozen=True)
class Domain:
    """A box in (mu, omega, nu, tau): each entry is (low, high)."""

    mu: tuple[float, float]
    omega: tuple[float, float]
    nu: tuple[float, float]
    tau: tuple[float, float]

    def grid(self, n: int) -> tuple[np.ndarray, ...]:
        """Open grids with n points per axis (corners included), broadcasting to shape (n, n, n, n)."""
        if n < 2:
            raise ValueError(f"the grid needs at least 2 points per axis, got n={n}")
        axes = [np.linspace(*getattr(self, name), n) for name in AXES]
        return np.ix_(*axes)

    def describe(self) -> str:
        return ", ".join(f"{name} in [{lo:g}, {hi:g}]" for name, (lo, hi) in zip(AXES, (self.mu, self.omega, self.nu, self.tau)))


@dataclass(frozen=True)
class Extreme:
    """An extreme value on the grid and the grid point (mu, omega, nu, tau) where it occurs."""

    value: float
    at: tuple[float, float, float, float]


@dataclass(frozen=True)
class TheoremCheck:
    """The outcome of one grid check: named extremes and whether the theorem's claim holds on the grid."""

    name: str
    claim: str
    domain: Domain
    n: int
    extremes: dict[str, Extreme] = field(default_factory=dict)
    holds: bool = False


def _extreme(values: np.ndarray, grid: tuple[np.ndarray, ...], kind: str) -> Extreme:
    index = np.unravel_index(np.argmax(values) if kind == "max" else np.argmin(values), values.shape)
    at = tuple(float(axis.ravel()[i]) for axis, i in zip(grid, index))
    return Extreme(value=float(values[index]), at=at)


def _evaluate(domain: Domain, n: int):
    grid = domain.grid(n)
    mu, omega, nu, tau = grid
    mu_new, nu_new = moment_map(mu, nu, omega, tau, ALPHA_01, LAMBDA_01)  # (n, n, n, n) each
    return grid, np.broadcast_to(mu_new, (n,) * 4), np.broadcast_to(nu_new, (n,) * 4)


THEOREM1_DOMAIN = Domain(mu=(-0.1, 0.1), omega=(-0.1, 0.1), nu=(0.8, 1.5), tau=(0.95, 1.1))
THEOREM1_WIDE_DOMAIN = Domain(mu=(-0.1, 0.1), omega=(-0.1, 0.1), nu=(0.8, 1.5), tau=(0.8, 1.25))
THEOREM2_DOMAIN = Domain(mu=(-1.0, 1.0), omega=(-0.1, 0.1), nu=(3.0, 16.0), tau=(0.8, 1.25))
THEOREM3_DOMAIN = Domain(mu=(-0.1, 0.1), omega=(-0.1, 0.1), nu=(0.02, 0.16), tau=(0.8, 1.25))
THEOREM3_WIDE_DOMAIN = Domain(mu=(-0.1, 0.1), omega=(-0.1, 0.1), nu=(0.02, 0.24), tau=(0.9, 1.25))


def theorem1(n: int = 21, domain: Domain = THEOREM1_DOMAIN) -> TheoremCheck:
    """Theorem 1: g maps the (mu, nu) box into itself and is a contraction there (norm of H < 1)."""
    grid, mu_new, nu_new = _evaluate(domain, n)
    mu, omega, nu, tau = grid
    norms = spectral_norm(jacobian(mu, nu, omega, tau, ALPHA_01, LAMBDA_01))  # (n, n, n, n)
    extremes = {
        "min mu~": _extreme(mu_new, grid, "min"),
        "max mu~": _extreme(mu_new, grid, "max"),
        "min nu~": _extreme(nu_new, grid, "min"),
        "max nu~": _extreme(nu_new, grid, "max"),
        "max norm(H)": _extreme(norms, grid, "max"),
    }
    maps_into = (
        domain.mu[0] <= extremes["min mu~"].value and extremes["max mu~"].value <= domain.mu[1]
        and domain.nu[0] <= extremes["min nu~"].value and extremes["max nu~"].value <= domain.nu[1]
    )
    return TheoremCheck(
        name="Theorem 1 (stable attracting fixed point)",
        claim="g maps [mu] x [nu] into itself and the spectral norm of H is below 1",
        domain=domain, n=n, extremes=extremes,
        holds=bool(maps_into and extremes["max norm(H)"].value < 1.0),
    )


def contraction(n: int = 21, domain: Domain = THEOREM1_WIDE_DOMAIN) -> TheoremCheck:
    """The contraction part of Theorem 1 on its wider tau range: the spectral norm of H stays below 1."""
    grid = domain.grid(n)
    mu, omega, nu, tau = grid
    norms = spectral_norm(jacobian(mu, nu, omega, tau, ALPHA_01, LAMBDA_01))  # (n, n, n, n)
    top = _extreme(norms, grid, "max")
    return TheoremCheck(
        name="Theorem 1, wider tau (contraction)",
        claim="the spectral norm of H is below 1",
        domain=domain, n=n, extremes={"max norm(H)": top}, holds=top.value < 1.0,
    )


def theorem2(n: int = 21, domain: Domain = THEOREM2_DOMAIN) -> TheoremCheck:
    """Theorem 2: a large variance decreases, nu~ < nu."""
    grid, _, nu_new = _evaluate(domain, n)
    top = _extreme(nu_new - grid[2], grid, "max")
    return TheoremCheck(
        name="Theorem 2 (variance decreases)", claim="nu~ - nu < 0",
        domain=domain, n=n, extremes={"max nu~ - nu": top}, holds=top.value < 0.0,
    )


def theorem3(n: int = 21, domain: Domain = THEOREM3_DOMAIN) -> TheoremCheck:
    """Theorem 3: a small variance increases, nu~ > nu."""
    grid, _, nu_new = _evaluate(domain, n)
    bottom = _extreme(nu_new - grid[2], grid, "min")
    return TheoremCheck(
        name="Theorem 3 (variance increases)", claim="nu~ - nu > 0",
        domain=domain, n=n, extremes={"min nu~ - nu": bottom}, holds=bottom.value > 0.0,
    )


def verify_theorems(n: int = 21) -> list[TheoremCheck]:
    """All grid checks with n points per axis: Theorem 1 (both tau ranges), 2 and 3 (both nu ranges)."""
    return [
        theorem1(n),
        contraction(n),
        theorem2(n),
        theorem3(n),
        replace(theorem3(n, THEOREM3_WIDE_DOMAIN), name="Theorem 3, wider nu (variance increases)"),
    ]


def format_checks(checks: list[TheoremCheck]) -> str:
    """A printable report: one block per check with its extremes and where they occur."""
    lines = []
    for check in checks:
        verdict = "holds" if check.holds else "FAILS"
        lines.append(f"{check.name}: {verdict} on a {check.n}^4 grid")
        lines.append(f"  domain: {check.domain.describe()}")
        lines.append(f"  claim:  {check.claim}")
        for label, extreme in check.extremes.items():
            at = ", ".join(f"{name}={value:g}" for name, value in zip(AXES, extreme.at))
            lines.append(f"  {label:<14} {extreme.value:+.7f}  at ({at})")
    return "\n".join(lines)

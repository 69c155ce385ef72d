"""SELU parameters (alpha, lam) that make a chosen (mu*, nu*) the fixed point of g, and matching alpha dropout.

The (omega, tau) convention must be explicit: the fixed-point condition is g(mu*, nu*) = (mu*, nu*)
with z ~ N(mu* omega, nu* tau). The paper's own (0, 1) setting is omega = 0, tau = 1 (normalized
weights, the default here); the SNN authors' notebook for other fixed points implicitly uses
omega = 1, tau = 1 (z ~ N(mu*, nu*)). For a zero target mean the two agree.

The solve. With A = mu~/lam and B = xi~/lam^2 (both independent of lam), A = A0 + alpha A1 is linear
and B = B0 + alpha^2 B2 quadratic in alpha, with A0 = E[z; z>0] > 0, A1 = E[e^z - 1; z<=0] < 0,
B0 = E[z^2; z>0], B2 = E[(e^z - 1)^2; z<=0]. The 2-D system mu~ = mu*, xi~ = nu* + mu*^2 for
(alpha, lam) splits into R(alpha) = A/sqrt(B) = rho := mu*/sqrt(nu* + mu*^2), whose left side is
strictly decreasing in alpha > 0 (dR/dalpha has the sign of A1 B0 - alpha A0 B2 < 0), so the
solution is unique when it exists, and lam = sqrt((nu* + mu*^2) / B). Squaring R = rho gives a
quadratic in alpha, solved in closed form; for mu* = 0 it is the paper's closed form (docs/MATH.md section 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..constants import AlphaDropoutParams, alpha_dropout_params
from .fixed_points import FixedPoint
from .jacobian import eigenvalues, jacobian, spectral_norm
from .moments import gaussian_terms, moment_map

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@dataclass(frozen=True)
class SeluParams:
    """SELU(alpha, lam) with fixed point (mu, nu) under the weight moments (omega, tau)."""

    alpha: float
    lam: float
    mu: float
    nu: float
    omega: float
    tau: float

    @property
    def alpha_prime(self) -> float:
        """The saturation value selu(-inf) = -lam*alpha, the value of dropped units in alpha dropout."""
        return -self.lam * self.alpha

    def dropout(self, rate: float) -> AlphaDropoutParams:
        """Alpha-dropout parameters (a, b, alpha') that keep this fixed point at dropout `rate`."""
        return alpha_dropout_params(rate, mu=self.mu, nu=self.nu, alpha=self.alpha, lam=self.lam)

    def fixed_point(self) -> FixedPoint:
        """The target as a FixedPoint of g: the Jacobian H there, its spectral norm and eigenvalues."""
        H = jacobian(self.mu, self.nu, self.omega, self.tau, self.alpha, self.lam)
        return FixedPoint(mu=self.mu, nu=self.nu, omega=self.omega, tau=self.tau, alpha=self.alpha, lam=self.lam,
                          jacobian=H, spectral_norm=float(spectral_norm(H)), eigenvalues=eigenvalues(H), iterations=0)


def _coefficients(mu: float, nu: float, omega: float, tau: float) -> tuple[float, float, float, float]:
    """(A0, A1, B0, B2) of mu~/lam = A0 + alpha A1 and xi~/lam^2 = B0 + alpha^2 B2 at the target."""
    t = gaussian_terms(mu, nu, omega, tau)
    m, v, g0, E0, E1, E2 = (float(x) for x in t)
    sqrt_v = math.sqrt(v)
    A0 = 0.5 * (m * (2.0 - E0) + _SQRT_2_OVER_PI * sqrt_v * g0)
    A1 = 0.5 * (E1 - E0)
    B0 = 0.5 * ((m * m + v) * (2.0 - E0) + _SQRT_2_OVER_PI * m * sqrt_v * g0)
    B2 = 0.5 * (-2.0 * E1 + E2 + E0)
    return A0, A1, B0, B2


def _solve_alpha(rho: float, A0: float, A1: float, B0: float, B2: float) -> float | None:
    """The alpha > 0 with (A0 + alpha A1)/sqrt(B0 + alpha^2 B2) = rho, or None when there is none."""
    if rho == 0.0:
        return -A0 / A1
    # (A1^2 - rho^2 B2) alpha^2 + 2 A0 A1 alpha + (A0^2 - rho^2 B0) = 0; quarter discriminant without cancellation.
    a2 = A1 * A1 - rho * rho * B2
    a0 = A0 * A0 - rho * rho * B0
    quarter_disc = rho * rho * (A1 * A1 * B0 + A0 * A0 * B2 - rho * rho * B0 * B2)
    if quarter_disc < 0.0:
        return None
    q = -A0 * A1 + math.sqrt(quarter_disc)  # > 0: A0 > 0 > A1
    roots = [a0 / q] + ([q / a2] if a2 != 0.0 else [])
    valid = [r for r in roots if r > 0.0 and (A0 + r * A1) * rho > 0.0]
    return valid[0] if valid else None


def selu_params(mu: float = 0.0, nu: float = 1.0, omega: float = 0.0, tau: float = 1.0) -> SeluParams:
    """SELU (alpha, lam) whose moment map has the fixed point (mu, nu) for weights with (omega, tau).

    Raises ValueError when no alpha > 0 reaches the target (|mu| too large for nu).
    """
    mu, nu, omega, tau = float(mu), float(nu), float(omega), float(tau)
    if not nu > 0:
        raise ValueError(f"target variance nu must be positive, got {nu!r}")
    if not tau > 0:
        raise ValueError(f"tau (sum of squared weights) must be positive, got {tau!r}")
    A0, A1, B0, B2 = _coefficients(mu, nu, omega, tau)
    rho = mu / math.sqrt(nu + mu * mu)
    alpha = _solve_alpha(rho, A0, A1, B0, B2)
    if alpha is None:
        bounds = (A1 / math.sqrt(B2), A0 / math.sqrt(B0))
        raise ValueError(
            f"no SELU parameters reach the fixed point (mu, nu) = ({mu}, {nu}) with omega={omega}, tau={tau}: "
            f"mu/sqrt(nu + mu^2) = {rho:.6g} must lie in ({bounds[0]:.6g}, {bounds[1]:.6g})"
        )
    lam = math.sqrt((nu + mu * mu) / (B0 + alpha * alpha * B2))
    mu_out, nu_out = (float(x) for x in moment_map(mu, nu, omega, tau, alpha, lam))
    if not (abs(mu_out - mu) <= 1e-9 * max(1.0, abs(mu)) and abs(nu_out - nu) <= 1e-9 * max(1.0, nu)):
        raise RuntimeError(f"SELU parameter solve inaccurate: g({mu}, {nu}) = ({mu_out}, {nu_out})")
    return SeluParams(alpha=alpha, lam=lam, mu=mu, nu=nu, omega=omega, tau=tau)


def selu_params_zero_mean(nu: float) -> tuple[float, float]:
    """The paper's closed form for the fixed point (0, nu) with tau = 1 (any omega): (alpha, lam)."""
    nu = float(nu)
    if not nu > 0:
        raise ValueError(f"target variance nu must be positive, got {nu!r}")
    t = gaussian_terms(0.0, nu)
    e1, e2 = float(t.E1), float(t.E2)  # exp(nu/2) erfc(sqrt(nu/2)), exp(2 nu) erfc(sqrt(2 nu))
    alpha = math.sqrt(2.0 * nu / math.pi) / (1.0 - e1)
    lam = math.sqrt(2.0 * nu / (nu + alpha * alpha * (1.0 - 2.0 * e1 + e2)))
    return alpha, lam

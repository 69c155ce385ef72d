"""The moment map g of a SELU layer (paper Eq. 3-5): (mu, nu) of the inputs -> (mu~, nu~) of the outputs.

Notation (docs/MATH.md): the lower layer's activations have mean mu and variance nu; omega = sum w_i,
tau = sum w_i^2; the pre-activation z ~ N(m, v) with m = mu*omega, v = nu*tau (CLT); y = selu(z).
Every function is vectorized: array arguments broadcast against each other.

Two forms of the same formula:
  "closed"  exp(m + v/2)*erfc((m+v)/r) as written in the paper; exp overflows for large v (v > ~350);
  "erfcx"   the same products as exp(-m^2/(2v))*erfcx(x) wherever x >= 0 (the default). erfcx(x) is
            bounded for x >= 0 and exp(-m^2/(2v)) <= 1, so nothing overflows; for x < 0 the plain
            product is kept, where exp(a) is bounded by the true value and erfc(x) lies in (1, 2].
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..constants import ALPHA_01, LAMBDA_01
from ._optional import scipy_special

FORMS = ("erfcx", "closed")
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class SeluMoments(NamedTuple):
    """Moments of y = selu(z), z ~ N(mu*omega, nu*tau): mean mu~, second moment xi~, variance nu~."""

    mean: np.ndarray
    second_moment: np.ndarray
    variance: np.ndarray


class GaussianTerms(NamedTuple):
    """The Gaussian integrals shared by g and its Jacobian (appendix Eq. 56-65).

    m, v: mean and variance of z; g0 = exp(-m^2/(2v)); E0 = erfc(m/r);
    E1 = exp(m + v/2) erfc((m+v)/r); E2 = exp(2(m+v)) erfc((m+2v)/r); r = sqrt(2v).
    """

    m: np.ndarray
    v: np.ndarray
    g0: np.ndarray
    E0: np.ndarray
    E1: np.ndarray
    E2: np.ndarray


def _check_positive(name: str, value: np.ndarray) -> None:
    if not np.all(value > 0):
        raise ValueError(f"{name} must be positive everywhere (z needs a positive variance), got min {np.min(value)!r}")


def _exp_erfc(log_factor: np.ndarray, x: np.ndarray, g0_exponent: np.ndarray, form: str) -> np.ndarray:
    """exp(log_factor) * erfc(x), where g0_exponent = log_factor - x^2 (computed without cancellation)."""
    special = scipy_special()
    if form == "closed":
        return np.exp(log_factor) * special.erfc(x)
    nonneg = x >= 0
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.exp(g0_exponent) * special.erfcx(np.where(nonneg, x, 0.0))
        plain = np.exp(np.where(nonneg, 0.0, log_factor)) * special.erfc(np.where(nonneg, 0.0, x))
    return np.where(nonneg, scaled, plain)


def gaussian_terms(mu, nu, omega=0.0, tau=1.0, form: str = "erfcx") -> GaussianTerms:
    """The terms g0, E0, E1, E2 at m = mu*omega, v = nu*tau (arrays broadcast)."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    mu, nu, omega, tau = (np.asarray(a, dtype=np.float64) for a in (mu, nu, omega, tau))
    _check_positive("nu", nu)
    _check_positive("tau", tau)
    m = mu * omega
    v = nu * tau
    r = np.sqrt(2.0 * v)
    g0_exponent = -(m * m) / (2.0 * v)
    special = scipy_special()
    E0 = special.erfc(m / r)
    E1 = _exp_erfc(m + v / 2.0, (m + v) / r, g0_exponent, form)
    E2 = _exp_erfc(2.0 * (m + v), (m + 2.0 * v) / r, g0_exponent, form)
    return GaussianTerms(m=m, v=v, g0=np.exp(g0_exponent), E0=E0, E1=E1, E2=E2)


def _moments_from_terms(t: GaussianTerms, alpha: float, lam: float) -> SeluMoments:
    sqrt_v = np.sqrt(t.v)
    mean = lam / 2.0 * (t.m * (2.0 - t.E0) + alpha * (t.E1 - t.E0) + _SQRT_2_OVER_PI * sqrt_v * t.g0)
    second = (lam * lam / 2.0) * (
        (t.m * t.m + t.v) * (2.0 - t.E0)
        + alpha * alpha * (-2.0 * t.E1 + t.E2 + t.E0)
        + _SQRT_2_OVER_PI * t.m * sqrt_v * t.g0
    )
    return SeluMoments(mean=mean, second_moment=second, variance=second - mean * mean)


def selu_moments(mu, nu, omega=0.0, tau=1.0, alpha: float = ALPHA_01, lam: float = LAMBDA_01, form: str = "erfcx") -> SeluMoments:
    """Mean, second moment and variance of selu(z), z ~ N(mu*omega, nu*tau), elementwise over arrays."""
    return _moments_from_terms(gaussian_terms(mu, nu, omega, tau, form), alpha, lam)


def moment_map(mu, nu, omega=0.0, tau=1.0, alpha: float = ALPHA_01, lam: float = LAMBDA_01, form: str = "erfcx"):
    """g(mu, nu) = (mu~, nu~): the mean and variance one SELU layer maps (mu, nu) to."""
    moments = selu_moments(mu, nu, omega, tau, alpha, lam, form)
    return moments.mean, moments.variance

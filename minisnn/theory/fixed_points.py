"""Iterating the moment map from any start, and the fixed point of g for given (omega, tau)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..constants import ALPHA_01, LAMBDA_01
from .jacobian import eigenvalues, jacobian, spectral_norm
from .moments import moment_map


def iterate(
    mu0, nu0, steps: int, omega=0.0, tau=1.0, alpha: float = ALPHA_01, lam: float = LAMBDA_01
) -> np.ndarray:
    """The trajectory (mu_k, nu_k), k = 0..steps, of k layers of g from (mu0, nu0).

    Vectorized over starts: returns shape (steps + 1, *broadcast(mu0, nu0).shape, 2).
    """
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    mu, nu = np.broadcast_arrays(np.asarray(mu0, dtype=np.float64), np.asarray(nu0, dtype=np.float64))
    trajectory = np.empty((steps + 1, *mu.shape, 2))  # (steps + 1, ..., 2)
    trajectory[0, ..., 0], trajectory[0, ..., 1] = mu, nu
    for k in range(1, steps + 1):
        mu, nu = moment_map(mu, nu, omega, tau, alpha, lam)
        trajectory[k, ..., 0], trajectory[k, ..., 1] = mu, nu
    return trajectory


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point (mu, nu) = g(mu, nu) with the Jacobian H there and its spectral norm.

    The fixed point attracts when the spectral norm is below 1 (g is then a contraction nearby).
    """

    mu: float
    nu: float
    omega: float
    tau: float
    alpha: float
    lam: float
    jacobian: np.ndarray  # (2, 2)
    spectral_norm: float
    eigenvalues: np.ndarray  # (2,)
    iterations: int

    @property
    def stable(self) -> bool:
        """True when the spectral norm of H is below 1."""
        return self.spectral_norm < 1.0


def fixed_point(
    omega: float = 0.0,
    tau: float = 1.0,
    alpha: float = ALPHA_01,
    lam: float = LAMBDA_01,
    start: tuple[float, float] = (0.0, 1.0),
    tol: float = 1e-14,
    max_iter: int = 500,
) -> FixedPoint:
    """The fixed point of g reached from `start`: fixed-point iteration polished by Newton steps.

    Iterates g while it contracts, then solves g(x) - x = 0 with Newton's method on H - I, so
    the result is accurate to about `tol` even where the contraction is slow. Raises RuntimeError
    when neither converges (for example when the variance diverges for these parameters).
    """
    x = np.array(start, dtype=np.float64)
    if x.shape != (2,) or not x[1] > 0:
        raise ValueError(f"start must be (mu, nu) with nu > 0, got {start!r}")
    identity = np.eye(2)
    for iteration in range(1, max_iter + 1):
        with np.errstate(over="ignore", invalid="ignore"):
            gx = np.array(moment_map(x[0], x[1], omega, tau, alpha, lam))
            step_size = np.max(np.abs(gx - x))
            if step_size < 1e-6:  # close enough for Newton
                H = jacobian(x[0], x[1], omega, tau, alpha, lam)
                gx = x - np.linalg.solve(H - identity, gx - x)
                step_size = np.max(np.abs(gx - x))
        if not (np.all(np.isfinite(gx)) and gx[1] > 0):
            break
        x = gx
        if step_size <= tol * max(1.0, np.max(np.abs(x))):
            H = jacobian(x[0], x[1], omega, tau, alpha, lam)
            return FixedPoint(
                mu=float(x[0]), nu=float(x[1]), omega=float(omega), tau=float(tau), alpha=float(alpha),
                lam=float(lam), jacobian=H, spectral_norm=float(spectral_norm(H)),
                eigenvalues=eigenvalues(H), iterations=iteration,
            )
    raise RuntimeError(
        f"no fixed point of g found from start {tuple(start)} for omega={omega}, tau={tau}, alpha={alpha}, "
        f"lam={lam} within {max_iter} iterations (last iterate mu={x[0]:.6g}, nu={x[1]:.6g})"
    )

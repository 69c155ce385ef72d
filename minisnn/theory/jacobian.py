"""The Jacobian of the moment map, its spectral norm and eigenvalues (appendix Eq. 56-65).

J is the Jacobian of (mu~, xi~) with respect to (mu, nu); H, the one of g = (mu~, nu~), follows from
nu~ = xi~ - mu~^2: H = [[J11, J12], [J21 - 2 mu~ J11, J22 - 2 mu~ J12]]. Arrays of matrices have
shape (..., 2, 2) with the broadcast shape of the inputs in front.
"""

from __future__ import annotations

import math

import numpy as np

from ..constants import ALPHA_01, LAMBDA_01
from .moments import _moments_from_terms, gaussian_terms

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
WITH_RESPECT_TO = ("variance", "second_moment")


def _stack(j11, j12, j21, j22) -> np.ndarray:
    j11, j12, j21, j22 = np.broadcast_arrays(j11, j12, j21, j22)
    return np.stack([np.stack([j11, j12], axis=-1), np.stack([j21, j22], axis=-1)], axis=-2)  # (..., 2, 2)


def jacobian(
    mu, nu, omega=0.0, tau=1.0, alpha: float = ALPHA_01, lam: float = LAMBDA_01, output: str = "variance"
) -> np.ndarray:
    """d(mu~, nu~)/d(mu, nu) (output="variance", the matrix H) or d(mu~, xi~)/d(mu, nu) ("second_moment", J).

    Returns an array of shape (..., 2, 2); row 0 is the derivative of mu~, column 0 the one by mu.
    """
    if output not in WITH_RESPECT_TO:
        raise ValueError(f"output must be one of {WITH_RESPECT_TO}, got {output!r}")
    t = gaussian_terms(mu, nu, omega, tau)
    omega = np.asarray(omega, dtype=np.float64)
    tau = np.asarray(tau, dtype=np.float64)
    a2 = alpha * alpha
    j11 = lam * omega / 2.0 * (alpha * t.E1 - t.E0 + 2.0)
    j12 = lam * tau / 4.0 * (alpha * t.E1 - (alpha - 1.0) * _SQRT_2_OVER_PI / np.sqrt(t.v) * t.g0)
    j21 = lam * lam * omega * (-a2 * t.E1 + a2 * t.E2 + t.m * (2.0 - t.E0) + _SQRT_2_OVER_PI * np.sqrt(t.v) * t.g0)
    j22 = lam * lam * tau / 2.0 * (-a2 * t.E1 + 2.0 * a2 * t.E2 - t.E0 + 2.0)
    if output == "second_moment":
        return _stack(j11, j12, j21, j22)
    mean = _moments_from_terms(t, alpha, lam).mean
    return _stack(j11, j12, j21 - 2.0 * mean * j11, j22 - 2.0 * mean * j12)


def spectral_norm(matrices) -> np.ndarray:
    """Largest singular value of each 2x2 matrix in an array (..., 2, 2), in closed form.

    sigma_max^2 = (F + sqrt(F^2 - 4 det^2)) / 2 with F the squared Frobenius norm.
    """
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.shape[-2:] != (2, 2):
        raise ValueError(f"spectral_norm expects matrices of shape (..., 2, 2), got {matrices.shape}")
    frobenius2 = np.sum(matrices * matrices, axis=(-2, -1))
    det = matrices[..., 0, 0] * matrices[..., 1, 1] - matrices[..., 0, 1] * matrices[..., 1, 0]
    discriminant = np.maximum(frobenius2 * frobenius2 - 4.0 * det * det, 0.0)
    return np.sqrt((frobenius2 + np.sqrt(discriminant)) / 2.0)


def eigenvalues(matrices) -> np.ndarray:
    """Eigenvalues of each 2x2 matrix (..., 2, 2) -> (..., 2), complex where they are not real."""
    return np.linalg.eigvals(np.asarray(matrices, dtype=np.float64))

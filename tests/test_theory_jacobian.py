"""The Jacobian of g (docs/MATH.md section 3): oracle matrix, finite differences, spectral norm, eigenvalues."""

import numpy as np
import pytest

pytest.importorskip("scipy")

from minisnn.theory import eigenvalues, jacobian, moment_map, selu_moments, spectral_norm


def test_jacobian_at_the_fixed_point_matches_the_oracle():
    H = jacobian(0.0, 1.0, 0.0, 1.0)
    np.testing.assert_allclose(H, [[0.0, 0.088834755107], [0.0, 0.782647883197]], rtol=0, atol=1e-10)
    assert spectral_norm(H) == pytest.approx(0.7876733605, abs=1e-10)
    np.testing.assert_allclose(np.sort(eigenvalues(H).real), [0.0, 0.7826478832], atol=1e-10)


def _central_differences(fn, mu, nu, omega, tau, alpha, lam, h=1e-5):
    """(2, 2) matrix of d fn / d(mu, nu) by central differences."""
    d_mu = (np.array(fn(mu + h, nu, omega, tau, alpha, lam)) - np.array(fn(mu - h, nu, omega, tau, alpha, lam))) / (2 * h)
    d_nu = (np.array(fn(mu, nu + h, omega, tau, alpha, lam)) - np.array(fn(mu, nu - h, omega, tau, alpha, lam))) / (2 * h)
    return np.stack([d_mu, d_nu], axis=-1)


def _mean_and_second(mu, nu, omega, tau, alpha, lam):
    m = selu_moments(mu, nu, omega, tau, alpha, lam)
    return m.mean, m.second_moment


POINTS = [
    (0.0, 1.0, 0.0, 1.0, 1.6732632423543772, 1.0507009873554805),
    (0.5, 1.5, 0.1, 1.1, 1.6732632423543772, 1.0507009873554805),
    (-1.0, 12.0, -0.1, 0.8, 1.6732632423543772, 1.0507009873554805),
    (0.3, 0.1, 0.9, 1.2, 2.404005338216483, 1.070232274447111),
    (-0.8, 3.0, 1.0, 1.0, 1.2, 0.9),
]


@pytest.mark.parametrize("mu, nu, omega, tau, alpha, lam", POINTS)
def test_jacobian_matches_finite_differences(mu, nu, omega, tau, alpha, lam):
    fd_h = _central_differences(moment_map, mu, nu, omega, tau, alpha, lam)
    fd_j = _central_differences(_mean_and_second, mu, nu, omega, tau, alpha, lam)
    np.testing.assert_allclose(jacobian(mu, nu, omega, tau, alpha, lam), fd_h, rtol=0, atol=1e-9)
    np.testing.assert_allclose(jacobian(mu, nu, omega, tau, alpha, lam, output="second_moment"), fd_j, rtol=0, atol=1e-9)


def test_jacobian_is_vectorized():
    mu = np.array([p[0] for p in POINTS[:3]])
    nu = np.array([p[1] for p in POINTS[:3]])
    omega = np.array([p[2] for p in POINTS[:3]])
    tau = np.array([p[3] for p in POINTS[:3]])
    stacked = jacobian(mu, nu, omega, tau)
    assert stacked.shape == (3, 2, 2)
    for i in range(3):
        np.testing.assert_allclose(stacked[i], jacobian(mu[i], nu[i], omega[i], tau[i]), rtol=1e-15, atol=0)


def test_spectral_norm_matches_svd():
    matrices = np.random.default_rng(3).normal(size=(50, 2, 2))
    np.testing.assert_allclose(spectral_norm(matrices), np.linalg.svd(matrices, compute_uv=False)[:, 0], rtol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        spectral_norm(np.eye(3))


def test_unknown_output_is_named():
    with pytest.raises(ValueError, match="output must be one of"):
        jacobian(0.0, 1.0, output="mean")

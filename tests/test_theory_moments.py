"""The moment map g: oracle values (docs/MATH.md sections 1-2), quadrature, Monte Carlo, stability, errors."""

import math
import sys

import numpy as np
import pytest

pytest.importorskip("scipy")
from scipy import integrate

from minisnn.constants import ALPHA_01, LAMBDA_01, LAMBDA_ALPHA_01
from minisnn.reference import selu_forward
from minisnn.theory import moment_map, selu_moments, selu_params_zero_mean
from minisnn.theory.theorems import THEOREM2_DOMAIN

# (omega, tau, mu, nu, mu~, nu~) from docs/MATH.md section 2.
G_TABLE = [
    (0.0, 1.0, 0.0, 1.0, 0.000000000000, 1.000000000000),
    (0.0, 1.0, 0.5, 1.5, +0.044983437707, 1.371531003642),
    (0.0, 1.0, -0.3, 0.7, -0.025902873202, 0.755247511224),
    (0.0, 1.0, 0.0, 3.0, +0.175003580514, 2.349062199497),
    (0.1, 1.1, 0.0, 1.0, +0.008926931822, 1.077347661303),
    (0.1, 1.1, 0.5, 1.5, +0.104914908900, 1.500174358023),
    (0.1, 1.1, -0.3, 0.7, -0.050460082877, 0.807291519366),
    (0.1, 1.1, 0.0, 3.0, +0.199516178326, 2.530230207402),
]


def test_constants_match_the_closed_form_to_1e15():
    alpha, lam = selu_params_zero_mean(1.0)
    assert alpha == pytest.approx(ALPHA_01, rel=1e-15, abs=0)
    assert lam == pytest.approx(LAMBDA_01, rel=1e-15, abs=0)
    assert ALPHA_01 * LAMBDA_01 == pytest.approx(LAMBDA_ALPHA_01, rel=1e-15, abs=0)
    assert ALPHA_01 == 1.6732632423543772 and LAMBDA_01 == 1.0507009873554805


def test_selu_values_from_the_table():
    x = np.array([1.0, -1.0, -50.0])
    expected = np.array([1.0507009873554805, -1.1113307378125625, -1.7580993408473766])
    np.testing.assert_allclose(selu_forward(x, ALPHA_01, LAMBDA_01), expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize("form", ["erfcx", "closed"])
@pytest.mark.parametrize("omega, tau, mu, nu, mu_new, nu_new", G_TABLE)
def test_g_reproduces_the_oracle_table(form, omega, tau, mu, nu, mu_new, nu_new):
    got_mu, got_nu = moment_map(mu, nu, omega, tau, form=form)
    assert got_mu == pytest.approx(mu_new, abs=1e-10)
    assert got_nu == pytest.approx(nu_new, abs=1e-10)


def test_g_is_vectorized_and_broadcasts():
    table = np.array(G_TABLE)  # (8, 6)
    omega, tau, mu, nu = table[:, 0], table[:, 1], table[:, 2], table[:, 3]
    got_mu, got_nu = moment_map(mu, nu, omega, tau)
    np.testing.assert_allclose(got_mu, table[:, 4], rtol=0, atol=1e-10)
    np.testing.assert_allclose(got_nu, table[:, 5], rtol=0, atol=1e-10)
    grid_mu, grid_nu = moment_map(np.linspace(-1, 1, 5)[:, None], np.linspace(0.5, 3, 4)[None, :])
    assert grid_mu.shape == grid_nu.shape == (5, 4)


def _quadrature_moments(m, v, alpha=ALPHA_01, lam=LAMBDA_01):
    """E[selu(z)], E[selu(z)^2] for z ~ N(m, v) by adaptive quadrature, split at the kink."""
    sd = math.sqrt(v)

    def pdf(z):
        return math.exp(-((z - m) ** 2) / (2 * v)) / math.sqrt(2 * math.pi * v)

    def selu(z):
        return lam * z if z > 0 else lam * alpha * math.expm1(z)

    def integral(f):
        lo, hi = m - 40 * sd, m + 40 * sd
        parts = [(lo, min(0.0, hi)), (max(0.0, lo), hi)]
        return sum(integrate.quad(f, a, b, epsabs=1e-14, epsrel=1e-13, limit=200)[0] for a, b in parts if a < b)

    first = integral(lambda z: selu(z) * pdf(z))
    second = integral(lambda z: selu(z) ** 2 * pdf(z))
    return first, second


@pytest.mark.parametrize(
    "mu, nu, omega, tau, alpha, lam",
    [
        (0.0, 1.0, 0.0, 1.0, ALPHA_01, LAMBDA_01),
        (0.7, 2.5, 0.3, 0.9, ALPHA_01, LAMBDA_01),
        (-1.0, 16.0, 0.1, 1.25, ALPHA_01, LAMBDA_01),
        (2.0, 0.05, -0.8, 1.0, 2.4, 1.07),
        (-3.0, 0.3, 1.0, 1.0, 1.5, 1.0),
    ],
)
def test_g_agrees_with_quadrature(mu, nu, omega, tau, alpha, lam):
    moments = selu_moments(mu, nu, omega, tau, alpha, lam)
    first, second = _quadrature_moments(mu * omega, nu * tau, alpha, lam)
    assert moments.mean == pytest.approx(first, abs=1e-10)
    assert moments.second_moment == pytest.approx(second, abs=1e-10 * max(1.0, second))
    assert moments.variance == pytest.approx(second - first**2, abs=1e-10 * max(1.0, second))


@pytest.mark.parametrize("mu, nu, omega, tau", [(0.0, 1.0, 0.0, 1.0), (0.5, 1.5, 0.1, 1.1), (-0.3, 0.7, 1.0, 1.0)])
def test_g_agrees_with_monte_carlo(mu, nu, omega, tau):
    n = 1_000_000
    z = np.random.default_rng(7).normal(mu * omega, math.sqrt(nu * tau), size=n)
    y = selu_forward(z, ALPHA_01, LAMBDA_01)
    mu_new, nu_new = moment_map(mu, nu, omega, tau)
    # 5 standard errors of the sample mean and of the sample variance (from the fourth central moment).
    fourth = np.mean((y - y.mean()) ** 4)
    assert abs(y.mean() - mu_new) < 5 * math.sqrt(nu_new / n)
    assert abs(y.var() - nu_new) < 5 * math.sqrt((fourth - y.var() ** 2) / n)


def test_erfcx_form_never_overflows_on_theorem2_domain_and_beyond():
    d = THEOREM2_DOMAIN
    mu, omega, nu, tau = np.ix_(np.linspace(*d.mu, 7), np.linspace(*d.omega, 7), np.linspace(*d.nu, 7), np.linspace(*d.tau, 7))
    with np.errstate(all="raise"):
        mu_new, nu_new = moment_map(mu, nu, omega, tau)
    assert np.all(np.isfinite(mu_new)) and np.all(np.isfinite(nu_new))
    # Far beyond: v = 1e4 overflows the closed form (exp(2v)) but not the erfcx form.
    big_mu, big_nu = moment_map(0.0, 1e4)
    assert np.isfinite(big_mu) and np.isfinite(big_nu)
    first, second = _quadrature_moments(0.0, 1e4)
    assert big_mu == pytest.approx(first, rel=1e-9)
    assert big_nu == pytest.approx(second - first**2, rel=1e-9)
    with np.errstate(all="ignore"):
        assert not np.isfinite(moment_map(0.0, 1e4, form="closed")[1])


def test_g_does_not_depend_on_mu_when_omega_is_zero():
    a = moment_map(np.array([-2.0, 0.0, 3.0]), 1.3, 0.0, 1.0)
    assert np.ptp(a[0]) == 0 and np.ptp(a[1]) == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"nu": 0.0}, "nu must be positive"),
    ({"nu": -1.0}, "nu must be positive"),
    ({"tau": 0.0}, "tau must be positive"),
    ({"form": "naive"}, "form must be one of"),
])
def test_bad_arguments_are_named(kwargs, message):
    args = {"mu": 0.0, "nu": 1.0, "omega": 0.0, "tau": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        moment_map(**args)


def test_missing_scipy_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    with pytest.raises(ImportError, match=r"minisnn\[theory\]"):
        moment_map(0.0, 1.0)

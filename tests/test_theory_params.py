"""SELU parameters for other fixed points and alpha-dropout parameters (docs/MATH.md sections 4 and 6)."""

import math

import numpy as np
import pytest

pytest.importorskip("scipy")
from scipy import optimize

from minisnn.constants import ALPHA_01, LAMBDA_01, alpha_dropout_params
from minisnn.reference import selu_forward
from minisnn.theory import moment_map, selu_params, selu_params_zero_mean

# (mu*, nu*, omega, alpha, lam, spectral norm or None) from docs/MATH.md section 4.
PARAMS_TABLE = [
    (0.0, 1.0, 0.0, 1.673263242354378, 1.050700987355480, 0.787673),
    (0.0, 2.0, 0.0, 1.971255750346270, 1.060709076103012, 0.748540),
    (0.0, 4.0, 0.0, 2.404005338216483, 1.070232274447111, 0.712948),
    (0.0, 0.5, 0.0, 1.468059870530506, 1.040957337538635, 0.827227),
    (-0.1, 2.0, 1.0, 1.976902195424, 1.073851239616, None),
    (-0.1, 2.0, 0.0, 2.326990778819, 0.982180433796, None),
]


@pytest.mark.parametrize("mu, nu, omega, alpha, lam, norm", PARAMS_TABLE)
def test_selu_params_reproduce_the_table(mu, nu, omega, alpha, lam, norm):
    p = selu_params(mu, nu, omega=omega)
    assert p.alpha == pytest.approx(alpha, abs=1e-10 if mu == 0 else 1e-11)
    assert p.lam == pytest.approx(lam, abs=1e-10 if mu == 0 else 1e-11)
    np.testing.assert_allclose(moment_map(mu, nu, omega, 1.0, p.alpha, p.lam), (mu, nu), rtol=0, atol=1e-12)
    if norm is not None:
        fp = p.fixed_point()
        assert (fp.mu, fp.nu) == pytest.approx((mu, nu), abs=1e-12)
        assert fp.spectral_norm == pytest.approx(norm, abs=5e-7)


@pytest.mark.parametrize("nu", [0.5, 1.0, 2.0, 4.0])
def test_closed_form_for_zero_mean_agrees_with_the_general_solve(nu):
    alpha, lam = selu_params_zero_mean(nu)
    p = selu_params(0.0, nu, omega=0.7)  # zero mean makes omega irrelevant
    assert (p.alpha, p.lam) == pytest.approx((alpha, lam), rel=1e-13)


def test_zero_one_target_gives_the_paper_constants():
    p = selu_params(0.0, 1.0)
    assert p.alpha == pytest.approx(ALPHA_01, rel=1e-15)
    assert p.lam == pytest.approx(LAMBDA_01, rel=1e-15)


@pytest.mark.parametrize("mu, nu, omega, tau", [(-0.1, 2.0, 1.0, 1.0), (0.3, 1.0, 0.0, 1.0), (0.2, 0.8, 0.5, 1.2),
                                                (-0.5, 3.0, 1.0, 0.9)])
def test_solution_agrees_with_a_generic_2d_root_solve(mu, nu, omega, tau):
    p = selu_params(mu, nu, omega, tau)

    def residual(x):
        return np.array(moment_map(mu, nu, omega, tau, x[0], x[1])) - (mu, nu)

    root = optimize.fsolve(residual, x0=[p.alpha * 1.05, p.lam * 0.97], xtol=1e-12)
    np.testing.assert_allclose([p.alpha, p.lam], root, rtol=1e-10)


def test_unreachable_target_is_named():
    with pytest.raises(ValueError, match=r"no SELU parameters reach the fixed point \(mu, nu\) = \(2.0, 1.0\)"):
        selu_params(2.0, 1.0)
    with pytest.raises(ValueError, match="target variance nu must be positive"):
        selu_params(0.0, 0.0)
    with pytest.raises(ValueError, match="tau"):
        selu_params(0.0, 1.0, tau=-1.0)


# (q, a, b, dropped value) from docs/MATH.md section 6.
DROPOUT_TABLE = [
    (0.95, 0.954844476005, 0.083935572194, -1.594775871682),
    (0.90, 0.921284516150, 0.161970970058, -1.457738730518),
    (0.80, 0.878903583444, 0.309039962144, -1.236159848576),
    (0.50, 0.886404894666, 0.779193930518, -0.779193930518),
]


@pytest.mark.parametrize("q, a, b, dropped", DROPOUT_TABLE)
def test_alpha_dropout_parameters_reproduce_the_table(q, a, b, dropped):
    d = selu_params(0.0, 1.0).dropout(1.0 - q)
    assert d.a == pytest.approx(a, abs=1e-12)
    assert d.b == pytest.approx(b, abs=1e-12)
    assert d.dropped_value == pytest.approx(dropped, abs=1e-12)


@pytest.mark.parametrize("q", [0.95, 0.9, 0.8, 0.5])
def test_alpha_dropout_keeps_zero_one_by_monte_carlo(q):
    rng = np.random.default_rng(11)
    x = selu_forward(rng.standard_normal(1_000_000), ALPHA_01, LAMBDA_01)
    d = alpha_dropout_params(1.0 - q)
    keep = rng.random(x.shape) < q
    y = d.a * np.where(keep, x, d.alpha_prime) + d.b
    assert abs(y.mean()) < 0.002 and abs(y.var() - 1.0) < 0.0015
    inverted = np.where(keep, x, 0.0) / q
    assert inverted.var() == pytest.approx(1.0 / q, rel=0.01)


@pytest.mark.parametrize("mu, nu, omega, rate", [(0.0, 4.0, 0.0, 0.1), (-0.1, 2.0, 1.0, 0.05), (0.2, 0.8, 0.0, 0.2)])
def test_alpha_dropout_keeps_any_fixed_point(mu, nu, omega, rate):
    """Exact moments: kept units a*x + b with x ~ selu(N(mu*omega, nu)), dropped ones a*alpha' + b."""
    p = selu_params(mu, nu, omega)
    d = p.dropout(rate)
    q = 1.0 - rate
    mean = q * (d.a * mu + d.b) + (1 - q) * d.dropped_value
    second = q * (d.a**2 * (nu + mu**2) + 2 * d.a * d.b * mu + d.b**2) + (1 - q) * d.dropped_value**2
    assert mean == pytest.approx(mu, abs=1e-12)
    assert second - mean**2 == pytest.approx(nu, abs=1e-12)
    assert d.alpha_prime == pytest.approx(-p.lam * p.alpha, rel=1e-15) == p.alpha_prime
    assert math.isfinite(d.a)

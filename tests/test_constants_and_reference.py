"""SELU and alpha-dropout values against docs/MATH.md sections 1 and 6, and the reference ops' own properties."""

import math

import numpy as np
import pytest

from backend_cases import dropout_mask
from minisnn import reference as ref
from minisnn.constants import ALPHA_01, LAMBDA_01, LAMBDA_ALPHA_01, alpha_dropout_params, check_dropout_rate


def test_constants_match_the_sheet():
    assert ALPHA_01 == 1.6732632423543772
    assert LAMBDA_01 == 1.0507009873554805
    assert LAMBDA_01 * ALPHA_01 == pytest.approx(LAMBDA_ALPHA_01, rel=1e-15)
    # alpha_01 in closed form (paper Eq. 14).
    closed = -math.sqrt(2 / math.pi) / (math.erfc(1 / math.sqrt(2)) * math.exp(0.5) - 1)
    assert closed == pytest.approx(ALPHA_01, rel=1e-15)


def test_selu_values_on_both_branches():
    y = ref.selu_forward(np.array([1.0, -1.0, -50.0, 0.0, 100.0]), ALPHA_01, LAMBDA_01)
    np.testing.assert_allclose(y[:3], [1.0507009873554805, -1.1113307378125625, -1.7580993408473766], rtol=1e-15)
    assert y[3] == 0.0 and y[4] == pytest.approx(100 * LAMBDA_01, rel=1e-15)


def test_selu_float32_large_inputs_do_not_overflow():
    with np.errstate(over="raise", invalid="raise"):
        y = ref.selu_forward(np.array([100.0, 1e30, -1e30], dtype=np.float32), ALPHA_01, LAMBDA_01)
    assert np.isfinite(y).all() and y.dtype == np.float32


def test_selu_backward_slopes_and_the_kink_convention():
    x = np.array([2.0, -0.5, 0.0])
    y = ref.selu_forward(x, ALPHA_01, LAMBDA_01)
    dx = ref.selu_backward(np.ones(3), y, ALPHA_01, LAMBDA_01)
    np.testing.assert_allclose(dx, [LAMBDA_01, LAMBDA_ALPHA_01 * math.exp(-0.5), LAMBDA_ALPHA_01], rtol=1e-15)


@pytest.mark.parametrize("q, a, b, dropped", [
    (0.95, 0.954844476005, 0.083935572194, -1.594775871682),
    (0.90, 0.921284516150, 0.161970970058, -1.457738730518),
    (0.80, 0.878903583444, 0.309039962144, -1.236159848576),
    (0.50, 0.886404894666, 0.779193930518, -0.779193930518),
])
def test_alpha_dropout_parameters_match_the_sheet(q, a, b, dropped):
    p = alpha_dropout_params(1 - q)
    assert p.a == pytest.approx(a, abs=1e-12)
    assert p.b == pytest.approx(b, abs=1e-12)
    assert p.dropped_value == pytest.approx(dropped, abs=1e-12)


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, float("nan")])
def test_bad_dropout_rates_are_rejected(rate):
    with pytest.raises(ValueError, match="dropout rate must lie in"):
        check_dropout_rate(rate)
    with pytest.raises(ValueError, match="dropout rate"):
        alpha_dropout_params(rate)


def _mask(rate, seed=0, step=0, per_feature=False):
    return dropout_mask("per_feature" if per_feature else "element", rate, seed, step)


@pytest.mark.parametrize("rate", [0.05, 0.10, 0.20, 0.50])
def test_alpha_dropout_keeps_zero_mean_unit_variance(rate):
    x = ref.selu_forward(np.random.default_rng(7).standard_normal(10**6), ALPHA_01, LAMBDA_01)
    y = ref.alpha_dropout_forward(x, _mask(rate, seed=3))
    assert abs(y.mean()) < 0.005 and abs(y.var() - 1) < 0.005
    # Standard inverted dropout inflates the variance to about 1/q instead.
    keep = _mask(rate, seed=3).keep(x.shape)
    assert np.var(x * keep / (1 - rate)) == pytest.approx(1 / (1 - rate), rel=0.02)


@pytest.mark.parametrize("rate", [0.05, 0.20, 0.50])
def test_per_feature_alpha_dropout_keeps_one_decision_per_column_and_the_moments(rate):
    """One keep decision per feature, shared by every row; about q of the features kept; over
    many features the output still has mean 0 and variance 1."""
    x = ref.selu_forward(np.random.default_rng(8).standard_normal((200, 5000)), ALPHA_01, LAMBDA_01)  # (N, D)
    mask = _mask(rate, seed=3, per_feature=True)
    keep = mask.keep(x.shape)
    assert (keep == keep[:1]).all()  # the same decision down every column
    assert keep[0].mean() == pytest.approx(1 - rate, abs=4 * np.sqrt(rate * (1 - rate) / x.shape[1]))
    np.testing.assert_array_equal(keep[0], _mask(rate, seed=3).keep((x.shape[1],)))  # column j: element j's decision
    y = ref.alpha_dropout_forward(x, mask)
    assert abs(y.mean()) < 0.01 and abs(y.var() - 1) < 0.01


def test_alpha_dropout_backward_passes_scaled_gradient_only_where_kept():
    mask = _mask(0.2, seed=1, step=5)
    dy = np.random.default_rng(0).standard_normal((50, 40))
    dx = ref.alpha_dropout_backward(dy, mask)
    keep = mask.keep(dy.shape)
    np.testing.assert_array_equal(dx[~keep], 0)
    np.testing.assert_allclose(dx[keep], mask.scale * dy[keep])


@pytest.mark.parametrize("per_feature", [False, True])
def test_fused_bias_selu_dropout_backward_matches_the_chain_rule(per_feature):
    rng = np.random.default_rng(2)
    z, b, dy = rng.standard_normal((30, 20)), rng.standard_normal(20), rng.standard_normal((30, 20))
    mask = _mask(0.1, seed=4, per_feature=per_feature)
    y = ref.bias_selu_dropout_forward(z, b, mask, ALPHA_01, LAMBDA_01)
    dz, db = ref.bias_selu_dropout_backward(dy, y, mask, ALPHA_01, LAMBDA_01)
    s = ref.selu_forward(z + b, ALPHA_01, LAMBDA_01)
    np.testing.assert_allclose(y, ref.alpha_dropout_forward(s, mask), rtol=1e-15, atol=1e-15)
    chain = ref.selu_backward(ref.alpha_dropout_backward(dy, mask), s, ALPHA_01, LAMBDA_01)
    np.testing.assert_allclose(dz, chain, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(db, chain.sum(0), rtol=1e-12, atol=1e-13)


def test_softmax_cross_entropy_is_stable_and_correct():
    logits = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    loss, probs = ref.softmax_cross_entropy_forward(logits, np.array([0, 2]))
    expected_row2 = -(3.0 - math.log(math.exp(1) + math.exp(2) + math.exp(3)))
    assert loss == pytest.approx((0.0 + expected_row2) / 2, rel=1e-14)
    np.testing.assert_allclose(probs.sum(1), 1.0)
    d = ref.softmax_cross_entropy_backward(probs, np.array([0, 2]))
    np.testing.assert_allclose(d.sum(1), 0.0, atol=1e-15)


def test_sgd_reference_momentum_and_nesterov_in_place():
    p, g, v = np.array([1.0]), np.array([0.5]), np.array([0.2])
    assert ref.sgd_update(p, g, v, lr=0.1, momentum=0.9, weight_decay=0.1) is None
    # g' = 0.5 + 0.1 = 0.6; v = 0.18 + 0.6 = 0.78; p = 1 - 0.078
    assert v[0] == pytest.approx(0.78) and p[0] == pytest.approx(0.922)
    p, v = np.array([1.0]), np.array([0.2])
    ref.sgd_update(p, g, v, lr=0.1, momentum=0.9, nesterov=True)
    # v = 0.18 + 0.5 = 0.68; step = 0.5 + 0.9*0.68 = 1.112
    assert v[0] == pytest.approx(0.68) and p[0] == pytest.approx(1 - 0.1112)
    assert g[0] == 0.5  # the gradient is not written

"""The theory against the engine: g predicts a real LeCun layer, and a (0, 4) network keeps variance 4."""

import math
import warnings

import numpy as np
import pytest

pytest.importorskip("scipy")

from minisnn.backends import get_backend
from minisnn.layers import Linear, LinearSELU
from minisnn.model import Sequential
from minisnn.monitor import ActivationMonitor, DriftWarning
from minisnn.theory import iterate, moment_map, selu_params


@pytest.mark.parametrize("mu, nu", [(0.0, 1.0), (0.5, 1.5)])
def test_g_predicts_a_1000_unit_lecun_layer_on_1e5_samples(mu, nu):
    be = get_backend("numpy", dtype="float32")
    n_in, n_units, n_samples, chunk = 64, 1000, 100_000, 10_000
    layer = LinearSELU(n_in, n_units, be, seed=5)
    W = be.to_numpy(layer.params["W"]).astype(np.float64)  # (n_in, n_units)
    omega, tau = W.sum(axis=0), (W * W).sum(axis=0)  # (n_units,) each
    rng = np.random.default_rng(1)
    total = np.zeros(n_units)
    total_sq = np.zeros(n_units)
    for _ in range(n_samples // chunk):
        x = be.asarray(rng.normal(mu, math.sqrt(nu), size=(chunk, n_in)))  # (chunk, n_in)
        y = be.to_numpy(layer.forward(x, train=False))  # (chunk, n_units)
        total += y.sum(axis=0, dtype=np.float64)
        total_sq += np.square(y).sum(axis=0, dtype=np.float64)
    unit_mean = total / n_samples
    unit_var = total_sq / n_samples - unit_mean**2
    predicted_mean, predicted_var = moment_map(mu, nu, omega, tau)  # (n_units,) each
    # The layer's moments (averaged over its units) within 0.01 of g; every unit within 6 standard errors.
    assert abs(unit_mean.mean() - predicted_mean.mean()) < 0.01
    assert abs(unit_var.mean() - predicted_var.mean()) < 0.01
    assert np.all(np.abs(unit_mean - predicted_mean) < 6 * np.sqrt(predicted_var / n_samples))
    if mu == 0.0:  # g does not depend on omega: the layer matches g at (omega, tau) = (0, 1)
        ideal_mean, ideal_var = moment_map(mu, nu, 0.0, 1.0)
        assert abs(unit_mean.mean() - ideal_mean) < 0.01 and abs(unit_var.mean() - ideal_var) < 0.01


def _zero_four_network(be, dropout):
    p = selu_params(0.0, 4.0)
    layers = [LinearSELU(256, 256, be, dropout=dropout, alpha=p.alpha, lam=p.lam, mu=0.0, nu=4.0, seed=s)
              for s in range(32)]
    return Sequential(layers + [Linear(256, 4, be, seed=99)], be, 256)


@pytest.mark.parametrize("train, dropout", [(False, 0.0), (True, 0.05)])
def test_a_zero_four_network_keeps_variance_four_over_32_layers(train, dropout):
    be = get_backend("numpy", dtype="float32")
    model = _zero_four_network(be, dropout)
    model.monitor = ActivationMonitor(fixed_point=(0.0, 4.0), mean_tolerance=0.2, variance_factor=1.15)
    x = be.asarray(np.random.default_rng(0).normal(0.0, 2.0, size=(2048, 256)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DriftWarning)
        model.forward(x, train=train)
    h = model.monitor.history()
    variances, means = h["variance"][0, :32], h["mean"][0, :32]  # (32,) each
    assert np.all(np.abs(variances - 4.0) < 0.25) and np.all(np.abs(means) < 0.1)


def test_a_zero_four_network_pulls_unit_variance_up_to_four_as_g_predicts():
    be = get_backend("numpy", dtype="float32")
    model = _zero_four_network(be, 0.0)
    model.monitor = ActivationMonitor(fixed_point=(0.0, 4.0), warn=False)
    model.forward(be.asarray(np.random.default_rng(0).standard_normal((2048, 256))), train=False)
    variances = model.monitor.history()["variance"][0, :32]  # (32,)
    p = selu_params(0.0, 4.0)
    predicted = iterate(0.0, 1.0, 32, alpha=p.alpha, lam=p.lam)[1:, 1]  # (32,)
    np.testing.assert_allclose(variances, predicted, atol=0.2)
    assert variances[0] < 2.0 and abs(variances[-1] - 4.0) < 0.25
    # The default band is variance in [2, 8]: the layers below it on the way up are reported, the rest not.
    outside = [i for i, v in enumerate(variances) if not 2.0 <= v <= 8.0]
    assert outside and [e.index for e in model.monitor.drift_events] == outside

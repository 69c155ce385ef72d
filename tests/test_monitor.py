"""ActivationMonitor: recorded statistics against direct computation, cadence, drift warnings, table."""

import math
import warnings

import numpy as np
import pytest

from minisnn.backends import get_backend
from minisnn.losses import SoftmaxCrossEntropy
from minisnn.model import mlp
from minisnn.monitor import ActivationMonitor, DriftWarning


def _data(be, n=512, d=32, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return be.asarray(scale * rng.standard_normal((n, d))), be.asarray(rng.integers(0, 4, n))


def _layer_outputs(model, x, train):
    """Each layer's output (copied, float64) by running the layers one by one without the monitor."""
    outputs = []
    for layer in model.layers:
        x = layer.forward(x, train)
        outputs.append(np.array(model.backend.to_numpy(x), dtype=np.float64))
    return outputs


def test_a_model_has_no_monitor_by_default():
    assert mlp(8, 2, depth=1, width=8, backend=get_backend("numpy")).monitor is None


@pytest.mark.parametrize("fused", [True, False])
def test_forward_statistics_match_direct_computation(fused):
    be = get_backend("numpy", dtype="float64")
    model = mlp(32, 4, depth=4, width=64, dropout=0.0, fused=fused, backend=be, seed=1)
    x, _ = _data(be, scale=2.0)
    expected = _layer_outputs(model, x, train=False)
    model.monitor = ActivationMonitor(warn=False)
    model.forward(x, train=False)
    h = model.monitor.history()
    assert h["mean"].shape == (1, len(model.layers))
    np.testing.assert_allclose(h["mean"][0], [y.mean() for y in expected], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h["variance"][0], [y.var() for y in expected], rtol=1e-12)
    # Saturation on SELU outputs: the units whose input is at or below -3; NaN for other layers.
    pre_activations = [expected[i - 1] for i, layer in enumerate(model.layers) if type(layer).__name__ == "SELU"]
    for i, layer in enumerate(model.layers):
        name = type(layer).__name__
        if name == "LinearSELU":
            z = (expected[i - 1] if i else be.to_numpy(x)) @ be.to_numpy(layer.params["W"]) + be.to_numpy(layer.params["b"])
            assert h["saturation"][0, i] == pytest.approx(np.mean(z <= -3.0), abs=1e-12)
        elif name == "SELU":
            assert h["saturation"][0, i] == pytest.approx(np.mean(expected[i - 1] <= -3.0), abs=1e-12)
        else:
            assert math.isnan(h["saturation"][0, i])
    assert fused or pre_activations
    assert np.all(h["saturation"][0][~np.isnan(h["saturation"][0])] > 0)  # scale 2 inputs reach the region


def test_saturation_with_alpha_dropout_counts_kept_units_only():
    be = get_backend("numpy", dtype="float64")
    model = mlp(32, 4, depth=1, width=4096, dropout=0.1, backend=be, seed=2)
    layer = model.layers[0]
    x, _ = _data(be, n=256, scale=2.0)
    z = be.to_numpy(x) @ be.to_numpy(layer.params["W"])  # (256, 4096), bias 0
    model.monitor = ActivationMonitor(warn=False)
    model.forward(x, train=True)
    model.forward(x, train=False)
    saturation = model.monitor.history()["saturation"][:, 0]  # (2,)
    assert saturation[1] == pytest.approx(np.mean(z <= -3.0), abs=1e-12)
    # Training pass: a random 90% of the units are kept; their saturated share is the same in expectation.
    assert saturation[0] == pytest.approx(np.mean(z <= -3.0), abs=0.01)
    assert saturation[0] != saturation[1]


def test_gradient_variance_matches_the_backward():
    be = get_backend("numpy", dtype="float64")
    model = mlp(32, 4, depth=3, width=64, dropout=0.0, backend=be, seed=3)
    x, labels = _data(be)
    loss = SoftmaxCrossEntropy(be)
    loss.forward(model.forward(x), labels)
    expected = {}
    dy = loss.backward()
    for i in range(len(model.layers) - 1, -1, -1):
        dy = model.layers[i].backward(dy)
        if dy is not None:
            expected[i] = float(np.var(dy))
    model.monitor = ActivationMonitor(warn=False)
    loss.forward(model.forward(x), labels)
    model.backward(loss.backward())
    grad = model.monitor.history()["grad_variance"][0]
    assert math.isnan(grad[0])  # the first layer computes no dx
    np.testing.assert_allclose(grad[1:], [expected[i] for i in range(1, len(model.layers))], rtol=1e-12)


def test_records_every_n_forward_passes_with_their_backward():
    be = get_backend("numpy")
    model = mlp(32, 4, depth=2, width=32, backend=be)
    x, labels = _data(be, n=64)
    loss = SoftmaxCrossEntropy(be)
    model.monitor = ActivationMonitor(every=3, warn=False)
    for _ in range(7):
        loss.forward(model.forward(x), labels)
        model.backward(loss.backward())
    h = model.monitor.history()
    np.testing.assert_array_equal(h["step"], [1, 4, 7])
    assert h["variance"].shape == h["grad_variance"].shape == (3, 3)
    assert not np.isnan(h["grad_variance"][:, 1:]).any()
    model.monitor.enabled = False
    model.forward(x)
    assert model.monitor.passes == 7 and len(model.monitor.records) == 3
    model.monitor.reset()
    assert model.monitor.history()["step"].shape == (0,) and model.monitor.table() == "no forward pass recorded yet"


def test_drift_warns_when_a_layer_leaves_the_band_and_again_only_after_returning():
    be = get_backend("numpy")
    model = mlp(32, 4, depth=2, width=256, dropout=0.0, backend=be)
    monitor = ActivationMonitor(variance_factor=1.5)
    model.monitor = monitor
    inside, _ = _data(be, scale=1.0)
    outside, _ = _data(be, scale=3.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.forward(inside, train=False)
        assert not caught
        model.forward(outside, train=False)
        model.forward(outside, train=False)
        first = [str(w.message) for w in caught if issubclass(w.category, DriftWarning)]
        model.forward(inside, train=False)
        model.forward(outside, train=False)
        total = [w for w in caught if issubclass(w.category, DriftWarning)]
    assert len(first) == 2 and "layer 0 (LinearSELU) left the band" in first[0] and "forward pass 2" in first[0]
    assert len(total) == 4
    assert [(e.step, e.index) for e in monitor.drift_events] == [(2, 0), (2, 1), (5, 0), (5, 1)]
    assert monitor.drift_events[0].variance > 1.5


def test_drift_events_are_kept_when_warnings_are_off():
    be = get_backend("numpy")
    model = mlp(32, 4, depth=1, width=64, dropout=0.0, backend=be)
    model.monitor = ActivationMonitor(warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.forward(_data(be, scale=4.0)[0], train=False)
    assert [e.index for e in model.monitor.drift_events] == [0]


def test_table_lists_every_layer():
    be = get_backend("numpy")
    model = mlp(32, 4, depth=2, width=32, fused=False, dropout=0.05, backend=be)
    model.monitor = ActivationMonitor(warn=False)
    model.forward(_data(be)[0])
    text = model.monitor.table()
    lines = text.splitlines()
    assert lines[0] == "forward pass 1" and len(lines) == 3 + len(model.layers)
    assert [line.split()[1] for line in lines[3:]] == [type(layer).__name__ for layer in model.layers]
    assert "%" in lines[4] and lines[3].split()[4] == "-"


@pytest.mark.parametrize("kwargs, message", [
    ({"every": 0}, "every must be a positive"),
    ({"fixed_point": (0.0, 0.0)}, "variance must be positive"),
    ({"variance_factor": 1.0}, "variance_factor > 1"),
    ({"mean_tolerance": 0.0}, "mean_tolerance > 0"),
    ({"saturation_input": 1.0}, "saturation_input must be negative"),
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ActivationMonitor(**kwargs)

"""The self-normalization demonstration: measurements, table, plot and the `minisnn selfnorm` command."""

import numpy as np
import pytest

pytest.importorskip("scipy")

from minisnn import selfnorm
from minisnn.backends import get_backend
from minisnn.cli import main
from minisnn.data import LabeledData, make_synthetic
from minisnn.model import mlp
from minisnn.monitor import ActivationMonitor
from minisnn.selfnorm import format_selfnorm, hidden_layer_statistics, plot_selfnorm, run_selfnorm
from minisnn.train import TrainingDiverged


def _small_data(seed=0):
    return make_synthetic(n_train=512, n_test=0, n_features=16, seed=seed)


@pytest.fixture(scope="module")
def result():
    return run_selfnorm(depth=12, width=128, data=_small_data(), n_probe=512, epochs=1, batch_size=64)


def test_selu_stays_at_the_fixed_point_while_tanh_fades(result):
    assert set(result.statistics) == {(a, p) for a in selfnorm.ACTIVATIONS for p in selfnorm.PHASES}
    selu = result.statistics[("selu", "init")]
    assert selu.means.shape == selu.variances.shape == (12,)
    np.testing.assert_allclose(selu.variances, result.predicted[1:, 1], atol=0.2)
    np.testing.assert_allclose(selu.means, result.predicted[1:, 0], atol=0.1)
    tanh = result.statistics[("tanh", "init")].variances
    assert np.all(np.diff(tanh) < 0) and tanh[-1] < 0.3 * tanh[0]
    relu_means = result.statistics[("relu", "init")].means
    assert np.all(relu_means > 0.2)  # ReLU outputs are never centred
    assert result.predicted.shape == (13, 2)
    mu0, nu0 = result.input_moments
    np.testing.assert_allclose(result.predicted[0], [mu0, nu0])


def test_training_changes_the_weights_and_the_statistics(result):
    for activation in selfnorm.ACTIVATIONS:
        before = result.statistics[(activation, "init")].variances
        after = result.statistics[(activation, "trained")].variances
        assert np.all(np.isfinite(after)) and not np.array_equal(before, after)


def test_statistics_match_a_manual_pass_and_restore_the_monitor():
    be = get_backend("numpy", dtype="float64")
    model = mlp(16, 4, depth=3, width=32, dropout=0.0, activation="elu", backend=be)
    existing = ActivationMonitor()
    model.monitor = existing
    x = be.asarray(np.random.default_rng(0).standard_normal((64, 16)))
    means, variances = hidden_layer_statistics(model, x)
    assert model.monitor is existing and existing.passes == 0
    h = x
    expected = []
    for layer in model.layers:
        h = layer.forward(h, train=False)
        if type(layer).__name__ == "ELU":
            expected.append((h.mean(), h.var()))
    np.testing.assert_allclose(np.column_stack([means, variances]), expected, rtol=1e-12)


def test_a_given_data_set_is_standardized_first():
    rng = np.random.default_rng(1)
    data = LabeledData(name="shifted", x_train=5.0 + 10.0 * rng.standard_normal((256, 8)),
                       y_train=rng.integers(0, 3, 256), n_classes=3)
    r = run_selfnorm(depth=2, width=16, activations=("selu",), data=data, n_probe=256, epochs=0)
    assert r.input_moments == pytest.approx((0.0, 1.0), abs=1e-9)
    assert r.data_name == "shifted" and set(r.statistics) == {("selu", "init")}


def test_divergence_is_reported_not_raised(monkeypatch):
    def diverging_fit(*args, **kwargs):
        raise TrainingDiverged("loss became nan at step 3")

    monkeypatch.setattr(selfnorm, "fit", diverging_fit)
    r = run_selfnorm(depth=2, width=16, activations=("relu",), data=_small_data(), n_probe=32, epochs=1)
    trained = r.statistics[("relu", "trained")]
    assert np.all(np.isnan(trained.variances)) and "loss became nan" in trained.note
    assert "relu: loss became nan at step 3" in format_selfnorm(r)


@pytest.mark.parametrize("kwargs, message", [
    ({"activations": ("selu", "gelu")}, r"unknown: \['gelu'\]"),
    ({"activations": ()}, "choose at least one network"),
    ({"activations": (), "methods": ("snn", "dense")}, r"unknown: \['dense'\]"),
    ({"depth": 0}, "depth >= 1"),
    ({"n_probe": 1}, "n_probe >= 2"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_selfnorm(**{"data": _small_data(), **kwargs})


def test_table_has_a_row_per_layer_and_a_column_per_network(result):
    text = format_selfnorm(result)
    assert "after initialization" in text and "after training" in text
    header = next(line for line in text.splitlines() if line.lstrip().startswith("layer"))
    assert header.split()[1:] == ["g", "(SELU)", "selu", "relu", "tanh", "elu"]
    rows = [line for line in text.splitlines() if line.startswith("   12  ")]
    assert len(rows) == 2 and len(rows[0].split()) == 1 + 2 * 5


def test_plot_renders_a_png(result, tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "selfnorm.png"
    plot_selfnorm(result, target)
    payload = target.read_bytes()
    assert payload[:8] == b"\x89PNG\r\n\x1a\n" and len(payload) > 20_000
    assert [p.name for p in tmp_path.iterdir()] == ["selfnorm.png"]  # no temporary file left


def test_command_prints_the_table_and_writes_the_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    target = tmp_path / "out.png"
    code = main(["selfnorm", "--depth", "3", "--width", "16", "--samples", "64", "--epochs", "0",
                 "--activations", "selu,tanh", "--plot", str(target)])
    out = capsys.readouterr().out
    assert code == 0 and target.read_bytes()[:4] == b"\x89PNG"
    assert "3 hidden layers of width 16" in out and "after training" not in out and f"wrote {target}" in out


def test_command_rejects_a_plot_name_that_is_not_png(tmp_path, capsys):
    assert main(["selfnorm", "--depth", "2", "--plot", str(tmp_path / "out.pdf")]) == 2
    assert "--plot writes a PNG file" in capsys.readouterr().err


def test_methods_side_by_side_show_what_normalization_layers_do():
    r = run_selfnorm(depth=6, width=64, activations=(), methods=("snn", "msra", "batchnorm", "layernorm", "resnet"),
                     data=_small_data(), n_probe=512, epochs=1, batch_size=64)
    assert {n for n, _ in r.statistics} == {"snn", "msra", "batchnorm", "layernorm", "resnet"}
    snn, msra = r.statistics[("snn", "init")], r.statistics[("msra", "init")]
    np.testing.assert_allclose(snn.variances, 1.0, atol=0.1)
    assert np.all(msra.means > 0.2)  # ReLU outputs are never centred
    for method in ("batchnorm", "layernorm"):  # normalized by the layer itself, in every phase
        for phase in selfnorm.PHASES:
            stats = r.statistics[(method, phase)]
            assert stats.means.shape == (6,)
            np.testing.assert_allclose(stats.means, 0.0, atol=0.05 if phase == "init" else 0.2)
            np.testing.assert_allclose(stats.variances, 1.0, atol=0.05 if phase == "init" else 0.2)
    resnet = r.statistics[("resnet", "init")]
    assert resnet.means.shape == (7,)  # the input layer, then one row per block
    assert np.all(np.diff(resnet.variances[1:]) > 0)  # the residual sums grow without a final normalization
    text = format_selfnorm(r)
    assert text.splitlines()[3].split()[1:] == ["g", "(SELU)", "snn", "msra", "batchnorm", "layernorm", "resnet"]
    assert [line.split()[0] for line in text.splitlines()[4:11]] == [str(k) for k in range(7)]


def test_measuring_leaves_the_running_statistics_as_they_were():
    be = get_backend("numpy", dtype="float64")
    from minisnn.methods import build_model

    model = build_model("batchnorm", 16, 4, depth=2, width=8, backend=be)
    before = model.state_arrays()
    hidden_layer_statistics(model, be.asarray(np.random.default_rng(0).standard_normal((64, 16)) * 3 + 1))
    after = model.state_arrays()
    assert all(np.array_equal(before[name], after[name]) for name in before)


def test_command_compares_methods(capsys):
    code = main(["selfnorm", "--depth", "3", "--width", "16", "--samples", "64", "--epochs", "0",
                 "--methods", "snn,batchnorm"])
    out = capsys.readouterr().out
    assert code == 0
    assert next(line for line in out.splitlines() if line.lstrip().startswith("layer")).split()[3:] == \
        ["snn", "batchnorm"]

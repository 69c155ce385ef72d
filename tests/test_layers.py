"""Every layer: float64 gradient checks, shapes, buffers, eval behaviour, fused == unfused."""

import numpy as np
import pytest

from minisnn import get_backend
from minisnn.constants import ALPHA_01, LAMBDA_01
from minisnn.gradcheck import check_layer, check_model, dodge_kinks, max_relative_error
from minisnn.layers import (ELU, LAYER_TYPES, SELU, AlphaDropout, Dropout, Identity, Layer, Linear, LinearSELU,
                            ReLU, Sigmoid, Tanh, layer_from_config)
from minisnn.blocks import Highway, ResidualBlock
from minisnn.losses import SoftmaxCrossEntropy
from minisnn.model import Sequential, mlp
from minisnn.normalization import BatchNorm1d, LayerNorm, WeightNormLinear

TOLERANCE = 1e-6


@pytest.fixture
def be64():
    return get_backend("numpy", dtype="float64")


def _inputs(shape=(6, 9), seed=0):
    return dodge_kinks(np.random.default_rng(seed).standard_normal(shape) * 1.5)


def _nested_sequential(be):
    """A Sequential as a parent model sees it: its first layer then computes dx too."""
    inner = Sequential([Linear(9, 7, be, seed=2), ReLU(be), LinearSELU(7, 5, be, seed=3)], be, 9)
    assert inner.layers[0].needs_input_grad is False
    inner.needs_input_grad = True
    assert inner.layers[0].needs_input_grad is True
    return inner


LAYER_FACTORIES = {
    "Linear": lambda be: Linear(9, 5, be, seed=1),
    "LinearSELU": lambda be: LinearSELU(9, 5, be, seed=1),
    "LinearSELU+alpha dropout": lambda be: LinearSELU(9, 5, be, dropout=0.2, seed=1),
    "LinearSELU (0, 4) params": lambda be: LinearSELU(9, 5, be, dropout=0.1, alpha=2.404005338216483,
                                                      lam=1.070232274447111, nu=4.0, seed=1),
    "SELU": lambda be: SELU(be),
    "AlphaDropout": lambda be: AlphaDropout(0.2, be, seed=3),
    "Dropout": lambda be: Dropout(0.3, be, seed=3),
    "ReLU": lambda be: ReLU(be),
    "ELU": lambda be: ELU(be, alpha=1.3),
    "Tanh": lambda be: Tanh(be),
    "Sigmoid": lambda be: Sigmoid(be),
    "Identity": lambda be: Identity(be),
    "AlphaDropout feature-wise": lambda be: AlphaDropout(0.3, be, seed=3, feature_wise=True),
    "LinearSELU+feature-wise dropout": lambda be: LinearSELU(9, 5, be, dropout=0.3, seed=1, feature_wise=True),
    "Sequential nested in a model": lambda be: _nested_sequential(be),
    "BatchNorm1d": lambda be: BatchNorm1d(9, be, momentum=0.3),
    "LayerNorm": lambda be: LayerNorm(9, be, eps=1e-3),
    "WeightNormLinear": lambda be: WeightNormLinear(9, 5, be, seed=1),
    "Highway": lambda be: Highway(9, be, seed=2),
    "Highway tanh": lambda be: Highway(9, be, activation="tanh", gate_bias=0.5, seed=2),
    "ResidualBlock": lambda be: ResidualBlock(9, be, seed=3),
    "ResidualBlock diavolo": lambda be: ResidualBlock(9, be, bottleneck=0.25, seed=3),
}


def _with_moved_statistics(layer, be):
    """The layer after one training forward on shifted, scaled data (running statistics away from
    their start, parameters unchanged), so that evaluation differs from a fresh layer's."""
    layer.forward(be.asarray(_inputs(seed=7) * 3.0 + 2.0), train=True)
    layer.backward(be.asarray(np.ones((6, layer.forward(be.asarray(_inputs()), train=False).shape[1]))))
    return layer


@pytest.mark.parametrize("name", LAYER_FACTORIES)
def test_layer_gradients(be64, name):
    layer = LAYER_FACTORIES[name](be64)
    checks = check_layer(layer, _inputs(), rng=np.random.default_rng(5))
    assert checks and max_relative_error(checks) < TOLERANCE, [c for c in checks if c.relative_error >= TOLERANCE]
    names = {c.array for c in checks}
    assert names == {"x", *(p.name for p in layer.named_parameters())}


@pytest.mark.parametrize("name", LAYER_FACTORIES)
def test_layer_gradients_in_evaluation_mode(be64, name):
    """Backward after an evaluation forward differentiates the evaluation function (running
    statistics, no dropout): what fine-tuning with frozen normalization layers needs."""
    layer = _with_moved_statistics(LAYER_FACTORIES[name](be64), be64)
    checks = check_layer(layer, _inputs(seed=1), rng=np.random.default_rng(6), train=False)
    assert checks and max_relative_error(checks) < TOLERANCE, [c for c in checks if c.relative_error >= TOLERANCE]


def test_gradcheck_detects_a_wrong_backward(be64):
    layer = SELU(be64)
    layer.backward = lambda dy: dy * 1.01  # a subtly wrong derivative
    assert max_relative_error(check_layer(layer, _inputs())) > 1e-3


def test_first_layer_skips_the_input_gradient(be64):
    model = mlp(9, 3, depth=2, width=8, backend=be64)
    assert not model.layers[0].needs_input_grad and model.layers[1].needs_input_grad
    x = be64.asarray(_inputs())
    model.forward(x)
    assert model.backward(be64.asarray(np.ones((6, 3)))) is None


@pytest.mark.parametrize("activation, fused", [("selu", True), ("selu", False), ("relu", False), ("elu", False),
                                               ("tanh", False)])
def test_whole_model_gradients(be64, activation, fused):
    model = mlp(9, 4, depth=3, width=7, dropout=0.1, activation=activation, fused=fused, backend=be64, seed=2)
    labels = be64.asarray(np.array([0, 1, 2, 3, 1, 0]))
    checks = check_model(model, SoftmaxCrossEntropy(be64), _inputs(), labels, rng=np.random.default_rng(1))
    assert max_relative_error(checks) < TOLERANCE


def test_fused_and_unfused_networks_compute_the_same_function(be64):
    fused = mlp(9, 4, depth=3, width=16, dropout=0.1, backend=be64, seed=7)
    plain = mlp(9, 4, depth=3, width=16, dropout=0.1, fused=False, backend=be64, seed=7)
    x = be64.asarray(_inputs((20, 9)))
    for train in (True, False):
        np.testing.assert_allclose(fused.forward(x, train).copy(), plain.forward(x, train), rtol=1e-12, atol=1e-13)
    dy = be64.asarray(np.random.default_rng(0).standard_normal((20, 4)))
    fused.forward(x), plain.forward(x)
    fused.backward(dy), plain.backward(dy)
    fused_grads = [p.grad for p in fused.named_parameters()]
    plain_grads = [p.grad for p in plain.named_parameters()]
    for g1, g2 in zip(fused_grads, plain_grads):
        np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-12)


def test_dropout_layers_are_identity_at_eval_and_fresh_each_step(be64):
    x = be64.asarray(_inputs((50, 40)))
    for layer in (AlphaDropout(0.1, be64, seed=1), Dropout(0.1, be64, seed=1)):
        assert layer.forward(x, train=False) is x
        first = layer.forward(x, train=True).copy()
        second = layer.forward(x, train=True).copy()
        assert not np.array_equal(first, second)
        layer.buffers["step"][...] = 0
        np.testing.assert_array_equal(layer.forward(x, train=True), first)  # replayable from (seed, step)
    np.testing.assert_array_equal(AlphaDropout(0.0, be64).forward(x, train=True), x)


def test_alpha_dropout_layer_statistics_on_selu_activations(be64):
    x = be64.asarray(np.random.default_rng(3).standard_normal((1000, 1000)))
    y = AlphaDropout(0.05, be64, seed=9).forward(SELU(be64).forward(x))
    assert abs(float(y.mean())) < 0.005 and abs(float(y.var()) - 1) < 0.005


@pytest.mark.parametrize("rate", [1.0, 1.2, -0.01])
def test_dropout_rates_outside_the_unit_interval_are_rejected(be64, rate):
    for make in (lambda: AlphaDropout(rate, be64), lambda: Dropout(rate, be64),
                 lambda: LinearSELU(3, 3, be64, dropout=rate), lambda: mlp(3, 2, dropout=rate, backend=be64)):
        with pytest.raises(ValueError, match="dropout rate must lie in \\[0, 1\\)"):
            make()


def test_buffers_are_reused_across_steps_and_grads_preallocated(be64):
    layer = LinearSELU(9, 5, be64, dropout=0.1)
    grad_w = layer.grads["W"]
    y1 = layer.forward(be64.asarray(_inputs()))
    layer.backward(be64.asarray(np.ones((6, 5))))
    y2 = layer.forward(be64.asarray(_inputs(seed=1)))
    layer.backward(be64.asarray(np.ones((6, 5))))
    assert y1 is y2 and layer.grads["W"] is grad_w
    smaller = layer.forward(be64.asarray(_inputs((4, 9))))  # a smaller batch: the first rows, no allocation
    assert smaller.shape == (4, 5) and smaller.flags.c_contiguous and np.shares_memory(smaller, y1)
    larger = layer.forward(be64.asarray(_inputs((8, 9))))  # a larger one: a new array, then reused
    assert larger.shape == (8, 5) and not np.shares_memory(larger, y1)
    assert np.shares_memory(layer.forward(be64.asarray(_inputs((6, 9)))), larger)


def test_every_method_gives_the_same_outputs_whatever_batch_sizes_came_before(be64):
    from minisnn.methods import METHODS, build_model

    x = _inputs((10, 9), seed=3)
    for method in METHODS:
        fresh = build_model(method, 9, 3, depth=2, width=8, backend=be64, seed=1)
        used = build_model(method, 9, 3, depth=2, width=8, backend=be64, seed=1)
        used.forward(be64.asarray(_inputs((16, 9))), train=False)  # the workspaces grow to 16 rows
        np.testing.assert_allclose(used.logits(x, batch_size=4), fresh.logits(x, batch_size=10), rtol=1e-12,
                                   atol=1e-12, err_msg=method)


def test_backward_never_writes_into_dy_and_needs_a_forward(be64):
    for name, factory in LAYER_FACTORIES.items():
        layer = factory(be64)
        x = be64.asarray(_inputs())
        y = layer.forward(x)
        dy = be64.asarray(np.random.default_rng(0).standard_normal(y.shape))
        before = dy.copy()
        layer.backward(dy)
        np.testing.assert_array_equal(dy, before, err_msg=name)
        with pytest.raises(RuntimeError, match="without a forward"):
            layer.backward(dy)


def test_bad_input_shapes_are_named(be64):
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 9\), got \(6, 8\)"):
        Linear(9, 5, be64).forward(be64.asarray(np.zeros((6, 8))))
    with pytest.raises(ValueError, match=r"model expects input of shape \(N, 9\)"):
        mlp(9, 2, depth=1, width=4, backend=be64).predict(np.zeros((3, 4)))


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("value, message", [
    ([[0.0] * 9] * 6, "expects a numpy array, got list"),
    (np.zeros((6, 9), np.int64), "expects float32 input .* got int64"),
    (np.zeros((6, 9), np.float16), "expects float32 input .* got float16"),
    (np.zeros((6, 9), np.float64), "expects float32 input .* got float64"),
])
def test_wrong_input_types_and_dtypes_are_the_same_error_on_every_backend(backend_name, value, message):
    if backend_name == "numba":
        pytest.importorskip("numba")
    be = get_backend(backend_name, dtype="float32")
    for layer in (Linear(9, 5, be), LinearSELU(9, 5, be), BatchNorm1d(9, be), Highway(9, be),
                  mlp(9, 2, depth=1, width=4, backend=be)):
        with pytest.raises(TypeError, match=message):
            layer.forward(value)


def test_layer_configs_round_trip(be64):
    for factory in LAYER_FACTORIES.values():
        layer = factory(be64)
        rebuilt = layer_from_config(layer.config(), be64)
        assert rebuilt.config() == layer.config()
        for key in layer.params:
            np.testing.assert_array_equal(rebuilt.params[key], layer.params[key])
    with pytest.raises(ValueError, match="unknown layer type 'Conv2D'"):
        layer_from_config({"type": "Conv2D"}, be64)
    with pytest.raises(ValueError, match="bad arguments for layer Linear"):
        layer_from_config({"type": "Linear", "d_in": 3}, be64)


def test_selu_parameters_are_configurable(be64):
    layer = SELU(be64, alpha=2.0, lam=1.5)
    y = layer.forward(be64.asarray(np.array([[1.0, -1.0]])), train=False)
    np.testing.assert_allclose(y, [[1.5, 1.5 * 2.0 * np.expm1(-1.0)]])
    assert SELU(be64).alpha == ALPHA_01 and SELU(be64).lam == LAMBDA_01


def test_the_layer_tree_names_parameters_and_buffers_and_rebuilds_from_config(be64):
    inner = Sequential([LinearSELU(4, 6, be64, dropout=0.1, seed=1), AlphaDropout(0.2, be64, seed=2)], be64, 4)
    model = Sequential([inner, Linear(6, 3, be64, seed=3)], be64, 4)
    assert [p.name for p in model.named_parameters()] == ["0.0.W", "0.0.b", "1.W", "1.b"]
    assert [name for name, _ in model.named_buffers()] == ["0.0.step", "0.1.step"]
    model.forward(be64.asarray(_inputs((5, 4))))
    rebuilt = layer_from_config(model.config(), be64)
    assert type(rebuilt) is Sequential and rebuilt.config() == model.config()
    rebuilt.load_state_arrays(model.state_arrays())
    assert [int(b) for _, b in rebuilt.named_buffers()] == [1, 1]
    x = be64.asarray(_inputs((5, 4), seed=1))
    np.testing.assert_array_equal(rebuilt.forward(x), model.forward(x))  # same weights and the same next masks


def test_every_layer_class_registers_itself_by_name():
    assert {"Linear", "LinearSELU", "SELU", "AlphaDropout", "Dropout", "ReLU", "ELU", "Tanh", "Sigmoid", "Identity",
            "Sequential"} <= set(LAYER_TYPES)
    assert all(issubclass(cls, Layer) and not name.startswith("_") for name, cls in LAYER_TYPES.items())


def test_load_state_arrays_checks_everything_before_writing(be64):
    model = mlp(4, 2, depth=1, width=3, dropout=0.1, backend=be64)
    arrays = model.state_arrays()
    before = model.state_arrays()
    for broken, message in [({**arrays, "param/9.W": np.zeros(1)}, r"unexpected \['param/9.W'\]"),
                            ({k: v for k, v in arrays.items() if k != "param/0.b"}, r"missing \['param/0.b'\]"),
                            ({**arrays, "param/1.W": np.zeros((2, 2))}, r"param/1.W has shape \(2, 2\)"),
                            ({**arrays, "param/0.b": np.full(3, np.nan)}, "NaN"),
                            ({**arrays, "buffer/0.step": np.array(-2)}, "counter")]:
        broken["param/0.W"] = np.ones((4, 3))  # would change the model if anything were written early
        with pytest.raises(ValueError, match=message):
            model.load_state_arrays(broken)
        for name, value in model.state_arrays().items():
            np.testing.assert_array_equal(value, before[name])


def test_references_taken_before_building_a_model_stay_the_models_arrays(be64):
    first = Linear(4, 3, be64, seed=1)
    weight, grad = first.params["W"], first.grads["W"]
    model = Sequential([first, Linear(3, 2, be64, seed=2)], be64, 4)
    assert model.named_parameters()[0].value is weight and model.named_parameters()[0].grad is grad
    from minisnn.optim import SGD

    model.forward(be64.asarray(_inputs((5, 4))))
    model.backward(be64.asarray(np.ones((5, 2))))
    before = weight.copy()
    SGD(model, lr=0.1).step()
    np.testing.assert_allclose(weight, before - 0.1 * grad)


def test_feature_wise_alpha_dropout_drops_whole_features_and_keeps_the_moments(be64):
    x = be64.asarray(np.random.default_rng(4).standard_normal((400, 3000)))
    layer = AlphaDropout(0.2, be64, seed=5, feature_wise=True)
    y = layer.forward(SELU(be64).forward(x))
    dropped = np.isclose(y, -ALPHA_01 * LAMBDA_01 * 1.0 * layer.dropout.scale + layer.dropout.shift)
    assert np.all(dropped.all(axis=0) | ~dropped.any(axis=0))  # a feature is dropped in every row or none
    assert abs(dropped.all(axis=0).mean() - 0.2) < 0.03  # 3000 features, rate 0.2: 4 sigma is 0.029
    # Over the features, the mean and variance are kept at the fixed point (0, 1).
    assert abs(float(y.mean())) < 0.02 and abs(float(y.var()) - 1) < 0.03
    fused = LinearSELU(9, 2000, be64, dropout=0.2, seed=6, feature_wise=True)
    out = fused.forward(be64.asarray(_inputs((50, 9))))
    column_dropped = np.all(out == out[0], axis=0)
    assert abs(column_dropped.mean() - 0.2) < 0.04


def test_loading_rejects_negative_or_non_finite_running_statistics(be64):
    model = Sequential([Linear(4, 3, be64), BatchNorm1d(3, be64), Linear(3, 2, be64)], be64, 4)
    good = model.state_arrays()
    for name, value, message in [("buffer/1.running_var", -0.5, "must be non-negative"),
                                 ("buffer/1.running_mean", np.nan, "NaN or infinite")]:
        arrays = dict(good)
        arrays[name] = arrays[name].copy()
        arrays[name][1] = value
        with pytest.raises(ValueError, match=f"{name} .*{message}"):
            model.load_state_arrays(arrays)
        np.testing.assert_array_equal(model.layers[1].buffers["running_var"], 1.0)  # nothing was loaded

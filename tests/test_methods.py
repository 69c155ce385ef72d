"""The seven methods' builders: exact layer sequences, agreement with hand-built networks (untrained
and after SGD steps), whole-model gradient checks, argument checks, conic widths, real data."""

from pathlib import Path

import numpy as np
import pytest

from minisnn import get_backend
from minisnn.blocks import Highway, ResidualBlock
from minisnn.data import read_htru2, read_uci
from minisnn.gradcheck import check_model, dodge_kinks, max_relative_error
from minisnn.layers import Dropout, Linear, LinearSELU, ReLU
from minisnn.losses import SoftmaxCrossEntropy
from minisnn.methods import METHODS, build_model
from minisnn.model import Sequential, layer_widths
from minisnn.normalization import BatchNorm1d, LayerNorm, WeightNormLinear
from minisnn.optim import SGD
from minisnn.tasks import ClassificationTask
from minisnn.train import fit, train_step

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def be64():
    return get_backend("numpy", dtype="float64")


def _hand_built(method, be, mask_seeds, d_in=6, d_out=3, width=8):
    """Two hidden layers of each method, written out layer by layer as its docstring states (the
    weights are then copied in; mask_seeds are the dropout masks' seeds)."""
    if method == "snn":
        layers = [LinearSELU(d_in, width, be, dropout=0.05, seed=mask_seeds[0]),
                  LinearSELU(width, width, be, dropout=0.05, seed=mask_seeds[1])]
    elif method == "msra":
        layers = [Linear(d_in, width, be), ReLU(be), Linear(width, width, be), ReLU(be)]
    elif method == "batchnorm":
        layers = [Linear(d_in, width, be), ReLU(be), BatchNorm1d(width, be),
                  Linear(width, width, be), ReLU(be), BatchNorm1d(width, be)]
    elif method == "layernorm":
        layers = [Linear(d_in, width, be), ReLU(be), LayerNorm(width, be),
                  Linear(width, width, be), ReLU(be), LayerNorm(width, be)]
    elif method == "weightnorm":
        layers = [WeightNormLinear(d_in, width, be), ReLU(be), WeightNormLinear(width, width, be), ReLU(be)]
    elif method == "highway":
        layers = [Linear(d_in, width, be), ReLU(be), Highway(width, be), Highway(width, be)]
    else:
        layers = [Linear(d_in, width, be), BatchNorm1d(width, be), ReLU(be), ResidualBlock(width, be),
                  ResidualBlock(width, be)]
    return Sequential([*layers, Linear(width, d_out, be)], be, d_in)


def _data(n=32, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)


@pytest.mark.parametrize("method", METHODS)
def test_builder_matches_the_network_built_by_hand_untrained_and_after_sgd_steps(be64, method):
    built = build_model(method, 6, 3, depth=2, width=8, backend=be64, seed=4)
    by_hand = _hand_built(method, be64, [layer.get("seed") for layer in built.config()["layers"]])
    assert [p.name for p in built.named_parameters()] == [p.name for p in by_hand.named_parameters()]
    assert built.config()["layers"][0]["type"] == by_hand.config()["layers"][0]["type"]
    by_hand.load_state_arrays(built.state_arrays())
    x, y = _data()
    xb = be64.asarray(x)
    np.testing.assert_array_equal(built.forward(xb, train=False), by_hand.forward(xb, train=False))
    loss_a, loss_b = SoftmaxCrossEntropy(be64), SoftmaxCrossEntropy(be64)
    opt_a, opt_b = SGD(built, lr=0.05, momentum=0.9), SGD(by_hand, lr=0.05, momentum=0.9)
    for step in range(3):
        rows = slice(8 * step, 8 * step + 16)
        a = train_step(built, loss_a, opt_a, xb[rows], be64.asarray(y[rows]))
        b = train_step(by_hand, loss_b, opt_b, xb[rows], be64.asarray(y[rows]))
        assert float(a) == float(b)
    for (name, value), (_, other) in zip(built.state_arrays().items(), by_hand.state_arrays().items()):
        np.testing.assert_array_equal(value, other, err_msg=name)
    assert any(not np.array_equal(v, w) for v, w in zip(
        built.state_arrays().values(), build_model(method, 6, 3, depth=2, width=8, backend=be64, seed=4)
        .state_arrays().values())), "three SGD steps changed nothing"


@pytest.mark.parametrize("method, extra", [(m, {}) for m in METHODS] + [
    ("resnet", {"shape": "diavolo", "bottleneck": 0.25}), ("batchnorm", {"order": "before_activation"}),
    ("layernorm", {"shape": "conic"}), ("msra", {"dropout": 0.2}), ("highway", {"width": None, "dropout": 0.2})])
@pytest.mark.parametrize("train", [True, False])
def test_whole_networks_pass_gradient_checks(be64, method, extra, train):
    model = build_model(method, 6, 3, **{"depth": 2, "width": 8, **extra}, backend=be64, seed=1)
    x, y = _data(n=10)
    if not train:  # running statistics away from their start
        model.forward(be64.asarray(x * 2.0 + 1.0), train=True)
    checks = check_model(model, SoftmaxCrossEntropy(be64), dodge_kinks(x), be64.asarray(y),
                         rng=np.random.default_rng(2), train=train)
    assert max_relative_error(checks) < 1e-6, [c for c in checks if c.relative_error >= 1e-6]


def _layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_each_builder_has_the_documented_layer_sequence(be64):
    seq = {m: _layer_types(build_model(m, 5, 2, depth=2, width=4, dropout=0.1 if m != "resnet" else None,
                                       backend=be64)) for m in METHODS}
    assert seq["snn"] == ["LinearSELU", "LinearSELU", "Linear"]
    assert seq["msra"] == ["Linear", "ReLU", "Dropout"] * 2 + ["Linear"]
    assert seq["batchnorm"] == ["Linear", "ReLU", "BatchNorm1d", "Dropout"] * 2 + ["Linear"]
    assert seq["layernorm"] == ["Linear", "ReLU", "LayerNorm", "Dropout"] * 2 + ["Linear"]
    assert seq["weightnorm"] == ["WeightNormLinear", "ReLU", "Dropout"] * 2 + ["Linear"]
    assert seq["highway"] == ["Linear", "ReLU"] + ["Highway", "Dropout"] * 2 + ["Linear"]
    assert seq["resnet"] == ["Linear", "BatchNorm1d", "ReLU", "ResidualBlock", "ResidualBlock", "Linear"]
    before = build_model("batchnorm", 5, 2, depth=1, width=4, order="before_activation", backend=be64)
    assert _layer_types(before) == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert _layer_types(build_model("highway", 5, 2, depth=1, width=None, backend=be64)) == ["Highway", "Linear"]
    block = build_model("resnet", 5, 2, depth=1, width=8, shape="diavolo", backend=be64).layers[3]
    assert _layer_types(block.children["branch"]) == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d",
                                                      "ReLU", "Linear", "BatchNorm1d"]
    assert block.children["branch"].dims == [8, 8, 8, 8, 4, 4, 4, 8, 8]  # bottleneck 0.5 by default
    summary = build_model("resnet", 5, 2, depth=1, width=8, backend=be64).summary()
    assert "3.branch.3" in summary and "ResidualBlock" in summary


def test_highway_gates_start_mostly_closed_and_the_model_dropout_defaults(be64):
    model = build_model("highway", 5, 2, depth=1, width=None, backend=be64)
    np.testing.assert_array_equal(model.layers[0].children["gate"].params["b"], -2.0)
    assert build_model("snn", 5, 2, depth=1, width=4, backend=be64).layers[0].dropout.rate == 0.05
    assert "Dropout" not in _layer_types(build_model("msra", 5, 2, depth=1, width=4, backend=be64))


@pytest.mark.parametrize("width, depth, n_outputs, expected", [
    (1024, 4, 2, [1024, 215, 45, 10]),
    (256, 3, 10, [256, 87, 29]),
    (8, 2, 2, [8, 4]),  # 8 * 0.5 = 4 exactly
    (9, 2, 1, [9, 3]),
    (100, 3, 99, [100, 100, 99]),  # 99.666 rounds up, 99.331 down
])
def test_conic_widths_shrink_geometrically_and_round_half_up(width, depth, n_outputs, expected):
    assert layer_widths(width, depth, n_outputs, "conic") == expected
    assert layer_widths(width, depth, n_outputs, "rectangular") == [width] * depth


def test_conic_widths_never_widen():
    with pytest.raises(ValueError, match="width 10 must be at least n_outputs 40"):
        layer_widths(10, 2, 40, "conic")


def test_conic_rounding_is_half_up_not_to_even():
    # width 10, depth 1 -> [10]; width 5, n_outputs 1, depth 2: 5 * 0.4472 = 2.236 -> 2.
    assert layer_widths(5, 2, 1, "conic") == [5, 2]
    # ratio 0.5, width 5: 5 * 0.5 = 2.5 rounds half up to 3 (Python's round would give 2).
    assert layer_widths(5, 1, 2, "conic") == [5]
    assert layer_widths(5, 2, 1.25, "conic") == [5, 3]


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "dense"}, "unknown method 'dense'"),
    ({"method": "snn", "bottleneck": 0.5}, "bottleneck applies to resnet"),
    ({"method": "resnet", "bottleneck": 0.5}, "bottleneck applies to resnet with shape 'diavolo'"),
    ({"method": "msra", "order": "before_activation"}, "order applies to batchnorm and layernorm"),
    ({"method": "batchnorm", "order": "sideways"}, "order must be one of"),
    ({"method": "snn", "gate_bias": -1.0}, "gate_bias applies to highway"),
    ({"method": "resnet", "dropout": 0.1}, "resnet takes no dropout"),
    ({"method": "resnet", "shape": "conic"}, "resnet shape must be one of"),
    ({"method": "highway", "shape": "conic"}, "shape must be 'rectangular'"),
    ({"method": "msra", "width": None}, "needs a width"),
    ({"method": "layernorm", "depth": -1}, "depth >= 0"),
    ({"method": "resnet", "shape": "diavolo", "bottleneck": 1.5}, r"bottleneck must be a fraction"),
    ({"method": "batchnorm", "shape": "pyramid"}, "shape must be one of"),
])
def test_arguments_that_do_not_apply_or_are_out_of_range_are_named(be64, kwargs, message):
    kwargs = {"n_inputs": 5, "n_outputs": 2, "width": 8, "depth": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        build_model(backend=be64, **kwargs)


def test_batch_norm_needs_two_rows_in_training_but_not_in_evaluation(be64):
    model = build_model("batchnorm", 5, 2, depth=1, width=4, backend=be64)
    with pytest.raises(ValueError, match="at least 2 rows"):
        model.forward(be64.asarray(np.ones((1, 5))), train=True)
    assert model.forward(be64.asarray(np.ones((1, 5))), train=False).shape == (1, 2)


@pytest.mark.parametrize("method", METHODS)
def test_the_same_seed_gives_the_same_network_on_numpy_and_numba(method):
    pytest.importorskip("numba")
    x, _ = _data(n=16)
    outputs = []
    for name in ("numpy", "numba"):
        be = get_backend(name, dtype="float64")
        model = build_model(method, 6, 3, depth=2, width=8, backend=be, seed=9)
        outputs.append(model.logits(x))
        outputs.append(be.to_numpy(model.forward(be.asarray(x), train=True)))
    np.testing.assert_allclose(outputs[0], outputs[2], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(outputs[1], outputs[3], rtol=1e-10, atol=1e-12)


def _real_data_sets():
    if not SHARED.is_dir():
        return []
    sets = [("htru2", lambda: read_htru2(SHARED / "htru2" / "HTRU_2.csv"))]
    for name in ("iris", "abalone", "yeast"):
        if (SHARED / "uci" / name).is_dir():
            sets.append((name, lambda name=name: read_uci(SHARED / "uci" / name)))
    return sets


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared data folder at {SHARED}")
@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_on_real_data_without_nan(method):
    be = get_backend("numba" if _has_numba() else "numpy", dtype="float32")
    rng = np.random.default_rng(0)
    for name, read in _real_data_sets():
        data = read()
        rows = rng.permutation(len(data.y_train))[:2000]
        x, y = data.x_train[rows], data.y_train[rows]
        x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        n_classes = int(data.n_classes if hasattr(data, "n_classes") else y.max() + 1)
        model = build_model(method, x.shape[1], n_classes, depth=4, width=64, backend=be, seed=1)
        history = fit(model, x, y, SGD(model, lr=0.01, momentum=0.9), task=ClassificationTask(), epochs=3,
                      batch_size=64, seed=0)
        losses = history.train_loss
        assert np.isfinite(losses).all() and losses[-1] < losses[0] * 1.05, (name, losses)


def _has_numba():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True

"""SGD, schedules, seeded reproducibility, the training loop and its input checks."""

import io
import math

import numpy as np
import pytest

from minisnn import SGD, Schedule, fit, get_backend, mlp, train_step
from minisnn.data import make_synthetic
from minisnn.losses import SoftmaxCrossEntropy
from minisnn.train import TrainingDiverged, check_classification_data, evaluate

# Losses of six SGD steps (float64, numpy backend, seed 0), recorded from this implementation.
RECORDED_LOSSES = [1.762170641894337, 1.6836657951543517, 1.4519555835649403, 1.388220859205763,
                   0.9849583429370677, 1.3817860711654437]


def seeded_losses(backend_name="numpy", dtype="float64", steps=6):
    d = make_synthetic(n_train=256, n_test=0, seed=1)
    be = get_backend(backend_name, dtype=dtype, seed=0)
    model = mlp(d.n_features, d.n_classes, depth=4, width=32, dropout=0.05, backend=be, seed=0)
    opt, loss = SGD(model, lr=0.05, momentum=0.9), SoftmaxCrossEntropy(be)
    out = []
    for step in range(steps):
        rows = slice((step * 32) % 256, (step * 32) % 256 + 32)
        out.append(float(train_step(model, loss, opt, be.asarray(d.x_train[rows]), be.asarray(d.y_train[rows]))))
    return out


def test_seeded_steps_reproduce_the_recorded_losses():
    np.testing.assert_allclose(seeded_losses(), RECORDED_LOSSES, rtol=1e-10)


def test_float32_follows_float64_closely():
    np.testing.assert_allclose(seeded_losses(dtype="float32"), RECORDED_LOSSES, rtol=1e-4)


def test_sgd_matches_the_reference_update_for_every_option():
    be = get_backend("numpy", dtype="float64")
    from minisnn import reference as ref
    for momentum, nesterov, wd in [(0.0, False, 0.0), (0.9, False, 0.01), (0.5, True, 0.001)]:
        model = mlp(3, 2, depth=1, width=4, backend=be)
        opt = SGD(model, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=wd)
        p = model.parameters()[0]
        p.grad[...] = 1.0
        expected, velocity = p.value.copy(), (np.zeros_like(p.value) if momentum else None)
        for _ in range(3):
            expected, velocity = ref.sgd_update(expected, p.grad, velocity, 0.1, momentum, wd, nesterov)
            opt.step()
        np.testing.assert_allclose(p.value, expected, rtol=1e-14)



@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_a_packed_model_is_updated_in_one_pass_exactly_as_array_by_array(backend_name):
    """SGD over the model's flat buffers equals SGD over the same parameters one array at a time,
    bit for bit, velocity included; the padding between slices stays zero."""
    if backend_name == "numba":
        pytest.importorskip("numba")
    be = get_backend(backend_name, dtype="float32")
    models = [mlp(5, 3, depth=2, width=7, dropout=0.1, backend=be, seed=4) for _ in range(2)]
    flat = models[0].flat_parameters()
    assert flat is not None and flat.values.size > models[0].n_parameters()  # 7 + 3 biases are padded
    for p, (offset, shape) in zip(models[0].parameters(), flat.slots):
        assert p.value.shape == shape and np.shares_memory(p.value, flat.values)
        assert np.shares_memory(p.grad, flat.grads)
    packed = SGD(models[0], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    one_by_one = SGD(models[1].parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, backend=be)
    assert packed._flat is not None and one_by_one._flat is None
    rng = np.random.default_rng(0)
    for _ in range(3):
        for a, b in zip(models[0].parameters(), models[1].parameters()):
            a.grad[...] = b.grad[...] = rng.standard_normal(a.grad.shape)
        packed.step()
        one_by_one.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        np.testing.assert_array_equal(a.value, b.value)
        np.testing.assert_array_equal(packed.velocity[a.name], one_by_one.velocity[b.name])
    in_slices = np.zeros(flat.values.size, bool)
    for offset, shape in flat.slots:
        in_slices[offset:offset + int(np.prod(shape))] = True
    assert not flat.values[~in_slices].any() and not packed._flat[2][~in_slices].any()


def test_replacing_a_parameter_array_unpacks_the_model():
    be = get_backend("numpy")
    model = mlp(4, 2, depth=1, width=3, backend=be)
    model.layers[0].params["W"] = model.layers[0].params["W"].copy()
    assert model.flat_parameters() is None
    opt = SGD(model, lr=0.5)
    model.layers[0].grads["W"][...] = 1.0
    before = model.layers[0].params["W"].copy()
    opt.step()
    np.testing.assert_allclose(model.layers[0].params["W"], before - 0.5)


def test_shared_parameters_are_left_unpacked_and_stay_shared():
    be = get_backend("numpy")
    from minisnn.layers import Linear
    from minisnn.model import Sequential

    first, second = Linear(4, 4, be, seed=1), Linear(4, 4, be, seed=2)
    second.params["W"] = first.params["W"]  # tied weights
    model = Sequential([first, second], be, 4)
    assert model.flat_parameters() is None and second.params["W"] is first.params["W"]
    reused = Sequential([first, first], be, 4)  # one layer twice
    assert reused.flat_parameters() is None

def test_schedules():
    assert Schedule()(0.1, 500) == 0.1
    step = Schedule("step", step_size=10, gamma=0.5)
    assert [step(1.0, t) for t in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    cosine = Schedule("cosine", total_steps=100, min_lr=0.01)
    assert cosine(1.0, 0) == 1.0 and cosine(1.0, 100) == pytest.approx(0.01) and cosine(1.0, 500) == pytest.approx(0.01)
    assert cosine(1.0, 50) == pytest.approx(0.505)
    with pytest.raises(ValueError, match="schedule must be one of"):
        Schedule("warmup")


def test_sgd_argument_errors():
    be = get_backend("numpy")
    model = mlp(3, 2, depth=1, width=4, backend=be)
    for kwargs in ({"lr": 0}, {"lr": 0.1, "momentum": 1.0}, {"lr": 0.1, "weight_decay": -1}):
        with pytest.raises(ValueError, match="SGD needs"):
            SGD(model, **kwargs)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD(model, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="backend"):
        SGD(model.parameters(), lr=0.1)


def test_fit_learns_the_synthetic_problem_and_reports_metrics():
    d = make_synthetic(n_train=2048, n_test=512)
    be = get_backend("numpy", seed=0)
    model = mlp(d.n_features, d.n_classes, depth=4, width=64, backend=be, seed=0)
    stream = io.StringIO()
    history = fit(model, d.x_train, d.y_train, SGD(model, lr=0.01, momentum=0.9), epochs=6, batch_size=64,
                  x_test=d.x_test, y_test=d.y_test, progress=stream)
    assert len(history) == 6 and history[-1].train_loss < history[0].train_loss
    majority = np.bincount(d.y_test).max() / len(d.y_test)
    assert history[-1].test_accuracy > majority + 0.2
    lines = stream.getvalue().splitlines()
    assert len(lines) == 6 and lines[0].startswith("epoch 1/6") and "\r" not in stream.getvalue()
    loss, acc = evaluate(model, d.x_test, d.y_test)
    assert acc == pytest.approx(history[-1].test_accuracy) and loss == pytest.approx(history[-1].test_loss)
    proba = model.predict_proba(d.x_test)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(proba.argmax(1), model.predict(d.x_test))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_loss_stops_training_and_names_the_step():
    d = make_synthetic(n_train=512, n_test=0)
    be = get_backend("numpy")
    model = mlp(d.n_features, d.n_classes, depth=2, width=16, backend=be)
    with pytest.raises(TrainingDiverged, match=r"at step \d+ \(epoch 1, batch \d+\)"):
        fit(model, d.x_train * 1e30, d.y_train, SGD(model, lr=1e10), epochs=1, progress=None)


@pytest.mark.parametrize("mutate, message", [
    (lambda x, y: (x[:, :, None], y), r"features must have shape \(N, D\)"),
    (lambda x, y: (x, y[:-1]), r"labels must have shape \(10,\)"),
    (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x), y),
     r"1 NaN or infinite feature values, the first at row 0, column 7"),
    (lambda x, y: (x, y + 3), r"labels must lie in \[0, 4\), found values from 3 to 6"),
    (lambda x, y: (x, y.astype(float)), "labels must be integers"),
    (lambda x, y: (x.astype(str), y), "features must be numeric"),
])
def test_bad_training_data_is_named(mutate, message):
    d = make_synthetic(n_train=10, n_test=0)
    x, y = mutate(d.x_train, d.y_train)
    with pytest.raises(ValueError, match=message):
        check_classification_data(x, y, 4, "training data")


def test_fit_rejects_mismatched_features_and_bad_sizes():
    d = make_synthetic(n_train=64, n_test=0)
    be = get_backend("numpy")
    model = mlp(d.n_features + 1, d.n_classes, depth=1, width=8, backend=be)
    with pytest.raises(ValueError, match="the model expects 17"):
        fit(model, d.x_train, d.y_train, SGD(model, lr=0.1), progress=None)
    model = mlp(d.n_features, d.n_classes, depth=1, width=8, backend=be)
    with pytest.raises(ValueError, match="leaves no batch"):
        fit(model, d.x_train, d.y_train, SGD(model, lr=0.1), batch_size=100, drop_last=True, progress=None)
    assert math.isfinite(fit(model, d.x_train, d.y_train, SGD(model, lr=0.1), epochs=1, progress=None)[0].train_loss)

"""SGD, schedules, seeded reproducibility, and the training loop: tasks, validation, batching, divergence."""

import io
import math

import numpy as np
import pytest

from minisnn import SGD, Adam, Schedule, fit, get_backend, mlp, train_step
from minisnn.data import ArrayDataset, BatchIterator, make_synthetic
from minisnn.losses import SoftmaxCrossEntropy
from minisnn.tasks import ClassificationTask, MultiTaskBinaryTask, RegressionTask
from minisnn.train import History, TrainingDiverged, evaluate

# Losses of six SGD steps (float64, numpy backend, seed 0), recorded from this implementation.
RECORDED_LOSSES = [1.762170641894337, 1.6836657951543517, 1.4519555835649403, 1.388220859205763,
                   0.9849583429370677, 1.3817860711654437]


def backend(name, dtype="float32"):
    if name == "numba":
        pytest.importorskip("numba")
    return get_backend(name, dtype=dtype)


def seeded_losses(backend_name="numpy", dtype="float64", steps=6):
    d = make_synthetic(n_train=256, n_test=0, seed=1)
    be = get_backend(backend_name, dtype=dtype)
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


def test_sgd_follows_the_update_formulas_for_every_option():
    """PyTorch's convention, written out: g = grad + wd*p; v = m*v + g; p -= lr*(g + m*v if nesterov else v)."""
    be = get_backend("numpy", dtype="float64")
    rng = np.random.default_rng(0)
    for momentum, nesterov, wd in [(0.0, False, 0.0), (0.9, False, 0.01), (0.5, True, 0.001)]:
        model = mlp(3, 2, depth=1, width=4, backend=be)
        opt = SGD(model, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=wd)
        p = model.named_parameters()[0]
        expected, velocity = p.value.copy(), np.zeros_like(p.value)
        for _ in range(3):
            p.grad[...] = rng.standard_normal(p.grad.shape)
            g = p.grad + wd * expected
            velocity = momentum * velocity + g
            step = g + momentum * velocity if nesterov else (velocity if momentum else g)
            expected = expected - 0.1 * step
            opt.step()
        np.testing.assert_allclose(p.value, expected, rtol=1e-14)


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
    for kwargs, message in [({"lr": 0}, "lr > 0"), ({"lr": 0.1, "momentum": 1.0}, "momentum < 1"),
                            ({"lr": 0.1, "weight_decay": -1}, "weight_decay >= 0")]:
        with pytest.raises(ValueError, match=message):
            SGD(model, **kwargs)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD(model, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="backend"):
        SGD(model.named_parameters(), lr=0.1)


# ---- fit --------------------------------------------------------------------------------------

def test_fit_learns_the_synthetic_problem_and_records_every_epoch():
    d = make_synthetic(n_train=2048, n_test=512)
    model = mlp(d.n_features, d.n_classes, depth=4, width=64, backend=get_backend("numpy"), seed=0)
    stream = io.StringIO()
    history = fit(model, d.x_train, d.y_train, SGD(model, lr=0.01, momentum=0.9), epochs=6, batch_size=64,
                  validation=(d.x_test, d.y_test), progress=stream)
    assert isinstance(history, History) and len(history) == 6
    assert history.names == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                             "val_balanced_accuracy", "seconds", "learning_rate"]
    np.testing.assert_array_equal(history.epoch, np.arange(1, 7))
    assert history.train_loss.dtype == np.float64 and history.train_loss[-1] < history.train_loss[0]
    majority = np.bincount(d.y_test).max() / len(d.y_test)
    assert history.val_accuracy[-1] > majority + 0.2
    assert history[-1]["val_accuracy"] == history["val_accuracy"][-1] and history.best_epoch is None
    np.testing.assert_array_equal(history.learning_rate, 0.01)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 6 and lines[0].startswith("epoch 1/6  loss ") and "val_accuracy" in lines[0]
    assert "\r" not in stream.getvalue()
    metrics = evaluate(model, d.x_test, d.y_test)
    assert metrics["accuracy"] == history.val_accuracy[-1] and metrics["loss"] == pytest.approx(history.val_loss[-1])
    with pytest.raises(AttributeError, match="no field 'val_roc_auc'"):
        history.val_roc_auc


def test_train_accuracy_counts_the_rows_whose_argmax_is_the_label():
    d = make_synthetic(n_train=100, n_test=0)
    model = mlp(d.n_features, d.n_classes, depth=1, width=8, dropout=0.0, backend=get_backend("numpy"), seed=0)
    logits_seen = []
    original_forward = model.forward

    def forward(x, train=True):
        out = original_forward(x, train)
        logits_seen.append((np.array(out), int(out.shape[0])))
        return out

    model.forward = forward
    history = fit(model, d.x_train, d.y_train, SGD(model, lr=1e-9), epochs=1, batch_size=25, progress=None)
    order = BatchIterator(ArrayDataset(d.x_train, d.y_train), 25).batch_indices(0)
    correct = sum(int((z.argmax(1) == d.y_train[rows]).sum()) for (z, _), rows in zip(logits_seen, order))
    assert history.train_accuracy[0] == correct / 100


def test_a_single_sample_tail_no_longer_diverges_65_rows_in_batches_of_32():
    """The seeded case that went to NaN: 65 rows, batch 32, an 8-layer SNN with momentum 0.9.
    Stepping on batches of 32, 32 and 1 diverges by hand; fit (tail joined: 32 + 33) stays finite."""
    d = make_synthetic(n_train=65, n_test=0)
    for name in ("numpy", "numba"):
        be = backend(name)
        model = mlp(d.n_features, d.n_classes, depth=8, width=256, backend=be, seed=0)
        opt, loss = SGD(model, lr=0.01, momentum=0.9), SoftmaxCrossEntropy(be)
        order = BatchIterator(ArrayDataset(d.x_train, d.y_train), 32, seed=0)
        values = []
        with np.errstate(all="ignore"):
            for epoch in range(20):
                rows = order.order(epoch)
                for part in (rows[:32], rows[32:64], rows[64:]):
                    values.append(float(train_step(model, loss, opt, be.asarray(d.x_train[part]),
                                                   be.asarray(d.y_train[part], dtype=np.int64))))
        assert not np.isfinite(values).all()
        model = mlp(d.n_features, d.n_classes, depth=8, width=256, backend=be, seed=0)
        history = fit(model, d.x_train, d.y_train, SGD(model, lr=0.01, momentum=0.9), epochs=20, batch_size=32,
                      seed=0, progress=None)
        assert np.isfinite(history.train_loss).all() and history.train_loss[-1] < 0.5


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_loss_stops_training_before_the_update_and_names_the_step():
    d = make_synthetic(n_train=512, n_test=0)
    model = mlp(d.n_features, d.n_classes, depth=2, width=16, backend=get_backend("numpy"))
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 1 \(epoch 1, batch 1\)"):
        fit(model, d.x_train * 1e38, d.y_train, SGD(model, lr=0.1), epochs=1, progress=None)  # inf in float32
    assert all(np.isfinite(p.value).all() for p in model.named_parameters())


def test_a_continued_fit_sees_the_same_batches_as_one_long_fit():
    d = make_synthetic(n_train=200, n_test=0)
    be = get_backend("numpy", dtype="float64")
    models = [mlp(d.n_features, d.n_classes, depth=2, width=16, backend=be, seed=3) for _ in range(2)]
    opts = [SGD(m, lr=0.05, momentum=0.9) for m in models]
    fit(models[0], d.x_train, d.y_train, opts[0], epochs=3, batch_size=32, seed=5, progress=None)
    first = fit(models[1], d.x_train, d.y_train, opts[1], epochs=2, batch_size=32, seed=5, progress=None)
    second = fit(models[1], d.x_train, d.y_train, opts[1], epochs=1, batch_size=32, seed=5, start_epoch=2,
                 progress=None)
    assert first.epoch.tolist() == [1, 2] and second.epoch.tolist() == [3]
    for a, b in zip(models[0].named_parameters(), models[1].named_parameters()):
        np.testing.assert_array_equal(a.value, b.value)


@pytest.mark.parametrize("drop_last, stratified", [(False, False), (True, False), (False, True)])
def test_fit_trains_on_the_batch_iterators_batches(drop_last, stratified):
    d = make_synthetic(n_train=100, n_test=0)
    model = mlp(d.n_features, d.n_classes, depth=1, width=8, backend=get_backend("numpy", dtype="float64"))
    seen = []
    original_forward = model.forward
    model.forward = lambda x, train=True: seen.append(np.array(x)) or original_forward(x, train)
    fit(model, d.x_train, d.y_train, SGD(model, lr=0.01), epochs=2, batch_size=40, seed=7, drop_last=drop_last,
        stratified=stratified, progress=None)
    batches = BatchIterator(ArrayDataset(d.x_train, d.y_train), 40, seed=7, drop_last=drop_last, stratified=stratified)
    expected = batches.batch_indices(0) + batches.batch_indices(1)
    assert [len(b) for b in seen] == [len(rows) for rows in expected] == ([40, 40] if drop_last else [40, 40, 20]) * 2
    for xb, rows in zip(seen, expected):
        np.testing.assert_array_equal(xb, d.x_train[rows])


def test_threads_are_set_once_before_training(monkeypatch):
    import minisnn.threads

    calls = []
    monkeypatch.setattr(minisnn.threads, "set_threads", calls.append)
    d = make_synthetic(n_train=40, n_test=0)
    model = mlp(d.n_features, d.n_classes, depth=1, width=8, backend=get_backend("numpy"))
    fit(model, d.x_train, d.y_train, SGD(model, lr=0.01), epochs=2, threads=1, progress=None)
    fit(model, d.x_train, d.y_train, SGD(model, lr=0.01), epochs=1, progress=None)
    assert calls == [1]


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_fit_learns_multiple_tasks_with_missing_labels(backend_name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 8))
    labels = (x[:, :3] + 0.3 * rng.standard_normal((600, 3)) > 0).astype(np.int64)  # task t: sign of feature t
    y = MultiTaskBinaryTask.targets_with_missing(labels, rng.random((600, 3)) < 0.6)  # 40% missing
    task = MultiTaskBinaryTask(3)
    model = mlp(8, 3, depth=3, width=32, backend=backend(backend_name), seed=0)
    history = fit(model, x[:500], y[:500], Adam(model, lr=3e-3), task=task, epochs=8, batch_size=50,
                  validation=(x[500:], y[500:]), progress=None)
    assert "train_accuracy" not in history.names and {"val_roc_auc_0", "val_roc_auc_2"} <= set(history.names)
    assert history.train_loss[-1] < 0.6 * history.train_loss[0]
    assert history.val_roc_auc[-1] > 0.9


def test_fit_learns_a_regression():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((512, 4))
    y = np.column_stack([x @ [1.0, -2.0, 0.5, 0.0], np.tanh(x[:, 0])])  # (N, 2)
    model = mlp(4, 2, depth=2, width=32, dropout=0.0, backend=get_backend("numpy"), seed=0)
    history = fit(model, x[:400], y[:400], SGD(model, lr=0.01, momentum=0.9), task=RegressionTask(2), epochs=15,
                  batch_size=32, validation=(x[400:], y[400:]), progress=None)
    assert history.names[:3] == ["epoch", "train_loss", "val_loss"]
    assert history.val_r2[-1] > 0.9 and history.val_rmse[-1] == pytest.approx(math.sqrt(history.val_loss[-1]))


def test_fit_rejects_bad_data_and_sizes():
    d = make_synthetic(n_train=64, n_test=16)
    be = get_backend("numpy")
    model = mlp(d.n_features + 1, d.n_classes, depth=1, width=8, backend=be)
    with pytest.raises(ValueError, match="training data has 16 features, the model expects 17"):
        fit(model, d.x_train, d.y_train, SGD(model, lr=0.1), progress=None)
    model = mlp(d.n_features, d.n_classes, depth=1, width=8, backend=be)
    with pytest.raises(ValueError, match="validation data has 15 features"):
        fit(model, d.x_train, d.y_train, SGD(model, lr=0.1), validation=(d.x_test[:, 1:], d.y_test), progress=None)
    with pytest.raises(ValueError, match=r"validation data: label 6 in row 0 is outside \[0, 4\) \(16 such labels\)"):
        fit(model, d.x_train, d.y_train, SGD(model, lr=0.1), validation=(d.x_test, d.y_test + 4), progress=None)
    with pytest.raises(ValueError, match="training data: 16 NaN or infinite feature values, the first at row 3, column 0"):
        fit(model, np.where(np.arange(64)[:, None] == 3, np.nan, d.x_train), d.y_train, SGD(model, lr=0.1),
            progress=None)
    with pytest.raises(ValueError, match="needs 3 model outputs, the model has 4"):
        fit(model, d.x_train, d.y_train % 3, SGD(model, lr=0.1), task=ClassificationTask(3), progress=None)
    with pytest.raises(ValueError, match="leaves no batch"):
        fit(model, d.x_train, d.y_train, SGD(model, lr=0.1), batch_size=100, drop_last=True, progress=None)
    with pytest.raises(ValueError, match="epochs and batch_size must be at least 1"):
        fit(model, d.x_train, d.y_train, SGD(model, lr=0.1), epochs=0, progress=None)


def test_non_finite_validation_outputs_are_a_divergence_and_evaluate_names_them():
    from minisnn.tasks import NonFiniteOutputs

    d = make_synthetic(n_train=64, n_test=0)
    be = get_backend("numpy", dtype="float32")
    model = mlp(d.n_features, d.n_classes, depth=1, width=8, activation="relu", dropout=0.0, backend=be)
    huge = np.full_like(d.x_train[:16], 3e38)  # finite in float32; the first layer's sums overflow to inf
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(TrainingDiverged, match="validation after epoch 1: the model's outputs hold .* NaN or inf"):
            fit(model, d.x_train, d.y_train, SGD(model, lr=0.01), epochs=2, validation=(huge, d.y_train[:16]),
                progress=None)
        with pytest.raises(NonFiniteOutputs, match="NaN or infinite"):
            evaluate(model, huge, d.y_train[:16])

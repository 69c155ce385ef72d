"""Callbacks: the smoothed best epoch (trailing moving average), patience, restoring weights, checkpoints."""

import numpy as np
import pytest

from minisnn import SGD, fit, get_backend, load_training_state, mlp
from minisnn.callbacks import Callback, Checkpoint, EarlyStopping, KeepBest
from minisnn.data import make_synthetic
from minisnn.tasks import ClassificationTask, RegressionTask
from minisnn.train import evaluate


class Weights:
    """A stand-in model whose "weights" are the epoch they were snapshotted at."""

    def __init__(self):
        self.epoch = 0

    def state_arrays(self):
        return {"param/w": np.array(self.epoch)}

    def load_state_arrays(self, arrays):
        self.epoch = int(arrays["param/w"])


def feed(callback, values, name="val_loss", task=RegressionTask(1)):
    """Run the callback over a curve as fit would; returns (the epochs run, the stand-in model)."""
    model = Weights()
    callback.on_train_begin(task)
    ran = []
    for epoch, value in enumerate(values, 1):
        model.epoch = epoch
        ran.append(epoch)
        if callback.on_epoch_end(epoch, {"epoch": epoch, name: value}, model, None):
            break
    callback.on_train_end(model)
    return ran, model


def trailing_means(values, window):
    return [sum(values[max(0, i - window + 1):i + 1]) / len(values[max(0, i - window + 1):i + 1])
            for i in range(len(values))]


def test_the_moving_average_is_trailing_and_shorter_at_the_start():
    rng = np.random.default_rng(0)
    values = rng.random(25).tolist()
    keep = KeepBest(window=10)
    feed(keep, values)
    np.testing.assert_allclose(keep.smoothed, trailing_means(values, 10), rtol=1e-15)
    assert keep.smoothed[0] == values[0] and keep.smoothed[1] == pytest.approx((values[0] + values[1]) / 2)
    assert keep.smoothed[12] == pytest.approx(np.mean(values[3:13]))
    np.testing.assert_array_equal(keep.curve, values)
    assert keep.best_epoch == int(np.argmin(keep.smoothed)) + 1 and keep.best_value == keep.smoothed.min()


def test_a_spike_wins_the_raw_curve_but_not_the_smoothed_one():
    accuracy = [0.50, 0.50, 0.90, 0.50, 0.75, 0.75, 0.75, 0.50]  # epoch 3 is a lucky spike
    raw, smoothed = KeepBest("val_accuracy"), KeepBest("val_accuracy", window=3)
    _, raw_model = feed(raw, accuracy, "val_accuracy")
    _, model = feed(smoothed, accuracy, "val_accuracy")
    assert raw.mode == "max" and raw.best_epoch == 3 and raw_model.epoch == 3
    # smoothed over 3 epochs: .5, .5, .633, .633, .717, .667, .75, .667
    assert smoothed.best_epoch == 7 and model.epoch == 7


def test_early_stopping_waits_patience_epochs_after_the_smoothed_best():
    loss = [5, 4, 3, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    stop = EarlyStopping(patience=3, window=1)
    ran, model = feed(stop, loss)
    assert stop.best_epoch == 5 and ran[-1] == stop.stopped_epoch == 8 and model.epoch == 5
    late = EarlyStopping(patience=3, window=4)  # smoothed: 5, 4.5, 4, 3.5, 2.5, 2, 2, 2.5, 3.5, ...
    ran, _ = feed(late, loss)
    assert late.best_epoch == 6 and late.stopped_epoch == 9
    never = EarlyStopping(patience=20)
    ran, _ = feed(never, loss)
    assert ran == list(range(1, 15)) and never.stopped_epoch is None
    unrestored = EarlyStopping(patience=3, window=1, restore=False)
    _, model = feed(unrestored, loss)
    assert model.epoch == 8  # the last epoch's weights stay


def test_monitor_and_mode_default_to_the_tasks_and_to_the_metric_name():
    for task, monitor, mode in [(ClassificationTask(2), "val_roc_auc", "max"), (ClassificationTask(3), "val_accuracy", "max"),
                                (RegressionTask(1), "val_loss", "min")]:
        keep = KeepBest()
        keep.on_train_begin(task)
        assert (keep.monitor, keep.mode) == (monitor, mode)
    for monitor, mode in [("val_loss", "min"), ("val_rmse", "min"), ("train_loss", "min"), ("val_r2", "max"),
                          ("val_balanced_accuracy", "max")]:
        keep = KeepBest(monitor)
        keep.on_train_begin(RegressionTask(1))
        assert keep.mode == mode
    keep = KeepBest("val_accuracy", mode="min")
    keep.on_train_begin(ClassificationTask(3))
    assert keep.mode == "min"


def test_callback_errors_are_named():
    keep = KeepBest("val_loss")
    keep.on_train_begin(RegressionTask(1))
    with pytest.raises(ValueError, match="monitors 'val_loss', but the epoch record holds only epoch, train_loss; "
                                         "pass validation data"):
        keep.on_epoch_end(1, {"epoch": 1, "train_loss": 0.5}, Weights(), None)
    with pytest.raises(ValueError, match="val_roc_auc is NaN at epoch 2"):
        feed(KeepBest(), [0.7, float("nan")], "val_roc_auc", ClassificationTask(2))
    for make, message in [(lambda: KeepBest(mode="up"), "mode must be one of"),
                          (lambda: KeepBest(window=0), "window must be at least 1"),
                          (lambda: EarlyStopping(patience=0), "patience must be at least 1"),
                          (lambda: Checkpoint("x.npz", every=0), "every >= 1"),
                          (lambda: Checkpoint("x{step}.npz"), r"no braces but \{epoch\}")]:
        with pytest.raises(ValueError, match=message):
            make()


def test_ties_keep_the_earlier_epoch():
    keep = KeepBest("val_accuracy")
    feed(keep, [0.5, 0.75, 0.75, 0.5], "val_accuracy")
    assert keep.best_epoch == 2


def test_a_callback_is_reset_when_reused():
    keep = KeepBest(window=2)
    feed(keep, [3.0, 2.0, 1.0])
    feed(keep, [1.0, 2.0])
    assert keep.best_epoch == 1 and keep.curve.tolist() == [1.0, 2.0]


# ---- with fit ---------------------------------------------------------------------------------

def overfitting_run(callbacks, epochs=12):
    """200 samples, a 3-layer SNN at a high learning rate: validation loss is lowest at epoch 3."""
    d = make_synthetic(n_train=200, n_test=200, seed=2)
    model = mlp(d.n_features, d.n_classes, depth=3, width=64, backend=get_backend("numpy", dtype="float64"), seed=0)
    history = fit(model, d.x_train, d.y_train, SGD(model, lr=0.05, momentum=0.9), epochs=epochs, batch_size=20,
                  validation=(d.x_test, d.y_test), callbacks=callbacks, progress=None)
    return model, history, d


def test_keep_best_restores_the_best_epochs_weights_after_fit():
    keep = KeepBest("val_loss")
    model, history, d = overfitting_run([keep])
    assert len(history) == 12 and history.best_epoch == keep.best_epoch == 3
    assert history.val_loss[2] == history.val_loss.min() < history.val_loss[-1]
    assert evaluate(model, d.x_test, d.y_test)["loss"] == history.val_loss[2]


def test_early_stopping_in_fit_stops_and_restores_the_smoothed_best():
    stop = EarlyStopping("val_loss", patience=4, window=2)
    model, history, d = overfitting_run([stop], epochs=30)
    smoothed = trailing_means(history.val_loss.tolist(), 2)
    best = int(np.argmin(smoothed)) + 1
    assert history.best_epoch == best and history.stopped_epoch == best + 4 == len(history)
    assert evaluate(model, d.x_test, d.y_test)["loss"] == history.val_loss[best - 1]


def test_every_callback_sees_every_epoch_even_when_one_stops():
    class Count(Callback):
        def __init__(self):
            self.epochs, self.ended = [], False

        def on_epoch_end(self, epoch, record, model, optimizer):
            self.epochs.append(epoch)
            return False

        def on_train_end(self, model):
            self.ended = True

    count = Count()
    _, history, _ = overfitting_run([EarlyStopping("val_loss", patience=2, window=1), count], epochs=30)
    assert count.epochs == history.epoch.tolist() and count.ended and len(history) < 30


def test_checkpoints_every_n_epochs(tmp_path):
    numbered, latest = Checkpoint(tmp_path / "ckpt-{epoch}.npz", every=2, meta={"data": "synthetic"}), \
        Checkpoint(tmp_path / "latest.npz", every=3)
    overfitting_run([numbered, latest], epochs=7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-2.npz", "ckpt-4.npz", "ckpt-6.npz", "latest.npz"]
    assert [p.name for p in numbered.saved] == ["ckpt-2.npz", "ckpt-4.npz", "ckpt-6.npz"]
    _, optimizer, meta = load_training_state(tmp_path / "ckpt-4.npz")
    assert meta == {"data": "synthetic", "epochs_done": 4} and optimizer.step_count == 4 * 10
    assert load_training_state(tmp_path / "latest.npz")[2]["epochs_done"] == 6

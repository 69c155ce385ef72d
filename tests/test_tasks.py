"""Tasks: target checks naming the problem, targets on the backend, metrics against direct computations."""

import numpy as np
import pytest

from minisnn import get_backend, mlp
from minisnn.losses import MeanSquaredError, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy
from minisnn.tasks import ClassificationTask, MultiTaskBinaryTask, RegressionTask, task_from_config


class FixedOutputs:
    """A stand-in model whose eval-mode outputs are given."""

    def __init__(self, outputs):
        self.outputs = np.asarray(outputs)
        self.n_inputs, self.n_outputs = 1, self.outputs.shape[1]

    def logits(self, x, batch_size=1024):
        assert x.shape == (len(self.outputs), 1)
        return self.outputs.astype(np.float32)


def features(n):
    return np.zeros((n, 1))


def pairwise_auc(y, s):
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    return ((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size)


def backend(name, dtype="float32"):
    if name == "numba":
        pytest.importorskip("numba")
    return get_backend(name, dtype=dtype)


# ---- classification ---------------------------------------------------------------------------

@pytest.mark.parametrize("x, y, message", [
    (np.zeros((4, 2, 1)), np.zeros(4, int), r"features must be an array of shape \(N, D\), got \(4, 2, 1\)"),
    (np.zeros((0, 2)), np.zeros(0, int), "no samples"),
    (np.zeros((4, 2)), np.zeros(3, int), r"targets must have shape \(4,\) to match the features, got \(3,\)"),
    (np.zeros((4, 2)), np.zeros(4), "labels must be integers, got dtype float64"),
    (np.zeros((4, 2)), np.array([0, 1, 3, 7]), r"label 3 in row 2 is outside \[0, 3\) \(2 such labels\)"),
    (np.array([[0, 1], [2, np.nan], [0, 0], [np.inf, 0]]), np.zeros(4, int),
     "2 NaN or infinite feature values, the first at row 1, column 1"),
    (np.zeros((4, 2)).astype(str), np.zeros(4, int), "features must be numeric"),
])
def test_classification_checks_name_the_problem(x, y, message):
    with pytest.raises(ValueError, match=message):
        ClassificationTask(3).check(x, y, "training data")


def test_classification_metrics_against_direct_computation():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((200, 2)) * 2
    y = rng.integers(0, 2, 200)
    metrics = ClassificationTask(2).evaluate(FixedOutputs(logits), features(200), y)
    z = logits.astype(np.float32).astype(np.float64)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert metrics["loss"] == pytest.approx(-np.log(p[np.arange(200), y]).mean(), rel=1e-10)
    predicted = z.argmax(1)
    assert metrics["accuracy"] == (predicted == y).mean()
    recalls = [(predicted[y == c] == c).mean() for c in (0, 1)]
    assert metrics["balanced_accuracy"] == pytest.approx(np.mean(recalls))
    assert metrics["roc_auc"] == pytest.approx(pairwise_auc(y, p[:, 1]))
    one_class = ClassificationTask(2).evaluate(FixedOutputs(logits[:5]), features(5), np.zeros(5, int))
    assert np.isnan(one_class["roc_auc"]) and one_class["accuracy"] == (predicted[:5] == 0).mean()
    three = ClassificationTask(3).evaluate(FixedOutputs(rng.standard_normal((9, 3))), features(9), np.arange(9) % 3)
    assert set(three) == {"loss", "accuracy", "balanced_accuracy"}


def test_classification_defaults_and_model_binding():
    assert (ClassificationTask(2).monitor, ClassificationTask(2).mode) == ("roc_auc", "max")
    assert (ClassificationTask(5).monitor, ClassificationTask(5).mode) == ("accuracy", "max")
    model = mlp(3, 4, depth=1, width=4, backend=get_backend("numpy"))
    bound = ClassificationTask().for_model(model)
    assert bound.n_classes == 4 and bound.monitor == "accuracy"
    with pytest.raises(ValueError, match="needs 3 model outputs, the model has 4"):
        ClassificationTask(3).for_model(model)
    with pytest.raises(ValueError, match="label 4 in row 0 is outside"):
        ClassificationTask().evaluate(model, np.zeros((2, 3)), np.array([4, 0]))
    with pytest.raises(ValueError, match="label -1 in row 1 is negative"):
        ClassificationTask().check(np.zeros((2, 3)), np.array([0, -1]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        ClassificationTask(1)


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_classification_targets_are_int64_on_the_backend(backend_name):
    be = backend(backend_name)
    (labels,) = ClassificationTask(3).prepare_targets(np.array([0, 2, 1], dtype=np.int32), be)
    assert labels.dtype == np.int64 and labels.tolist() == [0, 2, 1]
    assert isinstance(ClassificationTask(3).loss(be), SoftmaxCrossEntropy)


# ---- multi-task binary ------------------------------------------------------------------------

def tox21_like(n=300, t=3, seed=1):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, (n, t))
    known = rng.random((n, t)) < 0.7
    labels[:, t - 1] = 1  # the last task: a single class
    return labels, known, MultiTaskBinaryTask.targets_with_missing(labels, known)


def test_multitask_checks_name_the_problem():
    task = MultiTaskBinaryTask(2)
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"targets must have shape \(3, 2\) to match the features, got \(3, 3\)"):
        task.check(x, np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"target 0.5 at row 2, task 1 is not 0, 1 or NaN \(missing\)"):
        task.check(x, np.array([[0, 1], [np.nan, 1], [1, 0.5]]))
    with pytest.raises(ValueError, match="target 2 at row 0, task 0"):
        task.check(x, np.array([[2, 1], [0, 1], [1, 0]]))
    with pytest.raises(ValueError, match="every label is missing"):
        task.check(x, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="2 task names for 3 tasks"):
        MultiTaskBinaryTask(3, ["a", "b"])
    task.check(x, np.array([[0, 1], [np.nan, 1], [1, np.nan]]))


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_multitask_targets_become_zero_filled_targets_and_a_mask(backend_name):
    be = backend(backend_name)
    labels, known, y = tox21_like(n=20)
    targets, mask = MultiTaskBinaryTask(3).prepare_targets(y, be)
    assert targets.dtype == mask.dtype == np.float32
    np.testing.assert_array_equal(mask, known)
    np.testing.assert_array_equal(targets, np.where(known, labels, 0))
    loss = MultiTaskBinaryTask(3).loss(be)
    assert isinstance(loss, SigmoidBinaryCrossEntropy)
    z = be.asarray(np.linspace(-3, 3, 60).reshape(20, 3))
    value = float(loss.forward(z, targets, mask))
    zz = np.linspace(-3, 3, 60).reshape(20, 3)
    terms = np.logaddexp(0, zz) - zz * labels
    assert value == pytest.approx(terms[known].mean(), rel=1e-5)
    int_targets, int_mask = MultiTaskBinaryTask(3).prepare_targets(labels, be)  # integer targets, none missing
    assert int_targets.dtype == np.float32 and bool(np.all(int_mask == 1))
    assert np.isfinite(float(loss.forward(z, int_targets, int_mask))) and loss.backward().dtype == np.float32


def test_multitask_metrics_use_observed_labels_only():
    labels, known, y = tox21_like()
    rng = np.random.default_rng(2)
    scores = rng.standard_normal(labels.shape) + labels
    task = MultiTaskBinaryTask(3, ["NR-AR", "SR-MMP", "flat"])
    metrics = task.evaluate(FixedOutputs(scores), features(len(y)), y)
    z = scores.astype(np.float32).astype(np.float64)
    for t, name in enumerate(["NR-AR", "SR-MMP"]):
        assert metrics[f"roc_auc_{name}"] == pytest.approx(pairwise_auc(labels[known[:, t], t], z[known[:, t], t]))
    assert np.isnan(metrics["roc_auc_flat"])
    assert metrics["roc_auc"] == pytest.approx((metrics["roc_auc_NR-AR"] + metrics["roc_auc_SR-MMP"]) / 2)
    terms = np.logaddexp(0, z) - z * labels
    assert metrics["loss"] == pytest.approx(terms[known].mean())
    flipped = np.where(known, y, 1 - labels).astype(float)  # missing labels filled in: metrics change
    assert task.evaluate(FixedOutputs(scores), features(len(y)), flipped)["loss"] != metrics["loss"]
    assert (task.monitor, task.mode) == ("roc_auc", "max")


# ---- regression -------------------------------------------------------------------------------

def test_regression_checks_and_metrics():
    task = RegressionTask(2)
    x = np.zeros((4, 1))
    with pytest.raises(ValueError, match=r"targets must have shape \(4, 2\) to match the features, got \(4,\)"):
        task.check(x, np.zeros(4))
    with pytest.raises(ValueError, match="target nan at row 3, column 1 is not finite"):
        task.check(x, np.array([[0, 0], [1, 1], [2, 2], [3, np.nan]]))
    rng = np.random.default_rng(3)
    y = rng.standard_normal((50, 2))
    pred = y + 0.5 * rng.standard_normal((50, 2))
    metrics = task.evaluate(FixedOutputs(pred), features(50), y)
    p = pred.astype(np.float32).astype(np.float64)
    assert metrics["loss"] == pytest.approx(((p - y) ** 2).mean())
    assert metrics["rmse"] == pytest.approx(np.sqrt(metrics["loss"]))
    r2 = [1 - ((y[:, j] - p[:, j]) ** 2).sum() / ((y[:, j] - y[:, j].mean()) ** 2).sum() for j in range(2)]
    assert metrics["r2"] == pytest.approx(np.mean(r2))
    assert np.isnan(task.evaluate(FixedOutputs(pred), features(50), np.ones((50, 2)))["r2"])
    assert (task.monitor, task.mode) == ("loss", "min")
    be = get_backend("numpy", dtype="float64")
    (target,) = task.prepare_targets(np.arange(4).reshape(2, 2), be)
    assert target.dtype == np.float64 and isinstance(task.loss(be), MeanSquaredError)


def test_task_configs_round_trip():
    for task in (ClassificationTask(3), MultiTaskBinaryTask(2, ["a", "b"]), RegressionTask(4)):
        again = task_from_config(task.config())
        assert type(again) is type(task) and again.config() == task.config()
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        task_from_config({"task": "ranking"})

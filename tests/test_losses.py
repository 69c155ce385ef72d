"""Losses: gradient checks in float64, values against direct formulas, masks, reductions, errors."""

import numpy as np
import pytest

from minisnn import get_backend
from minisnn.gradcheck import check_loss, max_relative_error
from minisnn.losses import MeanSquaredError, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy


@pytest.fixture
def be64():
    return get_backend("numpy", dtype="float64")


RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((8, 5)) * 3
LABELS = RNG.integers(0, 5, 8)
TARGETS = (RNG.random((8, 5)) > 0.5).astype(float)
MASK = (RNG.random((8, 5)) > 0.3).astype(float)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy_gradient_and_value(be64, reduction):
    loss = SoftmaxCrossEntropy(be64, reduction)
    assert max_relative_error(check_loss(loss, LOGITS, be64.asarray(LABELS))) < 1e-6
    logp = LOGITS - np.log(np.exp(LOGITS).sum(1, keepdims=True))
    nll = -logp[np.arange(8), LABELS]
    assert float(loss.forward(be64.asarray(LOGITS), be64.asarray(LABELS))) == pytest.approx(
        nll.mean() if reduction == "mean" else nll.sum(), rel=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("use_mask", [False, True])
def test_sigmoid_binary_cross_entropy(be64, reduction, use_mask):
    loss = SigmoidBinaryCrossEntropy(be64, reduction)
    mask = be64.asarray(MASK) if use_mask else None
    checks = check_loss(loss, LOGITS, be64.asarray(TARGETS), mask=mask)
    assert max_relative_error(checks) < 1e-6
    p = 1 / (1 + np.exp(-LOGITS))
    terms = -(TARGETS * np.log(p) + (1 - TARGETS) * np.log(1 - p))
    weights = MASK if use_mask else np.ones_like(MASK)
    expected = (terms * weights).sum() / (weights.sum() if reduction == "mean" else 1)
    assert float(loss.forward(be64.asarray(LOGITS), be64.asarray(TARGETS), mask)) == pytest.approx(expected, rel=1e-12)


def test_missing_labels_contribute_nothing(be64):
    loss = SigmoidBinaryCrossEntropy(be64)
    targets = TARGETS.copy()
    targets[MASK == 0] = 1 - targets[MASK == 0]  # flip every missing label: nothing may change
    a = float(loss.forward(be64.asarray(LOGITS), be64.asarray(TARGETS), be64.asarray(MASK)))
    grad_a = loss.backward()
    b = float(loss.forward(be64.asarray(LOGITS), be64.asarray(targets), be64.asarray(MASK)))
    assert a == b and (grad_a[MASK == 0] == 0).all()


def test_binary_cross_entropy_is_stable_for_huge_logits(be64):
    loss = SigmoidBinaryCrossEntropy(be64)
    value = float(loss.forward(be64.asarray([[1000.0, -1000.0]]), be64.asarray([[0.0, 1.0]])))
    assert value == pytest.approx(1000.0)
    assert np.isfinite(loss.backward()).all()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mean_squared_error(be64, reduction):
    loss = MeanSquaredError(be64, reduction)
    target = be64.asarray(TARGETS)
    assert max_relative_error(check_loss(loss, LOGITS, target)) < 1e-6
    sq = (LOGITS - TARGETS) ** 2
    assert float(loss.forward(be64.asarray(LOGITS), target)) == pytest.approx(
        sq.mean() if reduction == "mean" else sq.sum())


def test_loss_errors(be64):
    with pytest.raises(ValueError, match="reduction must be one of"):
        SoftmaxCrossEntropy(be64, "max")
    with pytest.raises(ValueError, match=r"logits \(N, C\) and labels \(N,\)"):
        SoftmaxCrossEntropy(be64).forward(be64.asarray(LOGITS), be64.asarray(LABELS[:3]))
    with pytest.raises(ValueError, match="labels must be integers"):
        SoftmaxCrossEntropy(be64).forward(be64.asarray(LOGITS), be64.asarray(LABELS.astype(float)))
    with pytest.raises(ValueError, match="mask marks no label"):
        SigmoidBinaryCrossEntropy(be64).forward(be64.asarray(LOGITS), be64.asarray(TARGETS),
                                                be64.asarray(np.zeros_like(MASK)))
    with pytest.raises(ValueError, match="mask must have the predictions' shape"):
        SigmoidBinaryCrossEntropy(be64).forward(be64.asarray(LOGITS), be64.asarray(TARGETS), be64.asarray(MASK[:2]))
    with pytest.raises(RuntimeError, match="without a forward"):
        MeanSquaredError(be64).backward()

"""Losses: gradient checks in float64, values against direct formulas, masks, sigmoid accuracy, dtypes, errors."""

import numpy as np
import pytest

from minisnn import get_backend
from minisnn.gradcheck import check_loss, max_relative_error
from minisnn.losses import MeanSquaredError, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy


@pytest.fixture
def be64():
    return get_backend("numpy", dtype="float64")


def host_backend(name, dtype="float32"):
    if name == "numba":
        pytest.importorskip("numba")
    return get_backend(name, dtype=dtype)


RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((8, 5)) * 3
LABELS = RNG.integers(0, 5, 8)
TARGETS = (RNG.random((8, 5)) > 0.5).astype(float)
MASK = (RNG.random((8, 5)) > 0.3).astype(float)


def test_softmax_cross_entropy_gradient_and_value(be64):
    loss = SoftmaxCrossEntropy(be64)
    assert max_relative_error(check_loss(loss, LOGITS, be64.asarray(LABELS))) < 1e-6
    logp = LOGITS - np.log(np.exp(LOGITS).sum(1, keepdims=True))
    nll = -logp[np.arange(8), LABELS]
    value = loss.forward(be64.asarray(LOGITS), be64.asarray(LABELS))
    assert np.ndim(value) == 0 and float(value) == pytest.approx(nll.mean(), rel=1e-12)


@pytest.mark.parametrize("use_mask", [False, True])
def test_sigmoid_binary_cross_entropy_gradient_and_value(be64, use_mask):
    loss = SigmoidBinaryCrossEntropy(be64)
    mask = be64.asarray(MASK) if use_mask else None
    assert max_relative_error(check_loss(loss, LOGITS, be64.asarray(TARGETS), mask=mask)) < 1e-6
    p = 1 / (1 + np.exp(-LOGITS))
    terms = -(TARGETS * np.log(p) + (1 - TARGETS) * np.log(1 - p))
    weights = MASK if use_mask else np.ones_like(MASK)
    value = loss.forward(be64.asarray(LOGITS), be64.asarray(TARGETS), mask)
    assert np.ndim(value) == 0 and float(value) == pytest.approx((terms * weights).sum() / weights.sum(), rel=1e-12)
    np.testing.assert_allclose(loss.backward(), (p - TARGETS) * weights / weights.sum(), rtol=1e-12)


def test_missing_labels_contribute_nothing(be64):
    loss = SigmoidBinaryCrossEntropy(be64)
    targets = TARGETS.copy()
    targets[MASK == 0] = 1 - targets[MASK == 0]  # flip every missing label: nothing may change
    a = float(loss.forward(be64.asarray(LOGITS), be64.asarray(TARGETS), be64.asarray(MASK)))
    grad_a = loss.backward().copy()
    b = float(loss.forward(be64.asarray(LOGITS), be64.asarray(targets), be64.asarray(MASK)))
    assert a == b and (grad_a[MASK == 0] == 0).all() and (grad_a[MASK == 1] != 0).all()


def test_a_batch_without_present_labels_adds_nothing(be64):
    loss = SigmoidBinaryCrossEntropy(be64)
    value = loss.forward(be64.asarray(LOGITS), be64.asarray(TARGETS), be64.asarray(np.zeros_like(MASK)))
    assert float(value) == 0.0 and not loss.backward().any()


def test_binary_cross_entropy_is_stable_for_huge_logits(be64):
    loss = SigmoidBinaryCrossEntropy(be64)
    value = float(loss.forward(be64.asarray([[1000.0, -1000.0]]), be64.asarray([[0.0, 1.0]])))
    assert value == pytest.approx(1000.0)
    np.testing.assert_array_equal(loss.backward(), [[0.5, -0.5]])


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_gradient_at_minus_50_is_the_tiny_true_value(backend_name, dtype):
    """sigmoid(-50) = 1.93e-22; 0.5*(tanh(-25) + 1) rounds it to 0."""
    be = host_backend(backend_name, dtype)
    loss = SigmoidBinaryCrossEntropy(be)
    loss.forward(be.asarray([[-50.0]]), be.asarray([[0.0]]))
    grad = float(loss.backward()[0, 0])
    assert grad == pytest.approx(np.exp(-50.0) / (1 + np.exp(-50.0)), rel=1e-6)


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_float32_sigmoid_gradient_keeps_relative_accuracy_for_negative_logits(backend_name):
    be32, be64 = host_backend(backend_name, "float32"), host_backend(backend_name, "float64")
    z = np.linspace(-11.0, -8.0, 301, dtype=np.float32).reshape(7, 43)  # exact in float32
    zeros = np.zeros(z.shape)
    grads = []
    for be in (be32, be64):
        loss = SigmoidBinaryCrossEntropy(be)
        loss.forward(be.asarray(z), be.asarray(zeros))
        grads.append(np.asarray(loss.backward(), dtype=np.float64) * z.size)  # = sigmoid(z)
    relative = np.abs(grads[0] / grads[1] - 1)
    assert relative.max() < 4 * np.finfo(np.float32).eps  # a few float32 ulps, not 1e-4 as from tanh


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_integer_targets_and_masks_are_cast_to_the_float_dtype(backend_name):
    be = host_backend(backend_name, "float32")
    logits = be.asarray(LOGITS)
    for loss, args in [(SigmoidBinaryCrossEntropy(be), (TARGETS, MASK)), (MeanSquaredError(be), (TARGETS,))]:
        expected = float(loss.forward(logits, *(be.asarray(a) for a in args)))
        expected_grad = loss.backward().copy()
        value = loss.forward(logits, *(be.asarray(a.astype(np.int64), dtype=np.int64) for a in args))
        grad = loss.backward()
        assert np.asarray(value).dtype == np.float32 and grad.dtype == np.float32
        assert float(value) == expected
        np.testing.assert_array_equal(grad, expected_grad)


def test_mean_squared_error(be64):
    loss = MeanSquaredError(be64)
    target = be64.asarray(TARGETS)
    assert max_relative_error(check_loss(loss, LOGITS, target)) < 1e-6
    assert float(loss.forward(be64.asarray(LOGITS), target)) == pytest.approx(((LOGITS - TARGETS) ** 2).mean())
    np.testing.assert_allclose(loss.backward(), 2 * (LOGITS - TARGETS) / LOGITS.size, rtol=1e-12)


def test_backward_reuses_one_buffer_per_shape(be64):
    loss = MeanSquaredError(be64)
    loss.forward(be64.asarray(LOGITS), be64.asarray(TARGETS))
    first = loss.backward()
    loss.forward(be64.asarray(LOGITS + 1), be64.asarray(TARGETS))
    assert loss.backward() is first
    loss.forward(be64.asarray(LOGITS[:3]), be64.asarray(TARGETS[:3]))
    assert loss.backward().shape == (3, 5)


def test_loss_errors(be64):
    with pytest.raises(ValueError, match=r"logits \(N, C\) and labels \(N,\)"):
        SoftmaxCrossEntropy(be64).forward(be64.asarray(LOGITS), be64.asarray(LABELS[:3]))
    with pytest.raises(ValueError, match="labels must be integers"):
        SoftmaxCrossEntropy(be64).forward(be64.asarray(LOGITS), be64.asarray(LABELS.astype(float)))
    with pytest.raises(ValueError, match="label 5 in row 2 is outside"):
        SoftmaxCrossEntropy(be64).forward(be64.asarray(LOGITS), be64.asarray(np.array([0, 1, 5, 0, 0, 0, 0, 0])))
    with pytest.raises(ValueError, match=r"mask must have the predictions' shape \(N, T\) \(8, 5\), got \(2, 5\)"):
        SigmoidBinaryCrossEntropy(be64).forward(be64.asarray(LOGITS), be64.asarray(TARGETS), be64.asarray(MASK[:2]))
    with pytest.raises(ValueError, match="targets must be numeric"):
        MeanSquaredError(be64).forward(be64.asarray(LOGITS), TARGETS.astype(str))
    with pytest.raises(RuntimeError, match="without a forward"):
        MeanSquaredError(be64).backward()

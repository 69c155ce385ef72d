"""The Numba backend: every hot op and variant against minisnn.reference, masks bit for bit, training."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from conftest import assert_close, compiled_numba_backend

from minisnn import reference as ref
from minisnn.backends import get_backend
from minisnn.backends.numba_backend import NumbaBackend
from minisnn.constants import ALPHA_01, LAMBDA_01, alpha_dropout_params
from minisnn.rng import DropoutMask, dropout_key, keep_threshold

ELEMENTWISE_SHAPES = [(1,), (31,), (1003,), (257, 129)]
ROW_SHAPES = [(1, 1), (1, 31), (3, 1003), (257, 129)]
# Values on both sides of SELU's kink, far into saturation and past float32's exp overflow.
SPECIAL_VALUES = [0.0, -0.0, 1e-7, -1e-7, -0.3466, -0.3467, -1.0, -20.0, -87.5, -100.0, -1000.0, 90.0]


def make(rng, shape, dtype, layout="c", scale=3.0, special=False):
    """A float array of `shape` with layout "c", "strided" (every other element) or "transposed"."""
    values = scale * rng.standard_normal(shape)
    if special:
        count = min(len(SPECIAL_VALUES), values.size)
        values.reshape(-1)[:count] = SPECIAL_VALUES[:count]
    if layout == "c":
        return values.astype(dtype)
    if layout == "strided":
        x = np.empty((*shape[:-1], 2 * shape[-1]), dtype)[..., ::2]
    else:
        x = np.empty(shape[::-1], dtype).T
    x[...] = values
    return x


def make_mask(seed=3, step=7, rate=0.05, per_feature=False):
    p = alpha_dropout_params(rate)
    k0, k1 = dropout_key(seed, step)
    return DropoutMask(k0, k1, keep_threshold(rate), p.a, p.b, p.dropped_value, per_feature=per_feature)


def f64(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


# The magnitudes of the terms an op adds (conftest.assert_close's `magnitude`): where a result is
# a difference of inexact terms, its rounding error scales with them, not with the result.

def selu_backward_terms(dy, y):
    """|dy| times the terms of the slope: lam, or y + lam*alpha (y is rounded)."""
    y = np.asarray(y, np.float64)
    return np.abs(np.asarray(dy, np.float64)) * np.where(y > 0, LAMBDA_01, np.abs(y) + LAMBDA_01 * ALPHA_01)


def dropout_terms(mask, x):
    """scale*x + shift with scale and shift rounded to the dtype."""
    return mask.scale * np.abs(np.asarray(x, np.float64)) + abs(mask.shift) + abs(mask.dropped)


def dropout_backward_terms(dy, y, mask):
    """dz from s = (y - shift)/scale, itself inexact, as in the slope s + lam*alpha."""
    y = np.asarray(y, np.float64)
    s = (y - mask.shift) / mask.scale
    slope = np.where(s > 0, LAMBDA_01, (np.abs(y) + abs(mask.shift)) / mask.scale + LAMBDA_01 * ALPHA_01)
    return np.abs(np.asarray(dy, np.float64)) * mask.scale * slope * mask.keep(y.shape)


def assert_column_sums_close(actual, expected, terms, dtype):
    """Column sums of (N, D) terms: rounding grows with N and with the sum of |terms|."""
    terms = np.abs(np.asarray(terms, np.float64))
    assert_close(actual, expected, dtype, "sum", magnitude=terms.sum(axis=0), terms=len(terms))


@pytest.fixture(params=["compiled", "jit"])
def be(request, dtype):
    """Every op test runs on both kernel sources: compiled ahead of time, and jitted."""
    return compiled_numba_backend(dtype) if request.param == "compiled" else NumbaBackend(dtype=dtype, kernels="jit")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def variants_of(be, op):
    return sorted(be.variants(op).items())


# ---- elementwise ops ------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
@pytest.mark.parametrize("layout", ["c", "strided"])
def test_selu_forward_matches_reference(be, rng, dtype, shape, layout):
    x = make(rng, shape, dtype, layout, special=True)
    expected = ref.selu_forward(*f64(x), ALPHA_01, LAMBDA_01)
    for name, fn in variants_of(be, "selu_forward"):
        y = fn(x, ALPHA_01, LAMBDA_01)
        assert y.dtype == dtype and y.shape == shape, name
        assert_close(y, expected, dtype)


def test_selu_forward_exp_polynomial_is_accurate_over_the_negative_range(be, dtype):
    x = -np.geomspace(1e-30, 200.0, 200_001).astype(dtype)  # (n,)
    expected = ref.selu_forward(*f64(x), ALPHA_01, LAMBDA_01)
    error_in_ulps = np.abs(be.selu_forward(x, ALPHA_01, LAMBDA_01) - expected) / np.spacing(np.abs(expected).astype(dtype))
    assert error_in_ulps.max() <= 4


def test_selu_forward_propagates_nan_and_keeps_infinities(be, dtype):
    x = np.array([np.nan, -np.inf, np.inf, 0.0], dtype)
    y = be.selu_forward(x, ALPHA_01, LAMBDA_01)
    assert np.isnan(y[0])
    assert y[1] == pytest.approx(-LAMBDA_01 * ALPHA_01, rel=1e-6)
    assert y[2] == np.inf and y[3] == 0.0


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
@pytest.mark.parametrize("layout", ["c", "strided"])
def test_selu_backward_matches_reference(be, rng, dtype, shape, layout):
    y = ref.selu_forward(make(rng, shape, dtype, layout, special=True), ALPHA_01, LAMBDA_01).astype(dtype)
    dy = make(rng, shape, dtype, layout, scale=1.0)
    expected = ref.selu_backward(*f64(dy, y), ALPHA_01, LAMBDA_01)
    for name, fn in variants_of(be, "selu_backward"):
        assert_close(fn(dy, y, ALPHA_01, LAMBDA_01), expected, dtype, magnitude=selu_backward_terms(dy, y), what=name)


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
@pytest.mark.parametrize("layout", ["c", "strided"])
@pytest.mark.parametrize("per_feature", [False, True])
def test_alpha_dropout_forward_matches_reference_and_its_mask(be, rng, dtype, shape, layout, per_feature):
    x = make(rng, shape, dtype, layout)
    mask = make_mask(rate=0.3, per_feature=per_feature)
    keep = mask.keep(shape)
    expected = ref.alpha_dropout_forward(*f64(x), mask)
    for name, fn in variants_of(be, "alpha_dropout_forward"):
        y = fn(x, mask)
        assert_close(y, expected, dtype, magnitude=dropout_terms(mask, x), what=name)
        assert np.array_equal(y[~keep], np.full((~keep).sum(), mask.dropped, dtype)), name


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
@pytest.mark.parametrize("layout", ["c", "strided"])
@pytest.mark.parametrize("per_feature", [False, True])
def test_alpha_dropout_backward_zeroes_exactly_the_dropped_elements(be, rng, dtype, shape, layout, per_feature):
    dy = make(rng, shape, dtype, layout, scale=1.0)
    dy[dy == 0] = 1.0  # so that a zero in dx can only come from the mask
    mask = make_mask(rate=0.3, per_feature=per_feature)
    expected = ref.alpha_dropout_backward(*f64(dy), mask)
    for name, fn in variants_of(be, "alpha_dropout_backward"):
        dx = fn(dy, mask)
        assert_close(dx, expected, dtype)
        assert np.array_equal(dx == 0, ~mask.keep(shape)), name


@pytest.mark.parametrize("seed, step, rate", [(0, 0, 0.05), (1, 123456, 0.5), (2**40 + 5, 2**33, 0.9)])
def test_masks_are_bit_identical_to_minisnn_rng_on_a_large_array(seed, step, rate):
    be = NumbaBackend("float32")
    mask = make_mask(seed, step, rate)
    dy = np.ones(70_001, np.float32)  # (n,): dx != 0 exactly where kept
    for name, fn in variants_of(be, "alpha_dropout_backward"):
        assert np.array_equal(fn(dy, mask) != 0, mask.keep(dy.shape)), name
    for name, fn in variants_of(be, "alpha_dropout_forward"):
        assert np.array_equal(fn(dy, mask) != np.float32(mask.dropped), mask.keep(dy.shape)), name


# ---- row ops: bias, column sums, fused dropout --------------------------------------------

ROW_LAYOUTS = ["c", "transposed"]


@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("layout", ROW_LAYOUTS)
def test_bias_selu_forward_matches_reference(be, rng, dtype, shape, layout):
    z = make(rng, shape, dtype, layout, special=True)
    b = make(rng, shape[1:], dtype, scale=0.5)
    expected = ref.bias_selu_forward(*f64(z, b), ALPHA_01, LAMBDA_01)
    for name, fn in variants_of(be, "bias_selu_forward"):
        assert_close(fn(z, b, ALPHA_01, LAMBDA_01), expected, dtype)


@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("layout", ROW_LAYOUTS)
def test_bias_selu_backward_matches_reference(be, rng, dtype, shape, layout):
    y = ref.selu_forward(make(rng, shape, dtype, special=True), ALPHA_01, LAMBDA_01).astype(dtype)
    dy = make(rng, shape, dtype, layout, scale=1.0)
    expected_dz, expected_db = ref.bias_selu_backward(*f64(dy, y), ALPHA_01, LAMBDA_01)
    terms = selu_backward_terms(dy, y)
    for name, fn in variants_of(be, "bias_selu_backward"):
        dz, db = fn(dy, y, ALPHA_01, LAMBDA_01)
        assert_close(dz, expected_dz, dtype, magnitude=terms, what=name)
        assert_column_sums_close(db, expected_db, terms, dtype)


@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("layout", ROW_LAYOUTS)
def test_column_sum_matches_reference(be, rng, dtype, shape, layout):
    x = make(rng, shape, dtype, layout)
    for name, fn in variants_of(be, "column_sum"):
        assert_column_sums_close(fn(x), ref.column_sum(*f64(x)), x, dtype)


@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("layout", ROW_LAYOUTS)
@pytest.mark.parametrize("per_feature", [False, True])
def test_bias_selu_dropout_forward_matches_reference(be, rng, dtype, shape, layout, per_feature):
    z = make(rng, shape, dtype, layout, special=True)
    b = make(rng, shape[1:], dtype, scale=0.5)
    mask = make_mask(rate=0.3, per_feature=per_feature)
    expected = ref.bias_selu_dropout_forward(*f64(z, b), mask, ALPHA_01, LAMBDA_01)
    terms = dropout_terms(mask, ref.bias_selu_forward(*f64(z, b), ALPHA_01, LAMBDA_01))
    for name, fn in variants_of(be, "bias_selu_dropout_forward"):
        y = fn(z, b, mask, ALPHA_01, LAMBDA_01)
        assert_close(y, expected, dtype, magnitude=terms, what=name)
        assert np.all(y[~mask.keep(shape)] == np.asarray(mask.dropped, dtype)), name


@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("layout", ROW_LAYOUTS)
@pytest.mark.parametrize("per_feature", [False, True])
def test_bias_selu_dropout_backward_matches_reference(be, rng, dtype, shape, layout, per_feature):
    mask = make_mask(rate=0.3, per_feature=per_feature)
    z, b = make(rng, shape, dtype), make(rng, shape[1:], dtype, scale=0.5)
    y = np.asarray(ref.bias_selu_dropout_forward(z, b, mask, ALPHA_01, LAMBDA_01), dtype)
    dy = make(rng, shape, dtype, layout, scale=1.0)
    expected_dz, expected_db = ref.bias_selu_dropout_backward(*f64(dy, y), mask, ALPHA_01, LAMBDA_01)
    terms = dropout_backward_terms(dy, y, mask)
    for name, fn in variants_of(be, "bias_selu_dropout_backward"):
        dz, db = fn(dy, y, mask, ALPHA_01, LAMBDA_01)
        assert_close(dz, expected_dz, dtype, magnitude=terms, what=name)
        assert_column_sums_close(db, expected_db, terms, dtype)
        assert np.all(dz[~mask.keep(shape)] == 0), name


# ---- loss, optimizer, matmul ----------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 2), (7, 10), (257, 129)])
@pytest.mark.parametrize("layout", ROW_LAYOUTS)
def test_softmax_cross_entropy_matches_reference(be, rng, dtype, shape, layout):
    logits = make(rng, shape, dtype, layout, scale=10.0)
    labels = rng.integers(0, shape[1], shape[0])
    expected_loss, expected_probs = ref.softmax_cross_entropy_forward(*f64(logits), labels)
    for name, fn in variants_of(be, "softmax_cross_entropy_forward"):
        loss, probs = fn(logits, labels)
        assert loss.shape == () and loss.dtype == dtype, name
        # A log-sum-exp of C terms per row, shifted by the row maximum, averaged over N rows.
        row_terms = 1 + np.abs(logits).max(axis=1) + np.abs(logits[np.arange(shape[0]), labels])
        assert_close(loss, expected_loss, dtype, "loss", magnitude=row_terms.mean(), terms=sum(shape), what=name)
        assert_close(probs, expected_probs, dtype, "loss", terms=shape[1], what=name)  # divided by a sum of C
    for name, fn in variants_of(be, "softmax_cross_entropy_backward"):
        probs = expected_probs.astype(dtype)
        dlogits = fn(probs, labels, out=probs)  # in place, as the loss layer calls it
        assert dlogits is probs, name
        assert_close(dlogits, ref.softmax_cross_entropy_backward(expected_probs, labels), dtype)


# Relative error bounds for probabilities: float32 rounding of the shifted logit s = logit - max
# alone costs up to |s| * 2^-24 (about 4e-6 at |s| = 70); exp itself is within 2 ulp.
PROBS_RTOL = {np.dtype("float32"): 1e-5, np.dtype("float64"): 1e-13}


@pytest.mark.parametrize("scale", [10.0, 30.0])
def test_softmax_small_probabilities_are_accurate_in_relative_terms(be, dtype, scale):
    rng = np.random.default_rng(11)
    logits = (scale * rng.standard_normal((128, 1024))).astype(dtype)  # (N, C)
    labels = rng.integers(0, 1024, 128)
    _, expected = ref.softmax_cross_entropy_forward(*f64(logits), labels)
    _, probs = be.softmax_cross_entropy_forward(logits, labels)
    normal = expected >= np.finfo(dtype).tiny
    assert normal.sum() > 0.3 * normal.size  # scale 30 leaves most of the row below float32's range
    relative = np.abs(probs[normal] - expected[normal]) / expected[normal]
    assert relative.max() < PROBS_RTOL[dtype], f"worst relative error {relative.max():.2e}"
    assert np.all(probs[~normal] <= np.finfo(dtype).tiny)
    dlogits = be.softmax_cross_entropy_backward(probs, labels)
    expected_dlogits = ref.softmax_cross_entropy_backward(expected, labels)
    normal = np.abs(expected_dlogits) >= np.finfo(dtype).tiny
    relative = np.abs(dlogits[normal] - expected_dlogits[normal]) / np.abs(expected_dlogits[normal])
    assert relative.max() < 2 * PROBS_RTOL[dtype], f"worst relative error {relative.max():.2e}"


def test_exp_polynomial_is_within_two_ulp_and_flushes_below_the_normal_range(dtype):
    """The softmax's exp of non-positive arguments, against NumPy's exp in float64."""
    import numba

    from minisnn.backends.numba_kernels import _exp_nonpositive

    @numba.njit
    def exp_all(x, out):
        for i in range(x.size):
            out[i] = _exp_nonpositive(x[i])

    tiny = np.finfo(dtype).tiny
    edge = np.log(np.float64(tiny))  # below it exp(x) is subnormal
    x = np.concatenate([-np.geomspace(1e-30, 1000.0, 300_001), np.linspace(edge - 0.01, edge + 0.01, 2001),
                        [0.0, -0.0, -np.inf, np.nan]]).astype(dtype)  # (n,)
    got = np.empty_like(x)
    exp_all(x, got)
    assert got.dtype == dtype
    expected = np.exp(x.astype(np.float64))
    normal = expected >= tiny
    error_in_ulps = np.abs(got[normal] - expected[normal]) / np.spacing(expected[normal].astype(dtype))
    assert error_in_ulps.max() <= 2
    assert np.all(got[(expected < tiny) & ~np.isnan(x)] == 0)  # flushed: never a subnormal
    assert got[-4] == 1 and got[-3] == 1 and got[-2] == 0 and np.isnan(got[-1])


@pytest.mark.parametrize("bad", [-1, 10])
def test_softmax_cross_entropy_rejects_labels_out_of_range(bad):
    be = NumbaBackend()
    logits = np.zeros((4, 10), np.float32)
    labels = np.array([0, 1, bad, 3])
    with pytest.raises(ValueError, match="row 2"):
        be.softmax_cross_entropy_forward(logits, labels)
    with pytest.raises(ValueError, match="row 2"):
        be.softmax_cross_entropy_backward(logits, labels)


@pytest.mark.parametrize("momentum, weight_decay, nesterov", [(0.0, 0.0, False), (0.9, 0.0, False),
                                                              (0.9, 1e-3, True), (0.0, 1e-2, False)])
@pytest.mark.parametrize("shape", [(1,), (1003,), (31, 129)])
def test_sgd_update_matches_reference(be, rng, dtype, shape, momentum, weight_decay, nesterov):
    param, grad, velocity = (make(rng, shape, dtype) for _ in range(3))
    expected_param, expected_velocity = param.astype(np.float64), velocity.astype(np.float64)  # copies
    ref.sgd_update(expected_param, *f64(grad), expected_velocity, 0.05, momentum, weight_decay, nesterov)
    g_terms = np.abs(grad) + weight_decay * np.abs(param)  # |terms| of every inexact quantity
    v_terms = momentum * np.abs(velocity) + g_terms
    step_terms = g_terms if momentum == 0.0 else (g_terms + momentum * v_terms if nesterov else v_terms)
    for name, fn in variants_of(be, "sgd_update"):
        p, v = param.copy(), velocity.copy()
        assert fn(p, grad, v, 0.05, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov) is None
        assert_close(p, expected_param, dtype, magnitude=np.abs(param) + 0.05 * step_terms, what=name)
        assert_close(v, expected_velocity, dtype, magnitude=v_terms if momentum else None, what=name)


def adam_terms(param, grad, m, expected_v, lr, weight_decay, step, decoupled, beta1=0.9, beta2=0.999, eps=1e-8):
    """|terms| of Adam's param and m: param*(1 - lr*wd) - lr/c1 * m / (sqrt(v)/sqrt(c2) + eps)."""
    g = np.abs(grad) + (0.0 if decoupled else weight_decay * np.abs(param))
    m_terms = beta1 * np.abs(m) + (1 - beta1) * g
    decayed = np.abs(param) * (1 - lr * weight_decay if decoupled else 1.0)
    denominator = np.sqrt(expected_v) / np.sqrt(1 - beta2 ** step) + eps
    return decayed + lr / (1 - beta1 ** step) * m_terms / denominator, m_terms


@pytest.mark.parametrize("weight_decay, decoupled", [(0.0, False), (1e-2, False), (1e-2, True)])  # Adam, L2, AdamW
@pytest.mark.parametrize("step", [1, 3, 1000])
@pytest.mark.parametrize("shape", [(1,), (1003,), (31, 129)])
def test_adam_update_matches_reference(be, rng, dtype, shape, step, weight_decay, decoupled):
    param, grad, m = (make(rng, shape, dtype, scale=1.0) for _ in range(3))
    v = (0.01 * rng.random(shape)).astype(dtype)
    expected_param, expected_m, expected_v = (a.astype(np.float64) for a in (param, m, v))  # copies
    ref.adam_update(expected_param, *f64(grad), expected_m, expected_v, 0.01, 0.9, 0.999, 1e-8, weight_decay, step,
                    decoupled)
    param_terms, m_terms = adam_terms(param, grad, m, expected_v, 0.01, weight_decay, step, decoupled)
    grad_before = grad.copy()
    for name, fn in variants_of(be, "adam_update"):
        p, m_state, v_state = param.copy(), m.copy(), v.copy()
        assert fn(p, grad, m_state, v_state, 0.01, 0.9, 0.999, 1e-8, weight_decay, step, decoupled) is None
        assert_close(p, expected_param, dtype, magnitude=param_terms, what=name)
        assert_close(m_state, expected_m, dtype, magnitude=m_terms, what=name)
        assert_close(v_state, expected_v, dtype, what=name)
        assert np.array_equal(grad, grad_before), name


def test_matmul_writes_into_out_for_transposed_operands(be, rng, dtype):
    a, b = make(rng, (257, 129), dtype, "transposed"), make(rng, (129, 31), dtype)
    out = np.empty((257, 31), dtype)
    assert be.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, ref.matmul(*f64(a, b)), rtol=1e-4, atol=1e-4)


# ---- buffers and errors ------------------------------------------------------------------

def test_ops_write_into_given_buffers_including_in_place():
    be, rng, mask = NumbaBackend(), np.random.default_rng(0), make_mask()
    z, b, dy = make(rng, (64, 33), "float32"), make(rng, (33,), "float32"), make(rng, (64, 33), "float32")
    expected = ref.bias_selu_dropout_forward(*f64(z, b), mask, ALPHA_01, LAMBDA_01)
    y = z.copy()
    assert be.bias_selu_dropout_forward(y, b, mask, ALPHA_01, LAMBDA_01, out=y) is y  # out aliases z
    assert_close(y, expected, "float32", magnitude=dropout_terms(mask, ref.bias_selu_forward(*f64(z, b), ALPHA_01,
                                                                                              LAMBDA_01)))
    dz, db = np.empty_like(z), np.empty_like(b)
    got_dz, got_db = be.bias_selu_dropout_backward(dy, y, mask, ALPHA_01, LAMBDA_01, dz=dz, db=db)
    assert got_dz is dz and got_db is db
    x = z.copy()
    assert be.selu_forward(x, ALPHA_01, LAMBDA_01, out=x) is x
    assert_close(x, ref.selu_forward(*f64(z), ALPHA_01, LAMBDA_01), "float32")


IN_PLACE_CALLS = {  # op -> call(be, first, second, b, mask, out): `out` may alias `first`
    "selu_forward": lambda be, x, y, b, m, out: be.selu_forward(x, ALPHA_01, LAMBDA_01, out=out),
    "selu_backward": lambda be, dy, y, b, m, out: be.selu_backward(dy, y, ALPHA_01, LAMBDA_01, out=out),
    "bias_selu_forward": lambda be, z, y, b, m, out: be.bias_selu_forward(z, b, ALPHA_01, LAMBDA_01, out=out),
    "bias_selu_backward": lambda be, dy, y, b, m, out: be.bias_selu_backward(dy, y, ALPHA_01, LAMBDA_01, dz=out)[0],
    "alpha_dropout_forward": lambda be, x, y, b, m, out: be.alpha_dropout_forward(x, m, out=out),
    "alpha_dropout_backward": lambda be, dy, y, b, m, out: be.alpha_dropout_backward(dy, m, out=out),
    "bias_selu_dropout_forward": lambda be, z, y, b, m, out: be.bias_selu_dropout_forward(z, b, m, ALPHA_01,
                                                                                        LAMBDA_01, out=out),
    "bias_selu_dropout_backward": lambda be, dy, y, b, m, out: be.bias_selu_dropout_backward(
        dy, y, m, ALPHA_01, LAMBDA_01, dz=out)[0],
}


@pytest.mark.parametrize("op", sorted(IN_PLACE_CALLS))
def test_in_place_calls_equal_out_of_place_calls_bit_for_bit(op):
    be, rng, mask = NumbaBackend(), np.random.default_rng(2), make_mask(rate=0.3)
    first, b = make(rng, (37, 129), "float32", special=True), make(rng, (129,), "float32")
    y = ref.bias_selu_dropout_forward(make(rng, (37, 129), "float32"), b, mask, ALPHA_01, LAMBDA_01).astype(np.float32)
    separate = IN_PLACE_CALLS[op](be, first, y, b, mask, np.empty_like(first))
    aliased = first.copy()
    assert IN_PLACE_CALLS[op](be, aliased, y, b, mask, aliased) is aliased
    assert np.array_equal(aliased, separate, equal_nan=True)


def test_a_non_contiguous_out_receives_the_result():
    be, rng = NumbaBackend(), np.random.default_rng(0)
    x = make(rng, (31, 17), "float32")
    holder = np.zeros((17, 31), np.float32)
    out = holder.T  # (31, 17), not C-contiguous
    assert be.selu_forward(x, ALPHA_01, LAMBDA_01, out=out) is out
    assert_close(holder.T, ref.selu_forward(*f64(x), ALPHA_01, LAMBDA_01), "float32")
    db_holder = np.zeros((17, 2), np.float32)
    _, db = be.bias_selu_backward(x, ref.selu_forward(x, ALPHA_01, LAMBDA_01), ALPHA_01, LAMBDA_01, db=db_holder[:, 0])
    assert db.base is db_holder and np.array_equal(db_holder[:, 0], db)


@pytest.mark.parametrize("call, message", [
    (lambda be, x: be.selu_forward(x.astype(np.float64), 1.0, 1.0, out=x), "shape .* dtype"),
    (lambda be, x: be.selu_backward(x, x.astype(np.float64), 1.0, 1.0), "one dtype"),
    (lambda be, x: be.selu_forward(x.astype(np.int32), 1.0, 1.0), "float32 or float64"),
    (lambda be, x: be.bias_selu_forward(x, x[0, :3], 1.0, 1.0), r"b \(D,\)"),
    (lambda be, x: be.selu_backward(x, x[:2], 1.0, 1.0), "equal shapes"),
    (lambda be, x: be.column_sum(x[0]), r"\(N, D\)"),
    (lambda be, x: be.softmax_cross_entropy_forward(x, np.zeros(4)), "integers"),
    (lambda be, x: be.selu_forward(x, 1.0, 1.0, out=np.broadcast_to(x, x.shape)), "read-only"),
    (lambda be, x: be.sgd_update(np.broadcast_to(x, x.shape), x, None, 0.1), "writeable"),
    (lambda be, x: be.adam_update(x, x, x.T.copy().T, x, 0.1, 0.9, 0.999, 1e-8, 0.0, 1, False), "C-contiguous"),
    (lambda be, x: be.adam_update(x, x, x, x, 0.1, 0.9, 0.999, 1e-8, 0.0, 0, False), "1-based"),
    (lambda be, x: be.adam_update(x, x[:2], x, x, 0.1, 0.9, 0.999, 1e-8, 0.0, 1, False), "equal shapes"),
])
def test_bad_input_gives_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(NumbaBackend(), np.zeros((4, 5), np.float32))


def test_jitted_kernels_are_cached_and_still_run_where_no_cache_location_exists():
    from minisnn.backends import numba_kernels

    assert numba_kernels.kernels_are_cached()
    script = ("import numpy as np; from minisnn.backends import numba_backend as nb, numba_kernels\n"
              "be = nb.NumbaBackend(kernels='jit')\n"
              "y = be.selu_forward(np.array([-1.0, 2.0], np.float32), 1.6732632, 1.0507010)\n"
              "print(numba_kernels.kernels_are_cached(), [round(v, 4) for v in y.tolist()])")
    # _IPythonCacheLocator applies to IPython cells only: Numba finds no locator for this file.
    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "_IPythonCacheLocator"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.split() == ["False", "[-1.1113,", "2.1014]"]


def test_get_backend_finds_numba_and_falls_back_without_it():
    assert get_backend("numba").name == "numba"
    script = (
        "import sys; sys.modules['numba'] = None\n"
        "from minisnn.backends import get_backend, BackendUnavailable\n"
        "assert get_backend('auto').name == 'numpy'\n"
        "try:\n    get_backend('numba')\nexcept BackendUnavailable as exc:\n    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "pip install 'minisnn[numba]'" in result.stdout


# ---- training -------------------------------------------------------------------------------

def test_twenty_seeded_training_steps_give_the_same_losses_on_numpy_and_numba():
    from minisnn.losses import SoftmaxCrossEntropy
    from minisnn.model import mlp
    from minisnn.optim import SGD
    from minisnn.train import train_step

    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 20)).astype(np.float32)  # (N, D)
    labels = (x[:, 0] + x[:, 1] > 0).astype(np.int64)  # (N,)
    losses = {}
    for name in ("numpy", "numba"):
        be = get_backend(name, dtype="float32")
        model = mlp(20, 2, depth=4, width=48, dropout=0.1, backend=be, seed=3)
        loss, optimizer = SoftmaxCrossEntropy(be), SGD(model, lr=0.05, momentum=0.9)
        losses[name] = [float(train_step(model, loss, optimizer, x, labels)) for _ in range(20)]
    assert losses["numpy"][-1] < losses["numpy"][0]  # it trains
    np.testing.assert_allclose(losses["numba"], losses["numpy"], rtol=1e-5)


def test_float32_kernels_compute_in_float32():
    """No float64 arithmetic in a float32 op kernel: one stray `1 / scale` (a float64 in Numba)
    once halved the vector width of the fused dropout backward, and a `1 / total` made the softmax
    normalize in float64. The loss sum is float64 by design: scalar conversions, additions and
    subtractions (the sum, and the returned bad row) are all the softmax forward may have."""
    import numba

    from minisnn.backends.numba_kernels import KERNELS

    float64_ops = re.compile(r"= (?:fpext|[su]itofp) .* to double|= f(?:add|sub|mul|div) .*double")
    scalar_sum_ops = re.compile(r"= (?:fpext float .* to double|uitofp nneg i64 .* to double"
                                r"|f(?:add|sub) contract double )")
    for name, (kernel, signature) in KERNELS.items():
        options = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}
        fresh = numba.njit(signature.replace("F", "f4"), cache=False, **options)(kernel.py_func)  # cached code has no IR
        float64_arithmetic = [line.strip() for line in fresh.inspect_llvm(fresh.signatures[0]).splitlines()
                              if float64_ops.search(line)]
        if name == "softmax_cross_entropy_forward":
            assert float64_arithmetic, "the loss sum is float64: the pattern no longer matches it"
            float64_arithmetic = [line for line in float64_arithmetic if not scalar_sum_ops.search(line)]
        assert not float64_arithmetic, f"{name} computes in float64: {float64_arithmetic[:3]}"

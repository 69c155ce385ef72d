"""The CuPy backend against minisnn.reference: every kernel and variant, awkward shapes, both dtypes.

Tests marked gpu need CuPy and a working GPU and are skipped cleanly otherwise. The unmarked tests
at the end check the error messages a machine without CuPy or without a GPU gives.
"""

import importlib
import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from minisnn import reference as ref
from minisnn.backends import BackendUnavailable, get_backend
from minisnn.constants import ALPHA_01, LAMBDA_01, alpha_dropout_params
from minisnn.rng import DropoutMask, dropout_key, keep_threshold

ALPHA, LAM = ALPHA_01, LAMBDA_01
DTYPES = ("float32", "float64")
# (rtol, atol) per dtype, against the float64 reference on the same (rounded) inputs.
TOL = {"float32": (2e-6, 2e-6), "float64": (1e-13, 1e-13)}
ELEMENTWISE_SHAPES = [(1,), (31,), (1003,), (257, 129), (3, 5, 7)]
MATRIX_SHAPES = [(1, 1), (1, 37), (7, 1), (257, 129), (1003, 10), (4099, 3), (20, 4100)]
SGEMM_SHAPES = [(1, 1, 1), (31, 17, 5), (257, 129, 65), (130, 9, 257), (129, 300, 131), (8, 0, 8)]


def _cupy_backend(dtype="float32"):
    pytest.importorskip("cupy")
    from minisnn.backends.cupy_backend import CupyBackend

    try:
        return CupyBackend(dtype=dtype)
    except BackendUnavailable as exc:
        pytest.skip(f"no usable GPU: {exc}")


@pytest.fixture(params=DTYPES)
def be(request):
    return _cupy_backend(request.param)


def _symmetric(rng, shape, dtype, scale=3.0):
    """Normal values on both sides of 0, with the edge cases 0, -0, +-tiny, +-100 written in."""
    x = rng.normal(scale=scale, size=shape).ravel()
    edges = [0.0, -0.0, 1e-8, -1e-8, 100.0, -100.0, 0.5, -0.5]
    x[: min(len(x), len(edges))] = edges[: len(x)]
    return x.reshape(shape).astype(dtype)


def _away_from_kink(x, gap=1e-2):
    """x with every |value| >= gap (the SELU branch cannot flip between dtypes)."""
    return np.where(np.abs(x) < gap, np.copysign(gap, x) + x, x).astype(x.dtype)


def _mask(rate=0.1, seed=7, step=3, per_feature=False):
    k0, k1 = dropout_key(seed, step)
    p = alpha_dropout_params(rate)
    return DropoutMask(k0, k1, keep_threshold(rate), p.a, p.b, p.dropped_value, per_feature=per_feature)


def _check(be, got, expected, what):
    rtol, atol = TOL[be.dtype.name]
    got = be.to_numpy(got)
    assert got.dtype == be.dtype, f"{what}: dtype {got.dtype}"
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=what)


def _f64(x):
    return np.asarray(x, dtype=np.float64)


@pytest.mark.gpu
def test_shared_backend_checks(be):
    # The same op-by-op checks every backend passes (tests/backend_cases.py).
    from backend_cases import check_all_ops

    check_all_ops(be)


# ---- elementwise ----------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_selu_forward_backward(be, shape):
    rng = np.random.default_rng(1)
    x = _symmetric(rng, shape, be.dtype)
    dy = rng.normal(size=shape).astype(be.dtype)
    y = be.selu_forward(be.asarray(x), ALPHA, LAM)
    _check(be, y, ref.selu_forward(_f64(x), ALPHA, LAM), "selu_forward")
    y_host = be.to_numpy(y)
    dx = be.selu_backward(be.asarray(dy), y, ALPHA, LAM)
    _check(be, dx, ref.selu_backward(_f64(dy), _f64(y_host), ALPHA, LAM), "selu_backward")


@pytest.mark.gpu
def test_selu_never_makes_nan_and_passes_nan_through(be):
    x = np.array([np.nan, np.inf, -np.inf, 89.0, 1000.0, -1000.0], dtype=be.dtype)
    y = be.to_numpy(be.selu_forward(be.asarray(x), ALPHA, LAM))
    assert np.isnan(y[0])
    np.testing.assert_allclose(y[1:], ref.selu_forward(_f64(x[1:]), ALPHA, LAM).astype(be.dtype), rtol=1e-6)


@pytest.mark.gpu
def test_elementwise_ops_work_in_place(be):
    rng = np.random.default_rng(2)
    x = _symmetric(rng, (1003,), be.dtype)
    buf = be.asarray(x)
    assert be.selu_forward(buf, ALPHA, LAM, out=buf) is buf
    _check(be, buf, ref.selu_forward(_f64(x), ALPHA, LAM), "selu_forward in place")
    mask = _mask()
    assert be.alpha_dropout_forward(buf, mask, out=buf) is buf
    _check(be, buf, ref.alpha_dropout_forward(ref.selu_forward(_f64(x), ALPHA, LAM), mask), "dropout in place")


@pytest.mark.gpu
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES + [(300, 301)])
@pytest.mark.parametrize("rate, per_feature", [(0.05, False), (0.5, False), (0.5, True)])
def test_alpha_dropout_forward_backward(be, shape, rate, per_feature):
    rng = np.random.default_rng(3)
    mask = _mask(rate=rate, per_feature=per_feature)
    x = _symmetric(rng, shape, be.dtype)
    dy = rng.normal(size=shape).astype(be.dtype)
    _check(be, be.alpha_dropout_forward(be.asarray(x), mask), ref.alpha_dropout_forward(_f64(x), mask), "fwd")
    _check(be, be.alpha_dropout_backward(be.asarray(dy), mask), ref.alpha_dropout_backward(_f64(dy), mask), "bwd")


@pytest.mark.gpu
@pytest.mark.parametrize("seed,step,rate,per_feature", [(0, 0, 0.05, False), (7, 3, 0.1, False),
                                                         (2**40 + 5, 123456, 0.5, False), (1, 2**33, 0.9, False),
                                                         (7, 3, 0.5, True)])
def test_dropout_masks_are_bit_identical_to_the_cpu(be, seed, step, rate, per_feature):
    shape = (517, 263)  # 135971 elements: many blocks, a ragged tail
    mask = _mask(rate=rate, seed=seed, step=step, per_feature=per_feature)
    expected = mask.keep(shape)
    ones = be.asarray(np.ones(shape))
    kept = be.to_numpy(be.alpha_dropout_backward(ones, mask)) != 0
    np.testing.assert_array_equal(kept, expected)
    z = be.zeros(shape)
    fused = be.to_numpy(be.bias_selu_dropout_forward(z, be.zeros((shape[1],)), mask, ALPHA, LAM))
    # selu(0) = 0, so kept elements hold exactly shift and dropped ones exactly `dropped`.
    np.testing.assert_array_equal(fused == be.dtype.type(mask.dropped), ~expected)
    np.testing.assert_array_equal(fused[expected], be.dtype.type(mask.shift))


# ---- bias + SELU and the column reductions ------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("shape", MATRIX_SHAPES)
def test_bias_selu_forward_backward_and_column_sum(be, shape):
    rng = np.random.default_rng(4)
    z = _symmetric(rng, shape, be.dtype)
    b = rng.normal(size=shape[1]).astype(be.dtype)
    dy = rng.normal(size=shape).astype(be.dtype)
    y = be.bias_selu_forward(be.asarray(z), be.asarray(b), ALPHA, LAM)
    _check(be, y, ref.bias_selu_forward(_f64(z), _f64(b), ALPHA, LAM), "bias_selu_forward")
    y_host = be.to_numpy(y)
    dz, db = be.bias_selu_backward(be.asarray(dy), y, ALPHA, LAM)
    dz_ref, db_ref = ref.bias_selu_backward(_f64(dy), _f64(y_host), ALPHA, LAM)
    _check(be, dz, dz_ref, "dz")
    _assert_sums_close(be, db, db_ref, np.abs(dz_ref).sum(axis=0), dz_ref.shape[0], "db")
    col = be.column_sum(be.asarray(dy))
    _assert_sums_close(be, col, dy.astype(np.float64).sum(axis=0), np.abs(dy).sum(axis=0), dy.shape[0], "column_sum")


def _assert_sums_close(be, got, expected, magnitude, rows, what):
    """Sums of `rows` terms, each within the elementwise tolerance, added in any order:
    |error| <= (rows*eps + rtol)*sum|terms| + rows*atol (tight in float64)."""
    got = be.to_numpy(got)
    assert got.shape == expected.shape and got.dtype == be.dtype, what
    rtol, atol = TOL[be.dtype.name]
    bound = (rows * np.finfo(be.dtype).eps + rtol) * magnitude + rows * atol
    assert np.all(np.abs(got - expected) <= bound), f"{what}: max error {np.abs(got - expected).max()}"


@pytest.mark.gpu
@pytest.mark.parametrize("shape", MATRIX_SHAPES)
def test_column_sum_is_exact_on_integers(be, shape):
    # Small integers sum exactly in any order, so every row must be counted exactly once.
    values = np.random.default_rng(13).integers(-8, 9, size=shape).astype(be.dtype)
    got = be.to_numpy(be.column_sum(be.asarray(values)))
    np.testing.assert_array_equal(got, values.astype(np.int64).sum(axis=0))


@pytest.mark.gpu
@pytest.mark.parametrize("shape", MATRIX_SHAPES)
@pytest.mark.parametrize("per_feature", [False, True])
def test_bias_selu_dropout_forward_backward(be, shape, per_feature):
    rng = np.random.default_rng(5)
    mask = _mask(rate=0.1, seed=11, step=2, per_feature=per_feature)
    b = rng.normal(size=shape[1]).astype(be.dtype)
    z = (_away_from_kink(_symmetric(rng, shape, np.float64) + b) - b).astype(be.dtype)
    dy = rng.normal(size=shape).astype(be.dtype)
    y = be.bias_selu_dropout_forward(be.asarray(z), be.asarray(b), mask, ALPHA, LAM)
    _check(be, y, ref.bias_selu_dropout_forward(_f64(z), _f64(b), mask, ALPHA, LAM), "bias_selu_dropout_forward")
    y_host = be.to_numpy(y)
    dz, db = be.bias_selu_dropout_backward(be.asarray(dy), y, mask, ALPHA, LAM)
    dz_ref, db_ref = ref.bias_selu_dropout_backward(_f64(dy), _f64(y_host), mask, ALPHA, LAM)
    rtol, atol = TOL[be.dtype.name]
    np.testing.assert_allclose(be.to_numpy(dz), dz_ref, rtol=4 * rtol, atol=atol)  # s = (y - shift)/scale rounds
    _assert_sums_close(be, db, db_ref, np.abs(dz_ref).sum(axis=0), dz_ref.shape[0], "db")
    assert np.all(be.to_numpy(dz)[~mask.keep(shape)] == 0)


@pytest.mark.gpu
def test_backward_writes_into_given_buffers(be):
    rng = np.random.default_rng(6)
    dy = be.asarray(rng.normal(size=(65, 33)))
    y = be.asarray(rng.normal(size=(65, 33)))
    dz, db = be.zeros((65, 33)), be.zeros((33,))
    got_dz, got_db = be.bias_selu_backward(dy, y, ALPHA, LAM, dz=dz, db=db)
    assert got_dz is dz and got_db is db
    dz_ref, db_ref = ref.bias_selu_backward(_f64(be.to_numpy(dy)), _f64(be.to_numpy(y)), ALPHA, LAM)
    _check(be, dz, dz_ref, "dz")
    _assert_sums_close(be, db, db_ref, np.abs(dz_ref).sum(axis=0), dz_ref.shape[0], "db")


# ---- softmax cross-entropy ----------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(1, 1), (1, 10), (37, 3), (1003, 10), (64, 1000)])
def test_softmax_cross_entropy(be, shape):
    rng = np.random.default_rng(7)
    n, c = shape
    logits = rng.normal(scale=4.0, size=shape).astype(be.dtype)
    logits[0, 0] = 1000.0  # the log-sum-exp must not overflow
    labels = rng.integers(0, c, size=n)
    loss, probs = be.softmax_cross_entropy_forward(be.asarray(logits), be.asarray(labels))
    loss_ref, probs_ref = ref.softmax_cross_entropy_forward(_f64(logits), labels)
    assert loss.shape == () and loss.dtype == be.dtype
    rtol, atol = TOL[be.dtype.name]
    np.testing.assert_allclose(float(be.to_numpy(loss)), loss_ref, rtol=10 * rtol, atol=atol)
    _check(be, probs, probs_ref, "probs")
    dlogits = be.softmax_cross_entropy_backward(probs, be.asarray(labels))
    _check(be, dlogits, ref.softmax_cross_entropy_backward(probs_ref, labels), "dlogits")


@pytest.mark.gpu
def test_softmax_cross_entropy_in_place_and_int32_labels(be):
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(50, 7)).astype(be.dtype)
    labels = rng.integers(0, 7, size=50).astype(np.int32)
    buf = be.asarray(logits)
    loss, probs = be.softmax_cross_entropy_forward(buf, be.asarray(labels), probs=buf)
    assert probs is buf
    loss_ref, probs_ref = ref.softmax_cross_entropy_forward(_f64(logits), labels)
    np.testing.assert_allclose(float(be.to_numpy(loss)), loss_ref, rtol=10 * TOL[be.dtype.name][0])
    _check(be, probs, probs_ref, "probs in place")
    dlogits = be.softmax_cross_entropy_backward(probs, be.asarray(labels), out=probs)
    _check(be, dlogits, ref.softmax_cross_entropy_backward(probs_ref, labels), "dlogits in place")


@pytest.mark.gpu
@pytest.mark.parametrize("bad, labels_dtype", [(-1, np.int64), (4, np.int64), (2**40, np.int64), (-1, np.int32),
                                                (4, np.int32)])
def test_out_of_range_labels_raise_naming_the_first_bad_row(be, bad, labels_dtype):
    logits = be.asarray(np.zeros((300, 4)))  # rows in several blocks: the first bad row must win
    labels = np.zeros(300, labels_dtype)
    labels[[299, 7, 150]] = bad
    labels = be.asarray(labels)
    with pytest.raises(ValueError, match=rf"label {bad} in row 7 is outside \[0, 4\)"):
        be.softmax_cross_entropy_forward(logits, labels)
    with pytest.raises(ValueError, match=rf"label {bad} in row 7 is outside \[0, 4\)"):
        be.softmax_cross_entropy_backward(logits, labels)
    good = be.asarray(np.full(300, 3))
    loss, probs = be.softmax_cross_entropy_forward(logits, good)  # the flag is reset for every call
    np.testing.assert_allclose(float(be.to_numpy(loss)), np.log(4.0), rtol=1e-6)
    be.softmax_cross_entropy_backward(probs, good)


@pytest.mark.gpu
@pytest.mark.parametrize("scale", [10.0, 30.0])
def test_softmax_small_probabilities_are_accurate_in_relative_terms(be, scale):
    # expf / exp directly: no cancellation for small probabilities (float32 rounding of the
    # shifted logit s alone costs up to |s| * 2^-24, about 4e-6 at |s| = 70).
    rng = np.random.default_rng(11)
    logits = (scale * rng.standard_normal((128, 1024))).astype(be.dtype)  # (N, C)
    labels = rng.integers(0, 1024, 128)
    _, expected = ref.softmax_cross_entropy_forward(_f64(logits), labels)
    _, probs = be.softmax_cross_entropy_forward(be.asarray(logits), be.asarray(labels))
    dlogits = be.to_numpy(be.softmax_cross_entropy_backward(probs, be.asarray(labels)))
    expected_dlogits = ref.softmax_cross_entropy_backward(expected, labels)
    rtol = 1e-5 if be.dtype == np.float32 else 1e-13
    tiny = np.finfo(be.dtype).tiny
    for got, want in ((be.to_numpy(probs), expected), (dlogits, expected_dlogits)):
        normal = np.abs(want) >= tiny
        assert normal.sum() > 0.3 * normal.size
        relative = np.abs(got[normal] - want[normal]) / np.abs(want[normal])
        assert relative.max() < rtol, f"worst relative error {relative.max():.2e}"


# ---- SGD --------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(1,), (1003,), (257, 129)])
@pytest.mark.parametrize(
    "momentum,weight_decay,nesterov", [(0.0, 0.0, False), (0.0, 1e-2, False), (0.9, 0.0, False), (0.9, 1e-3, True)]
)
def test_sgd_update(be, shape, momentum, weight_decay, nesterov):
    rng = np.random.default_rng(9)
    param, grad, velocity = (rng.normal(size=shape).astype(be.dtype) for _ in range(3))
    p, v = be.asarray(param), be.asarray(velocity)
    for _ in range(3):
        be.sgd_update(p, be.asarray(grad), v, 0.05, momentum, weight_decay, nesterov)
    p_ref, v_ref = param.astype(np.float64), velocity.astype(np.float64)  # copies: updated in place
    for _ in range(3):
        ref.sgd_update(p_ref, _f64(grad), v_ref, 0.05, momentum, weight_decay, nesterov)
    _check(be, p, p_ref, "param")
    _check(be, v, v_ref, "velocity")


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(1,), (1003,), (257, 129)])
@pytest.mark.parametrize("weight_decay,decoupled", [(0.0, False), (1e-2, False), (1e-2, True)])  # Adam, L2, AdamW
def test_adam_update(be, shape, weight_decay, decoupled):
    rng = np.random.default_rng(14)
    param, grad = (rng.normal(size=shape).astype(be.dtype) for _ in range(2))
    p, m, v = be.asarray(param), be.zeros(shape), be.zeros(shape)
    p_ref, m_ref, v_ref = param.astype(np.float64), np.zeros(shape), np.zeros(shape)  # the reference works in place
    # |terms| of each state: rounding errors scale with them (and add up over the steps), not with the result.
    p_terms, m_terms, v_terms = np.abs(p_ref), np.zeros(shape), np.zeros(shape)
    for step in (1, 2, 3):
        g = grad * be.dtype.type(step)  # a different gradient each step
        be.adam_update(p, be.asarray(g), m, v, 0.01, 0.9, 0.999, 1e-8, weight_decay, step, decoupled)
        before = p_ref.copy()
        ref.adam_update(p_ref, _f64(g), m_ref, v_ref, 0.01, 0.9, 0.999, 1e-8, weight_decay, step, decoupled)
        g_terms = np.abs(g) + (0.0 if decoupled else weight_decay * np.abs(before))
        m_terms = 0.9 * m_terms + 0.1 * g_terms
        v_terms = 0.999 * v_terms + 0.001 * g_terms**2
        p_terms += np.abs(p_ref - before) + (0.01 * weight_decay * np.abs(before) if decoupled else 0.0)
    eps = np.finfo(be.dtype).eps
    for got, want, bound, what in ((p, p_ref, 24 * eps * p_terms, "param"), (m, m_ref, 24 * eps * m_terms, "m"),
                                   (v, v_ref, 24 * eps * v_terms, "v")):
        error = np.abs(be.to_numpy(got) - want)
        assert np.all(error <= bound), f"{what}: worst error {np.max(error - bound):.3g} over the bound"


@pytest.mark.gpu
def test_adam_update_rejects_step_zero_and_non_contiguous_state(be):
    x = be.zeros((4, 6))
    with pytest.raises(ValueError, match="1-based"):
        be.adam_update(x, x, x.copy(), x.copy(), 0.01, 0.9, 0.999, 1e-8, 0.0, 0, False)
    with pytest.raises(ValueError, match="C-contiguous"):
        be.adam_update(x, x, be.zeros((6, 4)).T, x.copy(), 0.01, 0.9, 0.999, 1e-8, 0.0, 1, False)


# ---- matmul: cuBLAS and the hand-written SGEMMs -------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("nkm", SGEMM_SHAPES)
@pytest.mark.parametrize("variant", ["default", "sgemm_naive", "sgemm_tiled", "sgemm_register_blocked"])
def test_matmul_variants(be, variant, nkm):
    n, k, m = nkm
    rng = np.random.default_rng(10)
    a = rng.normal(size=(n, k)).astype(be.dtype)
    b = rng.normal(size=(k, m)).astype(be.dtype)
    matmul = be.variants("matmul")[variant]
    _assert_matmul_close(be, matmul(be.asarray(a), be.asarray(b)), a, b)
    # transposed views (as in dW = x.T @ dz) and a preallocated out
    out = be.empty((n, m))
    got = matmul(be.asarray(np.ascontiguousarray(a.T)).T, be.asarray(b), out=out)
    assert got is out
    _assert_matmul_close(be, out, a, b)


def _assert_matmul_close(be, got, a, b):
    """Within the classic bound |C - AB| <= k*eps*(|A||B|), computed in float64."""
    k = a.shape[1]
    bound = 2 * max(k, 1) * np.finfo(be.dtype).eps * (np.abs(_f64(a)) @ np.abs(_f64(b))) + 1e-30
    got = be.to_numpy(got)
    assert got.shape == (a.shape[0], b.shape[1]) and got.dtype == be.dtype
    assert np.all(np.abs(got - _f64(a) @ _f64(b)) <= bound)


@pytest.mark.gpu
def test_use_variant_switches_matmul():
    be = _cupy_backend()
    assert set(be.variants("matmul")) == {"default", "sgemm_naive", "sgemm_tiled", "sgemm_register_blocked"}
    be.use_variant("matmul", "sgemm_register_blocked")
    assert be.selected_variant("matmul") == "sgemm_register_blocked"
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(be.to_numpy(be.matmul(be.asarray(a), be.asarray(a.T))), a @ a.T)


# ---- input checking ---------------------------------------------------------------------------
@pytest.mark.gpu
def test_bad_arguments_are_named():
    be = _cupy_backend()
    x = be.asarray(np.ones((4, 6)))
    with pytest.raises(TypeError, match="cupy.ndarray"):
        be.selu_forward(np.ones(3, dtype=np.float32), ALPHA, LAM)
    with pytest.raises(ValueError, match="C-contiguous"):
        be.selu_forward(x, ALPHA, LAM, out=be.empty((6, 4)).T)
    with pytest.raises(ValueError, match="shape"):
        be.selu_forward(x, ALPHA, LAM, out=be.empty((4, 5)))
    with pytest.raises(TypeError, match="float64"):
        be.selu_backward(x, be.asarray(np.ones((4, 6)), dtype=np.float64), ALPHA, LAM)
    with pytest.raises(ValueError, match="bias"):
        be.bias_selu_forward(x, be.zeros((5,)), ALPHA, LAM)
    with pytest.raises(ValueError, match="do not chain"):
        be.variants("matmul")["sgemm_tiled"](x, x)
    with pytest.raises(TypeError, match="labels"):
        be.softmax_cross_entropy_forward(x, be.asarray(np.zeros(4)))


@pytest.mark.gpu
def test_non_contiguous_inputs_are_handled(be):
    rng = np.random.default_rng(12)
    z = _symmetric(rng, (40, 30), be.dtype)
    view = be.asarray(z)[::2, 1::2]  # (20, 15), strided
    y = be.selu_forward(view, ALPHA, LAM)
    _check(be, y, ref.selu_forward(_f64(z[::2, 1::2]), ALPHA, LAM), "strided selu")


# ---- training: the same losses as the NumPy backend ------------------------------------------------
def _manual_training_losses(be, steps=20):
    """A 3-layer SNN trained with the backend's ops directly (no layers): the per-step losses."""
    rng = np.random.default_rng(0)
    x = be.asarray(rng.normal(size=(64, 20)))  # (N, D_in)
    labels = be.asarray(rng.integers(0, 5, size=64))  # (N,)
    sizes = [20, 32, 32, 5]
    weights = [be.asarray(rng.normal(scale=fan_in**-0.5, size=(fan_in, fan_out))) for fan_in, fan_out in pairwise(sizes)]
    biases = [be.zeros((d,)) for d in sizes[1:]]
    velocities = [be.zeros(p.shape) for p in weights + biases]
    dropout = alpha_dropout_params(0.1)
    losses = []
    for step in range(steps):
        masks = [
            DropoutMask(*dropout_key(layer, step), keep_threshold(0.1), dropout.a, dropout.b, dropout.dropped_value)
            for layer in range(2)
        ]
        hs = [x]
        for i in range(2):  # hidden layers: fused bias + SELU + alpha dropout
            hs.append(be.bias_selu_dropout_forward(be.matmul(hs[-1], weights[i]), biases[i], masks[i], ALPHA, LAM))
        logits = be.matmul(hs[-1], weights[2])
        logits += biases[2]
        loss, probs = be.softmax_cross_entropy_forward(logits, labels)
        losses.append(float(be.to_numpy(loss)))
        dz = be.softmax_cross_entropy_backward(probs, labels)
        grads_w, grads_b = [None] * 3, [None] * 3
        grads_w[2], grads_b[2] = be.matmul(hs[2].T, dz), be.column_sum(dz)
        dh = be.matmul(dz, weights[2].T)
        for i in (1, 0):
            dz, grads_b[i] = be.bias_selu_dropout_backward(dh, hs[i + 1], masks[i], ALPHA, LAM)
            grads_w[i] = be.matmul(hs[i].T, dz)
            dh = be.matmul(dz, weights[i].T)
        for p, g, v in zip(weights + biases, grads_w + grads_b, velocities):
            be.sgd_update(p, g, v, 0.1, momentum=0.9)
    return np.array(losses)


@pytest.mark.gpu
def test_manual_training_losses_equal_numpy():
    cupy_losses = _manual_training_losses(_cupy_backend())
    numpy_losses = _manual_training_losses(get_backend("numpy"))
    assert numpy_losses[-1] < numpy_losses[0]  # it trains
    np.testing.assert_allclose(cupy_losses, numpy_losses, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_mlp_training_losses_equal_numpy():
    cupy_backend = _cupy_backend()
    from minisnn.losses import SoftmaxCrossEntropy
    from minisnn.model import mlp
    from minisnn.optim import SGD
    from minisnn.train import train_step

    def losses(be):
        data_rng = np.random.default_rng(1)
        x = be.asarray(data_rng.normal(size=(128, 24)))  # (N, D)
        labels = be.asarray(data_rng.integers(0, 4, size=128))  # (N,)
        model = mlp(24, 4, depth=4, width=64, dropout=0.05, backend=be, seed=3)
        loss_fn = SoftmaxCrossEntropy(be)
        optimizer = SGD(model, lr=0.05, momentum=0.9)
        return np.array([float(be.to_numpy(train_step(model, loss_fn, optimizer, x, labels))) for _ in range(20)])

    numpy_losses = losses(get_backend("numpy"))
    assert numpy_losses[-1] < numpy_losses[0]  # it trains
    np.testing.assert_allclose(losses(cupy_backend), numpy_losses, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_float64_backend_end_to_end():
    be = _cupy_backend("float64")
    x = be.asarray(np.linspace(-3, 3, 11))
    assert x.dtype == np.float64
    _check(be, be.selu_forward(x, ALPHA, LAM), ref.selu_forward(np.linspace(-3, 3, 11), ALPHA, LAM), "float64 selu")


@pytest.mark.gpu
def test_auto_picks_cupy_and_info_names_the_device():
    be = _cupy_backend()
    assert get_backend("auto").name == "cupy"
    info = be.info()
    assert info["backend"] == "cupy" and info["device"] and info["cupy"]


# ---- without CuPy or without a GPU (these run everywhere) ----------------------------------------
def test_missing_cupy_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError
    monkeypatch.delitem(sys.modules, "minisnn.backends.cupy_backend", raising=False)
    with pytest.raises(BackendUnavailable, match="pip install 'minisnn\\[gpu\\]'"):
        get_backend("cupy")
    monkeypatch.setenv("MINISNN_BACKEND", "auto")
    assert get_backend().name != "cupy"


def test_no_gpu_gives_a_reason():
    pytest.importorskip("cupy")
    module = importlib.import_module("minisnn.backends.cupy_backend")
    try:
        module._probe_gpu()
    except BackendUnavailable as exc:
        assert "GPU" in str(exc) or "CUDA" in str(exc)
        with pytest.raises(BackendUnavailable):
            get_backend("cupy")
        assert get_backend("auto").name != "cupy"
    else:
        pytest.skip("a GPU is usable here; the no-GPU message cannot be observed")


@pytest.mark.parametrize("script", ["gpu_kernels.py", "gpu_train_step.py"])
def test_gpu_benchmarks_run_once_or_say_why_not(script, tmp_path):
    # With a GPU: a tiny run that checks every kernel and writes JSON. Without: exit 1 and the reason.
    out = tmp_path / "result.json"
    bench = Path(__file__).resolve().parent.parent / "bench"
    result = subprocess.run([sys.executable, str(bench / script), "--quick", "--json", str(out)],
                            capture_output=True, text=True, timeout=600, cwd=bench, check=False)
    if "no usable GPU" in result.stderr:
        assert result.returncode == 1 and not out.exists()
        return
    assert result.returncode == 0, result.stdout + result.stderr
    payload = json.loads(out.read_text())
    assert payload["gpu"]["backend"] == "cupy"
    if script == "gpu_kernels.py":
        assert payload["results"] and all(row["check"] != "FAILED" for row in payload["results"])

"""Reusable checks of a backend's hot ops against minisnn.reference (used by every backend's tests).

check_all_ops(backend) runs each op, on awkward shapes and on non-contiguous views, and compares
it with the reference computed in float64.
"""

import numpy as np

from conftest import AWKWARD_SHAPES, assert_close
from minisnn import reference as ref
from minisnn.constants import ALPHA_01, LAMBDA_01, alpha_dropout_params
from minisnn.rng import DropoutMask, dropout_key, keep_threshold

SELU_PARAMS = [(ALPHA_01, LAMBDA_01), (2.404005338216483, 1.070232274447111)]  # (0, 1) and (0, 4) fixed points


def alpha_mask(rate=0.1, seed=11, step=3) -> DropoutMask:
    p = alpha_dropout_params(rate)
    return DropoutMask(*dropout_key(seed, step), keep_threshold(rate), p.a, p.b, p.dropped_value)


def symmetric_inputs(rng, shape, dtype):
    """Normal values with both signs, plus explicit values around 0 and far in the tails."""
    x = rng.standard_normal(shape) * 2
    flat = x.reshape(-1)
    specials = [0.0, -0.0, 1e-7, -1e-7, -30.0, 30.0, -100.0]
    flat[: min(len(specials), flat.size)] = specials[: flat.size]
    return x.astype(dtype)


def views(be, host):
    """The array as a contiguous backend array and as a non-contiguous view (a transposed copy's .T)."""
    contiguous = be.asarray(host)
    strided = be.asarray(np.ascontiguousarray(host.T)).T
    return [contiguous, strided]


def assert_close_sum(actual, expected, n_terms, dtype):
    """A sum of n_terms values: float32 rounding grows with the number of terms."""
    if dtype == np.float64:
        assert_close(actual, expected, dtype)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * np.sqrt(n_terms))


def check_elementwise(be, rng, dtype):
    for shape in AWKWARD_SHAPES:
        x = symmetric_inputs(rng, shape, dtype)
        dy = rng.standard_normal(shape).astype(dtype)
        b = rng.standard_normal(shape[1]).astype(dtype)
        x64, dy64, b64 = x.astype(np.float64), dy.astype(np.float64), b.astype(np.float64)
        mask = alpha_mask()
        for alpha, lam in SELU_PARAMS:
            y_ref = ref.selu_forward(x64, alpha, lam)
            y_q = y_ref.astype(dtype)  # the output the backend would have stored
            for xv in views(be, x):
                assert_close(be.to_numpy(be.selu_forward(xv, alpha, lam)), y_ref, dtype)
                assert_close(be.to_numpy(be.bias_selu_forward(xv, be.asarray(b), alpha, lam)),
                             ref.bias_selu_forward(x64, b64, alpha, lam), dtype)
            assert_close(be.to_numpy(be.selu_backward(be.asarray(dy), be.asarray(y_q), alpha, lam)),
                         ref.selu_backward(dy64, y_q.astype(np.float64), alpha, lam), dtype)
            dz, db = be.bias_selu_backward(be.asarray(dy), be.asarray(y_q), alpha, lam)
            dz_ref, db_ref = ref.bias_selu_backward(dy64, y_q.astype(np.float64), alpha, lam)
            assert_close(be.to_numpy(dz), dz_ref, dtype)
            assert_close_sum(be.to_numpy(db), db_ref, shape[0], dtype)
            # Fused bias + SELU + alpha dropout, forward and backward from the output.
            yd_ref = ref.bias_selu_dropout_forward(x64, b64, mask, alpha, lam)
            yd = be.bias_selu_dropout_forward(be.asarray(x), be.asarray(b), mask, alpha, lam)
            assert_close(be.to_numpy(yd), yd_ref, dtype)
            dz, db = be.bias_selu_dropout_backward(be.asarray(dy), yd, mask, alpha, lam)
            dz_ref, _ = ref.bias_selu_dropout_backward(dy64, be.to_numpy(yd).astype(np.float64), mask, alpha, lam)
            np.testing.assert_allclose(be.to_numpy(dz), dz_ref, rtol=1e-4 if dtype == np.float32 else 1e-10,
                                       atol=1e-5 if dtype == np.float32 else 1e-12)
            assert_close_sum(be.to_numpy(db), be.to_numpy(dz).astype(np.float64).sum(0), shape[0], dtype)
        for xv in views(be, x):
            y = be.to_numpy(be.alpha_dropout_forward(xv, mask))
            assert (y[~mask.keep(shape)] == np.asarray(mask.dropped, dtype)).all()  # the same mask, bit for bit
            assert_close(y, ref.alpha_dropout_forward(x64, mask), dtype)
        dx = be.alpha_dropout_backward(be.asarray(dy), mask)
        assert_close(be.to_numpy(dx), ref.alpha_dropout_backward(dy64, mask), dtype)
        assert (be.to_numpy(dx)[~mask.keep(shape)] == 0).all()


def check_out_buffers_and_aliasing(be, rng, dtype):
    """Ops write into out= buffers, return them, and may run in place on their input."""
    x = symmetric_inputs(rng, (33, 17), dtype)
    expected = ref.selu_forward(x.astype(np.float64))
    out = be.empty(x.shape)
    assert be.selu_forward(be.asarray(x), ALPHA_01, LAMBDA_01, out=out) is out
    assert_close(be.to_numpy(out), expected, dtype)
    inplace = be.asarray(x)
    assert be.selu_forward(inplace, ALPHA_01, LAMBDA_01, out=inplace) is inplace
    assert_close(be.to_numpy(inplace), expected, dtype)
    z, b = be.asarray(x), be.asarray(rng.standard_normal(17).astype(dtype))
    result = be.bias_selu_forward(z, b, ALPHA_01, LAMBDA_01, out=z)
    assert result is z
    dy = be.asarray(rng.standard_normal((33, 17)).astype(dtype))
    dy_before = be.to_numpy(dy).copy()
    dz, db = be.empty((33, 17)), be.empty((17,))
    returned_dz, returned_db = be.bias_selu_backward(dy, z, ALPHA_01, LAMBDA_01, dz=dz, db=db)
    assert returned_dz is dz and returned_db is db
    np.testing.assert_array_equal(be.to_numpy(dy), dy_before)  # the upstream gradient is never written


def check_matmul_and_column_sum(be, rng, dtype):
    for n, k, m in [(1, 1, 1), (7, 31, 5), (130, 257, 33)]:
        a, b = rng.standard_normal((n, k)).astype(dtype), rng.standard_normal((k, m)).astype(dtype)
        expected = ref.matmul(a.astype(np.float64), b.astype(np.float64))
        tol = {"rtol": 1e-4, "atol": 1e-4 * np.sqrt(k)} if dtype == np.float32 else {"rtol": 1e-11, "atol": 1e-11}
        np.testing.assert_allclose(be.to_numpy(be.matmul(be.asarray(a), be.asarray(b))), expected, **tol)
        # Transposed views, as the backward pass uses them.
        at = be.asarray(np.ascontiguousarray(a.T)).T
        out = be.empty((n, m))
        assert be.matmul(at, be.asarray(b), out=out) is out
        np.testing.assert_allclose(be.to_numpy(out), expected, **tol)
        np.testing.assert_allclose(be.to_numpy(be.column_sum(be.asarray(a))), a.astype(np.float64).sum(0), **tol)


def check_softmax_cross_entropy(be, rng, dtype):
    for n, c in [(1, 2), (31, 10), (257, 3)]:
        logits = (rng.standard_normal((n, c)) * 5).astype(dtype)
        logits[0, 0] = 80.0  # large logits must not overflow
        labels = rng.integers(0, c, n)
        loss_ref, probs_ref = ref.softmax_cross_entropy_forward(logits.astype(np.float64), labels)
        loss, probs = be.softmax_cross_entropy_forward(be.asarray(logits), be.asarray(labels))
        tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}
        np.testing.assert_allclose(float(loss), loss_ref, **tol)
        np.testing.assert_allclose(be.to_numpy(probs), probs_ref, **tol)
        d = be.softmax_cross_entropy_backward(probs, be.asarray(labels))
        np.testing.assert_allclose(be.to_numpy(d), ref.softmax_cross_entropy_backward(probs_ref, labels), **tol)


def check_sgd_update(be, rng, dtype):
    for momentum, nesterov, wd in [(0.0, False, 0.0), (0.9, False, 1e-3), (0.9, True, 0.0)]:
        p, g = rng.standard_normal((31, 7)).astype(dtype), rng.standard_normal((31, 7)).astype(dtype)
        v = rng.standard_normal((31, 7)).astype(dtype) if momentum else None
        p_ref, v_ref = ref.sgd_update(p.astype(np.float64), g.astype(np.float64),
                                      None if v is None else v.astype(np.float64), 0.05, momentum, wd, nesterov)
        pb, gb = be.asarray(p), be.asarray(g)
        vb = None if v is None else be.asarray(v)
        be.sgd_update(pb, gb, vb, 0.05, momentum, wd, nesterov)
        assert_close(be.to_numpy(pb), p_ref, dtype)
        if v is not None:
            assert_close(be.to_numpy(vb), v_ref, dtype)


def check_all_ops(be):
    rng = np.random.default_rng(1234)
    check_elementwise(be, rng, be.dtype)
    check_out_buffers_and_aliasing(be, rng, be.dtype)
    check_matmul_and_column_sum(be, rng, be.dtype)
    check_softmax_cross_entropy(be, rng, be.dtype)
    check_sgd_update(be, rng, be.dtype)

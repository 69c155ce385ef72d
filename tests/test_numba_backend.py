"""The Numba backend beyond tests/test_ops.py (which checks every op and variant against the
reference, masks bit for bit, out= and aliasing, and the compiled kernels against the jitted ones):
the accuracy of the exp polynomials, NaN and infinities, non-contiguous out, error messages, the
kernel cache, the fall-back without Numba, float32 arithmetic in the kernels, and training."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from conftest import assert_close

from minisnn import reference as ref
from minisnn.backends import get_backend
from minisnn.backends.numba_backend import NumbaBackend
from minisnn.constants import ALPHA_01, LAMBDA_01


def f64(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


@pytest.fixture
def be(dtype):
    """The jitted kernels: tests/test_ops.py checks them against the reference on every op, variant
    and layout, and the compiled kernels against them bit for bit."""
    return NumbaBackend(dtype=dtype, kernels="jit")


# ---- the exp polynomials, NaN and infinities --------------------------------------------------

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


# ---- softmax accuracy --------------------------------------------------------------------------

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


def test_sigmoid_is_accurate_in_relative_terms_over_the_whole_range(be, dtype):
    """sigmoid(x) = e/(1 + e) below 0 keeps small outputs' relative accuracy (1/(1 + exp(-x))
    would lose it); outputs below the normal range are 0, never subnormal."""
    tiny = np.finfo(dtype).tiny
    x = np.concatenate([-np.geomspace(1e-30, 200.0, 200_001), np.geomspace(1e-30, 200.0, 200_001),
                        [0.0, -0.0, -np.inf, np.inf, np.nan]]).astype(dtype)  # (n,)
    got = be.sigmoid_forward(x)
    assert got.dtype == dtype
    wide = x.astype(np.longdouble)  # 80-bit on x86 Linux: an exact enough oracle for float64 too
    with np.errstate(over="ignore", invalid="ignore"):  # np.where evaluates both forms everywhere
        expected = np.where(wide < 0, np.exp(wide) / (1 + np.exp(wide)), 1 / (1 + np.exp(-wide)))
    normal = expected >= tiny
    error_in_ulps = np.abs(got[normal] - expected[normal]) / np.spacing(expected[normal].astype(dtype))
    assert error_in_ulps.max() <= 3
    assert np.all(got[(expected < tiny) & ~np.isnan(x)] == 0)
    assert got[-5] == 0.5 and got[-4] == 0.5 and got[-3] == 0 and got[-2] == 1 and np.isnan(got[-1])


# ---- buffers and errors ------------------------------------------------------------------

def test_sgd_update_without_momentum_leaves_a_given_velocity_alone():
    """velocity is ignored when momentum is 0 (the harness passes None there)."""
    be = NumbaBackend()
    param, velocity = np.ones(5, np.float32), np.full(5, 7.0, np.float32)
    be.sgd_update(param, np.ones(5, np.float32), velocity, 0.5)
    assert np.array_equal(param, np.full(5, 0.5, np.float32)) and np.array_equal(velocity, np.full(5, 7.0, np.float32))


def test_a_non_contiguous_out_receives_the_result():
    be = NumbaBackend()
    x = (3 * np.random.default_rng(0).standard_normal((31, 17))).astype(np.float32)
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


# Kernels whose statistics (batch and layer norm) or parameter sums are float64 by design; the
# pass that writes their (N, D) result must still run on float32 vectors.
FLOAT64_STATISTICS = ("batch_norm_forward", "batch_norm_backward", "batch_norm_inference_backward",
                      "layer_norm_forward", "layer_norm_backward", "weight_norm_forward", "weight_norm_backward")


def test_float32_kernels_compute_in_float32():
    """No float64 arithmetic in a float32 op kernel: one stray `1 / scale` (a float64 in Numba)
    once halved the vector width of the fused dropout backward, and a `1 / total` made the softmax
    normalize in float64. The loss sum is float64 by design: scalar conversions, additions and
    subtractions (the sum, and the returned bad row) and the size check of its row reshape are all
    the softmax forward may have. The
    normalization kernels (weight norm's column norms too) sum in float64 by design; their result
    is computed on float32 vectors."""
    import numba

    from minisnn.backends.numba_kernels import KERNELS

    float64_ops = re.compile(r"= (?:fpext|[su]itofp) .* to double|= f(?:add|sub|mul|div) .*double")
    scalar_sum_ops = re.compile(r"= (?:fpext float .* to double|uitofp nneg i64 .* to double"
                                r"|sitofp i64 %known_size[\w.]* to double"  # Numba's reshape checking a row's size
                                r"|f(?:add|sub) contract double )")
    for name, (kernel, signature) in KERNELS.items():
        options = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}
        fresh = numba.njit(signature.replace("F", "f4"), cache=False, **options)(kernel.py_func)  # cached code has no IR
        float64_arithmetic = [line.strip() for line in fresh.inspect_llvm(fresh.signatures[0]).splitlines()
                              if float64_ops.search(line)]
        if name in FLOAT64_STATISTICS:
            assert float64_arithmetic, f"{name} sums in float64: the pattern no longer matches it"
            assert re.search(r"= fmul [a-z ]*<\d+ x float>", fresh.inspect_llvm(fresh.signatures[0])), (
                f"{name} writes its result without float32 vector products")
            continue
        if name == "softmax_cross_entropy_forward":
            assert float64_arithmetic, "the loss sum is float64: the pattern no longer matches it"
            float64_arithmetic = [line for line in float64_arithmetic if not scalar_sum_ops.search(line)]
        assert not float64_arithmetic, f"{name} computes in float64: {float64_arithmetic[:3]}"


@pytest.mark.parametrize("classes", [1, 3, 31, 32, 33, 255, 600])
def test_softmax_row_reductions_cover_every_class_and_propagate_nan(be, dtype, classes):
    """Short rows loop plainly, long ones in vector loops with a remainder: every class counts,
    wherever it falls; a NaN logit (either sign bit: x86 makes negative ones) makes its row NaN as
    in the reference, while -inf logits get probability 0."""
    rng = np.random.default_rng(classes)
    logits = rng.standard_normal((6, classes)).astype(dtype)  # (N, C)
    logits[1, -1] = 40.0  # the row's max in the remainder (or the last vector)
    logits[2, 0] = np.nan
    logits[3, -1] = -np.nan  # sign bit set
    logits[4, :] = -np.inf
    logits[4, -1] = -0.0
    logits[5, 0] = -np.inf
    labels = np.zeros(6, np.int64)
    loss_rows = [0, 1, 4, 5] if classes > 1 else [0, 1, 4]
    labels[4] = classes - 1
    labels[5] = classes - 1
    expected_loss, expected = ref.softmax_cross_entropy_forward(*f64(logits[loss_rows]), labels[loss_rows])
    loss, probs = be.softmax_cross_entropy_forward(logits[loss_rows], labels[loss_rows])
    np.testing.assert_allclose(probs, expected, rtol=PROBS_RTOL[np.dtype(dtype)] * 10, atol=1e-30)
    assert float(loss) == pytest.approx(float(expected_loss), rel=1e-5)
    _, probs = be.softmax_cross_entropy_forward(logits, labels)
    assert np.isnan(probs[[2, 3]]).all() and not np.isnan(probs[loss_rows]).any()


# ---- the fused dropout backward from the output ----------------------------------------------

def _masks(rate: float = 0.3, seed: int = 5):
    from minisnn.layers import MaskedDropoutState

    alpha = MaskedDropoutState.alpha(rate, 0.0, 1.0, ALPHA_01, LAMBDA_01, seed).next_mask()
    return alpha, MaskedDropoutState.standard(rate, seed).next_mask()


@pytest.mark.parametrize("rate", [0.01, 0.3, 0.9])
def test_only_alpha_masks_of_the_same_selu_take_the_backward_from_the_output(dtype, rate):
    from minisnn.backends.numba_backend import _dropped_is_saturation
    from minisnn.layers import MaskedDropoutState

    alpha, standard = _masks(rate)
    assert _dropped_is_saturation(alpha, ALPHA_01, LAMBDA_01, dtype)
    assert not _dropped_is_saturation(standard, ALPHA_01, LAMBDA_01, dtype)  # dropped 0 = selu(0)
    assert not _dropped_is_saturation(alpha, 1.0, 1.0, dtype)  # another SELU saturates elsewhere
    other_point = MaskedDropoutState.alpha(rate, 0.1, 0.8, ALPHA_01, LAMBDA_01, 1).next_mask()
    assert _dropped_is_saturation(other_point, ALPHA_01, LAMBDA_01, dtype)


def _fused_backward_case(be, dtype, mask):
    """dy and y = bias_selu_dropout_forward(z, b) for z (64, 96) with SELU's kink (z + b = 0) in
    columns 0-7 and saturation (z = -40) in columns 8-15; and the reference's dz from them (float64)."""
    rng = np.random.default_rng(3)
    b = (0.5 * rng.standard_normal(96)).astype(dtype)
    z = (2 * rng.standard_normal((64, 96))).astype(dtype)
    z[:, :8] = -b[:8]
    z[:, 8:16] = -40
    dy = rng.standard_normal((64, 96)).astype(dtype)
    y = be.bias_selu_dropout_forward(z, b, mask, ALPHA_01, LAMBDA_01)
    dz_ref, _ = ref.bias_selu_dropout_backward(*f64(dy, y), mask, ALPHA_01, LAMBDA_01)
    return dy, y, dz_ref


def test_standard_dropout_keeps_the_gradient_of_kept_zeros(be, dtype):
    """Standard dropout drops to 0, which SELU also gives at z + b = 0: the backward must regenerate
    the mask there, and kept zeros pass scale * lam*alpha * dy."""
    _, standard = _masks()
    dy, y, dz_ref = _fused_backward_case(be, dtype, standard)
    dz, db = be.bias_selu_dropout_backward(dy, y, standard, ALPHA_01, LAMBDA_01)
    kept_kink = standard.keep(dz.shape)[:, :8]
    assert kept_kink.any() and np.all(dz[:, :8][kept_kink] != 0)
    terms = np.abs(dz_ref) + standard.scale * LAMBDA_01 * ALPHA_01 * np.abs(dy)  # the slope's from y
    assert_close(dz, dz_ref, dtype, magnitude=terms)
    assert_close(db, dz_ref.sum(axis=0), dtype, "sum", magnitude=terms.sum(axis=0), terms=64)


def test_alpha_dropout_backward_from_the_output_matches_the_regenerated_mask(be, dtype):
    """Bit for bit with the mask regenerated from the hash, except on kept saturated elements
    (z = -40, whose y rounds onto the dropped value), where both give zero up to rounding."""
    alpha, _ = _masks()
    dy, y, dz_ref = _fused_backward_case(be, dtype, alpha)
    dz, _ = be.bias_selu_dropout_backward(dy, y, alpha, ALPHA_01, LAMBDA_01)
    regenerated, _ = be.variants("bias_selu_dropout_backward")["v1_regenerated_mask"](dy, y, alpha, ALPHA_01,
                                                                                       LAMBDA_01)
    keep = alpha.keep(dz.shape)
    assert np.all(dz[~keep] == 0) and keep[:, 8:16].any()
    saturated = np.zeros(dz.shape, bool)
    saturated[:, 8:16] = True
    assert np.array_equal(dz[~saturated], regenerated[~saturated])
    rounding = 4 * np.finfo(dtype).eps * alpha.scale * LAMBDA_01 * ALPHA_01 * np.abs(dy[saturated])
    assert np.all(np.abs(dz[saturated]) <= rounding) and np.all(np.abs(dz_ref[saturated]) <= rounding)

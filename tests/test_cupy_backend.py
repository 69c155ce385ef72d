"""The CuPy backend beyond tests/test_ops.py (which checks every kernel and variant against the
reference, masks bit for bit, out= and aliasing, and label errors on awkward shapes, both dtypes):
NaN and infinities, exact column sums, the label flag's reset, small softmax probabilities,
argument errors, variant switching, training against the NumPy backend, and benchmarks.

Tests marked gpu need CuPy and a working GPU and are skipped cleanly otherwise;
tests/test_cuda_emulated.py runs them on the CPU under the CUDA emulator. The unmarked tests at the
end check the error messages a machine without CuPy or without a GPU gives.
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
MATRIX_SHAPES = [(1, 1), (1, 37), (7, 1), (257, 129), (1003, 10), (4099, 3), (20, 4100)]


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


def _f64(x):
    return np.asarray(x, dtype=np.float64)


# ---- elementwise and column sums ----------------------------------------------------------------
@pytest.mark.gpu
def test_selu_never_makes_nan_and_passes_nan_through(be):
    x = np.array([np.nan, np.inf, -np.inf, 89.0, 1000.0, -1000.0], dtype=be.dtype)
    y = be.to_numpy(be.selu_forward(be.asarray(x), ALPHA, LAM))
    assert np.isnan(y[0])
    np.testing.assert_allclose(y[1:], ref.selu_forward(_f64(x[1:]), ALPHA, LAM).astype(be.dtype), rtol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", MATRIX_SHAPES)
def test_column_sum_is_exact_on_integers(be, shape):
    # Small integers sum exactly in any order, so every row must be counted exactly once.
    values = np.random.default_rng(13).integers(-8, 9, size=shape).astype(be.dtype)
    got = be.to_numpy(be.column_sum(be.asarray(values)))
    np.testing.assert_array_equal(got, values.astype(np.int64).sum(axis=0))


# ---- softmax cross-entropy ----------------------------------------------------------------------
@pytest.mark.gpu
def test_the_bad_label_flag_is_reset_for_every_call():
    """test_ops checks the errors; here a call with good labels after one with bad labels (the
    first bad row of 300, in several blocks, named) must succeed."""
    be = _cupy_backend()
    logits = be.asarray(np.zeros((300, 4)))
    labels = np.zeros(300, np.int64)
    labels[[299, 7, 150]] = 4
    for op in (be.softmax_cross_entropy_forward, be.softmax_cross_entropy_backward):
        with pytest.raises(ValueError, match=r"label 4 in row 7 is outside \[0, 4\)"):
            op(logits, be.asarray(labels))
    good = be.asarray(np.full(300, 3))
    loss, probs = be.softmax_cross_entropy_forward(logits, good)
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


# ---- optimizer updates ------------------------------------------------------------------------
@pytest.mark.gpu
def test_sgd_update_without_momentum_leaves_a_given_velocity_alone():
    """velocity is ignored when momentum is 0 (test_ops passes None there)."""
    be = _cupy_backend()
    param, velocity = be.asarray(np.ones(5)), be.asarray(np.full(5, 7.0))
    be.sgd_update(param, be.asarray(np.ones(5)), velocity, 0.5)
    np.testing.assert_array_equal(be.to_numpy(param), np.full(5, 0.5, np.float32))
    np.testing.assert_array_equal(be.to_numpy(velocity), np.full(5, 7.0, np.float32))


@pytest.mark.gpu
def test_adam_update_rejects_step_zero_and_non_contiguous_state(be):
    x = be.zeros((4, 6))
    with pytest.raises(ValueError, match="1-based"):
        be.adam_update(x, x, x.copy(), x.copy(), 0.01, 0.9, 0.999, 1e-8, 0.0, 0, False)
    with pytest.raises(ValueError, match="C-contiguous"):
        be.adam_update(x, x, be.zeros((6, 4)).T, x.copy(), 0.01, 0.9, 0.999, 1e-8, 0.0, 1, False)


# ---- matmul: cuBLAS and the hand-written SGEMMs (each checked in test_ops) ------------------------
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

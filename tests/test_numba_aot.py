"""Ahead-of-time compiled Numba kernels: the same bits as the jitted ones, no Numba in the
process that uses them, and a clean fall-back to the JIT where they cannot be built."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from conftest import compiled_numba_backend

from minisnn.backends import BackendUnavailable, numba_aot, numba_backend
from minisnn.backends.numba_backend import NumbaBackend
from minisnn.constants import ALPHA_01, LAMBDA_01, alpha_dropout_params
from minisnn.rng import DropoutMask, dropout_key, keep_threshold


def every_op(be, rng, dtype):
    """The result of every hot op of `be` on fixed inputs, as a flat list of arrays."""
    p = alpha_dropout_params(0.1)
    mask = DropoutMask(*dropout_key(7, 3), keep_threshold(0.1), p.a, p.b, p.dropped_value)
    x, dy = (3 * rng.standard_normal((37, 29)).astype(dtype) for _ in range(2))
    b, labels = rng.standard_normal(29).astype(dtype), rng.integers(0, 29, 37)
    y = be.bias_selu_dropout_forward(x, b, mask, ALPHA_01, LAMBDA_01)
    loss, probs = be.softmax_cross_entropy_forward(x, labels)
    param, velocity = x.copy(), dy.copy()
    be.sgd_update(param, dy, velocity, 0.1, 0.9, 1e-3, True)
    plain = x.copy()
    be.sgd_update(plain, dy, None, 0.1, weight_decay=1e-3)
    return [be.selu_forward(x, ALPHA_01, LAMBDA_01), be.selu_backward(dy, x, ALPHA_01, LAMBDA_01),
            be.alpha_dropout_forward(x, mask), be.alpha_dropout_backward(dy, mask),
            be.bias_selu_forward(x, b, ALPHA_01, LAMBDA_01), y,
            *be.bias_selu_backward(dy, y, ALPHA_01, LAMBDA_01),
            *be.bias_selu_dropout_backward(dy, y, mask, ALPHA_01, LAMBDA_01), be.column_sum(x),
            loss, probs, be.softmax_cross_entropy_backward(probs, labels), param, velocity, plain]


@pytest.fixture
def fresh_kernel_loading(monkeypatch, tmp_path):
    """An empty compiled-kernel cache, and no kernel table remembered from earlier backends."""
    monkeypatch.setenv(numba_aot.CACHE_ENV, str(tmp_path))
    numba_backend._load_kernels.cache_clear()
    yield tmp_path
    numba_backend._load_kernels.cache_clear()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_and_jitted_kernels_give_the_same_bits(dtype):
    compiled, jitted = compiled_numba_backend(), NumbaBackend(kernels="jit")
    assert compiled.kernel_source.startswith("compiled") and jitted.kernel_source == "jit"
    results = [every_op(be, np.random.default_rng(0), dtype) for be in (compiled, jitted)]
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_a_process_on_compiled_kernels_never_imports_numba():
    compiled_numba_backend()  # built by now, or a skip
    script = ("import sys, numpy as np\n"
              "from minisnn import get_backend, mlp\n"
              "be = get_backend('numba')\n"
              "model = mlp(6, 2, depth=2, width=8, dropout=0.1, backend=be)\n"
              "print(model.forward(np.ones((3, 6), np.float32)).shape, be.kernel_source.split()[0],\n"
              "      [m for m in ('numba', 'llvmlite') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["(3,", "2)", "compiled", "[]"]


def test_a_failed_build_is_remembered_and_the_backend_jits(fresh_kernel_loading, monkeypatch):
    builds = []
    monkeypatch.setattr(numba_aot, "_build_in_child", lambda directory, name: builds.append(name) or "no C compiler")
    be = NumbaBackend()
    assert be.kernel_source.startswith("jit (compiled kernels unavailable: the ahead-of-time build failed: no C compiler")
    np.testing.assert_allclose(be.selu_forward(np.array([1.0], np.float32), ALPHA_01, LAMBDA_01), [LAMBDA_01])
    numba_backend._load_kernels.cache_clear()
    assert "failed earlier" in NumbaBackend().kernel_source and len(builds) == 1  # not built again
    with pytest.raises(BackendUnavailable, match="no C compiler"):
        NumbaBackend(kernels="compiled")
    assert list(fresh_kernel_loading.glob("*.failed"))


def test_the_module_name_changes_with_the_cpu_and_kernels_are_chosen_by_name(monkeypatch):
    name = numba_aot.module_name()
    assert name == numba_aot.module_name() and name.startswith("minisnn_numba_kernels_")
    monkeypatch.setattr(numba_aot, "_cpu_identity", lambda: "another CPU")
    assert numba_aot.module_name() != name
    monkeypatch.setenv(numba_backend.KERNELS_ENV, "jit")
    assert NumbaBackend().kernel_source == "jit"
    with pytest.raises(ValueError, match="kernels must be one of"):
        NumbaBackend(kernels="fast")

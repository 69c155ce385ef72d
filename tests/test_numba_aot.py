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


class RecordingTable(dict):
    """A backend's kernel table that notes the name of every kernel an op looks up."""

    def __init__(self, table):
        super().__init__(table)
        self.used = set()

    def __getitem__(self, key):
        self.used.add(key[0])
        return super().__getitem__(key)


def every_op(be, rng, dtype):
    """The results of every kernel of `be` on fixed inputs, as a flat list of arrays."""
    p = alpha_dropout_params(0.1)
    mask = DropoutMask(*dropout_key(7, 3), keep_threshold(0.1), p.a, p.b, p.dropped_value)
    per_feature = DropoutMask(*dropout_key(7, 4), keep_threshold(0.1), p.a, p.b, p.dropped_value, per_feature=True)
    x, dy = (3 * rng.standard_normal((37, 29)).astype(dtype) for _ in range(2))
    b, labels = rng.standard_normal(29).astype(dtype), rng.integers(0, 29, 37)
    y = be.bias_selu_dropout_forward(x, b, mask, ALPHA_01, LAMBDA_01)
    loss, probs = be.softmax_cross_entropy_forward(x, labels)
    param, velocity = x.copy(), dy.copy()
    be.sgd_update(param, dy, velocity, 0.1, 0.9, 1e-3, True)
    plain = x.copy()
    be.sgd_update(plain, dy, None, 0.1, weight_decay=1e-3)
    adam = [x.copy(), 0.1 * dy, np.abs(dy)]  # param, m, v
    be.adam_update(adam[0], dy, adam[1], adam[2], 0.01, 0.9, 0.999, 1e-8, 1e-2, 3, True)
    return [be.selu_forward(x, ALPHA_01, LAMBDA_01), be.selu_backward(dy, x, ALPHA_01, LAMBDA_01),
            be.alpha_dropout_forward(x, mask), be.alpha_dropout_backward(dy, mask),
            be.alpha_dropout_forward(x, per_feature), be.bias_selu_forward(x, b, ALPHA_01, LAMBDA_01), y,
            *be.bias_selu_backward(dy, y, ALPHA_01, LAMBDA_01),
            *be.bias_selu_dropout_backward(dy, y, mask, ALPHA_01, LAMBDA_01), be.column_sum(x),
            loss, probs, be.softmax_cross_entropy_backward(probs, labels), param, velocity, plain, *adam]


@pytest.fixture
def fresh_kernel_loading(monkeypatch, tmp_path):
    """An empty compiled-kernel cache, and no kernel table remembered from earlier backends."""
    monkeypatch.setenv(numba_aot.CACHE_ENV, str(tmp_path))
    numba_backend._load_kernels.cache_clear()
    yield tmp_path
    numba_backend._load_kernels.cache_clear()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_and_jitted_kernels_give_the_same_bits(dtype):
    from minisnn.backends.numba_kernels import KERNELS

    compiled, jitted = compiled_numba_backend(), NumbaBackend(kernels="jit")
    assert compiled.kernel_source.startswith("compiled") and jitted.kernel_source == "jit"
    compiled._kernels = RecordingTable(compiled._kernels)
    results = [every_op(be, np.random.default_rng(0), dtype) for be in (compiled, jitted)]
    assert compiled._kernels.used == set(KERNELS)  # every kernel, once per op at least
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_an_op_whose_kernel_the_compiled_module_lacks_fails_naming_it(fresh_kernel_loading, monkeypatch):
    from types import SimpleNamespace

    from minisnn.backends.numba_kernels import KERNELS

    jitted = {name: kernel for name, (kernel, _) in KERNELS.items()}
    stale = SimpleNamespace(selu_forward_f4=jitted["selu_forward"])  # a module built before the other kernels
    monkeypatch.setattr(numba_aot, "load", lambda build=True: (stale, "/cache/stale.so"))
    be = NumbaBackend(kernels="compiled")
    np.testing.assert_allclose(be.selu_forward(np.array([1.0], np.float32), ALPHA_01, LAMBDA_01), [LAMBDA_01])
    with pytest.raises(RuntimeError, match=r"kernel 'selu_forward' for float64 is missing from the compiled "
                                           r"\(/cache/stale.so\) kernels; rebuild"):
        be.selu_forward(np.array([1.0]), ALPHA_01, LAMBDA_01)
    with pytest.raises(RuntimeError, match="kernel 'adam_update' for float32 is missing"):
        x = np.ones(3, np.float32)
        be.adam_update(x, x.copy(), x.copy(), x.copy(), 0.1, 0.9, 0.999, 1e-8, 0.0, 1, False)


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

"""Ahead-of-time compiled Numba kernels: every kernel reached by the ops (tests/test_ops.py checks
they give the jitted kernels' bits), no Numba in the process that uses them, and a clean fall-back
to the JIT where they cannot be built."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from conftest import compiled_numba_backend

from minisnn.backends import BackendUnavailable, numba_aot, numba_backend
from minisnn.backends.numba_backend import NumbaBackend
from minisnn.constants import ALPHA_01, LAMBDA_01


class RecordingTable(dict):
    """A backend's kernel table that notes the name of every kernel an op looks up."""

    def __init__(self, table):
        super().__init__(table)
        self.used = set()

    def __getitem__(self, key):
        self.used.add(key[0])
        return super().__getitem__(key)


@pytest.fixture
def fresh_kernel_loading(monkeypatch, tmp_path):
    """An empty compiled-kernel cache, and no kernel table remembered from earlier backends."""
    monkeypatch.setenv(numba_aot.CACHE_ENV, str(tmp_path))
    numba_backend._load_kernels.cache_clear()
    yield tmp_path
    numba_backend._load_kernels.cache_clear()


def test_every_kernel_in_the_table_is_reached_by_an_op_the_harness_tests():
    """tests/test_ops.py compares the compiled kernels with the jitted ones bit for bit, op by op;
    here, that those ops (every variant, every case, one shape each) reach every kernel compiled."""
    import backend_cases as bc

    from minisnn.backends.numba_kernels import KERNELS

    compiled = compiled_numba_backend()
    assert compiled.kernel_source.startswith("compiled")
    compiled._kernels = RecordingTable(compiled._kernels)
    for op, variant in bc.tested_variants(compiled):
        for case in bc.CASES[op]:
            shape = case.shapes[2]
            args = case.make(bc.case_rng(case, shape), shape, compiled.dtype)
            compiled.variants(op)[variant](**{k: bc.to_backend(compiled, v) for k, v in args.items()})
    assert compiled._kernels.used == set(KERNELS)


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

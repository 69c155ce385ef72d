"""The NumPy backend against the reference, and the backend registry and variant mechanism."""

import numpy as np
import pytest

from backend_cases import check_all_ops
from minisnn.backends import BackendUnavailable, get_backend
from minisnn.backends.base import HOT_OPS
from minisnn.constants import ALPHA_01, LAMBDA_01


def test_numpy_backend_matches_the_reference(dtype):
    check_all_ops(get_backend("numpy", dtype=dtype.name))


def test_get_backend_by_name_env_and_auto(monkeypatch):
    assert get_backend("numpy").name == "numpy"
    monkeypatch.setenv("MINISNN_BACKEND", "numpy")
    assert get_backend().name == "numpy"
    monkeypatch.delenv("MINISNN_BACKEND")
    assert get_backend("auto").name in ("numpy", "numba", "cupy")
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'"):
        get_backend("tensorflow")
    with pytest.raises(ValueError, match="dtype must be one of"):
        get_backend("numpy", dtype="float16")


def test_cupy_backend_without_cupy_or_gpu_says_why():
    try:
        import cupy  # noqa: F401
        cupy.cuda.runtime.getDeviceCount()
        pytest.skip("a GPU is present")
    except Exception:
        pass
    with pytest.raises(BackendUnavailable, match="(?i)cupy|gpu"):
        get_backend("cupy")


def test_variants_can_be_registered_selected_and_listed():
    be = get_backend("numpy", dtype="float64")
    assert set(be.variants("selu_forward")) >= {"default"}
    calls = []

    def traced(x, alpha, lam, out=None):
        calls.append(x.shape)
        return be.variants("selu_forward")["default"](x, alpha, lam, out=out)

    be.register_variant("selu_forward", "v_traced", traced)
    be.use_variant("selu_forward", "v_traced")
    assert be.selected_variant("selu_forward") == "v_traced"
    be.selu_forward(np.zeros((2, 3)), ALPHA_01, LAMBDA_01)
    assert calls == [(2, 3)]
    be.use_variant("selu_forward", "default")
    be.selu_forward(np.zeros((2, 3)), ALPHA_01, LAMBDA_01)
    assert len(calls) == 1
    with pytest.raises(KeyError, match="no variant 'v9'"):
        be.use_variant("selu_forward", "v9")
    with pytest.raises(KeyError, match="unknown op"):
        be.variants("conv2d")
    assert len(HOT_OPS) == len(set(HOT_OPS))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_host_arrays_start_on_a_cache_line(dtype):
    from minisnn import mlp
    from minisnn.backends.base import CACHE_LINE

    be = get_backend("numpy", dtype=dtype)
    for shape in [(0, 4), (1,), (7, 3), (128, 1024)]:
        empty, zeros = be.empty(shape), be.zeros(shape)
        assert empty.shape == zeros.shape == shape and empty.dtype == zeros.dtype == np.dtype(dtype)
        assert empty.flags.c_contiguous and empty.flags.writeable and not zeros.any()
        assert empty.size == 0 or (empty.ctypes.data % CACHE_LINE == 0 and zeros.ctypes.data % CACHE_LINE == 0)
    model = mlp(5, 3, depth=2, width=9, dropout=0.1, backend=be)
    model.forward(np.ones((4, 5), dtype))
    model.backward(np.ones((4, 3), dtype))  # fills every layer's buffers
    arrays = [p.value for p in model.parameters()] + [p.grad for p in model.parameters()]
    arrays += [buffer for layer in model.layers for buffer in layer._buffers.values()]
    assert all(a.ctypes.data % CACHE_LINE == 0 for a in arrays)


@pytest.mark.parametrize("shape", [(200_003,), (301, 700)])
@pytest.mark.parametrize("momentum, weight_decay, nesterov", [(0.0, 0.0, False), (0.9, 1e-3, False), (0.9, 0.0, True)])
def test_sgd_update_in_slices_equals_the_reference_on_arrays_larger_than_a_slice(shape, momentum, weight_decay,
                                                                                  nesterov):
    from minisnn import reference as ref
    from minisnn.backends.numpy_backend import SGD_CHUNK

    assert np.prod(shape) > 2 * SGD_CHUNK
    rng = np.random.default_rng(0)
    param, grad, velocity = (rng.standard_normal(shape) for _ in range(3))
    expected = ref.sgd_update(param.copy(), grad, velocity.copy(), 0.1, momentum, weight_decay, nesterov)
    get_backend("numpy", dtype="float64").sgd_update(param, grad, velocity, 0.1, momentum, weight_decay, nesterov)
    np.testing.assert_allclose(param, expected[0], rtol=1e-14)
    if momentum:
        np.testing.assert_allclose(velocity, expected[1], rtol=1e-14)

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

"""The backend registry, the op table and its contracts, the variant mechanism, host array alignment.

The ops themselves, on the NumPy backend as on the others, are checked by tests/test_ops.py.
"""

import inspect

import numpy as np
import pytest

from minisnn.backends import BackendUnavailable, get_backend
from minisnn.backends.base import OPS, Backend
from minisnn.constants import ALPHA_01, LAMBDA_01


def test_get_backend_by_name_env_and_auto(monkeypatch):
    assert get_backend("numpy").name == "numpy"
    assert get_backend("numpy", dtype="float64").dtype == np.float64
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


def test_every_op_is_a_documented_backend_method_with_a_default_variant():
    assert len(OPS) == len(set(OPS))
    be = get_backend("numpy")
    for op in OPS:
        method = getattr(Backend, op)
        assert callable(method) and method.__doc__ and method.__doc__.strip(), f"{op} has no docstring contract"
        assert be.variants(op) == {"default": getattr(be, op)} and be.selected_variant(op) == "default"


def _backend_classes():
    """Every backend class importable here (the CuPy class imports without a GPU)."""
    import importlib

    from minisnn.backends import _REGISTRY

    classes = []
    for name, (module, class_name) in _REGISTRY.items():
        try:
            classes.append(pytest.param(getattr(importlib.import_module(module), class_name), id=name))
        except (ImportError, BackendUnavailable) as exc:
            classes.append(pytest.param(None, id=name, marks=pytest.mark.skip(reason=str(exc))))
    return classes


@pytest.mark.parametrize("cls", _backend_classes())
def test_overriding_ops_keep_the_default_signature(cls):
    """Layers call ops with keyword arguments too: an override must keep every parameter name."""
    for op in OPS:
        default, override = inspect.signature(getattr(Backend, op)), inspect.signature(getattr(cls, op))
        assert list(override.parameters) == list(default.parameters), f"{cls.__name__}.{op}{override} != {default}"


def test_every_variant_of_a_backend_keeps_the_signature():
    be = get_backend("numpy")
    for name in ("numba", "cupy"):
        try:
            other = get_backend(name)
        except BackendUnavailable:
            continue
        for op in OPS:
            default = list(inspect.signature(getattr(Backend, op)).parameters)[1:]  # without self
            for variant, fn in other.variants(op).items():
                assert list(inspect.signature(fn).parameters) == default, f"{name} {op} variant {variant}"
    assert set(be.variants("matmul")) == {"default"}


def test_variants_can_be_registered_selected_and_listed():
    be = get_backend("numpy", dtype="float64")
    assert set(be.variants("selu_forward")) == {"default"}
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
    assert be.selected_variant("selu_forward") == "default"
    be.selu_forward(np.zeros((2, 3)), ALPHA_01, LAMBDA_01)
    assert len(calls) == 1
    assert get_backend("numpy").variants("selu_forward").keys() == {"default"}  # per backend object
    with pytest.raises(KeyError, match="no variant 'v9'"):
        be.use_variant("selu_forward", "v9")
    with pytest.raises(KeyError, match="unknown op"):
        be.variants("conv2d")
    with pytest.raises(KeyError, match="unknown op"):
        be.register_variant("conv2d", "v1", traced)


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
    model.backward(np.ones((4, 3), dtype))  # fills every layer's work arrays
    grads = [p.grad for p in model.named_parameters()]
    work = [array for layer in model.layers for array in layer._work.values()]
    assert work and all(a.ctypes.data % CACHE_LINE == 0 for a in grads + work)


def test_parameters_start_on_a_cache_line():
    from minisnn import mlp
    from minisnn.backends.base import CACHE_LINE

    model = mlp(5, 3, depth=2, width=9, backend=get_backend("numpy"))
    assert all(p.value.ctypes.data % CACHE_LINE == 0 for p in model.named_parameters())


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_dropped_and_inactive_elements_pass_exactly_zero_even_for_infinite_dy(name):
    from minisnn.rng import DropoutMask, dropout_key, keep_threshold

    try:
        be = get_backend(name, dtype="float64")
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    mask = DropoutMask(*dropout_key(1, 2), keep_threshold(0.3), 1.2, 0.1, -1.5)
    dropped = ~mask.keep((4, 8))
    dy = np.ones((4, 8))
    dy[dropped] = np.inf
    assert dropped.any()
    assert (be.alpha_dropout_backward(dy, mask)[dropped] == 0).all()
    y = be.bias_selu_dropout_forward(np.zeros((4, 8)), np.zeros(8), mask, ALPHA_01, LAMBDA_01)
    assert (be.bias_selu_dropout_backward(dy, y, mask, ALPHA_01, LAMBDA_01)[0][dropped] == 0).all()
    y = np.where(dropped, 0.0, 1.0)
    assert (be.relu_backward(dy, y)[dropped] == 0).all()
    with pytest.raises(ValueError, match="1-based"):
        be.adam_update(*(np.zeros(3) for _ in range(4)), 0.1, 0.9, 0.999, 1e-8, 0.0, 0, False)

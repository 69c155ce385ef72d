"""Backends: get_backend("numpy" | "numba" | "cupy" | "auto"), or MINISNN_BACKEND in the environment.

Each backend lives in one module here. A module whose library is missing raises
BackendUnavailable at import, with the command that installs it; "auto" then moves on.
"""

from __future__ import annotations

import importlib
import os

from .base import OPS, Backend, BackendUnavailable

# name -> (module, class); "auto" tries them in this order, best first.
_REGISTRY = {
    "cupy": ("minisnn.backends.cupy_backend", "CupyBackend"),
    "numba": ("minisnn.backends.numba_backend", "NumbaBackend"),
    "numpy": ("minisnn.backends.numpy_backend", "NumpyBackend"),
}
BACKEND_NAMES = tuple(_REGISTRY)
ENV_VAR = "MINISNN_BACKEND"

__all__ = ["Backend", "BackendUnavailable", "OPS", "BACKEND_NAMES", "get_backend", "available_backends"]


def _backend_class(name: str) -> type[Backend]:
    module_name, class_name = _REGISTRY[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise BackendUnavailable(f"backend {name!r} is not part of this installation") from exc
        raise
    return getattr(module, class_name)


def get_backend(name: str | None = None, dtype: str = "float32") -> Backend:
    """A new backend object. `name` defaults to $MINISNN_BACKEND, else "auto".

    "auto" picks the first of cupy (only with a working GPU), numba, numpy that can run here.
    """
    name = (name or os.environ.get(ENV_VAR) or "auto").strip().lower()
    if name == "auto":
        for candidate in BACKEND_NAMES:
            try:
                return _backend_class(candidate)(dtype=dtype)
            except BackendUnavailable:
                continue
        raise AssertionError("the numpy backend is always available")  # unreachable
    if name not in _REGISTRY:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)} or 'auto'")
    return _backend_class(name)(dtype=dtype)


def available_backends() -> dict[str, str]:
    """name -> "available" or the reason it is not, for every known backend."""
    status = {}
    for name in BACKEND_NAMES:
        try:
            _backend_class(name)()
            status[name] = "available"
        except BackendUnavailable as exc:
            status[name] = str(exc)
    return status

"""Shared test settings: tolerances per dtype and the awkward shapes every op is checked on."""

import os

import numpy as np
import pytest

# Set in CI, where a C compiler is installed: a failed build of the compiled Numba kernels fails
# the tests instead of skipping them.
REQUIRE_COMPILED_ENV = "MINISNN_REQUIRE_COMPILED_KERNELS"

# Shapes that are not multiples of any vector width or block size, plus a single element.
AWKWARD_SHAPES = [(1, 1), (1, 31), (3, 1003), (257, 129), (64, 256)]

TOLERANCES = {np.dtype("float32"): {"rtol": 2e-5, "atol": 2e-6}, np.dtype("float64"): {"rtol": 1e-12, "atol": 1e-13}}


def assert_close(actual, expected, dtype) -> None:
    """Elementwise |actual - expected| <= atol + rtol*|expected| for the dtype's tolerances."""
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               **TOLERANCES[np.dtype(dtype)])


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


def compiled_numba_backend(dtype="float32"):
    """A numba backend on compiled kernels, or a skip naming why they cannot be built here."""
    from minisnn.backends import BackendUnavailable
    from minisnn.backends.numba_backend import NumbaBackend

    try:
        return NumbaBackend(dtype=dtype, kernels="compiled")
    except BackendUnavailable as exc:
        if os.environ.get(REQUIRE_COMPILED_ENV):
            raise
        pytest.skip(str(exc))

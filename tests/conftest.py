"""Shared test settings: tolerances per dtype and the awkward shapes every op is checked on."""

import numpy as np
import pytest

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

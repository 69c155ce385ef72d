"""Shared test settings: the one tolerance table, the comparison every backend test uses, fixtures.

A backend op computed in float32 or float64 is compared with minisnn.reference computed in
float64 on the same (already rounded) inputs. The allowed error of an element is

    atol + (rtol + terms * per_term) * magnitude

where magnitude is |expected| for elementwise results and, for results that add up `terms`
rounded numbers, the sum of their magnitudes (sum |x| for a column sum, |A| @ |B| for a matmul):
the classic bound for a sum of n terms in any order is about n * eps * sum |terms|.
"""

import os
from dataclasses import dataclass

import numpy as np
import pytest

# Set in CI, where a C compiler is installed: a failed build of the compiled Numba kernels fails
# the tests instead of skipping them.
REQUIRE_COMPILED_ENV = "MINISNN_REQUIRE_COMPILED_KERNELS"

# Shapes that are not multiples of any vector width or block size, plus a single element.
AWKWARD_SHAPES = [(1, 1), (1, 31), (3, 1003), (257, 129)]


@dataclass(frozen=True)
class Tolerance:
    rtol: float  # relative to the magnitude of the result
    atol: float  # absolute, for results near zero (cancellation, float32 subnormals)
    per_term: float = 0.0  # added to rtol for each term of a sum (rounding grows with N)

    def bound(self, magnitude, terms: int = 1):
        return self.atol + (self.rtol + terms * self.per_term) * np.asarray(magnitude, np.float64)


EPS32, EPS64 = float(np.finfo(np.float32).eps), float(np.finfo(np.float64).eps)
_TINY32, _TINY64 = float(np.finfo(np.float32).tiny), float(np.finfo(np.float64).tiny)

# dtype -> op class -> Tolerance: the only tolerances the backend tests use.
# elementwise: 8 ulp of the magnitude (the Numba exp polynomial is within 4 ulp; lam*alpha, scale
#   and shift are rounded to the dtype once); where an op adds an inexact intermediate to another
#   term (y + lam*alpha, 1 - y*y, scale*x + shift) the case passes the terms' magnitude.
# sum: column sums, bias gradients, summed losses: n*eps relative to sum |terms|.
# matmul: the classic bound |C - AB| <= k*eps*(|A| @ |B|), with a factor 2 for blocked orders.
# loss: softmax cross-entropy, a log-sum-exp per row (error ~C*eps) averaged over N rows; the
#   probabilities, divided by a sum of C terms.
# atol: the smallest normal number; below it results are subnormal and lose relative precision.
TOLERANCE_TABLE = {
    np.dtype("float32"): {
        "elementwise": Tolerance(rtol=8 * EPS32, atol=_TINY32),
        "sum": Tolerance(rtol=8 * EPS32, atol=_TINY32, per_term=EPS32),
        "matmul": Tolerance(rtol=0.0, atol=_TINY32, per_term=2 * EPS32),
        "loss": Tolerance(rtol=8 * EPS32, atol=_TINY32, per_term=2 * EPS32),
    },
    np.dtype("float64"): {
        "elementwise": Tolerance(rtol=8 * EPS64, atol=_TINY64),
        "sum": Tolerance(rtol=8 * EPS64, atol=_TINY64, per_term=EPS64),
        "matmul": Tolerance(rtol=0.0, atol=_TINY64, per_term=2 * EPS64),
        "loss": Tolerance(rtol=8 * EPS64, atol=_TINY64, per_term=2 * EPS64),
    },
}


def assert_close(actual, expected, dtype, kind: str = "elementwise", magnitude=None, terms: int = 1,
                 what: str = "", extra_bound=0.0) -> None:
    """|actual - expected| within TOLERANCE_TABLE[dtype][kind] of every element, plus extra_bound
    (an error that does not scale with the dtype: a float64 accumulation inside a float32 op);
    NaNs and infinities must match exactly. magnitude defaults to |expected| (elementwise results)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    special = ~np.isfinite(expected)
    assert np.array_equal(actual[special], expected[special], equal_nan=True), (
        f"{what}: NaN/inf mismatch: got {actual[special][:5]}, expected {expected[special][:5]}")
    assert np.isfinite(actual[~special]).all(), f"{what}: non-finite values where the reference is finite"
    bound = TOLERANCE_TABLE[np.dtype(dtype)][kind].bound(np.abs(expected) if magnitude is None else magnitude, terms)
    bound = np.broadcast_to(bound + extra_bound, expected.shape)
    error = np.abs(actual - expected)
    bad = (error > bound) & ~special
    if bad.any():
        worst = np.argmax(np.where(~special, error / bound, 0))
        index = np.unravel_index(worst, expected.shape) if expected.ndim else ()
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {expected.size} elements outside the {np.dtype(dtype).name} {kind} "
            f"tolerance; "
            f"worst at {index}: got {actual[index]!r}, expected {expected[index]!r}, error {error[index]:.3g} > "
            f"bound {bound[index]:.3g}")


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def torch():
    """PyTorch on one thread (skipped without it): on a small host, its OpenMP threads spinning
    against NumPy's BLAS threads made each small float64 op about 500 times slower."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


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

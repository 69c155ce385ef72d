"""Iterating g and its fixed points (docs/MATH.md sections 2-3)."""

import numpy as np
import pytest

pytest.importorskip("scipy")

from minisnn.constants import ALPHA_01, LAMBDA_01
from minisnn.theory import fixed_point, iterate, moment_map


@pytest.mark.parametrize(
    "start, expected",
    [
        ((1.0, 3.0), [2.349062199497, 1.367900202382, 1.095126364160, 1.007826891784, 1.000672222136]),
        ((0.0, 0.2), [0.271826551879, 0.591404663195, 0.853431877961, 0.986298151714, 0.998810073534]),
    ],
)
def test_iteration_matches_the_oracle_trajectory(start, expected):
    trajectory = iterate(*start, steps=30)
    assert trajectory.shape == (31, 2)
    np.testing.assert_array_equal(trajectory[0], start)
    np.testing.assert_allclose(trajectory[[1, 5, 10, 20, 30], 1], expected, rtol=0, atol=1e-10)


def test_iteration_is_vectorized_over_starts():
    trajectory = iterate(np.array([1.0, 0.0]), np.array([3.0, 0.2]), steps=5)
    assert trajectory.shape == (6, 2, 2)
    np.testing.assert_allclose(trajectory[:, 1], iterate(0.0, 0.2, steps=5), rtol=1e-15)


def test_fixed_point_for_normalized_weights_is_zero_one_and_attracting():
    fp = fixed_point()
    assert fp.mu == pytest.approx(0.0, abs=1e-14) and fp.nu == pytest.approx(1.0, abs=1e-14)
    assert fp.spectral_norm == pytest.approx(0.7876733605, abs=1e-10)
    assert fp.stable


def test_fixed_point_for_unnormalized_weights():
    fp = fixed_point(omega=0.1, tau=1.1)
    assert fp.mu == pytest.approx(0.05470598, abs=5e-9)
    assert fp.nu == pytest.approx(1.41028983, abs=5e-9)
    assert np.allclose(moment_map(fp.mu, fp.nu, 0.1, 1.1), (fp.mu, fp.nu), rtol=0, atol=1e-13)
    assert fp.stable


def test_fixed_point_from_a_far_start_matches_the_iteration():
    fp = fixed_point(omega=0.1, tau=1.1, start=(2.0, 8.0))
    end = iterate(2.0, 8.0, steps=200, omega=0.1, tau=1.1)[-1]
    np.testing.assert_allclose([fp.mu, fp.nu], end, atol=1e-12)


def test_a_diverging_map_raises_naming_the_parameters():
    with pytest.raises(RuntimeError, match="no fixed point of g found"):
        fixed_point(omega=1.0, tau=2.0, alpha=ALPHA_01, lam=LAMBDA_01, max_iter=200)


@pytest.mark.parametrize("start", [(0.0, 0.0), (0.0, -1.0), (1.0,)])
def test_bad_start_is_named(start):
    with pytest.raises(ValueError, match="start must be"):
        fixed_point(start=start)


def test_negative_steps_are_rejected():
    with pytest.raises(ValueError, match="steps must be non-negative"):
        iterate(0.0, 1.0, steps=-1)

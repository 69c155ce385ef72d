"""Initializers: exact variances, truncation, fan modes, errors."""

import numpy as np
import pytest

from minisnn.init import INITIALIZERS, fan, initialize

SHAPE = (400, 600)


@pytest.mark.parametrize("name, variance", [
    ("lecun_normal", 1 / 400), ("lecun_normal_truncated", 1 / 400), ("lecun_uniform", 1 / 400),
    ("he_normal", 2 / 400), ("he_uniform", 2 / 400), ("glorot_normal", 1 / 500), ("glorot_uniform", 1 / 500),
])
def test_variance_and_mean(name, variance):
    w = initialize(name, SHAPE, np.random.default_rng(0))
    assert w.shape == SHAPE and w.dtype == np.float64
    assert w.var() == pytest.approx(variance, rel=0.01)
    assert abs(w.mean()) < 4 * np.sqrt(variance / w.size)


def test_lecun_normal_is_not_scaled_by_a_selu_gain():
    w = initialize("lecun_normal", (1000, 1000), np.random.default_rng(1))
    assert w.var() == pytest.approx(1e-3, rel=0.005)  # 0.5625e-3 would be PyTorch's 3/4 gain


def test_truncated_normal_is_bounded_and_rescaled():
    w = initialize("lecun_normal_truncated", SHAPE, np.random.default_rng(2))
    std = np.sqrt(1 / 400)
    assert np.abs(w).max() <= 2 * std / 0.8796256610342398 + 1e-12


def test_uniform_bounds():
    w = initialize("lecun_uniform", SHAPE, np.random.default_rng(3))
    assert np.abs(w).max() <= np.sqrt(3 / 400)


def test_fan_modes_and_zeros():
    assert fan((3, 5), "fan_in") == 3 and fan((3, 5), "fan_out") == 5 and fan((3, 5), "fan_avg") == 4
    w = initialize("lecun_normal", SHAPE, np.random.default_rng(4), mode="fan_out")
    assert w.var() == pytest.approx(1 / 600, rel=0.01)
    assert not initialize("zeros", (2, 3), np.random.default_rng(0)).any()
    assert len(INITIALIZERS) == 8


def test_errors():
    with pytest.raises(ValueError, match="unknown initializer 'selu_gain'"):
        initialize("selu_gain", (2, 2), np.random.default_rng(0))
    with pytest.raises(ValueError, match="fan mode"):
        initialize("lecun_normal", (2, 2), np.random.default_rng(0), mode="fan_max")
    with pytest.raises(ValueError, match="positive sizes"):
        initialize("lecun_normal", (0, 2), np.random.default_rng(0))


def test_same_seed_same_weights():
    a = initialize("he_uniform", (5, 7), np.random.default_rng(9))
    np.testing.assert_array_equal(a, initialize("he_uniform", (5, 7), np.random.default_rng(9)))

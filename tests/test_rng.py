"""The counter-based dropout generator: purity, keep rate, independence across steps and seeds."""

import numpy as np
import pytest

from minisnn.rng import MAX_ELEMENTS, DropoutMask, dropout_key, keep_threshold, mix32, random_bits


def _lowbias32(x: int) -> int:
    """lowbias32 in plain Python integers, independent of NumPy's wrapping arithmetic."""
    x ^= x >> 16
    x = (x * 0x21F0AAAD) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x735A2D97) & 0xFFFFFFFF
    return x ^ (x >> 15)


def test_mix32_matches_a_plain_integer_implementation():
    inputs = [0, 1, 0xFFFFFFFF, 12345, 0x80000000]
    out = mix32(np.array(inputs, dtype=np.uint32))
    assert out.tolist() == [_lowbias32(v) for v in inputs]
    assert out[1] == 0x86D2FA73  # pinned: every backend must reproduce these bits
    assert np.unique(mix32(np.arange(2**20, dtype=np.uint32))).size == 2**20  # no collisions: a bijection


def test_pinned_bits_of_seed_0_step_0():
    assert dropout_key(0, 0) == (1293516399, 2802244911)
    assert random_bits((4,), *dropout_key(0, 0)).tolist() == [0x185C1472, 0x21F2F7A3, 0x5B66E361, 0x38D08F44]


def test_bits_are_a_pure_function_of_seed_step_index():
    k = dropout_key(123, 45)
    a = random_bits((37, 53), *k)
    b = random_bits((37, 53), *k)
    np.testing.assert_array_equal(a, b)
    flat = random_bits((37 * 53,), *k)
    np.testing.assert_array_equal(a.ravel(), flat)  # element i is the flat C-order index
    np.testing.assert_array_equal(random_bits((10,), *k), flat[:10])  # a prefix does not depend on the size


def test_keys_differ_across_steps_and_seeds():
    keys = {dropout_key(s, t) for s in range(20) for t in range(50)}
    assert len(keys) == 1000


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.5])
def test_keep_rate_and_independence(rate):
    thr = keep_threshold(rate)
    m1 = DropoutMask(*dropout_key(0, 0), thr, 1.0, 0.0, 0.0).keep((1000, 1000))
    m2 = DropoutMask(*dropout_key(0, 1), thr, 1.0, 0.0, 0.0).keep((1000, 1000))
    q = 1 - rate
    assert abs(m1.mean() - q) < 5 * np.sqrt(q * (1 - q) / 1e6)
    # Masks of consecutive steps are independent: P(both kept) = q^2.
    assert abs((m1 & m2).mean() - q * q) < 5 * np.sqrt(q * q * (1 - q * q) / 1e6)
    # Neighbouring elements are independent too.
    assert abs((m1[:, 1:] & m1[:, :-1]).mean() - q * q) < 0.003


def test_bit_balance():
    bits = random_bits((1 << 18,), *dropout_key(9, 9))
    ones = np.unpackbits(bits.view(np.uint8)).mean()
    assert abs(ones - 0.5) < 0.002


def test_invalid_arguments():
    with pytest.raises(ValueError):
        keep_threshold(0.0)
    with pytest.raises(ValueError):
        dropout_key(-1, 0)
    with pytest.raises(ValueError, match="2\\^32"):
        random_bits((MAX_ELEMENTS + 1,), 1, 2)

"""Counter-based randomness for dropout masks, shared bit for bit by every backend.

The keep decision of element i (its flat C-order index in the logical array) at training step t
of a layer with seed s is a pure function of (s, t, i):

    (k0, k1) = dropout_key(s, t)               # on the host, once per step: SplitMix64
    h        = mix32(mix32(i ^ k0) ^ k1)        # per element: two rounds of a 32-bit integer hash
    keep     = h < threshold                    # threshold = round(q * 2^32), q = 1 - rate

mix32 is Chris Wellons' "lowbias32" finalizer (two 32-bit multiplies, three xor-shifts). It uses
only 32-bit unsigned arithmetic, so CUDA C, Numba and NumPy compute the same bits cheaply, and the
backward pass regenerates the mask instead of storing it. Arrays are indexed with uint32, so a
dropout input may hold at most 2^32 - 1 elements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF
MAX_ELEMENTS = 2**32 - 1

# lowbias32 constants (shared with kernels/common.cuh and the Numba backend).
MIX_MUL1 = 0x21F0AAAD
MIX_MUL2 = 0x735A2D97


def _splitmix64(x: int) -> int:
    """One SplitMix64 output for state x (Python ints, exact)."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def dropout_key(seed: int, step: int) -> tuple[int, int]:
    """The two 32-bit keys (k0, k1) of step `step` of a dropout layer seeded with `seed`."""
    if seed < 0 or step < 0:
        raise ValueError(f"seed and step must be non-negative, got seed={seed}, step={step}")
    h = _splitmix64(_splitmix64(seed & MASK64) ^ (step & MASK64))
    return h & MASK32, h >> 32


def keep_threshold(rate: float) -> int:
    """The uint32 threshold under which a hash keeps its element: round((1 - rate) * 2^32)."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"a dropout mask needs a rate in (0, 1), got {rate!r}")
    return min(max(int(round((1.0 - rate) * 2.0**32)), 1), MASK32)


def mix32(x: np.ndarray) -> np.ndarray:
    """lowbias32 on a uint32 array, in place and returned (wrapping 32-bit arithmetic)."""
    x ^= x >> np.uint32(16)
    x *= np.uint32(MIX_MUL1)
    x ^= x >> np.uint32(15)
    x *= np.uint32(MIX_MUL2)
    x ^= x >> np.uint32(15)
    return x


def random_bits(shape: tuple[int, ...], k0: int, k1: int) -> np.ndarray:
    """The uint32 hash of every element index of an array of `shape` (C order), shaped like it."""
    n = int(np.prod(shape, dtype=np.int64))
    if n > MAX_ELEMENTS:
        raise ValueError(f"dropout input of shape {shape} has {n} elements; at most 2^32 - 1 are supported")
    h = np.arange(n, dtype=np.uint32)
    h ^= np.uint32(k0)
    mix32(h)
    h ^= np.uint32(k1)
    mix32(h)
    return h.reshape(shape)


@dataclass(frozen=True)
class DropoutMask:
    """Everything a backend needs to apply one step's dropout: the key, the threshold, the affine map.

    Kept elements become scale * x + shift, dropped ones `dropped`. Alpha dropout uses
    (a, b, a*alpha' + b); standard inverted dropout uses (1/q, 0, 0). With per_feature, element
    (n, j) of an (N, D) array takes the decision of index j alone: one mask per feature, shared
    by every row.
    """

    k0: int
    k1: int
    threshold: int
    scale: float
    shift: float
    dropped: float
    per_feature: bool = False

    def keep(self, shape: tuple[int, ...]) -> np.ndarray:
        """The boolean keep mask for an array of `shape` (host NumPy; the reference definition)."""
        if self.per_feature:
            features = random_bits(shape[-1:], self.k0, self.k1) < np.uint32(self.threshold)  # (D,)
            return np.broadcast_to(features, shape)
        return random_bits(shape, self.k0, self.k1) < np.uint32(self.threshold)

"""Weight initializers. Every one returns a float64 host array drawn from a NumPy Generator.

The SNN default is LeCun normal, w ~ N(0, 1/fan_in) exactly (omega ~ 0, tau ~ 1). There is no
3/4 "SELU gain": PyTorch's calculate_gain('selu') gives variance 0.5625/fan_in, which is not
self-normalizing.

| name                     | distribution                               | variance        |
|--------------------------|--------------------------------------------|-----------------|
| lecun_normal             | normal                                     | 1/fan           |
| lecun_normal_truncated   | normal cut at 2 std, rescaled (Keras, JAX) | 1/fan           |
| lecun_uniform            | uniform(-sqrt(3/fan), sqrt(3/fan))         | 1/fan           |
| he_normal / he_uniform   | normal / uniform (MSRA, for ReLU)          | 2/fan           |
| glorot_normal / _uniform | normal / uniform (Xavier), fan_avg default | 1/fan           |
| zeros                    | all zero                                   | 0               |

`fan` is fan_in by default (fan_avg = (fan_in + fan_out)/2 for Glorot); `mode` overrides it.
"""

from __future__ import annotations

import math

import numpy as np

FAN_MODES = ("fan_in", "fan_out", "fan_avg")

# name -> (variance numerator, distribution, default fan mode)
_SCHEMES = {
    "lecun_normal": (1.0, "normal", "fan_in"),
    "lecun_normal_truncated": (1.0, "truncated_normal", "fan_in"),
    "lecun_uniform": (1.0, "uniform", "fan_in"),
    "he_normal": (2.0, "normal", "fan_in"),
    "he_uniform": (2.0, "uniform", "fan_in"),
    "glorot_normal": (1.0, "normal", "fan_avg"),
    "glorot_uniform": (1.0, "uniform", "fan_avg"),
    "zeros": (0.0, "zeros", "fan_in"),
}
INITIALIZERS = tuple(_SCHEMES)

TRUNCATION = 2.0  # in standard deviations
# Standard deviation of a standard normal truncated to [-2, 2]; dividing by it restores unit variance.
_TRUNCATED_STD = math.sqrt(
    1.0 - 2.0 * TRUNCATION * math.exp(-TRUNCATION**2 / 2) / math.sqrt(2 * math.pi) / math.erf(TRUNCATION / math.sqrt(2))
)


def fan(shape: tuple[int, int], mode: str) -> float:
    """fan_in, fan_out or their mean for a weight of shape (D_in, D_out)."""
    if mode not in FAN_MODES:
        raise ValueError(f"fan mode must be one of {FAN_MODES}, got {mode!r}")
    d_in, d_out = shape
    return {"fan_in": d_in, "fan_out": d_out, "fan_avg": (d_in + d_out) / 2}[mode]


def _truncated_standard_normal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Standard normal samples conditioned on |x| <= TRUNCATION (resampling the rest)."""
    x = rng.standard_normal(shape)
    outside = np.abs(x) > TRUNCATION
    while outside.any():
        x[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(x) > TRUNCATION
    return x


def initialize(
    name: str, shape: tuple[int, int], rng: np.random.Generator, mode: str | None = None
) -> np.ndarray:
    """A (D_in, D_out) float64 weight drawn with initializer `name`."""
    if name not in _SCHEMES:
        raise ValueError(f"unknown initializer {name!r}; choose one of {', '.join(INITIALIZERS)}")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"a weight shape must be (D_in, D_out) with positive sizes, got {shape}")
    gain, distribution, default_mode = _SCHEMES[name]
    if distribution == "zeros":
        return np.zeros(shape)
    std = math.sqrt(gain / fan(shape, mode or default_mode))
    if distribution == "normal":
        return std * rng.standard_normal(shape)
    if distribution == "truncated_normal":
        return (std / _TRUNCATED_STD) * _truncated_standard_normal(shape, rng)
    limit = math.sqrt(3.0) * std
    return rng.uniform(-limit, limit, shape)

"""SELU constants and alpha-dropout affine parameters (paper Eq. 14; docs/MATH.md sections 1 and 6).

Convention at the kink: x = 0 belongs to the exponential branch, so selu'(0) = lam * alpha
(as in the paper, PyTorch, TensorFlow, JAX and Chainer). Every backend uses `x > 0` for the
linear branch and, in the backward, `y > 0` (selu keeps the sign, so y > 0 exactly when x > 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# 32-digit constants for the fixed point (mu, nu) = (0, 1); the float64 values are the nearest doubles.
ALPHA_01 = 1.6732632423543772848170429916717
LAMBDA_01 = 1.0507009873554804934193349852946
# lam * alpha: the magnitude of SELU's saturation value; alpha' = -LAMBDA_ALPHA_01.
LAMBDA_ALPHA_01 = 1.7580993408473768599402175208123


def check_dropout_rate(rate: float) -> float:
    """Return `rate` as a float if it lies in [0, 1), else raise ValueError naming it."""
    rate = float(rate)
    if not (0.0 <= rate < 1.0) or math.isnan(rate):
        raise ValueError(
            f"dropout rate must lie in [0, 1), got {rate!r} "
            "(rate 1 would drop every unit and divide by a zero keep probability)"
        )
    return rate


@dataclass(frozen=True)
class AlphaDropoutParams:
    """The affine map of alpha dropout: kept units become a*x + b, dropped units a*alpha' + b."""

    rate: float
    a: float
    b: float
    alpha_prime: float

    @property
    def dropped_value(self) -> float:
        """The value every dropped unit takes: a * alpha' + b."""
        return self.a * self.alpha_prime + self.b


def alpha_dropout_params(
    rate: float,
    mu: float = 0.0,
    nu: float = 1.0,
    alpha: float = ALPHA_01,
    lam: float = LAMBDA_01,
) -> AlphaDropoutParams:
    """Alpha-dropout parameters keeping the fixed point (mu, nu) of a SELU(alpha, lam) network.

    a = sqrt(nu / (q((1-q)(alpha' - mu)^2 + nu))),  b = mu - a(q mu + (1-q) alpha'),  q = 1 - rate.
    """
    rate = check_dropout_rate(rate)
    if not nu > 0:
        raise ValueError(f"fixed-point variance nu must be positive, got {nu!r}")
    q = 1.0 - rate
    alpha_prime = -lam * alpha
    a = math.sqrt(nu / (q * ((1.0 - q) * (alpha_prime - mu) ** 2 + nu)))
    b = mu - a * (q * mu + (1.0 - q) * alpha_prime)
    return AlphaDropoutParams(rate=rate, a=a, b=b, alpha_prime=alpha_prime)

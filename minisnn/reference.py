"""The reference: every hot op of the backend written as plainly as NumPy allows.

This module is the oracle each backend and kernel variant is tested against. It favours clarity
over speed, allocates freely, and computes in the dtype it is given (use float64 for checks).
Conventions (see minisnn.constants): the linear branch of SELU is x > 0; the SELU backward uses
only the output y (y > 0 exactly when x > 0); dropout masks come from minisnn.rng.
"""

from __future__ import annotations

import numpy as np

from .constants import ALPHA_01, LAMBDA_01
from .rng import DropoutMask


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, K) @ (K, M) -> (N, M)."""
    return a @ b


def selu_forward(x: np.ndarray, alpha: float = ALPHA_01, lam: float = LAMBDA_01) -> np.ndarray:
    """lam*x for x > 0, lam*alpha*expm1(x) otherwise (exp evaluated on min(x, 0) only)."""
    return np.where(x > 0, lam * x, lam * alpha * np.expm1(np.minimum(x, 0)))


def selu_backward(dy: np.ndarray, y: np.ndarray, alpha: float = ALPHA_01, lam: float = LAMBDA_01) -> np.ndarray:
    """dx = dy*lam where y > 0, dy*(y + lam*alpha) elsewhere (lam*alpha*exp(x) = y + lam*alpha).

    For very negative x, y + lam*alpha rounds to 0 while lam*alpha*exp(x) is a tiny positive
    number: a relative difference below 1e-30 of lam*alpha, harmless for training.
    """
    return np.where(y > 0, lam * dy, dy * (y + lam * alpha))


def bias_selu_forward(z: np.ndarray, b: np.ndarray, alpha: float = ALPHA_01, lam: float = LAMBDA_01) -> np.ndarray:
    """selu(z + b) with z (N, D) and b (D,)."""
    return selu_forward(z + b, alpha, lam)


def column_sum(x: np.ndarray) -> np.ndarray:
    """(N, D) -> (D,): the bias gradient."""
    return x.sum(axis=0)


def bias_selu_backward(
    dy: np.ndarray, y: np.ndarray, alpha: float = ALPHA_01, lam: float = LAMBDA_01
) -> tuple[np.ndarray, np.ndarray]:
    """(dz (N, D), db (D,)) for y = selu(z + b)."""
    dz = selu_backward(dy, y, alpha, lam)
    return dz, column_sum(dz)


def alpha_dropout_forward(x: np.ndarray, mask: DropoutMask) -> np.ndarray:
    """Kept elements become scale*x + shift, dropped ones mask.dropped."""
    keep = mask.keep(x.shape)
    return np.where(keep, mask.scale * x + mask.shift, mask.dropped).astype(x.dtype, copy=False)


def alpha_dropout_backward(dy: np.ndarray, mask: DropoutMask) -> np.ndarray:
    """dx = scale*dy where kept, 0 where dropped."""
    keep = mask.keep(dy.shape)
    return np.where(keep, mask.scale * dy, 0).astype(dy.dtype, copy=False)


def bias_selu_dropout_forward(
    z: np.ndarray, b: np.ndarray, mask: DropoutMask, alpha: float = ALPHA_01, lam: float = LAMBDA_01
) -> np.ndarray:
    """dropout(selu(z + b)) with the mask of `mask`."""
    return alpha_dropout_forward(bias_selu_forward(z, b, alpha, lam), mask)


def bias_selu_dropout_backward(
    dy: np.ndarray, y: np.ndarray, mask: DropoutMask, alpha: float = ALPHA_01, lam: float = LAMBDA_01
) -> tuple[np.ndarray, np.ndarray]:
    """(dz, db) for y = dropout(selu(z + b)), from the output y alone.

    On kept elements the SELU output is s = (y - shift)/scale; dropped elements pass no gradient.
    Where |s| is below the rounding error of shift (about 1e-7 in float32), the branch taken for
    s may flip; such s lie at the kink, where either slope is a valid subgradient.
    """
    keep = mask.keep(y.shape)
    s = (y - mask.shift) / mask.scale
    dz = np.where(keep, mask.scale * selu_backward(dy, s, alpha, lam), 0).astype(dy.dtype, copy=False)
    return dz, column_sum(dz)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of (N, C) logits with the max subtracted (log-sum-exp)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cross_entropy_forward(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """(mean loss, probs (N, C)) for integer labels (N,)."""
    logp = log_softmax(logits)
    loss = -logp[np.arange(len(labels)), labels].mean()
    return float(loss), np.exp(logp)


def softmax_cross_entropy_backward(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """d(mean loss)/d logits = (probs - onehot(labels)) / N."""
    dlogits = probs.copy()
    dlogits[np.arange(len(labels)), labels] -= 1
    return dlogits / len(labels)


def sgd_update(
    param: np.ndarray,
    grad: np.ndarray,
    velocity: np.ndarray | None,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One SGD step (PyTorch's convention); returns new (param, velocity) without touching the inputs.

    g = grad + weight_decay*param; v = momentum*v + g; step = g + momentum*v (Nesterov) or v;
    param = param - lr*step. Without momentum the step is g and there is no velocity.
    """
    g = grad + weight_decay * param
    if momentum == 0.0:
        return param - lr * g, velocity
    v = momentum * velocity + g
    step = g + momentum * v if nesterov else v
    return param - lr * step, v

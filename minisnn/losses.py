"""Losses: forward(pred, target) -> 0-d backend array, backward() -> d loss / d pred.

Reductions: "mean" (default) averages over the samples (over present labels for the masked
binary cross-entropy, over all elements for the squared error); "sum" adds them up.
"""

from __future__ import annotations

from typing import Any

from .backends.base import Backend

REDUCTIONS = ("mean", "sum")


class Loss:
    def __init__(self, backend: Backend, reduction: str = "mean"):
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.backend = backend
        self.reduction = reduction
        self._cache: Any = None

    def _pop_cache(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called without a forward before it")
        cache, self._cache = self._cache, None
        return cache

    def _check_same_shape(self, pred, target, what: str) -> None:
        if tuple(pred.shape) != tuple(target.shape) or pred.ndim != 2:
            raise ValueError(f"{type(self).__name__}: {what} must have the predictions' shape (N, T) "
                             f"{tuple(pred.shape)}, got {tuple(target.shape)}")


class SoftmaxCrossEntropy(Loss):
    """-log softmax(logits)[label], stable (max subtracted); integer labels (N,) in [0, C)."""

    def forward(self, logits, labels):
        if logits.ndim != 2 or labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
            raise ValueError(f"SoftmaxCrossEntropy expects logits (N, C) and labels (N,), "
                             f"got {tuple(logits.shape)} and {tuple(labels.shape)}")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
        probs = self._probs_buffer(logits.shape)
        loss, probs = self.backend.softmax_cross_entropy_forward(logits, labels, probs=probs)
        self._cache = (probs, labels)
        return loss * labels.shape[0] if self.reduction == "sum" else loss

    def backward(self):
        probs, labels = self._pop_cache()
        dlogits = self.backend.softmax_cross_entropy_backward(probs, labels, out=probs)  # (N, C), in place
        if self.reduction == "sum":
            dlogits *= labels.shape[0]
        return dlogits

    def _probs_buffer(self, shape):
        buf = getattr(self, "_probs", None)
        if buf is None or buf.shape != tuple(shape):
            buf = self._probs = self.backend.empty(tuple(shape))
        return buf


class SigmoidBinaryCrossEntropy(Loss):
    """Binary cross-entropy on logits (N, T) for T tasks, with an optional mask of present labels.

    loss = sum(mask * (max(z, 0) - z*t + log1p(exp(-|z|)))) / sum(mask) for "mean"; targets in
    [0, 1]; a mask of zeros marks missing labels (as in Tox21), which then add nothing.
    """

    def forward(self, logits, targets, mask=None):
        xp = self.backend.xp
        self._check_same_shape(logits, targets, "targets")
        if mask is None:
            mask = xp.ones_like(logits)
        else:
            self._check_same_shape(logits, mask, "mask")
            mask = mask.astype(logits.dtype, copy=False)
        count = mask.sum()
        if float(count) == 0:
            raise ValueError("SigmoidBinaryCrossEntropy: the mask marks no label as present")
        terms = xp.maximum(logits, 0) - logits * targets + xp.log1p(xp.exp(-xp.abs(logits)))  # (N, T)
        total = (terms * mask).sum()
        norm = count if self.reduction == "mean" else 1.0
        self._cache = (logits, targets, mask, norm)
        return total / norm

    def backward(self):
        logits, targets, mask, norm = self._pop_cache()
        xp = self.backend.xp
        sigmoid = 0.5 * (xp.tanh(0.5 * logits) + 1.0)  # stable for any logit
        return (sigmoid - targets) * mask / norm


class MeanSquaredError(Loss):
    """mean((pred - target)^2) over all elements (or their sum)."""

    def forward(self, pred, target):
        self._check_same_shape(pred, target, "targets")
        diff = pred - target  # (N, T)
        norm = diff.size if self.reduction == "mean" else 1
        self._cache = (diff, norm)
        return (diff * diff).sum() / norm

    def backward(self):
        diff, norm = self._pop_cache()
        return diff * (2.0 / norm)


LOSSES = {"softmax_cross_entropy": SoftmaxCrossEntropy, "sigmoid_binary_cross_entropy": SigmoidBinaryCrossEntropy,
          "mean_squared_error": MeanSquaredError}

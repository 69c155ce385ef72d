"""Losses: forward(pred, target...) -> mean loss as a 0-d backend array, backward() -> d loss / d pred.

Every array operation is a backend op (softmax_cross_entropy_*, sigmoid_cross_entropy_*,
squared_error_*), so a loss runs on any backend. backward() writes into a buffer the loss owns
and reuses while the shape stays the same: copy the gradient to keep it past the next backward.
Float targets and masks of another dtype (integer 0/1 targets, say) are cast to the backend's
float dtype first. Target values are not checked here (that would cost a pass per step):
minisnn.tasks checks them once per data set.
"""

from __future__ import annotations

from typing import Any

from .backends.base import Backend


class Loss:
    """A loss on one backend, with the cache between forward and backward and the gradient buffer."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self._cache: Any = None
        self._grad: Any = None

    def _pop_cache(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called without a forward before it")
        cache, self._cache = self._cache, None
        return cache

    def _buffer(self, shape: tuple[int, ...]):
        """The gradient buffer (reallocated when the shape changes)."""
        if self._grad is None or tuple(self._grad.shape) != tuple(shape):
            self._grad = self.backend.empty(tuple(shape))
        return self._grad

    def _as_float(self, pred, array, what: str):
        """`array` checked to have pred's shape (N, T) and cast to the backend's float dtype."""
        if pred.ndim != 2 or tuple(array.shape) != tuple(pred.shape):
            raise ValueError(f"{type(self).__name__}: {what} must have the predictions' shape (N, T) "
                             f"{tuple(pred.shape)}, got {tuple(array.shape)}")
        if array.dtype.kind not in "fiub":
            raise ValueError(f"{type(self).__name__}: {what} must be numeric, got dtype {array.dtype}")
        return array if array.dtype == self.backend.dtype else array.astype(self.backend.dtype)


class SoftmaxCrossEntropy(Loss):
    """mean over rows of -log softmax(logits)[label]; logits (N, C), integer labels (N,) in [0, C)."""

    def forward(self, logits, labels):
        if logits.ndim != 2 or labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
            raise ValueError(f"SoftmaxCrossEntropy expects logits (N, C) and labels (N,), "
                             f"got {tuple(logits.shape)} and {tuple(labels.shape)}")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
        loss, probs = self.backend.softmax_cross_entropy_forward(logits, labels, probs=self._buffer(logits.shape))
        self._cache = (probs, labels)
        return loss

    def backward(self):
        probs, labels = self._pop_cache()
        return self.backend.softmax_cross_entropy_backward(probs, labels, out=probs)  # (N, C), in place


class SigmoidBinaryCrossEntropy(Loss):
    """Binary cross-entropy on logits (N, T) for T tasks, averaged over the labels present.

    loss = sum(mask * (max(z, 0) - z*t + log1p(exp(-|z|)))) / sum(mask) with targets t in [0, 1];
    mask (N, T) holds 1 where a label is present and 0 where it is missing (as in Tox21), so a
    missing label adds nothing; None means every label is present. A batch without any present
    label has loss 0 and a zero gradient.
    """

    def forward(self, logits, targets, mask=None):
        targets = self._as_float(logits, targets, "targets")
        if mask is None:
            count = float(logits.shape[0] * logits.shape[1])
        else:
            mask = self._as_float(logits, mask, "mask")
            count = float(self.backend.to_numpy(self.backend.column_sum(mask)).sum())  # labels present
        scale = 1.0 / count if count else 0.0
        loss = self.backend.sigmoid_cross_entropy_forward(logits, targets, mask)
        loss *= scale
        self._cache = (logits, targets, mask, scale)
        return loss

    def backward(self):
        logits, targets, mask, scale = self._pop_cache()
        return self.backend.sigmoid_cross_entropy_backward(logits, targets, mask, scale,
                                                           out=self._buffer(logits.shape))  # (N, T)


class MeanSquaredError(Loss):
    """mean((pred - target)^2) over all elements of pred, target (N, T)."""

    def forward(self, pred, target):
        target = self._as_float(pred, target, "targets")
        scale = 1.0 / (pred.shape[0] * pred.shape[1])
        loss = self.backend.squared_error_forward(pred, target)
        loss *= scale
        self._cache = (pred, target, scale)
        return loss

    def backward(self):
        pred, target, scale = self._pop_cache()
        return self.backend.squared_error_backward(pred, target, scale, out=self._buffer(pred.shape))  # (N, T)


__all__ = ["Loss", "SoftmaxCrossEntropy", "SigmoidBinaryCrossEntropy", "MeanSquaredError"]

"""The NumPy backend: the hot ops with `out=` buffers, vectorized over whole arrays.

It needs nothing but NumPy, so it is the backend of an inference-only install and the baseline
the faster backends are timed against. Results match minisnn.reference within float tolerance.
"""

from __future__ import annotations

import numpy as np

from ..rng import DropoutMask
from .base import Backend


SGD_CHUNK = 1 << 16  # elements per slice of sgd_update


def _out_like(x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    return np.empty_like(x) if out is None else out


def _sgd_slice(param, grad, velocity, lr, momentum, weight_decay, nesterov) -> None:
    """The SGD update (see minisnn.optim) of one slice, in place."""
    g = grad + weight_decay * param if weight_decay else grad
    if momentum == 0.0:
        param -= lr * g
        return
    velocity *= momentum
    velocity += g
    param -= lr * (g + momentum * velocity if nesterov else velocity)


class NumpyBackend(Backend):
    name = "numpy"
    xp = np

    def matmul(self, a, b, out=None):
        return np.matmul(a, b, out=out)

    def selu_forward(self, x, alpha, lam, out=None):
        # lam*max(x, 0) + lam*alpha*expm1(min(x, 0)): no branch, exp never sees x > 0.
        negative = np.minimum(x, 0)  # (same shape as x)
        np.expm1(negative, out=negative)
        negative *= lam * alpha
        out = np.maximum(x, 0, out=_out_like(x, out))
        out *= lam
        out += negative
        return out

    def selu_backward(self, dy, y, alpha, lam, out=None):
        slope = y + lam * alpha  # lam*alpha*exp(x) on the negative branch
        np.copyto(slope, lam, where=y > 0)
        return np.multiply(dy, slope, out=out)

    def bias_selu_forward(self, z, b, alpha, lam, out=None):
        out = np.add(z, b, out=out)
        return self.selu_forward(out, alpha, lam, out=out)

    def bias_selu_backward(self, dy, y, alpha, lam, dz=None, db=None):
        dz = self.selu_backward(dy, y, alpha, lam, out=dz)
        return dz, self.column_sum(dz, out=db)

    def column_sum(self, x, out=None):
        return np.sum(x, axis=0, out=out)

    def alpha_dropout_forward(self, x, mask: DropoutMask, out=None):
        keep = mask.keep(x.shape)
        out = np.multiply(x, mask.scale, out=out)
        out += mask.shift
        np.copyto(out, mask.dropped, where=~keep)
        return out

    def alpha_dropout_backward(self, dy, mask: DropoutMask, out=None):
        keep = mask.keep(dy.shape)
        out = np.multiply(dy, mask.scale, out=out)
        out *= keep
        return out

    def bias_selu_dropout_forward(self, z, b, mask: DropoutMask, alpha, lam, out=None):
        out = self.bias_selu_forward(z, b, alpha, lam, out=out)
        return self.alpha_dropout_forward(out, mask, out=out)

    def bias_selu_dropout_backward(self, dy, y, mask: DropoutMask, alpha, lam, dz=None, db=None):
        keep = mask.keep(y.shape)
        selu_out = (y - mask.shift) / mask.scale  # SELU output before dropout (valid where kept)
        dz = self.selu_backward(dy, selu_out, alpha, lam, out=dz)
        dz *= mask.scale
        dz *= keep
        return dz, self.column_sum(dz, out=db)

    def softmax_cross_entropy_forward(self, logits, labels, probs=None):
        rows = np.arange(len(labels))
        row_max = logits.max(axis=1, keepdims=True)  # (N, 1)
        probs = np.subtract(logits, row_max, out=probs)
        label_logit = probs[rows, labels]  # (N,) shifted logit of the true class
        np.exp(probs, out=probs)
        total = probs.sum(axis=1, keepdims=True)  # (N, 1)
        probs /= total
        loss = np.mean(np.log(total[:, 0]) - label_logit)
        return np.asarray(loss, dtype=logits.dtype), probs

    def softmax_cross_entropy_backward(self, probs, labels, out=None):
        if out is None:
            out = probs.copy()
        else:
            np.copyto(out, probs)
        out[np.arange(len(labels)), labels] -= 1
        out *= 1.0 / len(labels)
        return out

    def sgd_update(self, param, grad, velocity, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        # In slices along the first axis of about SGD_CHUNK elements: the temporaries NumPy makes
        # stay cache-sized, not the size of a whole packed model.
        row = max(1, param[:1].size)
        step = max(1, SGD_CHUNK // row)
        for start in range(0, len(param), step):
            rows = slice(start, start + step)
            _sgd_slice(param[rows], grad[rows], None if momentum == 0.0 else velocity[rows], lr, momentum,
                       weight_decay, nesterov)

"""The normalization layers SNNs are compared with: batch, layer and weight normalization.

Each computes its forward and backward with backend ops (batch_norm_*, layer_norm_*,
weight_norm_*), whose docstrings give the formulas. Defaults follow PyTorch: eps = 1e-5, running
statistics with momentum 0.1 and the unbiased batch variance, gamma = 1 and beta = 0 at start.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backends.base import Backend
from .init import initialize
from .layers import Layer


def _check_positive(name: str, value: float, upper: float | None = None) -> float:
    """value as a float, or a ValueError unless it is finite, > 0 and (if given) <= upper."""
    value = float(value)
    if not (np.isfinite(value) and value > 0 and (upper is None or value <= upper)):
        bound = f" and at most {upper}" if upper is not None else ""
        raise ValueError(f"{name} must be a finite number above 0{bound}, got {value}")
    return value


class _Affine(Layer):
    """Shared by BatchNorm1d and LayerNorm: D features with a scale gamma and shift beta (D,)."""

    def __init__(self, d: int, backend: Backend, eps: float):
        super().__init__(backend)
        if int(d) < 1:
            raise ValueError(f"{type(self).__name__} needs a positive number of features, got {d}")
        self.d, self.eps = int(d), _check_positive("eps", eps)
        self.params = {"gamma": backend.asarray(np.ones(self.d)), "beta": backend.zeros((self.d,))}
        self.grads = {"gamma": backend.zeros((self.d,)), "beta": backend.zeros((self.d,))}

    def _input_grad(self, dx):
        return dx if self.needs_input_grad else None


class BatchNorm1d(_Affine):
    """y = gamma*(x - mean)/sqrt(var + eps) + beta per feature of x (N, D).

    Training uses the batch's mean and biased variance (N >= 2) and updates the running mean and
    running (unbiased) variance buffers: r = (1 - momentum)*r + momentum*batch value. Evaluation
    uses the running statistics, the same affine map for every row.
    """

    non_negative_buffers = ("running_var",)

    def __init__(self, d: int, backend: Backend, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(d, backend, eps)
        self.momentum = _check_positive("momentum", momentum, upper=1.0)
        self.buffers = {"running_mean": backend.zeros((self.d,)), "running_var": backend.asarray(np.ones(self.d))}

    def config(self) -> dict[str, Any]:
        return {"type": "BatchNorm1d", "d": self.d, "eps": self.eps, "momentum": self.momentum}

    def forward(self, x, train: bool = True):
        self._check_input(x, self.d)
        be, p, running = self.backend, self.params, self.buffers
        y = self._workspace("y", x.shape)  # (N, D)
        if train:
            mean, rstd = self._workspace("mean", (self.d,)), self._workspace("rstd", (self.d,))
            be.batch_norm_forward(x, p["gamma"], p["beta"], self.eps, out=y, mean=mean, rstd=rstd,
                                  running_mean=running["running_mean"], running_var=running["running_var"],
                                  momentum=self.momentum)
        else:
            be.batch_norm_inference(x, p["gamma"], p["beta"], running["running_mean"], running["running_var"],
                                    self.eps, out=y)
        self._cache = (x, train)
        return y

    def backward(self, dy):
        x, train = self._pop_cache()
        be, g = self.backend, self.grads
        dx = self._workspace("dx", dy.shape)  # (N, D)
        if train:
            be.batch_norm_backward(dy, x, self.params["gamma"], self._work["mean"], self._work["rstd"], dx=dx,
                                   dgamma=g["gamma"], dbeta=g["beta"])
        else:
            be.batch_norm_inference_backward(dy, x, self.params["gamma"], self.buffers["running_mean"],
                                             self.buffers["running_var"], self.eps, dx=dx, dgamma=g["gamma"],
                                             dbeta=g["beta"])
        return self._input_grad(dx)


class LayerNorm(_Affine):
    """y = gamma*(x - mean)/sqrt(var + eps) + beta with the mean and biased variance of each row
    of x (N, D) over its D features: the same function in training and evaluation."""

    def __init__(self, d: int, backend: Backend, eps: float = 1e-5):
        super().__init__(d, backend, eps)

    def config(self) -> dict[str, Any]:
        return {"type": "LayerNorm", "d": self.d, "eps": self.eps}

    def forward(self, x, train: bool = True):
        self._check_input(x, self.d)
        n = x.shape[0]
        y, mean, rstd = self.backend.layer_norm_forward(
            x, self.params["gamma"], self.params["beta"], self.eps, out=self._workspace("y", x.shape),
            mean=self._workspace("mean", (n,)), rstd=self._workspace("rstd", (n,)))
        self._cache = (x, mean, rstd)
        return y

    def backward(self, dy):
        x, mean, rstd = self._pop_cache()
        dx, _, _ = self.backend.layer_norm_backward(dy, x, self.params["gamma"], mean, rstd,
                                                    dx=self._workspace("dx", dy.shape), dgamma=self.grads["gamma"],
                                                    dbeta=self.grads["beta"])
        return self._input_grad(dx)


class WeightNormLinear(Layer):
    """y = x @ W + b with W = v * g/||v|| per output unit (column): direction v (D_in, D_out) and
    length g (D_out,) are the parameters (Salimans & Kingma, 2016).

    v is drawn with `init` and g starts at ||v||, so the initial W is exactly the initializer's
    draw (PyTorch's weight_norm does the same); b starts at zero.
    """

    def __init__(self, d_in: int, d_out: int, backend: Backend, init: str = "he_normal", seed: int = 0,
                 init_mode: str | None = None):
        super().__init__(backend)
        if d_in < 1 or d_out < 1:
            raise ValueError(f"WeightNormLinear sizes must be positive, got d_in={d_in}, d_out={d_out}")
        self.d_in, self.d_out, self.init, self.seed, self.init_mode = int(d_in), int(d_out), init, int(seed), init_mode
        v = initialize(init, (self.d_in, self.d_out), np.random.default_rng(self.seed), init_mode)
        norm = np.sqrt((v * v).sum(axis=0))
        if not (norm > 0).all():
            raise ValueError(f"WeightNormLinear cannot start from initializer {init!r}: it gives zero columns")
        self.params = {"v": backend.empty((self.d_in, self.d_out)), "g": backend.asarray(norm),
                       "b": backend.zeros((self.d_out,))}
        self.params["v"][...] = backend.asarray(v)
        self.grads = {"v": backend.zeros((self.d_in, self.d_out)), "g": backend.zeros((self.d_out,)),
                      "b": backend.zeros((self.d_out,))}

    def output_dim(self, d_in: int) -> int:
        return self.d_out

    def config(self) -> dict[str, Any]:
        return {"type": "WeightNormLinear", "d_in": self.d_in, "d_out": self.d_out, "init": self.init,
                "seed": self.seed, "init_mode": self.init_mode}

    def weight(self):
        """The effective weight W (D_in, D_out), recomputed from v and g (a layer-owned array)."""
        w, _ = self.backend.weight_norm_forward(self.params["v"], self.params["g"],
                                                out=self._workspace("w", (self.d_in, self.d_out)),
                                                norm=self._workspace("norm", (self.d_out,)))
        return w

    def forward(self, x, train: bool = True):
        self._check_input(x, self.d_in)
        be = self.backend
        w = self.weight()
        z = be.matmul(x, w, out=self._workspace("y", (x.shape[0], self.d_out)))  # (N, D_out)
        y = be.bias_add_forward(z, self.params["b"], out=z)
        self._cache = x
        return y

    def backward(self, dy):
        x = self._pop_cache()
        be, g = self.backend, self.grads
        be.column_sum(dy, out=g["b"])
        dw = be.matmul(x.T, dy, out=self._workspace("dw", (self.d_in, self.d_out)))  # dL/dW
        be.weight_norm_backward(dw, self.params["v"], self.params["g"], self._work["norm"], dv=g["v"], dg=g["g"])
        if not self.needs_input_grad:
            return None
        return be.matmul(dy, self._work["w"].T, out=self._workspace("dx", (dy.shape[0], self.d_in)))

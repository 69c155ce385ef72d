"""Layers with hand-written backward passes.

A layer owns its parameters, their gradients (same keys, preallocated) and its output and
input-gradient buffers, reallocated only when the batch size changes: once warmed up a training
step allocates no activation or gradient arrays. forward(x, train) returns a buffer owned by the
layer, valid until its next forward; backward(dy) fills the grads, returns dx (never writing into
dy) and consumes the cache. Weights have shape (D_in, D_out), so z = x @ W.

Every layer can describe itself with config() (JSON-able constructor arguments) and, where it has
state outside its parameters (the step counter of a dropout layer), state_dict()/load_state_dict().
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backends.base import Backend
from .constants import ALPHA_01, LAMBDA_01, alpha_dropout_params, check_dropout_rate
from .init import initialize
from .rng import DropoutMask, dropout_key, keep_threshold


class Layer:
    """Base class: no parameters, identity on shapes. Subclasses override forward/backward."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.needs_input_grad = True  # the first layer of a model skips computing dx
        self._cache: Any = None
        self._buffers: dict[str, Any] = {}

    def forward(self, x, train: bool = True):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def output_dim(self, d_in: int) -> int:
        return d_in

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able), the layer type under "type"."""
        return {"type": type(self).__name__}

    def state_dict(self) -> dict[str, int]:
        """State outside the parameters (integers only)."""
        return {}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no state, got keys {sorted(state)}")

    def _buffer(self, name: str, shape: tuple[int, ...]):
        """A preallocated array of `shape`, reused while the shape stays the same."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self.backend.empty(shape)
            self._buffers[name] = buf
        return buf

    def _pop_cache(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called without a training forward before it")
        cache, self._cache = self._cache, None
        return cache

    def _check_input(self, x, d_in: int) -> None:
        if x.ndim != 2 or x.shape[1] != d_in:
            raise ValueError(f"{type(self).__name__} expects input of shape (N, {d_in}), got {tuple(x.shape)}")


class Linear(Layer):
    """y = x @ W + b with W (D_in, D_out), b (D_out,); b starts at zero."""

    def __init__(self, d_in: int, d_out: int, backend: Backend, init: str = "lecun_normal", seed: int = 0,
                 init_mode: str | None = None):
        super().__init__(backend)
        if d_in < 1 or d_out < 1:
            raise ValueError(f"Linear sizes must be positive, got d_in={d_in}, d_out={d_out}")
        self.d_in, self.d_out, self.init, self.seed, self.init_mode = int(d_in), int(d_out), init, int(seed), init_mode
        weight = initialize(init, (self.d_in, self.d_out), np.random.default_rng(self.seed), init_mode)
        self.params = {"W": backend.asarray(weight), "b": backend.zeros((self.d_out,))}
        self.grads = {"W": backend.zeros((self.d_in, self.d_out)), "b": backend.zeros((self.d_out,))}

    def output_dim(self, d_in: int) -> int:
        return self.d_out

    def config(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "d_in": self.d_in, "d_out": self.d_out, "init": self.init,
                "seed": self.seed, "init_mode": self.init_mode}

    def _affine(self, x):
        """z = x @ W into the output buffer, (N, D_out); the bias is left to the caller."""
        self._check_input(x, self.d_in)
        return self.backend.matmul(x, self.params["W"], out=self._buffer("y", (x.shape[0], self.d_out)))

    def forward(self, x, train: bool = True):
        y = self._affine(x)  # (N, D_out)
        y += self.params["b"]
        self._cache = x if train else None
        return y

    def _backward_affine(self, x, dz):
        """dW = x^T dz; returns dx = dz W^T (or None for a first layer)."""
        be = self.backend
        be.matmul(x.T, dz, out=self.grads["W"])
        if not self.needs_input_grad:
            return None
        return be.matmul(dz, self.params["W"].T, out=self._buffer("dx", (dz.shape[0], self.d_in)))

    def backward(self, dy):
        x = self._pop_cache()
        self.backend.column_sum(dy, out=self.grads["b"])
        return self._backward_affine(x, dy)


class LinearSELU(Linear):
    """Fused y = alpha_dropout(selu(x @ W + b)): one pass over memory for bias, SELU and dropout.

    With dropout > 0 the alpha-dropout parameters keep the (mu, nu) fixed point of SELU(alpha, lam).
    """

    def __init__(self, d_in: int, d_out: int, backend: Backend, dropout: float = 0.0, alpha: float = ALPHA_01,
                 lam: float = LAMBDA_01, mu: float = 0.0, nu: float = 1.0, init: str = "lecun_normal", seed: int = 0,
                 init_mode: str | None = None):
        super().__init__(d_in, d_out, backend, init=init, seed=seed, init_mode=init_mode)
        self.alpha, self.lam = float(alpha), float(lam)
        self.dropout = MaskedDropoutState.alpha(dropout, mu, nu, self.alpha, self.lam, seed)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "alpha": self.alpha, "lam": self.lam, **self.dropout.config()}

    def state_dict(self) -> dict[str, int]:
        return self.dropout.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.dropout.load_state_dict(state)

    def forward(self, x, train: bool = True):
        be = self.backend
        z = self._affine(x)  # (N, D_out), overwritten in place by the output
        if train and self.dropout.active:
            mask = self.dropout.next_mask()
            y = be.bias_selu_dropout_forward(z, self.params["b"], mask, self.alpha, self.lam, out=z)
        else:
            mask = None
            y = be.bias_selu_forward(z, self.params["b"], self.alpha, self.lam, out=z)
        self._cache = (x, y, mask) if train else None
        return y

    def backward(self, dy):
        x, y, mask = self._pop_cache()
        be = self.backend
        dz = self._buffer("dz", y.shape)  # (N, D_out)
        if mask is None:
            be.bias_selu_backward(dy, y, self.alpha, self.lam, dz=dz, db=self.grads["b"])
        else:
            be.bias_selu_dropout_backward(dy, y, mask, self.alpha, self.lam, dz=dz, db=self.grads["b"])
        return self._backward_affine(x, dz)


class SELU(Layer):
    """selu(x) = lam*x for x > 0, lam*alpha*(exp(x) - 1) otherwise; backward from the output."""

    def __init__(self, backend: Backend, alpha: float = ALPHA_01, lam: float = LAMBDA_01):
        super().__init__(backend)
        self.alpha, self.lam = float(alpha), float(lam)

    def config(self) -> dict[str, Any]:
        return {"type": "SELU", "alpha": self.alpha, "lam": self.lam}

    def forward(self, x, train: bool = True):
        y = self.backend.selu_forward(x, self.alpha, self.lam, out=self._buffer("y", x.shape))
        self._cache = y if train else None
        return y

    def backward(self, dy):
        y = self._pop_cache()
        return self.backend.selu_backward(dy, y, self.alpha, self.lam, out=self._buffer("dx", dy.shape))


class MaskedDropoutState:
    """The random part of a dropout layer: rate, seed, step counter and the affine map of kept units.

    Each training forward takes the next step's mask; the backward regenerates it from the same
    (seed, step), so no mask is stored. Alpha dropout maps kept units to a*x + b and dropped ones
    to a*alpha' + b; standard dropout to x/q and 0.
    """

    def __init__(self, kind: str, rate: float, seed: int, scale: float, shift: float, dropped: float,
                 extra_config: dict[str, float]):
        self.kind, self.rate, self.seed = kind, check_dropout_rate(rate), int(seed)
        self.scale, self.shift, self.dropped = scale, shift, dropped
        self.extra_config = extra_config
        self.step = 0

    @classmethod
    def alpha(cls, rate: float, mu: float, nu: float, alpha: float, lam: float, seed: int) -> "MaskedDropoutState":
        p = alpha_dropout_params(rate, mu=mu, nu=nu, alpha=alpha, lam=lam)
        return cls("alpha", rate, seed, p.a, p.b, p.dropped_value, {"mu": float(mu), "nu": float(nu)})

    @classmethod
    def standard(cls, rate: float, seed: int) -> "MaskedDropoutState":
        rate = check_dropout_rate(rate)
        return cls("standard", rate, seed, 1.0 / (1.0 - rate), 0.0, 0.0, {})

    @property
    def active(self) -> bool:
        return self.rate > 0.0

    def next_mask(self) -> DropoutMask:
        k0, k1 = dropout_key(self.seed, self.step)
        self.step += 1
        return DropoutMask(k0, k1, keep_threshold(self.rate), self.scale, self.shift, self.dropped)

    def config(self) -> dict[str, Any]:
        return {"dropout": self.rate, **self.extra_config}

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if set(state) != {"step"} or int(state["step"]) < 0:
            raise ValueError(f"dropout state must be {{'step': non-negative int}}, got {state!r}")
        self.step = int(state["step"])


class _DropoutLayer(Layer):
    """Shared forward/backward of AlphaDropout and Dropout: identity at eval or at rate 0."""

    def __init__(self, backend: Backend, state: MaskedDropoutState):
        super().__init__(backend)
        self.dropout = state

    def state_dict(self) -> dict[str, int]:
        return self.dropout.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.dropout.load_state_dict(state)

    def forward(self, x, train: bool = True):
        if not (train and self.dropout.active):
            self._cache = "identity" if train else None
            return x
        mask = self.dropout.next_mask()
        self._cache = mask
        return self.backend.alpha_dropout_forward(x, mask, out=self._buffer("y", x.shape))

    def backward(self, dy):
        mask = self._pop_cache()
        if mask == "identity":
            return dy
        return self.backend.alpha_dropout_backward(dy, mask, out=self._buffer("dx", dy.shape))


class AlphaDropout(_DropoutLayer):
    """Alpha dropout (paper Sec. 6): keeps mean mu and variance nu of SELU(alpha, lam) activations."""

    def __init__(self, rate: float, backend: Backend, mu: float = 0.0, nu: float = 1.0, alpha: float = ALPHA_01,
                 lam: float = LAMBDA_01, seed: int = 0):
        super().__init__(backend, MaskedDropoutState.alpha(rate, mu, nu, alpha, lam, seed))
        self.alpha, self.lam = float(alpha), float(lam)

    def config(self) -> dict[str, Any]:
        return {"type": "AlphaDropout", "rate": self.dropout.rate, "mu": self.dropout.extra_config["mu"],
                "nu": self.dropout.extra_config["nu"], "alpha": self.alpha, "lam": self.lam, "seed": self.dropout.seed}


class Dropout(_DropoutLayer):
    """Standard inverted dropout: kept units x/q, dropped units 0 (for ReLU, ELU, tanh baselines)."""

    def __init__(self, rate: float, backend: Backend, seed: int = 0):
        super().__init__(backend, MaskedDropoutState.standard(rate, seed))

    def config(self) -> dict[str, Any]:
        return {"type": "Dropout", "rate": self.dropout.rate, "seed": self.dropout.seed}


class _ElementwiseActivation(Layer):
    """An activation whose derivative is a function of its output: backward = dy * slope(y)."""

    def forward(self, x, train: bool = True):
        y = self._buffer("y", x.shape)
        self._apply(x, y)
        self._cache = y if train else None
        return y

    def backward(self, dy):
        y = self._pop_cache()
        dx = self._buffer("dx", dy.shape)
        self._slope(y, dx)
        dx *= dy
        return dx

    def _apply(self, x, y) -> None:
        raise NotImplementedError

    def _slope(self, y, out) -> None:
        raise NotImplementedError


class ReLU(_ElementwiseActivation):
    """max(x, 0); slope 1 where y > 0, else 0 (0 at the kink)."""

    def _apply(self, x, y) -> None:
        self.backend.xp.maximum(x, 0, out=y)

    def _slope(self, y, out) -> None:
        self.backend.xp.greater(y, 0, out=out)


class ELU(_ElementwiseActivation):
    """x for x > 0, alpha*(exp(x) - 1) otherwise; slope y + alpha on the negative branch."""

    def __init__(self, backend: Backend, alpha: float = 1.0):
        super().__init__(backend)
        self.alpha = float(alpha)

    def config(self) -> dict[str, Any]:
        return {"type": "ELU", "alpha": self.alpha}

    def _apply(self, x, y) -> None:
        xp = self.backend.xp
        xp.minimum(x, 0, out=y)
        xp.expm1(y, out=y)
        y *= self.alpha
        y += xp.maximum(x, 0)

    def _slope(self, y, out) -> None:
        xp = self.backend.xp
        xp.add(y, self.alpha, out=out)
        xp.copyto(out, 1.0, where=y > 0)


class Tanh(_ElementwiseActivation):
    """tanh(x); slope 1 - y^2."""

    def _apply(self, x, y) -> None:
        self.backend.xp.tanh(x, out=y)

    def _slope(self, y, out) -> None:
        self.backend.xp.multiply(y, y, out=out)
        self.backend.xp.subtract(1.0, out, out=out)


class Identity(Layer):
    """y = x."""

    def forward(self, x, train: bool = True):
        self._cache = "identity" if train else None
        return x

    def backward(self, dy):
        self._pop_cache()
        return dy


LAYER_TYPES: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Linear, LinearSELU, SELU, AlphaDropout, Dropout, ReLU, ELU, Tanh, Identity)
}


def layer_from_config(config: dict[str, Any], backend: Backend) -> Layer:
    """Rebuild a layer from its config(); a wrong type or argument gives a ValueError naming it."""
    config = dict(config)
    kind = config.pop("type", None)
    if kind not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {kind!r}; known: {', '.join(LAYER_TYPES)}")
    try:
        if kind in ("AlphaDropout", "Dropout"):
            return LAYER_TYPES[kind](config.pop("rate"), backend, **config)
        if kind in ("Linear", "LinearSELU"):
            return LAYER_TYPES[kind](config.pop("d_in"), config.pop("d_out"), backend, **config)
        return LAYER_TYPES[kind](backend, **config)
    except (TypeError, KeyError) as exc:
        raise ValueError(f"bad arguments for layer {kind}: {exc}") from exc

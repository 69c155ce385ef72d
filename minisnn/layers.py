"""Layers with hand-written backward passes, arranged as a tree.

A layer owns its parameters and their gradients (same keys, preallocated), its buffers
(non-parameter array state that checkpoints keep, e.g. a dropout layer's step counter or a
normalization layer's running statistics), its child layers (composite layers such as residual
blocks are made of layers) and its work arrays, reallocated only when the batch size changes: once
warmed up a training step allocates no activation or gradient arrays. forward(x, train) returns
an array owned by the layer, valid until its next forward; backward(dy) differentiates the
function that forward computed (training mode: batch statistics and this step's dropout masks;
evaluation mode: running statistics, no dropout), fills the grads, returns dx (never writing
into dy) and consumes the cache. Every array operation is a backend op
(minisnn.backends.base). Weights have shape (D_in, D_out), so z = x @ W.

named_parameters() and named_buffers() walk the tree ("<child>.<...>.<key>"); config() is the
layer's JSON-able constructor arguments (children's configs nested), and layer_from_config
rebuilds any registered layer class from it: every Layer subclass registers itself by name.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .backends.base import Backend
from .constants import ALPHA_01, LAMBDA_01, alpha_dropout_params, check_dropout_rate
from .init import initialize
from .rng import DropoutMask, dropout_key, keep_threshold

LAYER_TYPES: dict[str, type["Layer"]] = {}  # class name -> class, filled as subclasses are defined


class Parameter(NamedTuple):
    """A named parameter and its gradient buffer (both backend arrays, same shape)."""

    name: str
    value: Any
    grad: Any


class Layer:
    """Base class: no parameters, identity on shapes. Subclasses override forward/backward."""

    non_negative_buffers: tuple[str, ...] = ()  # float buffers that must be >= 0 (variances)
    input_children: tuple[str, ...] = ()  # children that read this layer's input (composite layers)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            LAYER_TYPES[cls.__name__] = cls

    def __init__(self, backend: Backend):
        self.backend = backend
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.buffers: dict[str, Any] = {}
        self.children: dict[str, Layer] = {}
        self.needs_input_grad = True  # the first layer of a model skips computing dx
        self._cache: Any = None
        self._work: dict[str, Any] = {}

    @property
    def needs_input_grad(self) -> bool:
        """Whether backward returns dx; the children that read this layer's input follow it."""
        return self._needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, value: bool) -> None:
        self._needs_input_grad = bool(value)
        for name in self._input_child_names():
            self.children[name].needs_input_grad = self._needs_input_grad

    def _input_child_names(self) -> tuple[str, ...]:
        return tuple(name for name in self.input_children if name in self.children)

    def forward(self, x, train: bool = True):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def output_dim(self, d_in: int) -> int:
        return d_in

    # ---- the tree -----------------------------------------------------------------------------
    def named_parameters(self, prefix: str = "") -> list[Parameter]:
        """This layer's parameters, then its children's, as (name, value, grad)."""
        own = [Parameter(prefix + key, value, self.grads[key]) for key, value in self.params.items()]
        return own + [p for name, child in self.children.items() for p in child.named_parameters(f"{prefix}{name}.")]

    def named_buffers(self, prefix: str = "") -> list[tuple[str, Any]]:
        """This layer's buffers, then its children's, as (name, array)."""
        own = [(prefix + key, value) for key, value in self.buffers.items()]
        return own + [b for name, child in self.children.items() for b in child.named_buffers(f"{prefix}{name}.")]

    def snapshot_buffers(self):
        """A function that puts every buffer of the tree (dropout steps, running statistics) back
        to its value now, in place."""
        saved = [(buffer, buffer.copy()) for _, buffer in self.named_buffers()]

        def restore() -> None:
            for buffer, value in saved:
                buffer[...] = value

        return restore

    def n_parameters(self) -> int:
        return int(sum(p.value.size for p in self.named_parameters()))

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Host copies of every parameter ("param/<name>") and buffer ("buffer/<name>")."""
        be = self.backend
        arrays = {f"param/{p.name}": np.array(be.to_numpy(p.value)) for p in self.named_parameters()}
        arrays.update({f"buffer/{name}": np.array(be.to_numpy(b)) for name, b in self.named_buffers()})
        return arrays

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        """Copy arrays named as in state_arrays() into the parameters and buffers, in place.

        Every name must be present, nothing extra, shapes equal, parameters and float buffers
        finite, integer buffers (counters) and a layer's `non_negative_buffers` (variances)
        non-negative; a ValueError names the first problem and nothing is changed.
        """
        targets = {f"param/{p.name}": p.value for p in self.named_parameters()}
        targets.update({f"buffer/{name}": b for name, b in self.named_buffers()})
        missing, extra = sorted(set(targets) - set(arrays)), sorted(set(arrays) - set(targets))
        if missing or extra:
            raise ValueError(f"arrays do not match the model's: missing {missing}, unexpected {extra}")
        host = {name: np.asarray(self.backend.to_numpy(a)) for name, a in arrays.items()}
        non_negative = set(self._non_negative_buffer_names())
        for name, target in targets.items():
            if host[name].shape != tuple(target.shape):
                raise ValueError(f"{name} has shape {host[name].shape}, the model needs {tuple(target.shape)}")
            if host[name].dtype.kind == "f" and not np.isfinite(host[name]).all():
                raise ValueError(f"{name} holds NaN or infinite values")
            if host[name].dtype.kind in "iu" and (host[name] < 0).any():
                raise ValueError(f"{name} is a counter and must be non-negative, got {host[name].min()}")
            if name in non_negative and (host[name] < 0).any():
                raise ValueError(f"{name} must be non-negative, got {host[name].min()}")
        for name, target in targets.items():
            if isinstance(target, np.ndarray):
                np.copyto(target, host[name], casting="same_kind")
            else:
                target[...] = self.backend.asarray(host[name], dtype=target.dtype)

    def _non_negative_buffer_names(self, prefix: str = "") -> list[str]:
        """"buffer/<name>" of every float buffer in the tree that must be >= 0."""
        own = [f"buffer/{prefix}{key}" for key in self.non_negative_buffers]
        return own + [n for name, child in self.children.items()
                      for n in child._non_negative_buffer_names(f"{prefix}{name}.")]

    # ---- configuration ------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able), the layer type under "type"."""
        return {"type": type(self).__name__}

    @classmethod
    def from_config(cls, config: dict[str, Any], backend: Backend) -> "Layer":
        """The layer described by config() (without "type"); composite layers override this."""
        return cls(backend=backend, **config)

    # ---- helpers ------------------------------------------------------------------------------
    def _workspace(self, name: str, shape: tuple[int, ...]):
        """A preallocated work array of `shape`: the first shape[0] rows of the largest one asked for
        under this name (a C-contiguous view), so that alternating batch sizes (a short last
        batch, evaluation batches) allocate nothing once each size has been seen."""
        buf = self._work.get(name)
        if buf is None or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0]:
            buf = self.backend.empty(shape)
            self._work[name] = buf
        return buf if buf.shape == shape else buf[: shape[0]]

    def _pop_cache(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called without a forward before it")
        cache, self._cache = self._cache, None
        return cache

    def _check_input(self, x, d_in: int) -> None:
        """TypeError unless x is an array of this backend in its dtype; ValueError unless (N, d_in)."""
        name = type(self).__name__
        if not isinstance(x, self.backend.xp.ndarray):
            raise TypeError(f"{name} expects a {self.backend.xp.__name__} array, got {type(x).__name__}; "
                            f"convert with backend.asarray(x)")
        if x.dtype != self.backend.dtype:
            raise TypeError(f"{name} expects {self.backend.dtype.name} input (the backend's dtype), got {x.dtype}; "
                            f"convert with backend.asarray(x)")
        if x.ndim != 2 or x.shape[1] != d_in:
            raise ValueError(f"{type(self).__name__} expects input of shape (N, {d_in}), got {tuple(x.shape)}")


def layer_from_config(config: dict[str, Any], backend: Backend) -> Layer:
    """Rebuild a layer from its config(); a wrong type or argument gives a ValueError naming it."""
    if not isinstance(config, dict):
        raise ValueError(f"a layer config must be a dict, got {type(config).__name__}")
    config = dict(config)
    kind = config.pop("type", None)
    if kind not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {kind!r}; known: {', '.join(sorted(LAYER_TYPES))}")
    try:
        return LAYER_TYPES[kind].from_config(config, backend)
    except (TypeError, KeyError) as exc:
        raise ValueError(f"bad arguments for layer {kind}: {exc}") from exc


class Linear(Layer):
    """y = x @ W + b with W (D_in, D_out), b (D_out,); b starts at zero."""

    def __init__(self, d_in: int, d_out: int, backend: Backend, init: str = "lecun_normal", seed: int = 0,
                 init_mode: str | None = None):
        super().__init__(backend)
        if d_in < 1 or d_out < 1:
            raise ValueError(f"Linear sizes must be positive, got d_in={d_in}, d_out={d_out}")
        self.d_in, self.d_out, self.init, self.seed, self.init_mode = int(d_in), int(d_out), init, int(seed), init_mode
        weight = initialize(init, (self.d_in, self.d_out), np.random.default_rng(self.seed), init_mode)
        self.params = {"W": backend.empty((self.d_in, self.d_out)), "b": backend.zeros((self.d_out,))}
        self.params["W"][...] = backend.asarray(weight)  # into an array that starts on a cache line
        self.grads = {"W": backend.zeros((self.d_in, self.d_out)), "b": backend.zeros((self.d_out,))}

    def output_dim(self, d_in: int) -> int:
        return self.d_out

    def config(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "d_in": self.d_in, "d_out": self.d_out, "init": self.init,
                "seed": self.seed, "init_mode": self.init_mode}

    def _affine(self, x):
        """z = x @ W into the output array, (N, D_out); the bias is left to the caller."""
        self._check_input(x, self.d_in)
        return self.backend.matmul(x, self.params["W"], out=self._workspace("y", (x.shape[0], self.d_out)))

    def forward(self, x, train: bool = True):
        z = self._affine(x)  # (N, D_out)
        y = self.backend.bias_add_forward(z, self.params["b"], out=z)
        self._cache = x
        return y

    def _backward_affine(self, x, dz):
        """dW = x^T dz; returns dx = dz W^T (or None for a first layer)."""
        be = self.backend
        be.matmul(x.T, dz, out=self.grads["W"])
        if not self.needs_input_grad:
            return None
        return be.matmul(dz, self.params["W"].T, out=self._workspace("dx", (dz.shape[0], self.d_in)))

    def backward(self, dy):
        x = self._pop_cache()
        self.backend.column_sum(dy, out=self.grads["b"])
        return self._backward_affine(x, dy)


class MaskedDropoutState:
    """The random part of a dropout layer: rate, seed, step counter and the affine map of kept units.

    Each training forward takes the next step's mask; the backward regenerates it from the same
    (seed, step), so no mask is stored. The step counter is a buffer (a host int64 0-d array),
    saved with checkpoints. Alpha dropout maps kept units to a*x + b and dropped ones to
    a*alpha' + b; standard dropout to x/q and 0. Feature-wise masks drop whole features: one
    keep decision per column, shared by every row of the batch.
    """

    def __init__(self, kind: str, rate: float, seed: int, scale: float, shift: float, dropped: float,
                 extra_config: dict[str, Any], feature_wise: bool = False):
        self.kind, self.rate, self.seed = kind, check_dropout_rate(rate), int(seed)
        self.scale, self.shift, self.dropped = scale, shift, dropped
        self.feature_wise = bool(feature_wise)
        self.extra_config = extra_config
        self.step = np.zeros((), np.int64)  # buffer: masks drawn so far

    @classmethod
    def alpha(cls, rate: float, mu: float, nu: float, alpha: float, lam: float, seed: int,
              feature_wise: bool = False) -> "MaskedDropoutState":
        p = alpha_dropout_params(rate, mu=mu, nu=nu, alpha=alpha, lam=lam)
        return cls("alpha", rate, seed, p.a, p.b, p.dropped_value, {"mu": float(mu), "nu": float(nu)}, feature_wise)

    @classmethod
    def standard(cls, rate: float, seed: int, feature_wise: bool = False) -> "MaskedDropoutState":
        rate = check_dropout_rate(rate)
        return cls("standard", rate, seed, 1.0 / (1.0 - rate), 0.0, 0.0, {}, feature_wise)

    @property
    def active(self) -> bool:
        return self.rate > 0.0

    def next_mask(self) -> DropoutMask:
        step = int(self.step)
        if step < 0:
            raise ValueError(f"dropout step counter is {step}; it must be non-negative")
        k0, k1 = dropout_key(self.seed, step)
        self.step[...] = step + 1
        return DropoutMask(k0, k1, keep_threshold(self.rate), self.scale, self.shift, self.dropped, self.feature_wise)

    def config(self) -> dict[str, Any]:
        config = {"dropout": self.rate, **self.extra_config}
        if self.feature_wise:
            config["feature_wise"] = True
        return config


class LinearSELU(Linear):
    """Fused y = alpha_dropout(selu(x @ W + b)): one pass over memory for bias, SELU and dropout.

    With dropout > 0 the alpha-dropout parameters keep the (mu, nu) fixed point of SELU(alpha, lam).
    """

    def __init__(self, d_in: int, d_out: int, backend: Backend, dropout: float = 0.0, alpha: float = ALPHA_01,
                 lam: float = LAMBDA_01, mu: float = 0.0, nu: float = 1.0, init: str = "lecun_normal", seed: int = 0,
                 init_mode: str | None = None, feature_wise: bool = False):
        super().__init__(d_in, d_out, backend, init=init, seed=seed, init_mode=init_mode)
        self.alpha, self.lam = float(alpha), float(lam)
        self.dropout = MaskedDropoutState.alpha(dropout, mu, nu, self.alpha, self.lam, seed, feature_wise)
        self.buffers["step"] = self.dropout.step

    def config(self) -> dict[str, Any]:
        return {**super().config(), "alpha": self.alpha, "lam": self.lam, **self.dropout.config()}

    def forward(self, x, train: bool = True):
        be = self.backend
        z = self._affine(x)  # (N, D_out), overwritten in place by the output
        if train and self.dropout.active:
            mask = self.dropout.next_mask()
            y = be.bias_selu_dropout_forward(z, self.params["b"], mask, self.alpha, self.lam, out=z)
        else:
            mask = None
            y = be.bias_selu_forward(z, self.params["b"], self.alpha, self.lam, out=z)
        self._cache = (x, y, mask)
        return y

    def backward(self, dy):
        x, y, mask = self._pop_cache()
        be = self.backend
        dz = self._workspace("dz", y.shape)  # (N, D_out)
        if mask is None:
            be.bias_selu_backward(dy, y, self.alpha, self.lam, dz=dz, db=self.grads["b"])
        else:
            be.bias_selu_dropout_backward(dy, y, mask, self.alpha, self.lam, dz=dz, db=self.grads["b"])
        return self._backward_affine(x, dz)


class _DropoutLayer(Layer):
    """Shared forward/backward of AlphaDropout and Dropout: identity at eval or at rate 0."""

    def __init__(self, backend: Backend, state: MaskedDropoutState):
        super().__init__(backend)
        self.dropout = state
        self.buffers["step"] = state.step

    def forward(self, x, train: bool = True):
        if not (train and self.dropout.active):
            self._cache = "identity"
            return x
        mask = self.dropout.next_mask()
        self._cache = mask
        return self.backend.alpha_dropout_forward(x, mask, out=self._workspace("y", x.shape))

    def backward(self, dy):
        mask = self._pop_cache()
        if mask == "identity":
            return dy
        return self.backend.alpha_dropout_backward(dy, mask, out=self._workspace("dx", dy.shape))

    def _config(self, **extra) -> dict[str, Any]:
        config = {"type": type(self).__name__, "rate": self.dropout.rate, **extra, "seed": self.dropout.seed}
        if self.dropout.feature_wise:
            config["feature_wise"] = True
        return config


class AlphaDropout(_DropoutLayer):
    """Alpha dropout (paper Sec. 6): keeps mean mu and variance nu of SELU(alpha, lam) activations.

    feature_wise=True draws one mask per feature, shared across the batch (Keras' noise_shape
    (1, D)); the default draws one decision per element.
    """

    def __init__(self, rate: float, backend: Backend, mu: float = 0.0, nu: float = 1.0, alpha: float = ALPHA_01,
                 lam: float = LAMBDA_01, seed: int = 0, feature_wise: bool = False):
        super().__init__(backend, MaskedDropoutState.alpha(rate, mu, nu, alpha, lam, seed, feature_wise))
        self.alpha, self.lam = float(alpha), float(lam)

    def config(self) -> dict[str, Any]:
        return self._config(mu=self.dropout.extra_config["mu"], nu=self.dropout.extra_config["nu"], alpha=self.alpha,
                            lam=self.lam)


class Dropout(_DropoutLayer):
    """Standard inverted dropout: kept units x/q, dropped units 0 (for ReLU, ELU, tanh baselines)."""

    def __init__(self, rate: float, backend: Backend, seed: int = 0, feature_wise: bool = False):
        super().__init__(backend, MaskedDropoutState.standard(rate, seed, feature_wise))

    def config(self) -> dict[str, Any]:
        return self._config()


class _Activation(Layer):
    """An activation computed by a forward op, whose backward op needs only the output y."""

    forward_op = backward_op = ""

    def _scalars(self) -> tuple:
        """Extra scalar arguments of both ops (e.g. alpha, lam)."""
        return ()

    def forward(self, x, train: bool = True):
        op = getattr(self.backend, self.forward_op)
        y = op(x, *self._scalars(), out=self._workspace("y", x.shape))
        self._cache = y
        return y

    def backward(self, dy):
        y = self._pop_cache()
        op = getattr(self.backend, self.backward_op)
        return op(dy, y, *self._scalars(), out=self._workspace("dx", dy.shape))


class SELU(_Activation):
    """selu(x) = lam*x for x > 0, lam*alpha*(exp(x) - 1) otherwise; backward from the output."""

    forward_op, backward_op = "selu_forward", "selu_backward"

    def __init__(self, backend: Backend, alpha: float = ALPHA_01, lam: float = LAMBDA_01):
        super().__init__(backend)
        self.alpha, self.lam = float(alpha), float(lam)

    def _scalars(self) -> tuple:
        return self.alpha, self.lam

    def config(self) -> dict[str, Any]:
        return {"type": "SELU", "alpha": self.alpha, "lam": self.lam}


class ReLU(_Activation):
    """max(x, 0); slope 1 where y > 0, else 0 (0 at the kink)."""

    forward_op, backward_op = "relu_forward", "relu_backward"


class ELU(_Activation):
    """x for x > 0, alpha*(exp(x) - 1) otherwise; slope y + alpha on the negative branch."""

    forward_op, backward_op = "elu_forward", "elu_backward"

    def __init__(self, backend: Backend, alpha: float = 1.0):
        super().__init__(backend)
        self.alpha = float(alpha)

    def _scalars(self) -> tuple:
        return (self.alpha,)

    def config(self) -> dict[str, Any]:
        return {"type": "ELU", "alpha": self.alpha}


class Tanh(_Activation):
    """tanh(x); slope 1 - y^2."""

    forward_op, backward_op = "tanh_forward", "tanh_backward"


class Sigmoid(_Activation):
    """1/(1 + exp(-x)), accurate in relative terms for x << 0; slope y(1 - y)."""

    forward_op, backward_op = "sigmoid_forward", "sigmoid_backward"


class Identity(Layer):
    """y = x."""

    def forward(self, x, train: bool = True):
        self._cache = "identity"
        return x

    def backward(self, dy):
        self._pop_cache()
        return dy

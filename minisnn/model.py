"""Sequential models and the `mlp` builder for self-normalizing networks."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .backends import get_backend
from .backends.base import Backend
from .constants import ALPHA_01, LAMBDA_01
from .layers import (
    ELU,
    AlphaDropout,
    Dropout,
    Layer,
    Linear,
    LinearSELU,
    ReLU,
    SELU,
    Tanh,
    layer_from_config,
)

ACTIVATIONS = ("selu", "relu", "elu", "tanh")
PACK_ALIGNMENT = 16  # elements: 64 bytes in float32, a cache line
SHAPES = ("rectangular", "conic")
# The initializer each activation is paired with by default (the paper's SNN and MSRA baselines).
DEFAULT_INIT = {"selu": "lecun_normal", "relu": "he_normal", "elu": "he_normal", "tanh": "glorot_normal"}


# Config values left out of summary() rows when they hold these defaults.
_SUMMARY_DEFAULTS = {"init_mode": None, "init": "lecun_normal", "alpha": ALPHA_01, "lam": LAMBDA_01,
                     "mu": 0.0, "nu": 1.0}


class Parameter(NamedTuple):
    """A named parameter and its gradient buffer (both backend arrays, same shape)."""

    name: str
    value: Any
    grad: Any


class FlatParameters(NamedTuple):
    """A model's parameters and gradients packed in two flat buffers (P,); slots[i] is the
    (offset, shape) of the i-th parameter in both."""

    values: Any
    grads: Any
    slots: list[tuple[int, tuple[int, ...]]]


def packed_view(flat, offset: int, shape: tuple[int, ...], initial=None):
    """The slice of `flat` starting at `offset`, shaped `shape`; filled with `initial` if given."""
    size = int(np.prod(shape, dtype=np.int64))
    view = flat[offset:offset + size].reshape(shape)
    if initial is not None:
        view[...] = initial
    return view


class Sequential:
    """Layers applied in order. forward(x, train) and backward(dy) take and return backend arrays.

    `monitor`, when set, is told about every layer's output (monitor.on_forward(index, layer, y, train))
    and input gradient (monitor.on_backward(index, layer, dx)); it costs nothing when None.
    """

    def __init__(self, layers: list[Layer], backend: Backend, n_inputs: int):
        if not layers:
            raise ValueError("a Sequential model needs at least one layer")
        if any(layer.backend is not backend for layer in layers):
            raise ValueError("every layer of a Sequential model must use the model's backend object")
        self.layers = list(layers)
        self.backend = backend
        self.n_inputs = int(n_inputs)
        self.monitor = None
        self.meta: dict[str, Any] = {}  # free-form notes saved with checkpoints (e.g. standardization)
        for i, layer in enumerate(self.layers):
            layer.needs_input_grad = i > 0
        dims = [self.n_inputs]
        for layer in self.layers:
            dims.append(layer.output_dim(dims[-1]))
        self.dims = dims  # feature width after each layer, dims[0] the input
        self.n_outputs = dims[-1]
        self._pack_parameters()

    # ---- passes -----------------------------------------------------------------------
    def forward(self, x, train: bool = True):
        """(N, n_inputs) backend array -> (N, n_outputs) logits (a layer-owned buffer)."""
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"model expects input of shape (N, {self.n_inputs}), got {tuple(x.shape)}")
        for i, layer in enumerate(self.layers):
            x = layer.forward(x, train)
            if self.monitor is not None:
                self.monitor.on_forward(i, layer, x, train)
        return x

    def backward(self, dy):
        """Backpropagate dy (N, n_outputs); fills every layer's grads."""
        for i in range(len(self.layers) - 1, -1, -1):
            dy = self.layers[i].backward(dy)
            if self.monitor is not None and dy is not None:
                self.monitor.on_backward(i, self.layers[i], dy)
        return dy

    def parameters(self) -> list[Parameter]:
        """Every parameter as (name, value, grad); names are "<layer index>.<param>"."""
        return [
            Parameter(f"{i}.{key}", layer.params[key], layer.grads[key])
            for i, layer in enumerate(self.layers)
            for key in layer.params
        ]

    def _pack_parameters(self) -> None:
        """Move every parameter into one flat buffer, and every gradient into another.

        Each layer keeps a view of its slice with the parameter's shape, so nothing else changes;
        an optimizer can then update the whole model in one pass over memory (flat_parameters)
        instead of one short call per array. Slices start at multiples of PACK_ALIGNMENT elements;
        the padding between them stays zero. Arrays shared between layers (a layer used twice, tied
        weights) stay as they are: copying them apart would untie them.
        """
        arrays = [id(a) for layer in self.layers for a in (*layer.params.values(), *layer.grads.values())]
        if len(set(arrays)) != len(arrays):
            self._packed, self._packed_arrays = None, []
            return
        be = self.backend
        slots, total = [], 0
        for layer in self.layers:
            for key, value in layer.params.items():
                slots.append((layer, key, total, value.shape))
                total += -(-value.size // PACK_ALIGNMENT) * PACK_ALIGNMENT
        values, grads = be.zeros((total,)), be.zeros((total,))  # (P,), (P,)
        for layer, key, offset, shape in slots:
            layer.params[key] = packed_view(values, offset, shape, layer.params[key])
            layer.grads[key] = packed_view(grads, offset, shape)
        self._packed = FlatParameters(values, grads, [(offset, shape) for _, _, offset, shape in slots])
        self._packed_arrays = [(p.value, p.grad) for p in self.parameters()]

    def flat_parameters(self) -> FlatParameters | None:
        """The flat buffers that every parameter and gradient is a view of (slots in the order of
        parameters()), or None once a layer's arrays were replaced or layers added."""
        current = self.parameters()
        if self._packed is None or len(current) != len(self._packed_arrays) or any(
                p.value is not value or p.grad is not grad for p, (value, grad) in zip(current, self._packed_arrays)):
            return None
        return self._packed

    def n_parameters(self) -> int:
        return int(sum(p.value.size for p in self.parameters()))

    # ---- inference ------------------------------------------------------------------------
    def logits(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Eval-mode outputs for host input x (N, n_inputs), computed in batches; a host array."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"model expects input of shape (N, {self.n_inputs}), got {x.shape}")
        if x.dtype.kind not in "fiu":
            raise ValueError(f"model input must be numeric, got dtype {x.dtype}")
        out = np.empty((x.shape[0], self.n_outputs), dtype=self.backend.dtype)
        for start in range(0, x.shape[0], batch_size):
            chunk = self.backend.asarray(x[start : start + batch_size], dtype=self.backend.dtype)
            out[start : start + batch_size] = self.backend.to_numpy(self.forward(chunk, train=False))
        return out

    def predict_proba(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities (N, C): softmax of the logits (computed stably in float64)."""
        z = self.logits(x, batch_size).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Predicted class indices (N,)."""
        return np.argmax(self.logits(x, batch_size), axis=1)

    # ---- description ----------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"n_inputs": self.n_inputs, "layers": [layer.config() for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any], backend: Backend) -> "Sequential":
        try:
            layers = [layer_from_config(c, backend) for c in config["layers"]]
            return cls(layers, backend, config["n_inputs"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"bad model config: missing or malformed {exc}") from exc

    def summary(self) -> str:
        """A table of layers, output shapes and parameter counts."""
        rows = [("#", "layer", "output", "params")]
        for i, layer in enumerate(self.layers):
            details = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in layer.config().items() if k not in ("type", "seed") and _SUMMARY_DEFAULTS.get(k, ...) != v)
            name = f"{type(layer).__name__}({details})" if details else type(layer).__name__
            count = sum(int(p.size) for p in layer.params.values())
            rows.append((str(i), name, f"(N, {self.dims[i + 1]})", f"{count:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        lines = ["  ".join(cell.ljust(w) if c == 1 else cell.rjust(w) for c, (cell, w) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.append(f"input (N, {self.n_inputs}); {self.n_parameters():,} parameters; "
                     f"backend {self.backend.name}, {self.backend.dtype.name}")
        return "\n".join(lines)


def layer_widths(width: int, depth: int, n_outputs: int, shape: str) -> list[int]:
    """Hidden widths: constant ("rectangular") or shrinking geometrically toward n_outputs ("conic")."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    if shape == "rectangular":
        return [width] * depth
    ratio = (n_outputs / width) ** (1.0 / depth)
    return [max(n_outputs, int(round(width * ratio**i))) for i in range(depth)]


def mlp(
    n_inputs: int,
    n_outputs: int,
    depth: int = 8,
    width: int = 256,
    shape: str = "rectangular",
    dropout: float = 0.05,
    activation: str = "selu",
    fused: bool = True,
    init: str | None = None,
    backend: Backend | None = None,
    seed: int = 0,
    alpha: float | None = None,
    lam: float | None = None,
    mu: float = 0.0,
    nu: float = 1.0,
) -> Sequential:
    """A multilayer perceptron: `depth` hidden layers of [Linear, activation, dropout] and a Linear output.

    SELU networks use alpha dropout and, with fused=True, one LinearSELU layer per hidden layer;
    other activations use standard dropout. alpha/lam set SELU's parameters (default: the (0, 1)
    constants) and (mu, nu) the fixed point alpha dropout preserves (minisnn.theory.selu_params
    gives alpha, lam for any fixed point). Weights are drawn from `seed`: the same seed gives the same network on any backend.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if depth < 0 or width < 1 or n_inputs < 1 or n_outputs < 1:
        raise ValueError(f"mlp needs depth >= 0 and positive sizes, got depth={depth}, width={width}, "
                         f"n_inputs={n_inputs}, n_outputs={n_outputs}")
    if (alpha is not None or lam is not None or (mu, nu) != (0.0, 1.0)) and activation != "selu":
        raise ValueError("alpha, lam, mu and nu apply to SELU networks only")
    backend = backend or get_backend()
    init = init or DEFAULT_INIT[activation]
    # One seed per hidden layer, shared by its weights and its dropout masks, so that fused and
    # unfused networks built from the same seed compute the same function.
    seeds = np.random.default_rng(seed).integers(0, 2**62, size=depth + 1).tolist()
    selu_args = {"alpha": ALPHA_01 if alpha is None else alpha, "lam": LAMBDA_01 if lam is None else lam}
    make_activation = {"selu": lambda: SELU(backend, **selu_args), "relu": lambda: ReLU(backend),
                       "elu": lambda: ELU(backend), "tanh": lambda: Tanh(backend)}[activation]
    layers: list[Layer] = []
    d_in = n_inputs
    for d_out, layer_seed in zip(layer_widths(width, depth, n_outputs, shape), seeds):
        if activation == "selu" and fused:
            layers.append(LinearSELU(d_in, d_out, backend, dropout=dropout, mu=mu, nu=nu, init=init, seed=layer_seed,
                                     **selu_args))
        else:
            layers.append(Linear(d_in, d_out, backend, init=init, seed=layer_seed))
            layers.append(make_activation())
            if dropout > 0:
                layers.append(AlphaDropout(dropout, backend, mu=mu, nu=nu, seed=layer_seed, **selu_args)
                              if activation == "selu"
                              else Dropout(dropout, backend, seed=layer_seed))
        d_in = d_out
    layers.append(Linear(d_in, n_outputs, backend, init=init, seed=seeds[-1]))
    return Sequential(layers, backend, n_inputs)

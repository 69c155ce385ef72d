"""Sequential models and the `mlp` builder for self-normalizing networks."""

from __future__ import annotations

import math
from typing import Any

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
SHAPES = ("rectangular", "conic")
# The initializer each activation is paired with by default (the paper's SNN and MSRA baselines).
DEFAULT_INIT = {"selu": "lecun_normal", "relu": "he_normal", "elu": "he_normal", "tanh": "glorot_normal"}


# Config values left out of summary() rows when they hold these defaults.
_SUMMARY_DEFAULTS = {"init_mode": None, "init": "lecun_normal", "alpha": ALPHA_01, "lam": LAMBDA_01,
                     "mu": 0.0, "nu": 1.0, "eps": 1e-5, "momentum": 0.1}


class Sequential(Layer):
    """Layers applied in order; a layer itself, so models nest. Children are named "0", "1", ...

    forward(x, train) and backward(dy) take and return backend arrays. `monitor`, when set, is
    told about every layer's output (monitor.on_forward(index, layer, y, train)) and input
    gradient (monitor.on_backward(index, layer, dx)); it costs nothing when None.
    """

    def __init__(self, layers: list[Layer], backend: Backend, n_inputs: int):
        super().__init__(backend)
        if not layers:
            raise ValueError("a Sequential model needs at least one layer")
        if any(layer.backend is not backend for layer in layers):
            raise ValueError("every layer of a Sequential model must use the model's backend object")
        self.children = {str(i): layer for i, layer in enumerate(layers)}
        self.n_inputs = int(n_inputs)
        self.monitor = None
        self.meta: dict[str, Any] = {}  # free-form notes saved with checkpoints (e.g. standardization)
        for layer in layers[1:]:
            layer.needs_input_grad = True
        self.needs_input_grad = False  # a model's input needs no gradient; a parent that nests it sets True
        dims = [self.n_inputs]
        for layer in layers:
            dims.append(layer.output_dim(dims[-1]))
        self.dims = dims  # feature width after each layer, dims[0] the input
        self.n_outputs = dims[-1]

    @property
    def layers(self) -> list[Layer]:
        return list(self.children.values())

    def _input_child_names(self) -> tuple[str, ...]:
        """The first layer reads the model's input: it skips computing dx when the model's is not needed."""
        return (next(iter(self.children)),) if self.children else ()

    def output_dim(self, d_in: int) -> int:
        if d_in != self.n_inputs:
            raise ValueError(f"Sequential expects {self.n_inputs} input features, got {d_in}")
        return self.n_outputs

    # ---- passes -----------------------------------------------------------------------
    def forward(self, x, train: bool = True):
        """(N, n_inputs) backend array -> (N, n_outputs) logits (a layer-owned array)."""
        self._check_input(x, self.n_inputs)
        for i, layer in enumerate(self.children.values()):
            x = layer.forward(x, train)
            if self.monitor is not None:
                self.monitor.on_forward(i, layer, x, train)
        return x

    def backward(self, dy):
        """Backpropagate dy (N, n_outputs); fills every layer's grads."""
        layers = self.layers
        for i in range(len(layers) - 1, -1, -1):
            dy = layers[i].backward(dy)
            if self.monitor is not None and dy is not None:
                self.monitor.on_backward(i, layers[i], dy)
        return dy

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
        return {"type": "Sequential", "n_inputs": self.n_inputs, "layers": [layer.config() for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any], backend: Backend) -> "Sequential":
        try:
            layers = [layer_from_config(c, backend) for c in config["layers"]]
            return cls(layers, backend, config["n_inputs"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"bad model config: missing or malformed {exc}") from exc

    def summary(self) -> str:
        """A table of layers, output shapes and parameter counts; the layers inside a composite
        layer (a highway layer, a residual block) follow it, indented, under dotted names."""
        rows = [("#", "layer", "output", "params")]
        for i, layer in enumerate(self.layers):
            rows.append((str(i), _describe(layer), f"(N, {self.dims[i + 1]})", f"{layer.n_parameters():,}"))
            rows += _child_rows(layer, str(i), depth=1)
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        lines = ["  ".join(cell.ljust(w) if c < 2 else cell.rjust(w) for c, (cell, w) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.append(f"input (N, {self.n_inputs}); {self.n_parameters():,} parameters; "
                     f"backend {self.backend.name}, {self.backend.dtype.name}")
        return "\n".join(lines)


def _describe(layer: Layer) -> str:
    """"Type(arg=value, ...)" with the arguments that differ from their usual defaults."""
    details = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in layer.config().items()
                        if k not in ("type", "seed", "layers") and _SUMMARY_DEFAULTS.get(k, ...) != v)
    return f"{type(layer).__name__}({details})" if details else type(layer).__name__


def _child_rows(layer: Layer, prefix: str, depth: int) -> list[tuple[str, str, str, str]]:
    """Summary rows for the children of a composite layer, recursively."""
    rows = []
    for name, child in layer.children.items():
        rows.append((f"{prefix}.{name}", "  " * depth + _describe(child), "", f"{child.n_parameters():,}"))
        rows += _child_rows(child, f"{prefix}.{name}", depth + 1)
    return rows


def layer_seeds(seed: int, count: int) -> list[int]:
    """`count` per-layer seeds (weights and dropout masks) drawn from one network seed."""
    return np.random.default_rng(seed).integers(0, 2**62, size=count).tolist()


def layer_widths(width: int, depth: int, n_outputs: int, shape: str) -> list[int]:
    """The `depth` hidden widths: constant ("rectangular") or "conic", shrinking geometrically from
    `width` towards n_outputs: layer i (0-based) has width * r**i units with r = (n_outputs /
    width)**(1/depth), so the output layer would be the next step of the same progression;
    rounded half up (floor(w + 0.5)) and never below n_outputs. E.g. width 1024, depth 4, 2
    outputs: 1024, 215, 45, 10.
    """
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    if shape == "rectangular":
        return [width] * depth
    if width < n_outputs:
        raise ValueError(f"conic widths shrink from the first width towards the output size: width {width} "
                         f"must be at least n_outputs {n_outputs}")
    ratio = (n_outputs / width) ** (1.0 / depth)
    return [max(n_outputs, int(math.floor(width * ratio**i + 0.5))) for i in range(depth)]


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
    feature_wise_dropout: bool = False,
) -> Sequential:
    """A multilayer perceptron: `depth` hidden layers of [Linear, activation, dropout] and a Linear output.

    SELU networks use alpha dropout and, with fused=True, one LinearSELU layer per hidden layer;
    other activations use standard dropout. alpha/lam set SELU's parameters (default: the (0, 1)
    constants) and (mu, nu) the fixed point alpha dropout preserves (minisnn.theory.selu_params
    gives alpha, lam for any fixed point). feature_wise_dropout draws one mask per feature, shared
    across the batch, instead of one per element. Weights are drawn from `seed`: the same seed gives the same network on any backend.
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
    seeds = layer_seeds(seed, depth + 1)
    selu_args = {"alpha": ALPHA_01 if alpha is None else alpha, "lam": LAMBDA_01 if lam is None else lam}
    make_activation = {"selu": lambda: SELU(backend, **selu_args), "relu": lambda: ReLU(backend),
                       "elu": lambda: ELU(backend), "tanh": lambda: Tanh(backend)}[activation]
    layers: list[Layer] = []
    d_in = n_inputs
    for d_out, layer_seed in zip(layer_widths(width, depth, n_outputs, shape), seeds):
        if activation == "selu" and fused:
            layers.append(LinearSELU(d_in, d_out, backend, dropout=dropout, mu=mu, nu=nu, init=init, seed=layer_seed,
                                     feature_wise=feature_wise_dropout, **selu_args))
        else:
            layers.append(Linear(d_in, d_out, backend, init=init, seed=layer_seed))
            layers.append(make_activation())
            if dropout > 0:
                layers.append(AlphaDropout(dropout, backend, mu=mu, nu=nu, seed=layer_seed,
                                           feature_wise=feature_wise_dropout, **selu_args)
                              if activation == "selu"
                              else Dropout(dropout, backend, seed=layer_seed, feature_wise=feature_wise_dropout))
        d_in = d_out
    layers.append(Linear(d_in, n_outputs, backend, init=init, seed=seeds[-1]))
    return Sequential(layers, backend, n_inputs)

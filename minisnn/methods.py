"""The seven ways of training deep feed-forward networks that the SNN paper compares, by name.

`build_model(method, n_inputs, n_outputs, ...)` returns an untrained Sequential; each builder's
docstring gives its exact layer sequence (`model.summary()` prints it). Hidden widths come from
`layer_widths(width, depth, n_outputs, shape)`: "rectangular" keeps `width`, "conic" shrinks it
geometrically towards the output size. The order of the layers within a hidden layer follows
the authors' code and the public re-implementation of the UCI study: Linear -> activation ->
normalization -> dropout; `order="before_activation"` gives the other common one
(Linear -> normalization -> activation).

| method     | hidden layer (repeated `depth` times)        | init      | dropout       |
|------------|----------------------------------------------|-----------|---------------|
| snn        | LinearSELU (Linear, SELU, alpha dropout)     | LeCun     | alpha dropout |
| msra       | Linear, ReLU, Dropout                        | He (MSRA) | standard      |
| batchnorm  | Linear, ReLU, BatchNorm1d, Dropout           | He        | standard      |
| layernorm  | Linear, ReLU, LayerNorm, Dropout             | He        | standard      |
| weightnorm | WeightNormLinear, ReLU, Dropout              | He        | standard      |
| highway    | Highway(ReLU), Dropout (width = inputs)      | He        | standard      |
| resnet     | ResidualBlock ("depth" counts blocks)        | He        | none          |

Every network ends with a Linear layer to n_outputs (logits). Dropout layers are left out at
rate 0.
"""

from __future__ import annotations

from typing import Callable

from .backends import get_backend
from .backends.base import Backend
from .blocks import DEFAULT_GATE_BIAS, Highway, ResidualBlock
from .layers import Dropout, Layer, Linear, ReLU
from .model import Sequential, layer_seeds, layer_widths, mlp
from .normalization import BatchNorm1d, LayerNorm, WeightNormLinear

METHODS = ("snn", "msra", "batchnorm", "layernorm", "weightnorm", "highway", "resnet")
ORDERS = ("after_activation", "before_activation")
RESNET_SHAPES = ("rectangular", "diavolo")
DEFAULT_DROPOUT = {"snn": 0.05}  # the others: 0 (the paper's grids add dropout for msra and highway)
DEFAULT_BOTTLENECK = 0.5


def build_model(method: str, n_inputs: int, n_outputs: int, *, depth: int = 8, width: int | None = 256,
                shape: str = "rectangular", dropout: float | None = None, bottleneck: float | None = None,
                order: str = "after_activation", gate_bias: float = DEFAULT_GATE_BIAS,
                backend: Backend | None = None, seed: int = 0) -> Sequential:
    """The untrained network of `method` (one of METHODS) for n_inputs features and n_outputs logits.

    depth counts hidden layers (residual blocks for resnet); width is the (first) hidden width, or
    None for highway to keep the input width; shape is "rectangular" or "conic" ("rectangular" or
    "diavolo" for resnet, diavolo with a middle layer of bottleneck*width, default 0.5); dropout
    None takes the method's default (0.05 for snn, else 0); order places the normalization of
    batchnorm and layernorm after (default) or before the ReLU; gate_bias starts highway gates.
    An argument that does not apply to the method is a ValueError, not ignored. The same seed
    gives the same network on every backend.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if depth < 0 or n_inputs < 1 or n_outputs < 1 or (width is not None and width < 1):
        raise ValueError(f"{method} needs depth >= 0 and positive sizes, got depth={depth}, width={width}, "
                         f"n_inputs={n_inputs}, n_outputs={n_outputs}")
    if width is None and method != "highway":
        raise ValueError(f"{method} needs a width (only highway keeps the input width with width=None)")
    if bottleneck is not None and not (method == "resnet" and shape == "diavolo"):
        raise ValueError("bottleneck applies to resnet with shape 'diavolo' only")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if order != "after_activation" and method not in ("batchnorm", "layernorm"):
        raise ValueError("order applies to batchnorm and layernorm only")
    if gate_bias != DEFAULT_GATE_BIAS and method != "highway":
        raise ValueError("gate_bias applies to highway only")
    dropout = DEFAULT_DROPOUT.get(method, 0.0) if dropout is None else float(dropout)
    backend = backend or get_backend()
    common = {"depth": depth, "width": width, "shape": shape, "dropout": dropout, "backend": backend, "seed": seed}
    if method == "snn":
        return mlp(n_inputs, n_outputs, activation="selu", **common)
    if method == "msra":
        return mlp(n_inputs, n_outputs, activation="relu", **common)
    if method in ("batchnorm", "layernorm"):
        norm = BatchNorm1d if method == "batchnorm" else LayerNorm
        return normalized_mlp(n_inputs, n_outputs, norm, order=order, **common)
    if method == "weightnorm":
        return weightnorm_mlp(n_inputs, n_outputs, **common)
    if method == "highway":
        return highway_network(n_inputs, n_outputs, gate_bias=gate_bias, **common)
    return residual_network(n_inputs, n_outputs, bottleneck=bottleneck, **common)


def _hidden_stack(n_inputs: int, n_outputs: int, depth: int, width: int, shape: str, dropout: float,
                  backend: Backend, seed: int, make_hidden: Callable[[int, int, int], list[Layer]]) -> Sequential:
    """make_hidden(d_in, d_out, seed) for each hidden width, Dropout after each if dropout > 0,
    then Linear(He) to the outputs; one seed per layer, drawn from `seed`."""
    seeds = layer_seeds(seed, depth + 1)
    layers: list[Layer] = []
    d_in = n_inputs
    for d_out, layer_seed in zip(layer_widths(width, depth, n_outputs, shape), seeds):
        layers += make_hidden(d_in, d_out, layer_seed)
        if dropout > 0:
            layers.append(Dropout(dropout, backend, seed=layer_seed))
        d_in = d_out
    layers.append(Linear(d_in, n_outputs, backend, init="he_normal", seed=seeds[-1]))
    return Sequential(layers, backend, n_inputs)


def normalized_mlp(n_inputs: int, n_outputs: int, norm: type[BatchNorm1d] | type[LayerNorm], depth: int,
                   width: int, shape: str, dropout: float, backend: Backend, seed: int,
                   order: str = "after_activation") -> Sequential:
    """batchnorm / layernorm: per hidden layer Linear(He) -> ReLU -> norm [-> Dropout]
    (order="before_activation": Linear -> norm -> ReLU [-> Dropout]), then Linear."""

    def hidden(d_in: int, d_out: int, layer_seed: int) -> list[Layer]:
        linear = Linear(d_in, d_out, backend, init="he_normal", seed=layer_seed)
        pair = [ReLU(backend), norm(d_out, backend)]
        return [linear, *(pair if order == "after_activation" else pair[::-1])]

    return _hidden_stack(n_inputs, n_outputs, depth, width, shape, dropout, backend, seed, hidden)


def weightnorm_mlp(n_inputs: int, n_outputs: int, depth: int, width: int, shape: str, dropout: float,
                   backend: Backend, seed: int) -> Sequential:
    """weightnorm: per hidden layer WeightNormLinear(He) -> ReLU [-> Dropout], then Linear."""

    def hidden(d_in: int, d_out: int, layer_seed: int) -> list[Layer]:
        return [WeightNormLinear(d_in, d_out, backend, init="he_normal", seed=layer_seed), ReLU(backend)]

    return _hidden_stack(n_inputs, n_outputs, depth, width, shape, dropout, backend, seed, hidden)


def highway_network(n_inputs: int, n_outputs: int, depth: int, width: int | None, shape: str, dropout: float,
                    backend: Backend, seed: int, gate_bias: float = DEFAULT_GATE_BIAS) -> Sequential:
    """highway: [Linear(He) -> ReLU to `width` when width differs from n_inputs], then `depth`
    Highway(ReLU) layers [-> Dropout], then Linear. Highway layers keep their width, so the
    shape is rectangular; width None (the paper's setting) keeps the input width."""
    if shape != "rectangular":
        raise ValueError(f"highway layers keep their width: shape must be 'rectangular', got {shape!r}")
    width = n_inputs if width is None else width
    seeds = layer_seeds(seed, depth + 2)
    layers: list[Layer] = []
    if width != n_inputs:
        layers += [Linear(n_inputs, width, backend, init="he_normal", seed=seeds[-2]), ReLU(backend)]
    for layer_seed in seeds[:depth]:
        layers.append(Highway(width, backend, activation="relu", gate_bias=gate_bias, seed=layer_seed))
        if dropout > 0:
            layers.append(Dropout(dropout, backend, seed=layer_seed))
    layers.append(Linear(width, n_outputs, backend, init="he_normal", seed=seeds[-1]))
    return Sequential(layers, backend, n_inputs)


def residual_network(n_inputs: int, n_outputs: int, depth: int, width: int, shape: str, dropout: float,
                     backend: Backend, seed: int, bottleneck: float | None = None) -> Sequential:
    """resnet: Linear(He) -> BatchNorm1d -> ReLU to `width`, then `depth` ResidualBlocks
    (rectangular: two Linear+BN in the branch; diavolo: three, the middle one of
    bottleneck*width units, default 0.5), then Linear. No dropout (the paper's grid has none)."""
    if shape not in RESNET_SHAPES:
        raise ValueError(f"resnet shape must be one of {RESNET_SHAPES}, got {shape!r}")
    if dropout > 0:
        raise ValueError("resnet takes no dropout (the paper's ResNet grid has none)")
    if shape == "diavolo" and bottleneck is None:
        bottleneck = DEFAULT_BOTTLENECK
    seeds = layer_seeds(seed, depth + 2)
    layers: list[Layer] = [Linear(n_inputs, width, backend, init="he_normal", seed=seeds[-2]),
                           BatchNorm1d(width, backend), ReLU(backend)]
    layers += [ResidualBlock(width, backend, bottleneck=bottleneck, seed=s) for s in seeds[:depth]]
    layers.append(Linear(width, n_outputs, backend, init="he_normal", seed=seeds[-1]))
    return Sequential(layers, backend, n_inputs)

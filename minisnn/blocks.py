"""Composite layers with a skip path: highway layers and residual blocks.

Both keep the width D of their input, are made of child layers (so their parameters are named
"<child>.<...>.<key>" in checkpoints) and add one backend op for the skip path: highway_forward
and highway_backward for the gated mix, `add` for the residual sum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backends.base import Backend
from .layers import ELU, Layer, Linear, ReLU, SELU, Sigmoid, Tanh
from .model import Sequential, layer_seeds
from .normalization import BatchNorm1d

HIGHWAY_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "elu": ELU, "selu": SELU}
# sigmoid(-2) = 0.12: each highway layer starts close to carrying its input through unchanged.
DEFAULT_GATE_BIAS = -2.0


class Highway(Layer):
    """y = T*H + (1 - T)*x with H = act(x W_H + b_H), T = sigmoid(x W_T + b_T), all (N, D)
    (Srivastava et al., 2015).

    The gate bias b_T starts at `gate_bias` (default -2, T = 0.12): a negative start biases each
    layer towards carrying x through, as Srivastava et al. recommend for training deep highway
    networks (they suggest -1 to -3); -2 keeps a 32-layer stack close to the identity at first
    while its gates can still open within a few updates. Children: "transform" (Linear),
    "activation", "gate" (Linear), "gate_sigmoid".
    """

    input_children = ("transform", "gate")

    def __init__(self, d: int, backend: Backend, activation: str = "relu", gate_bias: float = DEFAULT_GATE_BIAS,
                 init: str = "he_normal", seed: int = 0):
        super().__init__(backend)
        if int(d) < 1:
            raise ValueError(f"Highway needs a positive width, got {d}")
        if activation not in HIGHWAY_ACTIVATIONS:
            raise ValueError(f"Highway activation must be one of {tuple(HIGHWAY_ACTIVATIONS)}, got {activation!r}")
        if not np.isfinite(gate_bias):
            raise ValueError(f"gate_bias must be finite, got {gate_bias}")
        self.d, self.activation, self.gate_bias, self.init, self.seed = int(d), activation, float(gate_bias), init, int(seed)
        transform_seed, gate_seed = layer_seeds(self.seed, 2)
        self.children = {
            "transform": Linear(self.d, self.d, backend, init=init, seed=transform_seed),
            "activation": HIGHWAY_ACTIVATIONS[activation](backend),
            "gate": Linear(self.d, self.d, backend, init=init, seed=gate_seed),
            "gate_sigmoid": Sigmoid(backend),
        }
        self.children["gate"].params["b"][...] = self.gate_bias
        self.needs_input_grad = self.needs_input_grad  # hand the setting to the new children

    def config(self) -> dict[str, Any]:
        return {"type": "Highway", "d": self.d, "activation": self.activation, "gate_bias": self.gate_bias,
                "init": self.init, "seed": self.seed}

    def forward(self, x, train: bool = True):
        self._check_input(x, self.d)
        c = self.children
        h = c["activation"].forward(c["transform"].forward(x, train), train)  # (N, D)
        t = c["gate_sigmoid"].forward(c["gate"].forward(x, train), train)  # (N, D) in [0, 1]
        self._cache = (x, h, t)
        return self.backend.highway_forward(h, t, x, out=self._workspace("y", x.shape))

    def backward(self, dy):
        x, h, t = self._pop_cache()
        be, c = self.backend, self.children
        dh, dt, dx = be.highway_backward(dy, h, t, x, dh=self._workspace("dh", dy.shape),
                                         dt=self._workspace("dt", dy.shape), dx=self._workspace("dx", dy.shape))
        dx_transform = c["transform"].backward(c["activation"].backward(dh))
        dx_gate = c["gate"].backward(c["gate_sigmoid"].backward(dt))
        if not self.needs_input_grad:
            return None
        be.add(dx, dx_transform, out=dx)
        return be.add(dx, dx_gate, out=dx)


class ResidualBlock(Layer):
    """y = relu(F(x) + x) for x (N, D), with the branch F (child "branch", a Sequential):

    - rectangular (bottleneck None): Linear(D, D), BN, ReLU, Linear(D, D), BN;
    - "diavolo" (bottleneck b): Linear(D, D), BN, ReLU, Linear(D, k), BN, ReLU, Linear(k, D), BN,
      with the bottleneck width k = max(1, floor(b*D + 0.5)).

    BN is BatchNorm1d; weights are drawn with `init` (He normal, for ReLU).
    """

    input_children = ("branch",)

    def __init__(self, d: int, backend: Backend, bottleneck: float | None = None, init: str = "he_normal",
                 eps: float = 1e-5, momentum: float = 0.1, seed: int = 0):
        super().__init__(backend)
        if int(d) < 1:
            raise ValueError(f"ResidualBlock needs a positive width, got {d}")
        if bottleneck is not None and not (0 < float(bottleneck) <= 1):
            raise ValueError(f"bottleneck must be a fraction of the width in (0, 1], got {bottleneck}")
        self.d, self.init, self.seed = int(d), init, int(seed)
        self.bottleneck = None if bottleneck is None else float(bottleneck)
        self.eps, self.momentum = float(eps), float(momentum)
        widths = [self.d, self.d] if self.bottleneck is None else [self.d, self.bottleneck_width, self.d]
        layers: list[Layer] = []
        d_in = self.d
        for i, (d_out, layer_seed) in enumerate(zip(widths, layer_seeds(self.seed, len(widths)))):
            if i:
                layers.append(ReLU(backend))
            layers.append(Linear(d_in, d_out, backend, init=init, seed=layer_seed))
            layers.append(BatchNorm1d(d_out, backend, eps=eps, momentum=momentum))
            d_in = d_out
        self.children = {"branch": Sequential(layers, backend, self.d), "relu": ReLU(backend)}
        self.needs_input_grad = self.needs_input_grad  # the branch's dx joins the skip path's

    @property
    def bottleneck_width(self) -> int:
        """k = max(1, floor(bottleneck*D + 0.5)): round half up."""
        return max(1, int(np.floor(self.bottleneck * self.d + 0.5)))

    def config(self) -> dict[str, Any]:
        return {"type": "ResidualBlock", "d": self.d, "bottleneck": self.bottleneck, "init": self.init,
                "eps": self.eps, "momentum": self.momentum, "seed": self.seed}

    def forward(self, x, train: bool = True):
        self._check_input(x, self.d)
        branch = self.children["branch"].forward(x, train)  # (N, D)
        total = self.backend.add(branch, x, out=self._workspace("sum", x.shape))
        self._cache = "residual"
        return self.children["relu"].forward(total, train)

    def backward(self, dy):
        self._pop_cache()
        d_total = self.children["relu"].backward(dy)  # the gradient of both paths
        d_branch = self.children["branch"].backward(d_total)
        if not self.needs_input_grad:
            return None
        return self.backend.add(d_branch, d_total, out=self._workspace("dx", dy.shape))

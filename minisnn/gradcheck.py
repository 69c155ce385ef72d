"""Gradient checking: hand-written backward passes against central finite differences, in float64.

For a layer the checked scalar is f = sum(dy * layer.forward(x)) with a fixed random dy, so its
gradient is what backward(dy) returns. Two kinds of check per array (the input and every
parameter): along a random direction v, <grad, v> against (f(a + eps v) - f(a - eps v)) / (2 eps);
and on a few single entries. Dropout masks stay fixed because every evaluation restores the
layers' step counters first. Inputs near a kink (0 for SELU, ReLU, ELU) give meaningless
differences: move them away with `dodge_kinks` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .backends.base import Backend
from .layers import Layer


# Central differences of an objective of size |f| ~ 1-100 with eps = 1e-6 carry rounding noise of
# about 1e-16*|f|/eps ~ 1e-10..1e-8: this much of a difference says nothing.
NOISE_FLOOR = 1e-8


@dataclass(frozen=True)
class GradientCheck:
    """One comparison: which array, which check, the two values and their relative error."""

    array: str
    check: str
    analytic: float
    numeric: float

    @property
    def relative_error(self) -> float:
        """|analytic - numeric|, less the finite differences' NOISE_FLOOR, relative to the larger
        of the two (so a gradient that is exactly 0, such as a bias's before batch normalization,
        passes against a numeric estimate of pure rounding noise)."""
        scale = max(abs(self.analytic), abs(self.numeric))
        excess = max(0.0, abs(self.analytic - self.numeric) - NOISE_FLOOR)
        return 0.0 if excess == 0.0 else excess / scale


def dodge_kinks(x: np.ndarray, margin: float = 1e-2, kink: float = 0.0) -> np.ndarray:
    """A copy of x with every entry within `margin` of `kink` moved out to kink +- margin."""
    x = np.array(x, dtype=np.float64)
    near = np.abs(x - kink) < margin
    x[near] = kink + np.where(x[near] >= kink, margin, -margin)
    return x


def max_relative_error(checks: list[GradientCheck]) -> float:
    return max(c.relative_error for c in checks)


def _numeric_directional(f: Callable[[], float], array, direction, eps: float) -> float:
    saved = array.copy()
    array += eps * direction
    f_plus = f()
    array[...] = saved - eps * direction
    f_minus = f()
    array[...] = saved
    return (f_plus - f_minus) / (2 * eps)


def check_arrays(
    objective: Callable[[], float],
    gradients: dict[str, Any],
    arrays: dict[str, Any],
    backend: Backend,
    rng: np.random.Generator,
    eps: float = 1e-6,
    n_entries: int = 3,
) -> list[GradientCheck]:
    """Compare `gradients[name]` of the scalar `objective()` with finite differences on `arrays[name]`.

    The arrays are perturbed in place and restored. Both dicts hold float64 arrays of `backend`.
    """
    checks = []
    for name, array in arrays.items():
        if array.dtype != np.float64:
            raise ValueError(f"gradient checks need float64 arrays; {name} is {array.dtype}")
        grad = backend.to_numpy(gradients[name])
        direction = rng.standard_normal(array.shape)
        numeric = _numeric_directional(objective, array, backend.asarray(direction), eps)
        analytic = float((grad * direction).sum())
        checks.append(GradientCheck(name, "direction", analytic, numeric))
        for flat in rng.choice(array.size, size=min(n_entries, array.size), replace=False):
            index = np.unravel_index(int(flat), array.shape)
            unit = backend.zeros(array.shape)
            unit[index] = 1.0
            numeric = _numeric_directional(objective, array, unit, eps)
            checks.append(GradientCheck(name, f"entry {tuple(int(i) for i in index)}", float(grad[index]), numeric))
    return checks


def check_layer(layer: Layer, x, rng: np.random.Generator | None = None, eps: float = 1e-6,
                n_entries: int = 3, train: bool = True) -> list[GradientCheck]:
    """Check a layer's dx and every parameter gradient (children's included) at input x (N, D_in),
    of the training-mode function (batch statistics, fixed dropout masks) or, with train=False,
    of the evaluation-mode one (running statistics, no dropout)."""
    rng = rng or np.random.default_rng(0)
    be = layer.backend
    if be.dtype != np.float64:
        raise ValueError(f"gradient checks need a float64 backend, got {be.dtype}")
    x = be.asarray(x).copy()
    restore = layer.snapshot_buffers()  # the same masks and statistics in every evaluation
    dy = be.asarray(rng.standard_normal(tuple(layer.forward(x, train=False).shape)))

    def objective() -> float:
        restore()
        return float((layer.forward(x, train=train) * dy).sum())

    restore()
    layer.forward(x, train=train)
    dx = layer.backward(dy)
    params = layer.named_parameters()
    gradients = {"x": dx.copy()} if dx is not None else {}
    gradients.update({p.name: p.grad.copy() for p in params})
    arrays = {"x": x} if dx is not None else {}
    arrays.update({p.name: p.value for p in params})
    checks = check_arrays(objective, gradients, arrays, be, rng, eps, n_entries)
    restore()
    return checks


def check_loss(loss, pred, target, rng: np.random.Generator | None = None, eps: float = 1e-6,
               n_entries: int = 3, **forward_kwargs) -> list[GradientCheck]:
    """Check d loss / d pred of a loss object at (pred, target)."""
    rng = rng or np.random.default_rng(0)
    be = loss.backend
    pred = be.asarray(pred).copy()

    def objective() -> float:
        return float(loss.forward(pred, target, **forward_kwargs))

    loss.forward(pred, target, **forward_kwargs)
    grad = loss.backward().copy()
    return check_arrays(objective, {"pred": grad}, {"pred": pred}, be, rng, eps, n_entries)


def check_model(model, loss, x, target, rng: np.random.Generator | None = None, eps: float = 1e-6,
                n_entries: int = 2, train: bool = True) -> list[GradientCheck]:
    """Check every parameter gradient of a whole model under a loss, in training mode (or, with
    train=False, of the evaluation-mode function)."""
    rng = rng or np.random.default_rng(0)
    be = model.backend
    x = be.asarray(x)
    restore = model.snapshot_buffers()

    def objective() -> float:
        restore()
        out = float(loss.forward(model.forward(x, train=train), target))
        model.backward(loss.backward())  # clears every layer's cache
        return out

    restore()
    loss.forward(model.forward(x, train=train), target)
    model.backward(loss.backward())
    gradients = {p.name: p.grad.copy() for p in model.named_parameters()}
    arrays = {p.name: p.value for p in model.named_parameters()}
    checks = check_arrays(objective, gradients, arrays, be, rng, eps, n_entries)
    restore()
    return checks

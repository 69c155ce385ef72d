"""Activation tracing: per-layer mean, variance, SELU saturation and gradient variance of a Sequential model.

Opt-in: `model.monitor = ActivationMonitor(every=10)`. Sequential calls on_forward(index, layer, y)
after every layer and on_backward(index, layer, dx) after every layer's backward; with no monitor
set the model pays nothing. The monitor counts forward passes (a pass starts when layer 0 reports)
and records every `every`-th one, with the gradients of the backward that follows it.

Recorded per layer: mean and variance of its output, the fraction of units in SELU's saturation
region, and the variance of the gradient with respect to its input (dx). The first layer of a model
computes no dx, so its gradient variance stays NaN.

Saturation: a SELU unit saturates when its input x is at or below `saturation_input` (default -3,
where the slope lam*alpha*exp(x) has fallen to 5% of lam*alpha), that is when its output is at or
below selu(saturation_input). It is measured on SELU and LinearSELU outputs (NaN for other layers).
A LinearSELU whose alpha dropout was applied in the pass outputs a*s + b for kept units s and
a*alpha' + b for dropped ones; the fraction is then taken over kept units only, against the mapped
threshold, so it measures the SELU and not the dropout (dropout applies in training passes only;
Sequential passes the train flag to the hooks).

Drift: a layer whose output should sit at the fixed point (SELU, LinearSELU, AlphaDropout) drifts
when its mean leaves fixed_point[0] +- mean_tolerance or its variance leaves
[fixed_point[1] / variance_factor, fixed_point[1] * variance_factor]. Leaving the band raises a
DriftWarning once (again only after the layer has come back inside) and is kept in `drift_events`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .layers import SELU, AlphaDropout, Layer, LinearSELU

_SELU_OUTPUT_LAYERS = (SELU, LinearSELU, AlphaDropout)
FIELDS = ("mean", "variance", "saturation", "grad_variance")


class DriftWarning(UserWarning):
    """A layer's activations left the chosen band around the fixed point."""


@dataclass(frozen=True)
class DriftEvent:
    """Layer `layer` (index `index`) left the band at forward pass `step` with these statistics."""

    step: int
    index: int
    layer: str
    mean: float
    variance: float


class ActivationMonitor:
    """Records per-layer activation statistics every `every` forward passes; see the module docstring."""

    def __init__(
        self,
        every: int = 1,
        fixed_point: tuple[float, float] = (0.0, 1.0),
        mean_tolerance: float = 0.5,
        variance_factor: float = 2.0,
        saturation_input: float = -3.0,
        warn: bool = True,
    ):
        if int(every) < 1:
            raise ValueError(f"every must be a positive number of forward passes, got {every!r}")
        if not fixed_point[1] > 0:
            raise ValueError(f"the fixed point's variance must be positive, got {fixed_point!r}")
        if not mean_tolerance > 0 or not variance_factor > 1:
            raise ValueError(
                f"the band needs mean_tolerance > 0 and variance_factor > 1, got {mean_tolerance!r}, {variance_factor!r}"
            )
        if not saturation_input < 0:
            raise ValueError(f"saturation_input must be negative (SELU saturates for x -> -inf), got {saturation_input!r}")
        self.every = int(every)
        self.fixed_point = (float(fixed_point[0]), float(fixed_point[1]))
        self.mean_tolerance = float(mean_tolerance)
        self.variance_factor = float(variance_factor)
        self.saturation_input = float(saturation_input)
        self.warn = bool(warn)
        self.enabled = True
        self.passes = 0  # forward passes seen
        self.steps: list[int] = []  # the pass number of every record
        self.records: list[dict[str, dict[int, float]]] = []  # per record: field -> {layer index: value}
        self.layer_names: dict[int, str] = {}
        self.drift_events: list[DriftEvent] = []
        self._drifting: set[int] = set()
        self._recording = False

    # ---- hooks called by Sequential --------------------------------------------------------------
    def on_forward(self, index: int, layer: Layer, y, train: bool) -> None:
        """Called after layer `index` computed its output y (N, D) in a training or evaluation pass."""
        if not self.enabled:
            return
        if index == 0:
            self.passes += 1
            self._recording = (self.passes - 1) % self.every == 0
            if self._recording:
                self.steps.append(self.passes)
                self.records.append({name: {} for name in FIELDS})
        if not self._recording:
            return
        self.layer_names[index] = f"{type(layer).__name__}"
        mean = float(y.mean(dtype=np.float64))
        variance = float(y.var(dtype=np.float64))
        record = self.records[-1]
        record["mean"][index] = mean
        record["variance"][index] = variance
        record["saturation"][index] = self._saturation(layer, y, train)
        if isinstance(layer, _SELU_OUTPUT_LAYERS):
            self._check_drift(index, mean, variance)

    def on_backward(self, index: int, layer: Layer, dx) -> None:
        """Called after layer `index` computed dx, the gradient with respect to its input."""
        if self.enabled and self._recording:
            self.records[-1]["grad_variance"][index] = float(dx.var(dtype=np.float64))

    # ---- measurements ------------------------------------------------------------------------------
    def _saturation(self, layer: Layer, y, train: bool) -> float:
        if not isinstance(layer, (SELU, LinearSELU)):
            return math.nan
        threshold = layer.lam * layer.alpha * math.expm1(self.saturation_input)  # selu(saturation_input)
        dropout = getattr(layer, "dropout", None)
        if train and dropout is not None and dropout.active:  # kept units are a*s + b with a > 0
            kept = y != y.dtype.type(dropout.dropped)  # (N, D)
            kept_fraction = float(kept.mean(dtype=np.float64))
            saturated = (y <= dropout.scale * threshold + dropout.shift) & kept
            return float(saturated.mean(dtype=np.float64)) / max(kept_fraction, 1e-300)
        return float((y <= threshold).mean(dtype=np.float64))

    def _check_drift(self, index: int, mean: float, variance: float) -> None:
        mu, nu = self.fixed_point
        inside = abs(mean - mu) <= self.mean_tolerance and nu / self.variance_factor <= variance <= nu * self.variance_factor
        if inside:
            self._drifting.discard(index)
            return
        if index in self._drifting:
            return
        self._drifting.add(index)
        event = DriftEvent(step=self.passes, index=index, layer=self.layer_names[index], mean=mean, variance=variance)
        self.drift_events.append(event)
        if self.warn:
            warnings.warn(
                f"layer {index} ({event.layer}) left the band around the fixed point ({mu:g}, {nu:g}) at forward "
                f"pass {event.step}: mean {mean:.4g} (allowed {mu:g} +- {self.mean_tolerance:g}), variance "
                f"{variance:.4g} (allowed [{nu / self.variance_factor:.4g}, {nu * self.variance_factor:.4g}])",
                DriftWarning,
                stacklevel=3,
            )

    # ---- results -------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every record, drift event and the pass count."""
        self.passes = 0
        self.steps.clear()
        self.records.clear()
        self.layer_names.clear()
        self.drift_events.clear()
        self._drifting.clear()
        self._recording = False

    def history(self) -> dict[str, np.ndarray]:
        """Arrays of every record: "step" (R,) and, per field, (R, L) with NaN where nothing was measured."""
        n_layers = max(self.layer_names, default=-1) + 1
        out = {"step": np.asarray(self.steps, dtype=np.int64)}  # (R,)
        for name in FIELDS:
            table = np.full((len(self.records), n_layers), np.nan)  # (R, L)
            for r, record in enumerate(self.records):
                for index, value in record[name].items():
                    table[r, index] = value
            out[name] = table
        return out

    def table(self, record: int = -1) -> str:
        """The statistics of one record (default: the latest) as a printable table, one row per layer."""
        if not self.records:
            return "no forward pass recorded yet"
        data = self.records[record]
        step = self.steps[record]
        header = f"{'#':>3}  {'layer':<12}  {'mean':>9}  {'variance':>9}  {'saturated':>9}  {'grad var':>10}"
        lines = [f"forward pass {step}", header, "-" * len(header)]
        for index in sorted(data["mean"]):
            saturation = data["saturation"].get(index, math.nan)
            grad = data["grad_variance"].get(index, math.nan)
            lines.append(
                f"{index:>3}  {self.layer_names[index]:<12}  {data['mean'][index]:>+9.4f}  {data['variance'][index]:>9.4f}  "
                f"{_optional(saturation, '9.2%'):>9}  {_optional(grad, '10.3e'):>10}"
            )
        return "\n".join(lines)


def _optional(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)

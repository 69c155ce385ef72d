"""Self-normalization you can see: per-layer statistics of deep networks, SNNs and the others.

Standardized data (N(0, 1) by default) is pushed through networks of the same depth and width at
initialization and after a short training run: plain MLPs of each activation (selu, relu, tanh,
elu) and the paper's methods (snn, msra, batchnorm, layernorm, weightnorm, highway, resnet, from
minisnn.methods). The mean and variance of every hidden layer's output (what the next weight
layer sees) are set next to what the moment map g predicts for SELU (omega = 0, tau = 1, the
expectation under LeCun-normal weights): SELU keeps them at (0, 1) by itself, where the others
need a normalization layer. `plot_selfnorm` draws the (mu, nu) trajectories over
the field of g (the paper's Figure 2) and the per-layer statistics, with matplotlib's Agg canvas.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .backends import get_backend
from .backends.base import Backend
from .data import LabeledData, make_synthetic
from .blocks import Highway, ResidualBlock
from .data.preprocessing import standardize
from .files import write_atomically
from .layers import Linear, LinearSELU
from .methods import METHODS, build_model
from .model import Sequential, mlp
from .normalization import WeightNormLinear
from .monitor import ActivationMonitor
from .optim import SGD
from .train import TrainingDiverged, fit

ACTIVATIONS = ("selu", "relu", "tanh", "elu")
PHASES = ("init", "trained")
# Layers that start a hidden layer (or the output): the hidden representation is what each reads.
_WEIGHT_LAYERS = (Linear, LinearSELU, WeightNormLinear, Highway, ResidualBlock)


@dataclass
class LayerStatistics:
    """Mean and variance of every hidden layer's output for one network (an activation or a
    method name) and phase; (depth,) arrays, (depth + 1,) where an input layer comes first."""

    network: str
    phase: str
    means: np.ndarray  # (depth,)
    variances: np.ndarray  # (depth,)
    note: str = ""


@dataclass
class SelfNormResult:
    """The demonstration's measurements and g's prediction from the input moments."""

    depth: int
    width: int
    data_name: str
    input_moments: tuple[float, float]
    predicted: np.ndarray  # (depth + 1, 2): (mu, nu) after k layers of g, k = 0..depth
    statistics: dict[tuple[str, str], LayerStatistics] = field(default_factory=dict)


def hidden_layer_statistics(model: Sequential, x) -> tuple[np.ndarray, np.ndarray]:
    """(means, variances) of each hidden layer's output in a pass over x (N, D): the output of the
    layer before each weight layer (Linear, LinearSELU, WeightNormLinear, Highway, ResidualBlock)
    after the first, i.e. the input of the next weight layer.

    The pass runs in training mode, as the network computes while it learns: batch normalization
    uses the probe's own statistics (at initialization its running statistics are still 0 and 1);
    the networks measured here have no dropout. Buffers (running statistics) are restored after.
    """
    previous = model.monitor
    monitor = ActivationMonitor(warn=False)
    restore_buffers = model.snapshot_buffers()
    model.monitor = monitor
    try:
        model.forward(x, train=True)
    finally:
        model.monitor = previous
        restore_buffers()
    history = monitor.history()
    starts = [i for i, layer in enumerate(model.layers) if isinstance(layer, _WEIGHT_LAYERS)]
    hidden = [i - 1 for i in starts[1:]]
    return history["mean"][0, hidden], history["variance"][0, hidden]


def _predicted_trajectory(mu0: float, nu0: float, depth: int) -> np.ndarray:
    from .theory import iterate  # needs SciPy: imported only here

    return iterate(mu0, nu0, depth)


def _network(name: str, n_inputs: int, n_outputs: int, depth: int, width: int, backend: Backend,
             seed: int) -> Sequential:
    """The untrained network `name` (an activation's plain MLP or a method), without dropout."""
    if name in ACTIVATIONS:
        return mlp(n_inputs, n_outputs, depth=depth, width=width, dropout=0.0, activation=name, backend=backend,
                   seed=seed)
    return build_model(name, n_inputs, n_outputs, depth=depth, width=width, dropout=0.0, backend=backend, seed=seed)


def run_selfnorm(
    depth: int = 32,
    width: int = 256,
    activations: tuple[str, ...] = ACTIVATIONS,
    data: LabeledData | None = None,
    n_probe: int = 1024,
    epochs: int = 1,
    lr: float = 0.01,
    batch_size: int = 128,
    backend: Backend | None = None,
    seed: int = 0,
    methods: tuple[str, ...] = (),
    progress: Callable[[str], None] | None = None,
) -> SelfNormResult:
    """Measure per-layer statistics of each network at initialization and after `epochs` of SGD.

    The networks: a plain MLP for each of `activations`, then each of `methods` (METHODS, built
    without dropout). `data` (default: the synthetic problem, whose inputs are N(0, 1)) is
    standardized on its training split; the first n_probe training inputs are the probe.
    epochs=0 skips training. A network whose training diverges keeps NaN statistics for the
    trained phase and a note. `progress`, when given, is told what is being measured or trained.
    """
    unknown = [a for a in activations if a not in ACTIVATIONS] + [m for m in methods if m not in METHODS]
    if unknown or not (activations or methods):
        raise ValueError(f"choose at least one network among activations {ACTIVATIONS} and methods {METHODS}; "
                         f"unknown: {unknown}")
    if depth < 1 or width < 1 or n_probe < 2 or epochs < 0:
        raise ValueError(f"need depth >= 1, width >= 1, n_probe >= 2 and epochs >= 0; got depth={depth}, "
                         f"width={width}, n_probe={n_probe}, epochs={epochs}")
    backend = backend or get_backend("numpy")
    data = standardize(data if data is not None else make_synthetic(n_train=4096, n_test=0, n_features=64, seed=seed))
    probe_host = data.x_train[:n_probe]  # (n_probe, D)
    probe = backend.asarray(probe_host, dtype=backend.dtype)
    mu0, nu0 = float(probe_host.mean()), float(probe_host.var())
    result = SelfNormResult(depth=depth, width=width, data_name=data.name, input_moments=(mu0, nu0),
                            predicted=_predicted_trajectory(mu0, nu0, depth))
    networks = tuple(dict.fromkeys((*activations, *methods)))
    for number, name in enumerate(networks, start=1):
        if progress is not None:
            progress(f"network {number}/{len(networks)}: {name}")
        model = _network(name, data.n_features, data.n_classes, depth, width, backend, seed)
        result.statistics[(name, "init")] = LayerStatistics(name, "init", *hidden_layer_statistics(model, probe))
        if epochs == 0:
            continue
        try:
            fit(model, data.x_train, data.y_train, SGD(model, lr=lr), epochs=epochs,
                batch_size=batch_size, seed=seed, progress=None)
            stats = LayerStatistics(name, "trained", *hidden_layer_statistics(model, probe))
        except TrainingDiverged as exc:
            size = len(result.statistics[(name, "init")].means)
            stats = LayerStatistics(name, "trained", np.full(size, np.nan), np.full(size, np.nan), str(exc))
        result.statistics[(name, "trained")] = stats
    return result


def format_selfnorm(result: SelfNormResult) -> str:
    """Per-layer mean and variance of every network next to g's prediction, one table per phase.

    Networks with an input layer before their `depth` hidden layers (highway with a projection,
    resnet) have one more row; their row k is the output of hidden layer k, row 0 the input layer's.
    """
    networks = list(dict.fromkeys(n for n, _ in result.statistics))
    mu0, nu0 = result.input_moments
    lines = [(f"{result.depth} hidden layers of width {result.width}; probe data: {result.data_name}, "
             f"input mean {mu0:+.4f}, variance {nu0:.4f}; g for SELU with (omega, tau) = (0, 1)")]
    blank = f"{'':>21}"
    for phase in PHASES:
        if not any(p == phase for _, p in result.statistics):
            continue
        columns = ["g (SELU)"] + networks
        offsets = {n: len(result.statistics[(n, phase)].means) - result.depth for n in networks}  # 0 or 1
        lines.append("")
        lines.append(f"after {'initialization' if phase == 'init' else 'training'}: mean / variance per layer")
        lines.append(f"{'layer':>5}  " + "  ".join(f"{c:^21}" for c in columns))
        for k in range(0 if any(offsets.values()) else 1, result.depth + 1):
            cells = [f"{result.predicted[k, 0]:+9.4f} {result.predicted[k, 1]:11.4g}" if k else blank]
            for name in networks:
                stats, row = result.statistics[(name, phase)], k - 1 + offsets[name]
                cells.append(f"{stats.means[row]:+9.4f} {stats.variances[row]:11.4g}" if row >= 0 else blank)
            lines.append(f"{k:>5}  " + "  ".join(cells))
        for name in networks:
            note = result.statistics[(name, phase)].note
            if note:
                lines.append(f"{name}: {note}")
    return "\n".join(lines)


def plot_selfnorm(result: SelfNormResult, path: str | os.PathLike) -> None:
    """Write a PNG: the field of g with SELU trajectories, and per-layer variance and mean of every network."""
    from .theory import iterate, moment_map
    from .theory._optional import figure_class

    figure = figure_class()(figsize=(16, 5), layout="constrained")
    field_ax, var_ax, mean_ax = figure.subplots(1, 3)

    # The mapping field of g (paper Figure 2): arrows from (mu, nu) to g(mu, nu).
    selu_points = [result.statistics[(n, p)] for n, p in result.statistics if n in ("selu", "snn")]
    mus = np.concatenate([[-0.4, 0.4]] + [s.means for s in selu_points])
    nus = np.concatenate([[0.6, 1.6]] + [s.variances for s in selu_points])
    finite = np.isfinite(mus) & np.isfinite(nus)
    mu_lo, mu_hi = min(-0.4, mus[finite].min() - 0.05), max(0.4, mus[finite].max() + 0.05)
    nu_lo, nu_hi = max(0.05, min(0.6, nus[finite].min() - 0.1)), max(1.6, nus[finite].max() + 0.1)
    grid_mu, grid_nu = np.meshgrid(np.linspace(mu_lo, mu_hi, 21), np.linspace(nu_lo, nu_hi, 21))  # (21, 21) each
    next_mu, next_nu = moment_map(grid_mu, grid_nu)
    field_ax.quiver(grid_mu, grid_nu, next_mu - grid_mu, next_nu - grid_nu, angles="xy", color="0.6", width=0.003)
    for k, start in enumerate([(mu_lo, nu_lo), (mu_hi, nu_lo), (mu_lo, nu_hi), (mu_hi, nu_hi)]):
        path_g = iterate(*start, steps=result.depth)  # (depth + 1, 2)
        field_ax.plot(path_g[:, 0], path_g[:, 1], ".-", color="0.3", lw=0.8, ms=3,
                      label="g iterated from the corners" if k == 0 else None)
    for stats, marker in zip(selu_points, ("o", "s", "^", "v")):
        field_ax.plot(stats.means, stats.variances, marker + "-", ms=3, lw=1, label=f"{stats.network}, {stats.phase}")
    field_ax.plot([0.0], [1.0], "k*", ms=12, label="fixed point (0, 1)")
    field_ax.set(xlabel="mean mu", ylabel="variance nu", title="mapping g (omega=0, tau=1) and SELU layers")
    field_ax.legend(loc="upper right", fontsize=8)

    layers = np.arange(1, result.depth + 1)
    var_ax.plot(layers, result.predicted[1:, 1], "k:", lw=2, label="g prediction (SELU)")
    mean_ax.plot(layers, result.predicted[1:, 0], "k:", lw=2, label="g prediction (SELU)")
    networks = list(dict.fromkeys(n for n, _ in result.statistics))
    colors = {name: f"C{i % 10}" for i, name in enumerate(networks)}
    for (name, phase), stats in result.statistics.items():
        style = "-" if phase == "init" else "--"
        label = f"{name}, {phase}"
        rows = np.arange(result.depth + 1 - len(stats.means), result.depth + 1)  # 0 marks an input layer
        var_ax.plot(rows, stats.variances, style, color=colors[name], label=label)
        mean_ax.plot(rows, stats.means, style, color=colors[name], label=label)
    var_ax.set(xlabel="layer", ylabel="variance of activations", yscale="log", title="variance per layer")
    mean_ax.set(xlabel="layer", ylabel="mean of activations", title="mean per layer")
    var_ax.legend(fontsize=8)
    write_atomically(path, lambda handle: figure.savefig(handle, format="png", dpi=100))


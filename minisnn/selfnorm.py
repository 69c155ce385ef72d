"""Self-normalization you can see: per-layer statistics of deep SELU, ReLU, tanh and ELU networks.

Standardized data (N(0, 1) by default) is pushed through networks of the same depth and width at
initialization and after a short training run; the mean and variance of every hidden layer's
activations are set next to what the moment map g predicts for SELU (omega = 0, tau = 1, the
expectation under LeCun-normal weights). `plot_selfnorm` draws the (mu, nu) trajectories over
the field of g (the paper's Figure 2) and the per-layer statistics, with matplotlib's Agg canvas.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .backends import get_backend
from .backends.base import Backend
from .data import LabeledData, make_synthetic
from .data.preprocessing import standardize
from .files import write_atomically
from .layers import ELU, SELU, LinearSELU, ReLU, Tanh
from .model import Sequential, mlp
from .monitor import ActivationMonitor
from .optim import SGD
from .train import TrainingDiverged, fit

ACTIVATIONS = ("selu", "relu", "tanh", "elu")
PHASES = ("init", "trained")
_ACTIVATION_LAYERS = (LinearSELU, SELU, ReLU, ELU, Tanh)


@dataclass
class LayerStatistics:
    """Mean and variance of every hidden layer's activations (depth,) for one network and phase."""

    activation: str
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
    """(means, variances) of each hidden activation's output in an evaluation pass over x (N, D)."""
    previous = model.monitor
    monitor = ActivationMonitor(warn=False)
    model.monitor = monitor
    try:
        model.forward(x, train=False)
    finally:
        model.monitor = previous
    history = monitor.history()
    hidden = [i for i, layer in enumerate(model.layers) if isinstance(layer, _ACTIVATION_LAYERS)]
    return history["mean"][0, hidden], history["variance"][0, hidden]


def _predicted_trajectory(mu0: float, nu0: float, depth: int) -> np.ndarray:
    from .theory import iterate  # needs SciPy: imported only here

    return iterate(mu0, nu0, depth)


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
) -> SelfNormResult:
    """Measure per-layer statistics of each network at initialization and after `epochs` of SGD.

    `data` (default: the synthetic problem, whose inputs are N(0, 1)) is standardized on its
    training split; the first n_probe training inputs are the probe. epochs=0 skips training.
    A network whose training diverges keeps NaN statistics for the trained phase and a note.
    """
    unknown = [a for a in activations if a not in ACTIVATIONS]
    if unknown or not activations:
        raise ValueError(f"activations must be a non-empty subset of {ACTIVATIONS}, got {tuple(activations)!r}")
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
    for activation in activations:
        model = mlp(data.n_features, data.n_classes, depth=depth, width=width, dropout=0.0,
                    activation=activation, backend=backend, seed=seed)
        result.statistics[(activation, "init")] = LayerStatistics(activation, "init", *hidden_layer_statistics(model, probe))
        if epochs == 0:
            continue
        try:
            fit(model, data.x_train, data.y_train, SGD(model, lr=lr), epochs=epochs,
                batch_size=batch_size, seed=seed, progress=None)
            stats = LayerStatistics(activation, "trained", *hidden_layer_statistics(model, probe))
        except TrainingDiverged as exc:
            stats = LayerStatistics(activation, "trained", np.full(depth, np.nan), np.full(depth, np.nan), str(exc))
        result.statistics[(activation, "trained")] = stats
    return result


def format_selfnorm(result: SelfNormResult) -> str:
    """Per-layer mean and variance of every network next to g's prediction, one table per phase."""
    activations = list(dict.fromkeys(a for a, _ in result.statistics))
    mu0, nu0 = result.input_moments
    lines = [(f"{result.depth} hidden layers of width {result.width}; probe data: {result.data_name}, "
             f"input mean {mu0:+.4f}, variance {nu0:.4f}; g for SELU with (omega, tau) = (0, 1)")]
    for phase in PHASES:
        if not any(p == phase for _, p in result.statistics):
            continue
        columns = ["g (SELU)"] + activations
        lines.append("")
        lines.append(f"after {'initialization' if phase == 'init' else 'training'}: mean / variance per layer")
        lines.append(f"{'layer':>5}  " + "  ".join(f"{c:^21}" for c in columns))
        for k in range(result.depth):
            cells = [f"{result.predicted[k + 1, 0]:+9.4f} {result.predicted[k + 1, 1]:11.4g}"]
            for activation in activations:
                s = result.statistics[(activation, phase)]
                cells.append(f"{s.means[k]:+9.4f} {s.variances[k]:11.4g}")
            lines.append(f"{k + 1:>5}  " + "  ".join(cells))
        for activation in activations:
            note = result.statistics[(activation, phase)].note
            if note:
                lines.append(f"{activation}: {note}")
    return "\n".join(lines)


def plot_selfnorm(result: SelfNormResult, path: str | os.PathLike) -> None:
    """Write a PNG: the field of g with SELU trajectories, and per-layer variance and mean of every network."""
    from .theory import iterate, moment_map
    from .theory._optional import figure_class

    figure = figure_class()(figsize=(16, 5), layout="constrained")
    field_ax, var_ax, mean_ax = figure.subplots(1, 3)

    # The mapping field of g (paper Figure 2): arrows from (mu, nu) to g(mu, nu).
    selu_points = [result.statistics[(a, p)] for a, p in result.statistics if a == "selu"]
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
    for stats, marker in zip(selu_points, ("o", "s")):
        field_ax.plot(stats.means, stats.variances, marker + "-", ms=3, lw=1, label=f"SELU net, {stats.phase}")
    field_ax.plot([0.0], [1.0], "k*", ms=12, label="fixed point (0, 1)")
    field_ax.set(xlabel="mean mu", ylabel="variance nu", title="mapping g (omega=0, tau=1) and SELU layers")
    field_ax.legend(loc="upper right", fontsize=8)

    layers = np.arange(1, result.depth + 1)
    var_ax.plot(layers, result.predicted[1:, 1], "k:", lw=2, label="g prediction (SELU)")
    mean_ax.plot(layers, result.predicted[1:, 0], "k:", lw=2, label="g prediction (SELU)")
    colors = {"selu": "tab:blue", "relu": "tab:red", "tanh": "tab:green", "elu": "tab:purple"}
    for (activation, phase), stats in result.statistics.items():
        style = "-" if phase == "init" else "--"
        label = f"{activation}, {phase}"
        var_ax.plot(layers, stats.variances, style, color=colors[activation], label=label)
        mean_ax.plot(layers, stats.means, style, color=colors[activation], label=label)
    var_ax.set(xlabel="layer", ylabel="variance of activations", yscale="log", title="variance per layer")
    mean_ax.set(xlabel="layer", ylabel="mean of activations", title="mean per layer")
    var_ax.legend(fontsize=8)
    write_atomically(path, lambda handle: figure.savefig(handle, format="png", dpi=100))


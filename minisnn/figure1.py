"""The SNN paper's Figure 1: training loss per epoch of deep SELU nets and ReLU + BatchNorm nets.

The authors' setting: MNIST (here Fashion-MNIST, or any data set `load_dataset` reads), inputs
standardized per feature, hidden width = input size, 8, 16 and 32 hidden layers, SELU nets
(LeCun-normal init, no dropout: minisnn.methods "snn" with dropout 0) against ReLU nets with batch
normalization after the ReLU (He-normal init: "batchnorm"), plain SGD without momentum, batch 128,
learning rate 1e-5 on the batch-summed cross-entropy, which is lr = 1e-5 * 128 = 1.28e-3 on the
mean loss minisnn minimizes; 2000 epochs. The claim: SNN curves are smooth and lower, BatchNorm
curves noisy.

The networks train round robin, one epoch each in turn, so a run stopped by its time budget
leaves curves of equal length. Every epoch's mean training loss and every step's loss go to a
JSON file, rewritten atomically after each network's epoch; with a checkpoint folder each network
is saved after its epochs too, and a later run with the same setting continues from there (more
epochs extend the curves). The batch order of epoch e is a pure function of (seed, e), so a
resumed curve is the one an uninterrupted run draws.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .backends import get_backend
from .checkpoint import load_training_state, save_checkpoint
from .data import LabeledData
from .data.loaders import ArrayDataset, BatchIterator
from .data.preprocessing import standardize
from .files import write_atomically
from .losses import SoftmaxCrossEntropy
from .methods import build_model
from .optim import SGD

FIGURE1_METHODS = ("snn", "batchnorm")
LABELS = {"snn": "SNN (SELU)", "batchnorm": "ReLU + BatchNorm"}


@dataclass(frozen=True)
class Figure1Setting:
    """What is trained; the defaults are the paper's (all training rows, 2000 epochs).

    samples: training rows used (a seeded random subset; None: all); width None: the input size;
    lr_sum: the learning rate on the batch-summed loss (the authors'), lr_sum * batch_size on the
    mean loss. Batches are all full (a short last batch is dropped), so every step has that rate.
    """

    data: str = "fashion-mnist"
    samples: int | None = None
    depths: tuple[int, ...] = (8, 16, 32)
    methods: tuple[str, ...] = FIGURE1_METHODS
    width: int | None = None
    batch_size: int = 128
    lr_sum: float = 1e-5
    seed: int = 0
    backend: str = "numpy"
    dtype: str = "float32"

    @property
    def lr(self) -> float:
        return self.lr_sum * self.batch_size

    def identity(self) -> dict:
        """Everything that fixes the curves (the setting as JSON-able values)."""
        return {**asdict(self), "depths": list(self.depths), "methods": list(self.methods)}


@dataclass
class Curve:
    """One network's training losses: epoch_loss (E,), the mean over the epoch's steps;
    step_loss (E * steps,); seconds (E,) of training per epoch."""

    method: str
    depth: int
    epoch_loss: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    diverged: bool = False

    @property
    def name(self) -> str:
        return f"{self.method}-{self.depth}"


def prepare_data(data: LabeledData, setting: Figure1Setting) -> tuple[np.ndarray, np.ndarray]:
    """The training rows of the figure: x (N, D) standardized per feature with their own
    statistics, y (N,); a seeded random subset of `samples` rows when given."""
    x, y = data.x_train, data.y_train
    if setting.samples is not None:
        if not 1 <= setting.samples <= len(x):
            raise ValueError(f"samples must be between 1 and the {len(x)} training rows of {data.name}, "
                             f"got {setting.samples}")
        rows = np.random.default_rng(setting.seed).permutation(len(x))[: setting.samples]
        x, y = x[rows], y[rows]
    if len(x) < setting.batch_size:
        raise ValueError(f"{len(x)} training rows are fewer than one batch of {setting.batch_size}")
    subset = standardize(LabeledData(name=data.name, x_train=x, y_train=y, x_test=None, y_test=None,
                                     n_classes=data.n_classes))
    return subset.x_train, subset.y_train


def run_figure1(data: LabeledData, setting: Figure1Setting, epochs: int, out: str | os.PathLike,
                checkpoints: str | os.PathLike | None = None, time_budget_s: float | None = None,
                progress: Callable[[str], None] | None = None) -> dict:
    """Train every (method, depth) network to `epochs` epochs round robin; returns the results
    (also written to OUT/figure1.json after every network's epoch).

    A finished results file of the same setting is reused: curves already `epochs` long are not
    trained again, and shorter ones continue from their checkpoint in `checkpoints` (without one
    they restart). time_budget_s stops after the first round that ends past the budget.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    for method in setting.methods:
        if method not in FIGURE1_METHODS:
            raise ValueError(f"Figure 1 compares {' and '.join(FIGURE1_METHODS)}, got method {method!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "figure1.json"
    x, y = prepare_data(data, setting)  # (N, D), (N,)
    width = setting.width or x.shape[1]
    backend = get_backend(setting.backend, dtype=setting.dtype)
    curves = _previous_curves(results_path, setting)
    batches = BatchIterator(ArrayDataset(x, y), setting.batch_size, seed=setting.seed, drop_last=True)
    networks = {}
    for method in setting.methods:
        for depth in setting.depths:
            curve = curves.setdefault(f"{method}-{depth}", Curve(method, depth))
            if len(curve.epoch_loss) < epochs and not curve.diverged:
                networks[curve.name] = _network(curve, setting, x.shape[1], data.n_classes, width, backend,
                                                checkpoints)
    results = {"setting": setting.identity(), "data": {"name": data.name, "rows": int(len(x)),
               "features": int(x.shape[1]), "classes": int(data.n_classes), "steps_per_epoch": len(batches)},
               "width": width, "lr_mean_loss": setting.lr, "epochs_requested": epochs}
    loss = SoftmaxCrossEntropy(backend)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        for name, (model, optimizer) in networks.items():
            curve = curves[name]
            if len(curve.epoch_loss) >= epoch or curve.diverged:
                continue
            _train_epoch(model, optimizer, loss, x, y, batches, epoch, curve, backend)
            if checkpoints is not None and not curve.diverged:
                save_checkpoint(_checkpoint_path(checkpoints, name), model, optimizer,
                                meta={"figure1": setting.identity(), "epochs": epoch})
            _write_results(results_path, results, curves, time.perf_counter() - start)
            if progress is not None:
                progress(f"epoch {epoch}/{epochs} {name}: loss {curve.epoch_loss[-1]:.4f} "
                         f"({curve.seconds[-1]:.1f} s)")
        if time_budget_s is not None and time.perf_counter() - start > time_budget_s:
            break
    return _write_results(results_path, results, curves, time.perf_counter() - start)


def _network(curve: Curve, setting: Figure1Setting, n_inputs: int, n_classes: int, width: int, backend,
             checkpoints) -> tuple:
    """(model, optimizer) of a curve: from its checkpoint when that holds the curve's epochs,
    else fresh (and the curve, if any, restarts)."""
    if checkpoints is not None and curve.epoch_loss:
        path = _checkpoint_path(checkpoints, curve.name)
        if path.exists():
            model, optimizer, meta = load_training_state(path, backend)
            if meta.get("figure1") == setting.identity() and meta.get("epochs") == len(curve.epoch_loss):
                return model, optimizer
    curve.epoch_loss.clear(), curve.step_loss.clear(), curve.seconds.clear()
    model = build_model(curve.method, n_inputs, n_classes, depth=curve.depth, width=width, dropout=0.0,
                        backend=backend, seed=setting.seed + curve.depth)
    return model, SGD(model, lr=setting.lr)


def _train_epoch(model, optimizer, loss, x, y, batches: BatchIterator, epoch: int, curve: Curve, backend) -> None:
    """One epoch of plain SGD; appends its losses to the curve (or marks it diverged)."""
    start, step_losses = time.perf_counter(), []
    for rows in batches.batch_indices(epoch - 1):  # rows (B,)
        value = float(loss.forward(model.forward(backend.asarray(x[rows], dtype=backend.dtype), train=True),
                                   backend.asarray(y[rows])))
        if not math.isfinite(value):
            curve.diverged = True
            return
        model.backward(loss.backward())
        optimizer.step()
        step_losses.append(value)
    curve.step_loss.extend(step_losses)
    curve.epoch_loss.append(float(np.mean(step_losses)))
    curve.seconds.append(time.perf_counter() - start)


def _checkpoint_path(folder, name: str) -> Path:
    return Path(folder) / f"figure1-{name}.npz"


def _previous_curves(path: Path, setting: Figure1Setting) -> dict[str, Curve]:
    """The curves of an earlier run of the same setting (none when absent or another setting)."""
    if not path.exists():
        return {}
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a Figure 1 results file ({exc}); remove it or choose another --out") from exc
    if previous.get("setting") != setting.identity():
        return {}
    return {name: Curve(**fields) for name, fields in previous.get("curves", {}).items()}


def _write_results(path: Path, results: dict, curves: dict[str, Curve], wall_s: float) -> dict:
    results = {**results, "wall_s_this_run": round(wall_s, 1),
               "curves": {name: asdict(curve) for name, curve in curves.items()}}
    write_atomically(path, lambda handle: handle.write(json.dumps(results).encode()))
    return results


def write_csv(results: dict, path: str | os.PathLike) -> None:
    """The per-epoch losses as CSV: method, depth, epoch, train_loss, seconds."""
    lines = ["method,depth,epoch,train_loss,seconds"]
    for curve in results["curves"].values():
        for epoch, (value, seconds) in enumerate(zip(curve["epoch_loss"], curve["seconds"]), 1):
            lines.append(f"{curve['method']},{curve['depth']},{epoch},{value:.6g},{seconds:.3f}")
    write_atomically(path, lambda handle: handle.write(("\n".join(lines) + "\n").encode()))


def summary_table(results: dict) -> str:
    """A Markdown table per network: epochs, first, last and lowest epoch loss, and how rough the
    curve is: epochs whose loss rose over the epoch before, and the relative noise of the step
    losses (standard deviation of step loss / its moving average over one epoch - 1)."""
    steps = results["data"]["steps_per_epoch"]
    lines = ["| network | epochs | loss epoch 1 | last loss | lowest loss | epochs with a rise | "
             "relative step noise |", "|---|---|---|---|---|---|---|"]
    for curve in results["curves"].values():
        losses, step = np.asarray(curve["epoch_loss"]), np.asarray(curve["step_loss"])  # (E,), (E * steps,)
        if len(losses) == 0:
            continue
        rises = int(np.sum(np.diff(losses) > 0))
        if len(step) >= 2 * steps:
            smooth = np.convolve(step, np.ones(steps) / steps, mode="valid")  # (len - steps + 1,)
            noise = f"{np.std(step[steps - 1:] / smooth - 1):.3f}"
        else:
            noise = "-"
        label = f"{LABELS.get(curve['method'], curve['method'])}, {curve['depth']} layers"
        note = " (diverged)" if curve["diverged"] else ""
        lines.append(f"| {label}{note} | {len(losses)} | {losses[0]:.4f} | {losses[-1]:.4f} | {losses.min():.4f} "
                     f"| {rises} | {noise} |")
    return "\n".join(lines)


def plot_figure1(results: dict, path: str | os.PathLike, note: str = "") -> None:
    """Write a PNG like the paper's Figure 1: training loss (log scale) against epochs, SNN solid
    and BatchNorm dashed, one colour per depth; a second panel shows the per-step losses."""
    from .theory._optional import figure_class

    figure = figure_class()(figsize=(13, 5), layout="constrained")
    epoch_ax, step_ax = figure.subplots(1, 2)
    depths = sorted({curve["depth"] for curve in results["curves"].values()})
    colors = {depth: f"C{i % 10}" for i, depth in enumerate(depths)}
    steps = results["data"]["steps_per_epoch"]
    for curve in results["curves"].values():
        style = "-" if curve["method"] == "snn" else "--"
        label = f"{LABELS.get(curve['method'], curve['method'])}, {curve['depth']} layers"
        losses = np.asarray(curve["epoch_loss"])  # (E,)
        epoch_ax.plot(np.arange(1, len(losses) + 1), losses, style, color=colors[curve["depth"]], label=label)
        step_loss = np.asarray(curve["step_loss"])  # (E * steps,)
        step_ax.plot(np.arange(1, len(step_loss) + 1) / steps, step_loss, style, color=colors[curve["depth"]],
                     lw=0.6, label=label)
    data = results["data"]
    title = (f"{data['name']}, {data['rows']} training rows, width {results['width']}\nplain SGD, lr "
             f"{results['setting']['lr_sum']:g} on the summed loss, batch {results['setting']['batch_size']}")
    epoch_ax.set(xlabel="epoch", ylabel="training loss (mean over the epoch's batches)", yscale="log",
                 title=title)
    step_ax.set(xlabel="epoch", ylabel="training loss of each batch", yscale="log", title="every SGD step")
    epoch_ax.legend(fontsize=8)
    if note:
        figure.suptitle(note, fontsize=9)
    write_atomically(path, lambda handle: figure.savefig(handle, format="png", dpi=100))

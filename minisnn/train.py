"""The training loop: one step, evaluation, and `fit` over epochs with metrics and progress."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Callable, TextIO

import numpy as np

from .data.loaders import ArrayDataset, BatchIterator
from .losses import SoftmaxCrossEntropy
from .model import Sequential
from .optim import SGD


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step."""


def train_step(model: Sequential, loss: SoftmaxCrossEntropy, optimizer: SGD, x, labels):
    """Forward, loss, backward and one optimizer update on a batch; returns the 0-d loss array."""
    return _train_step_with_logits(model, loss, optimizer, x, labels)[0]


def _train_step_with_logits(model, loss, optimizer, x, labels):
    """train_step, also returning the batch's logits (N, C) (a model-owned buffer)."""
    logits = model.forward(x, train=True)
    value = loss.forward(logits, labels)
    model.backward(loss.backward())
    optimizer.step()
    return value, logits


def check_classification_data(x: np.ndarray, y: np.ndarray, n_classes: int, what: str = "data") -> None:
    """Raise ValueError naming the problem if x (N, D) / y (N,) are not valid classification data."""
    if x.ndim != 2:
        raise ValueError(f"{what}: features must have shape (N, D), got {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{what}: labels must have shape ({x.shape[0]},) to match the features, got {y.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{what}: no samples")
    if x.dtype.kind not in "fiu":
        raise ValueError(f"{what}: features must be numeric, got dtype {x.dtype}")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise ValueError(f"{what}: {int(bad.sum())} NaN or infinite feature values, "
                             f"the first at row {row}, column {col} ({x[row, col]})")
    if y.dtype.kind not in "iu":
        raise ValueError(f"{what}: labels must be integers, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"{what}: labels must lie in [0, {n_classes}), found values from {y.min()} to {y.max()}")


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float | None
    seconds: float
    learning_rate: float


def evaluate(model: Sequential, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of the model in eval mode on host arrays x (N, D), y (N,)."""
    logits = model.logits(x, batch_size).astype(np.float64)  # (N, C)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -float(log_probs[np.arange(len(y)), y].mean())
    return loss, float((logits.argmax(axis=1) == y).mean())


class Progress:
    """A one-line progress display on a terminal; plain per-epoch lines otherwise."""

    def __init__(self, stream: TextIO | None, epochs: int, batches: int):
        self.stream = stream
        self.interactive = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
        self.epochs, self.batches = epochs, batches

    def batch(self, epoch: int, index: int, loss: float) -> None:
        if self.interactive:
            self.stream.write(f"\repoch {epoch}/{self.epochs}  batch {index}/{self.batches}  loss {loss:.4f}")
            self.stream.flush()

    def epoch(self, m: EpochMetrics) -> None:
        if self.stream is None:
            return
        test = "" if m.test_loss is None else f"  test_loss {m.test_loss:.4f}  test_acc {m.test_accuracy:.4f}"
        line = (f"epoch {m.epoch}/{self.epochs}  loss {m.train_loss:.4f}  acc {m.train_accuracy:.4f}{test}"
                f"  lr {m.learning_rate:.3g}  {m.seconds:.2f}s")
        self.stream.write(("\r" + line.ljust(79) if self.interactive else line) + "\n")
        self.stream.flush()


def fit(
    model: Sequential,
    x_train: np.ndarray,
    y_train: np.ndarray,
    optimizer: SGD,
    epochs: int = 10,
    batch_size: int = 128,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    seed: int = 0,
    start_epoch: int = 0,
    drop_last: bool = False,
    stratified: bool = False,
    progress: TextIO | None = sys.stderr,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> list[EpochMetrics]:
    """Train for `epochs` epochs, numbered from start_epoch + 1; returns the metrics of every epoch.

    The sample order of epoch e is a pure function of (seed, e) (minisnn.data.BatchIterator), so a
    run resumed from a checkpoint with start_epoch = epochs already done sees the same batches.

    Labels are integers in [0, model.n_outputs). Raises TrainingDiverged at the first step whose
    loss is NaN or infinite.
    """
    n_classes = model.n_outputs
    check_classification_data(x_train, y_train, n_classes, "training data")
    if x_train.shape[1] != model.n_inputs:
        raise ValueError(f"training data has {x_train.shape[1]} features, the model expects {model.n_inputs}")
    if x_test is not None:
        check_classification_data(x_test, y_test, n_classes, "test data")
    if epochs < 1 or batch_size < 1 or start_epoch < 0:
        raise ValueError(f"epochs and batch_size must be at least 1 and start_epoch at least 0, "
                         f"got {epochs}, {batch_size} and {start_epoch}")
    be = model.backend
    loss_fn = SoftmaxCrossEntropy(be)
    batches = BatchIterator(ArrayDataset(x_train, y_train), batch_size, seed=seed, drop_last=drop_last,
                            stratified=stratified, backend=be)
    display = Progress(progress, start_epoch + epochs, len(batches))
    history = []
    for epoch in range(start_epoch + 1, start_epoch + epochs + 1):
        start, total_loss, correct, seen = time.perf_counter(), 0.0, 0, 0
        lr = optimizer.current_lr
        for index, (xb, yb) in enumerate(batches.epoch(epoch - 1), 1):
            loss_array, logits = _train_step_with_logits(model, loss_fn, optimizer, xb, yb)
            loss_value = float(loss_array)
            if not math.isfinite(loss_value):
                raise TrainingDiverged(f"loss became {loss_value} at step {optimizer.step_count} "
                                       f"(epoch {epoch}, batch {index}); lower the learning rate")
            total_loss += loss_value * len(yb)
            correct += int((be.xp.argmax(logits, axis=1) == yb).sum())
            seen += len(yb)
            display.batch(epoch, index, loss_value)
        test_loss = test_acc = None
        if x_test is not None:
            test_loss, test_acc = evaluate(model, x_test, y_test)
        metrics = EpochMetrics(epoch, total_loss / seen, correct / seen, test_loss, test_acc,
                               time.perf_counter() - start, lr)
        history.append(metrics)
        display.epoch(metrics)
        if on_epoch is not None:
            on_epoch(metrics)
    return history


__all__ = ["train_step", "fit", "evaluate", "EpochMetrics", "TrainingDiverged", "check_classification_data",
]

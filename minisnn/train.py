"""The training loop: one step, evaluation, and `fit` over epochs with a task, validation and callbacks."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Sequence, TextIO

import numpy as np

from .callbacks import Callback, EarlyStopping, KeepBest
from .data.loaders import ArrayDataset, BatchIterator, take_rows
from .losses import Loss
from .tasks import ClassificationTask, NonFiniteOutputs, Task


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step."""


def train_step(model, loss: Loss, optimizer, x, *targets):
    """Forward, loss, backward and one optimizer update on a batch x (B, D) with the loss's
    targets (labels (B,), or targets (B, T) and a mask, ...); returns the 0-d loss array."""
    value = loss.forward(model.forward(x, train=True), *targets)
    model.backward(loss.backward())
    optimizer.step()
    return value


def evaluate(model, x: np.ndarray, y: np.ndarray, task: Task | None = None, batch_size: int = 1024) -> dict[str, float]:
    """The task's metrics (default: classification into model.n_outputs classes) of the model in
    eval mode on host data x (N, D) and targets y."""
    return (task or ClassificationTask()).evaluate(model, x, y, batch_size)


class History:
    """Per-epoch records of a fit. history.train_loss, history["val_accuracy"], ...: one NumPy
    array per field over the epochs (history.names lists them: epoch, train_loss, train_accuracy
    for classification, val_<metric> per validation metric, seconds, learning_rate);
    history[-1] is the last epoch's record as a dict. best_epoch is the epoch a KeepBest or
    EarlyStopping callback chose (None without one), stopped_epoch where EarlyStopping stopped.
    """

    def __init__(self):
        self._columns: dict[str, list[float]] = {}
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None

    def append(self, record: dict[str, float]) -> None:
        if self._columns and set(record) != set(self._columns):
            raise ValueError(f"epoch record fields {sorted(record)} differ from the history's {sorted(self._columns)}")
        for name, value in record.items():
            self._columns.setdefault(name, []).append(value)

    @property
    def names(self) -> list[str]:
        return list(self._columns)

    def __len__(self) -> int:
        return len(self._columns.get("epoch", []))

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, str):
            if key not in self._columns:
                raise KeyError(f"no field {key!r} in the history; fields: {', '.join(self._columns)}")
            return np.asarray(self._columns[key], dtype=np.int64 if key == "epoch" else np.float64)
        return {name: values[key] for name, values in self._columns.items()}

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {"epochs": {field: [values per epoch]}, "best_epoch", "stopped_epoch"}
        (NaN becomes None)."""
        def plain(v: float) -> Any:
            return None if isinstance(v, float) and math.isnan(v) else v
        return {"epochs": {name: [plain(v) for v in values] for name, values in self._columns.items()},
                "best_epoch": self.best_epoch, "stopped_epoch": self.stopped_epoch}


class Progress:
    """A one-line progress display on a terminal; plain per-epoch lines otherwise."""

    def __init__(self, stream: TextIO | None, epochs: int, batches: int, monitor: str):
        self.stream = stream
        self.interactive = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
        self.epochs, self.batches, self.monitor = epochs, batches, monitor

    def batch(self, epoch: int, index: int, loss: float) -> None:
        if self.interactive:
            self.stream.write(f"\repoch {epoch}/{self.epochs}  batch {index}/{self.batches}  loss {loss:.4f}")
            self.stream.flush()

    def epoch(self, record: dict[str, float]) -> None:
        if self.stream is None:
            return
        parts = [f"epoch {record['epoch']}/{self.epochs}", f"loss {record['train_loss']:.4f}"]
        if "train_accuracy" in record:
            parts.append(f"acc {record['train_accuracy']:.4f}")
        for name in dict.fromkeys(("val_loss", f"val_{self.monitor}")):
            if name in record:
                parts.append(f"{name} {record[name]:.4f}")
        parts += [f"lr {record['learning_rate']:.3g}", f"{record['seconds']:.2f}s"]
        line = "  ".join(parts)
        self.stream.write(("\r" + line.ljust(79) if self.interactive else line) + "\n")
        self.stream.flush()


def fit(
    model,
    x: np.ndarray,
    y: np.ndarray,
    optimizer,
    task: Task | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    callbacks: Sequence[Callback] = (),
    seed: int = 0,
    start_epoch: int = 0,
    drop_last: bool = False,
    stratified: bool = False,
    threads: int | None = None,
    progress: TextIO | None = sys.stderr,
) -> History:
    """Train for `epochs` epochs, numbered from start_epoch + 1; returns the History.

    task: what y holds and which loss and metrics apply (default ClassificationTask with
    model.n_outputs classes). validation: host data (x_val, y_val) evaluated after every epoch
    (records val_<metric>). callbacks: see minisnn.callbacks (KeepBest, EarlyStopping,
    Checkpoint). The sample order of epoch e is a pure function of (seed, e)
    (minisnn.data.BatchIterator, which also joins a final batch under half a batch to the one
    before it unless drop_last); so a run resumed with start_epoch = epochs done sees the same
    batches. stratified: class-balanced batches (classification). threads: limit the BLAS,
    OpenMP and Numba thread pools to this many threads for the rest of the process
    (minisnn.threads.set_threads; None leaves them). Raises TrainingDiverged at the first step
    whose loss is NaN or infinite, before its update.
    """
    task = (task or ClassificationTask()).for_model(model)
    task.check(x, y, "training data")
    if x.shape[1] != model.n_inputs:
        raise ValueError(f"training data has {x.shape[1]} features, the model expects {model.n_inputs}")
    if validation is not None:
        x_val, y_val = validation
        task.check(x_val, y_val, "validation data")
        if x_val.shape[1] != model.n_inputs:
            raise ValueError(f"validation data has {x_val.shape[1]} features, the model expects {model.n_inputs}")
    if epochs < 1 or batch_size < 1 or start_epoch < 0:
        raise ValueError(f"epochs and batch_size must be at least 1 and start_epoch at least 0, "
                         f"got {epochs}, {batch_size} and {start_epoch}")
    if threads is not None:
        from .threads import set_threads

        set_threads(threads)
    be = model.backend
    loss_fn = task.loss(be)
    arrays = (be.asarray(x, dtype=be.dtype), *task.prepare_targets(y, be))  # x (N, D), then the targets
    batches = BatchIterator(ArrayDataset(x, y), batch_size, seed=seed, drop_last=drop_last, stratified=stratified)
    display = Progress(progress, start_epoch + epochs, len(batches), task.monitor)
    history = History()
    for callback in callbacks:
        callback.on_train_begin(task)
    for epoch in range(start_epoch + 1, start_epoch + epochs + 1):
        start, total_loss, correct, seen = time.perf_counter(), 0.0, 0, 0
        lr = optimizer.current_lr
        for index, rows in enumerate(batches.batch_indices(epoch - 1), 1):
            xb, *targets = take_rows(be, arrays, rows)
            logits = model.forward(xb, train=True)
            loss_value = float(loss_fn.forward(logits, *targets))
            if not math.isfinite(loss_value):
                raise TrainingDiverged(f"loss became {loss_value} at step {optimizer.step_count + 1} "
                                       f"(epoch {epoch}, batch {index}); lower the learning rate")
            if task.counts_correct:
                correct += be.count_correct(logits, targets[0])
            model.backward(loss_fn.backward())
            optimizer.step()
            total_loss += loss_value * len(rows)
            seen += len(rows)
            display.batch(epoch, index, loss_value)
        record = {"epoch": epoch, "train_loss": total_loss / seen}
        if task.counts_correct:
            record["train_accuracy"] = correct / seen
        if validation is not None:
            try:
                scores = task.model_metrics(model, x_val, y_val)  # the data was checked above
            except NonFiniteOutputs as exc:
                raise TrainingDiverged(f"validation after epoch {epoch}: {exc}; lower the learning rate") from None
            record.update({f"val_{name}": value for name, value in scores.items()})
        record.update(seconds=time.perf_counter() - start, learning_rate=lr)
        history.append(record)
        display.epoch(record)
        stop = [callback.on_epoch_end(epoch, record, model, optimizer) for callback in callbacks]
        if any(stop):
            break
    for callback in callbacks:
        callback.on_train_end(model)
        if isinstance(callback, KeepBest) and history.best_epoch is None:
            history.best_epoch = callback.best_epoch
        if isinstance(callback, EarlyStopping) and history.stopped_epoch is None:
            history.stopped_epoch = callback.stopped_epoch
    return history


__all__ = ["train_step", "fit", "evaluate", "History", "TrainingDiverged"]

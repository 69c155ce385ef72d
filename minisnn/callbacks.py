"""Callbacks of minisnn.train.fit: keep the best epoch's weights, stop early, save checkpoints.

The protocol (every method optional, see Callback): fit calls on_train_begin(task) once,
on_epoch_end(epoch, record, model, optimizer) after every epoch, where `record` maps names to
the epoch's floats ("train_loss", "val_<metric>" per validation metric, "seconds",
"learning_rate", ...), and stops when that returns True; on_train_end(model) runs at the end,
also after an early stop.

Model selection follows the paper: the best epoch is the best of the validation curve smoothed
by a moving average over `window` epochs. The average is trailing: the smoothed value of epoch
e is the mean of the raw values of epochs max(1, e - window + 1) .. e (counted from the first
epoch of this fit), so the first window - 1 epochs average over fewer epochs, and the choice at
epoch e never looks ahead. window=1 uses the raw curve. Ties keep the earlier epoch.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import save_checkpoint

MODES = ("min", "max")
LOWER_IS_BETTER = ("loss", "rmse")  # metric names for which mode defaults to "min"


class Callback:
    """Base class with no-op hooks."""

    def on_train_begin(self, task) -> None:
        """Called once before the first epoch with the fit's task (minisnn.tasks.Task)."""

    def on_epoch_end(self, epoch: int, record: dict[str, float], model, optimizer) -> bool:
        """Called after every epoch; returning True stops training."""
        return False

    def on_train_end(self, model) -> None:
        """Called once after the last epoch."""


class KeepBest(Callback):
    """Tracks the best epoch of a smoothed validation curve; restores its weights at the end.

    monitor: a record name such as "val_accuracy"; None monitors the task's metric
    ("val_" + task.monitor, with task.mode). mode: "min" or "max"; None with a monitor given
    means "min" for loss and rmse, "max" otherwise. window: the moving average (module doc).
    restore: load the best epoch's weights (model.state_arrays(), kept on the host) at the end.
    After training: best_epoch, best_value (smoothed), and curve/smoothed (raw and smoothed
    values per epoch, as arrays).
    """

    def __init__(self, monitor: str | None = None, mode: str | None = None, window: int = 1, restore: bool = True):
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if window < 1:
            raise ValueError(f"the smoothing window must be at least 1 epoch, got {window}")
        self.monitor, self.mode, self.window, self.restore = monitor, mode, int(window), restore
        self.best_epoch: int | None = None
        self.best_value = math.nan
        self._curve: list[float] = []
        self._smoothed: list[float] = []
        self._best_state: dict[str, np.ndarray] | None = None

    def on_train_begin(self, task) -> None:
        if self.monitor is None:
            self.monitor, self.mode = f"val_{task.monitor}", self.mode or task.mode
        elif self.mode is None:
            self.mode = "min" if self.monitor.split("_", 1)[-1] in LOWER_IS_BETTER else "max"
        self.best_epoch, self.best_value = None, math.nan
        self._curve, self._smoothed, self._best_state = [], [], None

    @property
    def curve(self) -> np.ndarray:
        return np.asarray(self._curve)

    @property
    def smoothed(self) -> np.ndarray:
        return np.asarray(self._smoothed)

    def _observe(self, epoch: int, record: dict[str, float], model) -> None:
        """Add the epoch's value; a new best records the epoch (and snapshots the weights)."""
        if self.monitor not in record:
            raise ValueError(f"{type(self).__name__} monitors {self.monitor!r}, but the epoch record holds only "
                             f"{', '.join(sorted(record))}" + ("; pass validation data to fit"
                                                              if self.monitor.startswith("val_") else ""))
        value = float(record[self.monitor])
        if math.isnan(value):
            raise ValueError(f"{self.monitor} is NaN at epoch {epoch} (undefined on the validation data?); "
                             f"monitor another metric")
        self._curve.append(value)
        smoothed = float(np.mean(self._curve[-self.window:]))
        self._smoothed.append(smoothed)
        if self.best_epoch is None or (smoothed < self.best_value if self.mode == "min" else smoothed > self.best_value):
            self.best_epoch, self.best_value = epoch, smoothed
            if self.restore:
                self._best_state = model.state_arrays()

    def on_epoch_end(self, epoch, record, model, optimizer) -> bool:
        self._observe(epoch, record, model)
        return False

    def on_train_end(self, model) -> None:
        if self.restore and self._best_state is not None:
            model.load_state_arrays(self._best_state)


class EarlyStopping(KeepBest):
    """KeepBest that also stops once the smoothed curve has not improved for `patience` epochs.

    The paper's rule is the default: the best epoch of the 10-epoch moving average of the
    validation curve, whose weights are restored at the end. stopped_epoch is the epoch training
    stopped at (None if it ran to the end).
    """

    def __init__(self, monitor: str | None = None, mode: str | None = None, patience: int = 10, window: int = 10,
                 restore: bool = True):
        if patience < 1:
            raise ValueError(f"patience must be at least 1 epoch, got {patience}")
        super().__init__(monitor, mode, window, restore)
        self.patience = int(patience)
        self.stopped_epoch: int | None = None

    def on_train_begin(self, task) -> None:
        super().on_train_begin(task)
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, record, model, optimizer) -> bool:
        self._observe(epoch, record, model)
        if epoch - self.best_epoch >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False


class Checkpoint(Callback):
    """Save a checkpoint (model and optimizer, atomically) every `every` epochs.

    `path` may contain "{epoch}", which becomes the epoch number (one file per save); otherwise
    each save replaces the last. The checkpoint's meta gets "epochs_done": epoch, so
    `minisnn train --resume` continues from it.
    """

    def __init__(self, path: str | os.PathLike, every: int = 1, meta: dict[str, Any] | None = None):
        if every < 1:
            raise ValueError(f"checkpoints need every >= 1 epochs, got {every}")
        try:
            str(path).format(epoch=0)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"checkpoint path {str(path)!r} may hold no braces but {{epoch}} ({exc!r})") from None
        self.path, self.every, self.meta = str(path), int(every), dict(meta or {})
        self.saved: list[Path] = []

    def on_epoch_end(self, epoch, record, model, optimizer) -> bool:
        if epoch % self.every == 0:
            path = Path(self.path.format(epoch=epoch))
            self.saved.append(save_checkpoint(path, model, optimizer, meta={**self.meta, "epochs_done": epoch}))
        return False


__all__ = ["Callback", "KeepBest", "EarlyStopping", "Checkpoint"]

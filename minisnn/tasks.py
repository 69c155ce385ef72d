"""Tasks: what a network is trained to do. A task owns the loss, the checks of the targets and the
metrics, and names the metric that model selection (early stopping, keep-best) watches by default.

- ClassificationTask(n_classes): integer labels y (N,) in [0, C); softmax cross-entropy;
  metrics loss, accuracy, balanced_accuracy and, for two classes, roc_auc (of the softmax
  probability of class 1). Monitors roc_auc with two classes (threshold-free and insensitive to
  class imbalance; the paper reports AUC for the two-class HTRU2), accuracy otherwise (the
  paper selects UCI models by accuracy).
- MultiTaskBinaryTask(n_tasks): targets y (N, T) of 0, 1 or NaN, NaN marking a missing label
  (Tox21); masked sigmoid binary cross-entropy; metrics loss, roc_auc (the mean over tasks) and
  roc_auc_<name> per task. Monitors roc_auc.
- RegressionTask(n_outputs): float targets y (N, T); mean squared error; metrics loss, rmse, r2.
  Monitors loss.

A metric undefined on the given data (roc_auc when the labels hold one class, r2 for constant
targets) is NaN. Metrics are computed on the host from model.logits, losses in float64.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from . import metrics, reference
from .backends.base import Backend
from .losses import Loss, MeanSquaredError, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy


class NonFiniteOutputs(ValueError):
    """A model's outputs hold NaN or infinity: its weights have diverged."""


def check_features(x: np.ndarray, what: str) -> None:
    """ValueError naming the problem unless x is a non-empty numeric (N, D) array without NaN or inf."""
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise ValueError(f"{what}: features must be an array of shape (N, D), got {np.shape(x)}")
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


def _check_target_shape(x: np.ndarray, y: np.ndarray, columns: int | None, what: str) -> None:
    """y must be (N,) for columns None, else (N, columns), with the N rows of x."""
    shape = (x.shape[0],) if columns is None else (x.shape[0], columns)
    if not isinstance(y, np.ndarray) or y.shape != shape:
        raise ValueError(f"{what}: targets must have shape {shape} to match the features, got {np.shape(y)}")


class Task(ABC):
    """Base class. Subclasses set name, monitor, mode ("max": higher is better, or "min") and
    counts_correct (whether training counts correct predictions for a train accuracy)."""

    name = "task"
    monitor = "loss"
    mode = "min"
    counts_correct = False

    @property
    @abstractmethod
    def n_outputs(self) -> int | None:
        """The model outputs the task needs (None: any)."""

    def for_model(self, model) -> "Task":
        """This task, checked against model.n_outputs (a ClassificationTask without n_classes
        gets the model's)."""
        if self.n_outputs is not None and self.n_outputs != model.n_outputs:
            raise ValueError(f"{self.name} task needs {self.n_outputs} model outputs, the model has {model.n_outputs}")
        return self

    @abstractmethod
    def check(self, x: np.ndarray, y: np.ndarray, what: str = "data") -> None:
        """ValueError naming the problem (shape, dtype, value, row, column) if x, y are not valid data."""

    @abstractmethod
    def loss(self, backend: Backend) -> Loss:
        """The training loss on `backend`."""

    @abstractmethod
    def prepare_targets(self, y: np.ndarray, backend: Backend) -> tuple:
        """Host targets as the backend arrays the loss takes after the predictions, row-aligned with y."""

    def evaluate(self, model, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> dict[str, float]:
        """Metric name -> value of the model in eval mode on host data x, y (checked first)."""
        task = self.for_model(model)
        task.check(x, y, "evaluation data")
        return task.model_metrics(model, x, y, batch_size)

    def model_metrics(self, model, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> dict[str, float]:
        """evaluate() on data this task has already checked (fit's validation data, every epoch);
        NonFiniteOutputs if the model's outputs hold NaN or infinity."""
        outputs = model.logits(x, batch_size).astype(np.float64)  # (N, n_outputs)
        if not np.isfinite(outputs).all():
            raise NonFiniteOutputs(f"the model's outputs hold {int((~np.isfinite(outputs)).sum())} NaN or "
                                   f"infinite values")
        return self._metrics(outputs, y)

    @abstractmethod
    def _metrics(self, outputs: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """The metrics of model outputs (N, n_outputs) (float64) against valid targets y."""

    @abstractmethod
    def config(self) -> dict:
        """The arguments that rebuild the task (task_from_config)."""


class ClassificationTask(Task):
    """Classification into n_classes classes (None: the model's number of outputs)."""

    name = "classification"
    counts_correct = True

    def __init__(self, n_classes: int | None = None):
        if n_classes is not None and n_classes < 2:
            raise ValueError(f"classification needs at least 2 classes, got {n_classes}")
        self.n_classes = n_classes
        self.monitor, self.mode = ("roc_auc", "max") if n_classes == 2 else ("accuracy", "max")

    @property
    def n_outputs(self) -> int | None:
        return self.n_classes

    def for_model(self, model) -> "ClassificationTask":
        return ClassificationTask(model.n_outputs) if self.n_classes is None else super().for_model(model)

    def check(self, x, y, what="data"):
        check_features(x, what)
        _check_target_shape(x, y, None, what)
        if y.dtype.kind not in "iu":
            raise ValueError(f"{what}: labels must be integers, got dtype {y.dtype}")
        bad = (y < 0) if self.n_classes is None else (y < 0) | (y >= self.n_classes)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            limit = "negative" if self.n_classes is None else f"outside [0, {self.n_classes})"
            raise ValueError(f"{what}: label {y[row]} in row {row} is {limit} ({int(bad.sum())} such labels)")

    def loss(self, backend):
        return SoftmaxCrossEntropy(backend)

    def prepare_targets(self, y, backend):
        return (backend.asarray(y, dtype=np.int64),)

    def _metrics(self, logits, y):
        loss, probs = reference.softmax_cross_entropy_forward(logits, y)  # probs (N, C)
        predicted = logits.argmax(axis=1)  # (N,)
        out = {"loss": float(loss), "accuracy": metrics.accuracy(y, predicted),
               "balanced_accuracy": metrics.balanced_accuracy(y, predicted)}
        if logits.shape[1] == 2:
            both = np.unique(y).size == 2
            out["roc_auc"] = metrics.roc_auc(y, probs[:, 1]) if both else float("nan")
        return out

    def config(self):
        return {"task": self.name, "n_classes": self.n_classes}


class MultiTaskBinaryTask(Task):
    """n_tasks binary tasks with missing labels: targets (N, T) hold 0, 1, or NaN where missing."""

    name = "multitask"
    monitor, mode = "roc_auc", "max"

    def __init__(self, n_tasks: int, task_names: list[str] | None = None):
        if n_tasks < 1:
            raise ValueError(f"multi-task needs at least 1 task, got {n_tasks}")
        if task_names is not None and len(task_names) != n_tasks:
            raise ValueError(f"{len(task_names)} task names for {n_tasks} tasks")
        self.n_tasks = int(n_tasks)
        self.task_names = list(task_names) if task_names is not None else [str(t) for t in range(n_tasks)]

    @property
    def n_outputs(self) -> int:
        return self.n_tasks

    @staticmethod
    def targets_with_missing(labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Labels (N, T) and a mask (N, T), True where known, as targets (N, T) with NaN where missing."""
        return np.where(mask, labels, np.nan).astype(np.float64)

    def check(self, x, y, what="data"):
        check_features(x, what)
        _check_target_shape(x, y, self.n_tasks, what)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"{what}: targets must be numeric (0, 1, NaN for missing), got dtype {y.dtype}")
        bad = ~(np.isnan(y) | (y == 0) | (y == 1)) if y.dtype.kind == "f" else ~((y == 0) | (y == 1))
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise ValueError(f"{what}: target {y[row, col]} at row {row}, task {col} is not 0, 1 or NaN (missing)")
        if y.dtype.kind == "f" and np.isnan(y).all():
            raise ValueError(f"{what}: every label is missing")

    def loss(self, backend):
        return SigmoidBinaryCrossEntropy(backend)

    @staticmethod
    def _split_missing(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(targets (N, T) with 0 where missing, known (N, T) as 1.0 where a label is present)."""
        known = ~np.isnan(y) if y.dtype.kind == "f" else np.ones(y.shape, dtype=bool)
        return np.where(known, y, 0.0), known.astype(np.float64)

    def prepare_targets(self, y, backend):
        targets, known = self._split_missing(y)
        return backend.asarray(targets, dtype=backend.dtype), backend.asarray(known, dtype=backend.dtype)

    def _metrics(self, logits, y):
        targets, known = self._split_missing(y)
        loss = float(reference.sigmoid_cross_entropy_forward(logits, targets, known)) / known.sum()
        per_task = metrics.roc_auc_per_task(targets, logits, known.astype(bool))  # (T,), NaN for single-class tasks
        out = {"loss": loss, "roc_auc": metrics.mean_roc_auc(per_task)}
        out.update({f"roc_auc_{name}": float(value) for name, value in zip(self.task_names, per_task)})
        return out

    def config(self):
        return {"task": self.name, "n_tasks": self.n_tasks, "task_names": self.task_names}


class RegressionTask(Task):
    """Regression of n_outputs float targets (N, T)."""

    name = "regression"
    monitor, mode = "loss", "min"

    def __init__(self, n_outputs: int = 1):
        if n_outputs < 1:
            raise ValueError(f"regression needs at least 1 output, got {n_outputs}")
        self._n_outputs = int(n_outputs)

    @property
    def n_outputs(self) -> int:
        return self._n_outputs

    def check(self, x, y, what="data"):
        check_features(x, what)
        _check_target_shape(x, y, self._n_outputs, what)
        if y.dtype.kind not in "iuf":
            raise ValueError(f"{what}: targets must be numeric, got dtype {y.dtype}")
        bad = ~np.isfinite(y)
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise ValueError(f"{what}: target {y[row, col]} at row {row}, column {col} is not finite")

    def loss(self, backend):
        return MeanSquaredError(backend)

    def prepare_targets(self, y, backend):
        return (backend.asarray(y, dtype=backend.dtype),)

    def _metrics(self, pred, y):
        constant = (y == y[0]).all(axis=0).any()
        return {"loss": float(((pred - y) ** 2).mean()), "rmse": metrics.rmse(y, pred),
                "r2": float("nan") if constant else metrics.r2(y, pred)}

    def config(self):
        return {"task": self.name, "n_outputs": self._n_outputs}


TASKS = {"classification": ClassificationTask, "multitask": MultiTaskBinaryTask, "regression": RegressionTask}


def task_from_config(config: dict) -> Task:
    """The task a config() describes."""
    config = dict(config)
    kind = config.pop("task", None)
    if kind not in TASKS:
        raise ValueError(f"unknown task {kind!r}; tasks are {', '.join(TASKS)}")
    return TASKS[kind](**config)


__all__ = ["Task", "ClassificationTask", "MultiTaskBinaryTask", "RegressionTask", "TASKS", "task_from_config",
           "check_features"]

"""scikit-learn estimators around minisnn's networks: SNNClassifier, SNNRegressor, SNNMultiTaskClassifier.

    from minisnn.sklearn import SNNClassifier
    clf = SNNClassifier(depth=4, width=128, max_epochs=50, random_state=0).fit(X, y)
    clf.predict_proba(X_new)                   # (N, C), columns in the order of clf.classes_
    clf.save_checkpoint("model.npz")           # `minisnn predict model.npz --data new.csv` gives y's labels

Each estimator builds one of the paper's networks (minisnn.methods.build_model), standardizes the
features with the statistics of the data it is fitted on (minisnn.data.Standardizer), and trains
with minisnn.train.fit, the task of its targets (minisnn.tasks), an optimizer of minisnn.optim
and, with early_stopping=True, minisnn.callbacks.EarlyStopping on a held-out validation part
monitoring the validation loss. Constructor arguments are stored as given and checked in fit.
After fitting: model_ (the minisnn Sequential, on standardized inputs; model_.meta holds the
standardizer and, for classifiers, "class_labels"), optimizer_, history_ (minisnn.train.History),
n_iter_ (epochs run), best_epoch_ (the epoch early stopping restored, else None), backend_
(the backend's name), n_features_in_ and, for data frames with string column names,
feature_names_in_. The same random_state gives the same network, batches and dropout masks on
every backend.

This module needs scikit-learn (pip install minisnn[sklearn]); the rest of minisnn does not import it.
"""

from __future__ import annotations

import numbers
import sys
from pathlib import Path
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, MultiOutputMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_consistent_length, check_is_fitted
except ImportError as exc:  # scikit-learn is an optional extra
    raise ImportError(f"minisnn.sklearn needs scikit-learn: pip install minisnn[sklearn] ({exc})") from exc

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6 has the method instead of the function
    def validate_data(estimator, X="no_validation", y="no_validation", reset=True, **check_params):
        return estimator._validate_data(X, y, reset=reset, **check_params)

from .backends import get_backend
from .callbacks import EarlyStopping
from .checkpoint import save_checkpoint as write_checkpoint
from .data.preprocessing import Standardizer, stratified_split
from .methods import METHODS, build_model
from .model import Sequential
from .optim import OPTIMIZERS, SGD, Adam, AdamW, optimizer_from_config
from .tasks import ClassificationTask, MultiTaskBinaryTask, RegressionTask, Task
from .train import fit as train

DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3}
DEFAULT_MOMENTUM = 0.9  # SGD's; Adam and AdamW take none
DTYPES = ("float32", "float64")
SEED_LIMIT = 2**31 - 1


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)


class _SNNEstimator(BaseEstimator):
    """The parameters, checks, training and persistence the three estimators share.

    method: one of minisnn.methods.METHODS; depth: hidden layers (residual blocks for resnet);
    width: the (first) hidden width (None keeps the input width, highway only); shape:
    "rectangular" or "conic" ("diavolo" for resnet); dropout: None for the method's default
    (0.05 alpha dropout for snn, else 0); optimizer: "sgd" (with momentum), "adam" or "adamw";
    lr: None for the optimizer's default (0.01 for sgd, 1e-3 otherwise); momentum: SGD's, None
    for 0.9 (an error for adam and adamw); batch_size; max_epochs: epochs of fit (partial_fit
    runs one, without early stopping); early_stopping (fit): hold out validation_fraction of
    the training data and stop once the validation loss, smoothed over 10 epochs, has not
    improved for `patience` epochs, restoring the best epoch's weights; backend: "numpy", "numba", "cupy" or "auto"; dtype:
    "float32" or "float64"; random_state: None, an int or a numpy RandomState (weights, dropout
    masks, batch order, validation split); verbose: print one line per epoch.
    """

    def __init__(self, method="snn", depth=4, width=128, shape="rectangular", dropout=None, optimizer="sgd",
                 lr=None, momentum=None, batch_size=128, max_epochs=100, early_stopping=False,
                 validation_fraction=0.1, patience=10, backend="numpy", dtype="float32", random_state=None,
                 verbose=False):
        self.method = method
        self.depth = depth
        self.width = width
        self.shape = shape
        self.dropout = dropout
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.backend = backend
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # ---- parameters -------------------------------------------------------------------------
    def _check_params(self) -> None:
        """ValueError naming the first constructor argument that is out of range (build_model checks
        the combinations of method, width, shape and dropout)."""
        name = type(self).__name__
        problems = []
        if self.method not in METHODS:
            problems.append(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not (_is_int(self.depth) and self.depth >= 0):
            problems.append(f"depth must be an integer >= 0, got {self.depth!r}")
        if not (self.width is None or (_is_int(self.width) and self.width >= 1)):
            problems.append(f"width must be an integer >= 1 (or None for highway), got {self.width!r}")
        if not isinstance(self.shape, str):
            problems.append(f"shape must be a string, got {self.shape!r}")
        if not (self.dropout is None or (_is_real(self.dropout) and 0 <= self.dropout < 1)):
            problems.append(f"dropout must be None or a rate in [0, 1), got {self.dropout!r}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if not (self.lr is None or (_is_real(self.lr) and self.lr > 0)):
            problems.append(f"lr must be None or a positive number, got {self.lr!r}")
        if self.momentum is not None and self.optimizer != "sgd":
            problems.append(f"momentum applies to optimizer 'sgd' only (optimizer is {self.optimizer!r}); leave it None")
        elif not (self.momentum is None or (_is_real(self.momentum) and 0 <= self.momentum < 1)):
            problems.append(f"momentum must be None or in [0, 1), got {self.momentum!r}")
        for arg in ("batch_size", "max_epochs", "patience"):
            value = getattr(self, arg)
            if not (_is_int(value) and value >= 1):
                problems.append(f"{arg} must be an integer >= 1, got {value!r}")
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            problems.append(f"early_stopping must be True or False, got {self.early_stopping!r}")
        if not (_is_real(self.validation_fraction) and 0 < self.validation_fraction < 1):
            problems.append(f"validation_fraction must lie in (0, 1), got {self.validation_fraction!r}")
        if not isinstance(self.backend, str):
            problems.append(f"backend must be a backend name (numpy, numba, cupy or auto), got {self.backend!r}")
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not (self.random_state is None or _is_int(self.random_state)
                or isinstance(self.random_state, np.random.RandomState)):
            problems.append(f"random_state must be None, an integer or a numpy RandomState, got {self.random_state!r}")
        if problems:
            raise ValueError(f"{name}: " + "; ".join(problems))

    # ---- what subclasses define ----------------------------------------------------------
    def _encode_targets(self, y, first: bool, classes=None) -> np.ndarray:
        """Targets y as the task takes them (labels (N,), or (N, T)); first: set the target attributes."""
        raise NotImplementedError

    def _make_task(self) -> Task:
        raise NotImplementedError

    def _meta(self) -> dict[str, Any]:
        """Checkpoint meta beyond the standardizer and the task."""
        return {}

    def _validation_split(self, targets: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(train rows, validation rows) for early stopping."""
        order = np.random.default_rng(seed).permutation(len(targets))
        n_val = int(round(self.validation_fraction * len(targets)))
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    # ---- training ----------------------------------------------------------------------------
    def _start(self, X: np.ndarray) -> None:
        """A fresh standardizer (fitted to X (N, D)), network and optimizer; the target attributes are set."""
        seeds = check_random_state(self.random_state).randint(0, SEED_LIMIT, size=3)  # model, batches, split
        self._model_seed, self._batch_seed, self._split_seed = (int(s) for s in seeds)
        be = get_backend(self.backend, dtype=self.dtype)
        self.backend_ = be.name
        self.standardizer_ = Standardizer().fit(X)
        task = self._make_task()
        self.model_ = build_model(self.method, X.shape[1], task.n_outputs, depth=self.depth, width=self.width,
                                  shape=self.shape, dropout=self.dropout, backend=be, seed=self._model_seed)
        self.model_.meta = {"standardizer": {"mean": self.standardizer_.mean.tolist(),
                                             "scale": self.standardizer_.scale.tolist()},
                            "task": task.config(), **self._meta()}
        self.optimizer_ = self._make_optimizer()
        self.n_iter_, self.best_epoch_ = 0, None

    def _make_optimizer(self):
        kind = self.optimizer
        lr = DEFAULT_LR[kind] if self.lr is None else float(self.lr)
        if kind == "sgd":
            return SGD(self.model_, lr=lr, momentum=DEFAULT_MOMENTUM if self.momentum is None else float(self.momentum))
        return (Adam if kind == "adam" else AdamW)(self.model_, lr=lr)

    def _train(self, x: np.ndarray, targets: np.ndarray, epochs: int, early_stopping: bool) -> None:
        """Train model_ for up to `epochs` more epochs on standardized x (N, D) and encoded targets."""
        task, validation, callbacks = self._make_task(), None, []
        if early_stopping:
            train_rows, val_rows = self._validation_split(targets, self._split_seed)
            if len(val_rows) == 0 or len(train_rows) == 0:
                raise ValueError(f"{type(self).__name__}: validation_fraction={self.validation_fraction} of "
                                 f"{len(targets)} samples leaves no validation or no training samples; "
                                 f"pass more data or set early_stopping=False")
            validation = (x[val_rows], targets[val_rows])
            x, targets = x[train_rows], targets[train_rows]
            callbacks = [EarlyStopping(monitor="val_loss", patience=self.patience)]
        history = train(self.model_, x, targets, self.optimizer_, task=task, epochs=epochs,
                        batch_size=self.batch_size, validation=validation, callbacks=callbacks,
                        seed=self._batch_seed, start_epoch=self.n_iter_,
                        progress=sys.stdout if self.verbose else None)
        self.history_ = history
        self.n_iter_ += len(history)
        self.best_epoch_ = history.best_epoch

    def _validate(self, X, y, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        """(X (N, D), y) checked by scikit-learn; reset: record n_features_in_ and feature_names_in_."""
        return validate_data(self, X, y, reset=reset, dtype=(np.float64, np.float32))

    def _fit(self, X, y):
        self._check_params()
        X, y = self._validate(X, y, reset=True)
        targets = self._encode_targets(y, first=True)
        self._start(X)
        self._train(self.standardizer_.transform(X), targets, self.max_epochs, bool(self.early_stopping))
        return self

    def _partial_fit(self, X, y, classes=None):
        first = not hasattr(self, "model_")
        if first:
            self._check_params()
        X, y = self._validate(X, y, reset=first)
        targets = self._encode_targets(y, first=first, classes=classes)
        if first:
            self._start(X)
        self._train(self.standardizer_.transform(X), targets, 1, early_stopping=False)
        return self

    # ---- inference ----------------------------------------------------------------------------
    def _outputs(self, X) -> np.ndarray:
        """The network's outputs (N, n_outputs) in float64 for raw features X."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self.model_.logits(self.standardizer_.transform(X)).astype(np.float64)

    # ---- persistence ----------------------------------------------------------------------
    def _exported_model(self) -> Sequential:
        """The network a checkpoint holds (model_ itself unless a subclass folds something in)."""
        return self.model_

    def save_checkpoint(self, path) -> Path:
        """Write the fitted network as a minisnn checkpoint (atomically); returns its path.

        Its meta holds the standardizer, the task and, for classifiers, "class_labels" (y's labels,
        which must be strings, integers or finite numbers), so `minisnn predict` and
        `minisnn evaluate` take raw features and `predict` reports the original labels.
        """
        check_is_fitted(self)
        model = self._exported_model()
        return write_checkpoint(path, model, meta=model.meta)

    def __getstate__(self):
        """Picklable on every backend: the network and optimizer as their configs and host arrays."""
        state = dict(super().__getstate__())  # a copy: BaseEstimator may return __dict__ itself
        model = state.pop("model_", None)
        optimizer = state.pop("optimizer_", None)
        if model is not None:
            state["_pickled_network"] = {
                "config": model.config(), "arrays": model.state_arrays(), "meta": model.meta,
                "optimizer": None if optimizer is None else (optimizer.config(), optimizer.step_count,
                                                             optimizer.state_arrays())}
        return state

    def __setstate__(self, state):
        network = state.pop("_pickled_network", None)
        super().__setstate__(state)
        if network is not None:
            be = get_backend(self.backend_, dtype=self.dtype)
            self.model_ = Sequential.from_config(network["config"], be)
            self.model_.load_state_arrays(network["arrays"])
            self.model_.meta = network["meta"]
            if network["optimizer"] is not None:
                config, step, arrays = network["optimizer"]
                self.optimizer_ = optimizer_from_config(config, self.model_)
                self.optimizer_.load_state(step, arrays)


def _json_label(label: Any) -> Any:
    """A class label as the JSON scalar a checkpoint's class_labels holds (ValueError if it has none)."""
    value = label.item() if isinstance(label, np.generic) else label
    if isinstance(value, str) or _is_int(value) or (isinstance(value, float) and np.isfinite(value)):
        return value
    raise ValueError(f"class label {label!r} cannot be saved in a checkpoint: labels must be strings, integers "
                     f"or finite numbers")


class SNNClassifier(ClassifierMixin, _SNNEstimator):
    """Classification into the classes of y (any labels: integers, strings, ...) with softmax outputs.

    classes_ holds the sorted labels; predict_proba (N, C) and decision_function (the logits
    (N, C), or the log-odds of classes_[1] (N,) for two classes) follow its order. partial_fit
    runs one epoch; its first call needs `classes` (every label y may hold) and fixes the
    standardization to that call's data. See _SNNEstimator for the parameters.
    """

    def fit(self, X, y):
        """Train a fresh network on X (N, D) and labels y (N,) for max_epochs epochs (or until early stopping)."""
        return self._fit(X, y)

    def partial_fit(self, X, y, classes=None):
        """One more epoch on X, y; the first call needs classes (all labels) and starts a fresh network."""
        return self._partial_fit(X, y, classes)

    def _encode_targets(self, y, first, classes=None):
        check_classification_targets(y)
        if first:
            known = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if len(known) < 2:
                raise ValueError(f"{type(self).__name__} needs at least 2 classes in y, got 1 class ({known[0]!r})")
            self.classes_ = known
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"classes {np.unique(classes)!r} differ from those of the first partial_fit call "
                             f"{self.classes_!r}")
        ids = np.searchsorted(self.classes_, y)  # (N,)
        unknown = (ids >= len(self.classes_)) | (self.classes_[np.minimum(ids, len(self.classes_) - 1)] != y)
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise ValueError(f"label {y[row]!r} in row {row} is not one of classes_ {self.classes_!r}")
        return ids.astype(np.int64)

    def _partial_fit(self, X, y, classes=None):
        if not hasattr(self, "model_") and classes is None:
            raise ValueError(f"{type(self).__name__}.partial_fit needs classes= (every label y may hold) "
                             f"on its first call")
        return super()._partial_fit(X, y, classes)

    def _make_task(self):
        return ClassificationTask(len(self.classes_))

    def _meta(self):
        try:
            return {"class_labels": [_json_label(c) for c in self.classes_]}
        except ValueError:
            return {}  # the labels stay in classes_; save_checkpoint says why they cannot be saved

    def _validation_split(self, targets, seed):
        return stratified_split(targets, self.validation_fraction, seed)

    def save_checkpoint(self, path) -> Path:
        check_is_fitted(self)
        for label in self.classes_:
            _json_label(label)  # a label a checkpoint cannot hold is a ValueError naming it
        return super().save_checkpoint(path)

    def decision_function(self, X) -> np.ndarray:
        """Logits (N, C) in float64; for two classes the log-odds of classes_[1], (N,)."""
        logits = self._outputs(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (N, C) in float64, columns in the order of classes_."""
        z = self._outputs(X)  # (N, C)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        return z / z.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X) -> np.ndarray:
        """Log class probabilities (N, C)."""
        z = self._outputs(X)  # (N, C)
        z -= z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row, as labels of classes_ (N,)."""
        ids = self._outputs(X).argmax(axis=1)  # (N,)
        return self.classes_[ids]


class SNNRegressor(RegressorMixin, MultiOutputMixin, _SNNEstimator):
    """Regression of y (N,) or (N, T) with mean squared error.

    The targets are standardized inside (target_mean_, target_scale_ per output, from the fit
    data, or from the first partial_fit call), so model_ predicts standardized targets;
    predict returns them in y's units, and save_checkpoint folds the scaling into the output
    layer, so the checkpoint predicts in y's units. See _SNNEstimator for the parameters.
    """

    def fit(self, X, y):
        """Train a fresh network on X (N, D) and targets y (N,) or (N, T)."""
        return self._fit(X, y)

    def partial_fit(self, X, y):
        """One more epoch on X, y (the first call starts a fresh network)."""
        return self._partial_fit(X, y)

    def _validate(self, X, y, reset):
        return validate_data(self, X, y, reset=reset, dtype=(np.float64, np.float32), multi_output=True,
                             y_numeric=True)

    def _encode_targets(self, y, first, classes=None):
        y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)  # (N, T)
        if first:
            self._y_1d = np.ndim(y) == 1
            self.n_outputs_ = y2.shape[1]
            scaler = Standardizer().fit(y2)
            self.target_mean_, self.target_scale_ = scaler.mean, scaler.scale  # (T,), (T,)
        elif y2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y2.shape[1]} outputs, but {type(self).__name__} was fitted with {self.n_outputs_}")
        return (y2 - self.target_mean_) / self.target_scale_

    def _make_task(self):
        return RegressionTask(self.n_outputs_)

    def _meta(self):
        return {"target_standardizer": {"mean": self.target_mean_.tolist(), "scale": self.target_scale_.tolist()}}

    def predict(self, X) -> np.ndarray:
        """Predictions in y's units, float64: (N,) when fitted on a 1-D y, else (N, T)."""
        y = self._outputs(X) * self.target_scale_ + self.target_mean_  # (N, T)
        return y.ravel() if self._y_1d else y

    def _exported_model(self) -> Sequential:
        """A copy of model_ whose output layer also undoes the target standardization."""
        model = Sequential.from_config(self.model_.config(), self.model_.backend)
        arrays = self.model_.state_arrays()
        last = str(len(model.layers) - 1)
        scale, mean = self.target_scale_, self.target_mean_
        arrays[f"param/{last}.W"] = (arrays[f"param/{last}.W"] * scale).astype(arrays[f"param/{last}.W"].dtype)
        arrays[f"param/{last}.b"] = (arrays[f"param/{last}.b"] * scale + mean).astype(arrays[f"param/{last}.b"].dtype)
        model.load_state_arrays(arrays)
        model.meta = {key: value for key, value in self.model_.meta.items() if key != "target_standardizer"}
        return model


class SNNMultiTaskClassifier(ClassifierMixin, MultiOutputMixin, _SNNEstimator):
    """T binary tasks at once, with missing labels: y (N, T) holds 0, 1 or NaN (missing), as in Tox21.

    One network with T sigmoid outputs, trained with the masked binary cross-entropy of
    minisnn.tasks.MultiTaskBinaryTask (a missing label adds nothing to the loss). predict gives
    (N, T) labels 0/1, predict_proba (N, T) probabilities of label 1 (scikit-learn's multilabel
    convention), decision_function the logits (N, T); score is the mean ROC AUC over the tasks
    on the observed labels. task_names: None, or one name per column of y (kept in checkpoints).
    See _SNNEstimator for the other parameters.
    """

    def __init__(self, method="snn", depth=4, width=128, shape="rectangular", dropout=None, optimizer="sgd",
                 lr=None, momentum=None, batch_size=128, max_epochs=100, early_stopping=False,
                 validation_fraction=0.1, patience=10, backend="numpy", dtype="float32", random_state=None,
                 verbose=False, task_names=None):
        super().__init__(method=method, depth=depth, width=width, shape=shape, dropout=dropout, optimizer=optimizer,
                         lr=lr, momentum=momentum, batch_size=batch_size, max_epochs=max_epochs,
                         early_stopping=early_stopping, validation_fraction=validation_fraction, patience=patience,
                         backend=backend, dtype=dtype, random_state=random_state, verbose=verbose)
        self.task_names = task_names

    def fit(self, X, y):
        """Train a fresh network on X (N, D) and targets y (N, T) of 0, 1 and NaN (missing)."""
        return self._fit(X, y)

    def partial_fit(self, X, y):
        """One more epoch on X, y (the first call starts a fresh network)."""
        return self._partial_fit(X, y)

    def _validate(self, X, y, reset):
        """X checked by scikit-learn; y (N, T) as float64, NaN allowed (scikit-learn's checks reject it)."""
        X = validate_data(self, X, reset=reset, dtype=(np.float64, np.float32))
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        try:
            targets = np.asarray(y, dtype=np.float64)  # (N, T)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"y must hold 0, 1 or NaN (missing) for every task: {exc}") from None
        if targets.ndim != 2:
            raise ValueError(f"y must have shape (N, T), one column per task, got {targets.shape}")
        check_consistent_length(X, targets)
        return X, targets

    def _encode_targets(self, y, first, classes=None):
        targets = y  # (N, T), from _validate
        if first:
            names = None if self.task_names is None else [str(name) for name in self.task_names]
            if names is not None and len(names) != targets.shape[1]:
                raise ValueError(f"{len(names)} task_names for y with {targets.shape[1]} columns")
            self.n_tasks_ = targets.shape[1]
            self.task_names_ = names or [str(t) for t in range(self.n_tasks_)]
            self.classes_ = [np.array([0, 1]) for _ in range(self.n_tasks_)]
        elif targets.shape[1] != self.n_tasks_:
            raise ValueError(f"y has {targets.shape[1]} tasks, but {type(self).__name__} was fitted with {self.n_tasks_}")
        MultiTaskBinaryTask(self.n_tasks_).check(np.zeros((len(targets), 1)), targets, "y")
        return targets

    def _make_task(self):
        return MultiTaskBinaryTask(self.n_tasks_, self.task_names_)

    def decision_function(self, X) -> np.ndarray:
        """Logits (N, T) in float64."""
        return self._outputs(X)

    def predict_proba(self, X) -> np.ndarray:
        """Probability of label 1 for each task (N, T), float64."""
        return np.exp(-np.logaddexp(0.0, -self._outputs(X)))

    def predict(self, X) -> np.ndarray:
        """Labels 0/1 (N, T): 1 where the probability exceeds 0.5."""
        return (self._outputs(X) > 0).astype(np.int64)

    def score(self, X, y, sample_weight=None) -> float:
        """Mean ROC AUC over the tasks of the observed labels of y (N, T) (NaN: missing)."""
        if sample_weight is not None:
            raise ValueError(f"{type(self).__name__}.score takes no sample_weight")
        check_is_fitted(self)
        X, targets = self._validate(X, y, reset=False)
        targets = self._encode_targets(targets, first=False)
        return self._make_task().evaluate(self.model_, self.standardizer_.transform(X), targets)["roc_auc"]


__all__ = ["SNNClassifier", "SNNRegressor", "SNNMultiTaskClassifier"]

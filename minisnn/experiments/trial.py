"""run_trial: one trial spec in, one JSON-able record out.

The trial loads its split (minisnn.experiments.protocols), standardizes it with the training
rows' statistics, builds the method's network (minisnn.methods.build_model) with the seed
derived from the trial's key, trains it with plain SGD for `epochs` epochs, records the training
loss and the validation curves of every epoch, and picks the best epoch of the validation metric
smoothed by a trailing moving average of `window` epochs (minisnn.callbacks.KeepBest). The final
model is then, by the training setting "final":

- "selected" (the default): the network's weights at that epoch;
- "retrain": a network with the same seed trained on training + validation rows (standardized
  anew) for that many epochs.

and its test metrics are recorded. A loss that becomes NaN or infinite stops training: the
record keeps the epochs before it ("diverged") and selects among them; a trial that diverges in
its first epoch has status "diverged" and no test metrics. Everything except wall_s is a function
of the spec, the data and the library versions, so a trial gives the same record wherever it runs.
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
import traceback
from typing import Any

import numpy as np

from .. import __version__
from ..backends import get_backend
from ..callbacks import Callback, KeepBest
from ..methods import build_model
from ..optim import SGD
from ..train import TrainingDiverged, fit
from .protocols import Split, load_split
from .spec import TrialSpec

MODEL_PARAMS = ("depth", "width", "shape", "dropout", "bottleneck")
OPTIMIZER_PARAMS = ("lr", "momentum", "weight_decay")
# batch_size "auto": SMALL_BATCH, or LARGE_BATCH when the training rows exceed LARGE_DATA.
SMALL_BATCH, LARGE_BATCH, LARGE_DATA = 64, 512, 1000
TIMING_FIELDS = ("wall_s",)


class _Recorder(Callback):
    """Keeps every epoch's record (fit's History is lost when training diverges)."""

    def __init__(self):
        self.records: list[dict[str, float]] = []

    def on_epoch_end(self, epoch, record, model, optimizer) -> bool:
        self.records.append(dict(record))
        return False


def _plain_float(value: float) -> float | None:
    return None if value is None or np.isnan(value) else float(value)


def versions() -> dict[str, str]:
    """Library versions a record depends on."""
    out = {"minisnn": __version__, "numpy": np.__version__, "python": platform.python_version()}
    try:
        out["numba"] = importlib.metadata.version("numba")
    except importlib.metadata.PackageNotFoundError:
        pass
    return out


def batch_size_for(setting: int | str, n_train: int) -> int:
    if setting == "auto":
        return LARGE_BATCH if n_train > LARGE_DATA else SMALL_BATCH
    return int(setting)


def _train(spec: TrialSpec, split: Split, epochs: int, validate: bool, seeds: dict[str, int], backend):
    """Build and train the network on `split`; (model, recorder, keep-best or None, divergence note or None)."""
    params = spec.params
    model = build_model(spec.method, split.x_train.shape[1], split.task.n_outputs,
                        **{name: params[name] for name in MODEL_PARAMS if name in params},
                        backend=backend, seed=seeds["model"])
    optimizer = SGD(model, **{name: params[name] for name in OPTIMIZER_PARAMS if params.get(name) is not None})
    recorder = _Recorder()
    keep = KeepBest(monitor=f"val_{split.monitor}", window=spec.training["window"]) if validate else None
    callbacks = [recorder] + ([keep] if keep else [])
    diverged = None
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging network is recorded, not warned about
            fit(model, split.x_train, split.y_train, optimizer, task=split.task, epochs=epochs,
                batch_size=batch_size_for(spec.training["batch_size"], split.x_train.shape[0]),
                validation=(split.x_val, split.y_val) if validate else None, callbacks=callbacks,
                seed=seeds["batches"], progress=None)
    except TrainingDiverged as exc:
        diverged = {"epoch": len(recorder.records) + 1, "message": str(exc)}
        if keep is not None:
            keep.on_train_end(model)
    return model, recorder, keep, diverged


def run_trial(spec: TrialSpec | dict, data_root: str | None = None) -> dict[str, Any]:
    """The record of one trial (module doc). Raises on bad specs, missing data or failing code."""
    started = time.perf_counter()
    spec = spec if isinstance(spec, TrialSpec) else TrialSpec.from_dict(spec)
    seeds = spec.seeds()
    training = spec.training
    raw = load_split(spec.dataset, spec.protocol, seeds["split"], data_root)
    split = raw.standardized()
    backend = get_backend(training["backend"], dtype=training["dtype"])
    if training["monitor"] is not None:
        split.monitor = training["monitor"]
    model, recorder, keep, diverged = _train(spec, split, training["epochs"], True, seeds, backend)
    monitor = f"val_{split.monitor}"
    curves = {name: [_plain_float(r[name]) for r in recorder.records]
              for name in ("train_loss", "val_loss", monitor) if recorder.records and name in recorder.records[0]}
    record: dict[str, Any] = {
        "key": spec.key, "spec": spec.to_dict(), "seeds": seeds,
        "data": {"n_train": int(split.x_train.shape[0]), "n_val": int(split.x_val.shape[0]),
                 "n_test": int(split.x_test.shape[0]), "n_features": int(split.x_train.shape[1]),
                 "task": split.task.config(), **raw.notes},
        "monitor": monitor, "mode": keep.mode, "window": keep.window, "curves": curves,
        "epochs_run": len(recorder.records), "diverged": diverged,
        "best_epoch": keep.best_epoch, "val_best": _plain_float(keep.best_value) if keep.best_epoch else None,
        "final": training["final"], "test": None, "status": "ok",
        "backend": {"name": backend.name, "dtype": backend.dtype.name}, "versions": versions(),
    }
    if keep.best_epoch is None:
        record["status"] = "diverged"
    else:
        if training["final"] == "retrain":
            joined = raw.joined().standardized()
            model, _, _, retrain_diverged = _train(spec, joined, keep.best_epoch, False, seeds, backend)
            record["retrain_diverged"] = retrain_diverged
            split = joined
        if record.get("retrain_diverged"):
            record["status"] = "diverged"
        else:
            test = split.task.evaluate(model, split.x_test, split.y_test)
            record["test"] = {name: _plain_float(value) for name, value in test.items()}
    record["wall_s"] = time.perf_counter() - started
    return record


def failure_record(spec: TrialSpec | dict, error: BaseException, wall_s: float = 0.0) -> dict[str, Any]:
    """The record of a trial that raised: its spec, status "failed", the error and its traceback."""
    spec_dict = spec.to_dict() if isinstance(spec, TrialSpec) else spec
    try:
        key = TrialSpec.from_dict(spec_dict).key
    except (ValueError, TypeError):
        key = None
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return {"key": key, "spec": spec_dict, "status": "failed", "error": f"{type(error).__name__}: {error}",
            "traceback": text, "wall_s": wall_s}


def run_trial_safely(spec: TrialSpec | dict, data_root: str | None = None) -> dict[str, Any]:
    """run_trial, or failure_record when it raises (an executor's worker runs this)."""
    started = time.perf_counter()
    try:
        return run_trial(spec, data_root)
    except Exception as exc:  # noqa: BLE001 - any failure of one trial is recorded, the sweep goes on
        return failure_record(spec, exc, time.perf_counter() - started)


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """The record without its timing fields: equal for the same trial wherever it ran."""
    return {name: value for name, value in record.items() if name not in TIMING_FIELDS}

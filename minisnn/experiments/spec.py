"""A trial's specification, its canonical form, its key and the seeds derived from that key.

A trial is (data set, protocol, method, hyperparameters, training settings, repetition). Its
canonical form is JSON with sorted keys and no spaces, numbers normalized by kind (an integer
width stays an integer, a learning rate is always a float: lr 1 and lr 1.0 are one trial); its
key is the first 20 hex digits of the SHA-256 of that JSON. Every seed a trial uses derives from
its key, except the seed of the validation split, which derives from the data set and protocol
alone so that all configurations of a data set are selected on the same validation rows.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from dataclasses import dataclass, field
from typing import Any

KEY_DIGITS = 20
# Hyperparameters a grid may set, with the type each is normalized to.
PARAM_TYPES = {"width": int, "depth": int, "shape": str, "dropout": float, "bottleneck": float, "lr": float,
               "weight_decay": float, "momentum": float}
# Training settings and their defaults (the paper: plain SGD, 100 epochs, a 10-epoch moving average).
TRAINING_DEFAULTS = {"epochs": 100, "batch_size": "auto", "window": 10, "final": "selected", "monitor": None,
                     "backend": "numpy", "dtype": "float32"}
FINAL_RULES = ("selected", "retrain")


def _plain(value: Any, where: str) -> Any:
    """value as plain JSON data (dicts with string keys, lists, str, int, float, bool, None)."""
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError(f"{where}: keys must be strings, got {list(value)}")
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{where}: {value} is not a finite number")
        return value
    raise ValueError(f"{where}: {value!r} ({type(value).__name__}) is not plain JSON data")


def normalize_params(params: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters with known names, each converted to its type (None allowed: the method's default)."""
    unknown = sorted(set(params) - set(PARAM_TYPES))
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {', '.join(unknown)}; known: {', '.join(PARAM_TYPES)}")
    out = {}
    for name, value in params.items():
        kind = PARAM_TYPES[name]
        if value is None:
            out[name] = None
        elif kind is str:
            if not isinstance(value, str):
                raise ValueError(f"hyperparameter {name} must be a string, got {value!r}")
            out[name] = value
        elif isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"hyperparameter {name} must be a number, got {value!r}")
        elif kind is int:
            if value != int(value):
                raise ValueError(f"hyperparameter {name} must be an integer, got {value!r}")
            out[name] = int(value)
        else:
            out[name] = float(value)
    if "lr" not in out or out["lr"] is None or out["lr"] <= 0:
        raise ValueError(f"every configuration needs a learning rate lr > 0, got {out.get('lr')!r}")
    return out


def normalize_training(training: dict[str, Any]) -> dict[str, Any]:
    """TRAINING_DEFAULTS updated by `training`, checked."""
    unknown = sorted(set(training) - set(TRAINING_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown training setting(s) {', '.join(unknown)}; known: {', '.join(TRAINING_DEFAULTS)}")
    out = {**TRAINING_DEFAULTS, **_plain(training, "training")}
    if not isinstance(out["epochs"], int) or out["epochs"] < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {out['epochs']!r}")
    if out["batch_size"] != "auto" and (not isinstance(out["batch_size"], int) or out["batch_size"] < 1):
        raise ValueError(f"batch_size must be 'auto' or an integer >= 1, got {out['batch_size']!r}")
    if not isinstance(out["window"], int) or out["window"] < 1:
        raise ValueError(f"window must be an integer >= 1, got {out['window']!r}")
    if out["final"] not in FINAL_RULES:
        raise ValueError(f"final must be one of {FINAL_RULES}, got {out['final']!r}")
    return out


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal data give equal text."""
    return json.dumps(_plain(value, "spec"), sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def seed_from(text: str, purpose: str) -> int:
    """A 63-bit seed from a key (or any text) and what it is for."""
    return int(hashlib.sha256(f"{text}/{purpose}".encode()).hexdigest()[:16], 16) >> 1


@dataclass(frozen=True)
class TrialSpec:
    """One training run. dataset: "uci:NAME", "htru2", "tox21", "tox21:TASK", "synthetic" or a
    path; protocol: {"name": "uci" | "kfold" | "holdout", ...} (minisnn.experiments.protocols);
    method: one of minisnn.methods.METHODS; params: hyperparameters (PARAM_TYPES); training:
    settings (TRAINING_DEFAULTS); repetition: 0, 1, ... (changes the model's seeds only)."""

    dataset: str
    protocol: dict
    method: str
    params: dict
    training: dict = field(default_factory=dict)
    repetition: int = 0

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset must be a non-empty string, got {self.dataset!r}")
        if not isinstance(self.protocol, dict) or not isinstance(self.protocol.get("name"), str):
            raise ValueError(f"protocol must be a dict with a 'name', got {self.protocol!r}")
        if not isinstance(self.repetition, int) or self.repetition < 0:
            raise ValueError(f"repetition must be an integer >= 0, got {self.repetition!r}")
        object.__setattr__(self, "protocol", _plain(self.protocol, "protocol"))
        object.__setattr__(self, "params", normalize_params(self.params))
        object.__setattr__(self, "training", normalize_training(self.training))

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "protocol": self.protocol, "method": self.method, "params": self.params,
                "training": self.training, "repetition": self.repetition}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialSpec":
        missing = [name for name in ("dataset", "protocol", "method", "params") if name not in data]
        if missing:
            raise ValueError(f"trial spec lacks {', '.join(missing)}")
        return cls(data["dataset"], data["protocol"], data["method"], data["params"], data.get("training", {}),
                   data.get("repetition", 0))

    @property
    def key(self) -> str:
        return digest(self.to_dict())[:KEY_DIGITS]

    @property
    def split_key(self) -> str:
        """What the data split depends on: the data set and the protocol."""
        return digest({"dataset": self.dataset, "protocol": self.protocol})[:KEY_DIGITS]

    def seeds(self) -> dict[str, int]:
        """model: weights and dropout masks; batches: the sample order (both from the key without
        the final-model rule, so both rules share one selection run); split: the validation rows."""
        selection = digest({**self.to_dict(), "training": {k: v for k, v in self.training.items() if k != "final"}})
        return {"model": seed_from(selection, "model"), "batches": seed_from(selection, "batches"),
                "split": seed_from(self.split_key, "split")}

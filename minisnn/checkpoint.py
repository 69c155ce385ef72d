"""Checkpoints: one .npz holding the weights, the optimizer's velocities and a JSON header.

The header records the format and its version, the architecture (every layer's config), the
dropout layers' step counters, the optimizer's settings and step, the backend's host RNG state,
and the shape, dtype and SHA-256 of every array. Files are written atomically (a temporary file
in the same folder, fsynced, then renamed) and read with allow_pickle=False; anything missing,
extra, malformed or modified gives a CheckpointError naming the file and the problem. Loading a
model for inference needs NumPy only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .backends import get_backend
from .backends.base import SUPPORTED_DTYPES, Backend
from .model import Sequential
from .optim import SGD

FORMAT = "minisnn-checkpoint"
FORMAT_VERSION = 1
HEADER_KEY = "header.json"


class CheckpointError(ValueError):
    """A checkpoint file is missing, malformed, tampered with, or does not match the model."""


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def save_checkpoint(path: str | os.PathLike, model: Sequential, optimizer: SGD | None = None,
                    meta: dict[str, Any] | None = None) -> Path:
    """Write model (+ optimizer) to `path` (.npz) atomically; returns the path."""
    path = Path(path)
    be = model.backend
    arrays = {f"param/{p.name}": be.to_numpy(p.value) for p in model.parameters()}
    if optimizer is not None:
        arrays.update({f"velocity/{name}": v for name, v in optimizer.state_arrays().items()})
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "minisnn_version": __version__,
        "dtype": be.dtype.name,
        "model": model.config(),
        "layer_state": [layer.state_dict() for layer in model.layers],
        "optimizer": None if optimizer is None else {"config": optimizer.config(), "step": optimizer.step_count},
        "rng_state": be.rng.bit_generator.state,
        "meta": meta or {},
        "arrays": {name: {"shape": list(a.shape), "dtype": a.dtype.name, "sha256": _digest(a)}
                   for name, a in arrays.items()},
    }
    payload = dict(arrays)
    payload[HEADER_KEY] = np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, arrays) of a checkpoint, fully validated against the header's records."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{path}: not a readable .npz checkpoint ({exc})") from exc
    if HEADER_KEY not in contents:
        raise CheckpointError(f"{path}: no {HEADER_KEY} record; not a minisnn checkpoint")
    try:
        header = json.loads(contents.pop(HEADER_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: the header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: header format is {header.get('format') if isinstance(header, dict) else header!r}, "
                              f"expected {FORMAT!r}")
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {header.get('format_version')!r} is not supported "
                              f"(this minisnn reads version {FORMAT_VERSION})")
    if header.get("dtype") not in SUPPORTED_DTYPES:
        raise CheckpointError(f"{path}: dtype {header.get('dtype')!r} is not one of {SUPPORTED_DTYPES}")
    records = header.get("arrays")
    if not isinstance(records, dict) or set(records) != set(contents):
        missing = sorted(set(records or {}) - set(contents))
        extra = sorted(set(contents) - set(records or {}))
        raise CheckpointError(f"{path}: arrays do not match the header (missing {missing}, unexpected {extra})")
    for name, array in contents.items():
        record = records[name]
        if list(array.shape) != record.get("shape") or array.dtype.name != record.get("dtype"):
            raise CheckpointError(f"{path}: array {name!r} is {array.dtype.name}{list(array.shape)}, the header "
                                  f"says {record.get('dtype')}{record.get('shape')}")
        if _digest(array) != record.get("sha256"):
            raise CheckpointError(f"{path}: array {name!r} does not match its SHA-256 (file modified or corrupt)")
    return header, contents


def _build_model(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray], backend: Backend) -> Sequential:
    if backend.dtype.name != header["dtype"]:
        raise CheckpointError(f"{path}: saved as {header['dtype']}, but the backend is {backend.dtype.name}")
    try:
        model = Sequential.from_config(header["model"], backend)
        states = header["layer_state"]
        if len(states) != len(model.layers):
            raise ValueError(f"{len(states)} layer states for {len(model.layers)} layers")
        for layer, state in zip(model.layers, states):
            layer.load_state_dict(state)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: the architecture in the header is invalid: {exc}") from exc
    params = model.parameters()
    expected = {f"param/{p.name}" for p in params}
    found = {name for name in arrays if name.startswith("param/")}
    if expected != found:
        raise CheckpointError(f"{path}: parameters {sorted(found)} do not match the architecture's {sorted(expected)}")
    for p in params:
        saved = arrays[f"param/{p.name}"]
        if saved.shape != tuple(p.value.shape):
            raise CheckpointError(f"{path}: parameter {p.name!r} has shape {saved.shape}, the architecture "
                                  f"needs {tuple(p.value.shape)}")
        if not np.isfinite(saved).all():
            raise CheckpointError(f"{path}: parameter {p.name!r} holds NaN or infinite values")
        p.value[...] = backend.asarray(saved)
    return model


def load_model(path: str | os.PathLike, backend: Backend | None = None) -> Sequential:
    """The model saved at `path`, ready for predict(); the NumPy backend unless one is given.

    The checkpoint's free-form `meta` (e.g. the training data's standardization) is model.meta.
    """
    header, arrays = read_checkpoint(path)
    backend = backend or get_backend("numpy", dtype=header["dtype"])
    model = _build_model(Path(path), header, arrays, backend)
    model.meta = header.get("meta", {})
    return model


def load_training_state(path: str | os.PathLike, backend: Backend | None = None
                        ) -> tuple[Sequential, SGD | None, dict[str, Any]]:
    """(model, optimizer, meta) with velocities, step counters and the backend's RNG state restored."""
    path = Path(path)
    header, arrays = read_checkpoint(path)
    backend = backend or get_backend("numpy", dtype=header["dtype"])
    model = _build_model(path, header, arrays, backend)
    try:
        backend.rng.bit_generator.state = header["rng_state"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid RNG state in the header: {exc}") from exc
    meta = header.get("meta", {})
    if header.get("optimizer") is None:
        return model, None, meta
    try:
        optimizer = SGD.from_config(header["optimizer"]["config"], model)
        velocity = {name[len("velocity/"):]: a for name, a in arrays.items() if name.startswith("velocity/")}
        optimizer.load_state(header["optimizer"]["step"], velocity)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid optimizer state: {exc}") from exc
    return model, optimizer, meta

"""Checkpoints: one .npz holding the model's arrays, the optimizer's state and a JSON header.

Arrays: "param/<name>" and "buffer/<name>" (model.state_arrays(): weights, and non-parameter
state such as dropout step counters or running statistics) and "optimizer/<slot>/<name>" (e.g.
SGD's velocity, Adam's m and v). The header records the format and its version, the
architecture (the model's config, children nested), the optimizer's settings and step, and the
shape, dtype and SHA-256 of every array. Version 1 files (dropout steps in the header) still load. Files are written atomically (a temporary file
in the same folder, fsynced, then renamed) and read with allow_pickle=False; anything missing,
extra, malformed or modified gives a CheckpointError naming the file and the problem. Loading a
model for inference needs NumPy only.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .backends import get_backend
from .backends.base import SUPPORTED_DTYPES, Backend
from .files import write_atomically
from .model import Sequential
from .optim import Optimizer, optimizer_from_config

FORMAT = "minisnn-checkpoint"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
HEADER_KEY = "header.json"


class CheckpointError(ValueError):
    """A checkpoint file is missing, malformed, tampered with, or does not match the model."""


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def save_checkpoint(path: str | os.PathLike, model: Sequential, optimizer: Optimizer | None = None,
                    meta: dict[str, Any] | None = None) -> Path:
    """Write model (+ optimizer) to `path` (.npz) atomically; returns the path."""
    path = Path(path)
    be = model.backend
    arrays = model.state_arrays()
    if optimizer is not None:
        arrays.update({f"optimizer/{name}": a for name, a in optimizer.state_arrays().items()})
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "minisnn_version": __version__,
        "dtype": be.dtype.name,
        "model": model.config(),
        "optimizer": None if optimizer is None else {"config": optimizer.config(), "step": optimizer.step_count},
        "meta": meta or {},
        "arrays": {name: {"shape": list(a.shape), "dtype": a.dtype.name, "sha256": _digest(a)}
                   for name, a in arrays.items()},
    }
    payload = dict(arrays)
    payload[HEADER_KEY] = np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    return write_atomically(path, lambda handle: np.savez(handle, **payload))


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
    if header.get("format_version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{path}: format version {header.get('format_version')!r} is not supported "
                              f"(this minisnn reads versions {READABLE_VERSIONS})")
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


def _upgrade_version_1(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Version 1 kept dropout step counters in the header and velocities as "velocity/<name>"."""
    arrays = {(f"optimizer/{name}" if name.startswith("velocity/") else name): a for name, a in arrays.items()}
    states = header.get("layer_state")
    if not isinstance(states, list):
        raise ValueError("a version 1 header needs a layer_state list")
    for index, state in enumerate(states):
        if not isinstance(state, dict) or set(state) - {"step"}:
            raise ValueError(f"layer_state[{index}] must be {{}} or {{'step': n}}, got {state!r}")
        if "step" in state:
            arrays[f"buffer/{index}.step"] = np.asarray(state["step"], dtype=np.int64)
    return arrays


def _read_current(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """read_checkpoint, with a version 1 file's arrays renamed as version 2 stores them."""
    header, arrays = read_checkpoint(path)
    if header["format_version"] == 1:
        try:
            arrays = _upgrade_version_1(header, arrays)
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from exc
    return header, arrays


def _build_model(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray], backend: Backend) -> Sequential:
    if backend.dtype.name != header["dtype"]:
        raise CheckpointError(f"{path}: saved as {header['dtype']}, but the backend is {backend.dtype.name}")
    try:
        model = Sequential.from_config(header["model"], backend)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: the architecture in the header is invalid: {exc}") from exc
    model_arrays = {name: a for name, a in arrays.items() if name.startswith(("param/", "buffer/"))}
    try:
        model.load_state_arrays(model_arrays)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    return model


def load_model(path: str | os.PathLike, backend: Backend | None = None) -> Sequential:
    """The model saved at `path`, ready for predict(); the NumPy backend unless one is given.

    The checkpoint's free-form `meta` (e.g. the training data's standardization) is model.meta.
    """
    header, arrays = _read_current(Path(path))
    backend = backend or get_backend("numpy", dtype=header["dtype"])
    model = _build_model(Path(path), header, arrays, backend)
    model.meta = header.get("meta", {})
    return model


def load_training_state(path: str | os.PathLike, backend: Backend | None = None
                        ) -> tuple[Sequential, Optimizer | None, dict[str, Any]]:
    """(model, optimizer, meta) with the optimizer's state, its step and the model's buffers restored."""
    path = Path(path)
    header, arrays = _read_current(path)
    backend = backend or get_backend("numpy", dtype=header["dtype"])
    model = _build_model(path, header, arrays, backend)
    meta = header.get("meta", {})
    if header.get("optimizer") is None:
        return model, None, meta
    try:
        optimizer = optimizer_from_config(header["optimizer"]["config"], model)
        state = {name[len("optimizer/"):]: a for name, a in arrays.items() if name.startswith("optimizer/")}
        optimizer.load_state(header["optimizer"]["step"], state)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid optimizer state: {exc}") from exc
    return model, optimizer, meta

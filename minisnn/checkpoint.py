"""Checkpoints: one .npz holding the model's arrays, the optimizer's state and a JSON header.

Arrays: "param/<name>" and "buffer/<name>" (model.state_arrays(): weights, and non-parameter
state such as dropout step counters or running statistics) and "optimizer/<slot>/<name>" (e.g.
SGD's velocity, Adam's m and v). The header records the format and its version, the
architecture (the model's config, children nested), the optimizer's settings and step, free-form
meta, and the shape, dtype and SHA-256 of every array; since format version 3 the header also
holds the SHA-256 of itself, so that any change of header or arrays is detected. Every field is
checked for type and range, every size against the file before anything is allocated (see
minisnn.npz_archive), and the model and optimizer are rebuilt and compared with the records.
Versions 1 and 2 still load: their arrays are verified by hash, their header only by those
checks (docs/CHECKPOINTS.md). Files are written atomically and read without pickle; anything
missing, extra, malformed or modified gives a CheckpointError naming the file and the problem.
Loading a model for inference needs NumPy only.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .backends import get_backend
from .backends.base import Backend
from .checkpoint_header import (
    FORMAT,
    FORMAT_VERSION,
    READABLE_VERSIONS,
    canonical_bytes,
    check_implied_size,
    check_meta,
    check_numbers,
    check_round_trip,
    check_structure,
    header_hash,
    parse_header,
)
from .files import write_atomically
from .model import Sequential
from .npz_archive import NpzArchive
from .optim import Optimizer, optimizer_from_config

HEADER_KEY = "header.json"
MAX_HEADER_BYTES = 64 << 20  # a header of 64 MiB is far beyond any model's (standardizers included)

__all__ = ["CheckpointError", "UnhashedHeaderWarning", "save_checkpoint", "read_checkpoint", "load_model",
           "load_training_state",
           "FORMAT", "FORMAT_VERSION", "READABLE_VERSIONS", "HEADER_KEY"]


class CheckpointError(ValueError):
    """A checkpoint file is missing, malformed, tampered with, or does not match the model."""


class UnhashedHeaderWarning(UserWarning):
    """A checkpoint of format version 1 or 2 was loaded: its header carries no checksum."""


def _describe(exc: Exception) -> str:
    """A ValueError's message; other exceptions (a layer's constructor given odd values) with their type."""
    return str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"


def _digest(array: np.ndarray) -> str:
    """SHA-256 of the array's bytes in C order (hashed in place, without a copy)."""
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def save_checkpoint(path: str | os.PathLike, model: Sequential, optimizer: Optimizer | None = None,
                    meta: dict[str, Any] | None = None) -> Path:
    """Write model (+ optimizer, + JSON-able meta) to `path` (.npz) atomically; returns the path."""
    path = Path(path)
    arrays = model.state_arrays()
    if optimizer is not None:
        arrays.update({f"optimizer/{name}": a for name, a in optimizer.state_arrays().items()})
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "minisnn_version": __version__,
        "dtype": model.backend.dtype.name,
        "model": model.config(),
        "optimizer": None if optimizer is None else {"config": optimizer.config(), "step": optimizer.step_count},
        "meta": meta or {},
        "arrays": {name: {"shape": list(a.shape), "dtype": a.dtype.name, "sha256": _digest(a)}
                   for name, a in arrays.items()},
    }
    try:
        header["header_sha256"] = header_hash(header)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot save a checkpoint to {path}: meta must be JSON-able ({exc})") from None
    payload = dict(arrays)
    payload[HEADER_KEY] = np.frombuffer(canonical_bytes(header), dtype=np.uint8)
    return write_atomically(path, lambda handle: np.savez(handle, **payload))


def _read_header(archive: NpzArchive) -> dict[str, Any]:
    if HEADER_KEY not in archive.members:
        raise ValueError(f"no {HEADER_KEY} record; not a minisnn checkpoint")
    declared = archive.array_header(HEADER_KEY)
    if declared.dtype.name != "uint8" or len(declared.shape) != 1:
        raise ValueError(f"{HEADER_KEY} must be a 1-d uint8 array, got {declared.dtype.name}{list(declared.shape)}")
    if declared.nbytes > MAX_HEADER_BYTES:
        raise ValueError(f"{HEADER_KEY} declares {declared.nbytes:,} bytes, more than the {MAX_HEADER_BYTES:,} "
                         f"a header may have")
    return parse_header(archive.read(HEADER_KEY, declared.shape, "uint8").tobytes())


def _read_checked(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, arrays), every size checked before its allocation and every array against its record."""
    if not path.is_file():
        raise ValueError("no such checkpoint file" if not path.exists() else "not a file")
    with NpzArchive(path) as archive:
        header = _read_header(archive)
        check_structure(header)
        records = header["arrays"]
        names = set(archive.members) - {HEADER_KEY}
        if names != set(records):
            raise ValueError(f"arrays do not match the header (missing {sorted(set(records) - names)}, "
                             f"unexpected {sorted(names - set(records))})")
        for name, record in records.items():  # the .npy headers: no data read yet
            declared = archive.array_header(name)
            if list(declared.shape) != record["shape"] or declared.dtype.name != record["dtype"]:
                raise ValueError(f"array {name!r} is {declared.dtype.name}{list(declared.shape)}, the header says "
                                 f"{record['dtype']}{record['shape']}")
        check_numbers(header["model"], "model")
        check_implied_size(header["model"], sum(int(np.prod(r["shape"], dtype=object)) for name, r in records.items()
                                                if name.startswith(("param/", "buffer/"))))
        arrays = {}
        for name, record in records.items():
            arrays[name] = archive.read(name, tuple(record["shape"]), record["dtype"])
            if _digest(arrays[name]) != record["sha256"]:
                raise ValueError(f"array {name!r} does not match its SHA-256 (file modified or corrupt)")
    return header, arrays


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, arrays) of a checkpoint: the archive, the header's fields and every array's hash checked."""
    path = Path(path)
    try:
        return _read_checked(path)
    except ValueError as exc:  # ArchiveError included
        raise CheckpointError(f"{path}: {exc}") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc.strerror or exc})") from None


def _upgrade_version_1(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Version 1 kept dropout step counters in the header and velocities as "velocity/<name>"."""
    arrays = {(f"optimizer/{name}" if name.startswith("velocity/") else name): a for name, a in arrays.items()}
    states = header.get("layer_state")
    if not isinstance(states, list):
        raise ValueError("a version 1 header needs a layer_state list")
    for index, state in enumerate(states):
        if not isinstance(state, dict) or set(state) - {"step"}:
            raise ValueError(f"layer_state[{index}] must be {{}} or {{'step': n}}, got {state!r:.100}")
        if "step" in state:
            step = state["step"]
            if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < 2**63:
                raise ValueError(f"layer_state[{index}].step must be an integer in [0, 2^63), got {step!r:.100}")
            arrays[f"buffer/{index}.step"] = np.asarray(step, dtype=np.int64)
    return arrays


def _build_model(header: dict[str, Any], arrays: dict[str, np.ndarray], backend: Backend) -> Sequential:
    if backend.dtype.name != header["dtype"]:
        raise ValueError(f"saved as {header['dtype']}, but the backend is {backend.dtype.name}")
    try:
        model = Sequential.from_config(header["model"], backend)
    except (ValueError, KeyError, TypeError, ArithmeticError, AttributeError, IndexError) as exc:
        raise ValueError(f"the architecture in the header is invalid: {_describe(exc)}") from None
    check_round_trip(header["model"], model.config(), "model")
    dtypes = {f"param/{p.name}": np.dtype(p.value.dtype) for p in model.named_parameters()}
    dtypes.update({f"buffer/{name}": np.dtype(b.dtype) for name, b in model.named_buffers()})
    saved = {name: a for name, a in arrays.items() if name.startswith(("param/", "buffer/"))}
    for name in sorted(set(dtypes) & set(saved)):
        if saved[name].dtype != dtypes[name]:
            raise ValueError(f"array {name!r} is {saved[name].dtype.name}, the model's is {dtypes[name].name}")
        if saved[name].dtype.kind == "f" and not np.isfinite(saved[name]).all():
            raise ValueError(f"array {name!r} holds NaN or infinite values")
    model.load_state_arrays(saved)
    return model


class _NoParameters:
    """Stands in for a model when an optimizer's config is checked without allocating its state."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def named_parameters(self) -> list:
        return []


def _check_optimizer(header: dict[str, Any], arrays: dict[str, np.ndarray], model: Sequential) -> None:
    """The optimizer's config (round trip through config()) and state arrays (names, shapes, dtype,
    finite), checked without allocating the optimizer's own state."""
    record = header.get("optimizer")
    state = {name[len("optimizer/"):]: a for name, a in arrays.items() if name.startswith("optimizer/")}
    if record is None:
        if state:
            raise ValueError(f"optimizer state arrays {sorted(state)} but no optimizer in the header")
        return
    try:
        probe = optimizer_from_config(record["config"], _NoParameters(model.backend))
    except (ValueError, KeyError, TypeError, ArithmeticError, AttributeError, IndexError) as exc:
        raise ValueError(f"invalid optimizer config: {_describe(exc)}") from None
    check_round_trip(record["config"], probe.config(), "optimizer.config")
    expected = {f"{slot}/{p.name}": tuple(p.value.shape) for slot in probe.state for p in model.named_parameters()}
    if set(state) != set(expected):
        raise ValueError(f"optimizer state arrays do not match the optimizer's (missing "
                         f"{sorted(set(expected) - set(state))}, unexpected {sorted(set(state) - set(expected))})")
    for name, array in state.items():
        if array.shape != expected[name] or array.dtype != model.backend.dtype or not np.isfinite(array).all():
            raise ValueError(f"optimizer state {name!r} must hold finite {model.backend.dtype.name} values of shape "
                             f"{expected[name]}, got {array.dtype.name}{list(array.shape)}")


def _build_optimizer(header: dict[str, Any], arrays: dict[str, np.ndarray], model: Sequential) -> Optimizer | None:
    """The optimizer of a checked header (_check_optimizer) with its state and step restored."""
    if header.get("optimizer") is None:
        return None
    record = header["optimizer"]
    optimizer = optimizer_from_config(record["config"], model)
    state = {name[len("optimizer/"):]: a for name, a in arrays.items() if name.startswith("optimizer/")}
    optimizer.load_state(record["step"], state)
    return optimizer


def _load(path: Path, backend: Backend | None, with_optimizer: bool
          ) -> tuple[Sequential, Optimizer | None, dict[str, Any], int]:
    """(model, optimizer or None, meta, format version), everything checked either way."""
    header, arrays = read_checkpoint(path)
    try:
        if header["format_version"] == 1:
            arrays = _upgrade_version_1(header, arrays)
        stray = sorted(name for name in arrays if not name.startswith(("param/", "buffer/", "optimizer/")))
        if stray:
            raise ValueError(f"arrays {stray} are neither param/, buffer/ nor optimizer/ state")
        backend = backend or get_backend("numpy", dtype=header["dtype"])
        model = _build_model(header, arrays, backend)
        _check_optimizer(header, arrays, model)
        optimizer = _build_optimizer(header, arrays, model) if with_optimizer else None
        meta = header.get("meta", {})
        check_meta(meta, model.n_inputs, model.n_outputs)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    model.meta = meta
    return model, optimizer, meta, header["format_version"]


def _warn_if_unhashed(path: Path, version: int) -> None:
    if version < 3:
        warnings.warn(f"{path}: format version {version} has no header checksum: its arrays are verified by "
                      f"SHA-256, its header only by type, range and consistency checks; save it again to write "
                      f"version {FORMAT_VERSION}", UnhashedHeaderWarning, stacklevel=3)


def load_training_state(path: str | os.PathLike, backend: Backend | None = None
                        ) -> tuple[Sequential, Optimizer | None, dict[str, Any]]:
    """(model, optimizer, meta) with the optimizer's state, its step and the model's buffers restored.

    model.meta is meta too. The NumPy backend of the saved dtype unless one is given.
    """
    model, optimizer, meta, version = _load(Path(path), backend, with_optimizer=True)
    _warn_if_unhashed(Path(path), version)
    return model, optimizer, meta


def load_model(path: str | os.PathLike, backend: Backend | None = None) -> Sequential:
    """The model saved at `path`, ready for predict(); the NumPy backend unless one is given.

    The whole checkpoint is checked (the optimizer's config and state too, without building the
    optimizer). The checkpoint's free-form `meta`
    (e.g. the training data's standardization) is model.meta.
    """
    model, _, _, version = _load(Path(path), backend, with_optimizer=False)
    _warn_if_unhashed(Path(path), version)
    return model

"""The JSON header of a checkpoint: its canonical bytes, its hash, and the type and range of every field.

Every check raises ValueError with a message naming the field ("model.layers[2].alpha") and the
problem; minisnn.checkpoint adds the file name. Layer configs are checked generically (numbers
finite, integers non-negative, no more implied array elements than the file declares, and the
rebuilt layer's config() giving back every saved value with its JSON type), never by a list of
layer types, so layers added later are covered.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from typing import Any

from .backends.base import SUPPORTED_DTYPES
from .npz_archive import ARRAY_DTYPES

FORMAT = "minisnn-checkpoint"
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
HASH_KEY = "header_sha256"
# Top-level keys: always present, and the extra ones each version may hold.
REQUIRED_KEYS = {"format", "format_version", "dtype", "model", "arrays"}
OPTIONAL_KEYS = {1: {"minisnn_version", "optimizer", "meta", "layer_state", "rng_state"},
                 2: {"minisnn_version", "optimizer", "meta"},
                 3: {"minisnn_version", "optimizer", "meta", HASH_KEY}}
# Array elements a model config may imply beyond twice those the file holds (layers without arrays).
IMPLIED_ELEMENTS_SLACK = 1 << 20
MAX_NDIM = 32
MAX_DEPTH = 64  # nesting of JSON lists and objects (layers inside layers inside ...)
_SHA256 = re.compile(r"[0-9a-f]{64}")


def canonical_bytes(header: dict[str, Any]) -> bytes:
    """The bytes a header is stored as (and hashed as, without its hash)."""
    return json.dumps(header, sort_keys=True).encode("utf-8")


def header_hash(header: dict[str, Any]) -> str:
    """SHA-256 of the header without its own hash; it covers the arrays through their SHA-256 records."""
    return hashlib.sha256(canonical_bytes({k: v for k, v in header.items() if k != HASH_KEY})).hexdigest()


def parse_header(data: bytes) -> dict[str, Any]:
    """The header's JSON object; duplicate keys and deep nesting are errors."""
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"the header repeats the key(s) {duplicates!r:.200}")
        return dict(pairs)

    try:
        header = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates)
    except UnicodeDecodeError as exc:
        raise ValueError(f"the header is not UTF-8 text ({exc})") from None
    except RecursionError:
        raise ValueError("the header's JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more digits than Python converts
        raise ValueError(f"the header is not valid JSON ({str(exc)[:160]})") from None
    if not isinstance(header, dict):
        raise ValueError(f"the header must be a JSON object, got {type(header).__name__}")
    if _depth(header) > MAX_DEPTH:
        raise ValueError(f"the header's JSON is nested more than {MAX_DEPTH} levels deep")
    return header


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in a JSON value (without recursion)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_structure(header: dict[str, Any]) -> None:
    """Format, version (and with it the header's hash), dtype, the keys and the array records."""
    if header.get("format") != FORMAT:
        raise ValueError(f"header format is {header.get('format')!r:.100}, expected {FORMAT!r}; "
                         f"not a minisnn checkpoint")
    version = header.get("format_version")
    if not _is_int(version) or version not in READABLE_VERSIONS:
        raise ValueError(f"format version {version!r:.100} is not supported (this minisnn reads versions "
                         f"{READABLE_VERSIONS})")
    missing = sorted(REQUIRED_KEYS - set(header))
    extra = sorted(set(header) - REQUIRED_KEYS - OPTIONAL_KEYS[version])
    if missing or extra:
        raise ValueError(f"the header's keys are wrong for format version {version}: missing {missing}, "
                         f"unexpected {extra!r:.200}")
    if version >= 3:
        if not isinstance(header.get(HASH_KEY), str):
            raise ValueError(f"a version {version} header needs its {HASH_KEY}")
        if header[HASH_KEY] != header_hash(header):
            raise ValueError(f"the header does not match its {HASH_KEY} (file modified or corrupt)")
    if header["dtype"] not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype {header['dtype']!r:.100} is not one of {SUPPORTED_DTYPES}")
    if "minisnn_version" in header and not isinstance(header["minisnn_version"], str):
        raise ValueError(f"minisnn_version must be a string, got {header['minisnn_version']!r:.100}")
    for key in ("model", "meta"):
        if key in header and not isinstance(header[key], dict):
            raise ValueError(f"{key} must be a JSON object, got {type(header[key]).__name__}")
    optimizer = header.get("optimizer")
    if optimizer is not None:
        if not isinstance(optimizer, dict) or set(optimizer) != {"config", "step"}:
            raise ValueError(f"optimizer must be null or {{'config': {{...}}, 'step': n}}, got {optimizer!r:.200}")
        if not isinstance(optimizer["config"], dict):
            raise ValueError(f"optimizer.config must be a JSON object, got {type(optimizer['config']).__name__}")
        if not _is_int(optimizer["step"]) or optimizer["step"] < 0:
            raise ValueError(f"optimizer.step must be a non-negative integer, got {optimizer['step']!r:.100}")
        check_numbers(optimizer["config"], "optimizer.config")
    check_array_records(header["arrays"])


def check_array_records(records: Any) -> None:
    """records: name -> {"shape": [n, ...], "dtype": name, "sha256": hex}."""
    if not isinstance(records, dict):
        raise ValueError(f"arrays must be a JSON object of records, got {type(records).__name__}")
    for name, record in records.items():
        where = f"arrays[{name!r:.100}]"
        if not isinstance(record, dict) or set(record) != {"shape", "dtype", "sha256"}:
            raise ValueError(f"{where} must be {{'shape', 'dtype', 'sha256'}}, got {record!r:.200}")
        shape = record["shape"]
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(_is_int(n) and n >= 0 for n in shape)):
            raise ValueError(f"{where}.shape must be a list of at most {MAX_NDIM} non-negative integers, "
                             f"got {shape!r:.200}")
        if record["dtype"] not in ARRAY_DTYPES:
            raise ValueError(f"{where}.dtype {record['dtype']!r:.100} is not one of {ARRAY_DTYPES}")
        if not isinstance(record["sha256"], str) or not _SHA256.fullmatch(record["sha256"]):
            raise ValueError(f"{where}.sha256 must be 64 lowercase hex digits, got {record['sha256']!r:.100}")


def check_numbers(value: Any, where: str) -> None:
    """Every float in a config finite and every integer non-negative (sizes, seeds, counts)."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_numbers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_numbers(item, f"{where}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where[:200]} is {value}; it must be finite")
    elif _is_int(value) and value < 0:
        raise ValueError(f"{where[:200]} is {str(value)[:50]}; integers in a config must be non-negative")


def implied_elements(config: Any) -> int:
    """An upper estimate of the array elements a model config makes its layers allocate.

    Per layer config (a dict with "type"): the product of its two largest size integers (keys
    other than seeds), e.g. d_in * d_out; nested layer configs count on their own.
    """
    if isinstance(config, list):
        return sum(implied_elements(item) for item in config)
    if not isinstance(config, dict):
        return 0
    sizes, nested = [], 0
    for key, value in config.items():
        if isinstance(value, (dict, list)):
            nested += implied_elements(value)
            sizes += _sizes_in(value)
        elif _is_int(value) and "seed" not in key:
            sizes.append(value)
    if "type" not in config:
        return nested
    return nested + (math.prod(sorted(sizes)[-2:]) if sizes else 0)


def _sizes_in(value: Any) -> list[int]:
    """Integers in plain (non-layer) lists and objects, e.g. a list of widths."""
    if isinstance(value, list):
        return [n for item in value for n in _sizes_in(item)]
    if isinstance(value, dict) and "type" not in value:
        return [n for key, item in value.items() if "seed" not in key for n in _sizes_in(item)]
    return [value] if _is_int(value) else []


def check_implied_size(model_config: dict[str, Any], declared_elements: int) -> None:
    """Refuse a config that would allocate far more than the arrays the file declares (before building it).

    A model's estimate is at most its arrays' elements plus its n_inputs (counted on its own, and
    again in the first layer's weight), so twice the declared elements plus a slack always suffice.
    """
    implied = implied_elements(model_config)
    if implied > 2 * declared_elements + IMPLIED_ELEMENTS_SLACK:
        raise ValueError(f"the model config implies about {implied:,} array elements, but the file holds "
                         f"{declared_elements:,}; sizes in the header are wrong")


def check_round_trip(saved: Any, rebuilt: Any, where: str) -> None:
    """Every saved value comes back from the rebuilt object's config() with the same JSON type and value.

    Keys the rebuilt config adds (defaults of options newer than the file) are allowed.
    """
    if isinstance(saved, dict) and isinstance(rebuilt, dict):
        for key, value in saved.items():
            if key not in rebuilt:
                raise ValueError(f"{where}.{key[:100]} is {json.dumps(value)[:100]} in the file, but the rebuilt "
                                 f"object's config() does not record it")
            check_round_trip(value, rebuilt[key], f"{where}.{key}")
    elif isinstance(saved, list) and isinstance(rebuilt, list) and len(saved) == len(rebuilt):
        for index, (a, b) in enumerate(zip(saved, rebuilt)):
            check_round_trip(a, b, f"{where}[{index}]")
    elif json.dumps(saved) != json.dumps(rebuilt):
        raise ValueError(f"{where[:200]} is {json.dumps(saved)[:100]} in the file, but builds as "
                         f"{json.dumps(rebuilt)[:100]}")


def _check_fraction(meta: dict[str, Any], key: str) -> None:
    value = meta[key]
    if not _is_number(value) or not 0 <= value < 1:
        raise ValueError(f"meta.{key} must be a fraction in [0, 1), got {value!r:.100}")


def _check_count(meta: dict[str, Any], key: str, allow_none: bool = False) -> None:
    value = meta[key]
    if not (_is_int(value) and value >= 0) and not (allow_none and value is None):
        raise ValueError(f"meta.{key} must be a non-negative integer{' or null' if allow_none else ''}, "
                         f"got {value!r:.100}")


def _check_standardizer(standardizer: Any, n_inputs: int) -> None:
    if not isinstance(standardizer, dict) or set(standardizer) != {"mean", "scale"}:
        raise ValueError(f"meta.standardizer must be {{'mean': [...], 'scale': [...]}}, got {standardizer!r:.100}")
    for key in ("mean", "scale"):
        values = standardizer[key]
        if not isinstance(values, list) or len(values) != n_inputs:
            size = len(values) if isinstance(values, list) else type(values).__name__
            raise ValueError(f"meta.standardizer.{key} must be a list of {n_inputs} numbers (the model's inputs), "
                             f"got {size}")
        for index, value in enumerate(values):
            if not _is_number(value) or not math.isfinite(value) or (key == "scale" and not value > 0):
                need = "a positive finite number" if key == "scale" else "a finite number"
                raise ValueError(f"meta.standardizer.{key}[{index}] is {value!r:.100}; it must be {need}")


def _check_class_labels(labels: Any, n_outputs: int) -> None:
    if not isinstance(labels, list) or len(labels) != n_outputs:
        size = len(labels) if isinstance(labels, list) else type(labels).__name__
        raise ValueError(f"meta.class_labels must be a list of {n_outputs} labels (the model's outputs), got {size}")
    for index, label in enumerate(labels):
        if not (isinstance(label, str) or _is_int(label) or (isinstance(label, float) and math.isfinite(label))):
            raise ValueError(f"meta.class_labels[{index}] is {label!r:.100}; labels are strings, integers or "
                             f"finite numbers")
    repeated = [label for label, count in Counter(labels).items() if count > 1]  # 1 and 1.0 are one label
    if repeated:
        raise ValueError(f"meta.class_labels repeats {repeated[0]!r:.100}")


def check_meta(meta: dict[str, Any], n_inputs: int, n_outputs: int) -> None:
    """The meta fields minisnn writes, checked against the model; other keys are the user's own."""
    from .tasks import task_from_config

    if "data" in meta and not isinstance(meta["data"], str):
        raise ValueError(f"meta.data must be a data set name, got {meta['data']!r:.100}")
    for key in ("holdout", "validation"):
        if key in meta:
            _check_fraction(meta, key)
    for key in ("seed", "epochs_done"):
        if key in meta:
            _check_count(meta, key)
    if "best_epoch" in meta:
        _check_count(meta, "best_epoch", allow_none=True)
    if "standardizer" in meta:
        _check_standardizer(meta["standardizer"], n_inputs)
    if "class_labels" in meta:
        _check_class_labels(meta["class_labels"], n_outputs)
    if "task" in meta:
        config = meta["task"]
        if not isinstance(config, dict):
            raise ValueError(f"meta.task must be a JSON object, got {config!r:.100}")
        check_numbers(config, "meta.task")
        try:
            task = task_from_config(config)
        except (ValueError, KeyError, TypeError, ArithmeticError, AttributeError, IndexError) as exc:
            raise ValueError(f"meta.task is invalid: {type(exc).__name__}: {str(exc)[:200]}") from None
        if task.n_outputs is not None and (not _is_int(task.n_outputs) or task.n_outputs != n_outputs):
            raise ValueError(f"meta.task needs {task.n_outputs!r:.50} model outputs (an integer), the model has "
                             f"{n_outputs}")
        check_round_trip(config, task.config(), "meta.task")

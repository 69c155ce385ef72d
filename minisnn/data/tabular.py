"""Generic tables: a numeric CSV file or an NPZ archive with a named label column."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from .errors import DataError
from .labeled import LabeledData
from .labels import labels_from_column
from .textfiles import data_line_finder, load_numeric, read_lines, split_header

DEFAULT_LABEL = "label"


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _label_index(path: Path, names: list[str], label_column: str | int | None, has_header: bool) -> int:
    """Position of the label column: by name, by integer position, else "label", else the last column."""
    if label_column is None:
        return names.index(DEFAULT_LABEL) if DEFAULT_LABEL in names else len(names) - 1
    if isinstance(label_column, str) and label_column in names:
        return names.index(label_column)
    try:
        position = int(label_column)
    except ValueError:
        position = None
    if position is not None and -len(names) <= position < len(names):
        return position % len(names)
    available = ", ".join(names) if has_header else f"positions 0..{len(names) - 1} (the file has no header)"
    raise DataError(path, f"no label column {label_column!r}; columns are {available}")


def _n_classes(y: np.ndarray, declared: int | None, path: Path) -> int:
    n_classes = int(y.max()) + 1 if declared is None else int(declared)
    if n_classes < 2:
        raise DataError(path, f"a classification problem needs at least 2 classes, found {n_classes}")
    return n_classes


def read_csv_dataset(
    path: str | os.PathLike, label_column: str | int | None = None, delimiter: str = ","
) -> LabeledData:
    """A numeric CSV file; the label column is named (header) or a position, default "label" or the last.

    A header line is recognised by a first line that is not all numbers. Labels must be whole
    numbers >= 0; n_classes is the largest label + 1. There is no test split.
    """
    path = Path(path)
    lines = read_lines(path)
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise DataError(path, "empty file")
    cells = split_header(first, delimiter)
    has_header = not all(_is_number(cell) for cell in cells)
    names = cells if has_header else [f"column_{i}" for i in range(len(cells))]
    label = _label_index(path, names, label_column, has_header)
    skip = lines.index(first) + 1 if has_header else 0
    table = load_numeric(path, delimiter=delimiter, n_columns=len(names), skip_lines=skip)  # (N, C)
    y = labels_from_column(table[:, label], path, line_of=data_line_finder(path, skip))  # (N,)
    features = [i for i in range(len(names)) if i != label]
    return LabeledData(
        name=path.stem,
        x_train=np.ascontiguousarray(table[:, features]),
        y_train=y,
        n_classes=_n_classes(y, None, path),
        feature_names=[names[i] for i in features] if has_header else None,
        meta={"source": str(path), "official_split": False, "label_column": names[label]},
    )


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(path, f"not a readable NPZ archive ({exc})") from exc


def _features(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    if x.ndim != 2 or x.dtype.kind not in "biuf":
        raise DataError(path, f"array {key!r} must be a 2-D numeric array, got shape {x.shape} dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise DataError(path, f"array {key!r} holds NaN or infinite values")
    return x


def _labels(path: Path, key: str, y: np.ndarray, n_rows: int, n_classes: int | None) -> np.ndarray:
    if y.ndim != 1 or y.shape[0] != n_rows or y.dtype.kind not in "biuf":
        raise DataError(path, f"array {key!r} must be numeric of shape ({n_rows},), got {y.shape} dtype {y.dtype}")
    try:
        return labels_from_column(y, path, n_classes=n_classes)
    except DataError as exc:
        raise DataError(path, f"array {key!r}: {exc.problem}") from None


def read_npz_dataset(path: str | os.PathLike, label_column: str | None = None) -> LabeledData:
    """An NPZ archive in one of two layouts.

    Arrays: "x" (N, D) and "y" (N,), or "x_train"/"y_train" with optional "x_test"/"y_test";
    label_column renames the label array. Columns: 1-D arrays of equal length, one per feature,
    and a label array named label_column (default "label"). Optional "n_classes" and
    "feature_names" arrays override what is inferred.
    """
    path = Path(path)
    arrays = _load_npz(path)
    n_classes = int(arrays.pop("n_classes")) if "n_classes" in arrays else None
    feature_names = [str(name) for name in arrays.pop("feature_names")] if "feature_names" in arrays else None
    x_key = "x_train" if "x_train" in arrays else "x" if "x" in arrays else None
    x_test = y_test = None
    if x_key is not None:
        y_key = label_column or ("y_train" if x_key == "x_train" else "y")
        if y_key not in arrays:
            raise DataError(path, f"has {x_key!r} but no label array {y_key!r}; arrays are {', '.join(arrays)}")
        x = _features(path, x_key, arrays[x_key])
        y = _labels(path, y_key, arrays[y_key], x.shape[0], n_classes)
        if "x_test" in arrays:
            x_test = _features(path, "x_test", arrays["x_test"])
            if "y_test" not in arrays or x_test.shape[1] != x.shape[1]:
                raise DataError(path, f"x_test needs y_test and {x.shape[1]} columns like {x_key!r}")
            y_test = _labels(path, "y_test", arrays["y_test"], x_test.shape[0], n_classes)
    else:
        y_key = label_column or DEFAULT_LABEL
        if y_key not in arrays:
            raise DataError(path, f"no label array {y_key!r}; arrays are {', '.join(arrays) or 'none'}")
        columns = [key for key in arrays if key != y_key]
        if not columns or any(arrays[key].ndim != 1 for key in arrays):
            raise DataError(path, "without 'x'/'x_train', every array must be a 1-D column and one must be features")
        lengths = {key: arrays[key].shape[0] for key in arrays}
        if len(set(lengths.values())) != 1:
            raise DataError(path, f"columns differ in length: {lengths}")
        x = _features(path, "columns", np.stack([arrays[key] for key in columns], axis=1))  # (N, D)
        y = _labels(path, y_key, arrays[y_key], x.shape[0], n_classes)
        feature_names = feature_names or columns
    if feature_names is not None and len(feature_names) != x.shape[1]:
        raise DataError(path, f"feature_names has {len(feature_names)} names for {x.shape[1]} features")
    seen = y if y_test is None else np.concatenate([y, y_test])
    return LabeledData(
        name=path.stem,
        x_train=x,
        y_train=y,
        x_test=x_test,
        y_test=y_test,
        n_classes=_n_classes(seen, n_classes, path),
        feature_names=feature_names,
        meta={"source": str(path), "official_split": x_test is not None, "label_column": y_key},
    )

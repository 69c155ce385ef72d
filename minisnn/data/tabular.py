"""Generic tables: a numeric CSV file or an NPZ archive with a named label column."""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path

import numpy as np

from .errors import DataError
from .labeled import LabeledData
from .labels import check_class_count, labels_from_column, labels_from_text
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


def _n_classes(y: np.ndarray, declared: int | None, path: Path, classes: list | None = None) -> int:
    """The declared class count, else that of the text labels, else the largest label + 1 (at least 2)."""
    inferred = len(classes) if classes is not None else (int(y.max()) + 1 if y.size else 0)
    n_classes = inferred if declared is None else int(declared)
    if n_classes < 2:
        raise DataError(path, f"a classification problem needs at least 2 classes, found {n_classes}")
    return n_classes


def _label_cells(lines: list[str], skip: int, column: int, delimiter: str) -> list[str]:
    """The cells of column `column` of every data row (after `skip` header lines, blank lines left out)."""
    rows = (line for line in lines[skip:] if line.strip())
    return [next(csv.reader([line], delimiter=delimiter))[column] for line in rows]


def _labels_of_cells(cells: list[str], path: Path, n_classes: int | None, class_labels, line_of):
    """(ids (N,), class labels or None) of a CSV label column: numbers, or text mapped to ids."""
    cells = [cell.strip() for cell in cells]
    if class_labels is not None:
        return labels_from_text(cells, path, class_labels, line_of)
    numeric = [_is_number(cell) for cell in cells]
    if all(numeric):
        values = np.array([float(cell) for cell in cells])  # (N,)
        return labels_from_column(values, path, n_classes, line_of, "the model's" if n_classes else ""), None
    empty = next((row for row, cell in enumerate(cells) if not cell), None)
    if empty is not None:
        raise DataError(path, "label '' is missing (an empty cell)", line=line_of(empty))
    if any(numeric):
        text_majority = numeric.count(False) > numeric.count(True)
        odd = numeric.index(text_majority)  # the first label of the minority kind
        kind, others = ("a number", "text") if text_majority else ("text", "numbers")
        raise DataError(path, f"label {cells[odd]!r} is {kind}, but most labels are {others}", line=line_of(odd))
    if n_classes is not None:
        raise DataError(path, f"label {cells[0]!r} is text, but the model's classes are the numbers 0..{n_classes - 1}",
                        line=line_of(0))
    return labels_from_text(cells, path, None, line_of)


def _first_line_columns(path: Path, lines: list[str], delimiter: str) -> tuple[str, list[str], bool]:
    """(first non-empty line, column names, whether that line is a header): a line with a cell
    that is not a number is a header; otherwise columns are named column_0, column_1, ..."""
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise DataError(path, "empty file")
    cells = split_header(first, delimiter)
    has_header = not all(_is_number(cell) for cell in cells)
    return first, cells if has_header else [f"column_{i}" for i in range(len(cells))], has_header


def read_csv_dataset(
    path: str | os.PathLike,
    label_column: str | int | None = None,
    delimiter: str = ",",
    n_classes: int | None = None,
    class_labels: list | None = None,
) -> LabeledData:
    """A CSV file of numeric features and a label column: named (header) or a position, default
    "label" or the last.

    A header line is recognised by a first line that is not all numbers. Labels are whole
    numbers 0..C-1 (C the number of distinct labels, or n_classes when given), or text, mapped
    to 0..C-1 in sorted order (class_labels of the result; pass a model's class_labels to map
    labels as it did). There is no test split. Errors name the file and line.
    """
    path = Path(path)
    lines = read_lines(path)
    first, names, has_header = _first_line_columns(path, lines, delimiter)
    if len(names) < 2:
        raise DataError(path, f"needs a label column and at least one feature column, found {len(names)} column")
    label = _label_index(path, names, label_column, has_header)
    skip = lines.index(first) + 1 if has_header else 0
    features = [i for i in range(len(names)) if i != label]
    x = load_numeric(path, delimiter=delimiter, n_columns=len(names), skip_lines=skip, usecols=tuple(features))  # (N, D)
    line_of = data_line_finder(path, skip)
    y, classes = _labels_of_cells(_label_cells(lines, skip, label, delimiter), path, n_classes, class_labels, line_of)
    return LabeledData(
        name=path.stem,
        x_train=np.ascontiguousarray(x),
        y_train=y,
        n_classes=_n_classes(y, n_classes, path, classes),
        feature_names=[names[i] for i in features] if has_header else None,
        meta={"source": str(path), "official_split": False, "label_column": names[label]},
        class_labels=classes,
        row_origin=lambda split, row: f"{path}, line {line_of(row)}",
    )


def read_csv_features(path: str | os.PathLike, drop_column: str | None = None, delimiter: str = ",",
                      n_features: int | None = None, label_name: str | None = None
                      ) -> tuple[np.ndarray, list[str] | None, object]:
    """An unlabelled CSV file: (features (N, D) float64, column names or None, row -> "FILE, line N").

    drop_column names a column to leave out (a label column the file still has); without it, a
    column named `label_name` is left out when the file has n_features + 1 columns."""
    path = Path(path)
    lines = read_lines(path)
    first, names, has_header = _first_line_columns(path, lines, delimiter)
    keep = list(range(len(names)))
    if drop_column is None and has_header and label_name in names and len(names) == (n_features or 0) + 1:
        drop_column = label_name
    if drop_column is not None:
        keep.remove(_label_index(path, names, drop_column, has_header))
    if not keep:
        raise DataError(path, "has no feature columns")
    skip = lines.index(first) + 1 if has_header else 0
    x = load_numeric(path, delimiter=delimiter, n_columns=len(names), skip_lines=skip, usecols=tuple(keep))  # (N, D)
    line_of = data_line_finder(path, skip)
    return np.ascontiguousarray(x), [names[i] for i in keep] if has_header else None, lambda row: f"{path}, line {line_of(row)}"


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an NPZ archive (read with allow_pickle=False), or DataError naming the file."""
    path = Path(path)
    if path.is_dir():
        raise DataError(path, "is a folder, not an NPZ file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(path, f"not a readable NPZ archive ({exc})") from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(path, f"holds one array {loaded.shape} in .npy format, not an NPZ archive of named arrays; "
                        "write one with np.savez(path, x=features, y=labels)")
    try:
        with loaded as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(path, f"not a readable NPZ archive ({exc})") from exc


def npz_features(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    """x (N, D) as float64, with N, D >= 1 and every value finite."""
    if x.ndim != 2 or x.dtype.kind not in "biuf":
        raise DataError(path, f"array {key!r} must be a 2-D numeric array, got shape {x.shape} dtype {x.dtype}")
    if 0 in x.shape:
        raise DataError(path, f"array {key!r} is empty (shape {x.shape})")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        row, column = map(int, np.argwhere(bad)[0])
        raise DataError(path, f"array {key!r}, row {row}, column {column}: {x[row, column]} is not a finite number "
                        f"({int(bad.sum())} such values)")
    return x


def _labels(path: Path, key: str, y: np.ndarray, n_rows: int, n_classes: int | None, class_labels=None,
            classes_of: str = "") -> tuple[np.ndarray, list[str] | None]:
    """(ids (N,), class labels or None) of a label array: numbers, or text mapped to ids."""
    if y.ndim != 1 or y.shape[0] != n_rows or y.dtype.kind not in "biufUS":
        raise DataError(path, f"array {key!r} must hold {n_rows} labels (shape ({n_rows},), numbers or text), "
                        f"got shape {y.shape} dtype {y.dtype}")
    try:
        if y.dtype.kind in "US" or class_labels is not None:
            cells = [str(v) for v in (y.astype(str) if y.dtype.kind == "S" else y)]
            if n_classes is not None and class_labels is None:
                raise DataError(path, f"labels are text ({cells[0]!r}), but the model's classes are the numbers "
                                f"0..{n_classes - 1}")
            return labels_from_text(cells, path, class_labels)
        return labels_from_column(y, path, n_classes=n_classes, classes_of=classes_of), None
    except DataError as exc:
        raise DataError(path, f"array {key!r}: {exc.problem}") from None


def read_npz_dataset(path: str | os.PathLike, label_column: str | None = None, n_classes: int | None = None,
                     class_labels: list | None = None) -> LabeledData:
    """An NPZ archive in one of two layouts.

    Arrays: "x" (N, D) and "y" (N,), or "x_train"/"y_train" with optional "x_test"/"y_test";
    label_column renames the label array. Columns: 1-D arrays of equal length, one per feature,
    and a label array named label_column (default "label"). An "n_classes" array (a whole
    number) declares the classes; without it they are inferred from the training labels, which
    must then be 0..C-1 (test labels must be among them). Labels may be text (class_labels of
    the result). A "feature_names" array names the features. n_classes and class_labels given
    as arguments (a trained model's) take precedence over the file's.
    """
    path = Path(path)
    arrays = load_npz(path)
    declared = arrays.pop("n_classes", None)
    declared = None if declared is None else check_class_count(declared, path, "array 'n_classes'")
    n_classes = n_classes or declared
    names = arrays.pop("feature_names", None)
    if names is not None and (names.ndim != 1 or names.dtype.kind not in "US"):
        raise DataError(path, f"array 'feature_names' must be a 1-D array of names, got {names.dtype} {names.shape}")
    feature_names = None if names is None else [str(name) for name in names]
    x_key = "x_train" if "x_train" in arrays else "x" if "x" in arrays else None
    x_test = y_test = None
    if x_key is not None:
        y_key = label_column or ("y_train" if x_key == "x_train" else "y")
        if y_key not in arrays:
            raise DataError(path, f"has {x_key!r} but no label array {y_key!r}; arrays are {', '.join(arrays)}")
        x = npz_features(path, x_key, arrays[x_key])
        y, classes = _labels(path, y_key, arrays[y_key], x.shape[0], n_classes, class_labels)
        if ("x_test" in arrays) != ("y_test" in arrays):
            raise DataError(path, "x_test and y_test go together")
        if "x_test" in arrays:
            x_test = npz_features(path, "x_test", arrays["x_test"])
            if x_test.shape[1] != x.shape[1]:
                raise DataError(path, f"x_test has {x_test.shape[1]} columns, {x_key!r} has {x.shape[1]}")
            seen = n_classes or (len(classes) if classes is not None else int(y.max()) + 1)
            y_test, _ = _labels(path, "y_test", arrays["y_test"], x_test.shape[0], seen, classes or class_labels,
                                "" if n_classes else "the training labels'")
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
        x = npz_features(path, "columns", np.stack([arrays[key] for key in columns], axis=1))  # (N, D)
        y, classes = _labels(path, y_key, arrays[y_key], x.shape[0], n_classes, class_labels)
        feature_names = feature_names or columns
    if feature_names is not None and len(feature_names) != x.shape[1]:
        raise DataError(path, f"feature_names has {len(feature_names)} names for {x.shape[1]} features")
    arrays_of = {"train": x_key or "columns", "test": "x_test"}
    return LabeledData(
        name=path.stem,
        x_train=x,
        y_train=y,
        x_test=x_test,
        y_test=y_test,
        n_classes=_n_classes(y, n_classes, path, classes),
        feature_names=feature_names,
        meta={"source": str(path), "official_split": x_test is not None, "label_column": y_key},
        class_labels=classes,
        row_origin=lambda split, row: f"{path}, array {arrays_of[split]!r}, row {row}",
    )

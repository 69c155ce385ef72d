"""Checking and converting class-label columns.

Class ids are 0..C-1. C is declared (a data set's known class count, an NPZ file's n_classes, a
trained model's outputs) or inferred: the number of distinct labels, which must then be exactly
0..C-1, so that a typo (100 among 0, 1, 2) or 1-based labels are errors rather than empty classes.
Text labels ("cat", "dog") are mapped to ids in sorted order; the list of labels by id is kept
(LabeledData.class_labels) so that predictions can be given as the original labels.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

from .errors import DataError

MAX_CLASSES = 100_000  # a declared class count above this is taken for a mistake (and would not fit in memory)


def _raise_at(path, label: str, problem: str, bad: int, line_of: Callable[[int], int] | None):
    """DataError "label L is ...", at the line of row `bad` (text files) or naming it as an item."""
    if line_of is None:
        raise DataError(path, f"label {label} of item {bad} {problem}")
    raise DataError(path, f"label {label} {problem}", line=line_of(bad))


def check_class_count(value, path: str | os.PathLike, what: str = "n_classes") -> int:
    """A declared class count as an int: a whole number in [2, MAX_CLASSES], else DataError."""
    array = np.asarray(value)
    if array.ndim != 0 or array.dtype.kind not in "iuf":
        raise DataError(path, f"{what} must be one whole number, got {array.dtype} of shape {array.shape}")
    number = float(array)
    if not np.isfinite(number) or number != round(number):
        raise DataError(path, f"{what} must be a whole number, got {number:g}")
    if not 2 <= number <= MAX_CLASSES:
        raise DataError(path, f"{what} must lie in [2, {MAX_CLASSES}], got {number:g}")
    return int(number)


def labels_from_column(
    values: np.ndarray,
    path: str | os.PathLike,
    n_classes: int | None = None,
    line_of: Callable[[int], int] | None = None,
    classes_of: str = "",
) -> np.ndarray:
    """A numeric label column (N,) as int64 labels in [0, n_classes).

    Each label must be a whole number >= 0 and, when n_classes is given, below it; without
    n_classes, the labels must be exactly 0..C-1 for the C distinct values they take. The error
    names the first bad label and its line (line_of(row), for text files) or item number.
    `classes_of` says where a declared class set comes from ("the model's", "the training").
    """
    values = np.asarray(values, dtype=np.float64)  # (N,)
    valid = np.isfinite(values) & (values == np.round(values)) & (values >= 0)
    if n_classes is not None:
        valid &= values < n_classes
    if not valid.all():
        bad = int(np.flatnonzero(~valid)[0])
        allowed = ("a whole number >= 0" if n_classes is None
                   else f"one of {classes_of or 'the'} classes 0..{n_classes - 1}")
        _raise_at(path, f"{values[bad]:g}", f"is not {allowed}", bad, line_of)
    if n_classes is None and values.size:
        distinct = np.unique(values)
        count = distinct.size
        if distinct[-1] >= count:
            bad = int(np.flatnonzero(values >= count)[0])
            shown = ", ".join(f"{v:g}" for v in distinct[:6]) + (", ..." if count > 6 else "")
            _raise_at(path, f"{values[bad]:g}", f"is not one of the classes 0..{count - 1}: the labels take {count} "
                      f"distinct values ({shown}), so they must be 0..{count - 1} (a typo? 1-based labels?)",
                      bad, line_of)
    return values.astype(np.int64)


def labels_from_text(
    cells: Sequence[str],
    path: str | os.PathLike,
    class_labels: Sequence | None = None,
    line_of: Callable[[int], int] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Text labels (N,) as (int64 ids (N,), the label of each id).

    With class_labels (a trained model's), every label must be one of them; otherwise the
    classes are the distinct labels in sorted order. An empty label is an error.
    """
    cells = [cell.strip() for cell in cells]
    empty = next((row for row, cell in enumerate(cells) if not cell), None)
    if empty is not None:
        _raise_at(path, "''", "is missing (an empty cell)", empty, line_of)
    classes = sorted(set(cells)) if class_labels is None else [str(label) for label in class_labels]
    index = {label: i for i, label in enumerate(classes)}
    unknown = next((row for row, cell in enumerate(cells) if cell not in index), None)
    if unknown is not None:
        shown = ", ".join(repr(c) for c in classes[:6]) + (", ..." if len(classes) > 6 else "")
        _raise_at(path, repr(cells[unknown]), f"is not one of the classes {shown}", unknown, line_of)
    return np.array([index[cell] for cell in cells], dtype=np.int64), classes

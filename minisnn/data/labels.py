"""Checking and converting class-label columns."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from .errors import DataError


def labels_from_column(
    values: np.ndarray,
    path: str | os.PathLike,
    n_classes: int | None = None,
    line_of: Callable[[int], int] | None = None,
) -> np.ndarray:
    """A numeric label column (N,) as int64 labels in [0, n_classes).

    Each label must be a whole number >= 0 and, when n_classes is given, below it. The error
    names the line of the first bad label as line_of(row) for text files, else its item number.
    """
    values = np.asarray(values, dtype=np.float64)  # (N,)
    valid = np.isfinite(values) & (values == np.round(values)) & (values >= 0)
    if n_classes is not None:
        valid &= values < n_classes
    if not valid.all():
        bad = int(np.flatnonzero(~valid)[0])
        allowed = "a whole number >= 0" if n_classes is None else f"one of the classes 0..{n_classes - 1}"
        if line_of is None:
            raise DataError(path, f"label {values[bad]:g} of item {bad} is not {allowed}")
        raise DataError(path, f"label {values[bad]:g} is not {allowed}", line=line_of(bad))
    return values.astype(np.int64)

"""How large a value may be: features and targets must fit the working dtype, and the float64
statistics computed from them (a standardizer's variance, a squared error) must not overflow.

One cell of 1e300 in a column would otherwise make the standardizer's scale infinite and zero the
whole column, or a float32 model would see inf; the error names the file, row and column instead.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

FLOAT64_MAX = float(np.finfo(np.float64).max)


def feature_limit(dtype, n_rows: int, standardize: bool) -> tuple[float, str]:
    """(the largest |feature| allowed, why): it must fit `dtype`, and when standardizing, the float64
    sum of n_rows squared deviations (each at most (2 * limit)^2) must stay finite."""
    limit, reason = float(np.finfo(dtype).max), f"it does not fit {np.dtype(dtype).name}"
    statistics = math.sqrt(FLOAT64_MAX / (4 * max(n_rows, 1)))
    if standardize and statistics < limit:
        limit, reason = statistics, f"the standardizer's variance over {n_rows} rows would overflow"
    return limit, reason


def target_limit(dtype) -> tuple[float, str]:
    """(the largest |regression target| allowed, why): its squared error must fit `dtype`."""
    return math.sqrt(float(np.finfo(dtype).max)) / 2, f"its squared error would overflow {np.dtype(dtype).name}"


def check_magnitude(
    values: np.ndarray,
    limit: tuple[float, str],
    origin: Callable[[int], str],
    columns: Sequence[str] | None = None,
    what: str = "value",
) -> None:
    """ValueError naming where (origin(row)), the column and the value of the first entry of
    values (N, D) that is not finite or exceeds limit[0] in magnitude."""
    values = np.asarray(values, dtype=np.float64)
    bound, reason = limit
    bad = ~(np.abs(values) <= bound)  # NaN and inf included
    if not bad.any():
        return
    row, column = map(int, np.argwhere(bad.reshape(values.shape[0], -1))[0])
    value = values.reshape(values.shape[0], -1)[row, column]
    name = columns[column] if columns is not None else str(column)
    problem = "is not a finite number" if not math.isfinite(value) else f"is too large: {reason} (|{what}| <= {bound:.3g})"
    count = int(bad.sum())
    raise ValueError(f"{origin(row)}: column {name}: {what} {value:g} {problem}"
                     + (f" ({count} such values)" if count > 1 else ""))

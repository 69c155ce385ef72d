"""Reading delimited numeric text files fast, with errors that name the file and line.

The fast path is NumPy's C parser (np.loadtxt); when it rejects a file, a line-by-line scan
finds the first bad line and raises DataError with its number, so errors stay precise while
good files load at C speed.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import warnings
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError

_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def open_text(path: str | os.PathLike) -> io.TextIOBase:
    """The file as text (UTF-8), transparently gunzipped when its name ends in .gz."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_lines(path: str | os.PathLike) -> list[str]:
    """All lines of a text file (gzip allowed), without line endings."""
    try:
        with open_text(path) as handle:
            return handle.read().splitlines()
    except _GZIP_ERRORS as exc:
        raise DataError(path, f"truncated or corrupt gzip file ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def split_header(line: str, delimiter: str) -> list[str]:
    """Column names of a header line (csv quoting rules)."""
    return [name.strip() for name in next(csv.reader([line], delimiter=delimiter))]


def table_rows(path: str | os.PathLike, lines: list[str], n_columns: int, delimiter: str = ","):
    """(line number, cells) of every non-empty line after the header line lines[0]; a line with
    another number of cells than n_columns is a DataError naming it."""
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = split_header(line, delimiter)
        if len(cells) != n_columns:
            raise DataError(path, f"expected {n_columns} columns, found {len(cells)}", line=number)
        yield number, cells


def load_numeric(
    path: str | os.PathLike,
    delimiter: str,
    n_columns: int,
    skip_lines: int = 0,
    usecols: tuple[int, ...] | None = None,
) -> np.ndarray:
    """All data rows of a delimited file as float64 (N, len(usecols) or n_columns).

    Every data row must have exactly `n_columns` fields and every used field must be a finite
    number; the first `skip_lines` lines (headers) are skipped and blank lines are ignored.
    """
    try:
        with open_text(path) as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below
            values = np.loadtxt(
                handle,
                dtype=np.float64,
                delimiter=delimiter,
                skiprows=skip_lines,
                usecols=usecols,
                ndmin=2,
                comments=None,
                quotechar='"',
            )
    except _GZIP_ERRORS as exc:
        raise DataError(path, f"truncated or corrupt gzip file ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except ValueError as exc:
        _raise_first_bad_line(path, delimiter, n_columns, skip_lines, usecols)
        raise DataError(path, f"cannot parse as numbers: {exc}") from exc
    _check_columns(path, delimiter, n_columns, skip_lines, values, usecols)
    if values.shape[0] == 0:
        raise DataError(path, "no data rows")
    if not np.isfinite(values).all():
        _raise_first_bad_line(path, delimiter, n_columns, skip_lines, usecols)
        raise DataError(path, "holds NaN or infinite values")
    return values


def _check_columns(path, delimiter, n_columns, skip_lines, values, usecols) -> None:
    """Insist on exactly n_columns fields per row (np.loadtxt with usecols ignores extra fields)."""
    expected = n_columns if usecols is None else len(usecols)
    if values.shape[0] and values.shape[1] != expected:
        _raise_first_bad_line(path, delimiter, n_columns, skip_lines, usecols)
        raise DataError(path, f"expected {expected} columns, found {values.shape[1]}")
    if usecols is None:
        return
    lines = read_lines(path)[skip_lines:]
    if any('"' in line or line.count(delimiter) != n_columns - 1 for line in lines if line.strip()):
        _raise_first_bad_line(path, delimiter, n_columns, skip_lines, usecols, numbers=False)


def _raise_first_bad_line(path, delimiter, n_columns, skip_lines, usecols, numbers=True) -> None:
    """Scan the file line by line and raise DataError at the first malformed data line."""
    used = range(n_columns) if usecols is None else usecols
    for number, line in enumerate(read_lines(path), start=1):
        if number <= skip_lines or not line.strip():
            continue
        cells = next(csv.reader([line], delimiter=delimiter))
        if len(cells) != n_columns:
            raise DataError(path, f"expected {n_columns} columns, found {len(cells)}", line=number)
        if not numbers:
            continue
        for column in used:
            cell = cells[column].strip()
            try:
                value = float(cell)
            except ValueError:
                raise DataError(path, f"column {column + 1}: {cell!r} is not a number", line=number) from None
            if not np.isfinite(value):
                raise DataError(path, f"column {column + 1}: {cell!r} is not a finite number", line=number)


def data_line_finder(path: str | os.PathLike, skip_lines: int = 0):
    """A function row -> the 1-based file line of data row `row` (blank lines and headers skipped)."""

    def line_of(row: int) -> int:
        numbers = [n for n, line in enumerate(read_lines(path), start=1) if n > skip_lines and line.strip()]
        return numbers[row]

    return line_of

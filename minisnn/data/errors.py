"""DataError: a data file is missing, malformed or inconsistent; the message names the file and line."""

from __future__ import annotations

import os


class DataError(ValueError):
    """Bad or missing data. `path` and `line` (1-based, None where no line applies) say where."""

    def __init__(self, path: str | os.PathLike | None, problem: str, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.problem = problem
        where = self.path or "<data>"
        if line is not None:
            where = f"{where}, line {line}"
        super().__init__(f"{where}: {problem}")


class DataNotFound(DataError, FileNotFoundError):
    """A data set is not on disk (and could not be downloaded); the message says what to place where."""

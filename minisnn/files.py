"""Atomic file writes: a temporary file in the target's folder, fsynced, then renamed over it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable


def write_atomically(path: str | os.PathLike, write: Callable[[IO], object], binary: bool = True) -> Path:
    """Call write(handle) on a temporary file beside `path`, then rename it to `path`.

    A reader sees the old file or the whole new one, never a part; on any error (or interrupt)
    the temporary file is removed and `path` is left as it was. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path

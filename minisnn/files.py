"""Output files: check a path before a long job, and write atomically (a temporary file beside the
target, fsynced, then renamed over it).

Files are created with mode 0o666 less the process umask, as open() would create them (not the
0o600 of tempfile.mkstemp).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import IO, Callable


def _create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    """A new, empty, hidden file ".<name>.<random>.tmp" in `folder` (mode 0o666 less the umask), opened for writing."""
    while True:
        temporary = folder / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), temporary
        except FileExistsError:
            continue


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """`path` as a Path, once it is known that a file can be written there; call before a long job.

    The folder must exist and accept a new file (tried by creating and removing an empty one), and
    `path` must not be a folder or another non-regular file (a device, a socket). Raises
    ValueError("cannot write <what> to <path>: <reason>") naming the path as given.
    """
    target = Path(path)

    def fail(reason: str) -> ValueError:
        return ValueError(f"cannot write {what} to {os.fspath(path)}: {reason}")

    if not target.name or target.is_dir():
        raise fail("it is a folder, not a file name")
    if target.exists() and not target.is_file():
        raise fail("it exists and is not a regular file")
    folder = target.parent
    if not folder.exists():
        raise fail(f"the folder {folder} does not exist")
    if not folder.is_dir():
        raise fail(f"{folder} is not a folder")
    try:
        fd, temporary = _create_temporary(folder, target.name)
    except OSError as exc:
        raise fail(f"the folder {folder} does not accept new files ({exc.strerror or exc})") from None
    os.close(fd)
    temporary.unlink()
    return target


def write_atomically(path: str | os.PathLike, write: Callable[[IO], object], binary: bool = True) -> Path:
    """Call write(handle) on a temporary file beside `path`, then rename it to `path`.

    A reader sees the old file or the whole new one, never a part; on any error (or interrupt,
    KeyboardInterrupt included) the temporary file is removed and `path` is left as it was. The
    new file gets the permissions the umask gives. Missing folders are created. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, temporary = _create_temporary(path.parent, path.name)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path

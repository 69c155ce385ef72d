"""Output files: check a path before a long job, and write atomically (a temporary file beside the
target, fsynced, then renamed over it).

Files are created with mode 0o666 less the process umask, as open() would create them (not the
0o600 of tempfile.mkstemp).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import threading
from pathlib import Path
from typing import IO, Callable, Iterator

# Signals that end the process by default and that a user sends to stop a job (kill, a closed terminal).
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class _Stopped(BaseException):
    """A stop signal arrived while a file was being written."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _stop_signals_raise() -> Iterator[None]:
    """Within: SIGTERM and SIGHUP, where nothing else handles them, raise _Stopped so that cleanup runs;
    then the signal is sent again with its default handling, and the process ends as it would have."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise _Stopped(signum)

    previous = {}
    for signum in _STOP_SIGNALS:
        if signal.getsignal(signum) == signal.SIG_DFL:
            previous[signum] = signal.signal(signum, stop)
    stopped = None
    try:
        yield
    except _Stopped as exc:
        stopped = exc.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if stopped is not None:
        os.kill(os.getpid(), stopped)
        raise SystemExit(128 + stopped)  # only if the signal is blocked


def _create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    """A new, empty, hidden file ".<name>.<random>.tmp" in `folder` (mode 0o666 less the umask), opened for writing."""
    while True:
        temporary = folder / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            return os.open(temporary, flags, 0o666), temporary
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
    KeyboardInterrupt included) the temporary file is removed and `path` is left as it was. So is it
    when SIGTERM or SIGHUP stops the process during the write (where nothing else handles them),
    which then ends as the signal would have ended it. The new file gets the permissions the umask
    gives. Missing folders are created. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _stop_signals_raise():
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

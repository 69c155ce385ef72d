"""Output files: paths checked before a long job, atomic writes that leave nothing behind, umask permissions."""

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from minisnn.files import check_writable, write_atomically


def test_check_writable_accepts_a_new_or_existing_file_and_leaves_nothing(tmp_path):
    assert check_writable(tmp_path / "new.npz") == tmp_path / "new.npz"
    (tmp_path / "old.npz").write_bytes(b"old")
    assert check_writable(str(tmp_path / "old.npz"), "checkpoint") == tmp_path / "old.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.npz"]
    assert (tmp_path / "old.npz").read_bytes() == b"old"


@pytest.mark.parametrize("make_path, reason", [
    (lambda tmp: tmp, "it is a folder, not a file name"),
    (lambda tmp: tmp / "missing" / "m.npz", "the folder .*missing does not exist"),
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file" / "m.npz", ".*/file is not a folder"),
])
def test_check_writable_names_the_path_and_the_reason(tmp_path, make_path, reason):
    path = make_path(tmp_path)
    with pytest.raises(ValueError, match=f"^cannot write metrics to {path}: {reason}"):
        check_writable(path, "metrics")


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs /dev/null")
def test_check_writable_refuses_devices():
    with pytest.raises(ValueError, match="cannot write output to /dev/null: it exists and is not a regular file"):
        check_writable("/dev/null")


def test_check_writable_refuses_a_folder_that_takes_no_files(tmp_path):
    if sys.platform.startswith("linux"):
        folder = Path("/proc")  # takes no new files, even for root
    elif hasattr(os, "geteuid") and os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir(mode=0o500)
    else:
        pytest.skip("no folder refuses new files here")
    message = f"cannot write output to {folder / 'm.npz'}: the folder {folder} does not accept"
    with pytest.raises(ValueError, match=message):
        check_writable(folder / "m.npz")


def test_a_failed_create_names_the_target_not_a_temporary_file():
    if not sys.platform.startswith("linux"):
        pytest.skip("uses /proc")
    with pytest.raises(OSError, match="cannot write /proc/m.npz") as info:
        write_atomically("/proc/m.npz", lambda handle: handle.write(b"x"))
    assert ".tmp" not in str(info.value)


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_write_failing_midway_leaves_the_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old contents")

    def write(handle):
        handle.write(b"x" * 100_000)  # half written, then the failure
        handle.flush()
        assert len(list(tmp_path.iterdir())) == 2  # the temporary file exists while writing
        raise error

    with pytest.raises(type(error)):
        write_atomically(path, write)
    assert path.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_permissions_of_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        write_atomically(tmp_path / "text.txt", lambda handle: handle.write("hello"), binary=False)
        write_atomically(tmp_path / "sub" / "data.bin", lambda handle: handle.write(b"\0"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "text.txt").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "sub" / "data.bin").stat().st_mode) == mode
    assert (tmp_path / "text.txt").read_text() == "hello"


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_kill_during_a_write_leaves_no_temporary_file_and_still_ends_the_process(tmp_path, signame):
    code = f"""
import os, signal, sys
from minisnn.files import write_atomically
signal.signal(signal.{signame}, signal.SIG_DFL)  # as a fresh process has it (nohup, for one, ignores SIGHUP)
path = sys.argv[1]
write_atomically(path, lambda handle: handle.write(b"old"))
def write(handle):
    handle.write(b"x" * 100_000)
    os.kill(os.getpid(), signal.{signame})
    handle.write(b"never written")
write_atomically(path, write)
print("not reached")
"""
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out.bin")], capture_output=True, text=True)
    assert result.returncode == -getattr(signal, signame), result.stderr  # ended by the signal, as by default
    assert "not reached" not in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    assert (tmp_path / "out.bin").read_bytes() == b"old"


def test_signal_handlers_are_restored_after_a_write(tmp_path):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, getattr(signal, "SIGTERM", signal.SIGINT))}
    write_atomically(tmp_path / "a", lambda handle: handle.write(b"a"))
    assert {s: signal.getsignal(s) for s in before} == before

"""Reading .npz archives without trusting any size they declare.

An .npz is a zip of .npy members. Before anything is allocated, every member's size is checked
three ways: the zip directory's sizes against the file (a stored member must lie inside it; a
deflated one cannot expand more than deflate's 1032:1), the .npy header's shape and dtype against
the zip directory, and both against what the caller expects. Decompression is bounded by those
checked sizes (zipfile stops at the directory's size) and the zip CRC is verified at the end of
every member. Problems raise ArchiveError with a message that does not repeat the file name.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
MAX_DEFLATE_RATIO = 1032  # the most a deflate stream can expand (zlib's technical notes)
NPY_HEADER_LIMIT = 10_000  # NumPy's own limit on a .npy header's length
# The array dtypes an archive may hold: numbers and booleans, never objects or records.
ARRAY_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                "float16", "float32", "float64")
_CHUNK = 1 << 20  # bytes read at a time

# Errors zipfile and zlib raise on damaged input.
READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError,
               OverflowError)


def describe(exc: BaseException) -> str:
    """An exception's message, clipped (zipfile quotes whole binary headers)."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 160 else text[:160] + "..."


class ArchiveError(ValueError):
    """An archive is not a well-formed .npz, or declares sizes it does not hold."""


class ArrayHeader(NamedTuple):
    """What a member's .npy header declares."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize


def _check_file_kind(path: Path) -> None:
    with open(path, "rb") as handle:
        start = handle.read(len(NPY_MAGIC))
    if start == NPY_MAGIC:
        raise ArchiveError("this is a single .npy array (np.save), not an .npz archive")
    if not zipfile.is_zipfile(path):
        raise ArchiveError("not a zip (.npz) archive: no zip directory found (truncated, or another kind of file)")


class NpzArchive:
    """An open .npz: members by name (without ".npy"), each checked against the file's size."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        _check_file_kind(self.path)
        size = self.path.stat().st_size
        try:
            self._zip = zipfile.ZipFile(self.path)
        except READ_ERRORS as exc:
            raise ArchiveError(f"not a readable zip archive ({describe(exc)})") from None
        try:
            self.members = self._check_members(self._zip.infolist(), size)
        except ArchiveError:
            self._zip.close()
            raise

    @staticmethod
    def _check_members(infos: list[zipfile.ZipInfo], archive_size: int) -> dict[str, zipfile.ZipInfo]:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if len(info.filename) > 200:
                raise ArchiveError(f"a member's name is {len(info.filename)} characters long: "
                                   f"{info.filename[:60]!r}...")
            if not info.filename.endswith(".npy"):
                raise ArchiveError(f"member {info.filename!r} is not a .npy array")
            name = info.filename[: -len(".npy")]
            if name in members:
                raise ArchiveError(f"member {info.filename!r} appears twice")
            if info.flag_bits & 0x1:
                raise ArchiveError(f"member {info.filename!r} is encrypted")
            if info.compress_type == zipfile.ZIP_STORED:
                if info.compress_size != info.file_size:
                    raise ArchiveError(f"member {info.filename!r} is stored uncompressed but declares "
                                       f"{info.file_size} bytes in {info.compress_size}")
            elif info.compress_type == zipfile.ZIP_DEFLATED:
                if info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 1024:
                    raise ArchiveError(f"member {info.filename!r} declares {info.file_size} bytes, more than "
                                       f"{info.compress_size} compressed bytes can hold")
            else:
                raise ArchiveError(f"member {info.filename!r} uses zip compression method {info.compress_type}; "
                                   f".npz archives are stored or deflated")
            if info.header_offset + info.compress_size > archive_size:
                raise ArchiveError(f"member {info.filename!r} declares {info.compress_size} bytes at offset "
                                   f"{info.header_offset}, beyond the end of the {archive_size}-byte file "
                                   f"(truncated?)")
            members[name] = info
        return members

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "NpzArchive":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _open(self, name: str):
        try:
            return self._zip.open(self.members[name])
        except READ_ERRORS as exc:
            raise ArchiveError(f"member {name!r} cannot be opened ({describe(exc)})") from None

    def _read_header(self, name: str, stream) -> tuple[ArrayHeader, int]:
        """The member's .npy header and the offset of its data, checked against the zip directory."""
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream, NPY_HEADER_LIMIT)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream, NPY_HEADER_LIMIT)
            else:
                raise ArchiveError(f"member {name!r} has .npy format version {version}; expected 1.0 or 2.0")
            offset = stream.tell()
        except ArchiveError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise ArchiveError(f"member {name!r} is corrupt ({describe(exc)})") from None
        except Exception as exc:  # noqa: BLE001 - NumPy parses the header with tokenize and ast: any error
            raise ArchiveError(f"member {name!r} has a malformed .npy header ({describe(exc)})") from None
        if dtype.name not in ARRAY_DTYPES or dtype.byteorder == ">" or dtype.hasobject:
            raise ArchiveError(f"member {name!r} holds dtype {dtype.str}; arrays must be one of {ARRAY_DTYPES}, "
                               f"little-endian")
        if any(n < 0 for n in shape):
            raise ArchiveError(f"member {name!r} declares the shape {shape!r:.100}, with negative sizes")
        header = ArrayHeader(tuple(int(n) for n in shape), dtype, bool(fortran_order))
        if offset + header.nbytes != self.members[name].file_size:
            raise ArchiveError(f"member {name!r} declares {header.dtype.name}{list(header.shape)} "
                               f"({header.nbytes} bytes), but the zip directory gives it "
                               f"{self.members[name].file_size - offset} bytes of data")
        return header, offset

    def array_header(self, name: str) -> ArrayHeader:
        """The shape, dtype and order a member declares (reads only its .npy header)."""
        with self._open(name) as stream:
            return self._read_header(name, stream)[0]

    def read(self, name: str, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        """The member's array, which must be `dtype` of `shape`; allocates only after both are checked."""
        with self._open(name) as stream:
            header, _ = self._read_header(name, stream)
            if header.shape != tuple(shape) or header.dtype.name != dtype:
                raise ArchiveError(f"member {name!r} holds {header.dtype.name}{list(header.shape)}, "
                                   f"expected {dtype}{list(shape)}")
            data = np.empty(header.nbytes, dtype=np.uint8)
            view = memoryview(data)
            filled = 0
            try:
                while filled < header.nbytes:
                    count = stream.readinto(view[filled : filled + _CHUNK])
                    if not count:
                        raise ArchiveError(f"member {name!r} ends after {filled} of its {header.nbytes} data bytes")
                    filled += count
                if stream.read(1):
                    raise ArchiveError(f"member {name!r} holds more data than its {header.nbytes} bytes")
            except ArchiveError:
                raise
            except READ_ERRORS as exc:
                raise ArchiveError(f"member {name!r} is corrupt ({describe(exc)})") from None
        array = data.view(header.dtype).reshape(header.shape, order="F" if header.fortran_order else "C")
        return np.array(array, order="C", copy=header.fortran_order)

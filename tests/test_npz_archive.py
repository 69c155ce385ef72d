"""minisnn.npz_archive: sizes checked against the file before allocating, odd but valid archives read."""

import io
import struct
import warnings
import zipfile

import numpy as np
import pytest

from minisnn import get_backend, load_training_state, mlp, save_checkpoint
from minisnn.npz_archive import ArchiveError, NpzArchive


def _npy_bytes(header: str) -> bytes:
    """A version 1.0 .npy header holding `header`, padded to 64 bytes as NumPy writes it."""
    text = header.encode("latin1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def _zip(path, members, compression=zipfile.ZIP_STORED):
    """Write {name: array or raw bytes} as a zip of .npy members."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate names on purpose
            for name, content in members:
                if isinstance(content, np.ndarray):
                    buffer = io.BytesIO()
                    np.lib.format.write_array(buffer, content, allow_pickle=False)
                    content = buffer.getvalue()
                archive.writestr(name, content)
    return path


def test_arrays_round_trip_in_every_order_and_compression(tmp_path):
    c = np.arange(12, dtype=np.float32).reshape(3, 4)
    members = [("c.npy", c), ("f.npy", np.asfortranarray(c)), ("scalar.npy", np.array(7, np.int64)),
               ("empty.npy", np.zeros((0, 5)))]
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        with NpzArchive(_zip(tmp_path / f"{compression}.npz", members, compression)) as archive:
            assert sorted(archive.members) == ["c", "empty", "f", "scalar"]
            for name in ("c", "f"):
                array = archive.read(name, (3, 4), "float32")
                np.testing.assert_array_equal(array, c)
                assert array.flags.c_contiguous
            assert archive.read("scalar", (), "int64") == 7
            assert archive.read("empty", (0, 5), "float64").shape == (0, 5)


def test_a_deflated_checkpoint_loads_like_the_stored_one(tmp_path):
    model = mlp(4, 2, depth=1, width=8, backend=get_backend("numpy"), seed=0)
    path = save_checkpoint(tmp_path / "m.npz", model)
    with zipfile.ZipFile(path) as stored:
        members = [(info.filename, stored.read(info)) for info in stored.infolist()]
    deflated = _zip(tmp_path / "deflated.npz", members, zipfile.ZIP_DEFLATED)
    loaded, _, _ = load_training_state(deflated)
    for a, b in zip(model.named_parameters(), loaded.named_parameters()):
        np.testing.assert_array_equal(a.value, b.value)


@pytest.mark.parametrize("members, message", [
    ([("a.npy", np.zeros(2)), ("a.npy", np.ones(2))], "member 'a.npy' appears twice"),
    ([("a.txt", b"hello")], "member 'a.txt' is not a .npy array"),
    ([("a.npy", np.zeros(2, ">f8"))], "holds dtype >f8; arrays must be one of"),
    ([("a.npy", np.zeros(2, [("x", "<f4")]))], "arrays must be one of"),
    ([("a.npy", b"\x93NUMPY\x03\x00" + bytes(20))], r"format version \(3, 0\)"),
    ([("a.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': 'x'}")], "malformed .npy header"),
    ([("a.npy", b"not an npy file at all")], "malformed .npy header"),
    ([("a.npy", _npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, -2), }") + bytes(16))],
     "negative sizes"),
])
def test_malformed_members_are_named(tmp_path, members, message):
    with pytest.raises(ArchiveError, match=message):
        with NpzArchive(_zip(tmp_path / "a.npz", members)) as archive:
            for name in archive.members:
                archive.array_header(name)


def test_data_shorter_or_longer_than_the_npy_header_declares(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (4,)})
    for data, count in ((bytes(16), 16), (bytes(48), 48)):
        path = _zip(tmp_path / f"{count}.npz", [("a.npy", header.getvalue() + data)])
        with NpzArchive(path) as archive, pytest.raises(ArchiveError, match=f"declares float64\\[4\\] \\(32 bytes\\), "
                                                                             f"but the zip directory gives it {count}"):
            archive.read("a", (4,), "float64")


def test_a_read_must_match_the_expected_shape_and_dtype_before_allocating(tmp_path):
    with NpzArchive(_zip(tmp_path / "a.npz", [("a.npy", np.zeros((2, 3)))])) as archive:
        with pytest.raises(ArchiveError, match=r"holds float64\[2, 3\], expected float32\[2, 3\]"):
            archive.read("a", (2, 3), "float32")


def _patch_central(data, offset_in_record, fmt, value):
    """Overwrite a field of the first central directory record."""
    start = data.index(b"PK\x01\x02")
    field = start + offset_in_record
    return data[:field] + struct.pack(fmt, value) + data[field + struct.calcsize(fmt):]


@pytest.mark.parametrize("field, fmt, value, message", [
    (8, "<H", 1, "is encrypted"),
    (10, "<H", 12, "compression method 12"),  # bzip2
    (20, "<L", 10**9, "is stored uncompressed but declares"),
    (42, "<L", 10**6, "beyond the end of the"),
])
def test_zip_directory_fields_are_checked_against_the_file(tmp_path, field, fmt, value, message):
    path = _zip(tmp_path / "a.npz", [("a.npy", np.zeros(4))])
    path.write_bytes(_patch_central(path.read_bytes(), field, fmt, value))
    with pytest.raises(ArchiveError, match=message):
        NpzArchive(path)


def test_a_deflated_member_cannot_declare_more_than_deflate_can_expand_to(tmp_path):
    path = _zip(tmp_path / "a.npz", [("a.npy", np.zeros(1000))], zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(path) as archive:
        compressed = archive.infolist()[0].compress_size
    path.write_bytes(_patch_central(path.read_bytes(), 24, "<L", 1032 * compressed + 2000))
    with pytest.raises(ArchiveError, match=f"more than {compressed} compressed bytes can hold"):
        NpzArchive(path)


def test_files_that_are_not_zip_archives(tmp_path):
    npy = tmp_path / "a.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ArchiveError, match=r"a single .npy array \(np.save\), not an .npz archive"):
        NpzArchive(npy)
    text = tmp_path / "a.csv"
    text.write_text("a,b\n1,2\n")
    with pytest.raises(ArchiveError, match="not a zip"):
        NpzArchive(text)

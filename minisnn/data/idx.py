"""IDX files (MNIST, Fashion-MNIST), raw or gzip, with magic number and size checks.

An IDX file is: two zero bytes, a type code, the number of dimensions d, d big-endian
uint32 sizes, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError
from .labeled import LabeledData
from .labels import labels_from_column

IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FASHION_CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(path, f"truncated or corrupt gzip file ({exc})") from exc


def read_idx(path: str | os.PathLike, expected_ndim: int | None = None) -> np.ndarray:
    """The array stored in an IDX file (gzip detected from its first bytes), in native byte order."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in IDX_TYPES:
        raise DataError(path, f"not an IDX file (magic bytes {data[:4].hex() or 'missing'})")
    dtype, ndim = IDX_TYPES[data[2]], data[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise DataError(path, f"magic number says {ndim} dimensions, expected {expected_ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(path, f"truncated: {len(data)} bytes, the header alone needs {header}")
    shape = tuple(int(size) for size in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        problem = "truncated" if len(data) - header < expected else "has trailing bytes"
        raise DataError(path, f"{problem}: shape {shape} needs {expected} data bytes, found {len(data) - header}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx_file(folder: Path, stem: str) -> Path:
    """folder/stem.gz if present, else folder/stem (raw)."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise DataError(folder / f"{stem}.gz", "file not found")


def read_idx_split(folder: Path, split: str, dtype) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Images scaled to [0, 1] as (N, H*W), labels (N,) int64, and the image shape (H, W)."""
    image_path = find_idx_file(folder, SPLIT_FILES[split][0])
    label_path = find_idx_file(folder, SPLIT_FILES[split][1])
    images = read_idx(image_path, expected_ndim=3)  # (N, H, W)
    labels = read_idx(label_path, expected_ndim=1)  # (N,)
    if images.dtype != np.uint8:
        raise DataError(image_path, f"images must be unsigned bytes (IDX type 0x08), found {images.dtype}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(label_path, f"has {labels.shape[0]} labels for {images.shape[0]} images in {image_path.name}")
    x = images.reshape(images.shape[0], -1).astype(dtype)  # (N, H*W)
    x /= 255.0
    return x, labels_from_column(labels, label_path, n_classes=10), images.shape[1:]


def read_idx_dataset(folder: str | os.PathLike, name: str = "mnist", dtype=np.float64) -> LabeledData:
    """MNIST-format data in `folder` (train-* and t10k-* files): pixels in [0, 1], 10 classes."""
    folder = Path(folder)
    x_train, y_train, image_shape = read_idx_split(folder, "train", dtype)
    x_test, y_test, test_shape = read_idx_split(folder, "test", dtype)
    if test_shape != image_shape:
        raise DataError(folder, f"training images are {image_shape}, test images {test_shape}")
    class_names = FASHION_CLASS_NAMES if name == "fashion-mnist" else [str(digit) for digit in range(10)]
    return LabeledData(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        n_classes=10,
        feature_names=None,
        meta={"source": str(folder), "official_split": True, "image_shape": image_shape, "class_names": class_names},
    )

"""HTRU2 pulsar candidates (Lyon et al.): HTRU_2.csv, 8 features and a 0/1 label, no header."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataError
from .labeled import LabeledData
from .labels import labels_from_column
from .textfiles import data_line_finder, load_numeric

FILE_NAME = "HTRU_2.csv"
FEATURE_NAMES = [
    "profile_mean",
    "profile_std",
    "profile_excess_kurtosis",
    "profile_skewness",
    "dm_snr_mean",
    "dm_snr_std",
    "dm_snr_excess_kurtosis",
    "dm_snr_skewness",
]


def read_htru2(path: str | os.PathLike) -> LabeledData:
    """HTRU2 from HTRU_2.csv, or from a folder holding it. No official test split (meta says so)."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    if not path.is_file():
        raise DataError(path, f"file not found (HTRU2 needs {FILE_NAME})")
    table = load_numeric(path, delimiter=",", n_columns=len(FEATURE_NAMES) + 1)  # (N, 9)
    y = labels_from_column(table[:, -1], path, n_classes=2, line_of=data_line_finder(path))  # (N,)
    return LabeledData(
        name="htru2",
        x_train=table[:, :-1],
        y_train=y,
        n_classes=2,
        feature_names=list(FEATURE_NAMES),
        meta={"source": str(path), "official_split": False, "class_names": ["non-pulsar", "pulsar"]},
    )

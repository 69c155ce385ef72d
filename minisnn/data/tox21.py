"""Tox21 in the DeepTox layout: dense features and 12 binary assay labels, some missing.

Files (gzip CSV, first column a compound id, header line naming the columns):
tox21_dense_{train,test}.csv.gz and tox21_labels_{train,test}.csv.gz. A label cell is 0, 1
or missing (empty, "nan" or "NA").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .labeled import LabeledData
from .textfiles import load_numeric, read_lines, split_header

MISSING = ("", "nan", "NaN", "NA")


@dataclass
class Tox21Split:
    """x (N, D) float64; labels (N, T) int64 with 0 where missing; mask (N, T) bool, True where known."""

    ids: list[str]
    x: np.ndarray
    labels: np.ndarray
    mask: np.ndarray


def _ids(path: Path) -> list[str]:
    return [line.split(",", 1)[0].strip('"') for line in read_lines(path)[1:] if line.strip()]


def read_tox21_features(path: str | os.PathLike) -> tuple[list[str], list[str], np.ndarray]:
    """A dense feature file: (compound ids, feature names, features (N, D))."""
    path = Path(path)
    lines = read_lines(path)
    if not lines:
        raise DataError(path, "empty file")
    header = split_header(lines[0], ",")
    if len(header) < 2:
        raise DataError(path, "header needs an id column and at least one feature", line=1)
    x = load_numeric(path, ",", len(header), skip_lines=1, usecols=tuple(range(1, len(header))))  # (N, D)
    return _ids(path), header[1:], x


def read_tox21_labels(path: str | os.PathLike) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """A label file: (compound ids, task names, labels (N, T) int64, mask (N, T) bool)."""
    path = Path(path)
    lines = read_lines(path)
    if not lines:
        raise DataError(path, "empty file")
    tasks = split_header(lines[0], ",")[1:]
    if not tasks:
        raise DataError(path, "header names no tasks", line=1)
    ids, rows = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = split_header(line, ",")
        if len(cells) != len(tasks) + 1:
            raise DataError(path, f"expected {len(tasks) + 1} columns, found {len(cells)}", line=number)
        row = []
        for task, cell in zip(tasks, cells[1:]):
            if cell in MISSING:
                row.append(-1)
            elif cell in ("0", "1", "0.0", "1.0"):
                row.append(int(float(cell)))
            else:
                raise DataError(path, f"task {task}: label {cell!r} is not 0, 1 or missing", line=number)
        ids.append(cells[0])
        rows.append(row)
    if not rows:
        raise DataError(path, "no data rows")
    table = np.array(rows, dtype=np.int64)  # (N, T), -1 where missing
    mask = table >= 0
    return ids, tasks, np.where(mask, table, 0), mask


@dataclass
class Tox21Data:
    """Both splits of Tox21 with all tasks."""

    train: Tox21Split
    test: Tox21Split
    task_names: list[str]
    feature_names: list[str]


def _read_split(folder: Path, split: str) -> tuple[Tox21Split, list[str], list[str]]:
    feature_path = folder / f"tox21_dense_{split}.csv.gz"
    label_path = folder / f"tox21_labels_{split}.csv.gz"
    feature_ids, feature_names, x = read_tox21_features(feature_path)
    label_ids, tasks, labels, mask = read_tox21_labels(label_path)
    if feature_ids != label_ids:
        raise DataError(label_path, f"compound ids differ from those of {feature_path.name} (same rows, same order)")
    return Tox21Split(feature_ids, x, labels, mask), tasks, feature_names


def read_tox21_tables(folder: str | os.PathLike) -> Tox21Data:
    """All of Tox21 from a folder in the DeepTox layout."""
    folder = Path(folder)
    train, tasks, features = _read_split(folder, "train")
    test, test_tasks, test_features = _read_split(folder, "test")
    if test_tasks != tasks or test_features != features:
        raise DataError(folder, "training and test files name different tasks or features")
    return Tox21Data(train, test, tasks, features)


def read_tox21(folder: str | os.PathLike, task: str | None = None) -> LabeledData:
    """One Tox21 task (default the first) as binary classification; rows missing its label are left out."""
    data = read_tox21_tables(folder)
    task = task or data.task_names[0]
    if task not in data.task_names:
        raise ValueError(f"unknown Tox21 task {task!r}; tasks are {', '.join(data.task_names)}")
    column = data.task_names.index(task)
    known_train = data.train.mask[:, column]  # (N,)
    known_test = data.test.mask[:, column]  # (M,)
    return LabeledData(
        name=f"tox21:{task}",
        x_train=data.train.x[known_train],
        y_train=data.train.labels[known_train, column],
        x_test=data.test.x[known_test],
        y_test=data.test.labels[known_test, column],
        n_classes=2,
        feature_names=data.feature_names,
        meta={
            "source": str(folder),
            "official_split": True,
            "task": task,
            "task_names": data.task_names,
            "missing_train": int((~known_train).sum()),
            "missing_test": int((~known_test).sum()),
        },
    )

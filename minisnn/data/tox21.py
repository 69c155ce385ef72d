"""Tox21: 12 binary assay labels, some missing, in one of two forms.

- The DeepTox layout: dense features and the challenge's split. Files (gzip CSV, first column a
  compound id, header line naming the columns): tox21_dense_{train,test}.csv.gz and
  tox21_labels_{train,test}.csv.gz.
- A SMILES file (tox21.csv, as MoleculeNet distributes the challenge data): a column `smiles`
  and one column per task, no split. Features are computed from the SMILES with RDKit
  (minisnn.data.molecules, cached by minisnn.data.feature_cache); molecules RDKit cannot parse
  are skipped and reported; splits are drawn by split_molecules (random or scaffold).

A label cell is 0, 1 or missing (empty, "nan" or "NA").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .feature_cache import cached_features
from .labeled import LabeledData
from .molecules import FeatureSettings, MoleculeFeatures, random_split, scaffold_split
from .textfiles import load_numeric, read_lines, split_header, table_rows

MISSING = ("", "nan", "NaN", "NA")
SMILES_FILE = "tox21.csv"
SMILES_COLUMN = "smiles"
SPLITS = ("random", "scaffold")


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
    for number, cells in table_rows(path, lines, len(tasks) + 1):
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


def read_smiles_table(path: str | os.PathLike) -> tuple[list[str], list[str], np.ndarray, list[int]]:
    """(SMILES, task names, targets (N, T) float64 with NaN where missing, file line of each row)
    of a CSV file with a `smiles` column and one 0/1/missing column per task."""
    path = Path(path)
    lines = read_lines(path)
    if not lines:
        raise DataError(path, "empty file")
    header = split_header(lines[0], ",")
    lowered = [name.lower() for name in header]
    if SMILES_COLUMN not in lowered:
        raise DataError(path, f"header names no {SMILES_COLUMN!r} column (columns: {', '.join(header)})", line=1)
    smiles_column = lowered.index(SMILES_COLUMN)
    tasks = [name for column, name in enumerate(header) if column != smiles_column]
    if not tasks:
        raise DataError(path, "header names no tasks besides the SMILES column", line=1)
    smiles, rows, numbers = [], [], []
    for number, cells in table_rows(path, lines, len(header)):
        row = []
        for column, cell in enumerate(cells):
            if column == smiles_column:
                continue
            if cell in MISSING:
                row.append(np.nan)
            elif cell in ("0", "1", "0.0", "1.0"):
                row.append(float(cell))
            else:
                raise DataError(path, f"task {header[column]}: label {cell!r} is not 0, 1 or missing", line=number)
        smiles.append(cells[smiles_column])
        rows.append(row)
        numbers.append(number)
    if not rows:
        raise DataError(path, "no data rows")
    return smiles, tasks, np.array(rows, dtype=np.float64), numbers


@dataclass
class Tox21Molecules:
    """Tox21 from a SMILES file: x (N, D) float64 features of the N parsed molecules, targets
    (N, T) float64 (0, 1, NaN where missing), lines (N,) the file line of each row, scaffolds
    their Bemis-Murcko scaffolds; features holds what featurizing reported; cached says whether
    the features came from the cache."""

    path: Path
    x: np.ndarray
    targets: np.ndarray
    task_names: list[str]
    feature_names: list[str]
    scaffolds: list[str]
    lines: np.ndarray
    features: MoleculeFeatures
    settings: FeatureSettings
    cached: bool
    all_lines: list[int]  # the file line of every data row, parsed or not

    def report(self) -> list[str]:
        """What featurizing skipped or replaced, naming file lines."""
        return [f"{self.path}: {line}" for line in self.features.report(lambda row: f"line {self.all_lines[row]}")]


def read_tox21_smiles(path: str | os.PathLike, settings: FeatureSettings = FeatureSettings(),
                      cache: str | os.PathLike | None = None) -> Tox21Molecules:
    """Tox21 from a SMILES file with features computed by RDKit (computed once, then read from
    the cache folder `cache`, default minisnn.data.feature_cache.cache_folder())."""
    path = Path(path)
    smiles, tasks, targets, numbers = read_smiles_table(path)
    features, cached = cached_features(path, smiles, settings, cache)
    if not len(features.rows):
        raise DataError(path, "RDKit can parse none of the SMILES")
    return Tox21Molecules(path, features.x, targets[features.rows], tasks, features.feature_names, features.scaffolds,
                          np.asarray(numbers, dtype=np.int64)[features.rows], features, settings, cached, numbers)


def split_molecules(data: Tox21Molecules, kind: str, fraction: float, seed: int = 0,
                    rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) sorted row indices of `rows` (default all) of `data`: "random" draws
    round(fraction * N) with `seed`; "scaffold" holds out whole scaffold groups, the smallest
    (minisnn.data.molecules.scaffold_split; `seed` unused)."""
    rows = np.arange(len(data.x)) if rows is None else np.asarray(rows)  # (N,)
    if kind == "random":
        kept, held = random_split(len(rows), fraction, seed)
    elif kind == "scaffold":
        kept, held = scaffold_split([data.scaffolds[row] for row in rows], fraction)
    else:
        raise ValueError(f"unknown Tox21 split {kind!r}; splits are {', '.join(SPLITS)}")
    return rows[kept], rows[held]


def read_tox21_smiles_task(path: str | os.PathLike, task: str | None = None,
                           settings: FeatureSettings = FeatureSettings()) -> LabeledData:
    """One task (default the first) of a Tox21 SMILES file as binary classification of the parsed
    molecules with its label; no test split (the caller draws one)."""
    data = read_tox21_smiles(path, settings)
    task = task or data.task_names[0]
    if task not in data.task_names:
        raise ValueError(f"unknown Tox21 task {task!r}; tasks are {', '.join(data.task_names)}")
    column = data.task_names.index(task)
    known = ~np.isnan(data.targets[:, column])  # (N,)
    lines = data.lines[known]
    return LabeledData(
        name=f"tox21:{task}",
        x_train=data.x[known],
        y_train=data.targets[known, column].astype(np.int64),
        n_classes=2,
        feature_names=data.feature_names,
        meta={"source": str(path), "official_split": False, "task": task, "task_names": data.task_names,
              "missing_train": int((~known).sum()), "features": data.settings.config(), "report": data.report()},
        row_origin=lambda split, row: f"{path}, line {lines[row]}",
    )

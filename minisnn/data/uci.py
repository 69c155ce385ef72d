"""UCI data sets in the format of Fernandez-Delgado et al. (JMLR 2014), used by the SNN paper.

A folder NAME/ holds NAME.txt (key= value lines: n_entradas features, n_clases classes,
n_arquivos files fich1[, fich2] with n_patrons1[, n_patrons2] rows, n_patrons_entrena and
n_patrons_valida), the tab-separated data file(s) (header line, row index, features, class),
and index files: conxuntos.dat (line 1 training rows, line 2 test rows, 0-based) and
conxuntos_kfold.dat (4 folds, each a training line then a test line).

With one data file the official split is conxuntos.dat. With two (NAME_train_R.dat and
NAME_test_R.dat) the files are the split, and the index files select rows of the training file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .labeled import LabeledData
from .labels import labels_from_column
from .textfiles import data_line_finder, load_numeric, read_lines, split_header, table_rows

DESCRIPTION_INTEGERS = ("n_entradas", "n_clases", "n_arquivos", "n_patrons_entrena", "n_patrons_valida")
N_FOLDS = 4


def read_uci_description(path: str | os.PathLike) -> dict:
    """NAME.txt as a dict: integers for the counts, strings for the file names."""
    description: dict = {}
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise DataError(path, f"expected 'key= value', got {line!r}", line=number)
        if key.startswith("fich"):
            description[key] = value
            continue
        try:
            description[key] = int(value)
        except ValueError:
            raise DataError(path, f"{key} must be an integer, got {value!r}", line=number) from None
    n_files = description.get("n_arquivos")
    required = list(DESCRIPTION_INTEGERS)
    if n_files in (1, 2):
        required += [f"{kind}{i}" for i in range(1, n_files + 1) for kind in ("fich", "n_patrons")]
    elif n_files is not None:
        raise DataError(path, f"n_arquivos must be 1 or 2, got {n_files}")
    missing = [key for key in required if key not in description]
    if missing:
        raise DataError(path, f"missing {', '.join(missing)}")
    if description["n_clases"] < 2 or description["n_entradas"] < 1:
        raise DataError(path, "n_clases must be >= 2 and n_entradas >= 1")
    return description


def read_uci_table(path: str | os.PathLike, n_features: int, n_classes: int, n_rows: int):
    """One NAME*_R.dat file: (features (N, D) float64, labels (N,) int64, feature names)."""
    path = Path(path)
    lines = read_lines(path)
    if not lines:
        raise DataError(path, "empty file")
    n_columns = n_features + 2  # row index, features, class
    header = split_header(lines[0], "\t")
    if len(header) != n_columns:
        raise DataError(path, f"header has {len(header)} columns, expected {n_columns}", line=1)
    table = load_numeric(path, delimiter="\t", n_columns=n_columns, skip_lines=1)  # (N, D + 2)
    if table.shape[0] != n_rows:
        raise DataError(path, f"has {table.shape[0]} data rows, its description declares {n_rows}")
    labels = labels_from_column(table[:, -1], path, n_classes=n_classes, line_of=data_line_finder(path, 1))
    return table[:, 1:-1], labels, header[1:-1]


def read_index_lines(path: str | os.PathLike, n_lines: int, n_rows: int) -> list[np.ndarray]:
    """The first n_lines lines of an index file as int64 arrays, each index in [0, n_rows), no repeats."""
    lines = [(number, line) for number, line in enumerate(read_lines(path), start=1) if line.strip()]
    if len(lines) != n_lines:
        raise DataError(path, f"expected {n_lines} lines of indices, found {len(lines)}")
    result = []
    for number, line in lines:
        tokens = line.split()
        try:
            indices = np.array(tokens, dtype=np.str_).astype(np.int64)  # (K,)
        except (ValueError, OverflowError):
            bad = next((token for token in tokens if not token.lstrip("-").isdigit()), max(tokens, key=len))
            raise DataError(path, f"{bad!r} is not an integer index", line=number) from None
        outside = (indices < 0) | (indices >= n_rows)
        if outside.any():
            raise DataError(
                path, f"index {indices[outside][0]} is outside the data (rows 0..{n_rows - 1})", line=number
            )
        if np.bincount(indices, minlength=n_rows).max(initial=0) > 1:
            raise DataError(path, "an index appears more than once", line=number)
        result.append(indices)
    return result


def _check_disjoint(path: Path, train: np.ndarray, test: np.ndarray, what: str) -> None:
    if np.isin(test, train, kind="table").any():
        raise DataError(path, f"{what}: training and test indices overlap")


@dataclass
class UciSplits:
    """Index sets of a UCI folder: the conxuntos.dat pair and the 4 folds of conxuntos_kfold.dat."""

    train: np.ndarray  # (n_patrons_entrena,)
    test: np.ndarray  # (n_patrons_valida,)
    folds: list[tuple[np.ndarray, np.ndarray]]


def read_uci_splits(folder: Path, description: dict, n_rows: int) -> UciSplits:
    """conxuntos.dat and conxuntos_kfold.dat, checked against the description and the data."""
    conxuntos = folder / "conxuntos.dat"
    train, test = read_index_lines(conxuntos, 2, n_rows)
    expected = (description["n_patrons_entrena"], description["n_patrons_valida"])
    if (train.size, test.size) != expected:
        raise DataError(
            conxuntos, f"has {train.size} training and {test.size} test indices, the description declares {expected}"
        )
    _check_disjoint(conxuntos, train, test, "split")
    kfold = folder / "conxuntos_kfold.dat"
    fold_lines = read_index_lines(kfold, 2 * N_FOLDS, n_rows)
    folds = [(fold_lines[2 * k], fold_lines[2 * k + 1]) for k in range(N_FOLDS)]
    for k, (fold_train, fold_test) in enumerate(folds):
        _check_disjoint(kfold, fold_train, fold_test, f"fold {k}")
    return UciSplits(train, test, folds)


def read_uci(folder: str | os.PathLike, fold: int | None = None) -> LabeledData:
    """A UCI data set from its folder NAME/, split officially (fold=None) or by fold 0..3.

    meta holds the description, the index sets ("split_train", "split_test", "folds") and
    "indexed_rows": "all" when the indices select rows of NAME_R.dat, "train_file" when they
    select rows of NAME_train_R.dat.
    """
    folder = Path(folder)
    name = folder.name
    if not (folder / f"{name}.txt").is_file():
        raise DataError(folder / f"{name}.txt", f"file not found (a UCI data set folder needs {name}.txt)")
    description = read_uci_description(folder / f"{name}.txt")
    shape = (description["n_entradas"], description["n_clases"])
    tables = [
        read_uci_table(folder / description[f"fich{i}"], *shape, description[f"n_patrons{i}"])
        for i in range(1, description["n_arquivos"] + 1)
    ]
    x_first, y_first, feature_names = tables[0]  # (N, D), (N,)
    splits = read_uci_splits(folder, description, x_first.shape[0])
    if fold is not None and fold not in range(N_FOLDS):
        raise ValueError(f"fold must be one of 0..{N_FOLDS - 1} or None, got {fold!r}")
    if fold is not None:
        train, test = splits.folds[fold]
        x_train, y_train, x_test, y_test = x_first[train], y_first[train], x_first[test], y_first[test]
    elif len(tables) == 2:
        x_train, y_train = x_first, y_first
        x_test, y_test, _ = tables[1]
    else:
        x_train, y_train = x_first[splits.train], y_first[splits.train]
        x_test, y_test = x_first[splits.test], y_first[splits.test]
    return LabeledData(
        name=f"uci:{name}",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        n_classes=description["n_clases"],
        feature_names=feature_names,
        meta={
            "source": str(folder),
            "description": description,
            "official_split": fold is None,
            "fold": fold,
            "indexed_rows": "all" if len(tables) == 1 else "train_file",
            "split_train": splits.train,
            "split_test": splits.test,
            "folds": splits.folds,
        },
    )


def list_uci_datasets(folder: str | os.PathLike) -> list[str]:
    """Names of the UCI data sets under `folder` (subfolders NAME/ holding NAME.txt), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(entry.name for entry in folder.iterdir() if (entry / f"{entry.name}.txt").is_file())


@dataclass
class PaperResult:
    """One row of the SNN paper's UCI table: rows N, columns M (label included), test accuracy by method.

    An accuracy the paper does not report ("NA" or empty) is NaN.
    """

    name: str
    n_rows: int
    n_columns: int
    accuracy: dict[str, float]


def _accuracy(cell: str) -> float:
    return float("nan") if cell in ("", "NA") else float(cell)


def read_paper_results(path: str | os.PathLike) -> dict[str, PaperResult]:
    """paper_results.csv (dataset,N,M,SNN,MS,HW,ResNet,BN,WN,LN) as name -> PaperResult."""
    lines = read_lines(path)
    if not lines:
        raise DataError(path, "empty file")
    header = split_header(lines[0], ",")
    if header[:3] != ["dataset", "N", "M"] or len(header) < 4:
        raise DataError(path, f"header must start with dataset,N,M and name the methods, got {lines[0]!r}", line=1)
    methods = header[3:]
    results: dict[str, PaperResult] = {}
    for number, cells in table_rows(path, lines, len(header)):
        name = cells[0]
        if name in results:
            raise DataError(path, f"data set {name!r} appears twice", line=number)
        try:
            n_rows, n_columns = int(cells[1]), int(cells[2])
            accuracy = {method: _accuracy(cell) for method, cell in zip(methods, cells[3:])}
        except ValueError as exc:
            raise DataError(path, f"not a number ({exc})", line=number) from None
        if not all(0.0 <= value <= 1.0 or np.isnan(value) for value in accuracy.values()):
            raise DataError(path, "accuracies must lie in [0, 1]", line=number)
        results[name] = PaperResult(name, n_rows, n_columns, accuracy)
    return results

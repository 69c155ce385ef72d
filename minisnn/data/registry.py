"""load_dataset: one entry point from a data set name or a file path to LabeledData."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .download import REMOTE_DATASETS, dataset_folder, ensure_dataset, missing_files
from .errors import DataError, DataNotFound
from .htru2 import read_htru2
from .idx import read_idx_dataset
from .labeled import LabeledData
from .locations import data_root
from .synthetic import make_synthetic
from .tabular import read_csv_dataset, read_npz_dataset
from .tox21 import SMILES_FILE, read_tox21, read_tox21_smiles_task
from .uci import list_uci_datasets, read_uci

SPEC_FORMS = (
    "synthetic, htru2, uci:NAME, mnist, fashion-mnist, tox21[:TASK], or a path to a .csv/.npz file "
    "or to a UCI data set folder"
)
TOX21_FILES = tuple(f"tox21_{kind}_{split}.csv.gz" for kind in ("dense", "labels") for split in ("train", "test"))


def uci_folder(name: str, root: str | os.PathLike | None) -> Path:
    """data_root(root)/uci/NAME, which must hold NAME.txt (DataNotFound lists what is there)."""
    uci_root = data_root(root) / "uci"
    folder = uci_root / name
    if not (folder / f"{name}.txt").is_file():
        present = list_uci_datasets(uci_root)
        listing = ", ".join(present) if present else "none"
        raise DataNotFound(folder, f"no UCI data set {name!r} here (data sets under {uci_root}: {listing})")
    return folder


def tox21_folder(root: str | os.PathLike | None) -> Path:
    folder = data_root(root) / "tox21"
    missing = [name for name in TOX21_FILES if not (folder / name).is_file()]
    if missing:
        raise DataNotFound(folder, f"Tox21 needs the DeepTox files {', '.join(missing)} in this folder")
    return folder


def tox21_source(root: str | os.PathLike | None) -> tuple[str, Path]:
    """("deeptox", the folder) when data_root(root)/tox21 holds the DeepTox files, else ("smiles",
    the SMILES file tox21.csv there); DataNotFound names both forms."""
    folder = data_root(root) / "tox21"
    if all((folder / name).is_file() for name in TOX21_FILES):
        return "deeptox", folder
    if (folder / SMILES_FILE).is_file():
        return "smiles", folder / SMILES_FILE
    raise DataNotFound(folder, f"Tox21 needs the DeepTox files {', '.join(TOX21_FILES)}, or the SMILES file "
                       f"{SMILES_FILE} (MoleculeNet's, features computed with RDKit), in this folder")


def file_kind(path: Path) -> str | None:
    """"csv" or "npz" for a path named as one (.csv, .csv.gz, .npz), else None."""
    suffixes = [suffix.lower() for suffix in path.suffixes[-2:]]
    if suffixes[-1:] == [".csv"] or suffixes == [".csv", ".gz"]:
        return "csv"
    return "npz" if suffixes[-1:] == [".npz"] else None


def load_dataset(
    spec: str,
    root: str | os.PathLike | None = None,
    label_column: str | None = None,
    download: bool = True,
    n_classes: int | None = None,
    class_labels: list | None = None,
) -> LabeledData:
    """The data set named by `spec` (see SPEC_FORMS), read from data_root(root).

    HTRU2, MNIST and Fashion-MNIST are downloaded on first use when `download` is true.
    `label_column` applies to CSV and NPZ files only (for any other data set it is an error);
    n_classes and class_labels, a trained model's classes, are what the labels of a CSV or NPZ
    file are checked against and mapped by.
    """
    name = spec.strip()
    lowered = name.lower()
    path = Path(name).expanduser()
    kind = file_kind(path)
    if label_column is not None and kind is None:
        raise ValueError(f"--label-column (label_column={label_column!r}) applies to CSV and NPZ files, "
                         f"not to the data set {spec!r}")
    if lowered == "synthetic":
        return make_synthetic()
    if lowered == "htru2":
        return read_htru2(ensure_dataset("htru2", root, download))
    if lowered in ("mnist", "fashion-mnist"):
        return read_idx_dataset(ensure_dataset(lowered, root, download), name=lowered)
    if lowered.startswith("uci:"):
        return read_uci(uci_folder(name[4:], root))
    if lowered == "tox21" or lowered.startswith("tox21:"):
        kind, where = tox21_source(root)
        if kind == "deeptox":
            return read_tox21(where, task=name[6:] or None)
        return read_tox21_smiles_task(where, task=name[6:] or None)
    if path.is_dir() and (path / f"{path.name}.txt").is_file():
        return read_uci(path)
    if kind is not None:
        if path.is_dir():
            raise DataError(path, "is a folder, not a data file")
        if not path.is_file():
            raise DataNotFound(path, "file not found")
        if kind == "npz":
            return read_npz_dataset(path, label_column=label_column, n_classes=n_classes, class_labels=class_labels)
        return read_csv_dataset(path, label_column=label_column, n_classes=n_classes, class_labels=class_labels)
    if path.suffix.lower() == ".npy":
        raise DataError(path, "is a .npy file (one array); minisnn reads .npz archives of named arrays, written "
                        "with np.savez(path, x=features, y=labels)")
    raise ValueError(f"unknown data set {spec!r}; use {SPEC_FORMS}")


@dataclass
class DatasetStatus:
    """One line of `minisnn data list`."""

    name: str
    present: bool
    location: str
    note: str = ""


def dataset_statuses(root: str | os.PathLike | None = None) -> list[DatasetStatus]:
    """Which known data sets are on disk under data_root(root), and where."""
    statuses = [DatasetStatus("synthetic", True, "built in", "make_synthetic()")]
    for name in REMOTE_DATASETS:
        folder = dataset_folder(name, root)
        missing = missing_files(name, folder)
        note = "downloads on first use" if missing else ""
        statuses.append(DatasetStatus(name, not missing, str(folder), note))
    uci_root = data_root(root) / "uci"
    names = list_uci_datasets(uci_root)
    statuses += [DatasetStatus(f"uci:{name}", True, str(uci_root / name)) for name in names]
    if not names:
        statuses.append(DatasetStatus("uci:NAME", False, str(uci_root), "place Fernandez-Delgado folders here"))
    tox21 = data_root(root) / "tox21"
    present = all((tox21 / name).is_file() for name in TOX21_FILES)
    smiles = not present and (tox21 / SMILES_FILE).is_file()
    note = "" if present else "SMILES: features from RDKit" if smiles else f"place the DeepTox files or {SMILES_FILE} here"
    statuses.append(DatasetStatus("tox21", present or smiles, str(tox21), note))
    return statuses

"""Protocols: from a trial's data set and protocol to training, validation and test arrays.

- {"name": "uci", "split": "kfold" | "halves", "fold": 0..3, "val_fraction": 0.15}: a UCI data
  set in the Fernandez-Delgado format. "kfold" (the default, the split the SNN paper tested on)
  trains on the training indices of one fold of conxuntos_kfold.dat and tests on its test
  indices; "halves" uses the two lines of conxuntos.dat. A data set shipped as two files
  (NAME_train_R.dat, NAME_test_R.dat) always uses the files, and the test file's scale is
  compared with the training file's (scale_check). Selected by accuracy.
- {"name": "kfold", "k": 10, "fold": M, "seed": 0}: nested k-fold cross-validation on the
  training data (HTRU2): stratified folds drawn with `seed`, test fold M, validation fold M - 1
  (mod k), training on the rest.
- {"name": "holdout", "val_fraction": 0.15}: the data set's own training and test parts (Tox21:
  all 12 tasks with missing labels); repetitions of a trial differ only in the model's seeds.
  Tox21 from the SMILES file (no DeepTox files; minisnn.data.tox21) has no test part: the
  protocol also takes "split" ("random", the default, or "scaffold"), "test_fraction" (0.1),
  "seed" (0, of the random split) and the features "radius" (2), "bits" (2048) and
  "descriptors" (true). The test molecules are drawn first, then the validation rows from the
  rest by the same rule (scaffold: whole scaffold groups on each side).

In "uci" and "holdout" the validation rows are a val_fraction of the training rows, stratified by
class (a random subset for multi-task targets), drawn with the trial's split seed. The trial
standardizes features with the statistics of the rows the model trains on (Split.standardized).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import numpy as np

from ..data.download import REMOTE_DATASETS, ensure_dataset
from ..data.preprocessing import Standardizer, stratified_kfold_indices, stratified_split
from ..data.molecules import FeatureSettings
from ..data.registry import load_dataset, tox21_source, uci_folder
from ..data.tox21 import read_tox21_smiles, read_tox21_tables, split_molecules
from ..data.uci import N_FOLDS, read_uci
from ..tasks import ClassificationTask, MultiTaskBinaryTask, Task

PROTOCOLS = ("uci", "kfold", "holdout")
UCI_SPLITS = ("kfold", "halves")
VAL_FRACTION = 0.15
# A test file counts as on another scale when a feature's mean lies more than MAX_MEAN_SHIFT of the
# training file's standard deviations from the training mean, or its standard deviation differs by
# more than a factor MAX_STD_RATIO.
MAX_MEAN_SHIFT = 1.0
MAX_STD_RATIO = 3.0


@dataclass
class Split:
    """Arrays of one trial: x_* (N_*, D) float64 standardized, y_* the task's targets."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: Task
    monitor: str  # the validation metric the protocol selects by
    notes: dict = field(default_factory=dict)  # JSON-able facts for the record (scale check, files)

    def standardized(self) -> "Split":
        """This split with features standardized by the training rows' statistics."""
        scaler = Standardizer().fit(self.x_train)
        return Split(scaler.transform(self.x_train), self.y_train, scaler.transform(self.x_val), self.y_val,
                     scaler.transform(self.x_test), self.y_test, self.task, self.monitor, self.notes)

    def joined(self) -> "Split":
        """Training and validation rows together as the training rows (the "retrain" rule)."""
        return Split(np.concatenate([self.x_train, self.x_val]), np.concatenate([self.y_train, self.y_val]),
                     self.x_val[:0], self.y_val[:0], self.x_test, self.y_test, self.task, self.monitor, self.notes)


def scale_check(x_train: np.ndarray, x_test: np.ndarray) -> dict:
    """How far the test file's features (M, D) lie from the training file's (N, D): the largest
    mean shift in training standard deviations, the range of std ratios (features constant in
    either file left out), and whether either exceeds MAX_MEAN_SHIFT / MAX_STD_RATIO ("mismatch")."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)  # (D,), (D,)
    varies = std > 0
    if not varies.any():
        return {"max_mean_shift_sd": 0.0, "feature": None, "std_ratio_min": 1.0, "std_ratio_max": 1.0,
                "mismatch": False}
    shift = np.abs(x_test.mean(axis=0) - mean)[varies] / std[varies]  # (D',)
    test_std = x_test.std(axis=0)  # (D,)
    # A feature constant in the test file (a pixel never set there) is no sign of another scale.
    spread = varies & (test_std > 0)
    ratio = test_std[spread] / std[spread] if spread.any() else np.ones(1)  # (D'',)
    worst = int(np.flatnonzero(varies)[int(np.argmax(shift))])
    mismatch = bool(shift.max() > MAX_MEAN_SHIFT or ratio.max() > MAX_STD_RATIO or ratio.min() < 1 / MAX_STD_RATIO)
    return {"max_mean_shift_sd": round(float(shift.max()), 6), "feature": worst,
            "std_ratio_min": round(float(ratio.min()), 6), "std_ratio_max": round(float(ratio.max()), 6),
            "mismatch": mismatch}


@functools.lru_cache(maxsize=8)
def _read_uci_cached(folder: str, fold: int | None):
    return read_uci(folder, fold=fold)


@functools.lru_cache(maxsize=4)
def _load_cached(dataset: str, root: str | None):
    return load_dataset(dataset, root, download=False)


TOX21_SMILES_KEYS = ("split", "test_fraction", "seed", "radius", "bits", "descriptors")
TOX21_TEST_FRACTION = 0.1


@functools.lru_cache(maxsize=2)
def _tox21_cached(folder: str):
    return read_tox21_tables(folder)


@functools.lru_cache(maxsize=2)
def _tox21_smiles_cached(path: str, settings: FeatureSettings):
    return read_tox21_smiles(path, settings)


def _check_keys(protocol: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(protocol) - {"name", *allowed})
    if unknown:
        raise ValueError(f"protocol {protocol['name']!r} takes {', '.join(allowed)}; unknown: {', '.join(unknown)}")


def _validation_rows(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows) of targets y: stratified for labels (N,), random for (N, T)."""
    if not 0 < fraction < 1:
        raise ValueError(f"val_fraction must lie in (0, 1), got {fraction}")
    if y.ndim == 1:
        return stratified_split(y, fraction, seed=seed)
    order = np.random.default_rng(seed).permutation(y.shape[0])  # (N,)
    n_val = int(round(fraction * y.shape[0]))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _holdout(x, y, x_test, y_test, task, monitor, fraction, seed, notes) -> Split:
    train, val = _validation_rows(y, fraction, seed)
    return Split(x[train], y[train], x[val], y[val], x_test, y_test, task, monitor, notes)


def _uci(dataset: str, protocol: dict, root, seed: int) -> Split:
    _check_keys(protocol, ("split", "fold", "val_fraction"))
    if not dataset.lower().startswith("uci:"):
        raise ValueError(f"the uci protocol needs a data set uci:NAME, got {dataset!r}")
    split, fold = protocol.get("split", "kfold"), protocol.get("fold", 0)
    if split not in UCI_SPLITS:
        raise ValueError(f"uci split must be one of {UCI_SPLITS}, got {split!r}")
    if fold not in range(N_FOLDS):
        raise ValueError(f"uci fold must be one of 0..{N_FOLDS - 1}, got {fold!r}")
    folder = str(uci_folder(dataset[4:], root))
    data = _read_uci_cached(folder, None)
    two_files = data.meta["indexed_rows"] == "train_file"
    notes = {"two_files": two_files, "scale_check": None}
    if two_files:
        notes["scale_check"] = scale_check(data.x_train, data.x_test)
    elif split == "kfold":
        data = _read_uci_cached(folder, fold)
    task = ClassificationTask(data.n_classes)
    return _holdout(data.x_train, data.y_train, data.x_test, data.y_test, task, "accuracy",
                    protocol.get("val_fraction", VAL_FRACTION), seed, notes)


def _kfold(dataset: str, protocol: dict, root) -> Split:
    _check_keys(protocol, ("k", "fold", "seed"))
    k, fold, fold_seed = protocol.get("k", 10), protocol.get("fold", 0), protocol.get("seed", 0)
    if not isinstance(k, int) or k < 3 or fold not in range(k):
        raise ValueError(f"kfold needs k >= 3 and fold in 0..k-1, got k={k!r}, fold={fold!r}")
    data = _load_cached(dataset, None if root is None else str(root))
    x, y = data.x_train, data.y_train  # (N, D), (N,)
    folds = stratified_kfold_indices(y, k, seed=fold_seed)
    test, val = folds[fold][1], folds[(fold - 1) % k][1]
    train = np.setdiff1d(np.arange(y.shape[0]), np.concatenate([test, val]))
    task = ClassificationTask(data.n_classes)
    return Split(x[train], y[train], x[val], y[val], x[test], y[test], task, task.monitor, {})


def _tox21_smiles(path, protocol: dict, fraction: float, seed: int) -> Split:
    """Tox21 from the SMILES file: test molecules, then validation rows, by the protocol's split."""
    settings = FeatureSettings(protocol.get("radius", 2), protocol.get("bits", 2048), protocol.get("descriptors", True))
    data = _tox21_smiles_cached(str(path), settings)
    kind, test_fraction = protocol.get("split", "random"), protocol.get("test_fraction", TOX21_TEST_FRACTION)
    if not 0 < fraction < 1 or not 0 < test_fraction < 1:
        raise ValueError(f"val_fraction and test_fraction must lie in (0, 1), got {fraction} and {test_fraction}")
    kept, test = split_molecules(data, kind, test_fraction, protocol.get("seed", 0))
    train, val = split_molecules(data, kind, fraction, seed, rows=kept)
    task = MultiTaskBinaryTask(len(data.task_names), data.task_names)
    notes = {"source": "smiles", "split": kind, "features": settings.config(), "rdkit": data.features.rdkit,
             "unparsed": len(data.features.unparsed), "report": data.report()}
    y = data.targets  # (N, T), NaN where missing
    return Split(data.x[train], y[train], data.x[val], y[val], data.x[test], y[test], task, task.monitor, notes)


def _tox21_protocol(protocol: dict, root, seed: int) -> Split:
    kind, where = tox21_source(root)
    fraction = protocol.get("val_fraction", VAL_FRACTION)
    if kind == "smiles":
        _check_keys(protocol, ("val_fraction",) + TOX21_SMILES_KEYS)
        return _tox21_smiles(where, protocol, fraction, seed)
    _check_keys(protocol, ("val_fraction",))
    tables = _tox21_cached(str(where))
    task = MultiTaskBinaryTask(len(tables.task_names), tables.task_names)
    y = task.targets_with_missing(tables.train.labels, tables.train.mask)  # (N, T)
    y_test = task.targets_with_missing(tables.test.labels, tables.test.mask)  # (M, T)
    return _holdout(tables.train.x, y, tables.test.x, y_test, task, task.monitor, fraction, seed, {})


def _holdout_protocol(dataset: str, protocol: dict, root, seed: int) -> Split:
    root = None if root is None else str(root)
    if dataset.lower() == "tox21":
        return _tox21_protocol(protocol, root, seed)
    _check_keys(protocol, ("val_fraction",))
    fraction = protocol.get("val_fraction", VAL_FRACTION)
    data = _load_cached(dataset, root)
    if data.x_test is None:
        raise ValueError(f"{dataset} has no test split; use the kfold protocol")
    task = ClassificationTask(data.n_classes)
    return _holdout(data.x_train, data.y_train, data.x_test, data.y_test, task, task.monitor, fraction, seed, {})


def load_split(dataset: str, protocol: dict, split_seed: int, root: str | os.PathLike | None = None) -> Split:
    """The split of `dataset` under `protocol` (module doc), not yet standardized; split_seed
    draws the validation rows."""
    name = protocol.get("name")
    if name == "uci":
        split = _uci(dataset, protocol, root, split_seed)
    elif name == "kfold":
        split = _kfold(dataset, protocol, root)
    elif name == "holdout":
        split = _holdout_protocol(dataset, protocol, root, split_seed)
    else:
        raise ValueError(f"unknown protocol {name!r}; protocols are {', '.join(PROTOCOLS)}")
    return split


def prepare_data(dataset: str, protocol: dict, root: str | os.PathLike | None = None) -> None:
    """Download the data set if it is a remote one (HTRU2) and check that its split loads, before
    any worker needs it (workers never download)."""
    if dataset.lower() in REMOTE_DATASETS:
        ensure_dataset(dataset.lower(), root, download=True)
    load_split(dataset, protocol, 0, root)

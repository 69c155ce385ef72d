"""From what a user asks for (data sets, methods, grid, protocol options) to the list of trial specs.

Data set families and their default protocols (minisnn.experiments.protocols):

- uci:NAME -> {"name": "uci", "split": "kfold", "fold": 0, "val_fraction": 0.15} (uci_split
  "halves" for conxuntos.dat; uci:all expands to every UCI data set under the data root);
- htru2 -> {"name": "kfold", "k": 10, "fold": M, "seed": 0} for M = 0..9;
- tox21 (all 12 tasks) and anything else -> {"name": "holdout", "val_fraction": 0.15}.

Each (data set, protocol, method, configuration, repetition) is one trial; trials with the same
key are listed once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..data.locations import data_root
from ..data.uci import list_uci_datasets
from ..methods import METHODS
from .grids import load_grid
from .protocols import UCI_SPLITS, VAL_FRACTION
from .spec import TrialSpec

HTRU2_FOLDS = 10
TOX21_SPLITS = ("random", "scaffold")  # test molecules of Tox21 from SMILES


def family(dataset: str) -> str | None:
    """"uci", "htru2", "tox21", or None for other data sets."""
    lowered = dataset.lower()
    if lowered.startswith("uci:"):
        return "uci"
    if lowered == "htru2":
        return "htru2"
    if lowered == "tox21" or lowered.startswith("tox21:"):
        return "tox21"
    return None


@dataclass
class ProtocolOptions:
    """uci_split: "kfold" (the paper's) or "halves"; uci_folds: which folds of conxuntos_kfold.dat;
    kfold_folds: which test folds of HTRU2's 10 (None: all); repetitions per trial; tox21_split:
    "random" or "scaffold" test molecules of Tox21 from SMILES (None: the protocol's default,
    random; the DeepTox files have their own split and take none)."""

    uci_split: str = "kfold"
    uci_folds: tuple[int, ...] = (0,)
    kfold_folds: tuple[int, ...] | None = None
    repetitions: int = 1
    val_fraction: float = VAL_FRACTION
    tox21_split: str | None = None

    def protocols(self, dataset: str) -> list[dict[str, Any]]:
        kind = family(dataset)
        if kind == "uci":
            if self.uci_split not in UCI_SPLITS:
                raise ValueError(f"uci split must be one of {UCI_SPLITS}, got {self.uci_split!r}")
            if self.uci_split == "halves":
                return [{"name": "uci", "split": "halves", "val_fraction": self.val_fraction}]
            return [{"name": "uci", "split": "kfold", "fold": fold, "val_fraction": self.val_fraction}
                    for fold in self.uci_folds]
        if kind == "htru2":
            folds = range(HTRU2_FOLDS) if self.kfold_folds is None else self.kfold_folds
            return [{"name": "kfold", "k": HTRU2_FOLDS, "fold": fold, "seed": 0} for fold in folds]
        if kind == "tox21" and self.tox21_split is not None:
            if self.tox21_split not in TOX21_SPLITS:
                raise ValueError(f"tox21 split must be one of {TOX21_SPLITS}, got {self.tox21_split!r}")
            return [{"name": "holdout", "val_fraction": self.val_fraction, "split": self.tox21_split}]
        return [{"name": "holdout", "val_fraction": self.val_fraction}]


def expand_datasets(names: list[str], root: str | os.PathLike | None = None) -> list[str]:
    """The data set names with uci:all replaced by every UCI data set under the data root, duplicates dropped."""
    out: list[str] = []
    for name in names:
        if name.lower() == "uci:all":
            found = list_uci_datasets(data_root(root) / "uci")
            if not found:
                raise ValueError(f"uci:all: no UCI data sets under {data_root(root) / 'uci'}")
            out += [f"uci:{entry}" for entry in found]
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def plan_trials(datasets: list[str], methods: list[str], grid: str, root: str | os.PathLike | None = None,
                training: dict[str, Any] | None = None, options: ProtocolOptions | None = None) -> list[TrialSpec]:
    """Every trial of the experiment, in a stable order (data set, protocol, method, configuration,
    repetition), each key once. `training` overrides the grid's training settings."""
    options = options or ProtocolOptions()
    unknown = [method for method in methods if method not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; methods are {', '.join(METHODS)}")
    if options.repetitions < 1:
        raise ValueError(f"repetitions must be at least 1, got {options.repetitions}")
    trials: dict[str, TrialSpec] = {}
    for dataset in expand_datasets(datasets, root):
        loaded = load_grid(grid, family(dataset))
        settings = {**loaded.training, **(training or {})}
        for protocol in options.protocols(dataset):
            for method in methods:
                for params in loaded.configurations(method):
                    for repetition in range(options.repetitions):
                        spec = TrialSpec(dataset, protocol, method, params, settings, repetition)
                        trials.setdefault(spec.key, spec)
    return list(trials.values())

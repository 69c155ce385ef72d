"""Preprocessing fitted on training data only: standardization, one-hot labels, splits and folds.

Every function that shuffles takes a seed and gives the same result for the same seed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .labeled import LabeledData

# A feature whose standard deviation is below this (relative to its scale) counts as constant.
CONSTANT_TOLERANCE = 1e-12


class Standardizer:
    """Zero mean, unit variance per feature, with statistics from the data passed to fit.

    A constant feature (zero variance in the fitting data) is only centred (scale 1), so it
    maps to 0 instead of dividing by zero.
    """

    def __init__(self):
        self.mean: np.ndarray | None = None  # (D,)
        self.scale: np.ndarray | None = None  # (D,)
        self.constant: np.ndarray | None = None  # (D,) bool

    def fit(self, x: np.ndarray) -> "Standardizer":
        x = np.asarray(x, dtype=np.float64)  # (N, D)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"fit needs a non-empty (N, D) array, got shape {x.shape}")
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.constant = std <= CONSTANT_TOLERANCE * np.maximum(1.0, np.abs(self.mean))
        self.scale = np.where(self.constant, 1.0, std)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(x - mean) / scale as float64 (N, D)."""
        if self.mean is None:
            raise RuntimeError("Standardizer.transform before fit")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"expected (N, {self.mean.shape[0]}) features, got shape {x.shape}")
        return (x - self.mean) / self.scale

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)


def standardize(data: LabeledData) -> LabeledData:
    """A copy of `data` standardized with statistics of its training split only."""
    scaler = Standardizer().fit(data.x_train)
    return replace(
        data,
        x_train=scaler.transform(data.x_train),
        x_test=None if data.x_test is None else scaler.transform(data.x_test),
        meta={**data.meta, "standardizer": scaler},
    )


def one_hot(labels: np.ndarray, n_classes: int, dtype=np.float64) -> np.ndarray:
    """Labels (N,) in [0, n_classes) as a one-hot matrix (N, n_classes)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got range [{labels.min()}, {labels.max()}]")
    encoded = np.zeros((labels.shape[0], n_classes), dtype=dtype)  # (N, C)
    encoded[np.arange(labels.shape[0]), labels] = 1
    return encoded


def _class_members(labels: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """For each class present, its sample indices in a seeded random order."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    return [rng.permutation(np.flatnonzero(labels == label)) for label in np.unique(labels)]


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices), sorted, with each class split in proportion.

    The validation set has round(val_fraction * N) samples where possible (largest remainders
    decide the rounding per class); a class keeps at least one sample in training.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    members = _class_members(labels, np.random.default_rng(seed))
    sizes = np.array([m.size for m in members])  # (K,)
    quota = val_fraction * sizes
    n_val = np.floor(quota).astype(np.int64)
    extra = int(round(val_fraction * sizes.sum())) - int(n_val.sum())
    n_val[np.argsort(-(quota - n_val), kind="stable")[:extra]] += 1
    n_val = np.minimum(n_val, sizes - 1)
    val = np.concatenate([m[:k] for m, k in zip(members, n_val)])
    train = np.concatenate([m[k:] for m, k in zip(members, n_val)])
    return np.sort(train), np.sort(val)


def _folds_from_assignment(fold_of: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)) for fold in range(k)]


def _check_folds(n: int, k: int) -> None:
    if not 2 <= k <= n:
        raise ValueError(f"k must lie in [2, {n}] for {n} samples, got {k}")


def kfold_indices(n: int, k: int, seed: int = 0, shuffle: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, test) index pairs; the test sets partition range(n) into near-equal parts."""
    _check_folds(n, k)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    fold_of = np.empty(n, dtype=np.int64)
    for fold, part in enumerate(np.array_split(order, k)):
        fold_of[part] = fold
    return _folds_from_assignment(fold_of, k)


def stratified_kfold_indices(labels: np.ndarray, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, test) index pairs whose test sets partition the samples, each class spread evenly.

    Classes are dealt round-robin into the folds, continuing where the previous class stopped,
    so fold sizes differ by at most one and each class's count differs by at most one per fold.
    """
    labels = np.asarray(labels)
    _check_folds(labels.shape[0], k)
    fold_of = np.empty(labels.shape[0], dtype=np.int64)
    start = 0
    for members in _class_members(labels, np.random.default_rng(seed)):
        fold_of[members] = (start + np.arange(members.size)) % k
        start = (start + members.size) % k
    return _folds_from_assignment(fold_of, k)

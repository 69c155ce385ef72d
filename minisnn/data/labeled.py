"""LabeledData: features and integer labels of a classification problem, with an optional test split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class LabeledData:
    """x_train (N, D) float, y_train (N,) int64 in [0, n_classes); the test split may be absent.

    class_labels: the original label of each class id where the file held text labels, else None.
    row_origin(split, row): where a row of split "train" or "test" was read ("FILE, line N"),
    for error messages; readers that know set it.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    n_classes: int
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    feature_names: list[str] | None = None
    meta: dict = field(default_factory=dict)
    class_labels: list[str] | None = None
    row_origin: Callable[[str, int], str] | None = field(default=None, repr=False, compare=False)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def origin(self, split: str, row: int) -> str:
        """Where row `row` (0-based) of split "train" or "test" was read."""
        if self.row_origin is not None:
            return self.row_origin(split, row)
        return f"{self.name} {split} split, row {row + 1}"

"""LabeledData: features and integer labels of a classification problem, with an optional test split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LabeledData:
    """x_train (N, D) float, y_train (N,) int64 in [0, n_classes); the test split may be absent."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    n_classes: int
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    feature_names: list[str] | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

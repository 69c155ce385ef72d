"""The built-in default problem: a deterministic synthetic classification task.

Inputs are N(0, 1); labels are the argmax of a fixed random two-layer tanh "teacher" network,
so the task is nonlinear but learnable, and identical for a given seed on every machine.
"""

from __future__ import annotations

import numpy as np

from .labeled import LabeledData


def make_synthetic(
    n_train: int = 8192,
    n_test: int = 2048,
    n_features: int = 16,
    n_classes: int = 4,
    teacher_width: int = 16,
    teacher_gain: float = 1.0,
    seed: int = 0,
) -> LabeledData:
    """A synthetic problem: x ~ N(0, I), y = argmax(tanh(gain * x W1) W2), W1 ~ N(0, 1/D), W2 ~ N(0, 1)."""
    if min(n_train, n_features, teacher_width) < 1 or n_test < 0 or n_classes < 2:
        raise ValueError(
            "make_synthetic needs n_train, n_features, teacher_width >= 1, n_test >= 0 and n_classes >= 2; "
            f"got n_train={n_train}, n_test={n_test}, n_features={n_features}, n_classes={n_classes}, "
            f"teacher_width={teacher_width}"
        )
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((n_features, teacher_width)) / np.sqrt(n_features)  # (D, H)
    w2 = rng.standard_normal((teacher_width, n_classes))  # (H, C)
    x = rng.standard_normal((n_train + n_test, n_features))  # (N, D)
    y = np.argmax(np.tanh(teacher_gain * x @ w1) @ w2, axis=1).astype(np.int64)  # (N,)
    return LabeledData(
        name="synthetic",
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[n_train:] if n_test else None,
        y_test=y[n_train:] if n_test else None,
        n_classes=n_classes,
        meta={"seed": seed, "teacher_width": teacher_width, "teacher_gain": teacher_gain},
    )

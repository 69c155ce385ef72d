"""Metrics on host NumPy arrays: accuracy, balanced accuracy, ROC AUC (binary and per task), RMSE, R^2.

Every function takes plain host arrays (predictions gathered from a model) and returns Python
floats (or a float array per task), raising ValueError that names the problem for bad input.
"""

from __future__ import annotations

import numpy as np


def _labels(y: np.ndarray, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-d array, got shape {y.shape}")
    if y.dtype.kind not in "iub":
        raise ValueError(f"{what} must be integer labels, got dtype {y.dtype}")
    return y


def _same_length(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{names} must have the same number of rows, got {a.shape[0]} and {b.shape[0]}")


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The fraction of predicted labels y_pred (N,) equal to y_true (N,)."""
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    _same_length(y_true, y_pred, "y_true and y_pred")
    return float(np.mean(y_true == y_pred))


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The mean over the classes present in y_true (N,) of each class's recall (the fraction of its
    samples predicted as it); classes only in y_pred add nothing."""
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    _same_length(y_true, y_pred, "y_true and y_pred")
    classes, index = np.unique(y_true, return_inverse=True)  # (K,), (N,)
    hits = np.bincount(index, weights=y_true == y_pred, minlength=classes.size)  # (K,)
    return float(np.mean(hits / np.bincount(index, minlength=classes.size)))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of x (N,) in ascending order, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="stable")  # (N,)
    ordered = x[order]
    starts_group = np.concatenate([[True], ordered[1:] != ordered[:-1]])  # (N,)
    starts = np.flatnonzero(starts_group)  # (G,) first sorted position of each tie group
    ends = np.append(starts[1:], x.size)  # (G,) one past its last position
    ranks = np.empty(x.size)  # (N,)
    ranks[order] = ((starts + 1 + ends) / 2.0)[np.cumsum(starts_group) - 1]
    return ranks


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of scores (N,) for binary labels y_true (N,) in {0, 1}.

    The Mann-Whitney form: the probability that a random positive scores higher than a random
    negative, ties counting 1/2, computed from average ranks in O(N log N):
    AUC = (sum of the positives' ranks - P(P + 1)/2) / (P * Q) for P positives and Q negatives.
    Raises ValueError when only one class is present (the AUC is undefined) or a score is NaN.
    """
    y_true = _labels(y_true, "y_true")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != y_true.shape:
        raise ValueError(f"scores must have the labels' shape {y_true.shape}, got {scores.shape}")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError(f"ROC AUC needs labels in {{0, 1}}, found {sorted(set(np.unique(y_true).tolist()) - {0, 1})}")
    if np.isnan(scores).any():
        raise ValueError(f"scores hold {int(np.isnan(scores).sum())} NaN values, the first at row "
                         f"{int(np.flatnonzero(np.isnan(scores))[0])}")
    positive = y_true == 1  # (N,)
    n_pos = int(positive.sum())
    n_neg = y_true.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"ROC AUC needs both classes, but all {y_true.size} labels are {int(y_true[0])}")
    rank_sum = float(average_ranks(scores)[positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def roc_auc_per_task(targets: np.ndarray, scores: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """ROC AUC of each column of scores (N, T) against binary targets (N, T), over the rows where
    mask (N, T) (bool; None means all) marks the label as observed.

    A task whose observed labels hold a single class (or none) has no AUC: its entry is NaN.
    """
    targets, scores = np.asarray(targets), np.asarray(scores)
    if targets.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(f"targets and scores must both have shape (N, T), got {targets.shape} and {scores.shape}")
    if mask is None:
        mask = np.ones(targets.shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != targets.shape or mask.dtype != bool:
        raise ValueError(f"mask must be a bool array of shape {targets.shape}, got {mask.dtype} {mask.shape}")
    out = np.full(targets.shape[1], np.nan)  # (T,)
    for task in range(targets.shape[1]):
        observed = mask[:, task]  # (N,)
        labels = targets[observed, task]
        bad = ~np.isin(labels, (0, 1))
        if bad.any():
            raise ValueError(f"task {task}: observed labels must be 0 or 1, found {labels[bad][0]}")
        if labels.size and labels.min() != labels.max():
            out[task] = roc_auc(labels.astype(np.int64), scores[observed, task])
    return out


def mean_roc_auc(per_task: np.ndarray) -> float:
    """The mean of per-task AUCs (T,), skipping the NaN entries of tasks with a single observed
    class; NaN when no task has both classes."""
    per_task = np.asarray(per_task, dtype=np.float64)
    defined = per_task[~np.isnan(per_task)]
    return float(defined.mean()) if defined.size else float("nan")


def _regression_pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim not in (1, 2) or y_true.shape[0] == 0:
        raise ValueError(f"y_true and y_pred must have one shape (N,) or (N, T) with N >= 1, "
                         f"got {y_true.shape} and {y_pred.shape}")
    return y_true.reshape(y_true.shape[0], -1), y_pred.reshape(y_pred.shape[0], -1)


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error over all elements of y_true, y_pred (N,) or (N, T)."""
    y_true, y_pred = _regression_pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y_pred - y_true) ** 2)))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The coefficient of determination 1 - SS_res/SS_tot per output column, averaged over the
    columns of (N,) or (N, T) arrays; ValueError when a column's targets are constant (SS_tot = 0)."""
    y_true, y_pred = _regression_pair(y_true, y_pred)
    total = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)  # (T,)
    if (total == 0).any():
        raise ValueError(f"R^2 is undefined for constant targets (column {int(np.flatnonzero(total == 0)[0])})")
    residual = ((y_true - y_pred) ** 2).sum(axis=0)  # (T,)
    return float(np.mean(1.0 - residual / total))


__all__ = ["accuracy", "balanced_accuracy", "average_ranks", "roc_auc", "roc_auc_per_task", "mean_roc_auc",
           "rmse", "r2"]

"""Metrics against independent computations: pairwise AUC counts, SciPy's Mann-Whitney U, direct formulas."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minisnn.metrics import (
    accuracy,
    average_ranks,
    balanced_accuracy,
    mean_roc_auc,
    r2,
    rmse,
    roc_auc,
    roc_auc_per_task,
)


def pairwise_auc(y, s):
    """P(score of a positive > score of a negative), ties 1/2, by comparing every pair: O(P*Q)."""
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    return ((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 300), levels=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_roc_auc_equals_the_pairwise_count_with_many_ties(n, levels, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]  # both classes present
    scores = rng.integers(0, levels, n).astype(float)  # few distinct values: many ties
    assert roc_auc(y, scores) == pytest.approx(pairwise_auc(y, scores), abs=1e-12)


def test_roc_auc_matches_scipy_mann_whitney():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.2).astype(int)
    scores = np.round(rng.standard_normal(2000) + y, 1)  # rounding makes ties
    u = stats.mannwhitneyu(scores[y == 1], scores[y == 0]).statistic
    assert roc_auc(y, scores) == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()), rel=1e-12)
    np.testing.assert_array_equal(average_ranks(scores), stats.rankdata(scores))


def test_roc_auc_known_values():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert roc_auc(np.array([True, False, True]), [3.0, 1.0, 2.0]) == 1.0
    assert roc_auc([0, 1], [-np.inf, np.inf]) == 1.0


def test_roc_auc_errors():
    with pytest.raises(ValueError, match="needs both classes, but all 3 labels are 1"):
        roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"labels in \{0, 1\}, found \[2\]"):
        roc_auc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="1 NaN values, the first at row 1"):
        roc_auc([0, 1, 1], [0.1, np.nan, 0.3])
    with pytest.raises(ValueError, match=r"scores must have the labels' shape \(3,\)"):
        roc_auc([0, 1, 1], [0.1, 0.3])
    with pytest.raises(ValueError, match="must be integer labels"):
        roc_auc([0.0, 1.0], [0.1, 0.3])


def test_per_task_auc_uses_observed_labels_only_and_skips_single_class_tasks():
    rng = np.random.default_rng(2)
    n = 400
    targets = rng.integers(0, 2, (n, 3)).astype(float)
    scores = rng.standard_normal((n, 3)) + targets
    mask = rng.random((n, 3)) < 0.7
    targets[:, 2] = 0.0  # task 2: a single class everywhere
    targets[~mask] = np.nan  # missing labels may hold anything
    per_task = roc_auc_per_task(targets, scores, mask)
    for task in range(2):
        observed = mask[:, task]
        assert per_task[task] == pytest.approx(pairwise_auc(targets[observed, task], scores[observed, task]))
    assert np.isnan(per_task[2])
    assert mean_roc_auc(per_task) == pytest.approx(per_task[:2].mean())
    assert np.isnan(mean_roc_auc(np.array([np.nan, np.nan])))
    full = roc_auc_per_task(np.nan_to_num(targets[:, :2]), scores[:, :2])  # mask None: every label counts
    assert full[0] == pytest.approx(roc_auc(np.nan_to_num(targets[:, 0]).astype(int), scores[:, 0]))


def test_per_task_auc_errors():
    with pytest.raises(ValueError, match=r"shape \(N, T\)"):
        roc_auc_per_task(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="mask must be a bool array"):
        roc_auc_per_task(np.zeros((4, 2)), np.zeros((4, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="task 1: observed labels must be 0 or 1, found 0.5"):
        roc_auc_per_task(np.array([[0, 0.5], [1, 1]]), np.zeros((2, 2)))


def test_accuracy_and_balanced_accuracy():
    y_true = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 0, 0, 0, 0, 1, 0, 0])
    assert accuracy(y_true, y_pred) == 0.7
    assert balanced_accuracy(y_true, y_pred) == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert balanced_accuracy(np.array([1, 1]), np.array([1, 3])) == 0.5  # class 3 is absent from y_true
    with pytest.raises(ValueError, match="same number of rows, got 10 and 9"):
        accuracy(y_true, y_pred[:9])
    with pytest.raises(ValueError, match="non-empty 1-d"):
        balanced_accuracy(y_true[:, None], y_pred)


def test_rmse_and_r2():
    rng = np.random.default_rng(3)
    y = rng.standard_normal((50, 2))
    pred = y + rng.standard_normal((50, 2)) * 0.3
    assert rmse(y, pred) == pytest.approx(np.sqrt(((y - pred) ** 2).mean()))
    expected = np.mean([1 - ((y[:, j] - pred[:, j]) ** 2).sum() / ((y[:, j] - y[:, j].mean()) ** 2).sum()
                        for j in range(2)])
    assert r2(y, pred) == pytest.approx(expected)
    assert r2(y[:, 0], y[:, 0]) == 1.0 and r2(y[:, 0], np.full(50, y[:, 0].mean())) == pytest.approx(0.0)
    with pytest.raises(ValueError, match=r"constant targets \(column 1\)"):
        r2(np.column_stack([y[:, 0], np.ones(50)]), pred)
    with pytest.raises(ValueError, match="one shape"):
        rmse(y, pred[:, :1])

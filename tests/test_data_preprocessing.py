"""Preprocessing fitted on training data: standardization, one-hot, stratified splits and k-fold indices."""

import numpy as np
import pytest

from minisnn.data import (
    LabeledData,
    Standardizer,
    kfold_indices,
    one_hot,
    standardize,
    stratified_kfold_indices,
    stratified_split,
)


def test_standardizer_zero_mean_unit_variance_and_constant_features():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.5, size=(500, 4))
    x[:, 2] = 7.0  # constant feature
    scaler = Standardizer().fit(x)
    z = scaler.transform(x)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z[:, [0, 1, 3]].std(axis=0), 1.0, rtol=1e-12)
    assert np.array_equal(scaler.constant, [False, False, True, False])
    assert np.all(z[:, 2] == 0.0) and np.isfinite(z).all()
    np.testing.assert_allclose(scaler.transform(x[:5]), (x[:5] - x.mean(0)) / np.where(scaler.constant, 1, x.std(0)))


def test_standardize_uses_training_statistics_only():
    rng = np.random.default_rng(1)
    data = LabeledData("t", rng.normal(0, 1, (200, 3)), np.zeros(200, dtype=np.int64), 2,
                       x_test=rng.normal(10, 5, (50, 3)), y_test=np.zeros(50, dtype=np.int64))
    result = standardize(data)
    mean, std = data.x_train.mean(0), data.x_train.std(0)
    np.testing.assert_allclose(result.x_test, (data.x_test - mean) / std)
    assert np.all(result.x_test.mean(0) > 5)  # test statistics were not used
    assert result.meta["standardizer"].mean is not None and data.x_train is not result.x_train
    with pytest.raises(ValueError, match=r"expected \(N, 3\)"):
        result.meta["standardizer"].transform(np.zeros((2, 4)))
    with pytest.raises(RuntimeError, match="before fit"):
        Standardizer().transform(np.zeros((1, 1)))


def test_one_hot():
    encoded = one_hot(np.array([2, 0, 1, 2]), 3)
    np.testing.assert_array_equal(encoded, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert one_hot(np.array([1]), 2, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="integer"):
        one_hot(np.array([0.0, 1.0]), 3)


def test_stratified_split_keeps_class_proportions_and_is_seeded():
    y = np.repeat([0, 1, 2], [600, 300, 100])
    train, val = stratified_split(y, 0.2, seed=5)
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(1000))
    assert val.size == 200
    np.testing.assert_array_equal(np.bincount(y[val]), [120, 60, 20])
    again = stratified_split(y, 0.2, seed=5)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(stratified_split(y, 0.2, seed=6)[1], val)
    tiny_train, tiny_val = stratified_split(np.array([0, 0, 0, 1]), 0.5, seed=0)
    assert 3 in tiny_train  # the single sample of class 1 stays in training
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(y, 1.0)


@pytest.mark.parametrize("n, k", [(10, 2), (103, 4), (7, 7)])
def test_kfold_partitions_the_samples(n, k):
    folds = kfold_indices(n, k, seed=2)
    tests = [test for _, test in folds]
    assert np.array_equal(np.sort(np.concatenate(tests)), np.arange(n))
    assert max(t.size for t in tests) - min(t.size for t in tests) <= 1
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0 and train.size + test.size == n
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, kfold_indices(n, k, seed=2)))
    unshuffled = kfold_indices(n, k, shuffle=False)
    assert np.array_equal(unshuffled[0][1], np.arange(unshuffled[0][1].size))
    with pytest.raises(ValueError, match="k must lie"):
        kfold_indices(n, 1)


def test_stratified_kfold_spreads_every_class_evenly():
    y = np.repeat([0, 1, 2], [50, 23, 7])
    folds = stratified_kfold_indices(y, 4, seed=3)
    tests = [test for _, test in folds]
    assert np.array_equal(np.sort(np.concatenate(tests)), np.arange(y.size))
    counts = np.array([np.bincount(y[test], minlength=3) for test in tests])  # (k, classes)
    assert np.all(counts.max(axis=0) - counts.min(axis=0) <= 1)
    assert max(t.size for t in tests) - min(t.size for t in tests) <= 1
    assert np.array_equal(stratified_kfold_indices(y, 4, seed=3)[2][1], tests[2])
    assert not all(np.array_equal(a, b[1]) for a, b in zip(tests, stratified_kfold_indices(y, 4, seed=4)))

"""ArrayDataset and BatchIterator: seeded per-epoch shuffling, batching, stratification, backend transfer."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minisnn.backends.numpy_backend import NumpyBackend
from minisnn.data import ArrayDataset, BatchIterator, make_synthetic


def dataset(n, n_features=3, n_classes=3):
    x = np.arange(n * n_features, dtype=np.float64).reshape(n, n_features)  # row i starts with i*D
    y = np.arange(n) % n_classes
    return ArrayDataset(x, y)


def epoch_indices(iterator, epoch):
    """Sample indices in the order an epoch yields them (rows are identified by x[:, 0] / D)."""
    d = iterator.data.x.shape[1]
    return np.concatenate([np.asarray(xb)[:, 0] // d for xb, _ in iterator.epoch(epoch)]).astype(np.int64)


def expected_sizes(n, batch_size):
    """Full batches, then the rest on its own if it is at least half a batch, else joined to the last one."""
    full, rest = divmod(n, batch_size)
    if rest == 0:
        return [batch_size] * full
    if full == 0 or 2 * rest >= batch_size:
        return [batch_size] * full + [rest]
    return [batch_size] * (full - 1) + [batch_size + rest]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), batch_size=st.integers(1, 64), seed=st.integers(0, 2**32 - 1),
       stratified=st.booleans())
def test_every_sample_exactly_once_per_epoch(n, batch_size, seed, stratified):
    iterator = BatchIterator(dataset(n), batch_size, seed=seed, stratified=stratified)
    for epoch in range(2):
        seen = epoch_indices(iterator, epoch)
        assert np.array_equal(seen, iterator.order(epoch))  # batches are consecutive slices of the order
        assert np.array_equal(np.sort(seen), np.arange(n))
    sizes = [len(yb) for _, yb in iterator.epoch(0)]
    assert sizes == expected_sizes(n, batch_size) and len(sizes) == len(iterator)
    assert [len(i) for i in iterator.batch_indices(1)] == sizes
    if n > batch_size:  # no batch is under half a batch, none above one and a half
        assert all(2 * size >= batch_size and size < 1.5 * batch_size for size in sizes)


def test_a_single_sample_tail_joins_the_batch_before_it():
    iterator = BatchIterator(dataset(65), 32, seed=0)
    assert [len(i) for i in iterator.batch_indices(0)] == [32, 33] and len(iterator) == 2
    assert [len(i) for i in BatchIterator(dataset(80), 32).batch_indices(0)] == [32, 32, 16]  # half a batch stays
    assert [len(i) for i in BatchIterator(dataset(5), 32).batch_indices(0)] == [5]  # nothing to join


@settings(max_examples=30, deadline=None)
@given(n=st.integers(30, 300), seed=st.integers(0, 2**32 - 1), stratified=st.booleans())
def test_order_differs_between_epochs_and_repeats_for_a_seed(n, seed, stratified):
    first = BatchIterator(dataset(n), 7, seed=seed, stratified=stratified)
    again = BatchIterator(dataset(n), 7, seed=seed, stratified=stratified)
    orders = [epoch_indices(first, epoch) for epoch in range(3)]
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    for epoch in range(3):
        assert np.array_equal(epoch_indices(again, epoch), orders[epoch])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 200), batch_size=st.integers(1, 50), seed=st.integers(0, 1000))
def test_drop_last_yields_only_full_batches(n, batch_size, seed):
    if batch_size > n:
        with pytest.raises(ValueError, match="no batches"):
            BatchIterator(dataset(n), batch_size, seed=seed, drop_last=True)
        return
    iterator = BatchIterator(dataset(n), batch_size, seed=seed, drop_last=True)
    batches = list(iterator.epoch(0))
    assert len(batches) == len(iterator) == n // batch_size
    assert all(len(yb) == batch_size for _, yb in batches)
    seen = epoch_indices(iterator, 0)
    assert np.unique(seen).size == seen.size  # no repeats even when some samples are dropped


def test_iteration_advances_the_epoch_and_other_seeds_differ():
    iterator = BatchIterator(dataset(50), 10, seed=3)
    first = np.concatenate([xb[:, 0] for xb, _ in iterator])
    second = np.concatenate([xb[:, 0] for xb, _ in iterator])
    assert iterator.next_epoch == 2
    assert np.array_equal(first // 3, iterator.order(0)) and np.array_equal(second // 3, iterator.order(1))
    assert not np.array_equal(BatchIterator(dataset(50), 10, seed=4).order(0), iterator.order(0))


def test_no_shuffle_keeps_file_order():
    iterator = BatchIterator(dataset(23), 5, shuffle=False)
    assert np.array_equal(epoch_indices(iterator, 0), np.arange(23))
    assert np.array_equal(epoch_indices(iterator, 5), np.arange(23))


def test_stratified_batches_hold_class_proportions():
    y = np.array([0] * 900 + [1] * 90 + [2] * 10)  # 90% / 9% / 1%
    data = ArrayDataset(np.zeros((1000, 1)), y)
    iterator = BatchIterator(data, 100, seed=11, stratified=True)
    for epoch in range(3):
        for _, yb in iterator.epoch(epoch):
            counts = np.bincount(yb, minlength=3)
            assert abs(counts[0] - 90) <= 1 and abs(counts[1] - 9) <= 1 and abs(counts[2] - 1) <= 1
    plain = BatchIterator(data, 100, seed=11)
    worst = max(abs(np.bincount(yb, minlength=3)[1] - 9) for _, yb in plain.epoch(0))
    assert worst > 1  # plain shuffling does not balance batches this tightly


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("resident", [True, False])
def test_batches_reach_the_backend_with_its_dtype_and_int64_labels(dtype, resident):
    data = make_synthetic(n_train=37, n_test=0, n_features=5)
    backend = NumpyBackend(dtype=dtype)
    source = ArrayDataset.from_labeled(data)
    iterator = BatchIterator(source, 8, seed=1, backend=backend, device_resident=resident)
    order = iterator.order(0)
    batches = list(iterator.epoch(0))
    for i, (xb, yb) in enumerate(batches):
        assert xb.dtype == np.dtype(dtype) and yb.dtype == np.int64
        rows = order[i * 8 : (i + 1) * 8]
        np.testing.assert_array_equal(xb, data.x_train[rows].astype(dtype))
        np.testing.assert_array_equal(yb, data.y_train[rows])
    assert sum(len(yb) for _, yb in batches) == 37


def test_multi_column_targets_are_batched_in_the_backend_dtype_with_their_rows():
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    y = np.column_stack([np.arange(10.0), np.where(np.arange(10) % 3 == 0, np.nan, 1.0)])  # (10, 2), NaN kept
    backend = NumpyBackend(dtype="float32")
    for resident in (True, False):
        iterator = BatchIterator(ArrayDataset(x, y), 4, seed=2, backend=backend, device_resident=resident)
        for (xb, yb), rows in zip(iterator.epoch(0), iterator.batch_indices(0)):
            assert yb.dtype == np.float32 and yb.shape == (len(rows), 2)
            np.testing.assert_array_equal(xb[:, 0] / 2, yb[:, 0])
            np.testing.assert_array_equal(yb, y[rows].astype(np.float32))
    with pytest.raises(ValueError, match=r"stratified batches need labels y \(N,\), got targets of shape \(10, 2\)"):
        BatchIterator(ArrayDataset(x, y), 4, stratified=True)


def test_dataset_validation_and_splits():
    data = make_synthetic(n_train=10, n_test=4, n_features=2)
    assert len(ArrayDataset.from_labeled(data, "test")) == 4
    with pytest.raises(ValueError, match="no 'test' split"):
        ArrayDataset.from_labeled(make_synthetic(n_train=10, n_test=0), "test")
    with pytest.raises(ValueError, match=r"need x \(N, D\) and y \(N,\) or \(N, T\)"):
        ArrayDataset(np.zeros((3, 2)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="targets must be numeric"):
        ArrayDataset(np.zeros((2, 2)), np.array([["a"], ["b"]]))
    with pytest.raises(ValueError, match="targets must be numeric"):
        ArrayDataset(np.zeros((2, 2)), np.array(["a", "b"]))
    with pytest.raises(ValueError, match="integers"):
        ArrayDataset(np.zeros((2, 2)), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="batch_size"):
        BatchIterator(ArrayDataset(np.zeros((2, 2)), np.array([0, 1])), 0)

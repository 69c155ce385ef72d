"""In-memory data sets and a seeded mini-batch iterator that hands batches to a backend.

The sample order of epoch e is a pure function of (seed, e): the same seed gives the same
epochs on every run and every backend; different epochs give different orders.

A short last batch: without drop_last, a final partial batch holding fewer than half of
batch_size samples joins the batch before it (65 samples in batches of 32 give batches of 32
and 33, not 32, 32 and 1); a partial batch of at least half a batch stays a batch of its own.
A batch of one sample weighs as much as a whole batch in the mean loss, and its gradient is
noisy: an 8-layer SNN (width 256, SGD lr 0.01, momentum 0.9, float32) on 65 synthetic samples
in batches of 32 went to NaN within 20 epochs for 4 of 5 seeds with the batch of one, for none
with the tail merged (nor with the tail's loss weighted by its size, or with it dropped), on
the numpy and numba backends alike.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from .labeled import LabeledData


class ArrayDataset:
    """Features x (N, D) and, in host memory, either integer labels y (N,) or targets y (N, T)
    (numeric, e.g. regression values or binary labels with NaN where missing)."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim != 2 or y.ndim not in (1, 2) or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(f"need x (N, D) and y (N,) or (N, T) with N >= 1, got x {x.shape} and y {y.shape}")
        if y.dtype.kind not in "biuf":
            raise ValueError(f"targets must be numeric, got dtype {y.dtype}")
        if y.ndim == 1 and y.dtype.kind not in "iu" and not np.array_equal(y, np.round(y)):
            raise ValueError(f"labels y (N,) must be integers, got dtype {y.dtype}")
        self.x = x  # (N, D)
        self.y = y.astype(np.int64) if y.ndim == 1 else y  # (N,) labels or (N, T) targets

    @classmethod
    def from_labeled(cls, data: LabeledData, split: str = "train") -> "ArrayDataset":
        """The "train" or "test" split of a LabeledData."""
        if split == "train":
            return cls(data.x_train, data.y_train)
        if split == "test" and data.x_test is not None:
            return cls(data.x_test, data.y_test)
        raise ValueError(f"{data.name} has no {split!r} split")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, index) -> tuple[np.ndarray, np.ndarray]:
        return self.x[index], self.y[index]


def _rng(seed: int, epoch: int) -> np.random.Generator:
    if seed < 0 or epoch < 0:
        raise ValueError(f"seed and epoch must be >= 0, got seed={seed}, epoch={epoch}")
    return np.random.default_rng([seed, epoch])


def stratified_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation (N,) in which every window holds the classes in about their overall proportions.

    Member j of class c (shuffled within the class) gets position (j + u_c) / n_c with a random
    offset u_c in [0, 1); sorting by position interleaves the classes evenly.
    """
    positions = np.empty(labels.shape[0])  # (N,)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        positions[members] = (np.arange(members.size) + rng.random()) / members.size
    return np.argsort(positions, kind="stable")


class BatchIterator:
    """Mini-batches of (x, y), reshuffled every epoch from the seed.

    Iterating yields one epoch of batches and advances to the next epoch; `epoch(e)` gives
    epoch e directly and `batch_indices(e)` its sample indices. With a backend, x and float
    targets go to the backend's dtype and device and labels to int64; `device_resident` moves
    the whole data set once and gathers batches on the device. `stratified` needs labels (N,).
    """

    def __init__(
        self,
        data: ArrayDataset,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        stratified: bool = False,
        backend: Any = None,
        device_resident: bool = True,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if drop_last and batch_size > len(data):
            raise ValueError(f"drop_last with batch_size {batch_size} > {len(data)} samples leaves no batches")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if stratified and data.y.ndim != 1:
            raise ValueError(f"stratified batches need labels y (N,), got targets of shape {data.y.shape}")
        self.data = data
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.stratified = stratified
        self.backend = backend
        self.next_epoch = 0
        self._device = None
        if backend is not None and device_resident:
            self._device = (backend.asarray(data.x), self._targets_to(backend, data.y))

    @staticmethod
    def _targets_to(backend: Any, y: np.ndarray) -> Any:
        """Labels (N,) as int64, targets (N, T) in the backend's float dtype."""
        return backend.asarray(y, dtype=np.int64) if y.ndim == 1 else backend.asarray(y, dtype=backend.dtype)

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(len(self.data), self.batch_size)
        own_batch = rest > 0 and not self.drop_last and (full == 0 or 2 * rest >= self.batch_size)
        return full + int(own_batch)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices (N,) of epoch `epoch`, in batch order (before drop_last or merging)."""
        if not self.shuffle:
            return np.arange(len(self.data))
        rng = _rng(self.seed, epoch)
        if self.stratified:
            return stratified_order(self.data.y, rng)
        return rng.permutation(len(self.data))

    def batch_indices(self, epoch: int) -> list[np.ndarray]:
        """The sample indices (B,) of every batch of epoch `epoch`: consecutive slices of order(),
        a short tail dropped (drop_last) or joined to the batch before it (see the module)."""
        order = self.order(epoch)
        starts = [batch * self.batch_size for batch in range(len(self))]
        stops = starts[1:] + [starts[-1] + self.batch_size if self.drop_last else len(order)]
        return [order[start:stop] for start, stop in zip(starts, stops)]

    def epoch(self, epoch: int) -> Iterator[tuple[Any, Any]]:
        """The batches (x (B, D), y (B,) or (B, T)) of epoch `epoch`."""
        for indices in self.batch_indices(epoch):
            yield self._gather(indices)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        epoch, self.next_epoch = self.next_epoch, self.next_epoch + 1
        return self.epoch(epoch)

    def _gather(self, indices: np.ndarray) -> tuple[Any, Any]:
        if self._device is not None:
            return take_rows(self.backend, self._device, indices)
        x, y = self.data[indices]
        if self.backend is None:
            return x, y
        return self.backend.asarray(x), self._targets_to(self.backend, y)


def take_rows(backend: Any, arrays: tuple[Any, ...], indices: np.ndarray) -> tuple[Any, ...]:
    """The rows `indices` (B,) (host integers) of each backend array (N, ...) in `arrays`."""
    on_device = backend.asarray(indices, dtype=np.int64)
    return tuple(a[on_device] for a in arrays)

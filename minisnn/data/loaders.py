"""In-memory data sets and a seeded mini-batch iterator that hands batches to a backend.

The sample order of epoch e is a pure function of (seed, e): the same seed gives the same
epochs on every run and every backend; different epochs give different orders.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from .labeled import LabeledData


class ArrayDataset:
    """Features x (N, D) and integer labels y (N,) in host memory."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(f"need x (N, D) and y (N,) with N >= 1, got x {x.shape} and y {y.shape}")
        if y.dtype.kind not in "iu" and not np.array_equal(y, np.round(y)):
            raise ValueError(f"labels must be integers, got dtype {y.dtype}")
        self.x = x  # (N, D)
        self.y = y.astype(np.int64)  # (N,)

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
    epoch e directly. With a backend, x goes to the backend's dtype and device and y to int64;
    `device_resident` moves the whole data set once and gathers batches on the device.
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
            self._device = (backend.asarray(data.x), backend.asarray(data.y, dtype=np.int64))

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(len(self.data), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices (N,) of epoch `epoch`, in batch order (before drop_last)."""
        if not self.shuffle:
            return np.arange(len(self.data))
        rng = _rng(self.seed, epoch)
        if self.stratified:
            return stratified_order(self.data.y, rng)
        return rng.permutation(len(self.data))

    def epoch(self, epoch: int) -> Iterator[tuple[Any, Any]]:
        """The batches (x (B, D), y (B,)) of epoch `epoch`."""
        order = self.order(epoch)
        for batch in range(len(self)):
            indices = order[batch * self.batch_size : (batch + 1) * self.batch_size]  # (B,)
            yield self._gather(indices)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        epoch, self.next_epoch = self.next_epoch, self.next_epoch + 1
        return self.epoch(epoch)

    def _gather(self, indices: np.ndarray) -> tuple[Any, Any]:
        if self._device is not None:
            x, y = self._device
            on_device = self.backend.asarray(indices, dtype=np.int64)
            return x[on_device], y[on_device]
        x, y = self.data[indices]
        if self.backend is None:
            return x, y
        return self.backend.asarray(x), self.backend.asarray(y, dtype=np.int64)

"""Readers on the real data sets: ../shared/data beside the repository (skipped when absent) and
Fashion-MNIST from Debian's dataset-fashion-mnist package (skipped when not installed)."""

from pathlib import Path

import numpy as np
import pytest

from minisnn.data import list_uci_datasets, read_htru2, read_idx_dataset, read_paper_results, read_uci
from minisnn.data.locations import SYSTEM_FASHION_MNIST
from minisnn.data.uci import read_uci_description

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared data folder at {SHARED}")
UCI_NAMES = list_uci_datasets(SHARED / "uci")


@needs_shared
def test_htru2_counts():
    data = read_htru2(SHARED / "htru2" / "HTRU_2.csv")
    assert data.x_train.shape == (17898, 8) and data.x_train.dtype == np.float64
    assert int(data.y_train.sum()) == 1639 and set(np.unique(data.y_train)) == {0, 1}
    np.testing.assert_allclose(data.x_train[0], [140.5625, 55.68378214, -0.234571412, -0.699648398,
                                                 3.199832776, 19.11042633, 7.975531794, 74.24222492])


@needs_shared
def test_uci_folder_holds_the_data_sets():
    assert len(UCI_NAMES) == 25


@pytest.mark.parametrize("name", UCI_NAMES or [pytest.param("none", marks=pytest.mark.skip("no shared UCI data"))])
def test_uci_counts_match_description_and_official_split(name):
    folder = SHARED / "uci" / name
    description = read_uci_description(folder / f"{name}.txt")
    data = read_uci(folder)
    n_train, n_test = len(data.y_train), len(data.y_test)
    assert data.n_features == description["n_entradas"] == len(data.feature_names)
    assert data.n_classes == description["n_clases"]
    if description["n_arquivos"] == 1:
        assert (n_train, n_test) == (description["n_patrons_entrena"], description["n_patrons_valida"])
        assert n_train + n_test == description["n_patrons1"]
        rows = description["n_patrons1"]
        first_train_row = int((folder / "conxuntos.dat").read_text().split()[0])
        with open(folder / f"{name}_R.dat") as handle:
            line = handle.readlines()[1 + first_train_row].split("\t")
        np.testing.assert_array_equal(data.x_train[0], np.array(line[1:-1], dtype=float))
        assert data.y_train[0] == int(line[-1])
    else:
        assert (n_train, n_test) == (description["n_patrons1"], description["n_patrons2"])
        rows = description["n_patrons1"]
    for x in (data.x_train, data.x_test):
        assert x.dtype == np.float64 and np.isfinite(x).all()
    labels = np.concatenate([data.y_train, data.y_test])
    assert labels.dtype == np.int64 and set(np.unique(labels)) == set(range(data.n_classes))
    for train, test in data.meta["folds"]:  # each of the 4 folds splits all indexed rows
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(rows))
    paper = read_paper_results(SHARED / "uci" / "paper_results.csv")[name]
    assert (paper.n_rows, paper.n_columns) == (n_train + n_test if description["n_arquivos"] == 1
                                               else description["n_patrons1"] + description["n_patrons2"],
                                               data.n_features + 1)


@needs_shared
def test_paper_results_lists_121_data_sets():
    results = read_paper_results(SHARED / "uci" / "paper_results.csv")
    assert len(results) == 121 and set(UCI_NAMES) <= set(results)
    assert list(results["abalone"].accuracy) == ["SNN", "MS", "HW", "ResNet", "BN", "WN", "LN"]


@pytest.mark.skipif(not (SYSTEM_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_counts():
    data = read_idx_dataset(SYSTEM_FASHION_MNIST, name="fashion-mnist", dtype=np.float32)
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert data.meta["image_shape"] == (28, 28) and data.n_classes == 10
    assert np.array_equal(np.bincount(data.y_train), [6000] * 10)
    assert np.array_equal(np.bincount(data.y_test), [1000] * 10)
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0

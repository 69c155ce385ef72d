"""Class labels: inferred class sets must be 0..C-1, declared ones bound the labels, text labels map to ids;
feature values must fit the dtype and the standardizer's statistics."""

import numpy as np
import pytest

from minisnn.data import DataError, read_csv_dataset, read_npz_dataset
from minisnn.data.labels import check_class_count, labels_from_column, labels_from_text
from minisnn.data.ranges import check_magnitude, feature_limit, target_limit


def test_inferred_classes_must_be_zero_to_c_minus_one():
    assert labels_from_column(np.array([2.0, 0.0, 1.0, 1.0]), "f").tolist() == [2, 0, 1, 1]
    with pytest.raises(DataError, match=r"label 100 of item 3 is not one of the classes 0\.\.3: the labels take 4"):
        labels_from_column(np.array([0, 1, 2, 100]), "f")
    with pytest.raises(DataError, match=r"f, line 9: label 3 is not one of the classes 0\.\.2: .*1-based"):
        labels_from_column(np.array([1, 2, 3]), "f", line_of=lambda row: row + 7)
    assert labels_from_column(np.array([1, 2, 3]), "f", n_classes=4).tolist() == [1, 2, 3]  # declared: gaps allowed
    with pytest.raises(DataError, match=r"label 4 of item 0 is not one of the model's classes 0\.\.3"):
        labels_from_column(np.array([4]), "f", n_classes=4, classes_of="the model's")


@pytest.mark.parametrize("value, message", [(2.5, "whole number, got 2.5"), (1e9, r"\[2, 100000\], got 1e\+09"),
                                            (-3, r"\[2, 100000\], got -3"), ([2, 3], "one whole number"),
                                            ("3", "one whole number"), (np.nan, "whole number, got nan")])
def test_declared_class_counts(value, message):
    with pytest.raises(DataError, match=message):
        check_class_count(np.asarray(value), "f.npz")
    assert check_class_count(np.asarray(3.0), "f.npz") == 3


def test_text_labels(tmp_path):
    ids, classes = labels_from_text(["dog", "cat", "dog", " emu"], "f")
    assert ids.tolist() == [1, 0, 1, 2] and classes == ["cat", "dog", "emu"]
    with pytest.raises(DataError, match=r"label 'owl' of item 1 is not one of the classes 'cat', 'dog'"):
        labels_from_text(["cat", "owl"], "f", class_labels=["cat", "dog"])
    path = tmp_path / "pets.csv"
    path.write_text("w,kind\n1,dog\n2,cat\n3,dog\n")
    data = read_csv_dataset(path)
    assert data.class_labels == ["cat", "dog"] and data.y_train.tolist() == [1, 0, 1] and data.n_classes == 2
    assert data.origin("train", 1) == f"{path}, line 3"
    path.write_text("w,kind\n1,dog\n2,dog\n")
    with pytest.raises(DataError, match="at least 2 classes, found 1"):
        read_csv_dataset(path)
    np.savez(tmp_path / "pets.npz", x=np.zeros((3, 1)), y=np.array(["b", "a", "b"]), x_test=np.zeros((1, 1)),
             y_test=np.array(["c"]))
    with pytest.raises(DataError, match=r"array 'y_test': label 'c' of item 0 is not one of the classes 'a', 'b'"):
        read_npz_dataset(tmp_path / "pets.npz")


def test_test_labels_must_be_seen_in_training_unless_declared(tmp_path):
    x = np.zeros((4, 2))
    np.savez(tmp_path / "a.npz", x_train=x, y_train=np.array([0, 1, 0, 1]), x_test=x[:1], y_test=np.array([2]))
    with pytest.raises(DataError, match=r"label 2 of item 0 is not one of the training labels' classes 0\.\.1"):
        read_npz_dataset(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", x_train=x, y_train=np.array([0, 1, 0, 1]), x_test=x[:1], y_test=np.array([2]),
             n_classes=3)
    assert read_npz_dataset(tmp_path / "b.npz").n_classes == 3


def test_value_limits():
    limit32 = feature_limit(np.float32, 100, standardize=True)
    assert limit32[0] == float(np.finfo(np.float32).max) and "does not fit float32" in limit32[1]
    limit64 = feature_limit(np.float64, 100, standardize=True)
    assert np.isfinite(np.var(np.array([limit64[0], -limit64[0]] * 50)))  # the bound keeps the variance finite
    assert feature_limit(np.float64, 100, standardize=False)[0] == float(np.finfo(np.float64).max)
    x = np.zeros((5, 3))
    x[3, 2] = 1e300
    with pytest.raises(ValueError, match=r"^f, line 5: column c: value 1e\+300 is too large: the standardizer"):
        check_magnitude(x, limit64, lambda row: f"f, line {row + 2}", ["a", "b", "c"])
    x[1, 0] = np.inf
    with pytest.raises(ValueError, match=r"line 3: column a: value inf is not a finite number \(2 such values\)"):
        check_magnitude(x, limit64, lambda row: f"f, line {row + 2}", ["a", "b", "c"])
    assert target_limit(np.float32)[0] ** 2 < float(np.finfo(np.float32).max)

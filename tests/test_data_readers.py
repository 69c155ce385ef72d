"""Readers on small files the tests write: correct parsing, and a clear DataError for every kind of bad input."""

import gzip
import struct

import numpy as np
import pytest

from minisnn.data import (
    DataError,
    list_uci_datasets,
    read_csv_dataset,
    read_htru2,
    read_idx,
    read_idx_dataset,
    read_npz_dataset,
    read_paper_results,
    read_tox21,
    read_tox21_tables,
    read_uci,
)

HTRU_ROWS = ["1.5,2,3,4,5,6,7,8,0", "-1,0.25,3e2,4,5,6,7,8,1", "0,0,0,0,0,0,0,0,0"]


def write(path, text):
    path.write_text(text)
    return path


def expect_error(match, reader, *args, **kwargs):
    with pytest.raises(DataError, match=match) as caught:
        reader(*args, **kwargs)
    return caught.value


# ---- HTRU2 -------------------------------------------------------------------------------
def test_htru2_reads_features_labels_and_names(tmp_path):
    write(tmp_path / "HTRU_2.csv", "\n".join(HTRU_ROWS) + "\n")
    data = read_htru2(tmp_path)
    assert data.x_train.dtype == np.float64 and data.x_train.shape == (3, 8)
    assert data.y_train.dtype == np.int64 and data.y_train.tolist() == [0, 1, 0]
    assert data.x_train[1, 2] == 300.0 and data.n_classes == 2 and len(data.feature_names) == 8
    assert data.x_test is None and data.meta["official_split"] is False


@pytest.mark.parametrize(
    "bad_row, line, match",
    [
        ("1,2,3,x,5,6,7,8,0", 2, r"column 4: 'x' is not a number"),
        ("1,2,3,4,5,6,7,8", 2, "expected 9 columns, found 8"),
        ("1,2,3,4,5,6,7,8,0,9", 2, "expected 9 columns, found 10"),
        ("1,2,3,,5,6,7,8,0", 2, r"column 4: '' is not a number"),
        ("1,2,3,nan,5,6,7,8,0", 2, "not a finite number"),
        ("1,2,3,4,5,6,7,8,2", 2, r"label 2 is not one of the classes 0\.\.1"),
        ("1,2,3,4,5,6,7,8,0.5", 2, "label 0.5 is not"),
    ],
)
def test_htru2_bad_rows_name_file_and_line(tmp_path, bad_row, line, match):
    path = write(tmp_path / "HTRU_2.csv", "\n".join([HTRU_ROWS[0], bad_row, HTRU_ROWS[2]]) + "\n")
    error = expect_error(match, read_htru2, path)
    assert error.path == str(path) and error.line == line and f"HTRU_2.csv, line {line}:" in str(error)


def test_htru2_truncated_file_and_missing_file(tmp_path):
    text = "\n".join(HTRU_ROWS)
    path = write(tmp_path / "HTRU_2.csv", text[: text.rindex(",") - 3])  # cut inside the last row
    assert expect_error("expected 9 columns", read_htru2, path).line == 3
    expect_error("file not found", read_htru2, tmp_path / "elsewhere")
    write(tmp_path / "empty" , "")
    expect_error("no data rows", read_htru2, tmp_path / "empty")


# ---- UCI (Fernandez-Delgado format) --------------------------------------------------------
UCI_ROWS = [(0.1, 1.0, 0), (0.2, 2.0, 1), (0.3, 3.0, 1), (0.4, 4.0, 0), (0.5, 5.0, 1), (0.6, 6.0, 0)]


def uci_folder(root, name="toy", rows=UCI_ROWS, split=("0 2 4", "1 3 5"), n_patrons=None, n_clases=2, kfold=None):
    folder = root / name
    folder.mkdir(parents=True)
    n = len(rows) if n_patrons is None else n_patrons
    write(folder / f"{name}.txt", f"n_entradas= 2\nn_clases= {n_clases}\nn_arquivos= 1\nfich1= {name}_R.dat\n"
          f"n_patrons1= {n}\nn_patrons_entrena= 3\nn_patrons_valida= 3\nn_conxuntos= 1\n")
    body = "".join(f"{i + 1}\t{a}\t{b}\t{c}\n" for i, (a, b, c) in enumerate(rows))
    write(folder / f"{name}_R.dat", "\tf1\tf2\tclase\n" + body)
    write(folder / "conxuntos.dat", f"{split[0]} \n{split[1]} \n")
    folds = kfold or [("1 2 3 4 5", "0"), ("0 2 3 4 5", "1"), ("0 1 3 4", "2 5"), ("0 1 2 5", "3 4")]
    write(folder / "conxuntos_kfold.dat", "".join(f"{a} \n{b} \n" for a, b in folds))
    return folder


def test_uci_official_split_folds_and_listing(tmp_path):
    folder = uci_folder(tmp_path)
    (tmp_path / "not-a-dataset").mkdir()
    data = read_uci(folder)
    np.testing.assert_array_equal(data.x_train, [[0.1, 1.0], [0.3, 3.0], [0.5, 5.0]])
    assert data.y_train.tolist() == [0, 1, 1] and data.y_test.tolist() == [1, 0, 0]
    assert data.n_classes == 2 and data.feature_names == ["f1", "f2"] and data.name == "uci:toy"
    assert data.meta["official_split"] and len(data.meta["folds"]) == 4
    fold = read_uci(folder, fold=2)
    np.testing.assert_array_equal(fold.x_test[:, 0], [0.3, 0.6])
    assert fold.meta["official_split"] is False and fold.x_train.shape == (4, 2)
    assert list_uci_datasets(tmp_path) == ["toy"] and list_uci_datasets(tmp_path / "absent") == []
    with pytest.raises(ValueError, match="fold must be one of 0..3"):
        read_uci(folder, fold=4)


def test_uci_separate_train_and_test_files(tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    write(folder / "two.txt", "n_entradas= 1\nn_clases= 3\nn_arquivos= 2\nfich1= two_train_R.dat\nn_patrons1= 4\n"
          "fich2= two_test_R.dat\nn_patrons2= 2\nn_patrons_entrena= 2\nn_patrons_valida= 2\nn_conxuntos= 1\n")
    write(folder / "two_train_R.dat", "\tf1\tclase\n1\t0.5\t0\n2\t1.5\t1\n3\t2.5\t2\n4\t3.5\t0\n")
    write(folder / "two_test_R.dat", "\tf1\tclase\n1\t9\t2\n2\t8\t1\n")
    write(folder / "conxuntos.dat", "0 1\n2 3\n")
    write(folder / "conxuntos_kfold.dat", "1 2 3\n0\n0 2 3\n1\n0 1 3\n2\n0 1 2\n3\n")
    data = read_uci(folder)
    assert data.x_train[:, 0].tolist() == [0.5, 1.5, 2.5, 3.5] and data.x_test[:, 0].tolist() == [9.0, 8.0]
    assert data.y_test.tolist() == [2, 1] and data.meta["indexed_rows"] == "train_file"


@pytest.mark.parametrize(
    "kwargs, file, line, match",
    [
        ({"split": ("0 2 6", "1 3 5")}, "conxuntos.dat", 1, "index 6 is outside the data"),
        ({"split": ("0 2 4", "1 3 -1")}, "conxuntos.dat", 2, "index -1 is outside the data"),
        ({"split": ("0 2 x", "1 3 5")}, "conxuntos.dat", 1, "'x' is not an integer index"),
        ({"split": ("0 2 99999999999999999999", "1 3 5")}, "conxuntos.dat", 1, "'99999999999999999999' is not an"),
        ({"split": ("0 2 2", "1 3 5")}, "conxuntos.dat", 1, "more than once"),
        ({"split": ("0 2 4", "1 3 4")}, "conxuntos.dat", None, "overlap"),
        ({"split": ("0 2", "1 3 5")}, "conxuntos.dat", None, "2 training and 3 test indices"),
        ({"kfold": [("0", "9")] * 4}, "conxuntos_kfold.dat", 2, "index 9 is outside"),
        ({"rows": UCI_ROWS[:5] + [(0.6, 6.0, 2)]}, "toy_R.dat", 7, r"label 2 is not one of the classes 0\.\.1"),
        ({"rows": UCI_ROWS[:5] + [(0.6, "abc", 0)]}, "toy_R.dat", 7, "'abc' is not a number"),
        ({"n_patrons": 7}, "toy_R.dat", None, "has 6 data rows, its description declares 7"),
    ],
)
def test_uci_bad_input_names_file_and_line(tmp_path, kwargs, file, line, match):
    folder = uci_folder(tmp_path, **kwargs)
    error = expect_error(match, read_uci, folder)
    assert error.path == str(folder / file) and error.line == line


def test_uci_bad_description_and_header(tmp_path):
    folder = uci_folder(tmp_path)
    text = (folder / "toy.txt").read_text()
    write(folder / "toy.txt", text.replace("n_clases= 2\n", ""))
    expect_error("missing n_clases", read_uci, folder)
    write(folder / "toy.txt", text.replace("n_clases= 2", "n_clases= two"))
    assert expect_error("n_clases must be an integer", read_uci, folder).line == 2
    write(folder / "toy.txt", text)
    dat = folder / "toy_R.dat"
    write(dat, dat.read_text().replace("\tf2\t", "\t"))
    assert expect_error("header has 3 columns, expected 4", read_uci, folder).line == 1
    expect_error("needs empty.txt", read_uci, tmp_path / "empty")


def test_paper_results(tmp_path):
    path = write(tmp_path / "r.csv", "dataset,N,M,SNN,MS\niris,150,5,0.973,0.9189\ntrains,10,30,NA,0.5\n")
    results = read_paper_results(path)
    assert results["iris"].n_rows == 150 and results["iris"].accuracy == {"SNN": 0.973, "MS": 0.9189}
    assert np.isnan(results["trains"].accuracy["SNN"]) and results["trains"].accuracy["MS"] == 0.5
    write(path, "dataset,N,M,SNN\niris,150,5\n")
    assert expect_error("expected 4 columns, found 3", read_paper_results, path).line == 2
    write(path, "dataset,N,M,SNN\niris,150,5,1.5\n")
    assert expect_error(r"accuracies must lie in \[0, 1\]", read_paper_results, path).line == 2
    write(path, "name,SNN\n")
    expect_error("header must start with dataset,N,M", read_paper_results, path)


# ---- IDX ---------------------------------------------------------------------------------
def idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def idx_folder(root, n_train=6, n_test=4, labels_train=None):
    rng = np.random.default_rng(0)
    root.mkdir(exist_ok=True)
    arrays = {}
    for prefix, n, labels in (("train", n_train, labels_train), ("t10k", n_test, None)):
        images = rng.integers(0, 256, size=(n, 3, 2), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10 if labels is None else np.asarray(labels, dtype=np.uint8)
        (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (root / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))  # raw, not gzip
        arrays[prefix] = (images, labels)
    return arrays


def test_idx_round_trip_raw_gzip_and_wider_types(tmp_path):
    values = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5
    (tmp_path / "a.idx").write_bytes(idx_bytes(values, 0x0C))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(idx_bytes(values, 0x0C)))
    for name in ("a.idx", "a.idx.gz"):
        result = read_idx(tmp_path / name)
        assert result.dtype == np.dtype(np.int32) and result.dtype.isnative
        np.testing.assert_array_equal(result, values)
    floats = np.linspace(-1, 1, 5)
    (tmp_path / "f.idx").write_bytes(idx_bytes(floats, 0x0E))
    np.testing.assert_array_equal(read_idx(tmp_path / "f.idx"), floats)


def test_idx_dataset_scales_pixels_and_keeps_the_split(tmp_path):
    arrays = idx_folder(tmp_path / "mnist")
    data = read_idx_dataset(tmp_path / "mnist")
    assert data.x_train.shape == (6, 6) and data.x_test.shape == (4, 6) and data.x_train.dtype == np.float64
    np.testing.assert_allclose(data.x_train, arrays["train"][0].reshape(6, 6) / 255.0)
    assert data.y_test.tolist() == [0, 1, 2, 3] and data.y_train.dtype == np.int64
    assert data.n_classes == 10 and data.meta["image_shape"] == (3, 2)
    assert read_idx_dataset(tmp_path / "mnist", dtype=np.float32).x_test.dtype == np.float32


def test_idx_bad_files(tmp_path):
    good = idx_bytes(np.zeros((2, 3, 3), dtype=np.uint8))
    cases = {
        "magic.idx": (b"\x08\x03" + good[2:], "not an IDX file"),
        "type.idx": (good[:2] + b"\x07" + good[3:], "not an IDX file"),
        "short.idx": (good[:-1], r"truncated: shape \(2, 3, 3\) needs 18 data bytes, found 17"),
        "header.idx": (good[:9], "truncated: 9 bytes, the header alone needs 16"),
        "long.idx": (good + b"\x00", "trailing bytes"),
        "cut.idx.gz": (gzip.compress(good)[:-6], "truncated or corrupt gzip"),
        "empty.idx": (b"", "magic bytes missing"),
    }
    for name, (payload, match) in cases.items():
        (tmp_path / name).write_bytes(payload)
        assert expect_error(match, read_idx, tmp_path / name).path == str(tmp_path / name)
    (tmp_path / "ok.idx").write_bytes(good)
    expect_error("magic number says 3 dimensions, expected 1", read_idx, tmp_path / "ok.idx", expected_ndim=1)


def test_idx_dataset_bad_labels_and_counts(tmp_path):
    idx_folder(tmp_path / "a", labels_train=[0, 1, 2, 10, 4, 5])
    error = expect_error("label 10 of item 3 is not one of the classes 0..9", read_idx_dataset, tmp_path / "a")
    assert error.path.endswith("train-labels-idx1-ubyte")
    idx_folder(tmp_path / "b", labels_train=[0, 1, 2])
    expect_error("has 3 labels for 6 images", read_idx_dataset, tmp_path / "b")
    idx_folder(tmp_path / "c")
    (tmp_path / "c" / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((4, 3, 2)), 0x0E)))
    expect_error("images must be unsigned bytes", read_idx_dataset, tmp_path / "c")
    expect_error("file not found", read_idx_dataset, tmp_path / "absent")


# ---- Tox21 (DeepTox layout) -----------------------------------------------------------------
def write_gz(path, text):
    path.write_bytes(gzip.compress(text.encode()))


def tox21_folder(root, train_labels=None, train_dense=None):
    root.mkdir()
    write_gz(root / "tox21_dense_train.csv.gz", train_dense or ",AW,ABC\nNCGC1,0.5,1.5\nNCGC2,-1,2\nNCGC3,3,4\n")
    write_gz(root / "tox21_dense_test.csv.gz", ",AW,ABC\nNCGC9,7,8\n")
    labels = train_labels or ",NR.AhR,SR.p53\nNCGC1,1.0,\nNCGC2,,0.0\nNCGC3,0.0,1.0\n"
    write_gz(root / "tox21_labels_train.csv.gz", labels)
    write_gz(root / "tox21_labels_test.csv.gz", ",NR.AhR,SR.p53\nNCGC9,0,1\n")
    return root


def test_tox21_labels_with_mask_and_single_task(tmp_path):
    folder = tox21_folder(tmp_path / "tox21")
    tables = read_tox21_tables(folder)
    assert tables.task_names == ["NR.AhR", "SR.p53"] and tables.feature_names == ["AW", "ABC"]
    np.testing.assert_array_equal(tables.train.x, [[0.5, 1.5], [-1, 2], [3, 4]])
    np.testing.assert_array_equal(tables.train.mask, [[True, False], [False, True], [True, True]])
    np.testing.assert_array_equal(tables.train.labels, [[1, 0], [0, 0], [0, 1]])
    assert tables.train.ids == ["NCGC1", "NCGC2", "NCGC3"]
    task = read_tox21(folder, task="SR.p53")
    np.testing.assert_array_equal(task.x_train, [[-1, 2], [3, 4]])
    assert task.y_train.tolist() == [0, 1] and task.meta["missing_train"] == 1 and task.n_classes == 2
    assert read_tox21(folder).meta["task"] == "NR.AhR"
    with pytest.raises(ValueError, match="unknown Tox21 task"):
        read_tox21(folder, task="NR.XX")


@pytest.mark.parametrize(
    "kwargs, file, line, match",
    [
        ({"train_labels": ",NR.AhR,SR.p53\nNCGC1,1,\nNCGC2,2,0\nNCGC3,0,1\n"}, "labels_train", 3,
         "task NR.AhR: label '2' is not 0, 1 or missing"),
        ({"train_labels": ",NR.AhR,SR.p53\nNCGC1,1,\nNCGC2,0\nNCGC3,0,1\n"}, "labels_train", 3,
         "expected 3 columns, found 2"),
        ({"train_labels": ",NR.AhR,SR.p53\nNCGC1,1,\nNCGC3,0,1\nNCGC2,0,1\n"}, "labels_train", None,
         "compound ids differ"),
        ({"train_dense": ",AW,ABC\nNCGC1,0.5,1.5\nNCGC2,-1,oops\nNCGC3,3,4\n"}, "dense_train", 3,
         "column 3: 'oops' is not a number"),
        ({"train_dense": ",AW,ABC\nNCGC1,0.5,1.5\nNCGC2,-1,2,5\nNCGC3,3,4\n"}, "dense_train", 3,
         "expected 3 columns, found 4"),
    ],
)
def test_tox21_bad_input(tmp_path, kwargs, file, line, match):
    folder = tox21_folder(tmp_path / "tox21", **kwargs)
    error = expect_error(match, read_tox21_tables, folder)
    assert error.path == str(folder / f"tox21_{file}.csv.gz") and error.line == line


def test_tox21_corrupt_gzip(tmp_path):
    folder = tox21_folder(tmp_path / "tox21")
    path = folder / "tox21_labels_test.csv.gz"
    path.write_bytes(path.read_bytes()[:-5])
    expect_error("truncated or corrupt gzip", read_tox21_tables, folder)


# ---- generic CSV and NPZ --------------------------------------------------------------------
def test_csv_with_named_default_and_positional_label_columns(tmp_path):
    path = write(tmp_path / "d.csv", "a,target,b\n1,0,2\n3,1,0\n\n5,2,1\n")
    data = read_csv_dataset(path, label_column="target")
    np.testing.assert_array_equal(data.x_train, [[1, 2], [3, 0], [5, 1]])
    assert data.y_train.tolist() == [0, 1, 2] and data.n_classes == 3 and data.feature_names == ["a", "b"]
    assert read_csv_dataset(path).meta["label_column"] == "b"  # no "label" column: the last one
    assert read_csv_dataset(path, label_column="1").y_train.tolist() == [0, 1, 2]
    write(path, "label,x\n1,0.5\n0,0.25\n")
    assert read_csv_dataset(path).y_train.tolist() == [1, 0]
    write(path, "0.5,1\n0.25,0\n")  # no header
    headerless = read_csv_dataset(path)
    assert headerless.feature_names is None and headerless.y_train.tolist() == [1, 0]


def test_csv_errors_name_file_and_line(tmp_path):
    path = write(tmp_path / "d.csv", "a,label\n1,0\n\n2,1\n3,x\n")
    error = expect_error(r"label 'x' is text, but most labels are numbers", read_csv_dataset, path)
    assert error.line == 5 and str(error).startswith(f"{path}, line 5:")
    write(path, "a,label\n1,0\n2,1,7\n")
    assert expect_error("expected 2 columns, found 3", read_csv_dataset, path).line == 3
    write(path, "a,label\n1,0\n\n2,-1\n")
    assert expect_error("label -1 is not a whole number", read_csv_dataset, path).line == 4
    write(path, "a,label\n1,0\n2,0\n")
    expect_error("at least 2 classes", read_csv_dataset, path)
    expect_error("no label column 'nope'; columns are a, label", read_csv_dataset, path, label_column="nope")
    write(path, "\n\n")
    expect_error("empty file", read_csv_dataset, path)
    path.write_bytes(b"a,label\n1,\xff\n")
    expect_error("not UTF-8", read_csv_dataset, path)


def test_npz_layouts(tmp_path):
    x = np.arange(12.0).reshape(4, 3)
    np.savez(tmp_path / "xy.npz", x=x, y=np.array([0, 1, 1, 0]))
    data = read_npz_dataset(tmp_path / "xy.npz")
    np.testing.assert_array_equal(data.x_train, x)
    assert data.y_train.dtype == np.int64 and data.n_classes == 2 and data.x_test is None
    np.savez(tmp_path / "split.npz", x_train=x, y_train=np.array([0, 1, 2, 0]), x_test=x[:2],
             y_test=np.array([2, 1]), n_classes=5, feature_names=np.array(["p", "q", "r"]))
    split = read_npz_dataset(tmp_path / "split.npz")
    assert split.n_classes == 5 and split.y_test.tolist() == [2, 1] and split.feature_names == ["p", "q", "r"]
    np.savez(tmp_path / "cols.npz", height=np.array([1.0, 2.0, 3.0]), kind=np.array([1, 0, 1]),
             width=np.array([4, 5, 6]))
    columns = read_npz_dataset(tmp_path / "cols.npz", label_column="kind")
    np.testing.assert_array_equal(columns.x_train, [[1, 4], [2, 5], [3, 6]])
    assert columns.feature_names == ["height", "width"] and columns.y_train.tolist() == [1, 0, 1]


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((3, 2)), y=np.array([0, 1, 3]), n_classes=3)
    expect_error(r"array 'y': label 3 of item 2 is not one of the classes 0\.\.2", read_npz_dataset, tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", x=np.zeros((3, 2)), labels=np.array([0, 1, 1]))
    expect_error("no label array 'y'", read_npz_dataset, tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", x=np.array([[0.0, np.nan]]), y=np.array([0]))
    expect_error("array 'x', row 0, column 1: nan is not a finite number", read_npz_dataset, tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 2)), y=np.array([0, 1]))
    expect_error(r"must hold 3 labels \(shape \(3,\)", read_npz_dataset, tmp_path / "d.npz")
    np.savez(tmp_path / "e.npz", a=np.zeros(3), label=np.zeros(2))
    expect_error("columns differ in length", read_npz_dataset, tmp_path / "e.npz")
    np.savez(tmp_path / "f.npz", x=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    expect_error("not a readable NPZ archive", read_npz_dataset, tmp_path / "f.npz")
    (tmp_path / "g.npz").write_bytes(b"PK\x03\x04 not really a zip")
    expect_error("not a readable NPZ archive", read_npz_dataset, tmp_path / "g.npz")
    expect_error("file not found", read_npz_dataset, tmp_path / "absent.npz")

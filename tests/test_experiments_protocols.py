"""Protocols of the experiment harness (splits, validation rows, the two-file scale check), and
write_uci: small UCI folders in the Fernandez-Delgado format that the other harness tests use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from minisnn.data.preprocessing import stratified_kfold_indices
from minisnn.experiments.protocols import load_split, scale_check
from minisnn.experiments.spec import TrialSpec


def _table(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    header = "\t" + "\t".join(f"f{j + 1}" for j in range(x.shape[1])) + "\tclase"
    rows = [f"{i + 1}\t" + "\t".join(f"{v:.6f}" for v in row) + f"\t{label}"
            for i, (row, label) in enumerate(zip(x, y))]
    path.write_text("\n".join([header, *rows]) + "\n")


def _blobs(n: int, d: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n points (n, d) around one centre per class, labels (n,) 0..classes-1 in turn."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes  # (n,)
    centres = rng.normal(0, 2, size=(classes, d))  # (C, d)
    return centres[y] + rng.normal(size=(n, d)), y


def write_uci(root: Path, name: str, n: int = 80, d: int = 3, classes: int = 2, seed: int = 0,
              test_file_shift: float | None = None) -> Path:
    """root/uci/name/ holding a UCI data set of n rows; with test_file_shift, two files (train and a
    test file of n // 2 rows whose features are shifted by that many standard deviations)."""
    folder = root / "uci" / name
    folder.mkdir(parents=True)
    x, y = _blobs(n + n // 2, d, classes, seed)  # the last n // 2 rows: a test file's
    x, y, x_test, y_test = x[:n], y[:n], x[n:], y[n:]
    half = np.arange(n)
    lines = [" ".join(map(str, half[::2])), " ".join(map(str, half[1::2]))]
    folds = []
    for k in range(4):
        test = half[k::4]
        folds += [" ".join(map(str, np.setdiff1d(half, test))), " ".join(map(str, test))]
    (folder / "conxuntos.dat").write_text("\n".join(lines) + "\n")
    (folder / "conxuntos_kfold.dat").write_text("\n".join(folds) + "\n")
    description = [f"n_entradas= {d}", f"n_clases= {classes}"]
    if test_file_shift is None:
        _table(folder / f"{name}_R.dat", x, y)
        description += ["n_arquivos= 1", f"fich1= {name}_R.dat", f"n_patrons1= {n}"]
    else:
        _table(folder / f"{name}_train_R.dat", x, y)
        _table(folder / f"{name}_test_R.dat", x_test + test_file_shift * x.std(axis=0), y_test)
        description += ["n_arquivos= 2", f"fich1= {name}_train_R.dat", f"n_patrons1= {n}",
                        f"fich2= {name}_test_R.dat", f"n_patrons2= {n // 2}"]
    description += [f"n_patrons_entrena= {n - n // 2}", f"n_patrons_valida= {n // 2}"]
    (folder / f"{name}.txt").write_text("\n".join(description) + "\n")
    return folder


def _rows(x_part: np.ndarray, x_all: np.ndarray) -> set[int]:
    """Indices of x_all's rows that appear in x_part (rows are distinct in these data)."""
    index = {row.tobytes(): i for i, row in enumerate(x_all)}
    return {index[row.tobytes()] for row in x_part}


def test_uci_kfold_is_the_paper_split_and_halves_the_option(tmp_path):
    write_uci(tmp_path, "toy", n=80)
    from minisnn.data.uci import read_uci

    everything = read_uci(tmp_path / "uci" / "toy", fold=0)
    x_all = np.concatenate([everything.x_train, everything.x_test])
    fold = load_split("uci:toy", {"name": "uci", "split": "kfold", "fold": 1}, 7, tmp_path)
    assert _rows(fold.x_test, x_all) == _rows(read_uci(tmp_path / "uci" / "toy", fold=1).x_test, x_all)
    assert len(fold.x_test) == 20 and len(fold.x_train) + len(fold.x_val) == 60
    assert len(fold.x_val) == 9  # round(0.15 * 60), stratified: both classes present
    assert set(np.unique(fold.y_val)) == {0, 1}
    halves = load_split("uci:toy", {"name": "uci", "split": "halves"}, 7, tmp_path)
    assert len(halves.x_test) == 40 and len(halves.x_train) + len(halves.x_val) == 40
    assert fold.monitor == "accuracy"
    assert not fold.notes["two_files"] and fold.notes["scale_check"] is None


def test_validation_rows_depend_on_the_split_seed_only(tmp_path):
    write_uci(tmp_path, "toy", n=80)
    protocol = {"name": "uci", "split": "kfold", "fold": 0}
    a, b = (load_split("uci:toy", protocol, 3, tmp_path) for _ in range(2))
    assert np.array_equal(a.x_val, b.x_val)
    c = load_split("uci:toy", protocol, 4, tmp_path)
    assert not np.array_equal(a.x_val, c.x_val)
    specs = [TrialSpec("uci:toy", protocol, "snn", {"lr": lr, "depth": depth}) for lr, depth in ((0.1, 2), (1, 4))]
    assert specs[0].seeds()["split"] == specs[1].seeds()["split"]
    assert specs[0].seeds()["model"] != specs[1].seeds()["model"]


def test_two_file_data_set_with_a_test_file_on_another_scale_is_detected(tmp_path):
    write_uci(tmp_path, "shifted", test_file_shift=2.5)
    write_uci(tmp_path, "same", test_file_shift=0.0)
    shifted = load_split("uci:shifted", {"name": "uci"}, 0, tmp_path)
    same = load_split("uci:same", {"name": "uci"}, 0, tmp_path)
    assert shifted.notes["two_files"] and len(shifted.x_test) == 40
    assert shifted.notes["scale_check"]["mismatch"] and shifted.notes["scale_check"]["max_mean_shift_sd"] > 2
    assert not same.notes["scale_check"]["mismatch"]


def test_scale_check_ignores_a_feature_constant_in_the_test_file():
    rng = np.random.default_rng(1)
    x, test = rng.normal(size=(300, 3)), rng.normal(size=(200, 3))
    test[:, 1] = 0.0  # e.g. a pixel never set in the test images: same scale, no spread
    check = scale_check(x, test)
    assert not check["mismatch"] and check["std_ratio_min"] > 0.5
    test[:, 2] *= 5
    assert scale_check(x, test)["mismatch"]


def test_scale_check_flags_a_spread_change_too():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    assert not scale_check(x, rng.normal(size=(200, 3)))["mismatch"]
    wide = rng.normal(size=(200, 3)) * np.array([1.0, 5.0, 1.0])
    check = scale_check(x, wide)
    assert check["mismatch"] and check["std_ratio_max"] > 4


def test_nested_kfold_validates_on_the_fold_before_the_test_fold(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(60, 2)), np.arange(60) % 3
    path = tmp_path / "toy.csv"
    path.write_text("a,b,label\n" + "".join(f"{p!r},{q!r},{c}\n" for (p, q), c in zip(x.tolist(), y)))
    folds = stratified_kfold_indices(y, 5, seed=0)
    for fold in (0, 3):
        split = load_split(str(path), {"name": "kfold", "k": 5, "fold": fold, "seed": 0}, 99)
        assert _rows(split.x_test, x) == set(folds[fold][1].tolist())
        assert _rows(split.x_val, x) == set(folds[(fold - 1) % 5][1].tolist())
        assert len(split.x_train) == 36 and not _rows(split.x_train, x) & _rows(split.x_val, x)


def test_bad_protocols_are_named(tmp_path):
    write_uci(tmp_path, "toy")
    with pytest.raises(ValueError, match="unknown protocol 'cv'"):
        load_split("uci:toy", {"name": "cv"}, 0, tmp_path)
    with pytest.raises(ValueError, match="uci fold must be one of 0..3"):
        load_split("uci:toy", {"name": "uci", "fold": 4}, 0, tmp_path)
    with pytest.raises(ValueError, match="unknown: folds"):
        load_split("uci:toy", {"name": "uci", "folds": 2}, 0, tmp_path)
    with pytest.raises(ValueError, match="needs a data set uci:NAME"):
        load_split("htru2", {"name": "uci"}, 0, tmp_path)


def write_tox21(root: Path, n_train: int = 60, n_test: int = 30, d: int = 5, tasks: int = 3) -> Path:
    """root/tox21/ with the four DeepTox files: dense features, and 0/1 labels with some missing."""
    import gzip

    folder = root / "tox21"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        ids = [f"c{split}{i}" for i in range(n)]
        x = rng.normal(size=(n, d))
        labels = (x[:, :tasks] > 0).astype(int)  # (n, T)
        missing = rng.random((n, tasks)) < 0.2
        dense = ["id," + ",".join(f"f{j}" for j in range(d))] + [
            f"{i}," + ",".join(f"{v:.6f}" for v in row) for i, row in zip(ids, x)]
        label_lines = ["id," + ",".join(f"task{t}" for t in range(tasks))] + [
            f"{i}," + ",".join("" if gone else str(v) for v, gone in zip(row, holes))
            for i, row, holes in zip(ids, labels, missing)]
        for kind, lines in (("dense", dense), ("labels", label_lines)):
            with gzip.open(folder / f"tox21_{kind}_{split}.csv.gz", "wt") as handle:
                handle.write("\n".join(lines) + "\n")
    return folder


def test_tox21_holdout_keeps_every_task_with_missing_labels(tmp_path):
    from minisnn.experiments import run_trial
    from minisnn.tasks import MultiTaskBinaryTask

    write_tox21(tmp_path)
    split = load_split("tox21", {"name": "holdout"}, 5, tmp_path)
    assert isinstance(split.task, MultiTaskBinaryTask) and split.task.task_names == ["task0", "task1", "task2"]
    assert split.y_train.shape == (51, 3) and split.y_val.shape == (9, 3) and split.y_test.shape == (30, 3)
    assert np.isnan(split.y_train).any() and split.monitor == "roc_auc"
    specs = [TrialSpec("tox21", {"name": "holdout"}, "snn", {"width": 8, "depth": 2, "lr": 0.1, "weight_decay": 1e-4},
                       {"epochs": 3}, repetition=r) for r in (0, 1)]
    first, second = (run_trial(spec, tmp_path) for spec in specs)
    assert first["monitor"] == "val_roc_auc" and {"roc_auc", "roc_auc_task0"} <= set(first["test"])
    assert first["data"]["n_val"] == second["data"]["n_val"]  # same split, other network seeds
    assert first["curves"]["train_loss"] != second["curves"]["train_loss"]

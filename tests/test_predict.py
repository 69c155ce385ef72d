"""Text class labels end to end (train -> checkpoint -> evaluate -> predict), `minisnn predict` on
unlabelled CSV and NPZ files, evaluate's default data set, help texts and the divergence message."""

import csv
import json

import numpy as np
import pytest

from minisnn.checkpoint import load_model
from minisnn.cli import main

SMALL = ["--backend", "numpy", "--depth", "1", "--width", "8", "--quiet"]
NAMES = np.array(["setosa", "versicolor", "virginica"])


def _write_species(path, rows=90, seed=0, labelled=True):
    rng = np.random.default_rng(seed)
    species = np.arange(rows) % 3
    x = rng.standard_normal((rows, 2)) * 0.3 + species[:, None] * 2.0  # (rows, 2): separable classes
    header = "width,length" + (",species" if labelled else "")
    lines = [header] + [f"{a:.4f},{b:.4f}" + (f",{NAMES[s]}" if labelled else "") for (a, b), s in zip(x, species)]
    path.write_text("\n".join(lines) + "\n")
    return species


def test_text_labels_are_kept_with_the_model_and_used_by_evaluate_and_predict(tmp_path, capsys):
    data, ckpt, preds = tmp_path / "iris.csv", tmp_path / "iris.npz", tmp_path / "preds.csv"
    _write_species(data)
    assert main(["train", *SMALL, "--data", str(data), "--label-column", "species", "--epochs", "30", "--lr", "0.05",
                 "--save", str(ckpt)]) == 0
    model = load_model(ckpt)
    assert model.meta["class_labels"] == list(NAMES) and model.meta["label_column"] == "species"
    assert model.meta["data"] == str(data.resolve())
    capsys.readouterr()
    assert main(["evaluate", str(ckpt), "--predictions", str(preds)]) == 0  # the recorded data set and label column
    out = capsys.readouterr().out
    assert "iris test split (14 samples): loss" in out and "accuracy 1.0000" in out
    rows = list(csv.reader(preds.open()))
    assert rows[0] == ["predicted", "p_setosa", "p_versicolor", "p_virginica"] and len(rows) == 15
    unlabelled = tmp_path / "new.csv"
    species = _write_species(unlabelled, rows=12, seed=1, labelled=False)
    assert main(["predict", str(ckpt), "--data", str(unlabelled)]) == 0
    table = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert table[0][0] == "predicted" and [row[0] for row in table[1:]] == list(NAMES[species])
    assert np.allclose(np.array([row[1:] for row in table[1:]], dtype=float).sum(axis=1), 1, atol=1e-5)
    out_file = tmp_path / "scores.csv"
    assert main(["predict", str(ckpt), "--data", str(data), "--output", str(out_file)]) == 0  # label column left out
    assert "predictions for 90 rows written to" in capsys.readouterr().out
    assert [row[0] for row in list(csv.reader(out_file.open()))[1:4]] == ["setosa", "versicolor", "virginica"]
    bad = tmp_path / "other.csv"
    bad.write_text("width,length,species\n0,0,setosa\n1,1,rose\n")
    assert main(["evaluate", str(ckpt), "--data", str(bad)]) == 2
    assert "other.csv, line 3: label 'rose' is not one of the classes 'setosa'" in capsys.readouterr().err


def test_predict_reads_npz_features_and_numeric_models(tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((40, 3))
    np.savez(tmp_path / "train.npz", x=x, y=(x[:, 0] > 0).astype(int))
    np.savez(tmp_path / "new.npz", x=x[:5])
    ckpt = tmp_path / "m.npz"
    assert main(["train", *SMALL, "--data", str(tmp_path / "train.npz"), "--epochs", "2", "--save", str(ckpt)]) == 0
    capsys.readouterr()
    assert main(["predict", str(ckpt), "--data", str(tmp_path / "new.npz")]) == 0
    table = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert table[0] == ["predicted", "p0", "p1"] and len(table) == 6 and {row[0] for row in table[1:]} <= {"0", "1"}
    np.savez(tmp_path / "wide.npz", x=np.zeros((2, 4)))
    assert main(["predict", str(ckpt), "--data", str(tmp_path / "wide.npz")]) == 2
    assert "wide.npz has 4 features, the model expects 3" in capsys.readouterr().err


def test_help_shows_true_defaults(capsys):
    for command in ("train", "evaluate", "predict", "theory"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "(default: True)" not in text and "(default: False)" not in text and "(default: None)" not in text
        assert text.count("(default: $MINISNN_DATA") <= 1 and "default: $MINISNN_DATA, else ~/.cache/minisnn) (default" not in text
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("passes over the training data (default: 10)", "the one before it (default: 128)",
                  "SGD momentum (default 0.9)"):
        assert shown in text


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow being diagnosed
def test_divergence_names_the_likely_cause(tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((64, 4)) * 1e30
    np.savez(tmp_path / "big.npz", x=x, y=(x[:, 0] > 0).astype(int))
    assert main(["train", *SMALL, "--data", str(tmp_path / "big.npz"), "--no-standardize", "--epochs", "3",
                 "--holdout", "0"]) == 2
    err = capsys.readouterr().err
    assert "likely cause: the features are large (|x| up to" in err and "leave out --no-standardize" in err
    assert main(["train", *SMALL, "--depth", "4", "--lr", "1e6", "--epochs", "3", "--holdout", "0"]) == 2
    assert "likely cause: the learning rate 1e+06 is too high" in capsys.readouterr().err


def test_outputs_are_checked_before_training(tmp_path, capsys):
    metrics = tmp_path / "missing" / "metrics.json"
    assert main(["train", *SMALL, "--epochs", "1", "--save", str(tmp_path / "m.npz"), "--metrics-json", str(metrics)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write --metrics-json output to {metrics}" in err and not (tmp_path / "m.npz").exists()
    assert json.dumps(sorted(p.name for p in tmp_path.iterdir())) == "[]"

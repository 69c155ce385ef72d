"""The command line: help, the default train run, checkpoints, resume, and clear errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from minisnn.cli import main


def test_help_documents_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "train" in out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    for option in ("--data", "--depth", "--width", "--dropout", "--lr", "--momentum", "--backend", "--save",
                   "--resume", "--schedule", "--activation", "--shape"):
        assert option in help_text


def test_no_command_prints_usage(capsys):
    assert main([]) == 2
    assert "usage: minisnn" in capsys.readouterr().out


def test_train_saves_and_resumes(tmp_path, capsys):
    ckpt, metrics = tmp_path / "model.npz", tmp_path / "metrics.json"
    args = ["train", "--backend", "numpy", "--depth", "3", "--width", "32", "--epochs", "2", "--save", str(ckpt),
            "--metrics-json", str(metrics)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "LinearSELU" in out and "final: train loss" in out and "test accuracy" in out
    history = json.loads(metrics.read_text())
    assert [m["epoch"] for m in history] == [1, 2]
    assert main(["train", "--backend", "numpy", "--resume", str(ckpt), "--epochs", "1", "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("final:")


def test_errors_are_reported_without_a_traceback(tmp_path, capsys):
    assert main(["train", "--backend", "numpy", "--dropout", "1.0", "--epochs", "1"]) == 1
    assert "dropout rate must lie in [0, 1)" in capsys.readouterr().err
    assert main(["train", "--backend", "numpy", "--resume", str(tmp_path / "none.npz")]) == 1
    assert "no such checkpoint file" in capsys.readouterr().err


def test_console_entry_point_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "minisnn", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("minisnn ")


def _write_csv(path, rows=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 3)) * [1, 10, 100] + [0, 5, -50]
    y = (x[:, 0] + x[:, 1] / 10 > 0.5).astype(int)
    lines = ["a,b,c,label"] + [f"{a},{b},{c},{lab}" for (a, b, c), lab in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")


def test_train_and_evaluate_on_a_csv_file(tmp_path, capsys):
    csv, ckpt, preds = tmp_path / "toy.csv", tmp_path / "toy.npz", tmp_path / "preds.csv"
    _write_csv(csv)
    assert main(["train", "--backend", "numpy", "--data", str(csv), "--label-column", "label", "--depth", "2",
                 "--width", "16", "--epochs", "3", "--save", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "102 training samples, 3 features, 2 classes, 18 test samples" in out  # 15% stratified holdout
    assert main(["evaluate", str(ckpt), "--data", str(csv), "--predictions", str(preds)]) == 0
    assert "test split (18 samples)" in capsys.readouterr().out
    table = np.loadtxt(preds, delimiter=",", skiprows=1)
    assert table.shape == (18, 3) and np.allclose(table[:, 1:].sum(1), 1, atol=1e-5)


def test_bad_csv_cell_is_reported_with_file_and_line(tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    _write_csv(csv, rows=10)
    lines = csv.read_text().splitlines()
    lines[4] = "1.0,abc,2.0,1"
    csv.write_text("\n".join(lines) + "\n")
    assert main(["train", "--backend", "numpy", "--data", str(csv), "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert "bad.csv" in err and "line 5" in err


def test_evaluate_rejects_a_mismatched_data_set(tmp_path, capsys):
    ckpt = tmp_path / "m.npz"
    assert main(["train", "--backend", "numpy", "--depth", "1", "--width", "8", "--epochs", "1", "--quiet",
                 "--save", str(ckpt)]) == 0
    csv = tmp_path / "toy.csv"
    _write_csv(csv)
    assert main(["evaluate", str(ckpt), "--data", str(csv)]) == 1
    assert "has 3 features, the model in" in capsys.readouterr().err

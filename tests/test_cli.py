"""The command line: help, the default train run, checkpoints, resume, and clear errors."""

import json
import subprocess
import sys

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

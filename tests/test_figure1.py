"""`minisnn figure1` at tiny sizes: curves, resuming, reuse, the files it writes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from minisnn.cli import main
from minisnn.data import make_synthetic
from minisnn.figure1 import Figure1Setting, prepare_data, run_figure1, summary_table

SETTING = Figure1Setting(data="synthetic", samples=512, depths=(2, 3), width=24, batch_size=64, lr_sum=1e-3)


def test_curves_have_one_loss_per_step_and_epoch_on_standardized_rows(tmp_path):
    data = make_synthetic()
    x, y = prepare_data(data, SETTING)  # (512, 16), (512,)
    assert x.shape == (512, data.n_features) and y.shape == (512,)
    assert np.allclose(x.mean(axis=0), 0, atol=1e-9) and np.allclose(x.std(axis=0), 1, atol=1e-9)
    results = run_figure1(data, SETTING, 3, tmp_path)
    assert sorted(results["curves"]) == ["batchnorm-2", "batchnorm-3", "snn-2", "snn-3"]
    assert results["data"]["steps_per_epoch"] == 8 and results["lr_mean_loss"] == pytest.approx(0.064)
    for curve in results["curves"].values():
        steps = np.reshape(curve["step_loss"], (3, 8))
        assert np.allclose(curve["epoch_loss"], steps.mean(axis=1)) and np.isfinite(steps).all()
        assert curve["epoch_loss"][-1] < curve["epoch_loss"][0]  # SGD lowers the training loss
    assert json.loads((tmp_path / "figure1.json").read_text())["curves"] == results["curves"]
    rows = summary_table(results).splitlines()[2:]
    snn2 = results["curves"]["snn-2"]["epoch_loss"]
    assert len(rows) == 4 and rows[0].startswith("| SNN (SELU), 2 layers | 3 | " + f"{snn2[0]:.4f} | {snn2[-1]:.4f} |")


def test_a_resumed_run_continues_the_curves_of_an_uninterrupted_one(tmp_path):
    data = make_synthetic()
    whole = run_figure1(data, SETTING, 4, tmp_path / "whole")
    run_figure1(data, SETTING, 2, tmp_path / "parts", checkpoints=tmp_path / "ckpt")
    resumed = run_figure1(data, SETTING, 4, tmp_path / "parts", checkpoints=tmp_path / "ckpt")
    for name, curve in whole["curves"].items():
        assert resumed["curves"][name]["step_loss"] == pytest.approx(curve["step_loss"], rel=1e-6)
    again = run_figure1(data, SETTING, 4, tmp_path / "parts")  # finished curves are not trained again
    assert again["curves"] == resumed["curves"]


def test_time_budget_stops_after_a_whole_round(tmp_path):
    results = run_figure1(make_synthetic(), SETTING, 50, tmp_path, time_budget_s=1e-9)
    assert {len(c["epoch_loss"]) for c in results["curves"].values()} == {1}


def test_bad_settings_are_errors(tmp_path):
    data = make_synthetic()
    with pytest.raises(ValueError, match="compares snn and batchnorm"):
        run_figure1(data, Figure1Setting(methods=("msra",)), 1, tmp_path)
    with pytest.raises(ValueError, match="samples must be between 1 and"):
        run_figure1(data, Figure1Setting(samples=10**7), 1, tmp_path)


def test_command_writes_figure_csv_and_table(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    data = make_synthetic()
    path = tmp_path / "data.npz"
    np.savez(path, x_train=data.x_train[:300], y_train=data.y_train[:300])
    out = tmp_path / "out"
    args = ["figure1", "--data", str(path), "--depths", "2", "--width", "8", "--epochs", "2", "--batch-size", "32",
            "--out", str(out)]  # no --threads: it would limit the BLAS pool for the rest of the test process
    assert main(args) == 0
    assert "reduced: 300 training rows, 2 epochs" in (out / "figure1.md").read_text()
    with open(out / "figure1.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["method"], r["epoch"]) for r in rows] == [("snn", "1"), ("snn", "2"), ("batchnorm", "1"),
                                                          ("batchnorm", "2")]
    assert (out / "figure1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["figure1", "--plot-only", "--out", str(out)]) == 0
    assert main(["figure1", "--depths", "2,x", "--out", str(out)]) == 2
    assert "--depths takes comma-separated layer counts" in capsys.readouterr().err

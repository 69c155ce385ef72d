"""The command line: help, the default train run, tasks, validation and early stopping, checkpoints, errors."""

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

from minisnn.checkpoint import load_training_state
from minisnn.cli import main

SMALL = ["--backend", "numpy", "--depth", "2", "--width", "16"]


def error_of(argv, capsys) -> str:
    """The one line main writes to stderr for a bad command line, which must exit with status 2."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, (code, err)
    return err


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
                   "--resume", "--schedule", "--activation", "--shape", "--validation", "--early-stopping",
                   "--save-every", "--drop-last", "--threads", "--task", "--optimizer", "--beta1", "--beta2", "--eps"):
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
    assert "LinearSELU" in out and "final: train loss" in out and "test (2048 samples): loss" in out
    history = json.loads(metrics.read_text())
    assert history["epochs"]["epoch"] == [1, 2] and len(history["epochs"]["train_accuracy"]) == 2
    assert history["best_epoch"] is None and set(history["test"]) == {"loss", "accuracy", "balanced_accuracy"}
    assert main(["train", "--backend", "numpy", "--resume", str(ckpt), "--epochs", "1", "--quiet",
                 "--metrics-json", str(metrics)]) == 0
    assert capsys.readouterr().out.startswith("final:")
    assert json.loads(metrics.read_text())["epochs"]["epoch"] == [3]


def test_validation_and_early_stopping_restore_the_chosen_epoch(tmp_path, capsys):
    ckpt, metrics = tmp_path / "m.npz", tmp_path / "metrics.json"
    assert main(["train", *SMALL, "--lr", "0.2", "--epochs", "40", "--validation", "0.2", "--early-stopping", "3",
                 "--quiet", "--save", str(ckpt), "--metrics-json", str(metrics)]) == 0
    out = capsys.readouterr().out
    history = json.loads(metrics.read_text())
    epochs = history["epochs"]
    assert {"val_loss", "val_accuracy", "val_balanced_accuracy"} <= set(epochs)
    accuracy = np.array(epochs["val_accuracy"])
    smoothed = [accuracy[max(0, i - 9):i + 1].mean() for i in range(len(accuracy))]  # trailing 10-epoch mean
    best = int(np.argmax(smoothed)) + 1
    assert history["best_epoch"] == best and history["stopped_epoch"] == best + 3 == epochs["epoch"][-1]
    assert f"early stopping: best epoch {best} (10-epoch mean val_accuracy" in out
    assert f"weights of epoch {best} restored" in out
    _, _, meta = load_training_state(ckpt)
    assert meta["best_epoch"] == best and meta["epochs_done"] == best + 3 and meta["validation"] == 0.2


def test_save_every_writes_numbered_checkpoints(tmp_path, capsys):
    assert main(["train", *SMALL, "--epochs", "5", "--quiet", "--save", str(tmp_path / "run-{epoch}.npz"),
                 "--save-every", "2"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-2.npz", "run-4.npz", "run-5.npz"]
    assert load_training_state(tmp_path / "run-4.npz")[2]["epochs_done"] == 4
    assert "checkpoint written to " + str(tmp_path / "run-5.npz") in capsys.readouterr().out


def test_optimizers_threads_and_drop_last(tmp_path, monkeypatch, capsys):
    import minisnn.threads

    calls = []
    monkeypatch.setattr(minisnn.threads, "set_threads", calls.append)
    ckpt = tmp_path / "adam.npz"
    assert main(["train", *SMALL, "--epochs", "1", "--quiet", "--optimizer", "adamw", "--beta1", "0.8", "--eps", "1e-6",
                 "--threads", "1", "--drop-last", "--batch-size", "3000", "--save", str(ckpt)]) == 0
    _, optimizer, _ = load_training_state(ckpt)
    assert optimizer.config()["kind"] == "adamw" and optimizer.beta1 == 0.8 and optimizer.eps == 1e-6
    assert optimizer.lr == 0.001 and optimizer.weight_decay == 0.01 and calls == [1]
    assert optimizer.step_count == 2  # 8192 samples: two batches of 3000, the last 2192 dropped
    capsys.readouterr()
    assert "--momentum cannot be used with --optimizer adam" in error_of(
        ["train", *SMALL, "--epochs", "1", "--optimizer", "adam", "--momentum", "0.5"], capsys)
    assert "--beta2 cannot be used with --optimizer sgd" in error_of(["train", *SMALL, "--epochs", "1", "--beta2", "0.9"],
                                                                     capsys)


@pytest.mark.parametrize("args, message", [
    (["--dropout", "1.0"], "argument --dropout: must be in [0, 1), got 1.0"),
    (["--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
    (["--lr", "nan"], "argument --lr: a finite number is needed, got 'nan'"),
    (["--early-stopping"], "--early-stopping needs --validation"),
    (["--save-every", "2"], "--save-every N needs --save PATH"),
    (["--validation", "1.5"], "argument --validation: must be in [0, 1), got 1.5"),
    (["--task", "regression"], "--task regression reads tox21 or an .npz file"),
])
def test_errors_are_reported_without_a_traceback(args, message, capsys):
    assert message in error_of(["train", "--backend", "numpy", "--epochs", "1", *args], capsys)


def test_a_missing_checkpoint_is_named(tmp_path, capsys):
    assert "no such checkpoint file" in error_of(["train", "--backend", "numpy", "--resume", str(tmp_path / "none.npz")],
                                                 capsys)


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
    assert main(["train", *SMALL, "--data", str(csv), "--label-column", "label", "--epochs", "3",
                 "--validation", "0.2", "--save", str(ckpt)]) == 0
    out = capsys.readouterr().out
    # 15% stratified test holdout, then 20% of the rest for validation
    assert "82 training samples, 3 features, task classification (2 outputs), 20 validation samples, 18 test" in out
    test_line = next(line for line in out.splitlines() if line.startswith("test (18 samples)"))
    assert main(["evaluate", str(ckpt), "--data", str(csv), "--predictions", str(preds)]) == 0
    evaluated = capsys.readouterr().out
    assert "test split (18 samples): loss" in evaluated and "roc_auc" in evaluated
    assert test_line.split(": ", 1)[1] in evaluated  # the same metrics as at the end of training
    table = np.loadtxt(preds, delimiter=",", skiprows=1)
    assert table.shape == (18, 3) and np.allclose(table[:, 1:].sum(1), 1, atol=1e-5)


def test_multitask_and_regression_from_npz_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4))
    labels = (x[:, :3] > 0).astype(float)
    labels[rng.random(labels.shape) < 0.3] = np.nan  # missing labels
    np.savez(tmp_path / "multi.npz", x=x, y=labels)
    np.savez(tmp_path / "reg.npz", x=x, y=x @ [1.0, -1.0, 0.5, 0.0])  # y (N,): one output
    ckpt, preds = tmp_path / "multi-model.npz", tmp_path / "multi.csv"
    assert main(["train", *SMALL, "--data", str(tmp_path / "multi.npz"), "--task", "multitask", "--epochs", "3",
                 "--validation", "0.2", "--early-stopping", "--save", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "task multitask (3 outputs)" in out and "10-epoch mean val_roc_auc" in out and "roc_auc_2" in out
    assert main(["evaluate", str(ckpt), "--data", str(tmp_path / "multi.npz"), "--predictions", str(preds)]) == 0
    assert "test split (30 samples): loss" in capsys.readouterr().out
    assert open(preds).readline().strip() == "p_0,p_1,p_2" and np.loadtxt(preds, delimiter=",", skiprows=1).shape == (30, 3)
    ckpt = tmp_path / "reg-model.npz"
    assert main(["train", *SMALL, "--data", str(tmp_path / "reg.npz"), "--task", "regression", "--epochs", "3",
                 "--quiet", "--save", str(ckpt)]) == 0
    assert "test (30 samples): loss" in capsys.readouterr().out
    assert main(["evaluate", str(ckpt), "--data", str(tmp_path / "reg.npz")]) == 0
    assert "rmse" in capsys.readouterr().out


def test_bad_npz_targets_are_named(tmp_path, capsys):
    x = np.zeros((20, 2))
    np.savez(tmp_path / "nolabels.npz", x=x)
    np.savez(tmp_path / "twos.npz", x=x, y=np.full((20, 2), 2.0))
    np.savez(tmp_path / "text.npz", x=x.astype(str), y=np.zeros(20))
    for name, task, message in [("nolabels", "regression", "needs arrays 'x' and 'y'"),
                                ("twos", "multitask", "twos training data: target 2.0 at row 0, task 0 is not 0, 1 or NaN"),
                                ("text", "regression", "text.npz: array 'x' must be a 2-D numeric array")]:
        assert message in error_of(["train", *SMALL, "--data", str(tmp_path / f"{name}.npz"), "--task", task,
                                    "--epochs", "1"], capsys)


def _write_gz(path, text):
    with gzip.open(path, "wt") as handle:
        handle.write(text)


def test_tox21_trains_all_tasks_with_missing_labels_by_default(tmp_path, capsys):
    folder = tmp_path / "tox21"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for split, n in (("train", 60), ("test", 20)):
        x = rng.standard_normal((n, 3))
        ids = [f"C{split}{i}" for i in range(n)]
        _write_gz(folder / f"tox21_dense_{split}.csv.gz",
                  ",a,b,c\n" + "".join(f"{i},{r[0]},{r[1]},{r[2]}\n" for i, r in zip(ids, x)))
        cells = [["" if rng.random() < 0.3 else str(int(v > 0)) for v in row[:2]] for row in x]
        _write_gz(folder / f"tox21_labels_{split}.csv.gz",
                  ",NR-AR,SR-MMP\n" + "".join(f"{i},{c[0]},{c[1]}\n" for i, c in zip(ids, cells)))
    assert main(["train", *SMALL, "--data", "tox21", "--data-root", str(tmp_path), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "data tox21: 60 training samples, 3 features, task multitask (2 outputs), 20 test samples" in out
    assert "roc_auc_NR-AR" in out and "roc_auc_SR-MMP" in out
    assert main(["train", *SMALL, "--data", "tox21:SR-MMP", "--data-root", str(tmp_path), "--epochs", "1"]) == 0
    assert "task classification (2 outputs)" in capsys.readouterr().out


def test_bad_csv_cell_is_reported_with_file_and_line(tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    _write_csv(csv, rows=10)
    lines = csv.read_text().splitlines()
    lines[4] = "1.0,abc,2.0,1"
    csv.write_text("\n".join(lines) + "\n")
    err = error_of(["train", "--backend", "numpy", "--data", str(csv), "--epochs", "1"], capsys)
    assert "bad.csv" in err and "line 5" in err and "column 2: 'abc' is not a number" in err


def test_evaluate_rejects_a_mismatched_data_set(tmp_path, capsys):
    ckpt = tmp_path / "m.npz"
    assert main(["train", "--backend", "numpy", "--depth", "1", "--width", "8", "--epochs", "1", "--quiet",
                 "--save", str(ckpt)]) == 0
    csv = tmp_path / "toy.csv"
    _write_csv(csv)
    assert "has 3 features, the model in" in error_of(["evaluate", str(ckpt), "--data", str(csv)], capsys)


@pytest.mark.parametrize("method, extra", [
    ("msra", []), ("batchnorm", ["--order", "before_activation"]), ("layernorm", ["--shape", "conic"]),
    ("weightnorm", []), ("highway", ["--dropout", "0.1"]), ("resnet", ["--shape", "diavolo", "--bottleneck", "0.25"]),
])
def test_train_any_method_then_evaluate_its_checkpoint(tmp_path, capsys, method, extra):
    path = tmp_path / f"{method}.npz"
    assert main(["train", "--method", method, "--epochs", "1", "--depth", "2", "--width", "16", "--quiet",
                 "--save", str(path), *extra]) == 0
    trained = capsys.readouterr().out
    model, _, meta = load_training_state(path)
    assert meta["method"] == method
    layer_types = {layer["type"] for layer in model.config()["layers"]}
    assert {"msra": "ReLU", "batchnorm": "BatchNorm1d", "layernorm": "LayerNorm", "weightnorm": "WeightNormLinear",
            "highway": "Highway", "resnet": "ResidualBlock"}[method] in layer_types
    assert main(["evaluate", str(path)]) == 0
    test_line = next(line for line in trained.splitlines() if line.startswith("test"))
    assert test_line.split(":")[1] in capsys.readouterr().out  # the same test metrics after reloading


@pytest.mark.parametrize("args, message", [
    (["--method", "batchnorm", "--activation", "relu"], "--activation applies to --method snn only"),
    (["--method", "msra", "--init", "he_normal", "--no-fused"], "--init, --no-fused apply to --method snn only"),
    (["--method", "snn", "--shape", "diavolo"], "--shape diavolo applies to --method resnet only"),
    (["--order", "before_activation"], "--bottleneck and --order do not apply to --method snn"),
    (["--method", "resnet", "--bottleneck", "0.5"], "bottleneck applies to resnet with shape 'diavolo' only"),
    (["--method", "resnet", "--dropout", "0.1"], "resnet takes no dropout"),
    (["--method", "highway", "--shape", "conic"], "shape must be 'rectangular'"),
])
def test_options_that_do_not_apply_to_the_method_are_named(args, message, capsys):
    assert main(["train", "--epochs", "1", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) <= 2 and "Traceback" not in err


def test_warnings_are_one_line_naming_the_command(capsys, monkeypatch):
    import warnings

    import minisnn.commands.info as info

    def noisy(args):
        warnings.warn("version 2 checkpoint:\nits header is not hashed")
        return 0

    monkeypatch.setattr(info, "run", noisy)
    before = warnings.showwarning
    assert main(["info"]) == 0
    assert capsys.readouterr().err == "minisnn info: warning: version 2 checkpoint: its header is not hashed\n"
    assert warnings.showwarning is before

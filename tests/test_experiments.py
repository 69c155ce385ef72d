"""The experiment harness: trial keys, grids, model selection on hand-made curves, trial records,
the results store, resuming an interrupted run, and the local and Dask executors."""

from __future__ import annotations

import csv
import json
import os
import sqlite3

import numpy as np
import pytest

from minisnn.callbacks import KeepBest
from minisnn.experiments import (LocalExecutor, ProtocolOptions, Store, TrialSpec, best_epoch, comparable,
                                 load_grid, moving_average, plan_trials, run_experiment, run_trial, select)
from minisnn.experiments.grids import parse_grid
from minisnn.experiments.selection import select_groups, trial_choice
from test_experiments_protocols import write_uci

QUICK = {"epochs": 4, "window": 2}


def quick_spec(dataset="uci:toy", **params):
    params = {"width": 8, "depth": 2, "lr": 0.05, "dropout": 0.0, **params}
    return TrialSpec(dataset, {"name": "uci", "split": "kfold", "fold": 0, "val_fraction": 0.15}, "snn", params, QUICK)


@pytest.fixture
def root(tmp_path):
    write_uci(tmp_path, "toy", n=80)
    write_uci(tmp_path, "other", n=60, classes=3, seed=5)
    return tmp_path


# ---- keys and seeds --------------------------------------------------------------------
def test_key_is_a_hash_of_the_normalized_inputs():
    a = TrialSpec("uci:iris", {"name": "uci"}, "snn", {"lr": 1, "depth": 2})
    b = TrialSpec("uci:iris", {"name": "uci"}, "snn", {"depth": 2.0, "lr": 1.0})
    assert a.key == b.key and len(a.key) == 20 and a.seeds() == b.seeds()
    assert a.key != TrialSpec("uci:iris", {"name": "uci"}, "snn", {"lr": 1, "depth": 3}).key
    assert a.key != TrialSpec("uci:iris", {"name": "uci"}, "snn", {"lr": 1, "depth": 2}, repetition=1).key
    assert TrialSpec.from_dict(json.loads(json.dumps(a.to_dict()))).key == a.key
    assert a.seeds()["model"] != a.seeds()["batches"]


def test_bad_specs_are_named():
    with pytest.raises(ValueError, match="unknown hyperparameter.*units"):
        TrialSpec("uci:iris", {"name": "uci"}, "snn", {"lr": 0.1, "units": 3})
    with pytest.raises(ValueError, match="depth must be an integer"):
        TrialSpec("uci:iris", {"name": "uci"}, "snn", {"lr": 0.1, "depth": 2.5})
    with pytest.raises(ValueError, match="learning rate"):
        TrialSpec("uci:iris", {"name": "uci"}, "snn", {"depth": 2})
    with pytest.raises(ValueError, match="final must be one of"):
        TrialSpec("uci:iris", {"name": "uci"}, "snn", {"lr": 0.1}, {"final": "best"})


# ---- grids ---------------------------------------------------------------------------------
def test_paper_uci_grid_has_the_supplements_sizes():
    grid = load_grid("paper", "uci")
    sizes = {method: len(configs) for method, configs in grid.methods.items()}
    assert sizes == {"snn": 216, "msra": 216, "batchnorm": 108, "weightnorm": 108, "layernorm": 108,
                     "highway": 36, "resnet": 135}
    assert sum(sizes.values()) == 927
    assert {c["dropout"] for c in grid.methods["msra"]} == {0.5, 0.0}
    assert all(c["width"] is None for c in grid.methods["highway"])
    assert len(load_grid("paper", "htru2").methods["snn"]) == 180
    assert len(load_grid("paper", "tox21").methods["snn"]) == 504


def test_user_grid_duplicates_are_removed(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"training": {"epochs": 3}, "methods": {
        "snn": [{"depth": [2, 4], "lr": [1, 0.1]}, {"depth": [2], "lr": [1.0]}]}}))
    grid = load_grid(path)
    assert grid.name == "mine" and grid.training == {"epochs": 3}
    assert grid.methods["snn"] == [{"depth": 2, "lr": 1.0}, {"depth": 2, "lr": 0.1}, {"depth": 4, "lr": 1.0},
                                   {"depth": 4, "lr": 0.1}]
    with pytest.raises(ValueError, match="no configurations for method 'msra'"):
        grid.configurations("msra")


def test_bad_grids_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"methods.snn\[0\]: unknown hyperparameter"):
        parse_grid({"methods": {"snn": [{"lr": [0.1], "layers": [2]}]}}, "g.json")
    with pytest.raises(ValueError, match="non-empty list of values"):
        parse_grid({"methods": {"snn": [{"lr": 0.1}]}}, "g.json")
    with pytest.raises(ValueError, match="unknown training setting"):
        parse_grid({"training": {"epoch": 3}, "methods": {"snn": [{"lr": [0.1]}]}}, "g.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  'methods': 1}")
    with pytest.raises(ValueError, match="not valid JSON.*line 2"):
        load_grid(bad)
    with pytest.raises(ValueError, match="paper's grids exist for the families"):
        load_grid("paper", None)


def test_plan_lists_each_trial_once_and_adds_folds_and_repetitions(root):
    specs = plan_trials(["uci:toy", "uci:toy", "htru2"], ["snn"], "tiny", root,
                        options=ProtocolOptions(uci_folds=(0, 2), repetitions=2))
    assert len(specs) == len({s.key for s in specs}) == (2 + 10) * 2 * 2
    assert {s.protocol["fold"] for s in specs if s.dataset == "htru2"} == set(range(10))
    assert all(s.training["epochs"] == 10 for s in specs)  # the tiny grid's setting
    assert [s.dataset for s in plan_trials(["uci:all"], ["snn"], "tiny", root)][::2] == ["uci:other", "uci:toy"]
    with pytest.raises(ValueError, match="unknown method.*selu; methods are snn, msra"):
        plan_trials(["uci:toy"], ["snn", "selu"], "tiny", root)


def test_the_tox21_split_option_reaches_the_protocol():
    assert ProtocolOptions().protocols("tox21") == [{"name": "holdout", "val_fraction": 0.15}]
    assert ProtocolOptions(tox21_split="scaffold").protocols("tox21") == [
        {"name": "holdout", "val_fraction": 0.15, "split": "scaffold"}]
    assert ProtocolOptions(tox21_split="scaffold").protocols("uci:toy")[0]["name"] == "uci"  # Tox21 only
    with pytest.raises(ValueError, match="tox21 split must be one of"):
        ProtocolOptions(tox21_split="sideways").protocols("tox21")


# ---- selection on hand-made curves -------------------------------------------------------
def test_moving_average_is_trailing_and_matches_keep_best():
    curve = [0.5, 0.7, 0.6, 0.9, 0.8, 0.85]
    assert np.allclose(moving_average(curve, 3), [0.5, 0.6, 0.6, 2.2 / 3, 2.3 / 3, 2.55 / 3])
    keep = KeepBest(monitor="val_accuracy", window=3, restore=False)
    keep.on_train_begin(None)
    for epoch, value in enumerate(curve, 1):
        keep.on_epoch_end(epoch, {"val_accuracy": value}, None, None)
    assert np.array_equal(keep.smoothed, moving_average(curve, 3))
    assert best_epoch(curve, "max", 3) == (keep.best_epoch, keep.best_value) == (6, pytest.approx(2.55 / 3))


def test_best_epoch_prefers_the_earliest_of_equal_smoothed_values():
    assert best_epoch([0.2, 0.9, 0.9, 0.9], "max", 1) == (2, 0.9)
    assert best_epoch([3.0, 1.0, 2.0, 1.0], "min", 1) == (2, 1.0)
    assert best_epoch([3.0, 1.0, 2.0, 0.0], "min", 2) == (4, 1.0)  # smoothed 3, 2, 1.5, 1
    with pytest.raises(ValueError, match="NaN at epoch 2"):
        best_epoch([0.1, float("nan")], "max", 1)


def _record(key, curve, depth=2, lr=0.1, dropout=0.0, mode="max", window=1, dataset="d", method="snn"):
    params = {"depth": depth, "lr": lr, "dropout": dropout}
    return {"key": key, "status": "ok", "monitor": "val_accuracy", "mode": mode, "window": window,
            "curves": {"val_accuracy": curve},
            "spec": {"dataset": dataset, "method": method, "protocol": {"name": "uci"}, "params": params,
                     "repetition": 0}}


def test_selection_takes_the_best_configuration_and_epoch():
    a = _record("a", [0.5, 0.8, 0.6])
    b = _record("b", [0.7, 0.7, 0.79])
    assert select([a, b]) is a and trial_choice(a) == (2, 0.8)
    assert select([a, b, _record("c", [0.1, 0.9], mode="max", window=2)]) is a  # smoothed 0.5 at best
    lossy = [_record("x", [0.3, 0.2], mode="min"), _record("y", [0.25, 0.25], mode="min")]
    assert select(lossy)["key"] == "x"


def test_ties_prefer_more_layers_then_lower_lr_then_higher_dropout():
    curve = [0.6, 0.8]
    shallow = _record("k1", curve, depth=2, lr=0.01, dropout=0.1)
    deep = _record("k2", curve, depth=8, lr=1.0, dropout=0.0)
    assert select([shallow, deep]) is deep
    fast = _record("k3", curve, depth=8, lr=0.1, dropout=0.0)
    slow = _record("k4", curve, depth=8, lr=0.01, dropout=0.0)
    assert select([fast, slow, deep]) is slow
    dropped = _record("k5", curve, depth=8, lr=0.01, dropout=0.05)
    assert select([slow, dropped]) is dropped and select([dropped, slow]) is dropped
    # smoothed values equal up to rounding in the last bits are ties too
    nearly = _record("k6", [0.1 + 0.2, 0.3], depth=16, window=2)
    exact = _record("k7", [0.3, 0.3], depth=4, window=2)
    assert select([exact, nearly]) is nearly


def test_groups_are_selected_separately():
    records = [_record("a", [0.5]), _record("b", [0.6]), _record("c", [0.4], method="msra"),
               _record("d", [0.9], dataset="e")]
    chosen = {r["key"] for r in select_groups(records).values()}
    assert chosen == {"b", "c", "d"}
    assert select([{**_record("z", [0.9]), "status": "failed"}]) is None


# ---- trials --------------------------------------------------------------------------------
def test_a_trial_record_is_json_and_repeatable(root):
    spec = quick_spec()
    record = run_trial(spec, root)
    assert json.loads(json.dumps(record)) == record
    assert record["key"] == spec.key and record["status"] == "ok" and record["epochs_run"] == 4
    assert len(record["curves"]["train_loss"]) == len(record["curves"]["val_accuracy"]) == 4
    assert (record["best_epoch"], pytest.approx(record["val_best"])) == trial_choice(record)
    assert set(record["test"]) == {"loss", "accuracy", "balanced_accuracy", "roc_auc"}
    assert record["data"]["n_test"] == 20 and record["data"]["n_train"] + record["data"]["n_val"] == 60
    assert record["backend"] == {"name": "numpy", "dtype": "float32"} and record["versions"]["numpy"] == np.__version__
    assert comparable(run_trial(spec.to_dict(), root)) == comparable(record)
    other = run_trial(quick_spec(lr=0.2), root)
    assert other["curves"]["train_loss"] != record["curves"]["train_loss"]


def test_retrain_rule_trains_on_training_and_validation_rows(root):
    record = run_trial(TrialSpec("uci:toy", {"name": "uci"}, "msra", {"width": 8, "depth": 2, "lr": 0.05},
                                 {**QUICK, "final": "retrain"}), root)
    selected = run_trial(TrialSpec("uci:toy", {"name": "uci"}, "msra", {"width": 8, "depth": 2, "lr": 0.05}, QUICK),
                         root)
    assert record["final"] == "retrain" and record["status"] == "ok"
    assert record["curves"] == selected["curves"]  # the selection run is the same
    assert record["test"] != selected["test"]


def test_divergence_keeps_the_epochs_before_it(root):
    record = run_trial(quick_spec(lr=1e6, depth=4), root)
    assert record["diverged"] is not None and record["diverged"]["epoch"] == record["epochs_run"] + 1
    assert record["status"] == ("ok" if record["epochs_run"] else "diverged")
    assert record["best_epoch"] is None or record["best_epoch"] <= record["epochs_run"]
    assert "lower the learning rate" in record["diverged"]["message"]


# ---- store, driver, resume -----------------------------------------------------------------
def _plan(root):
    return plan_trials(["uci:toy", "uci:other"], ["snn", "msra"], "tiny", root, training=QUICK)


def _rows(store):
    """Results rows without wall time and finish time."""
    return [row[:7] for row in store.result_rows()]


class CrashAfter:
    """An executor that dies (like a killed driver) after `n` records."""

    def __init__(self, inner, n):
        self.inner, self.n, self.workers = inner, n, 1

    def run(self, specs, data_root=None):
        for done, record in enumerate(self.inner.run(specs, data_root)):
            if done == self.n:
                raise KeyboardInterrupt
            yield record


def test_an_interrupted_run_resumes_with_identical_rows(root, tmp_path):
    specs = _plan(root)
    with Store(tmp_path / "whole.sqlite") as whole:
        summary = run_experiment(whole, specs, LocalExecutor(0), str(root), progress=None)
        assert (summary.ran, summary.failed) == (8, 0)
        expected = _rows(whole)
    with Store(tmp_path / "broken.sqlite") as broken:
        with pytest.raises(KeyboardInterrupt):
            run_experiment(broken, specs, CrashAfter(LocalExecutor(0), 3), str(root), progress=None)
        assert broken.counts()["done"] == 3 and broken.counts()["pending"] == 5
    with Store(tmp_path / "broken.sqlite") as resumed:
        summary = run_experiment(resumed, specs, LocalExecutor(2, threads=1), str(root), progress=None)
        assert summary.ran == 5 and summary.new == 0
        assert _rows(resumed) == expected
        assert run_experiment(resumed, specs, LocalExecutor(0), str(root), progress=None).ran == 0


def test_the_in_process_executor_leaves_the_thread_settings_as_they_were(root):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    environment = dict(os.environ)
    before = [pool["num_threads"] for pool in threadpoolctl.threadpool_info()]
    (record,) = LocalExecutor(0, threads=1).run([quick_spec()], str(root))
    assert record["status"] == "ok"
    assert dict(os.environ) == environment
    assert [pool["num_threads"] for pool in threadpoolctl.threadpool_info()] == before


def test_failures_are_recorded_and_retried_on_request(root, tmp_path):
    good = quick_spec()
    bad = quick_spec(dataset="uci:absent")
    with Store(tmp_path / "s.sqlite") as store:
        summary = run_experiment(store, [bad, good], LocalExecutor(0), str(root), progress=None)
        assert (summary.ran, summary.failed) == (2, 1)
        (key, what, error), = store.errors()
        assert key == bad.key and what == "uci:absent snn" and "no UCI data set 'absent'" in error
        assert store.counts() == {"planned": 2, "ok": 1, "diverged": 0, "failed": 1, "pending": 0, "done": 1,
                                  "mean_wall_s": pytest.approx(store.counts()["mean_wall_s"])}
        assert run_experiment(store, [bad, good], LocalExecutor(0), str(root), progress=None).ran == 0
        assert run_experiment(store, [bad, good], LocalExecutor(0), str(root), retry_failed=True,
                              progress=None).ran == 1


def test_store_is_wal_sqlite_and_exports_csv(root, tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        run_experiment(store, _plan(root)[:3], LocalExecutor(0), str(root), progress=None)
        store.add_trials(_plan(root)[3:4])  # methods or data sets added later are pending
        assert store.counts()["pending"] == 1
        csv_path = store.export_csv(tmp_path / "out.csv")
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and {"key", "dataset", "method", "param_lr", "status", "test_value", "error"} <= set(rows[0])
    assert [row["status"] for row in rows] == ["ok", "ok", "ok", "pending"]
    assert json.loads(rows[0]["protocol"])["name"] == "uci" and float(rows[0]["test_value"]) > 0
    (tmp_path / "junk.sqlite").write_text("not a database" * 100)
    with pytest.raises(ValueError, match="not a minisnn results store"):
        Store(tmp_path / "junk.sqlite")


def test_local_and_dask_executors_give_the_same_records(root):
    distributed = pytest.importorskip("distributed")
    from minisnn.experiments import DaskExecutor
    from minisnn.experiments.executors import restored_environment

    specs = _plan(root)[:4]
    local = {r["key"]: comparable(r) for r in LocalExecutor(0, threads=1).run(specs, str(root))}
    environment = dict(os.environ)
    dask = {r["key"]: comparable(r) for r in DaskExecutor(workers=2).run(specs, str(root))}
    assert distributed.__version__ and set(local) == {s.key for s in specs}
    assert dask == local and dict(os.environ) == environment  # the cluster's variables do not stay behind
    with restored_environment(), distributed.LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None,
                                                          silence_logs=40) as cluster:
        remote = DaskExecutor(address=cluster.scheduler_address, retries=0)
        assert remote.name == f"dask ({cluster.scheduler_address})"
        bad = quick_spec(dataset="uci:absent")
        records = {r["key"]: r for r in remote.run([*specs[:2], bad], str(root))}
        assert {key: comparable(records[key]) for key in local if key in records} == {s.key: local[s.key]
                                                                                     for s in specs[:2]}
        assert records[bad.key]["status"] == "failed" and "no UCI data set 'absent'" in records[bad.key]["error"]


def test_kernels_are_prepared_only_for_numba_trials(monkeypatch, tmp_path):
    from minisnn.experiments import executors

    assert executors.prepare_kernels({"numpy"}) is None
    pytest.importorskip("numba")
    monkeypatch.setenv("MINISNN_NUMBA_KERNELS", "jit")
    assert executors.prepare_kernels({"numba"}) is None
    monkeypatch.delenv("MINISNN_NUMBA_KERNELS")
    from minisnn.backends import numba_aot

    built = []
    monkeypatch.setattr(numba_aot, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(numba_aot, "load", lambda build: built.append(build) or (object(), "where"))
    assert executors.prepare_kernels({"auto"}) == "where" and built == [True]
    assert (tmp_path / ".build.lock").is_file()

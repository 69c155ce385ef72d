"""Reports of the experiment harness: the statistics against independent values (including the
paper's own UCI table beside the repository, skipped when absent), report files, and the
`minisnn experiment` commands, including a driver killed mid-run and started again."""

from __future__ import annotations

import csv
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minisnn.cli import main
from minisnn.experiments import LocalExecutor, Store, plan_trials, run_experiment
from minisnn.experiments.paper import paper_values
from minisnn.experiments.report import collect, compare, write_report
from minisnn.experiments.stats import chi2_sf, friedman, ranks, wilcoxon_vs_best
from test_experiments_protocols import write_uci

PAPER_TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "uci" / "paper_results.csv"
REPO = Path(__file__).resolve().parents[1]


def test_chi2_tail_matches_closed_forms():
    for x in (0.5, 3.0, 31.48):
        assert chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-14)
        assert chi2_sf(x, 1) == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-14)
        assert chi2_sf(x, 3) == pytest.approx(math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi)
                                              * math.exp(-x / 2), rel=1e-13)
    assert chi2_sf(0.0, 6) == 1.0
    with pytest.raises(ValueError, match="integer >= 1"):
        chi2_sf(1.0, 0)


def test_friedman_by_hand_and_with_ties():
    scores = np.array([[0.9, 0.8, 0.7], [0.6, 0.9, 0.5], [0.8, 0.7, 0.6], [0.9, 0.6, 0.8]])
    assert np.array_equal(ranks(scores), [[1, 2, 3], [2, 1, 3], [1, 2, 3], [1, 3, 2]])
    # rank sums 5, 8, 11: 12 / (4 * 3 * 4) * (25 + 64 + 121) - 3 * 4 * 4 = 4.5
    result = friedman(scores)
    assert (result.statistic, result.df) == (pytest.approx(4.5), 2)
    assert result.p_value == pytest.approx(math.exp(-2.25))
    tied = np.array([[0.9, 0.9, 0.7], [0.6, 0.9, 0.5], [0.8, 0.7, 0.6]])
    # ranks [1.5 1.5 3] [2 1 3] [1 2 3]: sums 4.5, 4.5, 9 -> 12/36*(20.25+20.25+81) - 36 = 4.5; ties 6/(3*24)
    assert friedman(tied).statistic == pytest.approx(4.5 / (1 - 6 / 72))
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(10):
        sample = rng.integers(0, 4, size=(9, 4)).astype(float)
        assert friedman(sample).statistic == pytest.approx(scipy_stats.friedmanchisquare(*sample.T).statistic)
        assert friedman(sample).p_value == pytest.approx(scipy_stats.friedmanchisquare(*sample.T).pvalue)


@pytest.mark.skipif(not PAPER_TABLE.is_file(), reason=f"no paper table at {PAPER_TABLE}")
def test_statistics_of_the_papers_uci_table():
    values = paper_values(PAPER_TABLE)
    methods = ["snn", "msra", "layernorm", "highway", "resnet", "weightnorm", "batchnorm"]
    datasets = sorted({d for d, _ in values if d.startswith("uci:") and all((d, m) in values for m in methods)})
    assert len(datasets) == 120
    scores = np.array([[values[(d, m)] for m in methods] for d in datasets])
    assert ranks(scores).mean(axis=0) == pytest.approx([3.2375, 3.7667, 3.8292, 4.0, 4.2417, 4.4, 4.525], abs=1e-4)
    result = friedman(scores)
    assert round(result.statistic, 2) == 31.48 and result.p_value == pytest.approx(2.05e-5, rel=0.01)
    pytest.importorskip("scipy")
    best, p = wilcoxon_vs_best(scores, methods)
    assert best == "snn"
    expected = {"msra": 0.047, "layernorm": 0.040, "highway": 0.0087, "resnet": 1.7e-4, "weightnorm": 2.2e-5,
                "batchnorm": 4.1e-5}
    assert p == pytest.approx(expected, rel=0.05)


def _record(key, dataset, method, value, depth=2, fold=0, mismatch=False):
    return {"key": key, "status": "ok", "monitor": "val_accuracy", "mode": "max", "window": 1,
            "curves": {"val_accuracy": [0.5, 0.5 + value / 10]}, "test": {"accuracy": value},
            "data": {"scale_check": {"mismatch": mismatch}},
            "spec": {"dataset": dataset, "method": method, "protocol": {"name": "uci", "fold": fold},
                     "params": {"depth": depth, "lr": 0.1}, "repetition": 0}}


def test_results_average_the_selected_trials_over_folds_and_rank_complete_data_sets():
    records = [_record("a", "d1", "snn", 0.9, fold=0), _record("b", "d1", "snn", 0.7, fold=1),
               _record("c", "d1", "snn", 0.1, fold=1, depth=4),  # lower validation: not selected
               _record("e", "d1", "msra", 0.6), _record("f", "d2", "snn", 0.5, mismatch=True),
               _record("g", "d2", "msra", 0.8), _record("h", "d3", "snn", 0.4)]
    results = collect(records)
    assert results[("d1", "snn")].values == [0.9, 0.7] and results[("d1", "snn")].mean == pytest.approx(0.8)
    assert results[("d2", "snn")].scale_mismatch and not results[("d1", "snn")].scale_mismatch
    comparison = compare(results)
    assert comparison.datasets == ["d1", "d2"] and comparison.methods == ["msra", "snn"]
    assert comparison.average_ranks == pytest.approx([1.5, 1.5])


def test_report_files(tmp_path):
    records = [_record("a", "uci:x", "snn", 0.9), _record("b", "uci:x", "msra", 0.6),
               _record("c", "uci:y", "snn", 0.5, mismatch=True), _record("d", "uci:y", "msra", 0.7),
               _record("e", "uci:z", "snn", 0.8), _record("f", "uci:z", "msra", 0.7)]
    paper = {("uci:x", "snn"): 0.85}
    written = write_report(records, tmp_path, paper, figures=False)
    assert sorted(p.name for p in written) == ["ranks.csv", "report.md", "selected.csv"]
    with open(tmp_path / "selected.csv", newline="") as handle:
        rows = {(r["dataset"], r["method"]): r for r in csv.DictReader(handle)}
    assert rows[("uci:x", "snn")]["paper"] == "0.8500" and rows[("uci:x", "snn")]["minus_paper"] == "0.0500"
    assert rows[("uci:y", "snn")]["scale_mismatch"] == "yes" and rows[("uci:x", "snn")]["scale_mismatch"] == ""
    text = (tmp_path / "report.md").read_text()
    assert "Friedman chi-square" in text and "another scale than the training file: uci:y" in text
    pytest.importorskip("matplotlib")
    names = sorted(p.name for p in write_report(records, tmp_path, paper))
    assert names == ["curves.png", "paper.png", "ranks.csv", "ranks.png", "report.md", "selected.csv"]


def test_paired_wilcoxon_over_folds_against_the_best_method(tmp_path):
    pytest.importorskip("scipy")
    from scipy.stats import wilcoxon

    from minisnn.experiments.report import paired_rows

    snn = [0.99, 0.98, 0.97, 0.99, 0.96, 0.98]
    msra = [0.97, 0.975, 0.95, 0.96, 0.955, 0.94]
    records = [_record(f"s{f}", "htru2", "snn", v, fold=f) for f, v in enumerate(snn)]
    records += [_record(f"m{f}", "htru2", "msra", v, fold=f) for f, v in reversed(list(enumerate(msra)))]
    records += [_record("u", "uci:x", "snn", 0.9), _record("v", "uci:x", "msra", 0.8)]  # one fold: no row
    header, rows = paired_rows(collect(records))
    table = {row[1]: dict(zip(header, row)) for row in rows}
    assert [row[0] for row in rows] == ["htru2", "htru2"] and table["snn"]["wilcoxon_p_vs_best"] == "best"
    assert table["msra"]["mean"] == f"{np.mean(msra):.4f}" and table["msra"]["groups"] == 6
    expected = wilcoxon(snn, msra).pvalue  # paired by fold although msra's records came in reverse order
    assert float(table["msra"]["wilcoxon_p_vs_best"]) == pytest.approx(expected, abs=1e-4)
    written = write_report(records, tmp_path, {}, figures=False)
    assert "paired.csv" in [p.name for p in written]
    assert "paired over folds and repetitions" in (tmp_path / "report.md").read_text()


def test_the_papers_ranks_on_the_same_data_sets_and_the_side_by_side_table(tmp_path):
    from minisnn.experiments.report import paper_comparison, side_by_side_rows

    records = [_record("a", "uci:x", "snn", 0.9), _record("b", "uci:x", "msra", 0.6),
               _record("c", "uci:y", "snn", 0.5), _record("d", "uci:y", "msra", 0.7)]
    paper = {("uci:x", "snn"): 0.8, ("uci:x", "msra"): 0.7, ("uci:y", "snn"): 0.9, ("uci:y", "msra"): 0.6,
             ("uci:z", "snn"): 0.5}
    results = collect(records)
    theirs = paper_comparison(compare(results), paper)
    assert theirs.methods == ["msra", "snn"] and list(theirs.average_ranks) == [2.0, 1.0]  # snn wins both
    assert paper_comparison(compare(results), {k: v for k, v in paper.items() if k != ("uci:y", "msra")}) is None
    header, rows = side_by_side_rows(results, paper)
    assert header == ["dataset", "msra minisnn", "msra paper", "snn minisnn", "snn paper"]
    assert rows == [["uci:x", "0.6000", "0.7000", "0.9000", "0.8000"], ["uci:y", "0.7000", "0.6000", "0.5000", "0.9000"]]
    write_report(records, tmp_path, paper, figures=False)
    with open(tmp_path / "ranks.csv", newline="") as handle:
        ranks_csv = {r["method"]: r for r in csv.DictReader(handle)}
    assert ranks_csv["snn"]["paper_average_rank"] == "1.0000" and ranks_csv["snn"]["paper_minus_expected"] == "-0.5000"
    assert "Side by side with the paper" in (tmp_path / "report.md").read_text()


# ---- the commands ----------------------------------------------------------------------------
def _run_args(root, store, *extra):
    return ["experiment", "run", "--data", "uci:toy,uci:other", "--methods", "snn,msra", "--grid", "tiny",
            "--store", str(store), "--data-root", str(root), "--epochs", "3", "--workers", "0", "--threads", "1",
            *extra]


def test_run_status_report_commands(tmp_path, capsys):
    write_uci(tmp_path, "toy")
    write_uci(tmp_path, "other", classes=3, seed=3)
    store = tmp_path / "runs.sqlite"
    assert main(_run_args(tmp_path, store, "--limit", "5")) == 0
    assert "5 done, 0 failed, 3 pending" in capsys.readouterr().out
    assert main(["experiment", "status", "--store", str(store), "--workers", "1", "--by", "dataset"]) == 0
    out = capsys.readouterr().out
    assert "planned 8: done 5 (0 diverged), failed 0, pending 3" in out
    assert "uci:other  done      1  failed      0  pending      3" in out
    assert "uci:toy    done      4  failed      0  pending      0" in out
    assert main(_run_args(tmp_path, store)) == 0
    assert "ran 3 trials" in capsys.readouterr().out
    assert main(["experiment", "report", "--store", str(store), "--out", str(tmp_path / "rep"), "--no-figures"]) == 0
    assert {p.name for p in (tmp_path / "rep").iterdir()} == {"trials.csv", "report.md", "selected.csv", "ranks.csv"}
    assert main(["experiment", "status", "--store", str(tmp_path / "none.sqlite")]) != 0
    assert "no results store" in capsys.readouterr().err
    missing = _run_args(tmp_path, tmp_path / "other.sqlite")
    missing[missing.index("uci:toy,uci:other")] = "uci:toy,uci:absent"
    assert main(missing) != 0  # checked before any trial runs
    assert "no UCI data set 'absent'" in capsys.readouterr().err and not (tmp_path / "other.sqlite").exists()


def test_a_killed_driver_resumes_with_rows_identical_to_an_uninterrupted_run(tmp_path):
    write_uci(tmp_path, "toy", n=400)
    store = tmp_path / "killed.sqlite"
    args = _run_args(tmp_path, store, "--epochs", "40")
    args[args.index("uci:toy,uci:other")] = "uci:toy"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-m", "minisnn", *args], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    finished = 0
    while time.monotonic() < deadline and child.poll() is None:
        if store.exists():
            with sqlite3.connect(store, timeout=10) as db:
                finished = db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'results'").fetchone()[0] \
                    and db.execute("SELECT count(*) FROM results").fetchone()[0]
            if finished:
                break
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    with Store(store) as killed:
        done = killed.counts()["done"]
    assert 1 <= done < 4, "the driver should die after its first stored trial"
    assert main(args) == 0
    specs = plan_trials(["uci:toy"], ["snn", "msra"], "tiny", str(tmp_path), {"epochs": 40})
    with Store(tmp_path / "whole.sqlite") as whole:
        run_experiment(whole, specs, LocalExecutor(0, threads=1), str(tmp_path), progress=None)
        expected = [row[:7] for row in whole.result_rows()]
    with Store(store) as resumed:
        assert [row[:7] for row in resumed.result_rows()] == expected


class _Terminal:
    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_progress_rewrites_one_line_on_a_terminal():
    from minisnn.experiments.runner import ProgressLine

    terminal = _Terminal()
    progress = ProgressLine(terminal, total=3, workers=1)
    for status in ("ok", "failed", "ok"):
        progress.update({"status": status, "spec": {"dataset": "uci:x", "method": "snn"}})
    lines = terminal.text.split("\r")[1:]
    assert len(lines) == 3 and terminal.text.endswith("\n") and terminal.text.count("\n") == 1
    assert lines[1].startswith("trials 2/3  failed 1  elapsed") and "ETA" in lines[1]
    assert "last: uci:x snn ok" in lines[2]

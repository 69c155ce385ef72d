"""Smoke test of bench/sklearn_fit.py: SNNClassifier against MLPClassifier on a tiny synthetic problem,
timed and scored, written as JSON. Skipped without scikit-learn."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_sklearn_fit_benchmark_times_and_scores_both_and_writes_json(tmp_path):
    out = tmp_path / "sklearn_fit.json"
    result = subprocess.run([sys.executable, str(BENCH / "sklearn_fit.py"), "--quick", "--backends", "numpy",
                             "--json", str(out)], capture_output=True, text=True, timeout=300, check=False, cwd=BENCH)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["benchmark"] == "sklearn_fit" and report["settings"]["quick"] is True
    synthetic = report["datasets"]["synthetic"]
    assert set(synthetic["fit_seconds"]) == {"minisnn-numpy", "sklearn-mlp", "sklearn-mlp-float64"}
    assert all(t["median"] > 0 for t in synthetic["fit_seconds"].values())
    assert all(0 <= a <= 1 for a in synthetic["test_accuracy"].values())
    assert set(synthetic["ratios"]) == {"minisnn-numpy / sklearn-mlp", "minisnn-numpy / sklearn-mlp-float64",
                                        "gemm_floor / sklearn-mlp"}
    assert all(ratio > 0 for ratio in synthetic["ratios"].values())
    assert 0 < synthetic["gemm_floor_seconds"] < synthetic["fit_seconds"]["minisnn-numpy"]["median"]
    assert isinstance(synthetic["meets_target"]["minisnn-numpy"], bool)
    assert "synthetic" in result.stdout and str(out) in result.stdout

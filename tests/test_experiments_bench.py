"""bench/harness.py runs once with tiny sizes (its overhead part) and writes the JSON it promises."""

import json
import subprocess
import sys
from pathlib import Path

from test_experiments_protocols import write_uci

BENCH = Path(__file__).resolve().parent.parent / "bench" / "harness.py"


def test_harness_benchmark_writes_its_json(tmp_path):
    for name, classes in (("iris", 3), ("wine", 3), ("glass", 2), ("pima", 2)):
        write_uci(tmp_path, name, n=80, classes=classes)
    out = tmp_path / "harness.json"
    command = [sys.executable, str(BENCH), "--data-root", str(tmp_path), "--quick", "--parts", "overhead",
               "--backend", "numpy", "--trial-seconds", "0.1", "--json", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["targets"]["overhead_fraction"] == 0.05 and report["backend"] == "numpy"
    for executor in ("in_process", "one_worker"):
        timing = report["overhead"][executor]
        assert timing["trials"] == 4 and timing["elapsed_s"] >= timing["sum_trial_s"] > 0

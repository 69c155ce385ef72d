"""Smoke test of bench/methods_step.py: the methods' training-step benchmark runs and writes its JSON."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_methods_step_benchmark_times_every_framework_and_writes_json(tmp_path):
    out = tmp_path / "methods.json"
    result = subprocess.run([sys.executable, str(BENCH / "methods_step.py"), "--quick", "--json", str(out)],
                            capture_output=True, text=True, timeout=300, check=False, cwd=BENCH)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["benchmark"] == "methods_step" and set(report["configs"]) == {"BN-tiny", "RES-tiny"}
    for config in report["configs"].values():
        timing = config["timing"]
        assert "minisnn-numpy" in timing and "minisnn-numpy gemm-only" in timing
        assert all(t["median_ms"] > 0 for t in timing.values())
        assert config["ratios"]["minisnn-numpy / gemm-only"] > 0

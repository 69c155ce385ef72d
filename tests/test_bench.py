"""Each benchmark runs once with tiny sizes and writes the JSON it promises."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300,
                          check=False)


def test_kernel_benchmark_checks_and_times_every_op_and_variant(tmp_path):
    from minisnn.backends import OPS, BackendUnavailable, get_backend

    out = tmp_path / "kernels.json"
    result = run_bench("kernels.py", "--quick", "--json", str(out))  # PyTorch rows too when installed
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["copy_bandwidth"]["before"]["gb_per_s"] > 0
    rows = {(r["backend"], r["op"], r["variant"]): r for r in report["results"]}
    for backend_name in ("numpy", "numba"):
        try:
            be = get_backend(backend_name)
        except BackendUnavailable:  # numba absent: the benchmark skips its rows
            continue
        for op in OPS:
            for variant in be.variants(op):
                row = rows[(backend_name, op, variant)]
                assert row["check"] == "ok" and row["min_ms"] > 0 and row["min_ms"] <= row["median_ms"]
                assert ("gflop_per_s" in row) if op == "matmul" else (row["fraction_of_baseline"] > 0)
    assert rows[("numpy", "bias_selu_dropout_forward", "default in place")]["baseline"] == "in-place multiply"
    torch_selu = [r for r in report["results"] if r["backend"].startswith("torch") and r["op"] == "selu_forward"]
    assert all(r["check"] == "ok" for r in torch_selu)


def test_train_step_benchmark_reports_time_gemm_share_and_memory(tmp_path):
    out = tmp_path / "train.json"
    result = run_bench("train_step.py", "--quick", "--json", str(out))  # with PyTorch when installed
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    (config,) = report["configs"].values()
    assert config["timing"]["minisnn-numpy"]["median_ms"] > 0
    assert config["timing"]["minisnn-numpy gemm-only"]["median_ms"] > 0
    assert config["gemm_calls_per_step"]["minisnn-numpy"] == 3 * 4 - 1  # forward + dW per layer, dx but the first
    assert config["memory"]["minisnn-numpy"]["peak_rss_mb"] > 0
    assert config["allocation_per_step"]["minisnn-numpy"]["temporary_bytes_peak"] >= 0
    assert config["ratios"]["minisnn-numpy / gemm-only"] > 0
    if report["settings"]["torch_threads"] is not None:
        assert config["timing"]["torch"]["median_ms"] > 0
        assert config["memory"]["torch"]["peak_rss_mb"] > 0
        assert config["ratios"]["minisnn-numpy / torch"] > 0


def test_packing_benchmark_times_both_layouts_with_the_same_first_loss(tmp_path):
    out = tmp_path / "packing.json"
    result = run_bench("packing.py", "--quick", "--json", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    (config,) = json.loads(out.read_text())["configs"].values()
    assert config["timing"]["numpy packed"]["median_ms"] > 0 and config["timing"]["numpy per-array"]["median_ms"] > 0
    assert config["ratios"]["numpy packed / per-array"] > 0
    assert len({round(v, 4) for v in config["first_step_loss"].values()}) == 1  # both layouts compute the same step


def test_train_step_benchmark_says_when_pytorch_is_missing(tmp_path):
    script = (f"import sys, runpy; sys.modules['torch'] = None; sys.path.insert(0, {str(BENCH)!r}); "
              "sys.argv = ['train_step.py', '--quick', '--json', "
              f"{str(tmp_path / 't.json')!r}]; runpy.run_path({str(BENCH / 'train_step.py')!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert "PyTorch comparison skipped" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("script", ["kernels.py", "train_step.py"])
def test_benchmarks_explain_their_options(script):
    result = run_bench(script, "--help")
    assert result.returncode == 0 and "--json" in result.stdout and "--quick" in result.stdout


def bench_common():
    """bench/common.py as a module (it is a script folder, not a package)."""
    spec = importlib.util.spec_from_file_location("bench_common", BENCH / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    return common


def test_avx2_target_compiles_jitted_loops_without_avx512(tmp_path):
    """--isa avx2 (bench/common.py): Numba's JIT then emits AVX2 (ymm) vector code and no AVX-512
    (zmm) instruction, also on a machine that has AVX-512."""
    pytest.importorskip("numba")
    common = bench_common()
    if not common.isa_flags().get("avx2"):
        pytest.skip("no AVX2 on this machine")
    env = common.avx2_target_environment()
    assert not [f for f in env["NUMBA_CPU_FEATURES"].split(",") if f.startswith("+avx512")]
    assert "+avx2" in env["NUMBA_CPU_FEATURES"].split(",")
    probe = ("import numba, numpy as np\n"
             "@numba.njit\n"
             "def scale(x, out):\n"
             "    for i in range(x.size):\n"
             "        out[i] = 2.0 * x[i] + 1.0\n"
             "x = np.ones(1000, np.float32)\n"
             "scale(x, x.copy())\n"
             "print(scale.inspect_asm(scale.signatures[0]))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False,
                            env={**os.environ, **env, "NUMBA_CACHE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "ymm" in result.stdout and "zmm" not in result.stdout


def test_avx2_target_on_a_cpu_without_avx2_says_so(monkeypatch):
    pytest.importorskip("numba")  # with its llvmlite
    monkeypatch.setattr("llvmlite.binding.get_host_cpu_features", lambda: {"sse2": True, "avx": True})
    with pytest.raises(SystemExit, match="--isa avx2 needs a CPU with AVX2"):
        bench_common().avx2_target_environment()

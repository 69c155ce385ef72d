"""Shared benchmark helpers: timing, copy bandwidth, the machine description, atomic JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"

if str(REPO_ROOT) not in sys.path:  # run as `python bench/x.py` from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from minisnn.backends.base import aligned_host_array  # noqa: E402 - after the path set-up above


def time_call(fn: Callable[[], Any], min_time: float = 0.3, min_repeats: int = 5, max_repeats: int = 200,
              warmup: int = 2) -> dict[str, float]:
    """Median and min wall time of fn() in seconds, after `warmup` untimed calls.

    Repeats until both min_repeats calls and min_time seconds are done (at most max_repeats).
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < max_repeats and (len(times) < min_repeats or time.perf_counter() - started < min_time):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": len(times)}


def copy_bandwidth(n_elements: int, dtype: str = "float32", **timing) -> dict[str, float]:
    """np.copyto bandwidth in GB/s (bytes read + bytes written), on arrays of n_elements."""
    src = aligned_host_array((n_elements,), dtype)  # (n,), on a cache line like the backends' arrays
    src[...] = np.random.default_rng(0).standard_normal(n_elements)
    dst = aligned_host_array((n_elements,), dtype)
    t = time_call(lambda: np.copyto(dst, src), **timing)
    moved = 2 * src.nbytes
    return {"gb_per_s": moved / t["min_s"] / 1e9, "median_gb_per_s": moved / t["median_s"] / 1e9,
            "n_elements": n_elements, **t}


def in_place_bandwidth(n_elements: int, dtype: str = "float32", **timing) -> dict[str, float]:
    """Bandwidth of np.multiply(x, 1, out=x) in GB/s (read + write of one array): the in-place baseline."""
    x = aligned_host_array((n_elements,), dtype)  # (n,)
    x[...] = np.random.default_rng(0).standard_normal(n_elements)
    t = time_call(lambda: np.multiply(x, 1, out=x), **timing)
    moved = 2 * x.nbytes
    return {"gb_per_s": moved / t["min_s"] / 1e9, "median_gb_per_s": moved / t["median_s"] / 1e9,
            "n_elements": n_elements, **t}


def environment() -> dict[str, Any]:
    """The machine, library versions and thread settings a result was measured with."""
    from minisnn.commands.info import blas_info, numba_info

    env_vars = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_CORETYPE", "NUMBA_CPU_NAME",
                "NUMBA_CPU_FEATURES")
    return {
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "isa": isa_flags(),  # what the CPU has; NUMBA_CPU_NAME and _FEATURES (below) restrict the Numba kernels
        "numba_target": "avx2" if os.environ.get("NUMBA_CPU_NAME") == AVX2_CPU_NAME else "native",
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "numba": numba_info(),
        "blas": blas_info(),
        "environment": {name: os.environ[name] for name in env_vars if name in os.environ},
        "load_average": os.getloadavg(),
    }


ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl")
ISA_TARGETS = ("native", "avx2")
AVX2_CPU_NAME = "znver3"  # AMD EPYC family 25 (Zen 3): AVX2 and FMA, no AVX-512


def avx2_target_environment() -> dict[str, str]:
    """Environment variables under which Numba compiles for AVX2 only, on any x86 machine with AVX2:
    NUMBA_CPU_NAME picks the compiled module's CPU model (whose features it then uses) and the JIT's
    tuning; NUMBA_CPU_FEATURES gives the JIT this machine's features without the AVX-512 family (the
    JIT otherwise keeps the host's features whatever the CPU name, so jitted variants would still
    use AVX-512 instructions)."""
    import llvmlite.binding as llvm

    def dropped(name: str) -> bool:
        return name.startswith(("avx512", "avx10", "amx")) or name == "evex512"

    features = llvm.get_host_cpu_features()
    if not features.get("avx2"):
        raise SystemExit("--isa avx2 needs a CPU with AVX2")
    flags = ",".join(("-" if dropped(name) or not on else "+") + name for name, on in sorted(features.items()))
    return {"NUMBA_CPU_NAME": AVX2_CPU_NAME, "NUMBA_CPU_FEATURES": flags}


def add_isa_argument(parser) -> None:
    """--isa native|avx2 on a benchmark's parser; the benchmark then calls run_for_isa."""
    parser.add_argument("--isa", choices=ISA_TARGETS, default="native",
                        help="avx2: compile the Numba kernels for AVX2 only (bench/common.py, avx2_target_environment)")


def run_for_isa(isa: str, script: str, argv: list[str]) -> None:
    """For --isa avx2: run `script argv` again in a fresh interpreter with avx2_target_environment()
    (Numba reads those variables when it starts); returns at once for "native" or inside that run."""
    if isa == "native":
        return
    target = avx2_target_environment()
    if all(os.environ.get(name) == value for name, value in target.items()):
        return
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, script, *argv], {**os.environ, **target})


def isa_flags() -> dict[str, bool]:
    """The vector instruction sets the CPU reports (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return {flag: flag in flags for flag in ISA_FLAGS}
    except OSError:
        pass
    return {}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write payload as JSON atomically (temp file in the same folder, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, default=_jsonable)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def default_json_path(name: str) -> Path:
    return RESULTS_DIR / f"{name}.json"

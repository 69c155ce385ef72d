"""The GPU tests, run on the CPU: every CUDA kernel and variant against minisnn.reference without a GPU.

A child pytest runs the gpu-marked tests of tests/test_cupy_backend.py, plus the emulator's own
checks (tests/cuda_emulator/emulator_checks.py), with tests/cuda_emulator first on PYTHONPATH, so
that `import cupy` loads the CPU emulator even where the real CuPy is installed (this process never
imports the emulator as cupy). The kernel files are compiled first, in parallel, into the
emulator's build cache. Needs Linux and g++; skipped without them. See tests/cuda_emulator/__init__.py
for what the emulator does and does not check.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import cuda_emulator
import pytest
from cuda_emulator import build

from minisnn import kernel_sources

ROOT = Path(__file__).resolve().parents[1]
# test_cupy_backend.py has 246 gpu tests and emulator_checks.py 7; a run with far fewer lost some.
MIN_TESTS_RUN = 240

pytestmark = [
    pytest.mark.skipif(shutil.which(build.COMPILER) is None, reason="the CUDA emulator needs g++"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the CUDA emulator needs Linux (ucontext)"),
]


def _summary_counts(output: str) -> dict[str, int]:
    """{"passed": 186, "deselected": 4, ...} from pytest's last line ("186 passed, 4 deselected in 9.1s")."""
    last_line = output.strip().splitlines()[-1] if output.strip() else ""
    return {outcome: int(count) for count, outcome in re.findall(r"(\d+) (\w+)", last_line)}


def test_gpu_tests_pass_on_the_cuda_emulator():
    build.build_all(
        [(kernel_sources.load_source(stem), kernel_sources.name_expressions(stem)) for stem in kernel_sources.KERNELS]
    )
    # --capture=sys leaves file descriptor 2 alone, so the emulator's report of a kernel's memory
    # fault (written from C just before the child dies) reaches the output shown on failure.
    command = [
        sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "--capture=sys",
        "tests/test_cupy_backend.py", "tests/cuda_emulator/emulator_checks.py",
    ]
    result = subprocess.run(
        command, cwd=ROOT, env=cuda_emulator.environment(), capture_output=True, text=True, timeout=600, check=False
    )
    output_tail = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, output_tail
    counts = _summary_counts(result.stdout)
    assert counts.get("passed", 0) >= MIN_TESTS_RUN, output_tail
    assert not {"failed", "skipped", "error", "errors", "xfailed"} & counts.keys(), output_tail


def test_this_process_never_imports_the_emulator_as_cupy():
    # Only the child runs with the emulator on its path; here `cupy` is the real one or absent.
    cupy = sys.modules.get("cupy")
    assert cupy is None or not getattr(cupy, "IS_CPU_EMULATOR", False), cupy.__file__
    assert str(cuda_emulator.EMULATOR_DIR) not in sys.path

"""The GPU tests, run on the CPU: every CUDA kernel and variant against minisnn.reference without a GPU.

One child pytest runs, in one process (one start-up, one kernel build), the gpu-marked tests of
tests/test_cupy_backend.py, the cupy cases of the backend harness tests/test_ops.py (on the smaller
shapes it picks under the emulator), and the emulator's own checks
(tests/cuda_emulator/emulator_checks.py), with tests/cuda_emulator first on PYTHONPATH, so that
`import cupy` loads the CPU emulator even where the real CuPy is installed (this process never
imports the emulator as cupy). The kernel files are compiled first, in parallel, into the
emulator's build cache. Needs Linux and g++; skipped without them. See tests/cuda_emulator/__init__.py
for what the emulator does and does not check.
"""

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import cuda_emulator
import pytest
from cuda_emulator import build

from minisnn import kernel_sources

ROOT = Path(__file__).resolve().parents[1]
# file -> the fewest tests that must pass there under the emulator. Today: 29 in test_cupy_backend.py,
# 695 cupy cases in test_ops.py (every op with a CUDA kernel x variant x dtype x shape, out= and
# aliasing, label errors, masks, batch norm's input errors), 7 emulator checks. A run with fewer
# lost some (a collection that silently found nothing, a backend that skipped).
MIN_TESTS_RUN = {
    "tests/test_cupy_backend.py": 25,
    "tests/test_ops.py": 650,
    "tests/cuda_emulator/emulator_checks.py": 7,
}

pytestmark = [
    pytest.mark.skipif(shutil.which(build.COMPILER) is None, reason="the CUDA emulator needs g++"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the CUDA emulator needs Linux (ucontext)"),
]


def _outcomes_by_file(junit_xml: Path) -> dict[str, Counter]:
    """{"tests/test_ops.py": Counter({"passed": 512}), ...} from the child's JUnit XML report."""
    by_file: dict[str, Counter] = {}
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")
        # classname is the module path, then the class for tests in a class: the longest prefix
        # that names one of our files.
        files = [f"{'/'.join(module[:n])}.py" for n in range(len(module), 0, -1)]
        name = next((f for f in files if f in MIN_TESTS_RUN), ".".join(module))
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        by_file.setdefault(name, Counter())[outcome] += 1
    return by_file


def test_gpu_tests_pass_on_the_cuda_emulator(tmp_path):
    build.build_all(
        [(kernel_sources.load_source(stem), kernel_sources.name_expressions(stem)) for stem in kernel_sources.KERNELS]
    )
    # --capture=sys leaves file descriptor 2 alone, so the emulator's report of a kernel's memory
    # fault (written from C just before the child dies) reaches the output shown on failure.
    report = tmp_path / "junit.xml"
    command = [
        sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "--capture=sys",
        f"--junitxml={report}", *MIN_TESTS_RUN,
    ]
    result = subprocess.run(
        command, cwd=ROOT, env=cuda_emulator.environment(), capture_output=True, text=True, timeout=600, check=False
    )
    output_tail = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, output_tail
    by_file = _outcomes_by_file(report)
    assert set(by_file) == set(MIN_TESTS_RUN), (by_file, output_tail)
    for name, floor in MIN_TESTS_RUN.items():
        assert set(by_file[name]) == {"passed"}, (name, by_file[name], output_tail)
        assert by_file[name]["passed"] >= floor, (name, by_file[name], output_tail)


def test_this_process_never_imports_the_emulator_as_cupy():
    # Only the child runs with the emulator on its path; here `cupy` is the real one or absent.
    cupy = sys.modules.get("cupy")
    assert cupy is None or not getattr(cupy, "IS_CPU_EMULATOR", False), cupy.__file__
    assert str(cuda_emulator.EMULATOR_DIR) not in sys.path

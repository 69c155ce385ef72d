"""Every kernels/*.cu compiles with NVRTC for compute capabilities 8.0 and 9.0, without a GPU.

cupy-cuda12x[ctk] ships NVRTC as a library, so this runs in CI on a machine with no GPU and no
driver: a kernel that does not compile, or compiles with a warning, cannot land. Each file is
compiled to a cubin (full ptxas pass) with every template instantiation the backend asks for.
"""

import re

import pytest

pytest.importorskip("cupy")
nvrtc = pytest.importorskip("cupy_backends.cuda.libs.nvrtc")

from minisnn import kernel_sources
from minisnn.backends.cupy_backend import COMPILE_OPTIONS

ARCHS = ("sm_80", "sm_90")


def compile_kernels(stem: str, arch: str) -> tuple[str, dict[str, str]]:
    """(compiler log, name expression -> lowered name) of kernels/<stem>.cu for `arch`."""
    program = nvrtc.createProgram(kernel_sources.load_source(stem), f"{stem}.cu", [], [])
    try:
        expressions = kernel_sources.name_expressions(stem)
        for expression in expressions:
            nvrtc.addNameExpression(program, expression)
        try:
            nvrtc.compileProgram(program, [f"--gpu-architecture={arch}", *COMPILE_OPTIONS])
        except nvrtc.NVRTCError as exc:
            raise AssertionError(f"{stem}.cu does not compile for {arch}:\n{nvrtc.getProgramLog(program)}") from exc
        log = nvrtc.getProgramLog(program).strip("\x00").strip()
        lowered = {e: nvrtc.getLoweredName(program, e) for e in expressions}
        assert nvrtc.getCUBIN(program), f"{stem}.cu produced no cubin for {arch}"
        return log, lowered
    finally:
        nvrtc.destroyProgram(program)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("stem", sorted(kernel_sources.KERNELS))
def test_kernel_file_compiles_without_warnings(stem, arch):
    log, lowered = compile_kernels(stem, arch)
    assert log == "", f"{stem}.cu compiled for {arch} with diagnostics:\n{log}"
    assert all(lowered.values()), lowered


def test_every_cu_file_and_kernel_is_listed():
    # A kernel file or __global__ function missing from kernel_sources.KERNELS would escape this test.
    files = {path.stem for path in kernel_sources.kernel_dir().glob("*.cu")}
    assert files == set(kernel_sources.KERNELS)
    for stem, kernels in kernel_sources.KERNELS.items():
        source = (kernel_sources.kernel_dir() / f"{stem}.cu").read_text()
        defined = re.findall(r"__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(", source)
        assert sorted(defined) == sorted(kernels), stem


def test_a_broken_kernel_fails_the_check():
    # The harness itself must reject bad code (guards against a check that cannot fail).
    program = nvrtc.createProgram("__global__ void broken() { undefined_name; }", "broken.cu", [], [])
    try:
        with pytest.raises(nvrtc.NVRTCError):
            nvrtc.compileProgram(program, ["--gpu-architecture=sm_80", *COMPILE_OPTIONS])
    finally:
        nvrtc.destroyProgram(program)

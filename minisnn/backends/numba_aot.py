"""The Numba kernels compiled ahead of time: built once per machine, then loaded without Numba.

A process that jits its kernels carries Numba and LLVM with it: about 120 MiB of resident memory
and a few hundred milliseconds of imports before the first op, even with Numba's disk cache.
Here every kernel of numba_kernels.KERNELS, in float32 and float64, is compiled once into a
CPython extension module with numba.pycc, for this machine's CPU; later processes import that
module and never import Numba. The build runs in a child process (so its memory is not this
process's) and the module is moved into place atomically. Its file name carries a key over the
kernels' source (and the hash constants of minisnn.rng), the versions of Python, NumPy, Numba and
llvmlite, and the CPU (and $NUMBA_CPU_NAME, the target), so any change builds a new one. Where the build fails (no C compiler, a Numba without pycc), the reason is
written next to where the module would be, and the backend jits its kernels instead.

    python -m minisnn.backends.numba_aot          # build (or find) the module; print its path
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.metadata
import importlib.util
import inspect
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np

CACHE_ENV = "MINISNN_KERNEL_CACHE"
BUILD_TIMEOUT_S = 1800
FLOAT_CODES = {np.dtype(np.float32): "f4", np.dtype(np.float64): "f8"}
DTYPES_BY_CODE = {code: dtype for dtype, code in FLOAT_CODES.items()}


def cache_dir() -> Path:
    """$MINISNN_KERNEL_CACHE, else $XDG_CACHE_HOME/minisnn/kernels, else ~/.cache/minisnn/kernels."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minisnn" / "kernels"


def _cpu_identity() -> str:
    """The CPU model and feature flags (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
        return " ".join(fields.get(k, "").strip() for k in ("model name", "flags"))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


def _target_cpu() -> str:
    """The CPU the kernels are compiled for: $NUMBA_CPU_NAME as Numba's JIT reads it (e.g.
    "haswell" builds the AVX2 kernels on an AVX-512 machine, to measure them), else this machine's."""
    return os.environ.get("NUMBA_CPU_NAME", "").strip() or "host"


def module_name() -> str:
    """The extension module's name: a key over everything the compiled code depends on."""
    here = Path(__file__).parent
    key = hashlib.sha256()
    for source in (here / "numba_kernels.py", here / "numba_aot.py", here.parent / "rng.py"):  # code and constants
        key.update(source.read_bytes())
    versions = [sys.version, sys.platform, np.__version__]
    versions += [importlib.metadata.version(package) for package in ("numba", "llvmlite")]
    key.update(repr((versions, _cpu_identity(), _target_cpu())).encode())
    return f"minisnn_numba_kernels_{key.hexdigest()[:16]}"


def module_path(name: str) -> Path:
    return cache_dir() / (name + importlib.machinery.EXTENSION_SUFFIXES[0])


def _import_from(path: Path, name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def load(build: bool = True) -> tuple[ModuleType | None, str]:
    """(module, where it came from), or (None, why not); builds it first if needed and `build`."""
    name = module_name()
    path = module_path(name)
    failure = path.with_suffix(".failed")
    if not path.exists():
        if failure.exists():
            return None, f"the ahead-of-time build failed earlier ({failure}): {failure.read_text().strip()}"
        if not build:
            return None, f"not built yet ({path})"
        reason = _build_in_child(path.parent, name)
        if reason:
            print(f"minisnn: the build failed ({reason}); the kernels will be jitted instead", file=sys.stderr)
            try:
                failure.write_text(reason + "\n")
            except OSError:
                pass
            return None, f"the ahead-of-time build failed: {reason}"
    try:
        return _import_from(path, name), str(path)
    except ImportError as exc:
        return None, f"cannot import {path}: {exc}"


def _build_in_child(directory: Path, name: str) -> str:
    """Build the module in a child process; '' on success, else the reason."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the cache directory {directory}: {exc}"
    print(f"minisnn: compiling the Numba kernels for this machine, once (under a minute), into {directory}",
          file=sys.stderr)
    command = [sys.executable, "-m", "minisnn.backends.numba_aot", "--build", str(directory), name]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return f"the build took longer than {BUILD_TIMEOUT_S} s"
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        errors = [line for line in lines if re.match(r"[\w.]*(Error|Exception): ", line)]  # the exception, not hints
        return (errors or lines or [f"the build exited with status {result.returncode}"])[-1]
    return ""


def _trampoline(kernel, arity: int):
    """A plain function calling `kernel`: pycc compiles it with default flags, while `kernel`
    keeps its own (fastmath "contract"), so compiled results equal the jitted ones bit for bit."""
    names = ", ".join(f"a{i}" for i in range(arity))
    namespace = {"kernel": kernel}
    exec(f"def call({names}):\n    return kernel({names})\n", namespace)  # noqa: S102 - fixed template
    return namespace["call"]


def exported_name(kernel: str, dtype: np.dtype) -> str:
    return f"{kernel}_{FLOAT_CODES[np.dtype(dtype)]}"


def build(directory: Path, name: str) -> Path:
    """Compile every kernel in both dtypes into `directory`/`name`<suffix>, atomically."""
    import warnings

    from numba.core.errors import NumbaPendingDeprecationWarning

    from .numba_kernels import KERNELS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaPendingDeprecationWarning)  # pycc is deprecated, not gone
        from numba.pycc import CC

        with tempfile.TemporaryDirectory(dir=directory, prefix=".build-") as scratch:
            cc = CC(name)
            cc.output_dir = scratch
            cc.target_cpu = _target_cpu()  # "host": this machine's vector width, as the JIT has
            cc.verbose = False
            for kernel_name, (kernel, signature) in KERNELS.items():
                arity = len(inspect.signature(kernel.py_func).parameters)
                for dtype, code in FLOAT_CODES.items():
                    cc.export(exported_name(kernel_name, dtype), signature.replace("F", code))(
                        _trampoline(kernel, arity))
            cc.compile()
            built = Path(scratch) / (name + importlib.machinery.EXTENSION_SUFFIXES[0])
            target = directory / built.name
            os.replace(built, target)
    return target


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--build"]:
        build(Path(argv[1]), argv[2])
        return 0
    module, where = load()
    print(where)
    return 0 if module is not None else 1


if __name__ == "__main__":
    sys.exit(main())

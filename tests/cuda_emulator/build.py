"""Compile CUDA C kernel files with g++ into shared libraries the emulator can launch.

build_library(code, name_expressions) returns the path of a .so built from `code` (the text CuPy's
RawModule would hand to NVRTC) plus cuda_emulator.h and one C entry point per name expression:

    int emulator_launch_<i>(gx, gy, gz, bx, by, bz, void** arguments, const char* signature)
    const char* emulator_signature_<i>()   // the kernel's parameter types, "float*,float*,long long"

Libraries are cached in cache_dir(), named by a hash of everything that goes into them (source,
header, compiler flags and version), so an edited kernel is rebuilt and an unchanged one is not.
Each build happens in a private temporary folder and is moved into place with os.replace, so
processes building the same library at once cannot see a half-written file. This module does not
import CuPy (or the emulated one), so a test can prebuild libraries in parallel before a run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

COMPILER = "g++"
COMPILER_FLAGS = ("-std=c++17", "-O2", "-shared", "-fPIC", "-Wall", "-Wno-unknown-pragmas")
HEADER = Path(__file__).resolve().parent / "cuda_emulator.h"
CACHE_ENV_VAR = "MINISNN_CUDA_EMULATOR_CACHE"


class CompileError(RuntimeError):
    """g++ rejected a kernel file; the message holds its diagnostics and the generated source."""


def cache_dir() -> Path:
    """$MINISNN_CUDA_EMULATOR_CACHE, or minisnn-cuda-emulator-<uid> in the system temporary folder."""
    configured = os.environ.get(CACHE_ENV_VAR)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"minisnn-cuda-emulator-{os.getuid()}"


def _private_cache_dir() -> Path:
    """cache_dir(), created readable by this user only; refused if someone else owns it.

    The libraries in it are loaded into the test process, so a folder in a shared temporary
    directory that another user created (and could fill) must not be trusted.
    """
    folder = cache_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_uid != os.getuid():
        raise PermissionError(f"{folder} belongs to another user; set {CACHE_ENV_VAR} to a folder of yours")
    return folder


@cache
def compiler_version() -> str:
    """The first line of `g++ --version` (part of the cache key); FileNotFoundError without g++."""
    result = subprocess.run([COMPILER, "--version"], capture_output=True, text=True, check=True)
    return result.stdout.splitlines()[0]


def generated_source(code: str, name_expressions: list[str]) -> str:
    """`code` after the emulator header, followed by the C entry points of each kernel."""
    entry_points = []
    for index, expression in enumerate(name_expressions):
        entry_points.append(
            f'extern "C" int emulator_launch_{index}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,'
            f" unsigned bz, void** arguments, const char* signature)\n"
            f"{{\n    return cuda_emulator::launch(&{expression}, \"{expression}\", dim3{{gx, gy, gz}},"
            f" dim3{{bx, by, bz}}, arguments, signature);\n}}\n"
            f'extern "C" const char* emulator_signature_{index}() '
            f"{{ return cuda_emulator::signature_of(&{expression}); }}\n"
        )
    return f'#include "{HEADER}"\n{code}\n' + "\n".join(entry_points)


def _cache_key(source: str) -> str:
    parts = (source, HEADER.read_text(encoding="utf-8"), " ".join(COMPILER_FLAGS), compiler_version())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def _write_atomically(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


def build_library(code: str, name_expressions: list[str]) -> Path:
    """The cached shared library of `code` with launchers for `name_expressions` (built if missing)."""
    source = generated_source(code, name_expressions)
    folder = _private_cache_dir()
    key = _cache_key(source)
    library = folder / f"{key}.so"
    if library.is_file():
        return library
    source_path = folder / f"{key}.cpp"  # kept beside the library: compiler messages point into it
    _write_atomically(source_path, source)
    with tempfile.TemporaryDirectory(dir=folder, prefix=f"{key}.build-") as work:
        built = Path(work) / "kernels.so"
        result = subprocess.run(
            [COMPILER, *COMPILER_FLAGS, str(source_path), "-o", str(built)],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise CompileError(f"g++ could not compile {source_path}:\n{result.stderr}")
        os.replace(built, library)
    return library


def build_all(modules: list[tuple[str, list[str]]], workers: int | None = None) -> list[Path]:
    """build_library for each (code, name_expressions), several g++ processes at a time."""
    workers = workers or max(1, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda module: build_library(*module), modules))

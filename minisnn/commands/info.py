"""`minisnn info`: which backends run here, library versions, threads, the BLAS in use, the GPU."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
from typing import Any

import numpy as np

from .. import __version__
from ..backends import available_backends
from ..threads import blas_info, thread_settings  # noqa: F401 - blas_info is also read from here (bench)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "info",
        help="show backends, library versions, threads, BLAS and GPU",
        description="Report what minisnn can use on this machine: the available backends, library "
        "versions, thread counts, the BLAS library and kernel architecture NumPy calls, and the GPU.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def _installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, without importing it (torch takes seconds to import)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def numba_info() -> dict[str, Any] | None:
    try:
        import numba
    except ImportError:
        return None
    from ..backends.numba_backend import NumbaBackend

    return {"version": numba.__version__, "threads": numba.config.NUMBA_NUM_THREADS,
            "threading_layer": numba.config.THREADING_LAYER, "kernels": NumbaBackend().kernel_source}


def gpu_info() -> dict[str, Any]:
    """Whether CuPy is importable and can run a kernel on a GPU, and which one."""
    try:
        import cupy
    except Exception as exc:  # noqa: BLE001 - ImportError, or a CUDA library that fails to load
        return {"usable": False, "reason": f"cupy not importable ({type(exc).__name__})"}
    try:
        device = cupy.cuda.Device()
        properties = cupy.cuda.runtime.getDeviceProperties(device.id)
        int((cupy.arange(4) * 2).sum())  # compiles and runs a kernel
        name = properties["name"]
        return {"usable": True, "cupy": cupy.__version__, "device": name.decode() if isinstance(name, bytes) else name,
                "memory_gib": round(properties["totalGlobalMem"] / 2**30, 1)}
    except Exception as exc:  # noqa: BLE001 - no driver, no device, or a broken toolkit
        return {"usable": False, "cupy": cupy.__version__, "reason": f"{type(exc).__name__}: {exc}"}


def collect() -> dict[str, Any]:
    """Everything `minisnn info` reports, as a JSON-ready dict."""
    return {
        "minisnn": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "backends": available_backends(),
        "numba": numba_info(),
        "torch": _installed_version("torch"),
        "threads": thread_settings(),  # after numba_info: Numba, once imported, reports its threads in force
        "gpu": gpu_info(),
    }


def _print_report(report: dict[str, Any]) -> None:
    print(f"minisnn {report['minisnn']}  python {report['python']}  numpy {report['numpy']}  "
          f"torch {report['torch'] or 'not installed'}")
    print(f"platform: {report['platform']}, {report['cpu_count']} CPUs")
    print("backends:")
    for name, status in report["backends"].items():
        print(f"  {name:6s} {status}")
    numba = report["numba"]
    print(f"numba: {numba['version']}, {numba['threads']} threads, layer {numba['threading_layer']}; "
          f"kernels {numba['kernels']}" if numba else "numba: not installed (pip install 'minisnn[numba]')")
    threads = report["threads"]
    print("thread pools (BLAS / OpenMP):")
    for pool in threads["pools"]:
        print("  " + ", ".join(f"{key}={value}" for key, value in pool.items() if value is not None))
    if threads["numba"]:
        print(f"numba threads in force: {threads['numba']['threads']} of {threads['numba']['max_threads']}, "
              f"layer {threads['numba']['threading_layer']}")
    variables = ", ".join(f"{k}={v}" for k, v in threads["environment"].items())
    print(f"environment: {variables or 'no thread variables set'}")
    gpu = report["gpu"]
    print(f"gpu: {gpu['device']} ({gpu['memory_gib']} GiB), cupy {gpu['cupy']}" if gpu["usable"]
          else f"gpu: not usable: {gpu['reason']}")


def run(args: argparse.Namespace) -> int:
    report = collect()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return 0

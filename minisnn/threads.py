"""Thread counts of NumPy's BLAS, OpenMP pools and Numba, read and set at run time.

Environment variables such as OMP_NUM_THREADS act only if set before the libraries load;
set_threads changes the pools of a running process (through threadpoolctl). On a small or loaded
machine one thread can make a small training step many times faster than the default.
"""

from __future__ import annotations

import numbers
import os
import sys
from typing import Any

# Read by the libraries at load time; OPENBLAS_CORETYPE picks OpenBLAS's kernels, so it is shown too.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                    "NUMBA_THREADING_LAYER", "OPENBLAS_CORETYPE")
POOL_KEYS = ("user_api", "internal_api", "prefix", "version", "architecture", "threading_layer", "num_threads")
INSTALL_HINT = "pip install threadpoolctl (or pip install 'minisnn[threads]')"


def blas_info() -> list[dict[str, Any]]:
    """The thread pools loaded in this process (BLAS, OpenMP), via threadpoolctl when installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": f"install threadpoolctl to see the BLAS library and its kernel architecture: {INSTALL_HINT}"}]
    return [{key: pool.get(key) for key in POOL_KEYS} for pool in threadpool_info()]


def _numba_threads() -> dict[str, Any] | None:
    """Numba's thread count in force, if this process has imported Numba (starts its pool if needed)."""
    numba = sys.modules.get("numba")
    if numba is None:
        return None
    return {"threads": numba.get_num_threads(), "max_threads": numba.config.NUMBA_NUM_THREADS,
            "threading_layer": numba.threading_layer()}


def thread_settings() -> dict[str, Any]:
    """What is in force now: the loaded pools, Numba's threads (None if not imported), the environment."""
    numba = _numba_threads()  # first: starting Numba's pool may load an OpenMP library
    return {
        "pools": blas_info(),
        "numba": numba,
        "environment": {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
    }


def set_threads(n: int | None) -> dict[str, Any] | None:
    """Limit the BLAS and OpenMP pools loaded so far, and Numba if imported, to `n` threads.

    None changes nothing and returns None; otherwise returns what was applied: the pools and
    Numba's thread count (min(n, NUMBA_NUM_THREADS)). The limit holds for the rest of the process
    (OpenMP's and Numba's for the calling thread). Numba is never imported here: the compiled
    kernels run without it. Needs threadpoolctl.
    """
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"the number of threads must be an integer >= 1 (or None), got {n!r}")
    n = int(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ImportError(f"setting the number of threads at run time needs threadpoolctl: {INSTALL_HINT}") from None
    numba = sys.modules.get("numba")
    if numba is not None:  # first: starting Numba's pool may load an OpenMP library, limited below
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(limits=n)  # called without `with`, the limits stay in force
    return {"threads": n, "pools": blas_info(), "numba": _numba_threads()}

"""A CPU emulator of CUDA for minisnn's kernels: run the GPU tests on a machine without a GPU.

What it is
    tests/cuda_emulator/cupy and tests/cuda_emulator/cupyx are small stand-ins for the CuPy
    packages. Put this folder first on the Python path and `import cupy` finds them instead of the
    real CuPy, so minisnn/backends/cupy_backend.py runs unchanged: its RawModule compiles the same
    kernels/*.cu text with g++ (build.py) after cuda_emulator.h, which supplies the CUDA vocabulary
    (threadIdx, blockIdx, blockDim, gridDim, __shared__, __syncthreads, ...), and its launches
    run every CUDA thread of a block as a fiber on the CPU. tests/test_cuda_emulated.py runs the
    GPU tests of tests/test_cupy_backend.py and tests/test_ops.py this way, so CI checks every
    kernel and every variant against minisnn.reference without a GPU. By hand, from the
    repository root:

        PYTHONPATH=tests/cuda_emulator:tests:. python -m pytest -m gpu -q --capture=sys \\
            tests/test_cupy_backend.py tests/test_ops.py tests/cuda_emulator/emulator_checks.py

    (--capture=sys, so that the report of a kernel's memory fault, written from C just before the
    process dies, is not swallowed by pytest's output capture.) The GPU benchmark scripts run
    under it too, e.g. `cd bench && PYTHONPATH=../tests/cuda_emulator:../tests:.. python
    gpu_kernels.py --quick`: that checks their plumbing and results; their times mean nothing.

What it emulates faithfully
    - The kernels' index arithmetic, grid-stride loops, tails and bounds checks: the pretend GPU
      is small (2 multiprocessors x 512 threads, cupy/cuda/runtime.py), so the backend launches
      few blocks and every grid-stride loop really strides.
    - Shared memory and __syncthreads(): the threads of a block run one at a time in thread-index
      order, each until it reaches a barrier or returns; the barrier opens when every thread has
      arrived. A thread that reads shared memory before the barrier that publishes it therefore
      misses, deterministically, every value written by a thread of higher index (its test fails;
      emulator_checks.py shows one).
    - Launch checks a GPU makes (at most 1024 threads per block, grid.y and grid.z <= 65535), and
      stricter ones: argument types must equal the kernel's parameter types exactly, arrays must
      be device arrays and C-contiguous, and a barrier that only some threads of a block reach
      (undefined behaviour on a GPU) raises cupy.LaunchError.
    - Out-of-bounds accesses past the end of an array made by the emulated cupy: each ends at an
      inaccessible page, so the kernel faults at the first such access and the emulator prints
      the kernel, block and thread before the process dies. Float arrays from cupy.empty start
      as NaN, so an output element a kernel never writes shows up in the comparison.
    - Host/device mix-ups: emulated arrays are a type of their own; a ufunc mixing one with a
      NumPy array raises TypeError, as CuPy does.

What it cannot tell you
    - Timing and performance: nothing here says how fast a kernel is on a GPU, and
      cupyx.profiler.benchmark only reports the emulator's wall-clock times.
    - Warps: there is no lockstep execution, no warp shuffles or votes (the kernels use none),
      no coalescing, no bank conflicts, no occupancy or register limits, no __launch_bounds__
      check. Atomics (atomicMin) are plain read-modify-writes, correct because fibers never
      interleave between barriers; contention on them is never exercised. Threads waiting at different __syncthreads() calls count as one barrier. Races
      that happen to be harmless in thread-index order, and reads of shared memory before the
      first write in a block (the emulator's shared memory keeps the previous block's values
      where a GPU holds garbage), go unnoticed.
    - The real CuPy launch path: NVRTC compilation (tests/test_kernels_compile.py covers that
      where CuPy is installed), argument marshalling, streams (every launch is synchronous),
      dynamic shared memory, multiple devices.
    - cuBLAS: cupy.matmul is NumPy's matmul here, so the default "matmul" variant is checked only
      for its plumbing; the hand-written sgemm_* kernels are emulated in full.
    - GPU floating point: g++ does not fuse multiply-adds on baseline x86-64 and glibc's expf/expm1
      round differently from CUDA's, so results differ in the last bits (the tests' tolerances
      allow for that); float rounding behaviour specific to the GPU is not reproduced.
    - Out-of-bounds accesses before the start of an array, or past the end of an array made by
      a NumPy operation (ufunc results, .copy(), .astype()), which has no guard page.

Build cache
    Compiled kernel libraries go to build.cache_dir() ($MINISNN_CUDA_EMULATOR_CACHE, or
    minisnn-cuda-emulator-<uid> in the system temporary folder), keyed by a hash of the source,
    the header, the flags and the g++ version, and are moved into place atomically, so concurrent
    runs are safe. Deleting the folder is always safe. The emulator needs Linux (ucontext) and g++
    with C++17.
"""

from __future__ import annotations

import os
from pathlib import Path

EMULATOR_DIR = Path(__file__).resolve().parent


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of `base` (default os.environ) whose PYTHONPATH makes `import cupy` load the emulator.

    The emulator folder comes first, so it wins over a real CuPy in site-packages; its parent
    (tests/) follows for `cuda_emulator.build`, then the repository root for minisnn.
    """
    env = dict(os.environ if base is None else base)
    paths = [str(EMULATOR_DIR), str(EMULATOR_DIR.parent), str(EMULATOR_DIR.parents[1])]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env

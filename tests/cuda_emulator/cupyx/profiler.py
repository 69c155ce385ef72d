"""cupyx.profiler.benchmark for the CPU emulator: wall-clock times of the emulated run.

The times say how fast the emulator is, nothing about a GPU; this exists so that benchmark scripts
can be smoke-tested (do they run, are their results right) on a machine without a GPU.
"""

import time
from types import SimpleNamespace

import numpy as np


def benchmark(func, args=(), kwargs=None, n_repeat=10000, *, name=None, n_warmup=10, max_duration=float("inf"),
              devices=None):
    """Run func(*args, **kwargs) n_warmup times, then up to n_repeat timed times (stops after max_duration s).

    Returns an object with cpu_times (n,) and gpu_times (1, n) in seconds, as cupyx's result has;
    both hold the same wall-clock times here.
    """
    kwargs = kwargs or {}
    for _ in range(n_warmup):
        func(*args, **kwargs)
    times = []
    started = time.perf_counter()
    while len(times) < n_repeat and time.perf_counter() - started < max_duration:
        begin = time.perf_counter()
        func(*args, **kwargs)
        times.append(time.perf_counter() - begin)
    cpu_times = np.array(times)
    return SimpleNamespace(name=name or getattr(func, "__name__", "benchmark"), cpu_times=cpu_times,
                           gpu_times=cpu_times[np.newaxis, :])

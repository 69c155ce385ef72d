"""cupyx of the CPU emulator: only cupyx.profiler.benchmark (see tests/cuda_emulator/__init__.py)."""

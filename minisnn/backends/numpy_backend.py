"""The NumPy backend: every op's default body (minisnn.backends.base, the reference) on NumPy.

It needs nothing but NumPy, so it is the backend of an inference-only install and the baseline
the faster backends are timed against. The default bodies are vectorized over whole arrays and
write into `out=` buffers; the update ops work in cache-sized slices.
"""

from __future__ import annotations

import numpy as np

from .base import Backend


class NumpyBackend(Backend):
    name = "numpy"
    xp = np

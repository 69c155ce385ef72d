"""The reference: every op's default body (minisnn.backends.base) as a plain function on NumPy.

This is the oracle every backend and kernel variant is tested against, and its backward ops are
themselves checked against finite differences. It computes in the dtype of its inputs (use
float64 for checks) and allocates its results freely. `reference.selu_forward(x, alpha, lam)`
is `Backend.selu_forward` on a NumPy reference backend; update ops work in place as ops do.
"""

from __future__ import annotations

from .backends.base import OPS, Backend

BACKEND = Backend("float64")

globals().update({op: getattr(BACKEND, op) for op in OPS})

__all__ = ["BACKEND", *OPS]

"""The CuPy backend: the SELU, ReLU, dropout, column-sum, batch and layer norm, softmax cross-entropy
and optimizer ops as CUDA C RawKernels from kernels/ (file kernels/<op family>.cu, kernels named
after the op), matmul through cuBLAS; every other op runs its default body
(minisnn.backends.base) on CuPy arrays.

Kernel files are compiled lazily with NVRTC the first time one of their kernels runs, once per
process and device (CuPy also caches the binaries on disk). Every kernel is a template on
T = float / double, so float32 and float64 both run; scalars are passed as explicit NumPy types
(np.float32/np.float64 matching the arrays, np.int64 counts, np.int32 widths, np.uint32 keys).
Inputs are made C-contiguous (a copy for views); `out=` buffers must already be contiguous.
The hand-written SGEMMs are matmul variants "sgemm_naive", "sgemm_tiled" and
"sgemm_register_blocked" (the kernel names); cuBLAS (cupy.matmul) stays the default.
"""

from __future__ import annotations

import math
from functools import lru_cache, partial
from typing import Any

import numpy as np

from .. import kernel_sources
from ..rng import MAX_ELEMENTS, DropoutMask
from .base import Backend, BackendUnavailable, missing_velocity

try:
    import cupy as cp
except ImportError as exc:
    raise BackendUnavailable(
        "the cupy backend needs CuPy: pip install 'minisnn[gpu]' (CuPy for CUDA 12; "
        "use cupy-cuda13x for a CUDA 13 driver)"
    ) from exc

SGEMM_VARIANTS = ("sgemm_naive", "sgemm_tiled", "sgemm_register_blocked")
COMPILE_OPTIONS = ("--std=c++17",)
MAX_GRID_Y = 65535
try:
    _SHAPES = kernel_sources.header_constants()  # launch shapes shared with kernels/common.cuh
except FileNotFoundError as exc:  # an installation without the kernel sources
    raise BackendUnavailable(str(exc)) from exc


@lru_cache(maxsize=1)
def _probe_gpu() -> None:
    """Raise BackendUnavailable unless CuPy can see a GPU and run a kernel on it (checked once)."""
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except cp.cuda.runtime.CUDARuntimeError as exc:
        raise BackendUnavailable(f"CuPy is installed but CUDA cannot start here: {exc}") from exc
    if count == 0:
        raise BackendUnavailable("CuPy is installed but no CUDA GPU is visible")
    try:
        ok = int(cp.arange(4, dtype=cp.int32).sum()) == 6
    except Exception as exc:  # driver/toolkit mismatches surface only when a kernel runs
        raise BackendUnavailable(f"CuPy sees a GPU but cannot run a kernel on it: {exc}") from exc
    if not ok:
        raise BackendUnavailable("CuPy sees a GPU but a test kernel returned a wrong result")


_MODULES: dict[tuple[str, int], Any] = {}  # (kernel file stem, device id) -> cupy.RawModule


def _module(stem: str):
    """The compiled RawModule of kernels/<stem>.cu on the current device (built on first use)."""
    key = (stem, cp.cuda.runtime.getDevice())
    if key not in _MODULES:
        _MODULES[key] = cp.RawModule(
            code=kernel_sources.load_source(stem),
            options=COMPILE_OPTIONS,
            name_expressions=kernel_sources.name_expressions(stem),
        )
    return _MODULES[key]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class CupyBackend(Backend):
    name = "cupy"
    xp = cp

    def __init__(self, dtype: str | np.dtype = "float32"):
        _probe_gpu()
        super().__init__(dtype=dtype)
        runtime = cp.cuda.runtime
        self.device_id = runtime.getDevice()
        sm_count = runtime.deviceGetAttribute(runtime.cudaDevAttrMultiProcessorCount, self.device_id)
        threads_per_sm = runtime.deviceGetAttribute(runtime.cudaDevAttrMaxThreadsPerMultiProcessor, self.device_id)
        self._resident_threads = sm_count * threads_per_sm  # grid-stride kernels launch about this many
        for variant in SGEMM_VARIANTS:
            self.register_variant("matmul", variant, partial(self._sgemm, variant))

    # ---- arrays ---------------------------------------------------------------------------
    def asarray(self, x: Any, dtype: Any = None) -> Any:
        if isinstance(x, cp.ndarray):
            if dtype is None:
                dtype = self.dtype if x.dtype.kind in "fc" else x.dtype
            return x.astype(dtype, copy=False)
        return super().asarray(x, dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return cp.asnumpy(x)

    def synchronize(self) -> None:
        cp.cuda.get_current_stream().synchronize()

    def info(self) -> dict[str, Any]:
        props = cp.cuda.runtime.getDeviceProperties(self.device_id)
        return {
            **super().info(),
            "cupy": cp.__version__,
            "device": props["name"].decode(),
            "compute_capability": f"{props['major']}.{props['minor']}",
            "cuda_runtime": cp.cuda.runtime.runtimeGetVersion(),
        }

    # ---- kernel plumbing ------------------------------------------------------------------
    def _kernel(self, stem: str, kernel: str, dtype: np.dtype):
        return _module(stem).get_function(kernel_sources.kernel_name(kernel, dtype.name))

    @staticmethod
    def _input(x, dtype: np.dtype | None = None, name: str = "input"):
        """x as a C-contiguous float array (of `dtype` when given); copies only views."""
        if not isinstance(x, cp.ndarray):
            raise TypeError(f"{name} must be a cupy.ndarray (use backend.asarray), got {type(x).__name__}")
        if x.dtype.name not in kernel_sources.CTYPES:
            raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
        if dtype is not None and x.dtype != dtype:
            raise TypeError(f"{name} has dtype {x.dtype}, expected {dtype} like the other operands")
        return cp.ascontiguousarray(x)

    @staticmethod
    def _output(out, shape: tuple[int, ...], dtype: np.dtype, name: str = "out"):
        """`out` checked to be a contiguous array of `shape` and `dtype`, or a new one."""
        if out is None:
            return cp.empty(shape, dtype=dtype)
        if not isinstance(out, cp.ndarray):
            raise TypeError(f"{name} must be a cupy.ndarray, got {type(out).__name__}")
        if out.shape != tuple(shape) or out.dtype != dtype:
            raise ValueError(f"{name} must have shape {tuple(shape)} and dtype {dtype}, got {out.shape} {out.dtype}")
        if not out.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous: kernels write it in place")
        return out

    @staticmethod
    def _matrix(x, name: str):
        if x.ndim != 2:
            raise ValueError(f"{name} must be 2-D (rows, columns), got shape {x.shape}")
        return x

    @staticmethod
    def _mask_args(mask: DropoutMask, n: int) -> tuple[np.uint32, np.uint32, np.uint32, np.int32]:
        """(k0, k1, threshold, per_feature) as the kernels take them."""
        if n > MAX_ELEMENTS:
            raise ValueError(f"dropout input has {n} elements; at most 2^32 - 1 are supported")
        return np.uint32(mask.k0), np.uint32(mask.k1), np.uint32(mask.threshold), np.int32(mask.per_feature)

    @staticmethod
    def _mask_width(x, mask: DropoutMask) -> np.int32:
        """d of an elementwise dropout kernel: the last axis for a per-feature mask, else 1."""
        return np.int32(x.shape[-1] if mask.per_feature and x.ndim else 1)

    @staticmethod
    def _selu_args(x, alpha: float, lam: float) -> tuple[Any, Any]:
        """(lam, lam*alpha) in the array's type; the product is rounded once, as NumPy does."""
        t = x.dtype.type
        return t(lam), t(float(lam) * float(alpha))

    def _grid(self, n: int, items_per_block: int, block: int) -> int:
        """Blocks of `block` threads for a grid-stride loop: enough to cover n items, at most one full GPU."""
        return max(1, min(_ceil_div(n, items_per_block), self._resident_threads // block))

    def _elementwise(self, stem: str, kernel: str, n: int, dtype: np.dtype, args: tuple) -> None:
        if n == 0:
            return
        block = _SHAPES["ELEMENTWISE_BLOCK"]
        grid = self._grid(n, block * _SHAPES["ELEMENTWISE_UNROLL"], block)
        self._kernel(stem, kernel, dtype)((grid,), (block,), args)

    def _column_reduce(self, stem: str, kernel: str, x, out, args_before: tuple, args_after: tuple) -> None:
        """Run a column-reduction kernel over (rows, d) `x`: sums go to `out` (d,) (two passes if needed).

        The kernel's arguments are args_before + (partial, rows, d, rows_per_chunk) + args_after.
        """
        rows, d = x.shape
        if d == 0:
            return
        if rows == 0:
            out.fill(0)
            return
        bx, by = _SHAPES["COLUMN_BLOCK_X"], _SHAPES["COLUMN_BLOCK_Y"]
        col_blocks = _ceil_div(d, bx)
        wanted = max(1, self._resident_threads // (bx * by) // col_blocks)
        chunks = min(wanted, _ceil_div(rows, by * _SHAPES["COLUMN_UNROLL"]), MAX_GRID_Y)
        rows_per_chunk = _ceil_div(rows, chunks)
        chunks = _ceil_div(rows, rows_per_chunk)
        partial_sums = out if chunks == 1 else cp.empty((chunks, d), dtype=x.dtype)  # (chunks, d)
        self._kernel(stem, kernel, x.dtype)(
            (col_blocks, chunks),
            (bx, by),
            args_before + (partial_sums, np.int64(rows), np.int32(d), np.int64(rows_per_chunk)) + args_after,
        )
        if chunks > 1:
            self._kernel("column_sum", "column_sum_partial", x.dtype)(
                (col_blocks, 1), (bx, by), (partial_sums, out, np.int64(chunks), np.int32(d), np.int64(chunks))
            )

    # ---- hot ops --------------------------------------------------------------------------
    def matmul(self, a, b, out=None):
        return cp.matmul(a, b, out=out)

    def _sgemm(self, variant: str, a, b, out=None):
        """(N, K) @ (K, M) with the hand-written kernel `variant` (transposed views are copied)."""
        a = self._matrix(self._input(a, name="a"), "a")  # (N, K)
        b = self._matrix(self._input(b, a.dtype, name="b"), "b")  # (K, M)
        (n, k), (k_b, m) = a.shape, b.shape
        if k != k_b:
            raise ValueError(f"matmul shapes {a.shape} and {b.shape} do not chain (inner sizes {k} != {k_b})")
        out = self._output(out, (n, m), a.dtype)  # (N, M)
        if n == 0 or m == 0:
            return out
        if variant == "sgemm_naive":
            block = (_SHAPES["GEMM_NAIVE_BLOCK_X"], _SHAPES["GEMM_NAIVE_BLOCK_Y"])
            tile = block
        elif variant == "sgemm_tiled":
            block = tile = (_SHAPES["GEMM_TILE"], _SHAPES["GEMM_TILE"])
        else:
            block = (_SHAPES["GEMM_RB_THREADS"],)
            tile = (_SHAPES["GEMM_RB_BN"], _SHAPES["GEMM_RB_BM"])
        grid = (_ceil_div(m, tile[0]), _ceil_div(n, tile[1]))
        if grid[1] > MAX_GRID_Y:
            raise ValueError(f"{variant} supports at most {MAX_GRID_Y * tile[1]} rows, got {n}")
        self._kernel("sgemm", variant, a.dtype)(grid, block, (a, b, out, np.int32(n), np.int32(k), np.int32(m)))
        return out

    def selu_forward(self, x, alpha, lam, out=None):
        x = self._input(x, name="x")
        out = self._output(out, x.shape, x.dtype)
        self._elementwise(
            "selu", "selu_forward", x.size, x.dtype, (x, out, np.int64(x.size)) + self._selu_args(x, alpha, lam)
        )
        return out

    def selu_backward(self, dy, y, alpha, lam, out=None):
        dy = self._input(dy, name="dy")
        y = self._input(y, dy.dtype, name="y")
        if y.shape != dy.shape:
            raise ValueError(f"dy {dy.shape} and y {y.shape} must have the same shape")
        out = self._output(out, dy.shape, dy.dtype)
        self._elementwise(
            "selu",
            "selu_backward",
            dy.size,
            dy.dtype,
            (dy, y, out, np.int64(dy.size)) + self._selu_args(dy, alpha, lam),
        )
        return out

    def _bias_operands(self, z, b):
        z = self._matrix(self._input(z, name="z"), "z")  # (N, D)
        b = self._input(b, z.dtype, name="b")  # (D,)
        if b.shape != (z.shape[1],):
            raise ValueError(f"bias of shape {b.shape} does not match z of shape {z.shape}: expected ({z.shape[1]},)")
        return z, b

    def bias_selu_forward(self, z, b, alpha, lam, out=None):
        z, b = self._bias_operands(z, b)
        out = self._output(out, z.shape, z.dtype)
        args = (z, b, out, np.int64(z.size), np.int32(z.shape[1])) + self._selu_args(z, alpha, lam)
        self._elementwise("bias_selu", "bias_selu_forward", z.size, z.dtype, args)
        return out

    def _backward_operands(self, dy, y, dz, db):
        dy = self._matrix(self._input(dy, name="dy"), "dy")  # (N, D)
        y = self._input(y, dy.dtype, name="y")  # (N, D)
        if y.shape != dy.shape:
            raise ValueError(f"dy {dy.shape} and y {y.shape} must have the same shape")
        dz = self._output(dz, dy.shape, dy.dtype, name="dz")  # (N, D)
        db = self._output(db, (dy.shape[1],), dy.dtype, name="db")  # (D,)
        return dy, y, dz, db

    def bias_selu_backward(self, dy, y, alpha, lam, dz=None, db=None):
        dy, y, dz, db = self._backward_operands(dy, y, dz, db)
        self._column_reduce(
            "bias_selu", "bias_selu_backward_partial", dy, db, (dy, y, dz), self._selu_args(dy, alpha, lam)
        )
        return dz, db

    def column_sum(self, x, out=None):
        x = self._matrix(self._input(x, name="x"), "x")  # (N, D)
        out = self._output(out, (x.shape[1],), x.dtype)  # (D,)
        self._column_reduce("column_sum", "column_sum_partial", x, out, (x,), ())
        return out

    def alpha_dropout_forward(self, x, mask: DropoutMask, out=None):
        x = self._input(x, name="x")
        out = self._output(out, x.shape, x.dtype)
        t = x.dtype.type
        affine = (t(mask.scale), t(mask.shift), t(mask.dropped))
        args = (x, out, np.int64(x.size), self._mask_width(x, mask)) + self._mask_args(mask, x.size) + affine
        self._elementwise("alpha_dropout", "alpha_dropout_forward", x.size, x.dtype, args)
        return out

    def alpha_dropout_backward(self, dy, mask: DropoutMask, out=None):
        dy = self._input(dy, name="dy")
        out = self._output(out, dy.shape, dy.dtype)
        args = ((dy, out, np.int64(dy.size), self._mask_width(dy, mask)) + self._mask_args(mask, dy.size)
                + (dy.dtype.type(mask.scale),))
        self._elementwise("alpha_dropout", "alpha_dropout_backward", dy.size, dy.dtype, args)
        return out

    def bias_selu_dropout_forward(self, z, b, mask: DropoutMask, alpha, lam, out=None):
        z, b = self._bias_operands(z, b)
        out = self._output(out, z.shape, z.dtype)
        t = z.dtype.type
        args = (
            (z, b, out, np.int64(z.size), np.int32(z.shape[1]))
            + self._selu_args(z, alpha, lam)
            + self._mask_args(mask, z.size)
            + (t(mask.scale), t(mask.shift), t(mask.dropped))
        )
        self._elementwise("bias_selu_dropout", "bias_selu_dropout_forward", z.size, z.dtype, args)
        return out

    def bias_selu_dropout_backward(self, dy, y, mask: DropoutMask, alpha, lam, dz=None, db=None):
        dy, y, dz, db = self._backward_operands(dy, y, dz, db)
        t = dy.dtype.type
        args_after = self._selu_args(dy, alpha, lam) + self._mask_args(mask, dy.size) + (t(mask.scale), t(mask.shift))
        self._column_reduce("bias_selu_dropout", "bias_selu_dropout_backward_partial", dy, db, (dy, y, dz), args_after)
        return dz, db

    # ---- ReLU -------------------------------------------------------------------------------
    def relu_forward(self, x, out=None):
        x = self._input(x, name="x")
        out = self._output(out, x.shape, x.dtype)
        self._elementwise("relu", "relu_forward", x.size, x.dtype, (x, out, np.int64(x.size)))
        return out

    def relu_backward(self, dy, y, out=None):
        dy = self._input(dy, name="dy")
        y = self._input(y, dy.dtype, name="y")
        if y.shape != dy.shape:
            raise ValueError(f"dy {dy.shape} and y {y.shape} must have the same shape")
        out = self._output(out, dy.shape, dy.dtype)
        self._elementwise("relu", "relu_backward", dy.size, dy.dtype, (dy, y, out, np.int64(dy.size)))
        return out

    # ---- normalization ------------------------------------------------------------------------
    def _feature_vectors(self, x, **vectors):
        """x as a contiguous (N, D) matrix and each named vector as a contiguous (D,) array of its dtype."""
        x = self._matrix(self._input(x, name="x"), "x")  # (N, D)
        checked = []
        for name, v in vectors.items():
            v = self._input(v, x.dtype, name=name)
            if v.shape != (x.shape[1],):
                raise ValueError(f"{name} must have shape ({x.shape[1]},) to match x {x.shape}, got {v.shape}")
            checked.append(v)
        return x, checked

    def _column_blocks(self, stem: str, kernel: str, dtype: np.dtype, d: int, args: tuple) -> None:
        """A kernel with one (COLUMN_BLOCK_X, COLUMN_BLOCK_Y) block per COLUMN_BLOCK_X columns."""
        bx, by = _SHAPES["COLUMN_BLOCK_X"], _SHAPES["COLUMN_BLOCK_Y"]
        self._kernel(stem, kernel, dtype)((_ceil_div(d, bx),), (bx, by), args)

    def batch_norm_forward(self, x, gamma, beta, eps, out=None, mean=None, rstd=None, running_mean=None,
                           running_var=None, momentum=0.1):
        x, (gamma, beta) = self._feature_vectors(x, gamma=gamma, beta=beta)
        n, d = x.shape
        if n < 2:
            raise ValueError(f"batch normalization needs at least 2 rows to estimate statistics, got {n}")
        if (running_mean is None) != (running_var is None):
            raise ValueError("running_mean and running_var are updated together: pass both or neither")
        out = self._output(out, x.shape, x.dtype)
        mean = self._output(mean, (d,), x.dtype, name="mean")
        rstd = self._output(rstd, (d,), x.dtype, name="rstd")
        update = running_mean is not None
        if update:
            running_mean = self._output(running_mean, (d,), x.dtype, name="running_mean")
            running_var = self._output(running_var, (d,), x.dtype, name="running_var")
        affine = cp.empty((2, d), dtype=x.dtype)  # (2, D): scale, shift
        if d == 0:
            return out, mean, rstd
        args = (x, gamma, beta, np.int64(n), np.int32(d), np.float64(eps), np.float64(momentum), np.int32(update),
                running_mean if update else mean, running_var if update else rstd, mean, rstd, affine[0], affine[1])
        self._column_blocks("batch_norm", "batch_norm_forward_statistics", x.dtype, d, args)
        self._elementwise("batch_norm", "batch_norm_affine", x.size, x.dtype,
                          (x, affine[0], affine[1], out, np.int64(x.size), np.int32(d)))
        return out, mean, rstd

    def _inference_affine(self, gamma, beta, running_mean, running_var, eps, dtype):
        """(scale, shift, rstd) (D,) of evaluation-mode batch normalization."""
        d = gamma.shape[0]
        affine = cp.empty((3, d), dtype=dtype)  # (3, D): scale, shift, rstd
        if d > 0:
            block = _SHAPES["ELEMENTWISE_BLOCK"]
            self._kernel("batch_norm", "batch_norm_inference_affine", dtype)(
                (self._grid(d, block, block),), (block,),
                (gamma, beta, running_mean, running_var, dtype.type(eps), np.int32(d), affine[0], affine[1], affine[2]))
        return affine[0], affine[1], affine[2]

    def batch_norm_inference(self, x, gamma, beta, running_mean, running_var, eps, out=None):
        x, vectors = self._feature_vectors(x, gamma=gamma, beta=beta, running_mean=running_mean,
                                           running_var=running_var)
        out = self._output(out, x.shape, x.dtype)
        scale, shift, _ = self._inference_affine(*vectors, eps, x.dtype)
        self._elementwise("batch_norm", "batch_norm_affine", x.size, x.dtype,
                          (x, scale, shift, out, np.int64(x.size), np.int32(x.shape[1])))
        return out

    def _gradient_outputs(self, dy, x, dx, dgamma, dbeta):
        """dy as a contiguous array shaped like x, and the checked (dx, dgamma, dbeta)."""
        dy = self._input(dy, x.dtype, name="dy")
        if dy.shape != x.shape:
            raise ValueError(f"dy {dy.shape} and x {x.shape} must have the same shape")
        return (dy, self._output(dx, x.shape, x.dtype, name="dx"),
                self._output(dgamma, (x.shape[1],), x.dtype, name="dgamma"),
                self._output(dbeta, (x.shape[1],), x.dtype, name="dbeta"))

    def batch_norm_backward(self, dy, x, gamma, mean, rstd, dx=None, dgamma=None, dbeta=None):
        x, (gamma, mean, rstd) = self._feature_vectors(x, gamma=gamma, mean=mean, rstd=rstd)
        dy, dx, dgamma, dbeta = self._gradient_outputs(dy, x, dx, dgamma, dbeta)
        n, d = x.shape
        if x.size == 0:
            dgamma.fill(0)
            dbeta.fill(0)
            return dx, dgamma, dbeta
        self._column_blocks("batch_norm", "batch_norm_backward_sums", x.dtype, d,
                            (dy, x, mean, rstd, np.int64(n), np.int32(d), dgamma, dbeta))
        self._elementwise("batch_norm", "batch_norm_backward_dx", x.size, x.dtype,
                          (dy, x, gamma, mean, rstd, dgamma, dbeta, dx, np.int64(x.size), np.int32(d),
                           x.dtype.type(1.0 / n)))
        return dx, dgamma, dbeta

    def batch_norm_inference_backward(self, dy, x, gamma, running_mean, running_var, eps, dx=None, dgamma=None,
                                      dbeta=None):
        x, vectors = self._feature_vectors(x, gamma=gamma, running_mean=running_mean, running_var=running_var)
        gamma, running_mean, _ = vectors
        dy, dx, dgamma, dbeta = self._gradient_outputs(dy, x, dx, dgamma, dbeta)
        n, d = x.shape
        if x.size == 0:
            dgamma.fill(0)
            dbeta.fill(0)
            return dx, dgamma, dbeta
        zeros = cp.zeros(d, dtype=x.dtype)  # (D,): dx = dy*scale + 0 through the affine kernel
        scale, _, rstd = self._inference_affine(gamma, zeros, running_mean, vectors[2], eps, x.dtype)
        self._column_blocks("batch_norm", "batch_norm_backward_sums", x.dtype, d,
                            (dy, x, running_mean, rstd, np.int64(n), np.int32(d), dgamma, dbeta))  # before dx
        self._elementwise("batch_norm", "batch_norm_affine", x.size, x.dtype,
                          (dy, scale, zeros, dx, np.int64(x.size), np.int32(d)))
        return dx, dgamma, dbeta

    def layer_norm_forward(self, x, gamma, beta, eps, out=None, mean=None, rstd=None):
        x, (gamma, beta) = self._feature_vectors(x, gamma=gamma, beta=beta)
        n, d = x.shape
        out = self._output(out, x.shape, x.dtype)
        mean = self._output(mean, (n,), x.dtype, name="mean")
        rstd = self._output(rstd, (n,), x.dtype, name="rstd")
        if n > 0:
            block = _SHAPES["ROW_BLOCK"]
            self._kernel("layer_norm", "layer_norm_forward", x.dtype)(
                (self._grid(n, 1, block),), (block,),
                (x, gamma, beta, np.int64(n), np.int32(d), np.float64(eps), out, mean, rstd))
        return out, mean, rstd

    def layer_norm_backward(self, dy, x, gamma, mean, rstd, dx=None, dgamma=None, dbeta=None):
        x, (gamma,) = self._feature_vectors(x, gamma=gamma)
        n, d = x.shape
        mean, rstd = self._input(mean, x.dtype, name="mean"), self._input(rstd, x.dtype, name="rstd")
        if mean.shape != (n,) or rstd.shape != (n,):
            raise ValueError(f"mean and rstd must have shape ({n},) (one per row of x), got {mean.shape} and "
                             f"{rstd.shape}")
        dy, dx, dgamma, dbeta = self._gradient_outputs(dy, x, dx, dgamma, dbeta)
        if d == 0:
            return dx, dgamma, dbeta
        if n == 0:
            dgamma.fill(0)
            dbeta.fill(0)
            return dx, dgamma, dbeta
        self._column_blocks("layer_norm", "layer_norm_backward_column_sums", x.dtype, d,
                            (dy, x, mean, rstd, np.int64(n), np.int32(d), dgamma, dbeta))  # before dx overwrites dy
        block = _SHAPES["ROW_BLOCK"]
        self._kernel("layer_norm", "layer_norm_backward_dx", x.dtype)(
            (self._grid(n, 1, block),), (block,), (dy, x, gamma, mean, rstd, np.int64(n), np.int32(d), dx))
        return dx, dgamma, dbeta

    def _labels(self, labels, n: int):
        if not isinstance(labels, cp.ndarray) or labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be an integer cupy.ndarray, got {type(labels).__name__} {labels.dtype}")
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},) to match the logits, got {labels.shape}")
        return cp.ascontiguousarray(labels, dtype=cp.int64)

    @staticmethod
    def _first_bad_row(n: int):
        """The (1,) int64 buffer where the softmax kernels record the first row with a bad label (n: none)."""
        first_bad_row = cp.empty((1,), dtype=cp.int64)
        first_bad_row.fill(n)
        return first_bad_row

    @staticmethod
    def _raise_on_bad_label(first_bad_row, labels, n: int, c: int) -> None:
        """ValueError naming the first row whose label is outside [0, c). The kernels flag it while
        they read the labels anyway, so the check costs a fill and one 8-byte copy to the host (which
        waits for the kernels), not a pass over the labels."""
        row = int(first_bad_row[0])
        if row < n:
            raise ValueError(f"label {int(labels[row])} in row {row} is outside [0, {c})")

    def softmax_cross_entropy_forward(self, logits, labels, probs=None):
        logits = self._matrix(self._input(logits, name="logits"), "logits")  # (N, C)
        n, c = logits.shape
        labels = self._labels(labels, n)  # (N,) int64
        probs = self._output(probs, logits.shape, logits.dtype, name="probs")  # (N, C)
        row_loss = cp.empty(n, dtype=logits.dtype)  # (N,)
        loss = cp.empty((), dtype=logits.dtype)
        if n > 0:
            block, first_bad_row = _SHAPES["ROW_BLOCK"], self._first_bad_row(n)
            self._kernel("softmax_cross_entropy", "softmax_cross_entropy_forward", logits.dtype)(
                (self._grid(n, 1, block),), (block,),
                (logits, labels, probs, row_loss, first_bad_row, np.int64(n), np.int32(c)),
            )
            self._raise_on_bad_label(first_bad_row, labels, n, c)
        self._kernel("softmax_cross_entropy", "softmax_cross_entropy_forward_mean", logits.dtype)(
            (1,), (_SHAPES["REDUCE_BLOCK"],), (row_loss, np.int64(n), loss)
        )
        return loss, probs

    def softmax_cross_entropy_backward(self, probs, labels, out=None):
        probs = self._matrix(self._input(probs, name="probs"), "probs")  # (N, C)
        n, c = probs.shape
        labels = self._labels(labels, n)  # (N,) int64
        out = self._output(out, probs.shape, probs.dtype)  # (N, C)
        if n > 0:
            first_bad_row = self._first_bad_row(n)
            args = (probs, labels, out, first_bad_row, np.int64(n), np.int32(c), probs.dtype.type(1.0 / n))
            self._elementwise("softmax_cross_entropy", "softmax_cross_entropy_backward", probs.size, probs.dtype, args)
            self._raise_on_bad_label(first_bad_row, labels, n, c)
        return out

    def sgd_update(self, param, grad, velocity, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        param = self._output(param, param.shape, param.dtype, name="param")
        grad = self._input(grad, param.dtype, name="grad")
        if grad.shape != param.shape:
            raise ValueError(f"grad {grad.shape} and param {param.shape} must have the same shape")
        t, n = param.dtype.type, param.size
        if momentum == 0.0:
            args = (param, grad, np.int64(n), t(lr), t(weight_decay))
            self._elementwise("sgd_update", "sgd_update", n, param.dtype, args)
            return
        if velocity is None:
            raise missing_velocity(momentum)
        velocity = self._output(velocity, param.shape, param.dtype, name="velocity")
        args = (param, grad, velocity, np.int64(n), t(lr), t(momentum), t(weight_decay), np.int32(bool(nesterov)))
        self._elementwise("sgd_update", "sgd_update_momentum", n, param.dtype, args)

    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step, decoupled):
        if step < 1:
            raise ValueError(f"step is the 1-based count of Adam steps (it sets the bias corrections), got {step}")
        param = self._output(param, param.shape, param.dtype, name="param")
        grad = self._input(grad, param.dtype, name="grad")
        m = self._output(m, param.shape, param.dtype, name="m")
        v = self._output(v, param.shape, param.dtype, name="v")
        if grad.shape != param.shape:
            raise ValueError(f"grad {grad.shape} and param {param.shape} must have the same shape")
        t, n = param.dtype.type, param.size
        decay, l2 = (1.0 - lr * weight_decay, 0.0) if decoupled else (1.0, weight_decay)
        corrections = (t(lr / (1.0 - beta1**step)), t(math.sqrt(1.0 - beta2**step)))  # step size, sqrt(c2)
        args = (param, grad, m, v, np.int64(n), t(decay), t(l2), t(beta1), t(1.0 - beta1), t(beta2), t(1.0 - beta2),
                *corrections, t(eps))
        self._elementwise("adam_update", "adam_update", n, param.dtype, args)

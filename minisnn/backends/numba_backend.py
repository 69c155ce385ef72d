"""The Numba backend: fused, vectorized CPU kernels for every hot op; matmul goes to BLAS.

Kernels see C-contiguous arrays only: elementwise ops run over the flat array, bias ops over
(N, D) rows. A non-contiguous input is copied first, and a non-contiguous `out` is filled via a
temporary; with contiguous operands and `out=` (or `dz=`, `db=`) given, no op allocates.

Speed comes from three things:
- SELU's exp: Numba has no SVML here, so math.expm1 stays a scalar libm call. `_expm1_nonpositive`
  is a branch-free Cody-Waite range reduction plus a Taylor polynomial (degree 7 in float32,
  13 in float64) that LLVM vectorizes; its error is a few ulp of the dtype. No fastmath: the
  range reduction depends on the exact order of operations.
- The dropout hash keeps every product in uint32 (`np.uint32(...)` after each operation, since
  Numba widens uint32 arithmetic to 64 bits); the keep decision becomes a vector select, never a
  branch, and the bits equal minisnn.rng's for every element.
- Fusion: bias + SELU (+ alpha dropout) in one pass, SELU backward from the output, and the
  bias-gradient column sum accumulated in the same pass that writes dz.

Threads: the kernels are serial (parallel=False). On a 2-core machine one core nearly saturates
memory bandwidth for these streaming kernels, while Numba's OpenMP pool and OpenBLAS's pthread
pool spin-wait and slow each other when calls alternate within a training step; BLAS keeps both
cores for the matrix products, which are the bulk of a step. The `v2_parallel` variants (prange)
are there to measure that choice (bench/kernels.py, bench/train_step.py).

Every kernel is compiled with cache=True (one compile per dtype, reused by later processes); when
no cache directory is writable, kernels are compiled in each process instead.
"""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np

from ..rng import MASK32, MAX_ELEMENTS, MIX_MUL1, MIX_MUL2, DropoutMask
from .base import Backend, BackendUnavailable

try:
    import numba
    from llvmlite import ir
    from numba import prange, types
    from numba.extending import intrinsic, overload
except ImportError as exc:  # pragma: no cover - exercised where numba is absent
    raise BackendUnavailable(
        "the numba backend needs Numba: pip install 'minisnn[numba]'"
    ) from exc


def _cache_is_writable() -> bool:
    """True when Numba can store compiled kernels (next to this file, or in its cache dir)."""
    candidates = [os.environ.get("NUMBA_CACHE_DIR"), os.path.join(os.path.dirname(__file__), "__pycache__")]
    for directory in filter(None, candidates):
        try:
            os.makedirs(directory, exist_ok=True)
            with tempfile.TemporaryFile(dir=directory):
                return True
        except OSError:
            continue
    return False


_CACHE = _cache_is_writable()


def _kernel(fn=None, **options):
    """numba.njit with the cache setting of this process; parallel kernels opt in with parallel=True."""
    decorate = numba.njit(cache=_CACHE, nogil=True, fastmath={"contract"}, **options)
    return decorate if fn is None else decorate(fn)


# ---- scalar building blocks (inlined into the kernels) -------------------------------------

@intrinsic
def _exp2_integer(typingctx, k):
    """2.0**k for an integral float k in the normal exponent range, by writing the exponent bits."""
    if k == types.float32:
        int_type, float_type, bias, mantissa = ir.IntType(32), ir.FloatType(), 127, 23
    elif k == types.float64:
        int_type, float_type, bias, mantissa = ir.IntType(64), ir.DoubleType(), 1023, 52
    else:
        return None

    def codegen(context, builder, signature, args):
        exponent = builder.add(builder.fptosi(args[0], int_type), ir.Constant(int_type, bias))
        return builder.bitcast(builder.shl(exponent, ir.Constant(int_type, mantissa)), float_type)

    return k(k), codegen


_F32 = np.float32
_LOG2E = 1.4426950408889634
# Cody-Waite split of ln 2: k * _LN2_HI is exact for the k that occur.
_LN2_HI_F32, _LN2_LO_F32 = _F32(0.693359375), _F32(-2.12194440e-4)
_LN2_HI_F64, _LN2_LO_F64 = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_C = tuple(1.0 / math.factorial(n) for n in range(14))  # Taylor coefficients 1/n!


def _expm1_nonpositive(x):
    """expm1(x) for x <= 0 (or NaN); only callable from jitted code."""
    raise NotImplementedError("_expm1_nonpositive runs inside Numba kernels only")


def _expm1_nonpositive_f32(x):
    x = _F32(-87.0) if x < _F32(-87.0) else x  # keeps 2**k normal; expm1 is -1 below anyway
    k = np.floor(x * _F32(_LOG2E) + _F32(0.5))
    r = (x - k * _LN2_HI_F32) - k * _LN2_LO_F32  # |r| <= ln2/2
    p = r * (_F32(1.0) + r * (_F32(1 / 2) + r * (_F32(1 / 6) + r * (_F32(1 / 24) + r * (
        _F32(1 / 120) + r * (_F32(1 / 720) + r * _F32(1 / 5040)))))))  # expm1(r), Taylor to r^7
    t = _exp2_integer(k)
    return t * p + (t - _F32(1.0))  # expm1(x) = 2^k expm1(r) + 2^k - 1, exact when k = 0


def _expm1_nonpositive_f64(x):
    x = -708.0 if x < -708.0 else x
    k = np.floor(x * _LOG2E + 0.5)
    r = (x - k * _LN2_HI_F64) - k * _LN2_LO_F64
    p = r * (1.0 + r * (_C[2] + r * (_C[3] + r * (_C[4] + r * (_C[5] + r * (_C[6] + r * (_C[7] + r * (
        _C[8] + r * (_C[9] + r * (_C[10] + r * (_C[11] + r * (_C[12] + r * _C[13]))))))))))))  # Taylor to r^13
    t = _exp2_integer(k)
    return t * p + (t - 1.0)


@overload(_expm1_nonpositive, inline="always")
def _expm1_nonpositive_impl(x):
    if x == types.float32:
        return _expm1_nonpositive_f32
    if x == types.float64:
        return _expm1_nonpositive_f64
    return None


_SHIFT16, _SHIFT15 = np.uint32(16), np.uint32(15)
_MUL1, _MUL2 = np.uint32(MIX_MUL1), np.uint32(MIX_MUL2)


@_kernel(inline="always")
def _mix32(x):
    """lowbias32 with uint32 wraparound (each result cast back so LLVM keeps 32-bit lanes)."""
    x = np.uint32(x ^ (x >> _SHIFT16))
    x = np.uint32(x * _MUL1)
    x = np.uint32(x ^ (x >> _SHIFT15))
    x = np.uint32(x * _MUL2)
    return np.uint32(x ^ (x >> _SHIFT15))


@_kernel(inline="always")
def _kept(index, k0, k1, threshold):
    """The keep bit of flat element `index` (uint32), as in minisnn.rng."""
    return _mix32(np.uint32(_mix32(np.uint32(index ^ k0)) ^ k1)) < threshold


@_kernel(inline="always")
def _selu(x, lam, lam_alpha):
    negative = x if x <= 0 else x - x  # keeps NaN; exp never sees x > 0
    return lam * x if x > 0 else lam_alpha * _expm1_nonpositive(negative)


@_kernel(inline="always")
def _selu_slope(y, lam, lam_alpha):
    return lam if y > 0 else y + lam_alpha


# ---- elementwise kernels over flat (n,) arrays ----------------------------------------------

@_kernel
def _selu_forward_kernel(x, lam, lam_alpha, out):
    for i in range(x.size):
        out[i] = _selu(x[i], lam, lam_alpha)


@_kernel(parallel=True)
def _selu_forward_parallel_kernel(x, lam, lam_alpha, out):
    for i in prange(x.size):
        out[i] = _selu(x[i], lam, lam_alpha)


@_kernel
def _selu_forward_libm_kernel(x, lam, lam_alpha, out):
    for i in range(x.size):
        out[i] = lam * x[i] if x[i] > 0 else lam_alpha * math.expm1(min(x[i], 0))


@_kernel
def _selu_backward_kernel(dy, y, lam, lam_alpha, out):
    for i in range(y.size):
        out[i] = dy[i] * _selu_slope(y[i], lam, lam_alpha)


@_kernel
def _alpha_dropout_forward_kernel(x, k0, k1, threshold, scale, shift, dropped, out):
    for i in range(x.size):
        out[i] = scale * x[i] + shift if _kept(np.uint32(i), k0, k1, threshold) else dropped


@_kernel(parallel=True)
def _alpha_dropout_forward_parallel_kernel(x, k0, k1, threshold, scale, shift, dropped, out):
    for i in prange(x.size):
        out[i] = scale * x[i] + shift if _kept(np.uint32(i), k0, k1, threshold) else dropped


@_kernel
def _alpha_dropout_forward_widening_kernel(x, k0, k1, threshold, scale, shift, dropped, out):
    # The straight port: Numba's own integer promotion (64-bit multiplies), masked back to 32 bits.
    for i in range(x.size):
        h = (i ^ k0) & 0xFFFFFFFF
        for key in (k1, 0):
            h ^= h >> 16
            h = (h * 0x21F0AAAD) & 0xFFFFFFFF
            h ^= h >> 15
            h = (h * 0x735A2D97) & 0xFFFFFFFF
            h ^= h >> 15
            h ^= key
        out[i] = scale * x[i] + shift if h < threshold else dropped


@_kernel
def _alpha_dropout_backward_kernel(dy, k0, k1, threshold, scale, out):
    zero = scale - scale
    for i in range(dy.size):
        out[i] = scale * dy[i] if _kept(np.uint32(i), k0, k1, threshold) else zero


# ---- row kernels over (N, D) arrays ---------------------------------------------------------

@_kernel
def _bias_selu_forward_kernel(z, b, lam, lam_alpha, out):
    n, d = z.shape
    for r in range(n):
        for c in range(d):
            out[r, c] = _selu(z[r, c] + b[c], lam, lam_alpha)


@_kernel
def _bias_selu_dropout_forward_kernel(z, b, lam, lam_alpha, k0, k1, threshold, scale, shift, dropped, out):
    n, d = z.shape
    for r in range(n):
        base = np.uint32(r * d)
        for c in range(d):
            y = _selu(z[r, c] + b[c], lam, lam_alpha)
            out[r, c] = scale * y + shift if _kept(np.uint32(base + np.uint32(c)), k0, k1, threshold) else dropped


@_kernel
def _bias_selu_backward_kernel(dy, y, lam, lam_alpha, dz, db):
    n, d = y.shape
    db[:] = 0
    for r in range(n):
        for c in range(d):
            g = dy[r, c] * _selu_slope(y[r, c], lam, lam_alpha)
            dz[r, c] = g
            db[c] += g


@_kernel
def _bias_selu_dropout_backward_kernel(dy, y, lam, lam_alpha, k0, k1, threshold, scale, shift, dz, db):
    n, d = y.shape
    inverse_scale = 1 / scale
    zero = scale - scale
    db[:] = 0
    for r in range(n):
        base = np.uint32(r * d)
        for c in range(d):
            s = (y[r, c] - shift) * inverse_scale  # the SELU output before dropout
            g = scale * (dy[r, c] * _selu_slope(s, lam, lam_alpha))
            g = g if _kept(np.uint32(base + np.uint32(c)), k0, k1, threshold) else zero
            dz[r, c] = g
            db[c] += g


@_kernel
def _column_sum_kernel(x, out):
    n, d = x.shape
    out[:] = 0
    for r in range(n):
        for c in range(d):
            out[c] += x[r, c]


@_kernel
def _softmax_cross_entropy_forward_kernel(logits, labels, probs):
    """Fills probs; returns the summed loss (float64), or -1 - row of the first bad label."""
    n, classes = logits.shape
    total_loss = 0.0
    for r in range(n):
        label = labels[r]
        if label < 0 or label >= classes:
            return -1.0 - r
        row_max = logits[r, 0]
        for c in range(1, classes):
            row_max = max(row_max, logits[r, c])
        label_logit = logits[r, label] - row_max
        total = 0.0
        for c in range(classes):
            e = math.exp(logits[r, c] - row_max)
            probs[r, c] = e
            total += e
        inverse = 1.0 / total
        for c in range(classes):
            probs[r, c] *= inverse
        total_loss += math.log(total) - label_logit
    return total_loss


@_kernel
def _softmax_cross_entropy_backward_kernel(probs, labels, inverse_n, out):
    """Returns -1 when every label is valid, else the row of the first bad label."""
    n, classes = probs.shape
    for r in range(n):
        label = labels[r]
        if label < 0 or label >= classes:
            return r
        label_prob = probs[r, label]  # read first: out may be probs
        for c in range(classes):
            out[r, c] = probs[r, c] * inverse_n
        out[r, label] = (label_prob - 1) * inverse_n
    return -1


@_kernel
def _sgd_kernel(param, grad, velocity, lr, momentum, weight_decay, nesterov):
    for i in range(param.size):
        g = grad[i] + weight_decay * param[i]
        if momentum != 0:
            v = momentum * velocity[i] + g
            velocity[i] = v
            g = g + momentum * v if nesterov else v
        param[i] -= lr * g


# ---- wrappers: validation, layout, scalars --------------------------------------------------

def _float_dtype(*arrays: np.ndarray) -> np.dtype:
    """The common float dtype of the operands, or a ValueError naming the mismatch."""
    dtypes = {np.dtype(a.dtype) for a in arrays}
    if len(dtypes) != 1 or next(iter(dtypes)).name not in ("float32", "float64"):
        raise ValueError(f"numba backend ops need operands of one dtype, float32 or float64; got {sorted(map(str, dtypes))}")
    return dtypes.pop()


def _contiguous(a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _target(out: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype, name: str = "out") -> np.ndarray:
    """The array a kernel writes: `out` itself when C-contiguous, else a fresh C array."""
    if out is None:
        return np.empty(shape, dtype)
    if out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"{name} must have shape {tuple(shape)} and dtype {dtype}, got {out.shape} {out.dtype}")
    return out if out.flags.c_contiguous else np.empty(shape, dtype)


def _deliver(target: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """Copy the kernel's result into a non-contiguous `out`; return the array the op returns."""
    if out is None or out is target:
        return target
    np.copyto(out, target)
    return out


def _check_same_shape(**arrays: np.ndarray) -> None:
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"operands must have equal shapes, got {shapes}")


def _check_rows(z: np.ndarray, b: np.ndarray) -> None:
    if z.ndim != 2 or b.shape != (z.shape[1],):
        raise ValueError(f"expected z (N, D) and b (D,), got z {z.shape} and b {b.shape}")


def _mask_args(mask: DropoutMask, size: int, dtype: np.dtype) -> tuple:
    if size > MAX_ELEMENTS:
        raise ValueError(f"dropout input has {size} elements; at most 2^32 - 1 are supported")
    scalar = dtype.type
    return (np.uint32(mask.k0 & MASK32), np.uint32(mask.k1 & MASK32), np.uint32(mask.threshold),
            scalar(mask.scale), scalar(mask.shift), scalar(mask.dropped))


def _selu_args(alpha: float, lam: float, dtype: np.dtype) -> tuple:
    return dtype.type(lam), dtype.type(lam * alpha)


def _flat(a: np.ndarray) -> np.ndarray:
    """A contiguous array as a flat view (C order)."""
    return a.reshape(-1)


class NumbaBackend(Backend):
    name = "numba"
    xp = np

    def __init__(self, dtype="float32", seed: int = 0):
        super().__init__(dtype=dtype, seed=seed)
        self.register_variant("selu_forward", "v1_libm_expm1", self._selu_forward_libm)
        self.register_variant("selu_forward", "v2_parallel", self._selu_forward_parallel)
        self.register_variant("alpha_dropout_forward", "v1_widening_hash", self._alpha_dropout_forward_widening)
        self.register_variant("alpha_dropout_forward", "v2_parallel", self._alpha_dropout_forward_parallel)
        self.register_variant("bias_selu_backward", "v1_two_pass", self._bias_selu_backward_two_pass)

    def info(self) -> dict:
        info = super().info()
        info.update(numba=numba.__version__, numba_threads=numba.config.NUMBA_NUM_THREADS,
                    numba_threading_layer=numba.config.THREADING_LAYER, kernel_cache=_CACHE)
        return info

    def matmul(self, a, b, out=None):
        return np.matmul(a, b, out=out)

    # ---- SELU ---------------------------------------------------------------------------
    def _elementwise(self, kernel, inputs, out, *scalars):
        """Run a flat elementwise kernel: inputs (same shape), scalars, then the output."""
        dtype = _float_dtype(*inputs)
        _check_same_shape(**{f"input{i}": a for i, a in enumerate(inputs)})
        target = _target(out, inputs[0].shape, dtype)
        kernel(*(_flat(_contiguous(a)) for a in inputs), *scalars, _flat(target))
        return _deliver(target, out)

    def selu_forward(self, x, alpha, lam, out=None):
        return self._elementwise(_selu_forward_kernel, (x,), out, *_selu_args(alpha, lam, x.dtype))

    def _selu_forward_parallel(self, x, alpha, lam, out=None):
        return self._elementwise(_selu_forward_parallel_kernel, (x,), out, *_selu_args(alpha, lam, x.dtype))

    def _selu_forward_libm(self, x, alpha, lam, out=None):
        return self._elementwise(_selu_forward_libm_kernel, (x,), out, *_selu_args(alpha, lam, x.dtype))

    def selu_backward(self, dy, y, alpha, lam, out=None):
        return self._elementwise(_selu_backward_kernel, (dy, y), out, *_selu_args(alpha, lam, y.dtype))

    def bias_selu_forward(self, z, b, alpha, lam, out=None):
        _check_rows(z, b)
        dtype = _float_dtype(z, b)
        target = _target(out, z.shape, dtype)
        _bias_selu_forward_kernel(_contiguous(z), _contiguous(b), *_selu_args(alpha, lam, dtype), target)
        return _deliver(target, out)

    def _row_backward(self, kernel, dy, y, scalars, dz, db):
        """Run a fused (dz, db) kernel over (N, D) operands."""
        if y.ndim != 2:
            raise ValueError(f"expected (N, D) operands, got shape {y.shape}")
        _check_same_shape(dy=dy, y=y)
        dtype = _float_dtype(dy, y)
        dz_target = _target(dz, y.shape, dtype, "dz")
        db_target = _target(db, (y.shape[1],), dtype, "db")
        kernel(_contiguous(dy), _contiguous(y), *scalars, dz_target, db_target)
        return _deliver(dz_target, dz), _deliver(db_target, db)

    def bias_selu_backward(self, dy, y, alpha, lam, dz=None, db=None):
        return self._row_backward(_bias_selu_backward_kernel, dy, y, _selu_args(alpha, lam, y.dtype), dz, db)

    def _bias_selu_backward_two_pass(self, dy, y, alpha, lam, dz=None, db=None):
        dz = self.selu_backward(dy, y, alpha, lam, out=dz)
        return dz, self.column_sum(dz, out=db)

    def column_sum(self, x, out=None):
        if x.ndim != 2:
            raise ValueError(f"column_sum expects (N, D), got shape {x.shape}")
        dtype = _float_dtype(x)
        target = _target(out, (x.shape[1],), dtype)
        _column_sum_kernel(_contiguous(x), target)
        return _deliver(target, out)

    # ---- alpha dropout ------------------------------------------------------------------
    def alpha_dropout_forward(self, x, mask: DropoutMask, out=None):
        return self._elementwise(_alpha_dropout_forward_kernel, (x,), out, *_mask_args(mask, x.size, x.dtype))

    def _alpha_dropout_forward_parallel(self, x, mask: DropoutMask, out=None):
        return self._elementwise(_alpha_dropout_forward_parallel_kernel, (x,), out,
                                 *_mask_args(mask, x.size, x.dtype))

    def _alpha_dropout_forward_widening(self, x, mask: DropoutMask, out=None):
        k0, k1, threshold, scale, shift, dropped = _mask_args(mask, x.size, x.dtype)
        return self._elementwise(_alpha_dropout_forward_widening_kernel, (x,), out,
                                 int(k0), int(k1), int(threshold), scale, shift, dropped)

    def alpha_dropout_backward(self, dy, mask: DropoutMask, out=None):
        k0, k1, threshold, scale, _, _ = _mask_args(mask, dy.size, dy.dtype)
        return self._elementwise(_alpha_dropout_backward_kernel, (dy,), out, k0, k1, threshold, scale)

    def bias_selu_dropout_forward(self, z, b, mask: DropoutMask, alpha, lam, out=None):
        _check_rows(z, b)
        dtype = _float_dtype(z, b)
        target = _target(out, z.shape, dtype)
        _bias_selu_dropout_forward_kernel(_contiguous(z), _contiguous(b), *_selu_args(alpha, lam, dtype),
                                          *_mask_args(mask, z.size, dtype), target)
        return _deliver(target, out)

    def bias_selu_dropout_backward(self, dy, y, mask: DropoutMask, alpha, lam, dz=None, db=None):
        k0, k1, threshold, scale, shift, _ = _mask_args(mask, y.size, y.dtype)
        scalars = (*_selu_args(alpha, lam, y.dtype), k0, k1, threshold, scale, shift)
        return self._row_backward(_bias_selu_dropout_backward_kernel, dy, y, scalars, dz, db)

    # ---- loss and optimizer -------------------------------------------------------------
    @staticmethod
    def _labels(labels, n: int) -> np.ndarray:
        labels = np.asarray(labels)
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers of shape ({n},), got {labels.dtype} {labels.shape}")
        return _contiguous(labels.astype(np.int64, copy=False))

    def softmax_cross_entropy_forward(self, logits, labels, probs=None):
        if logits.ndim != 2:
            raise ValueError(f"logits must be (N, C), got shape {logits.shape}")
        dtype = _float_dtype(logits)
        target = _target(probs, logits.shape, dtype, "probs")
        summed = _softmax_cross_entropy_forward_kernel(_contiguous(logits), self._labels(labels, len(logits)), target)
        if summed < 0:
            row = int(-1 - summed)
            raise ValueError(f"label {labels[row]} in row {row} is outside [0, {logits.shape[1]})")
        return np.asarray(summed / len(logits), dtype=dtype), _deliver(target, probs)

    def softmax_cross_entropy_backward(self, probs, labels, out=None):
        if probs.ndim != 2:
            raise ValueError(f"probs must be (N, C), got shape {probs.shape}")
        dtype = _float_dtype(probs)
        target = _target(out, probs.shape, dtype)
        bad_row = _softmax_cross_entropy_backward_kernel(_contiguous(probs), self._labels(labels, len(probs)),
                                                         dtype.type(1.0 / len(probs)), target)
        if bad_row >= 0:
            raise ValueError(f"label {labels[bad_row]} in row {bad_row} is outside [0, {probs.shape[1]})")
        return _deliver(target, out)

    def sgd_update(self, param, grad, velocity, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        arrays = (param, grad) if momentum == 0.0 else (param, grad, velocity)
        dtype = _float_dtype(*arrays)
        _check_same_shape(**{name: a for name, a in zip(("param", "grad", "velocity"), arrays)})
        if not param.flags.c_contiguous or (momentum != 0.0 and not velocity.flags.c_contiguous):
            raise ValueError("sgd_update updates param and velocity in place: they must be C-contiguous")
        velocity_flat = _flat(velocity) if momentum != 0.0 else _flat(param)[:0]
        scalar = dtype.type
        _sgd_kernel(_flat(param), _flat(_contiguous(grad)), velocity_flat, scalar(lr), scalar(momentum),
                    scalar(weight_decay), bool(nesterov))

"""The Numba backend's kernels: fused, vectorized loops over C-contiguous arrays.

Elementwise kernels run over flat (n,) arrays, dropout and row kernels over (rows, d) arrays;
numba_backend.py validates the operands and hands over contiguous arrays of one float dtype. KERNELS lists the
kernels every op uses, with their signatures for ahead-of-time compilation (numba_aot.py); the
`..._parallel`, `..._libm` and `..._widening` kernels are slower ideas kept as named variants.

Speed comes from these things:
- SELU's exp: Numba has no SVML here, so math.expm1 stays a scalar libm call (variant
  v1_libm_expm1, about 0.02 of copy bandwidth). `_expm1_parts` is a branch-free range
  reduction plus a polynomial that LLVM vectorizes: in float32 a fitted degree-6 polynomial, the
  rounding to k done by adding 1.5 * 2**23 (its low bits then hold k, moved into 2**k's exponent
  by an integer add and shift), one product with ln 2; in float64 Cody-Waite and Taylor to degree
  13. In float32 its error is at most 1.1 ulp (1.9 for SELU's lam*alpha*expm1), over every
  negative float32 down to -104. The softmax's `_exp_nonpositive` is the same with a polynomial
  for exp(r) and ln 2 in two terms, at most 1.2 ulp (expm1(s) + 1 loses all relative accuracy of
  small probabilities). Every vector op counts on AVX2, where these kernels are bound by the FMA
  ports: the float32 forms take 11 FMA-port ops per vector where Taylor with floor and conversion
  took 15 (SELU forward 0.68 -> 1.03 of copy on the AVX2 target). fastmath is limited to
  "contract" (FMA fusion, which only removes roundings): reassociation would break the range
  reduction. Kernels that divide by arrays use NumPy's error model: Python's checks each division
  for 0, which stops vectorization.
- The dropout hash keeps every product in uint32 (`np.uint32(...)` after each operation, since
  Numba widens uint32 arithmetic to 64 bits; variant v1_widening_hash shows the cost); the keep
  decision becomes a vector select, never a branch, and the bits equal minisnn.rng's. Float
  scalars come in the array's dtype: a literal `1 / scale` would be float64 in Numba and turn a
  float32 loop into a float64 one (test_float32_kernels_compute_in_float32 checks the IR).
- In place: LLVM guards each vectorized loop with a runtime overlap check that rejects
  out-is-input, which would send the layers' in-place calls (out=z) to the scalar loop (20x
  slower); kernels test `_same_data` and then loop over the one array.
- Unconditional loads: a kernel computes an element's kept value before the keep select
  (`v = scale * x[r, c] + shift; out[r, c] = v if kept else dropped`). Written inside the
  select, the load of x happens only for kept elements, LLVM cannot prove it safe to speculate
  and emits a masked load: free with AVX-512's mask registers, but an AVX2 vmaskmovps made alpha
  dropout 3x slower (0.32 -> 1.05 of copy at 4096^2 with the Haswell target).
- Unconditional stores: `a[i] = v if c else a[i]` (in-place ReLU) is a store that LLVM drops
  where c is false, leaving a masked store: on AVX2 a vmaskmovps, which made in-place ReLU 0.30
  of the in-place baseline. Storing `a[i] + 0` in that arm (equal but for the sign of a zero, and
  NaN stays NaN) keeps a plain vector store (0.30 -> 1.03 on an AVX2 target).
- Fusion: bias + SELU (+ alpha dropout) in one pass, SELU backward from the output, and the
  bias-gradient column sum accumulated in the same pass that writes dz.
- Backward from the output: alpha dropout's dropped value a*(-lam*alpha) + b is the infimum of
  the kept values a*selu(z) + b, so the fused backward tells a dropped element by y == dropped
  instead of regenerating its hash (128 x 256: 12.3 -> 5.0 us; 4096^2: 8.5 -> 7.5 ms). A kept
  element equals that value only where selu(z) has rounded to -lam*alpha, and there the slope
  the reference computes from the output, s + lam*alpha, is itself zero up to rounding. The
  backend checks that a mask's dropped value is that infimum (numba_backend.py,
  _dropped_is_saturation) and regenerates the mask otherwise (standard dropout drops to 0, which
  SELU reaches at z = 0).
- Row loops: the bias + SELU forward kernels call a function per (d,) row, whose flat loop LLVM
  compiles as it does SELU's; written as one loop nest over (r, c), the same body ran out of
  vector registers on AVX2 and reloaded its constants every iteration (0.42 -> 0.57 of copy on
  the AVX2 target, 0.65 -> 0.72 with AVX-512).

Threads: the kernels are serial (parallel=False). Measured on the 2-core machine, one core
saturates memory for these streaming kernels: the SGD update of 8.2M parameters took 3.4 ms
serial, 7.6 ms with prange on Numba's OpenMP layer (its spinning threads fight OpenBLAS's
pthreads; a following GEMM slowed too) and 3.2 ms on the workqueue layer; right after a GEMM,
while OpenBLAS's idle threads still spin, a prange kernel on a tiny array took 7 ms instead of
10 us. BLAS keeps both cores for the matrix products, the bulk of a step. The `v2_parallel`
variants keep the comparison measurable (bench/kernels.py); batch norm's split the columns, layer
norm's the rows (its backward gives each row chunk its own column sums, added in chunk order).

Every kernel is jitted with cache=True (one compile per dtype and layout, reused by later
processes); where Numba finds no writable cache location, kernels are compiled in each process.
"""

from __future__ import annotations

import math

import numpy as np

from ..rng import MIX_MUL1, MIX_MUL2
from .base import BackendUnavailable

try:
    import numba
    from llvmlite import ir
    from numba import prange, types
    from numba.extending import intrinsic, overload
except ImportError as exc:  # pragma: no cover - exercised where numba is absent
    raise BackendUnavailable(
        "the numba backend needs Numba: pip install 'minisnn[numba]'"
    ) from exc


def _kernel(fn=None, **options):
    """numba.njit with cache=True, or without a cache where Numba finds no writable cache location."""
    options = {"nogil": True, "fastmath": {"contract"}, **options}

    def decorate(function):
        try:
            return numba.njit(cache=True, **options)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available": compile per process
            return numba.njit(cache=False, **options)(function)

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
_ROUNDER_F32 = 12582912.0  # 1.5 * 2**23: x + it rounds x (|x| < 2**22) to an integer, kept in the low bits
# Cody-Waite split of ln 2: k * _LN2_HI is exact for the k that occur.
_LN2_HI_F32, _LN2_LO_F32 = _F32(0.693359375), _F32(-2.12194440e-4)
_LN2_F32 = _F32(math.log(2.0))
_LN2_HI_F64, _LN2_LO_F64 = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_C = tuple(1.0 / math.factorial(n) for n in range(14))  # Taylor coefficients 1/n!
# float32 polynomials on |r| <= ln2/2, fitted for the least maximal relative error (Lawson's
# iteration; float32 coefficients): expm1(r) = r + r^2 * q(r) within 1.4e-8, exp(r) = 1 + r +
# r^2 * q(r) within 3.1e-9, both with q of degree 4 (one term fewer than Taylor for the same accuracy).
_EXPM1_Q_F32 = tuple(_F32(c) for c in (0.4999999701976776, 0.1666654348373413, 0.04166720062494278,
                                        0.008366547524929047, 0.0013882516650483012))
_EXP_Q_F32 = tuple(_F32(c) for c in (0.4999999403953552, 0.1666652113199234, 0.04166838899254799,
                                      0.00836874544620514, 0.0013814539415761828))


@intrinsic
def _exp2_of_rounded(typingctx, z):
    """2.0**k from z = k + _ROUNDER_F32 (float32): adding _ROUNDER rounds a float to the nearest
    integer k and leaves k in z's low mantissa bits, which one integer add and a shift move into
    the exponent field (no floor, no float-to-int conversion: two vector ops fewer than
    _exp2_integer)."""
    if z != types.float32:
        return None
    rounder_bits = int(np.float32(_ROUNDER_F32).view(np.uint32))

    def codegen(context, builder, signature, args):
        int32 = ir.IntType(32)
        bias = ir.Constant(int32, (127 - rounder_bits) & 0xFFFFFFFF)
        exponent = builder.add(builder.bitcast(args[0], int32), bias)
        return builder.bitcast(builder.shl(exponent, ir.Constant(int32, 23)), ir.FloatType())

    return z(z), codegen


def _expm1_parts(x):
    """(t, p) with expm1(x) = t*p + (t - 1), t = 2**k, p = expm1(r), for x <= 0 or NaN; for x > 0
    finite values of no meaning (callers select them away). Only callable from jitted code."""
    raise NotImplementedError("_expm1_parts runs inside Numba kernels only")


def _expm1_parts_f32(x):
    x = _F32(-87.0) if _F32(-87.0) > x else x  # keeps 2**k normal (expm1 is -1 below) and keeps NaN: one vmaxps
    z = x * _F32(_LOG2E) + _F32(_ROUNDER_F32)  # k + _ROUNDER: k, the integer nearest x/ln2, in the low bits
    k = z - _F32(_ROUNDER_F32)
    # |r| <= ln2/2. One product with ln2 rounded to float32 is off by |k| * 1.9e-9: where k != 0,
    # expm1(x) is 2^k e^r - 1 with 2^k e^r <= 0.71, so that error stays below 0.1 ulp of the result.
    r = x - k * _LN2_F32
    q0, q1, q2, q3, q4 = _EXPM1_Q_F32
    return _exp2_of_rounded(z), r + (r * r) * (q0 + r * (q1 + r * (q2 + r * (q3 + r * q4))))


def _expm1_parts_f64(x):
    x = -708.0 if x < -708.0 else (0.0 if x > 0.0 else x)  # keeps 2**k normal and keeps NaN
    k = np.floor(x * _LOG2E + 0.5)
    r = (x - k * _LN2_HI_F64) - k * _LN2_LO_F64
    p = r * (1.0 + r * (_C[2] + r * (_C[3] + r * (_C[4] + r * (_C[5] + r * (_C[6] + r * (_C[7] + r * (
        _C[8] + r * (_C[9] + r * (_C[10] + r * (_C[11] + r * (_C[12] + r * _C[13]))))))))))))  # Taylor to r^13
    return _exp2_integer(k), p


@overload(_expm1_parts)
def _expm1_parts_impl(x):
    if x == types.float32:
        return _expm1_parts_f32
    if x == types.float64:
        return _expm1_parts_f64
    return None


# The largest float at or below ln(smallest normal): exp is 0 for arguments up to it, normal above.
_EXP_MIN_F32, _EXP_MIN_F64 = _F32(-87.33655), -708.3964185322642


def _exp_nonpositive(x):
    """exp(x) for x <= 0 (or NaN), within about 1 ulp; 0 where exp(x) would be subnormal
    (x <= _EXP_MIN_*), never a subnormal. Only callable from jitted code."""
    raise NotImplementedError("_exp_nonpositive runs inside Numba kernels only")


def _exp_nonpositive_f32(x):
    clamped = x if x > _EXP_MIN_F32 else _EXP_MIN_F32  # NaN too: 2**k stays normal
    z = clamped * _F32(_LOG2E) + _F32(_ROUNDER_F32)
    k = z - _F32(_ROUNDER_F32)
    # |r| <= ln2/2 (NaN stays NaN); ln 2 in two terms keeps small probabilities' relative accuracy
    r = (x - k * _LN2_HI_F32) - k * _LN2_LO_F32
    q0, q1, q2, q3, q4 = _EXP_Q_F32
    p = _F32(1.0) + r * (_F32(1.0) + r * (q0 + r * (q1 + r * (q2 + r * (q3 + r * q4)))))  # exp(r)
    return _exp2_of_rounded(z) * p if x > _EXP_MIN_F32 or x != x else _F32(0.0)


def _exp_nonpositive_f64(x):
    k = np.floor((x if x > _EXP_MIN_F64 else _EXP_MIN_F64) * _LOG2E + 0.5)
    r = (x - k * _LN2_HI_F64) - k * _LN2_LO_F64
    p = 1.0 + r * (1.0 + r * (_C[2] + r * (_C[3] + r * (_C[4] + r * (_C[5] + r * (_C[6] + r * (_C[7] + r * (
        _C[8] + r * (_C[9] + r * (_C[10] + r * (_C[11] + r * (_C[12] + r * _C[13]))))))))))))  # Taylor to r^13
    return _exp2_integer(k) * p if x > _EXP_MIN_F64 or x != x else 0.0


@overload(_exp_nonpositive)
def _exp_nonpositive_impl(x):
    if x == types.float32:
        return _exp_nonpositive_f32
    if x == types.float64:
        return _exp_nonpositive_f64
    return None


_SHIFT16, _SHIFT15 = np.uint32(16), np.uint32(15)
_MUL1, _MUL2 = np.uint32(MIX_MUL1), np.uint32(MIX_MUL2)


@_kernel
def _mix32(x):
    """lowbias32 with uint32 wraparound (each result cast back so LLVM keeps 32-bit lanes)."""
    x = np.uint32(x ^ (x >> _SHIFT16))
    x = np.uint32(x * _MUL1)
    x = np.uint32(x ^ (x >> _SHIFT15))
    x = np.uint32(x * _MUL2)
    return np.uint32(x ^ (x >> _SHIFT15))


@_kernel
def _kept(index, k0, k1, threshold):
    """The keep bit of flat element `index` (uint32), as in minisnn.rng."""
    return _mix32(np.uint32(_mix32(np.uint32(index ^ k0)) ^ k1)) < threshold


@_kernel
def _same_data(a, b):
    """True when b is a (write) alias of a: then kernels loop over a alone, since LLVM's runtime
    overlap check would otherwise send every in-place call to the scalar loop."""
    return a.ctypes.data == b.ctypes.data


@_kernel
def _selu(x, lam, lam_alpha):
    """lam*x for x > 0, else lam*alpha*expm1(x) = (lam*alpha*t)*p + (lam*alpha*t - lam*alpha); NaN stays NaN."""
    t, p = _expm1_parts(x)
    scaled = lam_alpha * t
    return lam * x if x > 0 else scaled * p + (scaled - lam_alpha)


@_kernel
def _scaled_selu(x, scaled_lam, scaled_lam_alpha, shift, offset):
    """scale*selu(x) + shift with the scale folded into the constants (scaled_lam = scale*lam,
    scaled_lam_alpha = scale*lam*alpha, offset = shift - scaled_lam_alpha, each rounded once to
    the dtype): one product per element fewer than scaling selu(x) afterwards. x = 0 takes the linear
    branch, which gives shift exactly (selu(0) = 0; the other branch rounds shift - scaled + scaled)."""
    t, p = _expm1_parts(x)
    scaled = scaled_lam_alpha * t
    return scaled_lam * x + shift if x >= 0 else scaled * p + (scaled + offset)


@_kernel
def _selu_slope(y, lam, lam_alpha):
    return lam if y > 0 else y + lam_alpha


@_kernel
def _dropout_selu_grad(dy, y, index, lam, lam_alpha, k0, k1, threshold, scale, shift, inverse_scale, zero):
    """dz of one element of y = dropout(selu(z)), from y alone."""
    s = (y - shift) * inverse_scale  # the SELU output before dropout
    g = scale * (dy * _selu_slope(s, lam, lam_alpha))
    return g if _kept(np.uint32(index), k0, k1, threshold) else zero


# ---- elementwise kernels over flat (n,) arrays ----------------------------------------------

@_kernel
def selu_forward_kernel(x, lam, lam_alpha, out):
    if _same_data(x, out):
        for i in range(x.size):
            x[i] = _selu(x[i], lam, lam_alpha)
    else:
        for i in range(x.size):
            out[i] = _selu(x[i], lam, lam_alpha)


@_kernel(parallel=True)
def selu_forward_parallel_kernel(x, lam, lam_alpha, out):
    for i in prange(x.size):
        out[i] = _selu(x[i], lam, lam_alpha)


@_kernel
def selu_forward_libm_kernel(x, lam, lam_alpha, out):
    for i in range(x.size):
        out[i] = lam * x[i] if x[i] > 0 else lam_alpha * math.expm1(min(x[i], 0))


@_kernel
def selu_backward_kernel(dy, y, lam, lam_alpha, out):
    if _same_data(dy, out):
        for i in range(y.size):
            dy[i] = dy[i] * _selu_slope(y[i], lam, lam_alpha)
    else:
        for i in range(y.size):
            out[i] = dy[i] * _selu_slope(y[i], lam, lam_alpha)


# ---- dropout kernels over (rows, d) arrays: element (r, c) keeps by the hash of index
# r*row_step + c, so row_step = d gives every element its own decision (its flat C index) and
# row_step = 0 one decision per column (a per-feature mask).

@_kernel
def alpha_dropout_forward_kernel(x, k0, k1, threshold, row_step, scale, shift, dropped, out):
    rows, d = x.shape
    in_place = _same_data(x, out)
    for r in range(rows):
        base = np.uint32(r * row_step)
        if in_place:
            for c in range(d):
                v = scale * x[r, c] + shift  # loaded whether kept or not: see "Unconditional loads"
                x[r, c] = v if _kept(np.uint32(base + np.uint32(c)), k0, k1, threshold) else dropped
        else:
            for c in range(d):
                v = scale * x[r, c] + shift
                out[r, c] = v if _kept(np.uint32(base + np.uint32(c)), k0, k1, threshold) else dropped


@_kernel(parallel=True)
def alpha_dropout_forward_parallel_kernel(x, k0, k1, threshold, row_step, scale, shift, dropped, out):
    rows, d = x.shape
    for r in prange(rows):
        base = np.uint32(r * row_step)
        for c in range(d):
            v = scale * x[r, c] + shift
            out[r, c] = v if _kept(np.uint32(base + np.uint32(c)), k0, k1, threshold) else dropped


@_kernel
def alpha_dropout_forward_widening_kernel(x, k0, k1, threshold, row_step, scale, shift, dropped, out):
    # The straight port: Numba's own integer promotion (64-bit multiplies), masked back to 32 bits.
    rows, d = x.shape
    for r in range(rows):
        for c in range(d):
            h = ((r * row_step + c) ^ k0) & 0xFFFFFFFF
            for key in (k1, 0):
                h ^= h >> 16
                h = (h * 0x21F0AAAD) & 0xFFFFFFFF
                h ^= h >> 15
                h = (h * 0x735A2D97) & 0xFFFFFFFF
                h ^= h >> 15
                h ^= key
            out[r, c] = scale * x[r, c] + shift if h < threshold else dropped


@_kernel
def alpha_dropout_backward_kernel(dy, k0, k1, threshold, row_step, scale, out):
    rows, d = dy.shape
    zero = scale - scale
    in_place = _same_data(dy, out)
    for r in range(rows):
        base = np.uint32(r * row_step)
        if in_place:
            for c in range(d):
                g = scale * dy[r, c]
                dy[r, c] = g if _kept(np.uint32(base + np.uint32(c)), k0, k1, threshold) else zero
        else:
            for c in range(d):
                g = scale * dy[r, c]
                out[r, c] = g if _kept(np.uint32(base + np.uint32(c)), k0, k1, threshold) else zero


# ---- row kernels over (N, D) arrays ---------------------------------------------------------

@_kernel
def _bias_selu_row(z, b, lam, lam_alpha, out):
    """out = selu(z + b) over one (d,) row; out may be z."""
    if _same_data(z, out):
        for c in range(z.size):
            z[c] = _selu(z[c] + b[c], lam, lam_alpha)
    else:
        for c in range(z.size):
            out[c] = _selu(z[c] + b[c], lam, lam_alpha)


@_kernel
def bias_selu_forward_kernel(z, b, lam, lam_alpha, out):
    for r in range(z.shape[0]):  # one call per row: see "Row loops" above
        _bias_selu_row(z[r], b, lam, lam_alpha, out[r])


@_kernel
def _bias_selu_dropout_row(z, b, scaled_lam, scaled_lam_alpha, shift, offset, base, k0, k1, threshold, dropped, out):
    """out = alpha_dropout(selu(z + b)) over one (d,) row whose element c has hash index base + c, the
    dropout's affine map folded into SELU's constants (_scaled_selu); out may be z."""
    if _same_data(z, out):
        for c in range(z.size):
            y = _scaled_selu(z[c] + b[c], scaled_lam, scaled_lam_alpha, shift, offset)
            z[c] = y if _kept(np.uint32(base + np.uint32(c)), k0, k1, threshold) else dropped
    else:
        for c in range(z.size):
            y = _scaled_selu(z[c] + b[c], scaled_lam, scaled_lam_alpha, shift, offset)
            out[c] = y if _kept(np.uint32(base + np.uint32(c)), k0, k1, threshold) else dropped


@_kernel
def bias_selu_dropout_forward_kernel(z, b, lam, lam_alpha, k0, k1, threshold, row_step, scale, shift, dropped, out):
    scaled_lam, scaled_lam_alpha = scale * lam, scale * lam_alpha  # in the dtype, as the operands
    offset = shift - scaled_lam_alpha
    for r in range(z.shape[0]):
        _bias_selu_dropout_row(z[r], b, scaled_lam, scaled_lam_alpha, shift, offset, np.uint32(r * row_step), k0, k1,
                               threshold, dropped, out[r])


@_kernel
def bias_selu_backward_kernel(dy, y, lam, lam_alpha, dz, db):
    n, d = y.shape
    in_place = _same_data(dy, dz)
    db[:] = 0
    for r in range(n):
        if in_place:
            for c in range(d):
                g = dy[r, c] * _selu_slope(y[r, c], lam, lam_alpha)
                dy[r, c] = g
                db[c] += g
        else:
            for c in range(d):
                g = dy[r, c] * _selu_slope(y[r, c], lam, lam_alpha)
                dz[r, c] = g
                db[c] += g


@_kernel
def bias_selu_dropout_backward_kernel(dy, y, lam, lam_alpha, k0, k1, threshold, row_step, scale, shift,
                                       inverse_scale, dz, db):
    n, d = y.shape
    zero = scale - scale
    in_place = _same_data(dy, dz)
    db[:] = 0
    for r in range(n):
        base = np.uint32(r * row_step)
        if in_place:
            for c in range(d):
                index = np.uint32(base + np.uint32(c))
                g = _dropout_selu_grad(dy[r, c], y[r, c], index, lam, lam_alpha, k0, k1, threshold, scale, shift,
                                       inverse_scale, zero)
                dy[r, c] = g
                db[c] += g
        else:
            for c in range(d):
                index = np.uint32(base + np.uint32(c))
                g = _dropout_selu_grad(dy[r, c], y[r, c], index, lam, lam_alpha, k0, k1, threshold, scale, shift,
                                       inverse_scale, zero)
                dz[r, c] = g
                db[c] += g


@_kernel
def bias_selu_dropout_backward_from_output_kernel(dy, y, lam, lam_alpha, dropped, scale, shift, inverse_scale, dz, db):
    """bias_selu_dropout_backward for alpha dropout, whose dropped value is the infimum of the kept
    outputs: an element is dropped where y == dropped ("Backward from the output"), no hash."""
    n, d = y.shape
    zero = scale - scale
    in_place = _same_data(dy, dz)
    db[:] = 0
    for r in range(n):
        if in_place:
            for c in range(d):
                v = y[r, c]
                g = scale * (dy[r, c] * _selu_slope((v - shift) * inverse_scale, lam, lam_alpha))
                g = g if v != dropped else zero
                dy[r, c] = g
                db[c] += g
        else:
            for c in range(d):
                v = y[r, c]
                g = scale * (dy[r, c] * _selu_slope((v - shift) * inverse_scale, lam, lam_alpha))
                g = g if v != dropped else zero
                dz[r, c] = g
                db[c] += g


@_kernel
def column_sum_kernel(x, out):
    n, d = x.shape
    out[:] = 0
    for r in range(n):
        for c in range(d):
            out[c] += x[r, c]


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float32 (float64) whose bits are the int32 (int64) `bits`."""
    float_type = {types.int32: types.float32, types.int64: types.float64}.get(bits)
    if float_type is None:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(float_type))

    return float_type(bits), codegen


def _row_max(x):
    """max of the (d,) row x (d >= 1) for the softmax's shift; only callable from jitted code.

    As integers: a float's bits b, with b's magnitude bits flipped where the sign is set, order as
    the floats do (-0 below +0). A NaN orders above +inf or below -inf by its sign bit, so the
    maximum may or may not be NaN; either way the NaN's exp makes the row's sum, and so the whole
    row, NaN, as in the reference. A running maximum of floats is a serial chain of compares that
    LLVM does not vectorize without dropping NaN; an integer maximum it vectorizes in registers
    (0.34 of a copy's time at 4096 x 4096, the cost of reading the row; partial float maxima kept
    in memory took 0.56 - 0.69)."""
    raise NotImplementedError("_row_max runs inside Numba kernels only")


@_kernel
def _row_max_bits(x, int_type, sign_shift, magnitude_mask, float_type):
    bits = x.view(int_type)
    best = int_type(-magnitude_mask - 1)
    for c in range(bits.size):
        b = bits[c]
        key = int_type(b ^ int_type((b >> sign_shift) & magnitude_mask))
        best = key if key > best else best
    return _float_from_bits(int_type(best ^ int_type((best >> sign_shift) & magnitude_mask)))


def _row_max_f32(x):
    return _row_max_bits(x, np.int32, np.int32(31), np.int32(0x7FFFFFFF), np.float32)


def _row_max_f64(x):
    return _row_max_bits(x, np.int64, np.int64(63), np.int64(0x7FFFFFFFFFFFFFFF), np.float64)


@overload(_row_max)
def _row_max_impl(x):
    if x.dtype == types.float32:
        return _row_max_f32
    if x.dtype == types.float64:
        return _row_max_f64
    return None


@_kernel(fastmath={"contract", "reassoc"})
def _row_sum(x):
    """Sum of the (d,) row x in its dtype. "reassoc" lets LLVM keep several vector accumulators in
    registers (the order is then fixed by the vector width: deterministic for a compiled target);
    partial sums kept in memory cost 0.45 of a copy's time at 4096 classes."""
    total = x[0] - x[0]
    for c in range(x.size):
        total += x[c]
    return total


@_kernel
def _exp_shifted_row(x, shift, out):
    """out = exp(x - shift) over the (d,) row x, shift >= max(x), out may be x: a flat loop (see "Row loops")."""
    if _same_data(x, out):
        for c in range(x.size):
            x[c] = _exp_nonpositive(x[c] - shift)
    else:
        for c in range(x.size):
            out[c] = _exp_nonpositive(x[c] - shift)


# Classes from which the softmax's vector row loops beat plain ones (fraction of copy, vector vs
# plain: 10 classes 0.06 vs 0.09, 32 classes 0.15 vs 0.11).
_LONG_ROW = 32


@_kernel
def softmax_cross_entropy_forward_kernel(logits, labels, probs):
    """Fills probs; returns the summed loss (float64), or -1 - row of the first bad label."""
    n, classes = logits.shape
    total_loss = 0.0
    one = np.ones(1, logits.dtype)[0]  # in the dtype: a literal 1 would make 1 / total a float64
    long_rows = classes >= _LONG_ROW
    for r in range(n):
        label = labels[r]
        if label < 0 or label >= classes:
            return -1.0 - r
        label_logit = logits[r, label]  # read first: probs may be logits
        if long_rows:
            row_max = _row_max(logits[r])
            _exp_shifted_row(logits[r], row_max, probs[r])
            total = _row_sum(probs[r])
        else:  # a few classes: plain loops, without the vector loops' set-up and remainder per row
            row_max = logits[r, 0]
            for c in range(1, classes):
                row_max = logits[r, c] if logits[r, c] > row_max or logits[r, c] != logits[r, c] else row_max
            for c in range(classes):
                probs[r, c] = _exp_nonpositive(logits[r, c] - row_max)
            total = probs[r, 0]
            for c in range(1, classes):
                total += probs[r, c]
        inverse = one / total  # a product per element instead of a division: 1 rounding more, at most 1 ulp
        for c in range(classes):
            probs[r, c] *= inverse
        total_loss += math.log(total) - (label_logit - row_max)
    return total_loss


@_kernel
def softmax_cross_entropy_backward_kernel(probs, labels, inverse_n, out):
    """Returns -1 when every label is valid, else the row of the first bad label."""
    n, classes = probs.shape
    one = inverse_n / inverse_n  # 1 in the float dtype: an integer 1 would promote the product to float64
    for r in range(n):
        label = labels[r]
        if label < 0 or label >= classes:
            return r
        label_prob = probs[r, label]  # read first: out may be probs
        for c in range(classes):
            out[r, c] = probs[r, c] * inverse_n
        out[r, label] = (label_prob - one) * inverse_n
    return -1


@_kernel
def sgd_update_kernel(param, grad, lr, weight_decay):
    for i in range(param.size):
        param[i] -= lr * (grad[i] + weight_decay * param[i])


@_kernel
def sgd_update_momentum_kernel(param, grad, velocity, lr, momentum, weight_decay, nesterov):
    for i in range(param.size):
        g = grad[i] + weight_decay * param[i]
        v = momentum * velocity[i] + g
        velocity[i] = v
        param[i] -= lr * (g + momentum * v if nesterov else v)


@_kernel(error_model="numpy")  # Python's error model checks every division for 0, which stops vectorization
def adam_update_kernel(param, grad, m, v, decay, l2, beta1, one_minus_beta1, beta2, one_minus_beta2, corrected_step,
                       corrected_eps):
    """One fused pass of Adam (decay 1, l2 = weight decay) or AdamW (decay 1 - lr*weight decay,
    l2 0). With c1 = 1 - beta1^step and c2 = 1 - beta2^step, the step
    lr/c1 * m / (sqrt(v)/sqrt(c2) + eps) is computed as corrected_step * m / (sqrt(v) + corrected_eps),
    corrected_step = lr*sqrt(c2)/c1 and corrected_eps = eps*sqrt(c2): one division per element
    instead of two (the divider bounds this loop on small, cache-resident models)."""
    for i in range(param.size):
        p = param[i]
        g = grad[i] + l2 * p
        m_i = beta1 * m[i] + one_minus_beta1 * g
        v_i = beta2 * v[i] + one_minus_beta2 * (g * g)
        m[i] = m_i
        v[i] = v_i
        param[i] = p * decay - corrected_step * m_i / (math.sqrt(v_i) + corrected_eps)  # np.sqrt: libm


# ---- simple elementwise and row kernels: ReLU, bias add, residual sum --------------------------

@_kernel(error_model="numpy")
def sigmoid_forward_kernel(x, out):
    """y = 1/(1 + e) for x >= 0 and e/(1 + e) below, e = exp(-|x|) (relative accuracy for x << 0,
    as the reference; 0 where e/(1 + e) would be subnormal, see _exp_nonpositive). NumPy's form of
    the select, a masked copy, took 99 us at 128 x 256 float32 (this loop: a few us)."""
    one = np.ones(1, x.dtype)[0]
    if _same_data(x, out):
        for i in range(x.size):
            v = x[i]
            e = _exp_nonpositive(-abs(v))
            r = one / (one + e)
            x[i] = r if v >= 0 else e * r
    else:
        for i in range(x.size):
            v = x[i]
            e = _exp_nonpositive(-abs(v))
            r = one / (one + e)
            out[i] = r if v >= 0 else e * r


@_kernel
def sigmoid_backward_kernel(dy, y, out):
    """dx = dy * ((1 - y) * y); out may be dy."""
    one = np.ones(1, y.dtype)[0]
    if _same_data(dy, out):
        for i in range(y.size):
            dy[i] = dy[i] * ((one - y[i]) * y[i])
    else:
        for i in range(y.size):
            out[i] = dy[i] * ((one - y[i]) * y[i])


@_kernel
def tanh_backward_kernel(dy, y, out):
    """dx = dy * (1 - y^2); out may be dy."""
    one = np.ones(1, y.dtype)[0]
    if _same_data(dy, out):
        for i in range(y.size):
            dy[i] = dy[i] * (one - y[i] * y[i])
    else:
        for i in range(y.size):
            out[i] = dy[i] * (one - y[i] * y[i])


@_kernel
def highway_forward_kernel(h, t, x, out):
    """out = x + t * (h - x); out may be h."""
    if _same_data(h, out):
        for i in range(h.size):
            h[i] = x[i] + t[i] * (h[i] - x[i])
    else:
        for i in range(h.size):
            out[i] = x[i] + t[i] * (h[i] - x[i])


@_kernel
def highway_backward_kernel(dy, h, t, x, dh, dt, dx):
    """dh = dy * t, dt = dy * (h - x), dx = dy * (1 - t), in one pass; no output may overlap an input."""
    one = np.ones(1, t.dtype)[0]
    for i in range(dy.size):
        g = dy[i]
        dt[i] = g * (h[i] - x[i])
        dx[i] = g * (one - t[i])
        dh[i] = g * t[i]


@_kernel
def relu_forward_kernel(x, out):
    zero = np.zeros(1, x.dtype)[0]  # 0 in the array's dtype (a literal 0 would promote the loop to float64)
    if _same_data(x, out):
        for i in range(x.size):
            x[i] = zero if x[i] <= zero else x[i] + zero  # NaN passes, as np.maximum; + 0: "Unconditional stores"
    else:
        for i in range(x.size):
            out[i] = zero if x[i] <= zero else x[i]


@_kernel
def relu_backward_kernel(dy, y, out):
    zero = np.zeros(1, y.dtype)[0]
    if _same_data(dy, out):
        for i in range(y.size):
            dy[i] = dy[i] if y[i] > zero else zero  # 0 at the kink and where dy is inf or NaN
    else:
        for i in range(y.size):
            out[i] = dy[i] if y[i] > zero else zero


@_kernel
def add_kernel(a, b, out):
    if _same_data(a, out):
        for i in range(a.size):
            a[i] += b[i]
    elif _same_data(b, out):
        for i in range(a.size):
            b[i] += a[i]
    else:
        for i in range(a.size):
            out[i] = a[i] + b[i]


@_kernel
def bias_add_forward_kernel(z, b, out):
    n, d = z.shape
    in_place = _same_data(z, out)
    for r in range(n):
        if in_place:
            for c in range(d):
                z[r, c] += b[c]
        else:
            for c in range(d):
                out[r, c] = z[r, c] + b[c]


@_kernel
def affine_columns_kernel(x, scale, shift, out):
    """out = x*scale + shift per column of (N, D) x: batch_norm_inference with its (D,) affine map."""
    n, d = x.shape
    in_place = _same_data(x, out)
    for r in range(n):
        if in_place:
            for c in range(d):
                x[r, c] = x[r, c] * scale[c] + shift[c]
        else:
            for c in range(d):
                out[r, c] = x[r, c] * scale[c] + shift[c]


# ---- normalization kernels -----------------------------------------------------------------------
# Statistics are float64. Batch norm's forward takes them in one pass of shifted sums over the
# rows (below), its backward in one pass for both column sums; a second pass writes the result.
# Column sums accumulate in float64 vectors across columns, four rows per update (vectorized
# without reassociation). The kernels stream over whole rows: keeping blocks of columns in L2
# between the passes measured slower on the 2-core machine (short row segments at a large stride
# defeat the prefetcher; 0.38 against 0.57 of copy at 4096 x 4096 float32), so the serial kernels
# run one block of all columns and the `_parallel` variants split the columns among threads. Layer
# norm works row by row (a row stays in L1/L2); its row sums are reductions along the vector, which
# LLVM vectorizes only with "reassoc": those kernels allow it (their float64 sums then run in a
# fixed, vector-lane order). They use NumPy's error model (a division by zero gives inf, as in the
# reference): Python's checks every division, which stops vectorization.
#
# One pass of shifted sums: S1, S2 of the deviations from k, the float64 mean of the first
# SHIFT_ROWS values, give mean = k + S1/n and var = S2/n - (S1/n)^2, losing only a factor
# 1 + (mean - k)^2/var (about 1 + 1/SHIFT_ROWS) of float64's precision however large a common
# offset; a constant column of float32 values gives var = 0 exactly.
SHIFT_ROWS = 8


@_kernel(error_model="numpy")
def _shifted_statistics(k, s1, s2, n):
    """(mean, biased variance) in float64 from the sums s1, s2 of n deviations from k."""
    centre = s1 / n
    return k + centre, max(s2 / n - centre * centre, 0.0)


@_kernel(error_model="numpy")
def _column(c0, j):
    """Column c0 + j of a block as an unsigned index: Numba then emits no negative-index wraparound,
    which LLVM cannot rule out for a block start and which would stop the loop's vectorization."""
    return np.uint64(c0 + j)


@_kernel(error_model="numpy")
def _batch_norm_forward_columns(x, gamma, beta, eps, momentum, update_running, running_mean, running_var, c0, w,
                                out, mean, rstd):
    """Batch norm of columns [c0, c0 + w): shifted float64 sums, then y = x*scale + shift (scale =
    gamma*rstd, shift = beta - mean*scale in the dtype, as the reference); running statistics in float64."""
    n = x.shape[0]
    in_place = _same_data(x, out)
    shift64 = np.zeros(w, np.float64)
    sums = np.zeros(w, np.float64)
    squares = np.zeros(w, np.float64)
    scale = np.empty(w, x.dtype)
    shift = np.empty(w, x.dtype)
    head = min(n, SHIFT_ROWS)
    for r in range(head):
        for j in range(w):
            shift64[j] += x[r, _column(c0, j)]
    for j in range(w):
        shift64[j] /= head
    for r in range(0, n - 3, 4):  # four rows per update of the accumulators (1 - 3 more below)
        for j in range(w):
            c, k = _column(c0, j), shift64[j]
            d0, d1, d2, d3 = x[r, c] - k, x[r + 1, c] - k, x[r + 2, c] - k, x[r + 3, c] - k
            sums[j] += (d0 + d1) + (d2 + d3)
            squares[j] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
    for r in range(n - n % 4, n):
        for j in range(w):
            deviation = x[r, _column(c0, j)] - shift64[j]
            sums[j] += deviation
            squares[j] += deviation * deviation
    for j in range(w):  # in place: sums becomes the mean, squares the variance (vector loops, like those below)
        sums[j], squares[j] = _shifted_statistics(shift64[j], sums[j], squares[j], n)
    for j in range(w):
        c = _column(c0, j)
        mean[c] = sums[j]
        rstd[c] = 1.0 / math.sqrt(squares[j] + eps)
        scale[j] = gamma[c] * rstd[c]
        shift[j] = beta[c] - mean[c] * scale[j]
    if update_running:
        for j in range(w):
            c = _column(c0, j)
            running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * sums[j]
            running_var[c] = (1.0 - momentum) * running_var[c] + momentum * (squares[j] * n / (n - 1))
    for r in range(n):
        if in_place:
            for j in range(w):
                c = _column(c0, j)
                x[r, c] = x[r, c] * scale[j] + shift[j]
        else:
            for j in range(w):
                c = _column(c0, j)
                out[r, c] = x[r, c] * scale[j] + shift[j]


@_kernel(error_model="numpy")
def batch_norm_forward_kernel(x, gamma, beta, eps, momentum, update_running, running_mean, running_var, out, mean,
                              rstd):
    _batch_norm_forward_columns(x, gamma, beta, eps, momentum, update_running, running_mean, running_var, 0,
                                x.shape[1], out, mean, rstd)


@_kernel(parallel=True, error_model="numpy")
def batch_norm_forward_parallel_kernel(x, gamma, beta, eps, momentum, update_running, running_mean, running_var,
                                       block, out, mean, rstd):
    d = x.shape[1]
    for b in prange((d + block - 1) // block):
        _batch_norm_forward_columns(x, gamma, beta, eps, momentum, update_running, running_mean, running_var,
                                    b * block, min(block, d - b * block), out, mean, rstd)


@_kernel(error_model="numpy")
def _batch_norm_backward_columns(dy, x, gamma, mean, rstd, c0, w, dx, dgamma, dbeta):
    """Columns [c0, c0 + w): one pass for dbeta = sum dy and dgamma = sum dy*x_hat (float64), one
    that writes dx = gamma*rstd*(dy - dbeta/N - x_hat*dgamma/N)."""
    n = x.shape[0]
    in_place = _same_data(dy, dx)
    sum_dy = np.zeros(w, np.float64)
    sum_dy_xhat = np.zeros(w, np.float64)
    block_mean = np.empty(w, x.dtype)
    block_rstd = np.empty(w, x.dtype)
    a = np.empty(w, x.dtype)
    b = np.empty(w, x.dtype)
    k = np.empty(w, x.dtype)
    inverse_n = np.full(1, 1.0 / n, x.dtype)[0]  # in the dtype: a float64 scalar would promote the loops
    for j in range(w):
        block_mean[j] = mean[c0 + j]
        block_rstd[j] = rstd[c0 + j]
    for r in range(0, n - 3, 4):  # four rows per update of the accumulators (1 - 3 more below)
        for j in range(w):
            c = _column(c0, j)
            m, s = block_mean[j], block_rstd[j]
            g0, g1, g2, g3 = np.float64(dy[r, c]), np.float64(dy[r + 1, c]), np.float64(dy[r + 2, c]), \
                np.float64(dy[r + 3, c])
            sum_dy[j] += (g0 + g1) + (g2 + g3)
            sum_dy_xhat[j] += (g0 * ((x[r, c] - m) * s) + g1 * ((x[r + 1, c] - m) * s)) + \
                (g2 * ((x[r + 2, c] - m) * s) + g3 * ((x[r + 3, c] - m) * s))
    for r in range(n - n % 4, n):
        for j in range(w):
            c = _column(c0, j)
            g = np.float64(dy[r, c])
            sum_dy[j] += g
            sum_dy_xhat[j] += g * ((x[r, c] - block_mean[j]) * block_rstd[j])
    for j in range(w):
        c = c0 + j
        dbeta[c] = sum_dy[j]
        dgamma[c] = sum_dy_xhat[j]
        a[j] = gamma[c] * block_rstd[j]
        b[j] = dbeta[c] * inverse_n
        k[j] = dgamma[c] * inverse_n
    for r in range(n):
        if in_place:
            for j in range(w):
                c = _column(c0, j)
                x_hat = (x[r, c] - block_mean[j]) * block_rstd[j]
                dy[r, c] = a[j] * (dy[r, c] - b[j] - x_hat * k[j])
        else:
            for j in range(w):
                c = _column(c0, j)
                x_hat = (x[r, c] - block_mean[j]) * block_rstd[j]
                dx[r, c] = a[j] * (dy[r, c] - b[j] - x_hat * k[j])


@_kernel(error_model="numpy")
def batch_norm_backward_kernel(dy, x, gamma, mean, rstd, dx, dgamma, dbeta):
    _batch_norm_backward_columns(dy, x, gamma, mean, rstd, 0, x.shape[1], dx, dgamma, dbeta)


@_kernel(parallel=True, error_model="numpy")
def batch_norm_backward_parallel_kernel(dy, x, gamma, mean, rstd, block, dx, dgamma, dbeta):
    d = x.shape[1]
    for b in prange((d + block - 1) // block):
        _batch_norm_backward_columns(dy, x, gamma, mean, rstd, b * block, min(block, d - b * block), dx, dgamma, dbeta)


@_kernel(error_model="numpy")
def batch_norm_inference_backward_kernel(dy, x, scale, running_mean, rstd, dx, dgamma, dbeta):
    """One pass: dx = dy*scale (scale = gamma*rstd), dgamma = sum dy*(x - running_mean)*rstd and
    dbeta = sum dy accumulated in float64."""
    n, d = x.shape
    in_place = _same_data(dy, dx)
    sum_dy = np.zeros(d, np.float64)
    sum_dy_xhat = np.zeros(d, np.float64)
    for r in range(n):
        for c in range(d):
            g = dy[r, c]
            sum_dy[c] += g
            sum_dy_xhat[c] += g * ((x[r, c] - running_mean[c]) * rstd[c])
            if in_place:
                dy[r, c] = g * scale[c]
            else:
                dx[r, c] = g * scale[c]
    for c in range(d):
        dbeta[c] = sum_dy[c]
        dgamma[c] = sum_dy_xhat[c]


@_kernel(fastmath={"contract", "reassoc"}, error_model="numpy")
def _layer_norm_forward_row(x, gamma, beta, eps, r, out, mean, rstd):
    """Row r: shifted float64 sums (one pass), then y = (x - mean)*rstd*gamma + beta in the dtype."""
    d = x.shape[1]
    head = min(d, SHIFT_ROWS)
    k = 0.0
    for c in range(head):
        k += x[r, c]
    k /= head
    s1 = 0.0
    s2 = 0.0
    for c in range(d):
        deviation = x[r, c] - k
        s1 += deviation
        s2 += deviation * deviation
    mean64, var64 = _shifted_statistics(k, s1, s2, d)
    mean[r] = mean64
    rstd[r] = 1.0 / math.sqrt(var64 + eps)
    m, s = mean[r], rstd[r]
    if _same_data(x, out):
        for c in range(d):
            x[r, c] = (x[r, c] - m) * s * gamma[c] + beta[c]
    else:
        for c in range(d):
            out[r, c] = (x[r, c] - m) * s * gamma[c] + beta[c]


@_kernel(fastmath={"contract", "reassoc"}, error_model="numpy")
def layer_norm_forward_kernel(x, gamma, beta, eps, out, mean, rstd):
    for r in range(x.shape[0]):
        _layer_norm_forward_row(x, gamma, beta, eps, r, out, mean, rstd)


@_kernel(fastmath={"contract", "reassoc"}, parallel=True, error_model="numpy")
def layer_norm_forward_parallel_kernel(x, gamma, beta, eps, out, mean, rstd):
    for r in prange(x.shape[0]):
        _layer_norm_forward_row(x, gamma, beta, eps, r, out, mean, rstd)


@_kernel(fastmath={"contract", "reassoc"}, error_model="numpy")
def _layer_norm_backward_rows(dy, x, gamma, mean, rstd, begin, end, dx, column_sums):
    """Rows [begin, end): per row, one pass for the row sums of g = dy*gamma and g*x_hat (float64)
    and the column sums of dy and dy*x_hat (written to the float64 (2, D) column_sums), one that
    writes dx = rstd*(g - mean(g) - x_hat*mean(g*x_hat))."""
    d = x.shape[1]
    in_place = _same_data(dy, dx)
    sum_dy = np.zeros(d, np.float64)  # local: LLVM then knows it aliases no operand
    sum_dy_xhat = np.zeros(d, np.float64)
    row_means = np.empty(2, x.dtype)  # mean(g), mean(g*x_hat) of a row, rounded to the dtype
    for r in range(begin, end):
        m, s = mean[r], rstd[r]
        sum_g = 0.0
        sum_g_xhat = 0.0
        for c in range(d):
            x_hat = (x[r, c] - m) * s
            g = dy[r, c]
            gg = g * gamma[c]
            sum_g += gg
            sum_g_xhat += gg * x_hat
            sum_dy[c] += g
            sum_dy_xhat[c] += g * x_hat
        row_means[0] = sum_g / d
        row_means[1] = sum_g_xhat / d
        g_mean, gx_mean = row_means[0], row_means[1]
        if in_place:
            for c in range(d):
                x_hat = (x[r, c] - m) * s
                dy[r, c] = (dy[r, c] * gamma[c] - g_mean - x_hat * gx_mean) * s
        else:
            for c in range(d):
                x_hat = (x[r, c] - m) * s
                dx[r, c] = (dy[r, c] * gamma[c] - g_mean - x_hat * gx_mean) * s
    column_sums[0] = sum_dy
    column_sums[1] = sum_dy_xhat


@_kernel(fastmath={"contract", "reassoc"}, error_model="numpy")
def layer_norm_backward_kernel(dy, x, gamma, mean, rstd, dx, dgamma, dbeta):
    column_sums = np.empty((2, x.shape[1]), np.float64)
    _layer_norm_backward_rows(dy, x, gamma, mean, rstd, 0, x.shape[0], dx, column_sums)
    for c in range(x.shape[1]):
        dbeta[c] = column_sums[0, c]
        dgamma[c] = column_sums[1, c]


@_kernel(fastmath={"contract", "reassoc"}, parallel=True, error_model="numpy")
def layer_norm_backward_parallel_kernel(dy, x, gamma, mean, rstd, chunks, dx, dgamma, dbeta):
    """Row chunks in parallel, each with its own float64 column sums, added in chunk order."""
    n, d = x.shape
    sums = np.zeros((chunks, 2, d), np.float64)  # per chunk: sum dy, sum dy*x_hat
    rows = (n + chunks - 1) // chunks
    for i in prange(chunks):
        _layer_norm_backward_rows(dy, x, gamma, mean, rstd, min(n, i * rows), min(n, (i + 1) * rows), dx, sums[i])
    for c in range(d):
        total_dy = 0.0
        total_dy_xhat = 0.0
        for i in range(chunks):
            total_dy += sums[i, 0, c]
            total_dy_xhat += sums[i, 1, c]
        dbeta[c] = total_dy
        dgamma[c] = total_dy_xhat


# ---- weight normalization over (D_in, D_out) weights: one norm per column -------------------

@_kernel(error_model="numpy")
def weight_norm_forward_kernel(v, g, out, norm):
    """norm_j = ||v[:, j]|| (summed in float64, as the reference), out = v * (g/norm); returns the
    first all-zero column (nothing written to out then), else -1. out may be v."""
    d_in, d_out = v.shape
    sums = np.zeros(d_out, np.float64)  # (D_out,)
    for i in range(d_in):
        for j in range(d_out):
            x = np.float64(v[i, j])
            sums[j] += x * x
    for j in range(d_out):
        if sums[j] == 0.0:
            return j
    scale = np.empty(d_out, v.dtype)  # g/norm in the dtype, as the reference divides the stored norm
    for j in range(d_out):
        norm[j] = math.sqrt(sums[j])
        scale[j] = g[j] / norm[j]
    if _same_data(v, out):
        for i in range(d_in):
            for j in range(d_out):
                v[i, j] *= scale[j]
    else:
        for i in range(d_in):
            for j in range(d_out):
                out[i, j] = v[i, j] * scale[j]
    return -1


@_kernel(error_model="numpy")
def weight_norm_backward_kernel(dw, v, g, norm, dv, dg):
    """dg = sum_i dw*v / norm (summed in float64), dv = (g/norm) * (dw - v * dg/norm); dv may be dw."""
    d_in, d_out = v.shape
    sums = np.zeros(d_out, np.float64)  # (D_out,)
    for i in range(d_in):
        for j in range(d_out):
            sums[j] += np.float64(dw[i, j]) * np.float64(v[i, j])
    projection, scale = np.empty(d_out, v.dtype), np.empty(d_out, v.dtype)  # dg/norm, g/norm
    for j in range(d_out):
        dg[j] = sums[j] / norm[j]
        projection[j] = dg[j] / norm[j]
        scale[j] = g[j] / norm[j]
    if _same_data(dw, dv):
        for i in range(d_in):
            for j in range(d_out):
                dw[i, j] = (dw[i, j] - v[i, j] * projection[j]) * scale[j]
    else:
        for i in range(d_in):
            for j in range(d_out):
                dv[i, j] = (dw[i, j] - v[i, j] * projection[j]) * scale[j]


def kernels_are_cached() -> bool:
    """Whether compiled kernels are stored on disk for later processes (a writable cache location)."""
    return type(selu_forward_kernel._cache).__name__ != "NullCache"


# The kernels of the backend's ops: name -> (kernel, signature for ahead-of-time compilation,
# with F standing for float32 or float64 and [::1] for C-contiguous). A name is the op's own
# (minisnn.backends.base.OPS), or the op's name and a detail where an op has several kernels.
KERNELS = {
    "selu_forward": (selu_forward_kernel, "void(F[::1], F, F, F[::1])"),
    "selu_backward": (selu_backward_kernel, "void(F[::1], F[::1], F, F, F[::1])"),
    "alpha_dropout_forward": (alpha_dropout_forward_kernel, "void(F[:, ::1], u4, u4, u4, u4, F, F, F, F[:, ::1])"),
    "alpha_dropout_backward": (alpha_dropout_backward_kernel, "void(F[:, ::1], u4, u4, u4, u4, F, F[:, ::1])"),
    "bias_selu_forward": (bias_selu_forward_kernel, "void(F[:, ::1], F[::1], F, F, F[:, ::1])"),
    "bias_selu_dropout_forward": (bias_selu_dropout_forward_kernel,
                                  "void(F[:, ::1], F[::1], F, F, u4, u4, u4, u4, F, F, F, F[:, ::1])"),
    "bias_selu_backward": (bias_selu_backward_kernel, "void(F[:, ::1], F[:, ::1], F, F, F[:, ::1], F[::1])"),
    "bias_selu_dropout_backward": (bias_selu_dropout_backward_kernel,
                                   "void(F[:, ::1], F[:, ::1], F, F, u4, u4, u4, u4, F, F, F, F[:, ::1], F[::1])"),
    "bias_selu_dropout_backward_from_output": (bias_selu_dropout_backward_from_output_kernel,
                                               "void(F[:, ::1], F[:, ::1], F, F, F, F, F, F, F[:, ::1], F[::1])"),
    "column_sum": (column_sum_kernel, "void(F[:, ::1], F[::1])"),
    "softmax_cross_entropy_forward": (softmax_cross_entropy_forward_kernel, "f8(F[:, ::1], i8[::1], F[:, ::1])"),
    "softmax_cross_entropy_backward": (softmax_cross_entropy_backward_kernel, "i8(F[:, ::1], i8[::1], F, F[:, ::1])"),
    "sgd_update": (sgd_update_kernel, "void(F[::1], F[::1], F, F)"),
    "sgd_update_momentum": (sgd_update_momentum_kernel, "void(F[::1], F[::1], F[::1], F, F, F, b1)"),
    "adam_update": (adam_update_kernel, "void(F[::1], F[::1], F[::1], F[::1], F, F, F, F, F, F, F, F)"),
    "sigmoid_forward": (sigmoid_forward_kernel, "void(F[::1], F[::1])"),
    "sigmoid_backward": (sigmoid_backward_kernel, "void(F[::1], F[::1], F[::1])"),
    "tanh_backward": (tanh_backward_kernel, "void(F[::1], F[::1], F[::1])"),
    "highway_forward": (highway_forward_kernel, "void(F[::1], F[::1], F[::1], F[::1])"),
    "highway_backward": (highway_backward_kernel, "void(F[::1], F[::1], F[::1], F[::1], F[::1], F[::1], F[::1])"),
    "relu_forward": (relu_forward_kernel, "void(F[::1], F[::1])"),
    "relu_backward": (relu_backward_kernel, "void(F[::1], F[::1], F[::1])"),
    "add": (add_kernel, "void(F[::1], F[::1], F[::1])"),
    "bias_add_forward": (bias_add_forward_kernel, "void(F[:, ::1], F[::1], F[:, ::1])"),
    "batch_norm_inference": (affine_columns_kernel, "void(F[:, ::1], F[::1], F[::1], F[:, ::1])"),
    "batch_norm_forward": (batch_norm_forward_kernel,
                           "void(F[:, ::1], F[::1], F[::1], f8, f8, b1, F[::1], F[::1], F[:, ::1], F[::1], F[::1])"),
    "batch_norm_backward": (batch_norm_backward_kernel,
                            "void(F[:, ::1], F[:, ::1], F[::1], F[::1], F[::1], F[:, ::1], F[::1], F[::1])"),
    "batch_norm_inference_backward": (batch_norm_inference_backward_kernel,
                                      "void(F[:, ::1], F[:, ::1], F[::1], F[::1], F[::1], F[:, ::1], F[::1], F[::1])"),
    "weight_norm_forward": (weight_norm_forward_kernel, "i8(F[:, ::1], F[::1], F[:, ::1], F[::1])"),
    "weight_norm_backward": (weight_norm_backward_kernel,
                             "void(F[:, ::1], F[:, ::1], F[::1], F[::1], F[:, ::1], F[::1])"),
    "layer_norm_forward": (layer_norm_forward_kernel,
                           "void(F[:, ::1], F[::1], F[::1], f8, F[:, ::1], F[::1], F[::1])"),
    "layer_norm_backward": (layer_norm_backward_kernel,
                            "void(F[:, ::1], F[:, ::1], F[::1], F[::1], F[::1], F[:, ::1], F[::1], F[::1])"),
}

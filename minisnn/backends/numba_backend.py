"""The Numba backend: fused, vectorized CPU kernels (numba_kernels.py) for the SELU, ReLU, bias add,
residual sum, dropout, batch and layer norm, softmax cross-entropy and optimizer ops; matmul goes
to BLAS, and every other op runs its default body (minisnn.backends.base) on NumPy.

Kernels see C-contiguous arrays only: elementwise ops run over the flat array, bias and dropout
ops over (rows, d) views. A non-contiguous input is copied first, and a non-contiguous `out` is
filled via a temporary; with contiguous operands and `out=` (or `dz=`, `db=`) given, no op
allocates. Compiled kernels check nothing, so every wrapper here hands them arrays of the exact
dtype, rank and layout; an op whose kernel a stale compiled module lacks fails naming it.

Where the kernels come from (`kernels=`, default $MINISNN_NUMBA_KERNELS, else "auto"):
- "compiled": the ahead-of-time module of numba_aot.py, built once per machine; the process then
  never imports Numba (about 120 MiB less memory, no JIT start-up);
- "jit": numba.njit with Numba's disk cache;
- "auto": compiled where it can be built, else jit (info()["kernels"] says which, and why).
Both give the same bits. The slower variants (v1_..., v2_parallel) always jit.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import math
import os
import sys

import numpy as np

from ..rng import MASK32, MAX_ELEMENTS, DropoutMask
from .base import Backend, BackendUnavailable, aligned_host_array, missing_velocity

if importlib.util.find_spec("numba") is None:  # checked without importing it: compiled kernels do not need it
    raise BackendUnavailable("the numba backend needs Numba: pip install 'minisnn[numba]'")

KERNELS_ENV = "MINISNN_NUMBA_KERNELS"
KERNEL_SOURCES = ("auto", "compiled", "jit")


# ---- wrappers: validation, layout, scalars --------------------------------------------------

# The wrappers run once per op call, a few dozen times per training step: with small layers their
# checks cost as much as the kernels, so the common case (contiguous operands of one float dtype,
# shapes that match) takes identity tests and plain loops, and the slow path names the problem.
_F32, _F64, _I64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)
_FLOAT_DTYPES = (_F32, _F64)


def _float_dtype(first: np.ndarray, *others: np.ndarray) -> np.dtype:
    """The common float dtype of the operands, or a ValueError naming the mismatch."""
    dtype = first.dtype
    if dtype is _F32 or dtype is _F64:  # NumPy's canonical dtype objects: the common case
        for a in others:
            if a.dtype is not dtype:
                break
        else:
            return dtype
    if dtype in _FLOAT_DTYPES and all(a.dtype == dtype for a in others):
        return dtype
    names = sorted({str(a.dtype) for a in (first, *others)})
    raise ValueError(f"numba backend ops need operands of one dtype, float32 or float64; got {names}")


def _contiguous(a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _target(out: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype, name: str = "out") -> np.ndarray:
    """The array a kernel writes: `out` itself when C-contiguous, else a fresh C array."""
    if out is None:
        return aligned_host_array(shape, dtype)
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"{name} must have shape {shape} and dtype {dtype}, got {out.shape} {out.dtype}")
    flags = out.flags
    if not flags.writeable:
        raise ValueError(f"{name} is read-only")
    return out if flags.c_contiguous else aligned_host_array(shape, dtype)


def _deliver(target: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """Copy the kernel's result into a non-contiguous `out`; return the array the op returns."""
    if out is None or out is target:
        return target
    np.copyto(out, target)
    return out


def _check_same_shape(names: tuple[str, ...], first: np.ndarray, *others: np.ndarray) -> None:
    shape = first.shape
    for a in others:
        if a.shape != shape:
            shapes = ", ".join(f"{name} {a.shape}" for name, a in zip(names, (first, *others)))
            raise ValueError(f"operands must have equal shapes, got {shapes}")


def _check_updatable(op: str, *named) -> None:
    """Arrays an op updates in place (name, array, name, array, ...) must be C-contiguous and writeable."""
    for name, a in zip(named[::2], named[1::2]):
        flags = a.flags
        if not (flags.c_contiguous and flags.writeable):
            raise ValueError(f"{op} updates {name} in place: it must be C-contiguous and writeable")


def _check_rows(z: np.ndarray, b: np.ndarray) -> None:
    if z.ndim != 2 or b.shape != (z.shape[1],):
        raise ValueError(f"expected z (N, D) and b (D,), got z {z.shape} and b {b.shape}")


def _check_features(x: np.ndarray, **vectors: np.ndarray) -> tuple[int, int]:
    """(N, D) of x, after checking that x is 2-D and every named vector has shape (D,)."""
    if x.ndim != 2:
        raise ValueError(f"expected x of shape (N, D), got {x.shape}")
    for name, v in vectors.items():
        if v.shape != (x.shape[1],):
            raise ValueError(f"{name} must have shape ({x.shape[1]},) to match x {x.shape}, got {v.shape}")
    return x.shape


def _parallel_block(d: int) -> int:
    """Columns per block of the parallel batch norm variants: about one block per thread, whole cache lines."""
    import numba

    block = -(-d // numba.get_num_threads())
    return max(1, min(d, block + -block % 16))


def _mask_values(mask: DropoutMask, shape: tuple[int, ...], d: int) -> tuple:
    """(k0, k1, threshold, row_step, scale, shift, dropped) of a dropout kernel over (rows, d), as
    Python numbers: element (r, c) keeps by the hash of r*row_step + c, its flat index when
    row_step = d; a per-feature mask hashes the column alone (row_step 0)."""
    size = math.prod(shape)
    if size > MAX_ELEMENTS:
        raise ValueError(f"dropout input has {size} elements; at most 2^32 - 1 are supported")
    return (mask.k0 & MASK32, mask.k1 & MASK32, mask.threshold, 0 if mask.per_feature else d, mask.scale, mask.shift,
            mask.dropped)


def _typed_mask(values: tuple, dtype: np.dtype) -> tuple:
    """_mask_values as a jitted kernel needs them: the hash words uint32 (a Python int would be
    int64 in Numba and widen the hash), the floats in the operands' dtype."""
    return (*map(np.uint32, values[:4]), *map(dtype.type, values[4:]))


def _mask_args(mask: DropoutMask, shape: tuple[int, ...], d: int, dtype: np.dtype) -> tuple:
    """The typed arguments of a jitted dropout kernel (see _mask_values)."""
    return _typed_mask(_mask_values(mask, shape, d), dtype)


def _dropout_width(shape: tuple[int, ...], mask: DropoutMask, split_rows: bool = False) -> int:
    """d of the (rows, d) view a dropout kernel runs over: the last axis for a per-feature mask
    (or with split_rows), else all elements in one row (the longest vectorized loop)."""
    if mask.per_feature or split_rows:
        return shape[-1] if shape else 1
    return math.prod(shape)


def _dropped_is_saturation(mask: DropoutMask, alpha: float, lam: float, dtype: np.dtype) -> bool:
    """Whether the mask's dropped value is SELU's saturation -lam*alpha under the mask's affine
    map (alpha dropout for this SELU), up to rounding in the dtype: then no kept output lies below
    it and the fused backward may tell dropped elements by their value."""
    saturation = lam * alpha
    selu_of_dropped = (mask.dropped - mask.shift) / mask.scale
    return mask.scale > 0 and abs(selu_of_dropped + saturation) <= 4 * np.finfo(dtype).eps * saturation


def _as_rows(a: np.ndarray, d: int) -> np.ndarray:
    """A contiguous array as a (size // d, d) view."""
    return a.reshape(a.size // d if d else 0, d)


def _selu_args(alpha: float, lam: float, dtype: np.dtype) -> tuple:
    return dtype.type(lam), dtype.type(lam * alpha)


@functools.lru_cache(maxsize=64)
def _inverse(value: float, dtype: np.dtype):
    """1 / value divided in the dtype (a NumPy scalar: kernels of both sources take it)."""
    return dtype.type(1) / dtype.type(value)


@functools.lru_cache(maxsize=16)
def _adam_scalars(lr, beta1, beta2, eps, weight_decay, step, decoupled, dtype: np.dtype) -> tuple:
    """(decay, l2, beta1, 1 - beta1, beta2, 1 - beta2, corrected step, corrected eps) of
    adam_update_kernel in the dtype: the bias corrections of step `step` folded in once, in
    float64, and kept for the step's other parameters (an optimizer updates every array of a
    model with the same step)."""
    if step < 1:
        raise ValueError(f"step is the 1-based count of Adam steps (it sets the bias corrections), got {step}")
    scalar = dtype.type
    decay, l2 = (1.0 - lr * weight_decay, 0.0) if decoupled else (1.0, weight_decay)
    root_correction2 = math.sqrt(1.0 - beta2 ** step)
    return (scalar(decay), scalar(l2), scalar(beta1), scalar(1.0 - beta1), scalar(beta2), scalar(1.0 - beta2),
            scalar(lr * root_correction2 / (1.0 - beta1 ** step)), scalar(eps * root_correction2))


def _flat(a: np.ndarray) -> np.ndarray:
    """A contiguous array as a flat view (C order)."""
    return a.ravel()


def _sgd_arrays(param, grad, velocity) -> tuple[np.dtype, tuple]:
    """(dtype, flat arrays) of sgd_update: param, grad and the velocity unless it is None, checked
    for one float dtype and equal shapes, param and velocity C-contiguous and writeable (updated in
    place); a non-contiguous grad is copied."""
    if velocity is None:
        dtype = _float_dtype(param, grad)
        _check_same_shape(("param", "grad"), param, grad)
        _check_updatable("sgd_update", "param", param)
        return dtype, (param.ravel(), _flat(_contiguous(grad)))
    dtype = _float_dtype(param, grad, velocity)
    _check_same_shape(("param", "grad", "velocity"), param, grad, velocity)
    _check_updatable("sgd_update", "param", param, "velocity", velocity)
    return dtype, (param.ravel(), _flat(_contiguous(grad)), velocity.ravel())


def _adam_arrays(param, grad, m, v) -> tuple[np.dtype, tuple]:
    """(dtype, flat arrays) of adam_update, checked as _sgd_arrays checks them."""
    dtype = _float_dtype(param, grad, m, v)
    _check_same_shape(("param", "grad", "m", "v"), param, grad, m, v)
    _check_updatable("adam_update", "param", param, "m", m, "v", v)
    return dtype, (param.ravel(), _flat(_contiguous(grad)), m.ravel(), v.ravel())


class _KernelTable(dict):
    """(kernel name, dtype) -> kernel; looking up a kernel it lacks raises an error naming it and
    where the table came from (a compiled module built from other sources, or an op calling a
    kernel that numba_kernels.KERNELS does not list)."""

    def __init__(self, kernels: dict, source: str):
        super().__init__(kernels)
        self.source = source

    def __missing__(self, key: tuple[str, np.dtype]):
        name, dtype = key
        raise RuntimeError(f"the Numba kernel {name!r} for {np.dtype(dtype).name} is missing from the {self.source} "
                           f"kernels; rebuild them (python -m minisnn.backends.numba_aot) or use kernels='jit'")


@functools.cache
def _load_kernels(source: str) -> tuple[_KernelTable, str]:
    """(op kernel name, dtype) -> kernel, and a description of where the kernels come from."""
    reason = ""
    if source != "jit":
        from . import numba_aot

        module, where = numba_aot.load()
        if module is not None:
            table = {}
            for attribute in dir(module):
                name, _, code = attribute.rpartition("_")
                if code in numba_aot.DTYPES_BY_CODE:
                    table[name, numba_aot.DTYPES_BY_CODE[code]] = getattr(module, attribute)
            description = f"compiled ({where})"
            return _KernelTable(table, description), description
        if source == "compiled":
            raise BackendUnavailable(f"compiled Numba kernels are unavailable: {where}")
        reason = f" (compiled kernels unavailable: {where})"
    from . import numba_kernels

    table = {(name, dtype): kernel for name, (kernel, _) in numba_kernels.KERNELS.items() for dtype in _FLOAT_DTYPES}
    return _KernelTable(table, "jit" + reason), "jit" + reason


def _jit_kernel(name: str):
    """A variant's kernel (always jitted), by its name in numba_kernels."""
    from . import numba_kernels

    return getattr(numba_kernels, name)


class NumbaBackend(Backend):
    name = "numba"
    xp = np

    def __init__(self, dtype="float32", kernels: str | None = None):
        super().__init__(dtype=dtype)
        source = (kernels or os.environ.get(KERNELS_ENV) or "auto").strip().lower()
        if source not in KERNEL_SOURCES:
            raise ValueError(f"kernels must be one of {KERNEL_SOURCES}, got {source!r}")
        self._kernels, self.kernel_source = _load_kernels(source)  # (name, dtype) -> callable; a description
        self._compiled = self.kernel_source.startswith("compiled")
        self.register_variant("selu_forward", "v1_libm_expm1", self._selu_forward_libm)
        self.register_variant("selu_forward", "v2_parallel", self._selu_forward_parallel)
        self.register_variant("alpha_dropout_forward", "v1_widening_hash", self._alpha_dropout_forward_widening)
        self.register_variant("alpha_dropout_forward", "v2_parallel", self._alpha_dropout_forward_parallel)
        self.register_variant("bias_selu_backward", "v1_two_pass", self._bias_selu_backward_two_pass)
        self.register_variant("bias_selu_dropout_backward", "v1_regenerated_mask",
                              self._bias_selu_dropout_backward_regenerated)
        for op in ("batch_norm_forward", "batch_norm_backward", "layer_norm_forward", "layer_norm_backward"):
            self.register_variant(op, "v2_parallel", getattr(self, f"_{op}_parallel"))

    def info(self) -> dict:
        info = super().info()
        info.update(numba=importlib.metadata.version("numba"), kernels=self.kernel_source)
        if "numba" in sys.modules:  # only where this process jits: importing Numba costs memory
            import numba

            info.update(numba_threads=numba.config.NUMBA_NUM_THREADS,
                        numba_threading_layer=numba.config.THREADING_LAYER)
        return info

    def matmul(self, a, b, out=None):
        return np.matmul(a, b, out=out)

    # Scalars of the op kernels: the compiled kernels take Python numbers (their wrappers round a
    # float to the kernel's dtype as dtype.type does, and a NumPy scalar costs about 0.2 us to make);
    # jitted kernels get them typed, since Numba types a Python float as float64 (a float64 loop)
    # and a Python int as int64 (a widened hash).
    def _floats(self, dtype: np.dtype, *values) -> tuple:
        return values if self._compiled else tuple(map(dtype.type, values))

    def _selu_scalars(self, alpha, lam, dtype: np.dtype) -> tuple:
        return (lam, lam * alpha) if self._compiled else _selu_args(alpha, lam, dtype)

    def _mask_scalars(self, mask: DropoutMask, shape: tuple[int, ...], d: int, dtype: np.dtype) -> tuple:
        values = _mask_values(mask, shape, d)
        return values if self._compiled else _typed_mask(values, dtype)

    # ---- SELU ---------------------------------------------------------------------------
    def _elementwise(self, kernel, inputs, out, *scalars):
        """Run a flat elementwise kernel (an op kernel's name, or a variant's jitted kernel):
        inputs (same shape), scalars, then the output."""
        dtype = _float_dtype(*inputs)
        _check_same_shape(("first operand", "second operand"), *inputs)
        target = _target(out, inputs[0].shape, dtype)
        kernel = self._kernels[kernel, dtype] if isinstance(kernel, str) else kernel
        kernel(*[_flat(a if a.flags.c_contiguous else np.ascontiguousarray(a)) for a in inputs], *scalars,
               target.ravel())
        return target if out is None or out is target else _deliver(target, out)

    def selu_forward(self, x, alpha, lam, out=None):
        return self._elementwise("selu_forward", (x,), out, *self._selu_scalars(alpha, lam, x.dtype))

    def _selu_forward_parallel(self, x, alpha, lam, out=None):
        return self._elementwise(_jit_kernel("selu_forward_parallel_kernel"), (x,), out, *_selu_args(alpha, lam, x.dtype))

    def _selu_forward_libm(self, x, alpha, lam, out=None):
        return self._elementwise(_jit_kernel("selu_forward_libm_kernel"), (x,), out, *_selu_args(alpha, lam, x.dtype))

    def selu_backward(self, dy, y, alpha, lam, out=None):
        return self._elementwise("selu_backward", (dy, y), out, *self._selu_scalars(alpha, lam, y.dtype))

    def bias_selu_forward(self, z, b, alpha, lam, out=None):
        _check_rows(z, b)
        dtype = _float_dtype(z, b)
        target = _target(out, z.shape, dtype)
        self._kernels["bias_selu_forward", dtype](_contiguous(z), _contiguous(b), *self._selu_scalars(alpha, lam, dtype),
                                                  target)
        return _deliver(target, out)

    def _row_backward(self, kernel, dy, y, scalars, dz, db):
        """Run the fused (dz, db) op kernel named `kernel` over (N, D) operands."""
        if y.ndim != 2:
            raise ValueError(f"expected (N, D) operands, got shape {y.shape}")
        _check_same_shape(("dy", "y"), dy, y)
        dtype = _float_dtype(dy, y)
        dz_target = _target(dz, y.shape, dtype, "dz")
        db_target = _target(db, (y.shape[1],), dtype, "db")
        self._kernels[kernel, dtype](_contiguous(dy), _contiguous(y), *scalars, dz_target, db_target)
        if dz is dz_target and db is db_target:
            return dz, db
        return _deliver(dz_target, dz), _deliver(db_target, db)

    def bias_selu_backward(self, dy, y, alpha, lam, dz=None, db=None):
        return self._row_backward("bias_selu_backward", dy, y, self._selu_scalars(alpha, lam, y.dtype), dz, db)

    def _bias_selu_backward_two_pass(self, dy, y, alpha, lam, dz=None, db=None):
        dz = self.selu_backward(dy, y, alpha, lam, out=dz)
        return dz, self.column_sum(dz, out=db)

    def column_sum(self, x, out=None):
        if x.ndim != 2:
            raise ValueError(f"column_sum expects (N, D), got shape {x.shape}")
        dtype = _float_dtype(x)
        target = _target(out, (x.shape[1],), dtype)
        self._kernels["column_sum", dtype](_contiguous(x), target)
        return _deliver(target, out)

    # ---- alpha dropout ------------------------------------------------------------------
    def _dropout_operands(self, x, mask: DropoutMask, out, split_rows=False, jit=False):
        """(x as (rows, d), the mask arguments, the target as (rows, d), the target) of a dropout
        kernel: an op kernel's, or with `jit` a variant's (typed arguments)."""
        dtype = _float_dtype(x)
        d = _dropout_width(x.shape, mask, split_rows)
        target = _target(out, x.shape, dtype)
        args = _mask_args(mask, x.shape, d, dtype) if jit else self._mask_scalars(mask, x.shape, d, dtype)
        return _as_rows(_contiguous(x), d), args, _as_rows(target, d), target

    def alpha_dropout_forward(self, x, mask: DropoutMask, out=None):
        rows, args, target_rows, target = self._dropout_operands(x, mask, out)
        self._kernels["alpha_dropout_forward", rows.dtype](rows, *args, target_rows)
        return _deliver(target, out)

    def _alpha_dropout_forward_parallel(self, x, mask: DropoutMask, out=None):
        # Rows of the last axis even for element masks: prange splits the rows among threads.
        rows, args, target_rows, target = self._dropout_operands(x, mask, out, split_rows=True, jit=True)
        _jit_kernel("alpha_dropout_forward_parallel_kernel")(rows, *args, target_rows)
        return _deliver(target, out)

    def _alpha_dropout_forward_widening(self, x, mask: DropoutMask, out=None):
        rows, args, target_rows, target = self._dropout_operands(x, mask, out, jit=True)
        _jit_kernel("alpha_dropout_forward_widening_kernel")(rows, *(int(a) for a in args[:4]), *args[4:], target_rows)
        return _deliver(target, out)

    def alpha_dropout_backward(self, dy, mask: DropoutMask, out=None):
        rows, (k0, k1, threshold, row_step, scale, _, _), target_rows, target = self._dropout_operands(dy, mask, out)
        self._kernels["alpha_dropout_backward", rows.dtype](rows, k0, k1, threshold, row_step, scale, target_rows)
        return _deliver(target, out)

    def bias_selu_dropout_forward(self, z, b, mask: DropoutMask, alpha, lam, out=None):
        _check_rows(z, b)
        dtype = _float_dtype(z, b)
        target = _target(out, z.shape, dtype)
        self._kernels["bias_selu_dropout_forward", dtype](_contiguous(z), _contiguous(b),
                                                          *self._selu_scalars(alpha, lam, dtype),
                                                          *self._mask_scalars(mask, z.shape, z.shape[1], dtype), target)
        return target if out is None or out is target else _deliver(target, out)

    def bias_selu_dropout_backward(self, dy, y, mask: DropoutMask, alpha, lam, dz=None, db=None):
        if _dropped_is_saturation(mask, alpha, lam, y.dtype):
            scalars = (*self._selu_scalars(alpha, lam, y.dtype),
                       *self._floats(y.dtype, mask.dropped, mask.scale, mask.shift), _inverse(mask.scale, y.dtype))
            return self._row_backward("bias_selu_dropout_backward_from_output", dy, y, scalars, dz, db)
        return self._bias_selu_dropout_backward_regenerated(dy, y, mask, alpha, lam, dz, db)

    def _bias_selu_dropout_backward_regenerated(self, dy, y, mask: DropoutMask, alpha, lam, dz=None, db=None):
        if y.ndim != 2:
            raise ValueError(f"expected (N, D) operands, got shape {y.shape}")
        k0, k1, threshold, row_step, scale, shift, _ = self._mask_scalars(mask, y.shape, y.shape[1], y.dtype)
        # 1 / scale computed here, in y's dtype: in a kernel, `1 / scale` would be float64 and
        # promote the whole float32 loop to float64 (half the vector width plus conversions).
        scalars = (*self._selu_scalars(alpha, lam, y.dtype), k0, k1, threshold, row_step, scale, shift,
                   _inverse(mask.scale, y.dtype))
        return self._row_backward("bias_selu_dropout_backward", dy, y, scalars, dz, db)

    # ---- ReLU, bias add, residual sum ----------------------------------------------------------
    def relu_forward(self, x, out=None):
        return self._elementwise("relu_forward", (x,), out)

    def relu_backward(self, dy, y, out=None):
        return self._elementwise("relu_backward", (dy, y), out)

    def add(self, a, b, out=None):
        return self._elementwise("add", (a, b), out)

    def bias_add_forward(self, z, b, out=None):
        _check_rows(z, b)
        dtype = _float_dtype(z, b)
        target = _target(out, z.shape, dtype)
        self._kernels["bias_add_forward", dtype](_contiguous(z), _contiguous(b), target)
        return _deliver(target, out)

    # ---- ELU, sigmoid, tanh, highway mix: ELU is SELU with lam = 1 (the same kernels and bits) -
    def elu_forward(self, x, alpha, out=None):
        return self._elementwise("selu_forward", (x,), out, *self._selu_scalars(alpha, 1.0, x.dtype))

    def elu_backward(self, dy, y, alpha, out=None):
        return self._elementwise("selu_backward", (dy, y), out, *self._selu_scalars(alpha, 1.0, y.dtype))

    def sigmoid_forward(self, x, out=None):
        return self._elementwise("sigmoid_forward", (x,), out)

    def sigmoid_backward(self, dy, y, out=None):
        return self._elementwise("sigmoid_backward", (dy, y), out)

    def tanh_backward(self, dy, y, out=None):
        return self._elementwise("tanh_backward", (dy, y), out)

    def highway_forward(self, h, t, x, out=None):
        return self._elementwise("highway_forward", (h, t, x), out)

    def highway_backward(self, dy, h, t, x, dh=None, dt=None, dx=None):
        _check_same_shape(("dy", "h", "t", "x"), dy, h, t, x)
        dtype = _float_dtype(dy, h, t, x)
        targets = tuple(_target(o, dy.shape, dtype, name) for o, name in ((dh, "dh"), (dt, "dt"), (dx, "dx")))
        self._kernels["highway_backward", dtype](*(_flat(_contiguous(a)) for a in (dy, h, t, x)),
                                                 *(target.ravel() for target in targets))
        return tuple(_deliver(target, o) for target, o in zip(targets, (dh, dt, dx)))

    # ---- normalization -------------------------------------------------------------------------
    def weight_norm_forward(self, v, g, out=None, norm=None):
        _, d_out = _check_features(v, g=g)
        dtype = _float_dtype(v, g)
        targets = (_target(out, v.shape, dtype), _target(norm, (d_out,), dtype, "norm"))
        zero_column = self._kernels["weight_norm_forward", dtype](_contiguous(v), _contiguous(g), *targets)
        if zero_column >= 0:
            raise ValueError(f"weight normalization: column {zero_column} of v is all zeros")
        return tuple(_deliver(t, o) for t, o in zip(targets, (out, norm)))

    def weight_norm_backward(self, dw, v, g, norm, dv=None, dg=None):
        _check_same_shape(("dw", "v"), dw, v)
        _, d_out = _check_features(v, g=g, norm=norm)
        dtype = _float_dtype(dw, v, g, norm)
        targets = (_target(dv, v.shape, dtype, "dv"), _target(dg, (d_out,), dtype, "dg"))
        self._kernels["weight_norm_backward", dtype](_contiguous(dw), _contiguous(v), _contiguous(g),
                                                     _contiguous(norm), *targets)
        return tuple(_deliver(t, o) for t, o in zip(targets, (dv, dg)))

    def _batch_norm_forward(self, kernel, x, gamma, beta, eps, out, mean, rstd, running_mean, running_var, momentum,
                            parallel=False):
        """Validate, then run `kernel` (an op kernel's name, or a variant's jitted kernel taking a column block)."""
        n, d = _check_features(x, gamma=gamma, beta=beta)
        if n < 2:
            raise ValueError(f"batch normalization needs at least 2 rows to estimate statistics, got {n}")
        dtype = _float_dtype(x, gamma, beta)
        if (running_mean is None) != (running_var is None):
            raise ValueError("running_mean and running_var are updated together: pass both or neither")
        update = running_mean is not None
        if update:
            _check_features(x, running_mean=running_mean, running_var=running_var)
            _float_dtype(x, running_mean, running_var)
            if not all(a.flags.c_contiguous and a.flags.writeable for a in (running_mean, running_var)):
                raise ValueError("running_mean and running_var are updated in place: they must be C-contiguous "
                                 "and writeable")
        else:
            running_mean = running_var = np.empty(0, dtype)
        targets = (_target(out, x.shape, dtype), _target(mean, (d,), dtype, "mean"), _target(rstd, (d,), dtype, "rstd"))
        kernel = self._kernels[kernel, dtype] if isinstance(kernel, str) else kernel
        block = (_parallel_block(d),) if parallel else ()
        kernel(_contiguous(x), _contiguous(gamma), _contiguous(beta), float(eps), float(momentum), update, running_mean,
               running_var, *block, *targets)
        return tuple(_deliver(t, o) for t, o in zip(targets, (out, mean, rstd)))

    def batch_norm_forward(self, x, gamma, beta, eps, out=None, mean=None, rstd=None, running_mean=None,
                           running_var=None, momentum=0.1):
        return self._batch_norm_forward("batch_norm_forward", x, gamma, beta, eps, out, mean, rstd, running_mean,
                                        running_var, momentum)

    def _batch_norm_forward_parallel(self, x, gamma, beta, eps, out=None, mean=None, rstd=None, running_mean=None,
                                     running_var=None, momentum=0.1):
        return self._batch_norm_forward(_jit_kernel("batch_norm_forward_parallel_kernel"), x, gamma, beta, eps, out,
                                        mean, rstd, running_mean, running_var, momentum, parallel=True)

    def batch_norm_inference(self, x, gamma, beta, running_mean, running_var, eps, out=None):
        _check_features(x, gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var)
        dtype = _float_dtype(x, gamma, beta, running_mean, running_var)
        scale = gamma / np.sqrt(running_var + eps)  # (D,) as the reference computes it
        shift = beta - running_mean * scale
        target = _target(out, x.shape, dtype)
        self._kernels["batch_norm_inference", dtype](_contiguous(x), scale, shift, target)
        return _deliver(target, out)

    def _normalization_backward(self, kernel, dy, x, vectors, dx, dgamma, dbeta):
        """Run a (dx, dgamma, dbeta) kernel (an op kernel's name, or a variant's jitted kernel): dy,
        x (N, D), the op's vectors (and scalars), then the targets."""
        _check_same_shape(("dy", "x"), dy, x)
        dtype = _float_dtype(dy, x, *(v for v in vectors if isinstance(v, np.ndarray)))
        targets = (_target(dx, x.shape, dtype, "dx"), _target(dgamma, (x.shape[1],), dtype, "dgamma"),
                   _target(dbeta, (x.shape[1],), dtype, "dbeta"))
        kernel = self._kernels[kernel, dtype] if isinstance(kernel, str) else kernel
        kernel(_contiguous(dy), _contiguous(x), *vectors, *targets)
        return tuple(_deliver(t, o) for t, o in zip(targets, (dx, dgamma, dbeta)))

    def _batch_norm_backward(self, kernel, dy, x, gamma, mean, rstd, dx, dgamma, dbeta, parallel=False):
        _, d = _check_features(x, gamma=gamma, mean=mean, rstd=rstd)
        vectors = (_contiguous(gamma), _contiguous(mean), _contiguous(rstd))
        if parallel:
            vectors += (_parallel_block(d),)
        return self._normalization_backward(kernel, dy, x, vectors, dx, dgamma, dbeta)

    def batch_norm_backward(self, dy, x, gamma, mean, rstd, dx=None, dgamma=None, dbeta=None):
        return self._batch_norm_backward("batch_norm_backward", dy, x, gamma, mean, rstd, dx, dgamma, dbeta)

    def _batch_norm_backward_parallel(self, dy, x, gamma, mean, rstd, dx=None, dgamma=None, dbeta=None):
        return self._batch_norm_backward(_jit_kernel("batch_norm_backward_parallel_kernel"), dy, x, gamma, mean, rstd,
                                         dx, dgamma, dbeta, parallel=True)

    def batch_norm_inference_backward(self, dy, x, gamma, running_mean, running_var, eps, dx=None, dgamma=None,
                                      dbeta=None):
        _check_features(x, gamma=gamma, running_mean=running_mean, running_var=running_var)
        _float_dtype(dy, x, gamma, running_mean, running_var)
        rstd = 1.0 / np.sqrt(running_var + eps)  # (D,) as the reference computes it
        vectors = (gamma * rstd, _contiguous(running_mean), rstd)
        return self._normalization_backward("batch_norm_inference_backward", dy, x, vectors, dx, dgamma, dbeta)

    def _layer_norm_forward(self, kernel, x, gamma, beta, eps, out, mean, rstd):
        n, d = _check_features(x, gamma=gamma, beta=beta)
        dtype = _float_dtype(x, gamma, beta)
        targets = (_target(out, x.shape, dtype), _target(mean, (n,), dtype, "mean"), _target(rstd, (n,), dtype, "rstd"))
        kernel = self._kernels[kernel, dtype] if isinstance(kernel, str) else kernel
        kernel(_contiguous(x), _contiguous(gamma), _contiguous(beta), float(eps), *targets)
        return tuple(_deliver(t, o) for t, o in zip(targets, (out, mean, rstd)))

    def layer_norm_forward(self, x, gamma, beta, eps, out=None, mean=None, rstd=None):
        return self._layer_norm_forward("layer_norm_forward", x, gamma, beta, eps, out, mean, rstd)

    def _layer_norm_forward_parallel(self, x, gamma, beta, eps, out=None, mean=None, rstd=None):
        return self._layer_norm_forward(_jit_kernel("layer_norm_forward_parallel_kernel"), x, gamma, beta, eps, out,
                                        mean, rstd)

    def _layer_norm_backward(self, kernel, dy, x, gamma, mean, rstd, dx, dgamma, dbeta, parallel=False):
        n, _ = _check_features(x, gamma=gamma)
        if mean.shape != (n,) or rstd.shape != (n,):
            raise ValueError(f"mean and rstd must have shape ({n},) (one per row of x), got {mean.shape} and "
                             f"{rstd.shape}")
        vectors = (_contiguous(gamma), _contiguous(mean), _contiguous(rstd))
        if parallel:
            import numba

            vectors += (max(1, min(n, numba.get_num_threads())),)  # row chunks
        return self._normalization_backward(kernel, dy, x, vectors, dx, dgamma, dbeta)

    def layer_norm_backward(self, dy, x, gamma, mean, rstd, dx=None, dgamma=None, dbeta=None):
        return self._layer_norm_backward("layer_norm_backward", dy, x, gamma, mean, rstd, dx, dgamma, dbeta)

    def _layer_norm_backward_parallel(self, dy, x, gamma, mean, rstd, dx=None, dgamma=None, dbeta=None):
        return self._layer_norm_backward(_jit_kernel("layer_norm_backward_parallel_kernel"), dy, x, gamma, mean, rstd,
                                         dx, dgamma, dbeta, parallel=True)

    # ---- loss and optimizer -------------------------------------------------------------
    @staticmethod
    def _labels(labels, n: int) -> np.ndarray:
        if type(labels) is np.ndarray and labels.dtype is _I64 and labels.shape == (n,) and labels.flags.c_contiguous:
            return labels
        labels = np.asarray(labels)
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers of shape ({n},), got {labels.dtype} {labels.shape}")
        return _contiguous(labels.astype(np.int64, copy=False))

    def softmax_cross_entropy_forward(self, logits, labels, probs=None):
        if logits.ndim != 2:
            raise ValueError(f"logits must be (N, C), got shape {logits.shape}")
        dtype = _float_dtype(logits)
        target = _target(probs, logits.shape, dtype, "probs")
        kernel = self._kernels["softmax_cross_entropy_forward", dtype]
        summed = kernel(_contiguous(logits), self._labels(labels, len(logits)), target)
        if summed < 0:
            row = int(-1 - summed)
            raise ValueError(f"label {labels[row]} in row {row} is outside [0, {logits.shape[1]})")
        return np.asarray(summed / len(logits), dtype=dtype), _deliver(target, probs)

    def softmax_cross_entropy_backward(self, probs, labels, out=None):
        if probs.ndim != 2:
            raise ValueError(f"probs must be (N, C), got shape {probs.shape}")
        dtype = _float_dtype(probs)
        target = _target(out, probs.shape, dtype)
        kernel = self._kernels["softmax_cross_entropy_backward", dtype]
        bad_row = kernel(_contiguous(probs), self._labels(labels, len(probs)), *self._floats(dtype, 1.0 / len(probs)),
                         target)
        if bad_row >= 0:
            raise ValueError(f"label {labels[bad_row]} in row {bad_row} is outside [0, {probs.shape[1]})")
        return _deliver(target, out)

    def sgd_update(self, param, grad, velocity, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        if momentum == 0.0:
            dtype, arrays = _sgd_arrays(param, grad, None)
            self._kernels["sgd_update", dtype](*arrays, *self._floats(dtype, lr, weight_decay))
        elif velocity is None:
            raise missing_velocity(momentum)
        else:
            dtype, arrays = _sgd_arrays(param, grad, velocity)
            self._kernels["sgd_update_momentum", dtype](*arrays, *self._floats(dtype, lr, momentum, weight_decay),
                                                        bool(nesterov))

    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step, decoupled):
        dtype, arrays = _adam_arrays(param, grad, m, v)
        scalars = _adam_scalars(lr, beta1, beta2, eps, weight_decay, step, decoupled, dtype)
        self._kernels["adam_update", dtype](*arrays, *scalars)

    def bind_update(self, op, param, grad, *state):
        """The update kernel with its arrays checked and flattened once: on a small array a bound
        call costs 0.7 us where the op costs 2.7 (Adam), 0.4 where it costs 2.2 (SGD with
        momentum). A non-contiguous grad keeps the checked op, which copies it at every call."""
        if op not in self.UPDATE_OPS or not grad.flags.c_contiguous:
            return super().bind_update(op, param, grad, *state)
        if op == "adam_update":
            dtype, arrays = _adam_arrays(param, grad, *state)
            kernel = self._kernels[op, dtype]

            def adam(lr, beta1, beta2, eps, weight_decay, step, decoupled):
                kernel(*arrays, *_adam_scalars(lr, beta1, beta2, eps, weight_decay, step, decoupled, dtype))

            return adam
        (velocity,) = state
        dtype, arrays = _sgd_arrays(param, grad, velocity)
        plain_kernel, momentum_kernel = self._kernels["sgd_update", dtype], self._kernels["sgd_update_momentum", dtype]

        def sgd(lr, momentum=0.0, weight_decay=0.0, nesterov=False):
            if momentum == 0.0:
                plain_kernel(*arrays[:2], *self._floats(dtype, lr, weight_decay))
            elif velocity is None:
                raise missing_velocity(momentum)
            else:
                momentum_kernel(*arrays, *self._floats(dtype, lr, momentum, weight_decay), bool(nesterov))

        return sgd

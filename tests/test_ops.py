"""The backend harness: every op in OPS, on every backend and variant, against minisnn.reference.

Parametrized over backend x op case x variant x dtype x awkward shape (tests/backend_cases.py
holds the case table, conftest.py the one tolerance table). Backends:
- "numpy": the default bodies themselves;
- "numba-jit": every op the Numba backend overrides, and every variant, on jitted kernels;
- "numba-compiled": the compiled kernels, compared with the jitted ones bit for bit, once per op
  (so the whole sweep does not run twice); skipped where they cannot be built, failed then
  with MINISNN_REQUIRE_COMPILED_KERNELS=1;
- "cupy" (marked gpu): on a real GPU every op; under the CUDA emulator (run in a child process
  by tests/test_cuda_emulated.py) the ops the CuPy backend has kernels for, on smaller shapes.
"""

import functools

import numpy as np
import pytest

import backend_cases as bc
from conftest import compiled_numba_backend
from minisnn.backends import BackendUnavailable, get_backend
from minisnn.backends.base import OPS

DTYPES = ("float32", "float64")
BACKENDS = ("numpy", "numba-jit", "cupy")
# Under the CUDA emulator every CUDA thread is a fiber on the CPU: the SGEMMs, the column
# reductions and the one-block-per-row softmax get smaller shapes there, still ragged against every
# tile and tall enough for column sums in several row chunks on the small emulated GPU.
EMULATED_MATMUL_SHAPES = [(1, 1, 1), (1, 31, 7), (3, 1003, 5), (67, 33, 17), (130, 9, 257), (5, 0, 3)]
EMULATED_ROW_SHAPES = {(4099, 3): (1003, 3), (20, 4100): (20, 1100)}

class Unavailable(Exception):
    """A backend that cannot run here; the message says why."""


@functools.cache
def backend(name: str, dtype: str):
    """The backend object `name` for `dtype` (one per process), or Unavailable saying why not."""
    if name == "numpy":
        return get_backend("numpy", dtype=dtype)
    try:
        if name == "numba-jit":
            from minisnn.backends.numba_backend import NumbaBackend

            return NumbaBackend(dtype=dtype, kernels="jit")
        if name == "cupy":
            from minisnn.backends.cupy_backend import CupyBackend

            return CupyBackend(dtype=dtype)
    except (ImportError, BackendUnavailable) as exc:
        raise Unavailable(f"{name}: {exc}") from exc
    raise ValueError(f"unknown backend {name!r}")


def backend_or_skip(name: str, dtype: str):
    try:
        return backend(name, dtype)
    except Unavailable as exc:
        pytest.skip(str(exc))


def case_shapes(be, case):
    if not bc.is_emulated(be):
        return case.shapes
    return EMULATED_MATMUL_SHAPES if case.op == "matmul" else [EMULATED_ROW_SHAPES.get(s, s) for s in case.shapes]


def _marks(name):
    return [pytest.mark.gpu] if name == "cupy" else []


def _params(per_shape: bool):
    """pytest params (backend, case, variant, dtype[, shape]) for every backend that can run here;
    one skipped placeholder for a backend that cannot."""
    params = []
    for name in BACKENDS:
        try:
            be = backend(name, "float32")
        except Unavailable as exc:
            params.append(pytest.param(name, None, None, None, *([None] if per_shape else []), id=f"{name}-unavailable",
                                       marks=[*_marks(name), pytest.mark.skip(reason=str(exc))]))
            continue
        for op, variant in bc.tested_variants(be):
            for case in bc.CASES[op]:
                for dtype in DTYPES:
                    shapes = case_shapes(be, case) if per_shape else [None]
                    for shape in shapes:
                        extra = [shape] if per_shape else []
                        shape_id = "-" + "x".join(map(str, shape)) if per_shape else ""
                        params.append(pytest.param(name, case, variant, dtype, *extra, marks=_marks(name),
                                                   id=f"{name}-{case.id}-{variant}-{dtype}{shape_id}"))
    return params


def test_every_op_has_a_case_and_every_case_an_op():
    assert set(bc.CASES) == set(OPS), f"ops without a case: {sorted(set(OPS) - set(bc.CASES))}; " \
                                      f"cases of unknown ops: {sorted(set(bc.CASES) - set(OPS))}"


@pytest.mark.parametrize("backend_name, case, variant, dtype, shape", _params(per_shape=True))
def test_op_matches_the_reference(backend_name, case, variant, dtype, shape):
    be = backend_or_skip(backend_name, dtype)
    bc.run_case(be, be.variants(case.op)[variant], case, shape)


@pytest.mark.parametrize("backend_name, case, variant, dtype",
                         [p for p in _params(per_shape=False) if p.values[1] is None
                          or p.values[1].out_args or p.values[1].alias or p.values[1].in_place])
def test_out_buffers_are_returned_and_allowed_aliasing_changes_nothing(backend_name, case, variant, dtype):
    be = backend_or_skip(backend_name, dtype)
    bc.run_out_and_alias(be, be.variants(case.op)[variant], case, case_shapes(be, case)[2])


LABEL_OPS = ("softmax_cross_entropy_forward", "softmax_cross_entropy_backward")


@pytest.mark.parametrize("backend_name, op", [pytest.param(name, op, marks=_marks(name))
                                              for name in BACKENDS for op in LABEL_OPS])
@pytest.mark.parametrize("bad, labels_dtype", [(-1, np.int64), (4, np.int64), (2**40, np.int64), (-1, np.int32),
                                               (4, np.int32)])
def test_labels_outside_the_classes_raise_naming_the_first_bad_row(backend_name, op, bad, labels_dtype):
    be = backend_or_skip(backend_name, "float32")
    logits = be.asarray(np.full((6, 4), 0.25, np.float32))
    labels = be.asarray(np.array([0, 1, bad, 3, bad, 2], labels_dtype))
    for variant, fn in be.variants(op).items():
        with pytest.raises(ValueError, match=f"label {bad} in row 2 "):
            fn(logits, labels)


@pytest.mark.parametrize("backend_name", [pytest.param(name, marks=_marks(name)) for name in BACKENDS])
def test_batch_norm_needs_two_rows_and_both_running_statistics(backend_name):
    be = backend_or_skip(backend_name, "float32")
    one_row, ones = be.asarray(np.ones((1, 3))), be.asarray(np.ones(3))
    for fn in be.variants("batch_norm_forward").values():
        with pytest.raises(ValueError, match="at least 2 rows"):
            fn(one_row, ones, ones, 1e-5)
    for fn in be.variants("batch_norm_forward").values():
        with pytest.raises(ValueError, match="pass both or neither"):
            fn(be.asarray(np.ones((2, 3))), ones, ones, 1e-5, running_mean=be.zeros((3,)))


@pytest.mark.parametrize("backend_name", [pytest.param(name, marks=_marks(name)) for name in BACKENDS])
def test_weight_norm_of_a_zero_column_raises_naming_it(backend_name):
    be = backend_or_skip(backend_name, "float32")
    v = np.ones((4, 3), np.float32)
    v[:, 1] = 0
    for fn in be.variants("weight_norm_forward").values():
        with pytest.raises(ValueError, match="column 1 of v is all zeros"):
            fn(be.asarray(v), be.asarray(np.ones(3)))


MASK_KEYS = [(0, 0, 0.05), (1, 123456, 0.5), (2**40 + 5, 2**33, 0.9)]  # (seed, step, rate)


@pytest.mark.parametrize("backend_name", [pytest.param(name, marks=_marks(name)) for name in BACKENDS
                                          if name != "numpy"])  # numpy's masks are DropoutMask.keep itself
@pytest.mark.parametrize("kind", ["element", "per_feature"])
@pytest.mark.parametrize("seed, step, rate", MASK_KEYS)
def test_masks_are_the_reference_masks_bit_for_bit_on_a_large_array(backend_name, kind, seed, step, rate):
    """Every dropout op and variant drops exactly the elements DropoutMask.keep drops, for keys
    from 64-bit seeds and steps and thresholds from both ends, on 135971 elements (a ragged tail)."""
    be = backend_or_skip(backend_name, "float32")
    shape = (517, 263)
    mask = bc.dropout_mask(kind, rate, seed, step)
    keep = mask.keep(shape)
    ones, zeros = be.asarray(np.ones(shape, np.float32)), be.zeros(shape)
    dropped, shift = np.float32(mask.dropped), np.float32(mask.shift)
    for fn in be.variants("alpha_dropout_backward").values():
        assert np.array_equal(be.to_numpy(fn(ones, mask)) != 0, keep)
    for fn in be.variants("alpha_dropout_forward").values():  # kept: a + b, not the dropped value
        assert np.array_equal(be.to_numpy(fn(ones, mask)) == dropped, ~keep)
    for fn in be.variants("bias_selu_dropout_forward").values():  # selu(0) = 0: kept elements hold exactly shift
        y = fn(zeros, be.zeros((shape[1],)), mask, **bc.SELU_01)
        assert np.array_equal(be.to_numpy(y), np.where(keep, shift, dropped))
    for fn in be.variants("bias_selu_dropout_backward").values():  # slope lam*alpha at 0
        dz, _ = fn(ones, y, mask, **bc.SELU_01)
        assert np.array_equal(be.to_numpy(dz) != 0, keep)


# ---- compiled Numba kernels: the jitted ones, bit for bit ----------------------------------------

def _numba_ops():
    try:
        be = backend("numba-jit", "float32")
    except Unavailable:
        return [pytest.param(None, marks=pytest.mark.skip(reason="Numba is not installed"))]
    return sorted({op for op, _ in bc.tested_variants(be)})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", _numba_ops())
def test_compiled_numba_kernels_equal_the_jitted_ones_bit_for_bit(op, dtype):
    """The jitted kernels are checked against the reference above; the compiled ones must give
    the same bits on every case, shape and layout."""
    compiled, jitted = compiled_numba_backend(dtype), backend("numba-jit", dtype)
    assert compiled.kernel_source.startswith("compiled")
    for variant, jit_fn in jitted.variants(op).items():
        compiled_fn = compiled.variants(op)[variant]
        for case in bc.CASES[op]:
            for shape in case.shapes:
                args = case.make(bc.case_rng(case, shape), shape, np.dtype(dtype))
                for layout in bc.LAYOUTS:
                    results = []
                    for fn in (compiled_fn, jit_fn):
                        device = {k: bc.to_backend(jitted, v, "contiguous" if k in case.in_place else layout)
                                  for k, v in args.items()}
                        results.append(bc.collect(case, fn(**device), device))
                    for name in results[0]:
                        assert np.array_equal(results[0][name], results[1][name], equal_nan=True), (
                            f"{op} {variant} {case.id} {shape} {layout}: compiled and jitted {name} differ")


UPDATE_ARGUMENTS = {"sgd_update": ("lr", "momentum", "weight_decay", "nesterov"),
                    "adam_update": ("lr", "beta1", "beta2", "eps", "weight_decay", "step", "decoupled")}
UPDATE_STATE = {"sgd_update": ("velocity",), "adam_update": ("m", "v")}


def _bound_backend(name: str, dtype: str):
    return compiled_numba_backend(dtype) if name == "numba-compiled" else backend_or_skip(name, dtype)


@pytest.mark.parametrize("grad_layout", ["contiguous", "transposed"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [case for op in UPDATE_ARGUMENTS for case in bc.CASES[op]], ids=lambda c: c.id)
@pytest.mark.parametrize("backend_name", [pytest.param(name, marks=_marks(name))
                                          for name in (*BACKENDS, "numba-compiled")])
def test_a_bound_update_equals_the_op_bit_for_bit_over_steps(backend_name, case, dtype, grad_layout):
    """Backend.bind_update: three steps through the bound update and three through the op, the
    gradient rewritten in place between steps (a bound update must read the array, not a copy),
    give the same bits."""
    be = _bound_backend(backend_name, dtype)
    shape = (257, 129)
    args = case.make(bc.case_rng(case, shape), shape, np.dtype(dtype))
    runs = []
    for bound in (True, False):
        arrays = {k: bc.to_backend(be, v, grad_layout if k == "grad" else "contiguous") for k, v in args.items()}
        state = [arrays[k] for k in UPDATE_STATE[case.op]]
        update = be.bind_update(case.op, arrays["param"], arrays["grad"], *state) if bound else None
        for step in range(3):
            arrays["grad"][...] = be.asarray(args["grad"] * (step + 1))
            scalars = [args[k] + step if k == "step" else args[k] for k in UPDATE_ARGUMENTS[case.op]]
            if bound:
                update(*scalars)
            else:
                getattr(be, case.op)(arrays["param"], arrays["grad"], *state, *scalars)
        runs.append({k: be.to_numpy(a) for k, a in (("param", arrays["param"]), *zip(UPDATE_STATE[case.op], state))
                     if a is not None})
    for name in runs[0]:
        assert np.array_equal(runs[0][name], runs[1][name]), f"{case.id}: bound and unbound {name} differ"


@pytest.mark.parametrize("backend_name", [pytest.param(name, marks=_marks(name)) for name in BACKENDS])
def test_bind_update_names_unknown_ops_and_sgd_a_missing_velocity(backend_name):
    be = backend_or_skip(backend_name, "float32")
    param, grad = be.zeros((4,)), be.zeros((4,))
    with pytest.raises(ValueError, match="binds one of sgd_update, adam_update, got 'relu_forward'"):
        be.bind_update("relu_forward", param, grad)
    update = be.bind_update("sgd_update", param, grad, None)
    update(0.1)  # momentum 0 needs no velocity
    with pytest.raises(ValueError, match="sgd_update with momentum 0.9 needs a velocity array, got None"):
        update(0.1, 0.9)
    with pytest.raises(ValueError, match="sgd_update with momentum 0.9 needs a velocity array, got None"):
        be.sgd_update(param, grad, None, 0.1, 0.9)


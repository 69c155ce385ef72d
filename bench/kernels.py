"""Kernel benchmark: every op (OPS) and variant on the numpy and numba backends, against copy bandwidth.

Each (backend, op, variant) is first checked against minisnn.reference (float64) on the benchmark's
own inputs, then timed; rows that fail the check are reported and not timed (exit status 1).
Throughput counts the bytes each op must read and write once ((N, D) arrays; the (D,) bias and
column sums are negligible) and is compared with np.copyto's bandwidth measured in the same run
(copy counted the same way: read + write). Forward ops are also timed in place (out=z, as the
layers call them) against an in-place baseline, np.multiply(x, 1, out=x). Matmul is reported in
GFLOP/s. Optional rows for PyTorch's SELU and alpha dropout give a framework baseline.

    python bench/kernels.py                   # (4096, 4096) float32, JSON to bench/results/kernels.json
    python bench/kernels.py --quick --json /tmp/k.json
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from common import (add_isa_argument, copy_bandwidth, default_json_path, environment, in_place_bandwidth,
                    run_for_isa, time_call, write_json)

from minisnn import reference as ref
from minisnn.backends import BackendUnavailable, get_backend
from minisnn.backends.base import aligned_host_array
from minisnn.constants import ALPHA_01, LAMBDA_01, alpha_dropout_params
from minisnn.rng import DropoutMask, dropout_key, keep_threshold

# (rtol, atol): a coarse check that a timed result is right before its time is reported. The
# exact per-op tolerances of the backend tests are tests/conftest.py's TOLERANCE_TABLE.
TOLERANCES = {"float32": (2e-5, 2e-6), "float64": (1e-12, 1e-13)}
N_CLASSES = 10  # the softmax rows' default width (--classes): issue 16's target is at 4096
MATMUL_SIZE = 1024


@dataclass
class Case:
    """How to call one op on the benchmark inputs, what it must return, and the bytes it moves."""

    op: str
    call: Callable[[Callable], Any]  # call(op_fn) -> result
    expected: Callable[[], Any]  # float64 reference result (array or tuple of arrays)
    bytes_moved: int
    column_sum_terms: Callable[[], np.ndarray] | None = None  # rows summed into a (D,) result
    flops: int = 0
    prepare: Callable[[], None] | None = None  # resets an in-place case's input before the check
    timed: Callable[[Callable], Any] | None = None  # timed(op_fn), when `call` also resets state for the check


def make_inputs(rows: int, cols: int, dtype: str, seed: int = 0, classes: int = N_CLASSES) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    p = alpha_dropout_params(0.05)
    k0, k1 = dropout_key(seed, 1)
    mask = DropoutMask(k0, k1, keep_threshold(0.05), p.a, p.b, p.dropped_value)
    x = (2.0 * rng.standard_normal((rows, cols))).astype(dtype)  # (N, D)
    b = (0.5 * rng.standard_normal(cols)).astype(dtype)  # (D,)
    n_logits = max(1, rows * cols // classes)
    m = min(MATMUL_SIZE, rows, cols)
    arrays = {
        "x": x, "b": b,
        "dy": rng.standard_normal((rows, cols)).astype(dtype),  # (N, D)
        "y": ref.selu_forward(x, ALPHA_01, LAMBDA_01).astype(dtype),  # (N, D) a SELU output
        "y_dropout": ref.bias_selu_dropout_forward(x, b, mask, ALPHA_01, LAMBDA_01).astype(dtype),  # (N, D)
        "logits": (3.0 * rng.standard_normal((n_logits, classes))).astype(dtype),  # (M, C)
        "labels": rng.integers(0, classes, n_logits),  # (M,)
        "a_mm": rng.standard_normal((m, m)).astype(dtype), "b_mm": rng.standard_normal((m, m)).astype(dtype),
        "param": rng.standard_normal((rows, cols)).astype(dtype), "velocity": np.zeros((rows, cols), dtype),
        "adam_m": (0.1 * rng.standard_normal((rows, cols))).astype(dtype),  # (N, D) Adam's state mid-training
        "adam_v": (0.01 * rng.random((rows, cols))).astype(dtype),
        "targets": rng.random((rows, cols)).astype(dtype),  # (N, D) in [0, 1]
        "gamma": (1.0 + 0.1 * rng.standard_normal(cols)).astype(dtype),  # (D,) normalization scale and shift
        "beta": (0.1 * rng.standard_normal(cols)).astype(dtype),
        "running_mean": (0.1 * rng.standard_normal(cols)).astype(dtype),  # (D,) batch norm's running statistics
        "running_var": rng.uniform(0.5, 1.5, cols).astype(dtype),
    }
    return {"mask": mask, **{name: aligned_copy(a) for name, a in arrays.items()}}


def aligned_copy(a: np.ndarray) -> np.ndarray:
    """`a` in a buffer starting on a cache line, as the backends allocate theirs."""
    copy = aligned_host_array(a.shape, a.dtype)
    copy[...] = a
    return copy


def aligned_empty_like(a: np.ndarray) -> np.ndarray:
    return aligned_host_array(a.shape, a.dtype)


def activation_and_loss_cases(inp: dict[str, Any], out: np.ndarray) -> list[Case]:
    """The ops every backend runs as their default bodies: bias add, the other activations, the
    sigmoid and squared-error losses and count_correct."""
    x, b, dy, targets, logits, labels = inp["x"], inp["b"], inp["dy"], inp["targets"], inp["logits"], inp["labels"]
    f64 = lambda a: np.asarray(a, np.float64)
    size, scale = x.nbytes, 1.0 / x.size
    cases = [Case("bias_add_forward", lambda fn: fn(x, b, out=out), lambda: ref.bias_add_forward(f64(x), f64(b)),
                  2 * size)]
    for name, extra in (("relu", ()), ("elu", (1.0,)), ("tanh", ()), ("sigmoid", ())):
        forward, backward = getattr(ref, f"{name}_forward"), getattr(ref, f"{name}_backward")
        y = aligned_copy(forward(f64(x), *extra).astype(x.dtype))  # (N, D) the stored output
        cases += [
            Case(f"{name}_forward", lambda fn, extra=extra: fn(x, *extra, out=out),
                 lambda forward=forward, extra=extra: forward(f64(x), *extra), 2 * size),
            Case(f"{name}_backward", lambda fn, y=y, extra=extra: fn(dy, y, *extra, out=out),
                 lambda backward=backward, y=y, extra=extra: backward(f64(dy), f64(y), *extra), 3 * size),
        ]
    return cases + [
        Case("sigmoid_cross_entropy_forward", lambda fn: fn(x, targets),
             lambda: ref.sigmoid_cross_entropy_forward(f64(x), f64(targets)), 2 * size),
        Case("sigmoid_cross_entropy_backward", lambda fn: fn(x, targets, None, scale, out=out),
             lambda: ref.sigmoid_cross_entropy_backward(f64(x), f64(targets), None, scale), 3 * size),
        Case("squared_error_forward", lambda fn: fn(x, dy), lambda: ref.squared_error_forward(f64(x), f64(dy)),
             2 * size),
        Case("squared_error_backward", lambda fn: fn(x, dy, scale, out=out),
             lambda: ref.squared_error_backward(f64(x), f64(dy), scale), 3 * size),
        Case("count_correct", lambda fn: fn(logits, labels), lambda: ref.count_correct(f64(logits), labels),
             logits.nbytes),
    ]


def composite_cases(inp: dict[str, Any], out: np.ndarray) -> list[Case]:
    """Residual sum, batch and layer norm (forward, backward, evaluation mode), weight norm of an
    (N, D) weight matrix, highway gates. Batch norm's forward updates the running statistics in
    place: its checked call starts them from the same values."""
    x, dy, gate, h = inp["x"], inp["dy"], inp["targets"], inp["param"]
    gamma, beta, running_mean, running_var = inp["gamma"], inp["beta"], inp["running_mean"], inp["running_var"]
    f64 = lambda a: np.asarray(a, np.float64)
    eps, size = 1e-5, x.nbytes
    column_stats, row_stats = aligned_empty_like(gamma), aligned_empty_like(x[:, 0])  # (D,), (N,)
    column_stats2, row_stats2 = aligned_empty_like(gamma), aligned_empty_like(x[:, 0])
    dgamma, dbeta, dx2, dx3 = aligned_empty_like(gamma), aligned_empty_like(gamma), aligned_empty_like(x), \
        aligned_empty_like(x)
    running = [aligned_copy(running_mean), aligned_copy(running_var)]
    _, bn_mean, bn_rstd = ref.batch_norm_forward(f64(x), f64(gamma), f64(beta), eps)
    bn_mean, bn_rstd = aligned_copy(bn_mean.astype(x.dtype)), aligned_copy(bn_rstd.astype(x.dtype))
    _, ln_mean, ln_rstd = ref.layer_norm_forward(f64(x), f64(gamma), f64(beta), eps)
    ln_mean, ln_rstd = aligned_copy(ln_mean.astype(x.dtype)), aligned_copy(ln_rstd.astype(x.dtype))
    norm = aligned_copy(np.sqrt((f64(x) ** 2).sum(axis=0)).astype(x.dtype))  # (D,) column norms of x as v

    def bn_forward(fn):
        np.copyto(running[0], running_mean)
        np.copyto(running[1], running_var)
        return fn(x, gamma, beta, eps, out=out, mean=column_stats, rstd=column_stats2, running_mean=running[0],
                  running_var=running[1]) + tuple(running)

    def bn_forward_expected():
        stats = [f64(running_mean).copy(), f64(running_var).copy()]
        return ref.batch_norm_forward(f64(x), f64(gamma), f64(beta), eps, running_mean=stats[0],
                                      running_var=stats[1]) + tuple(stats)

    bn_x_hat = lambda: np.abs(f64(dy)) * (1.0 + np.abs((f64(x) - f64(bn_mean)) * f64(bn_rstd)))
    ln_x_hat = lambda: np.abs(f64(dy)) * (1.0 + np.abs((f64(x) - f64(ln_mean)[:, None]) * f64(ln_rstd)[:, None]))
    return [
        Case("add", lambda fn: fn(x, dy, out=out), lambda: f64(x) + f64(dy), 3 * size),
        Case("batch_norm_forward", bn_forward, bn_forward_expected, 2 * size,
             timed=lambda fn: fn(x, gamma, beta, eps, out=out, mean=column_stats, rstd=column_stats2,
                                 running_mean=running[0], running_var=running[1])),
        Case("batch_norm_inference", lambda fn: fn(x, gamma, beta, running_mean, running_var, eps, out=out),
             lambda: ref.batch_norm_inference(f64(x), f64(gamma), f64(beta), f64(running_mean), f64(running_var),
                                              eps), 2 * size),
        Case("batch_norm_inference_backward",
             lambda fn: fn(dy, x, gamma, running_mean, running_var, eps, dx=out, dgamma=dgamma, dbeta=dbeta),
             lambda: ref.batch_norm_inference_backward(f64(dy), f64(x), f64(gamma), f64(running_mean),
                                                       f64(running_var), eps), 3 * size,
             column_sum_terms=lambda: np.abs(f64(dy)) * (1.0 + np.abs(f64(x)) + np.abs(f64(running_mean)))),
        Case("batch_norm_backward", lambda fn: fn(dy, x, gamma, bn_mean, bn_rstd, dx=out, dgamma=dgamma, dbeta=dbeta),
             lambda: ref.batch_norm_backward(f64(dy), f64(x), f64(gamma), f64(bn_mean), f64(bn_rstd)), 3 * size,
             column_sum_terms=bn_x_hat),
        Case("layer_norm_forward", lambda fn: fn(x, gamma, beta, eps, out=out, mean=row_stats, rstd=row_stats2),
             lambda: ref.layer_norm_forward(f64(x), f64(gamma), f64(beta), eps), 2 * size),
        Case("layer_norm_backward", lambda fn: fn(dy, x, gamma, ln_mean, ln_rstd, dx=out, dgamma=dgamma, dbeta=dbeta),
             lambda: ref.layer_norm_backward(f64(dy), f64(x), f64(gamma), f64(ln_mean), f64(ln_rstd)), 3 * size,
             column_sum_terms=ln_x_hat),
        Case("weight_norm_forward", lambda fn: fn(x, gamma, out=out, norm=column_stats),
             lambda: ref.weight_norm_forward(f64(x), f64(gamma)), 2 * size),
        Case("weight_norm_backward", lambda fn: fn(dy, x, gamma, norm, dv=out, dg=dgamma),
             lambda: ref.weight_norm_backward(f64(dy), f64(x), f64(gamma), f64(norm)), 3 * size,
             column_sum_terms=lambda: np.abs(f64(dy) * f64(x)) / f64(norm)),
        Case("highway_forward", lambda fn: fn(h, gate, x, out=out),
             lambda: ref.highway_forward(f64(h), f64(gate), f64(x)), 4 * size),
        Case("highway_backward", lambda fn: fn(dy, h, gate, x, dh=out, dt=dx2, dx=dx3),
             lambda: ref.highway_backward(f64(dy), f64(h), f64(gate), f64(x)), 7 * size),
    ]


def make_cases(inp: dict[str, Any]) -> list[Case]:
    """One Case per op (OPS); `out` buffers are preallocated so that timing excludes allocation."""
    A, L = ALPHA_01, LAMBDA_01
    x, b, dy, y, yd, mask = inp["x"], inp["b"], inp["dy"], inp["y"], inp["y_dropout"], inp["mask"]
    logits, labels, a_mm, b_mm = inp["logits"], inp["labels"], inp["a_mm"], inp["b_mm"]
    f64 = lambda a: np.asarray(a, np.float64)
    out, dz, db = aligned_empty_like(x), aligned_empty_like(x), aligned_empty_like(b)
    probs, dlogits, mm_out = aligned_empty_like(logits), aligned_empty_like(logits), aligned_empty_like(a_mm)
    size = x.nbytes
    probs_ref = ref.softmax_cross_entropy_forward(f64(logits), labels)[1]
    probs_in = aligned_copy(probs_ref.astype(logits.dtype))  # converted once, not inside the timed call
    sgd_param, sgd_grad, sgd_velocity = aligned_copy(inp["param"]), dy, aligned_copy(inp["velocity"])
    sgd_start = (aligned_copy(inp["param"]), aligned_copy(inp["velocity"]))

    def sgd_call(fn):
        np.copyto(sgd_param, sgd_start[0])  # from the same start, so the check sees one step
        np.copyto(sgd_velocity, sgd_start[1])
        fn(sgd_param, sgd_grad, sgd_velocity, 0.01, momentum=0.9)
        return sgd_param, sgd_velocity

    def sgd_expected():
        param, velocity = (a.astype(np.float64) for a in sgd_start)  # copies: the reference works in place
        ref.sgd_update(param, f64(sgd_grad), velocity, 0.01, momentum=0.9)
        return param, velocity

    adam_state = [aligned_copy(inp[name]) for name in ("param", "adam_m", "adam_v")]  # param, m, v
    adam_args = (1e-3, 0.9, 0.999, 1e-8, 1e-2, 10, True)  # AdamW at step 10

    def adam_call(fn):
        for state, name in zip(adam_state, ("param", "adam_m", "adam_v")):
            np.copyto(state, inp[name])  # from the same start, so the check sees one step
        fn(adam_state[0], dy, adam_state[1], adam_state[2], *adam_args)
        return tuple(adam_state)

    def adam_expected():
        param, m, v = (f64(inp[name]).copy() for name in ("param", "adam_m", "adam_v"))
        ref.adam_update(param, f64(dy), m, v, *adam_args)
        return param, m, v

    work = aligned_empty_like(x)  # in-place cases overwrite it, as the layers do with out=z

    def reset_work():
        np.copyto(work, x)

    in_place = [
        Case("selu_forward", lambda fn: fn(work, A, L, out=work), lambda: ref.selu_forward(f64(x), A, L), 2 * size,
             prepare=reset_work),
        Case("bias_selu_forward", lambda fn: fn(work, b, A, L, out=work),
             lambda: ref.bias_selu_forward(f64(x), f64(b), A, L), 2 * size, prepare=reset_work),
        Case("alpha_dropout_forward", lambda fn: fn(work, mask, out=work),
             lambda: ref.alpha_dropout_forward(f64(x), mask), 2 * size, prepare=reset_work),
        Case("bias_selu_dropout_forward", lambda fn: fn(work, b, mask, A, L, out=work),
             lambda: ref.bias_selu_dropout_forward(f64(x), f64(b), mask, A, L), 2 * size, prepare=reset_work),
    ]
    return in_place + [
        Case("matmul", lambda fn: fn(a_mm, b_mm, out=mm_out), lambda: f64(a_mm) @ f64(b_mm), 3 * a_mm.nbytes,
             flops=2 * a_mm.shape[0] ** 3),
        Case("selu_forward", lambda fn: fn(x, A, L, out=out), lambda: ref.selu_forward(f64(x), A, L), 2 * size),
        Case("selu_backward", lambda fn: fn(dy, y, A, L, out=out), lambda: ref.selu_backward(f64(dy), f64(y), A, L),
             3 * size),
        Case("bias_selu_forward", lambda fn: fn(x, b, A, L, out=out), lambda: ref.bias_selu_forward(f64(x), f64(b), A, L),
             2 * size),
        Case("bias_selu_backward", lambda fn: fn(dy, y, A, L, dz=dz, db=db),
             lambda: ref.bias_selu_backward(f64(dy), f64(y), A, L), 3 * size,
             column_sum_terms=lambda: ref.selu_backward(f64(dy), f64(y), A, L)),
        Case("column_sum", lambda fn: fn(dy, out=db), lambda: ref.column_sum(f64(dy)), size,
             column_sum_terms=lambda: f64(dy)),
        Case("alpha_dropout_forward", lambda fn: fn(x, mask, out=out), lambda: ref.alpha_dropout_forward(f64(x), mask),
             2 * size),
        Case("alpha_dropout_backward", lambda fn: fn(dy, mask, out=out),
             lambda: ref.alpha_dropout_backward(f64(dy), mask), 2 * size),
        Case("bias_selu_dropout_forward", lambda fn: fn(x, b, mask, A, L, out=out),
             lambda: ref.bias_selu_dropout_forward(f64(x), f64(b), mask, A, L), 2 * size),
        Case("bias_selu_dropout_backward", lambda fn: fn(dy, yd, mask, A, L, dz=dz, db=db),
             lambda: ref.bias_selu_dropout_backward(f64(dy), f64(yd), mask, A, L), 3 * size,
             column_sum_terms=lambda: ref.bias_selu_dropout_backward(f64(dy), f64(yd), mask, A, L)[0]),
        Case("softmax_cross_entropy_forward", lambda fn: fn(logits, labels, probs=probs),
             lambda: ref.softmax_cross_entropy_forward(f64(logits), labels), 2 * logits.nbytes),
        Case("softmax_cross_entropy_backward", lambda fn: fn(probs_in, labels, out=dlogits),
             lambda: ref.softmax_cross_entropy_backward(probs_ref, labels), 2 * logits.nbytes),
        Case("sgd_update", sgd_call, sgd_expected, 5 * size,
             timed=lambda fn: fn(sgd_param, sgd_grad, sgd_velocity, 0.01, momentum=0.9)),
        Case("adam_update", adam_call, adam_expected, 7 * size,  # reads param, grad, m, v; writes param, m, v
             timed=lambda fn: fn(adam_state[0], dy, adam_state[1], adam_state[2], *adam_args)),
        *activation_and_loss_cases(inp, out),
        *composite_cases(inp, out),
    ]


def check(case: Case, result: Any, dtype: str) -> float:
    """The largest |error| / (atol + rtol*|expected|) over the result's arrays; <= 1 passes."""
    rtol, atol = TOLERANCES[dtype]
    if case.op == "matmul":  # a K-term dot product per element: tolerance grows with K
        rtol, atol = max(rtol, 1e-4), max(atol, 1e-4 * np.sqrt(result.shape[0]))
    expected = case.expected()
    results = result if isinstance(result, tuple) else (result,)
    expecteds = expected if isinstance(expected, tuple) else (expected,)
    worst = 0.0
    for got, want in zip(results, expecteds):
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        bound = atol + rtol * np.abs(want)
        if got.ndim == 1 and case.column_sum_terms is not None:  # a column sum: rounding grows with N
            bound = atol + rtol * np.abs(case.column_sum_terms()).sum(axis=0)
        worst = max(worst, float(np.max(np.abs(got - want) / bound)))
    return worst


def torch_rows(inp: dict[str, Any], copy_gbs: float, timing: dict) -> list[dict[str, Any]]:
    """PyTorch's SELU forward (checked) and alpha dropout (its own RNG: not comparable bit for bit)."""
    try:
        import torch
    except ImportError:
        print("torch not installed: no PyTorch baseline rows")
        return []
    torch.set_num_threads(os.cpu_count() or 1)
    x = torch.from_numpy(inp["x"])
    rows = []
    for op, fn, checked in [
        ("selu_forward", lambda: torch.nn.functional.selu(x), True),
        ("alpha_dropout_forward", lambda: torch.nn.functional.alpha_dropout(x, 0.05, True), False),
    ]:
        error = None
        if checked:
            expected = ref.selu_forward(np.asarray(inp["x"], np.float64), ALPHA_01, LAMBDA_01)
            rtol, atol = TOLERANCES[str(inp["x"].dtype)]
            error = float(np.max(np.abs(fn().numpy() - expected) / (atol + rtol * np.abs(expected))))
        t = time_call(fn, **timing)
        rows.append(_row(f"torch {torch.__version__}", op, "default", error, t, 2 * inp["x"].nbytes, 0, copy_gbs))
    return rows


def _row(backend: str, op: str, variant: str, error: float | None, t: dict | None, bytes_moved: int, flops: int,
         baseline_gbs: float, baseline: str = "copy") -> dict[str, Any]:
    row = {"backend": backend, "op": op, "variant": variant, "check_error": error, "baseline": baseline,
           "check": "unchecked" if error is None else ("ok" if error <= 1.0 else "FAILED")}
    if t is not None:
        row.update(median_ms=1e3 * t["median_s"], min_ms=1e3 * t["min_s"], repeats=t["repeats"])
        if flops:
            row["gflop_per_s"] = flops / t["min_s"] / 1e9
        else:
            row["gb_per_s"] = bytes_moved / t["min_s"] / 1e9
            row["fraction_of_baseline"] = row["gb_per_s"] / baseline_gbs
    return row


def run_benchmark(rows: int, cols: int, dtype: str, backends: list[str], with_torch: bool,
                  timing: dict, classes: int = N_CLASSES) -> dict[str, Any]:
    inp = make_inputs(rows, cols, dtype, classes=classes)
    copy_before = copy_bandwidth(rows * cols, dtype, **timing)
    in_place_before = in_place_bandwidth(rows * cols, dtype, **timing)
    results = []
    for backend_name in backends:
        try:
            be = get_backend(backend_name, dtype=dtype)
        except BackendUnavailable as exc:
            print(f"{backend_name}: skipped ({exc})")
            continue
        for case in make_cases(inp):
            for variant, fn in sorted(be.variants(case.op).items()):
                if case.prepare is not None:
                    case.prepare()
                error = check(case, case.call(fn), dtype)  # also the first (compiling) call
                timed = case.timed or case.call
                t = time_call(lambda timed=timed, fn=fn: timed(fn), **timing) if error <= 1.0 else None
                baseline = in_place_before if case.prepare else copy_before
                results.append(_row(be.name, case.op, variant + (" in place" if case.prepare else ""), error, t,
                                    case.bytes_moved, case.flops, baseline["gb_per_s"],
                                    "in-place multiply" if case.prepare else "copy"))
                print(f"{be.name:12s} {case.op:31s} {results[-1]['variant']:24s} {results[-1]['check']}", flush=True)
    if with_torch:
        results += torch_rows(inp, copy_before["gb_per_s"], timing)
    copy_after = copy_bandwidth(rows * cols, dtype, **timing)
    in_place_after = in_place_bandwidth(rows * cols, dtype, **timing)
    # Fractions against the better of the two baseline measurements: the conservative choice.
    best = {"copy": max(copy_before["gb_per_s"], copy_after["gb_per_s"]),
            "in-place multiply": max(in_place_before["gb_per_s"], in_place_after["gb_per_s"])}
    for row in results:
        if "gb_per_s" in row:
            row["fraction_of_baseline"] = row["gb_per_s"] / best[row["baseline"]]
    return {"benchmark": "kernels", "shape": [rows, cols], "softmax_classes": classes, "dtype": dtype,
            "environment": environment(),
            "copy_bandwidth": {"before": copy_before, "after": copy_after},
            "in_place_bandwidth": {"before": in_place_before, "after": in_place_after}, "results": results}


def _print_row(row: dict[str, Any]) -> None:
    speed = (f"{row['gflop_per_s']:8.1f} GFLOP/s" if "gflop_per_s" in row else
             f"{row.get('gb_per_s', float('nan')):6.1f} GB/s {row.get('fraction_of_baseline', float('nan')):5.2f} of "
             f"{row['baseline']}")
    timing = f"median {row['median_ms']:9.3f} ms  min {row['min_ms']:9.3f} ms" if "min_ms" in row else "not timed"
    print(f"{row['backend']:16s} {row['op']:31s} {row['variant']:24s} {row['check']:9s} {timing}  {speed}",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4096, help="N of the (N, D) operands")
    parser.add_argument("--cols", type=int, default=4096, help="D of the (N, D) operands")
    parser.add_argument("--dtype", choices=sorted(TOLERANCES), default="float32")
    parser.add_argument("--classes", type=int, default=N_CLASSES,
                        help="C of the softmax's (N*D/C, C) logits (issue 16's target is at 4096)")
    parser.add_argument("--backends", default="numpy,numba", help="comma-separated backend names")
    parser.add_argument("--no-torch", action="store_true", help="leave out the PyTorch rows")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats (a smoke test)")
    add_isa_argument(parser)
    parser.add_argument("--json", default=None, help="output path (default bench/results/kernels.json)")
    args = parser.parse_args(argv)
    run_for_isa(args.isa, __file__, sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.rows, args.cols = 37, 129
    timing = {"min_time": 0.0, "min_repeats": 2, "warmup": 1} if args.quick else {"min_time": 0.5, "min_repeats": 7}
    report = run_benchmark(args.rows, args.cols, args.dtype, args.backends.split(","), not args.no_torch, timing,
                           min(args.classes, args.rows * args.cols))
    copy, in_place = report["copy_bandwidth"], report["in_place_bandwidth"]
    print(f"copy bandwidth: {copy['before']['gb_per_s']:.1f} GB/s before, {copy['after']['gb_per_s']:.1f} after; "
          f"in-place multiply: {in_place['before']['gb_per_s']:.1f} before, {in_place['after']['gb_per_s']:.1f} after")
    print("fractions against the better baseline measurement:")
    for row in report["results"]:
        _print_row(row)
    path = write_json(args.json or default_json_path("kernels"), report)
    print(f"wrote {path}")
    return 1 if any(row["check"] == "FAILED" for row in report["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())

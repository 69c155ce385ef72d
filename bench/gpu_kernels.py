"""GPU kernel benchmark: every hot op and variant of the cupy backend, timed with CUDA events.

Each (op, variant) is first checked against minisnn.reference (float64, on the host) on the
benchmark's own inputs, then timed with cupyx.profiler.benchmark (CUDA events; median and min).
Elementwise and reduction ops are reported in GB/s (bytes each op must read and write once, as
in bench/kernels.py) and as a fraction of the device-to-device copy bandwidth (cudaMemcpyAsync,
read + write counted) measured in the same run, before and after. The matmul variants run on
(S, S) @ (S, S) float32 (S = --gemm-size, 4096 by default) and are reported in GFLOP/s and as a
fraction of cuBLAS (the "default" variant). PyTorch CUDA rows (SELU, alpha dropout, matmul) are
a framework peer when torch with CUDA is importable. Without a usable GPU it says why and exits 1.

    python bench/gpu_kernels.py                 # (8192, 4096) float32, JSON to bench/results/gpu_kernels.json
    python bench/gpu_kernels.py --quick --json /tmp/gpu_kernels.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from common import default_json_path, environment, write_json
from kernels import TOLERANCES, Case, check, make_cases, make_inputs

from minisnn.backends import BackendUnavailable, get_backend
from minisnn.constants import ALPHA_01, LAMBDA_01

ELEMENTWISE_TARGET = 0.8  # issue 4: elementwise kernels at >= 0.8 of the copy bandwidth
SGEMM_TARGET = 0.5  # issue 4: best hand-written SGEMM >= 0.5 of cuBLAS FP32 on 4096^3
ELEMENTWISE_OPS = ("selu_forward", "selu_backward", "bias_selu_forward", "alpha_dropout_forward",
                   "alpha_dropout_backward", "bias_selu_dropout_forward")


def cupy_backend_or_reason(dtype: str):
    """(backend, None) when a GPU is usable, else (None, the reason)."""
    try:
        return get_backend("cupy", dtype=dtype), None
    except BackendUnavailable as exc:
        return None, str(exc)


def gpu_time(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> dict[str, float]:
    """Median and min GPU time of fn() in seconds, from CUDA events around each call."""
    from cupyx.profiler import benchmark

    times = benchmark(fn, n_repeat=repeats, n_warmup=warmup).gpu_times[0]  # (repeats,)
    return {"median_s": float(np.median(times)), "min_s": float(np.min(times)), "repeats": int(times.size)}


def copy_bandwidth(cp, n_bytes: int, repeats: int) -> dict[str, float]:
    """Device-to-device cudaMemcpyAsync bandwidth in GB/s, counting bytes read + written."""
    src, dst = cp.ones(n_bytes, dtype=cp.uint8), cp.empty(n_bytes, dtype=cp.uint8)
    t = gpu_time(lambda: dst.data.copy_from_device_async(src.data, n_bytes), repeats)
    return {"gb_per_s": 2 * n_bytes / t["min_s"] / 1e9, "median_gb_per_s": 2 * n_bytes / t["median_s"] / 1e9,
            "n_bytes": n_bytes, **t}


def device_calls(be, inp: dict[str, Any]) -> dict[str, tuple[Callable, Callable]]:
    """op -> (checked call, timed call) on device copies of the inputs, with preallocated outputs."""
    A, L = ALPHA_01, LAMBDA_01
    d = {name: be.asarray(value) for name, value in inp.items() if isinstance(value, np.ndarray)}
    x, b, dy, y, yd, mask = d["x"], d["b"], d["dy"], d["y"], d["y_dropout"], inp["mask"]
    logits, labels = d["logits"], d["labels"]
    out, dz, db = be.empty(x.shape), be.empty(x.shape), be.empty(b.shape)
    probs, dlogits = be.empty(logits.shape), be.empty(logits.shape)
    probs_in = be.softmax_cross_entropy_forward(logits, labels)[1]
    param, velocity = d["param"].copy(), d["velocity"].copy()

    def sgd_checked(fn):
        param[...] = d["param"]  # one step from the reference's start
        velocity[...] = d["velocity"]
        fn(param, dy, velocity, 0.01, momentum=0.9)
        return param, velocity

    adam_state = [d[name].copy() for name in ("param", "adam_m", "adam_v")]  # param, m, v
    adam_args = (1e-3, 0.9, 0.999, 1e-8, 1e-2, 10, True)  # as in kernels.make_cases

    def adam_checked(fn):
        for state, name in zip(adam_state, ("param", "adam_m", "adam_v")):
            state[...] = d[name]  # one step from the reference's start
        fn(adam_state[0], dy, adam_state[1], adam_state[2], *adam_args)
        return tuple(adam_state)

    gamma, beta, running_mean, running_var = d["gamma"], d["beta"], d["running_mean"], d["running_var"]
    features, rows_stats = be.empty(gamma.shape), be.empty(x[:, 0].shape)  # (D,), (N,)
    features2, rows_stats2, dgamma, dbeta = be.empty(gamma.shape), be.empty(x[:, 0].shape), be.empty(gamma.shape), \
        be.empty(gamma.shape)
    running = [running_mean.copy(), running_var.copy()]
    _, bn_mean, bn_rstd = be.batch_norm_forward(x, gamma, beta, 1e-5)
    _, ln_mean, ln_rstd = be.layer_norm_forward(x, gamma, beta, 1e-5)

    def bn_forward_checked(fn):
        running[0][...] = running_mean  # one update from the reference's start
        running[1][...] = running_var
        return fn(x, gamma, beta, 1e-5, out=out, mean=features, rstd=features2, running_mean=running[0],
                  running_var=running[1]) + tuple(running)

    def same(call):
        return call, call

    return {
        "selu_forward": same(lambda fn: fn(x, A, L, out=out)),
        "selu_backward": same(lambda fn: fn(dy, y, A, L, out=out)),
        "bias_selu_forward": same(lambda fn: fn(x, b, A, L, out=out)),
        "bias_selu_backward": same(lambda fn: fn(dy, y, A, L, dz=dz, db=db)),
        "column_sum": same(lambda fn: fn(dy, out=db)),
        "alpha_dropout_forward": same(lambda fn: fn(x, mask, out=out)),
        "alpha_dropout_backward": same(lambda fn: fn(dy, mask, out=out)),
        "bias_selu_dropout_forward": same(lambda fn: fn(x, b, mask, A, L, out=out)),
        "bias_selu_dropout_backward": same(lambda fn: fn(dy, yd, mask, A, L, dz=dz, db=db)),
        "softmax_cross_entropy_forward": same(lambda fn: fn(logits, labels, probs=probs)),
        "softmax_cross_entropy_backward": same(lambda fn: fn(probs_in, labels, out=dlogits)),
        "sgd_update": (sgd_checked, lambda fn: fn(param, dy, velocity, 0.01, momentum=0.9)),
        "adam_update": (adam_checked, lambda fn: fn(adam_state[0], dy, adam_state[1], adam_state[2], *adam_args)),
        "relu_forward": same(lambda fn: fn(x, out=out)),
        "relu_backward": same(lambda fn: fn(dy, x, out=out)),  # x as the output y: its sign picks
        "batch_norm_forward": (bn_forward_checked, lambda fn: fn(x, gamma, beta, 1e-5, out=out, mean=features,
                                                                 rstd=features2, running_mean=running[0],
                                                                 running_var=running[1])),
        "batch_norm_inference": same(lambda fn: fn(x, gamma, beta, running_mean, running_var, 1e-5, out=out)),
        "batch_norm_inference_backward": same(lambda fn: fn(dy, x, gamma, running_mean, running_var, 1e-5, dx=out,
                                                            dgamma=dgamma, dbeta=dbeta)),
        "batch_norm_backward": same(lambda fn: fn(dy, x, gamma, bn_mean, bn_rstd, dx=out, dgamma=dgamma, dbeta=dbeta)),
        "layer_norm_forward": same(lambda fn: fn(x, gamma, beta, 1e-5, out=out, mean=rows_stats, rstd=rows_stats2)),
        "layer_norm_backward": same(lambda fn: fn(dy, x, gamma, ln_mean, ln_rstd, dx=out, dgamma=dgamma,
                                                  dbeta=dbeta)),
    }


def to_host(be, result: Any) -> Any:
    if isinstance(result, tuple):
        return tuple(to_host(be, r) for r in result)
    return float(be.to_numpy(result)) if result.ndim == 0 else be.to_numpy(result)


def row(op: str, variant: str, error: float | None, t: dict | None, **speed) -> dict[str, Any]:
    entry = {"op": op, "variant": variant, "check_error": error,
             "check": "unchecked" if error is None else ("ok" if error <= 1.0 else "FAILED")}
    if t is not None:
        entry.update(median_ms=1e3 * t["median_s"], min_ms=1e3 * t["min_s"], repeats=t["repeats"], **speed)
    return entry


def bench_ops(be, inp: dict[str, Any], copy_gbs: float, repeats: int) -> list[dict[str, Any]]:
    dtype = be.dtype.name
    calls = device_calls(be, inp)
    rows = []
    for case in make_cases(inp):
        if case.op not in calls:  # matmul has its own benchmark below
            continue
        checked, timed = calls[case.op]
        for variant, fn in sorted(be.variants(case.op).items()):
            error = check(case, to_host(be, checked(fn)), dtype)  # also compiles the kernel
            t = gpu_time(lambda fn=fn, timed=timed: timed(fn), repeats) if error <= 1.0 else None
            gbs = case.bytes_moved / t["min_s"] / 1e9 if t else None
            rows.append(row(case.op, variant, error, t, gb_per_s=gbs, fraction_of_copy=gbs and gbs / copy_gbs))
            print_row(rows[-1])
    return rows


def bench_matmul(be, size: int, repeats: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal((size, size)).astype(be.dtype) for _ in range(2))  # (S, S)
    da, db, out = be.asarray(a), be.asarray(b), be.empty((size, size))
    case = Case("matmul", lambda fn: None, lambda: a.astype(np.float64) @ b.astype(np.float64), 3 * a.nbytes,
                flops=2 * size**3)
    rows, cublas = [], None
    for variant, fn in be.variants("matmul").items():  # "default" (cuBLAS) first
        error = check(case, be.to_numpy(fn(da, db, out=out)), be.dtype.name)
        t = gpu_time(lambda fn=fn: fn(da, db, out=out), max(3, repeats // 10)) if error <= 1.0 else None
        gflops = case.flops / t["min_s"] / 1e9 if t else None
        if variant == "default":
            cublas = gflops
        rows.append(row("matmul", variant, error, t, gflop_per_s=gflops,
                        fraction_of_cublas=gflops and cublas and gflops / cublas))
        print_row(rows[-1])
    return rows


def torch_rows(inp: dict[str, Any], gemm_size: int, copy_gbs: float, repeats: int) -> list[dict[str, Any]]:
    """PyTorch CUDA eager peers: SELU forward (checked), alpha dropout (its own RNG), matmul."""
    try:
        import torch
    except ImportError:
        print("torch not installed: no PyTorch rows")
        return []
    if not torch.cuda.is_available():
        print(f"torch {torch.__version__} has no CUDA here: no PyTorch rows")
        return []
    x = torch.from_numpy(inp["x"]).cuda()
    mm = torch.randn(gemm_size, gemm_size, device="cuda", dtype=x.dtype)
    expected = inp["x"].astype(np.float64)
    expected = np.where(expected > 0, LAMBDA_01 * expected, LAMBDA_01 * ALPHA_01 * np.expm1(np.minimum(expected, 0)))
    rtol, atol = TOLERANCES[str(inp["x"].dtype)]
    selu_error = float(np.max(np.abs(torch.nn.functional.selu(x).cpu().numpy() - expected)
                              / (atol + rtol * np.abs(expected))))
    rows = []
    for op, fn, error, nbytes in [
        ("selu_forward", lambda: torch.nn.functional.selu(x), selu_error, 2 * x.nbytes),
        ("alpha_dropout_forward", lambda: torch.nn.functional.alpha_dropout(x, 0.05, True), None, 2 * x.nbytes),
    ]:
        t = gpu_time(fn, repeats)
        gbs = nbytes / t["min_s"] / 1e9
        rows.append(row(op, f"torch {torch.__version__}", error, t, gb_per_s=gbs, fraction_of_copy=gbs / copy_gbs))
        print_row(rows[-1])
    t = gpu_time(lambda: torch.matmul(mm, mm), max(3, repeats // 10))
    rows.append(row("matmul", f"torch {torch.__version__}", None, t, gflop_per_s=2 * gemm_size**3 / t["min_s"] / 1e9))
    print_row(rows[-1])
    return rows


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's two kernel targets, read off the rows."""
    elementwise = {r["op"]: r.get("fraction_of_copy") for r in rows
                   if r["op"] in ELEMENTWISE_OPS and r["variant"] == "default"}
    sgemm = [r.get("fraction_of_cublas") or 0.0 for r in rows
             if r["op"] == "matmul" and r["variant"].startswith("sgemm")]
    best = max(sgemm, default=0.0)
    return {"elementwise_fraction_of_copy": elementwise,
            "elementwise_met": all(v is not None and v >= ELEMENTWISE_TARGET for v in elementwise.values()),
            "best_sgemm_fraction_of_cublas": best, "sgemm_met": best >= SGEMM_TARGET}


def print_row(entry: dict[str, Any]) -> None:
    if "min_ms" not in entry:
        speed = "not timed"
    elif entry.get("gflop_per_s") is not None:
        speed = f"{entry['gflop_per_s']:9.1f} GFLOP/s" + (
            f" {entry['fraction_of_cublas']:5.2f} of cuBLAS" if entry.get("fraction_of_cublas") else "")
    else:
        speed = f"{entry['gb_per_s']:8.1f} GB/s {entry['fraction_of_copy']:5.2f} of copy"
    timing = f"median {entry['median_ms']:9.4f} ms  min {entry['min_ms']:9.4f} ms  " if "min_ms" in entry else ""
    print(f"{entry['op']:31s} {entry['variant']:24s} {entry['check']:9s} {timing}{speed}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=8192, help="N of the (N, D) operands")
    parser.add_argument("--cols", type=int, default=4096, help="D of the (N, D) operands")
    parser.add_argument("--gemm-size", type=int, default=4096, help="S of the (S, S) @ (S, S) products")
    parser.add_argument("--dtype", choices=sorted(TOLERANCES), default="float32")
    parser.add_argument("--repeats", type=int, default=100, help="timed calls per op (matmul: a tenth)")
    parser.add_argument("--no-torch", action="store_true", help="leave out the PyTorch rows")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats (a smoke test)")
    parser.add_argument("--json", default=None, help="output path (default bench/results/gpu_kernels.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.cols, args.gemm_size, args.repeats = 257, 129, 130, 5
    be, reason = cupy_backend_or_reason(args.dtype)
    if be is None:
        print(f"gpu_kernels: no usable GPU, nothing measured: {reason}", file=sys.stderr)
        return 1
    import cupy as cp

    inp = make_inputs(args.rows, args.cols, args.dtype)
    n_bytes = args.rows * args.cols * np.dtype(args.dtype).itemsize
    copy_before = copy_bandwidth(cp, n_bytes, args.repeats)
    print(f"{be.info()['device']}: device-to-device copy {copy_before['gb_per_s']:.1f} GB/s")
    rows = bench_ops(be, inp, copy_before["gb_per_s"], args.repeats)
    rows += bench_matmul(be, args.gemm_size, args.repeats)
    if not args.no_torch:
        rows += torch_rows(inp, args.gemm_size, copy_before["gb_per_s"], args.repeats)
    copy_after = copy_bandwidth(cp, n_bytes, args.repeats)
    summary = targets(rows)
    print(f"targets: {summary}")
    payload = {"benchmark": "gpu_kernels", "command": " ".join(sys.argv), "shape": [args.rows, args.cols],
               "gemm_size": args.gemm_size, "dtype": args.dtype, "gpu": be.info(), "environment": environment(),
               "copy_bandwidth": {"before": copy_before, "after": copy_after}, "results": rows, "targets": summary}
    path = write_json(args.json or default_json_path("gpu_kernels"), payload)
    print(f"wrote {path}")
    return 1 if any(r["check"] == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

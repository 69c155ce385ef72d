"""GPU training-step benchmark: minisnn on the cupy backend against PyTorch CUDA eager.

The model and step are bench/train_step.py's (depth x [Linear, SELU, AlphaDropout(0.05)] + Linear,
softmax cross-entropy, SGD lr 0.01 momentum 0.9, one fixed float32 batch already on the GPU), on
C1-C4 and two GPU-sized configs G1, G2 ((batch, inputs, width, depth, classes)). Both frameworks
run in this one process, interleaved round by round; each round times `steps` consecutive steps
with CUDA events (cupyx.profiler.benchmark; PyTorch and CuPy both use the legacy default stream,
so the events see PyTorch's kernels too). The result is the median (and min) over rounds of the
step time; "GEMM only" replays the matrix products of one minisnn step (cuBLAS). Without a usable
GPU it says why and exits 1; without PyTorch CUDA it times minisnn alone.

    python bench/gpu_train_step.py                   # C1-C4, G1, G2; JSON to bench/results/gpu_train_step.json
    python bench/gpu_train_step.py --configs G1 --rounds 3
    python bench/gpu_train_step.py --quick --json /tmp/gpu_train_step.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from common import default_json_path, environment, write_json
from gpu_kernels import cupy_backend_or_reason
from train_step import CONFIGS, LR, MOMENTUM, QUICK_CONFIGS, MinisnnStep, TorchStep

GPU_CONFIGS = {**CONFIGS, "G1": (4096, 784, 4096, 16, 10), "G2": (8192, 1024, 2048, 32, 10)}
STEP_TARGET = 1.0  # issue 4: minisnn step time <= 1.0 x PyTorch CUDA eager on every config


class TorchCudaStep(TorchStep):
    """bench/train_step.py's PyTorch model and batch, moved to the GPU."""

    def __init__(self, config: tuple[int, ...], seed: int = 0):
        super().__init__(config, threads=1, seed=seed)
        self.model.to("cuda")  # in place: the optimizer keeps the same parameters
        self.x, self.labels = self.x.cuda(), self.labels.cuda()


def torch_cuda_reason() -> str | None:
    """None when PyTorch with CUDA is importable, else why not."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} cannot use CUDA here"
    return None


def step_time_per_round(fn: Callable[[], Any], steps: int) -> float:
    """Mean GPU time per call over `steps` back-to-back calls (CUDA events, one warm-up call)."""
    from cupyx.profiler import benchmark

    return float(np.mean(benchmark(fn, n_repeat=steps, n_warmup=1).gpu_times[0]))


def interleaved(candidates: dict[str, Callable[[], Any]], rounds: int, steps: int) -> dict[str, dict[str, float]]:
    per_round: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            per_round[name].append(step_time_per_round(fn, steps))
    return {name: {"median_ms": 1e3 * statistics.median(t), "min_ms": 1e3 * min(t), "rounds": rounds,
                   "steps_per_round": steps} for name, t in per_round.items()}


def bench_config(name: str, config: tuple[int, ...], rounds: int, steps: int, with_torch: bool) -> dict[str, Any]:
    minisnn_step = MinisnnStep("cupy", config)
    candidates: dict[str, Callable[[], Any]] = {"minisnn_cupy": minisnn_step}
    gemm = minisnn_step.gemm_replay()
    candidates["minisnn_gemm_only"] = gemm
    if with_torch:
        candidates["torch_cuda"] = TorchCudaStep(config)
    timing = interleaved(candidates, rounds, steps)
    result: dict[str, Any] = {"config": list(config), "timing": timing, "gemm_calls_per_step": gemm.n_calls}
    ours = timing["minisnn_cupy"]["median_ms"]
    result["step_over_gemm_only"] = ours / timing["minisnn_gemm_only"]["median_ms"]
    if with_torch:
        result["step_over_torch"] = ours / timing["torch_cuda"]["median_ms"]
        result["target_met"] = result["step_over_torch"] <= STEP_TARGET
    print(f"{name} {config}: " + "  ".join(f"{k} {v['median_ms']:.3f} ms" for k, v in timing.items())
          + (f"  ratio to torch {result['step_over_torch']:.3f}" if with_torch else ""), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(GPU_CONFIGS), help="comma-separated names (C1-C4, G1, G2)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per config")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round and framework")
    parser.add_argument("--no-torch", action="store_true", help="leave out PyTorch")
    parser.add_argument("--quick", action="store_true", help="one tiny config, 2 rounds (a smoke test)")
    parser.add_argument("--json", default=None, help="output path (default bench/results/gpu_train_step.json)")
    args = parser.parse_args(argv)
    be, reason = cupy_backend_or_reason("float32")
    if be is None:
        print(f"gpu_train_step: no usable GPU, nothing measured: {reason}", file=sys.stderr)
        return 1
    unknown = [n for n in args.configs.split(",") if n not in GPU_CONFIGS]
    if unknown and not args.quick:
        parser.error(f"unknown configs {unknown}; choose from {', '.join(GPU_CONFIGS)}")
    configs = QUICK_CONFIGS if args.quick else {n: GPU_CONFIGS[n] for n in args.configs.split(",")}
    rounds, steps = (2, 3) if args.quick else (args.rounds, args.steps)
    torch_reason = None if not args.no_torch else "--no-torch"
    torch_reason = torch_reason or torch_cuda_reason()
    if torch_reason:
        print(f"no PyTorch peer: {torch_reason}")
    results = {name: bench_config(name, config, rounds, steps, torch_reason is None)
               for name, config in configs.items()}
    payload = {"benchmark": "gpu_train_step", "command": " ".join(sys.argv), "gpu": be.info(),
               "environment": environment(), "torch": _torch_version(), "model": {"lr": LR, "momentum": MOMENTUM},
               "results": results,
               "all_targets_met": None if torch_reason else all(r["target_met"] for r in results.values())}
    path = write_json(args.json or default_json_path("gpu_train_step"), payload)
    print(f"wrote {path}")
    return 0


def _torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return f"{torch.__version__} (cuda {torch.version.cuda})"


if __name__ == "__main__":
    sys.exit(main())

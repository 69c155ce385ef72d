"""Training-step benchmark: minisnn (numpy and numba backends) against PyTorch eager on the CPU.

Model, as in issue 3: depth x [Linear, SELU, AlphaDropout(0.05)] + Linear, softmax cross-entropy,
SGD (lr 0.01, momentum 0.9), one fixed float32 batch. Configs are (batch, inputs, width, depth,
classes). minisnn uses mlp(..., fused=True): one LinearSELU layer (bias + SELU + alpha dropout
fused) per hidden layer.

Timing: all frameworks in this one process, interleaved round by round; each round runs one
untimed step per framework, then `steps` timed steps; the result is the median (and min) over
rounds of the mean step time; ratios are medians of the per-round ratios (and, for a machine
shared with other work, ratios of the minima over rounds). "GEMM only" replays exactly the
matrix products one minisnn step made (same operands, layouts and output buffers), timed the
same way. Peak resident memory is measured per framework in a fresh subprocess (VmHWM after
warm-up and the timed steps); allocation per step is measured with tracemalloc (NumPy reports
its buffers to it).

    python bench/train_step.py                        # C1-C4, JSON to bench/results/train_step.json
    python bench/train_step.py --configs C4 --rounds 3
    python bench/train_step.py --quick --json /tmp/t.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from common import add_isa_argument, default_json_path, environment, run_for_isa, write_json

from minisnn.backends import BackendUnavailable, get_backend
from minisnn.losses import SoftmaxCrossEntropy
from minisnn.model import mlp
from minisnn.optim import SGD
from minisnn.train import train_step

# name -> (batch, inputs, width, depth, classes)
CONFIGS = {"C1": (128, 784, 1024, 8, 10), "C2": (1024, 784, 1024, 8, 10), "C3": (128, 784, 256, 32, 10),
           "C4": (64, 8, 256, 8, 2)}
QUICK_CONFIGS = {"T1": (16, 12, 32, 3, 3)}
DROPOUT, LR, MOMENTUM = 0.05, 0.01, 0.9
MINISNN_BACKENDS = ("numpy", "numba")
# Issue 3 targets: numba step / torch step, numba step / its GEMM-only time, peak RSS numba / torch.
TARGETS = {"C1": (0.85, 1.15), "C2": (0.85, 1.15), "C3": (0.55, 1.15), "C4": (0.5, None)}
RSS_TARGET = 0.5


def make_batch(config: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    batch, n_in, _, _, classes = config
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, n_in)).astype(np.float32), rng.integers(0, classes, batch)  # (N, D), (N,)


class MinisnnStep:
    """One minisnn training step on a fixed batch; callable."""

    def __init__(self, backend_name: str, config: tuple[int, ...], seed: int = 0):
        _, n_in, width, depth, classes = config
        self.backend = get_backend(backend_name, dtype="float32")
        self.model = mlp(n_in, classes, depth=depth, width=width, dropout=DROPOUT, backend=self.backend, seed=seed)
        self.loss = SoftmaxCrossEntropy(self.backend)
        self.optimizer = SGD(self.model, lr=LR, momentum=MOMENTUM)
        x, labels = make_batch(config, seed)
        self.x, self.labels = self.backend.asarray(x), self.backend.asarray(labels)

    def __call__(self):
        return train_step(self.model, self.loss, self.optimizer, self.x, self.labels)

    def gemm_replay(self) -> Callable[[], None]:
        """A function repeating exactly the matrix products of one step (recorded from a real step)."""
        calls: list[tuple[Any, Any, Any]] = []
        original = self.backend.matmul

        def recording_matmul(a, b, out=None):
            calls.append((a, b, out))
            return original(a, b, out=out)

        self.backend.matmul = recording_matmul
        try:
            self()
        finally:
            self.backend.matmul = original

        def replay() -> None:
            for a, b, out in calls:
                original(a, b, out=out)

        replay.n_calls = len(calls)
        return replay

    def allocation_per_step(self, steps: int = 3) -> dict[str, int]:
        """Bytes allocated and still held per step once warm (tracemalloc; NumPy buffers included)."""
        self()
        tracemalloc.start()
        try:
            self()
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            for _ in range(steps):
                self()
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return {"temporary_bytes_peak": peak - before, "retained_bytes_per_step": (after - before) // steps}


class TorchStep:
    """The same model in PyTorch eager (default initialization; timing only)."""

    def __init__(self, config: tuple[int, ...], threads: int, seed: int = 0):
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        _, n_in, width, depth, classes = config
        layers: list[torch.nn.Module] = []
        for i in range(depth):
            layers += [torch.nn.Linear(n_in if i == 0 else width, width), torch.nn.SELU(),
                       torch.nn.AlphaDropout(DROPOUT)]
        layers.append(torch.nn.Linear(width if depth else n_in, classes))
        self.torch = torch
        self.model = torch.nn.Sequential(*layers)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        x, labels = make_batch(config, seed)
        self.x, self.labels = torch.from_numpy(x), torch.from_numpy(labels)

    def __call__(self):
        self.optimizer.zero_grad()
        loss = self.torch.nn.functional.cross_entropy(self.model(self.x), self.labels)
        loss.backward()
        self.optimizer.step()
        return loss


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def interleaved_timing(candidates: dict[str, Callable], rounds: int, steps: int) -> dict[str, dict[str, float]]:
    """Median and min over rounds of the mean time per call, candidates interleaved within each round."""
    per_round: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            fn()  # untimed: absorbs the switch from the previous candidate's thread pool
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            per_round[name].append((time.perf_counter() - t0) / steps)
    return {name: {"median_ms": 1e3 * statistics.median(t), "min_ms": 1e3 * min(t), "rounds": rounds,
                   "steps_per_round": steps, "per_round_ms": [1e3 * v for v in t]} for name, t in per_round.items()}


def paired_ratio(timing: dict, numerator: str, denominator: str) -> float:
    """Median over rounds of the ratio within a round (both measured back to back: drifts cancel)."""
    return statistics.median(a / b for a, b in zip(timing[numerator]["per_round_ms"],
                                                   timing[denominator]["per_round_ms"]))


def choose_steps(candidates: dict[str, Callable], seconds_per_round: float) -> int:
    """Steps per round so that the slowest candidate takes about seconds_per_round."""
    slowest = 0.0
    for fn in candidates.values():
        fn()
        t0 = time.perf_counter()
        fn()
        slowest = max(slowest, time.perf_counter() - t0)
    return max(2, min(200, int(seconds_per_round / max(slowest, 1e-6))))


def measure_memory(framework: str, config_name: str, config: tuple[int, ...], steps: int, threads: int,
                   environment: dict[str, str] | None = None) -> dict:
    """Peak RSS of a fresh process that builds one framework's model and trains `steps` steps."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--worker-config",
               json.dumps([config_name, list(config)]), "--worker-steps", str(steps), "--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False,
                            env={**os.environ, **(environment or {})})
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "worker failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status in MiB: VmRSS (now) or VmHWM (peak of this process image).

    VmHWM, unlike ru_maxrss, starts afresh at exec, so a child does not inherit the parent's peak.
    """
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def worker(framework: str, config: tuple[int, ...], steps: int, threads: int) -> dict[str, float]:
    """Run in the memory subprocess: build, warm up, train; report resident memory in MiB."""
    step = TorchStep(config, threads) if framework == "torch" else MinisnnStep(framework, config)
    step()
    step()
    rss_warm = _status_mb("VmRSS")
    for _ in range(steps):
        step()
    return {"peak_rss_mb": _status_mb("VmHWM"), "rss_after_warmup_mb": rss_warm, "rss_end_mb": _status_mb("VmRSS"),
            "steps": steps}


def minisnn_steps(make_step: Callable[[str], MinisnnStep]) -> dict[str, MinisnnStep]:
    """make_step(backend name) for each available minisnn backend, labelled "minisnn-<backend>"."""
    steps = {}
    for backend_name in MINISNN_BACKENDS:
        try:
            steps[f"minisnn-{backend_name}"] = make_step(backend_name)
        except BackendUnavailable as exc:
            print(f"  minisnn-{backend_name}: skipped ({exc})")
    return steps


def bench_config(name: str, config: tuple[int, ...], args: argparse.Namespace) -> dict[str, Any]:
    candidates: dict[str, Callable] = dict(minisnn_steps(lambda backend_name: MinisnnStep(backend_name, config)))
    replays = {label: step.gemm_replay() for label, step in candidates.items()}
    allocation = {label: step.allocation_per_step() for label, step in candidates.items()}
    if args.with_torch:
        candidates["torch"] = TorchStep(config, args.threads)
    for label, replay in replays.items():
        candidates[f"{label} gemm-only"] = replay
    steps = args.steps or choose_steps(candidates, args.seconds_per_round)
    timing = interleaved_timing(candidates, args.rounds, steps)
    frameworks = [c for c in candidates if not c.endswith("gemm-only")]
    memory = {fw: measure_memory(fw.removeprefix("minisnn-"), name, config, args.memory_steps, args.threads)
              for fw in frameworks}
    if "minisnn-numba" in frameworks:  # for reference: the same process with Numba's JIT loaded
        from minisnn.backends.numba_backend import KERNELS_ENV

        memory["minisnn-numba, jitted kernels"] = measure_memory("numba", name, config, args.memory_steps,
                                                                 args.threads, {KERNELS_ENV: "jit"})
    result: dict[str, Any] = {"config": dict(zip(("batch", "inputs", "width", "depth", "classes"), config)),
                              "timing": timing, "memory": memory, "allocation_per_step": allocation,
                              "gemm_calls_per_step": {k: v.n_calls for k, v in replays.items()}}
    result["ratios"] = ratios(name, timing, memory)
    return result


def ratios(name: str, timing: dict, memory: dict) -> dict[str, Any]:
    """Step-time and memory ratios, with issue 3's targets where the config has one."""
    out: dict[str, Any] = {}
    step_target, gemm_target = TARGETS.get(name, (None, None))
    for backend_name in MINISNN_BACKENDS:
        label = f"minisnn-{backend_name}"
        if label not in timing:
            continue
        out[f"{label} / gemm-only"] = paired_ratio(timing, label, f"{label} gemm-only")
        out[f"{label} / gemm-only, ratio of minima"] = timing[label]["min_ms"] / timing[f"{label} gemm-only"]["min_ms"]
        if "torch" in timing:
            out[f"{label} / torch"] = paired_ratio(timing, label, "torch")
            out[f"{label} / torch, ratio of minima"] = timing[label]["min_ms"] / timing["torch"]["min_ms"]
            out[f"torch gemm share ({label} gemm-only / torch)"] = paired_ratio(timing, f"{label} gemm-only", "torch")
        if "peak_rss_mb" in memory.get(label, {}) and "peak_rss_mb" in memory.get("torch", {}):
            out[f"{label} peak RSS / torch"] = memory[label]["peak_rss_mb"] / memory["torch"]["peak_rss_mb"]
    targets = {}
    if step_target is not None and "minisnn-numba / torch" in out:
        targets[f"numba / torch <= {step_target:.2f}"] = out["minisnn-numba / torch"] <= step_target
    if gemm_target is not None and "minisnn-numba / gemm-only" in out:
        targets[f"numba / gemm-only <= {gemm_target:.2f}"] = out["minisnn-numba / gemm-only"] <= gemm_target
    if "minisnn-numba peak RSS / torch" in out:
        targets[f"numba peak RSS / torch <= {RSS_TARGET:.2f}"] = out["minisnn-numba peak RSS / torch"] <= RSS_TARGET
    out["targets_met"] = targets
    return out


def print_config(name: str, result: dict[str, Any]) -> None:
    print(f"{name} {result['config']}")
    for label, t in result["timing"].items():
        mem = result["memory"].get(label, {})
        mem_text = f"  peak RSS {mem['peak_rss_mb']:7.1f} MiB" if "peak_rss_mb" in mem else ""
        alloc = result["allocation_per_step"].get(label)
        alloc_text = (f"  temp alloc/step {alloc['temporary_bytes_peak'] / 1024:8.1f} KiB" if alloc else "")
        print(f"  {label:28s} median {t['median_ms']:9.3f} ms  min {t['min_ms']:9.3f} ms{mem_text}{alloc_text}")
    for label, mem in result["memory"].items():
        if label not in result["timing"] and "peak_rss_mb" in mem:
            print(f"  {label:28s} {'':38s}  peak RSS {mem['peak_rss_mb']:7.1f} MiB")
    for key, value in result["ratios"].items():
        if key != "targets_met":
            print(f"  {key:50s} {value:6.3f}")
    for key, met in result["ratios"]["targets_met"].items():
        print(f"  target {key:43s} {'met' if met else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated config names (C1-C4)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per config")
    parser.add_argument("--steps", type=int, default=0, help="timed steps per round (default: about 0.5 s worth)")
    parser.add_argument("--seconds-per-round", type=float, default=0.5, help=argparse.SUPPRESS)
    parser.add_argument("--memory-steps", type=int, default=10, help="steps run by each memory subprocess")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="PyTorch intra-op threads")
    parser.add_argument("--no-torch", action="store_true", help="leave out PyTorch")
    parser.add_argument("--quick", action="store_true", help="one tiny config, 2 rounds (a smoke test)")
    add_isa_argument(parser)
    parser.add_argument("--json", default=None, help="output path (default bench/results/train_step.json)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-config", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-steps", type=int, default=10, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    run_for_isa(args.isa, __file__, sys.argv[1:] if argv is None else argv)

    if args.worker:
        _, config = json.loads(args.worker_config)
        print(json.dumps(worker(args.worker, tuple(config), args.worker_steps, args.threads)))
        return 0

    configs = QUICK_CONFIGS if args.quick else {name: CONFIGS[name] for name in args.configs.split(",")}
    if args.quick:
        args.rounds, args.steps, args.memory_steps = 2, 2, 2
    args.with_torch = not args.no_torch and torch_available()
    if not args.no_torch and not args.with_torch:
        print("torch not installed: PyTorch comparison skipped (pip install torch)")
    report: dict[str, Any] = {"benchmark": "train_step", "environment": environment(),
                              "settings": {"dropout": DROPOUT, "lr": LR, "momentum": MOMENTUM, "dtype": "float32",
                                           "torch_threads": args.threads if args.with_torch else None},
                              "configs": {}}
    if args.with_torch:
        import torch

        report["environment"]["torch"] = torch.__version__
    for name, config in configs.items():
        report["configs"][name] = bench_config(name, config, args)
        print_config(name, report["configs"][name])
    path = write_json(args.json or default_json_path("train_step"), report)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

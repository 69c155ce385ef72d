"""Training-step benchmark of the networks SNNs are compared with: minisnn against PyTorch eager.

Models (float32, softmax cross-entropy, SGD lr 0.01 momentum 0.9, one fixed batch):
- BN8: minisnn.methods "batchnorm", 8 hidden layers of width 1024, batch 128, 784 inputs, 10
  classes: 8 x [Linear, ReLU, BatchNorm1d] + Linear (the authors' order; PyTorch the same);
- RES32: "resnet", width 256, 16 rectangular blocks (32 Linear+BN layers in the branches),
  batch 128, 784 inputs, 10 classes: Linear, BN, ReLU, 16 x ResidualBlock, Linear.
Timing as in bench/train_step.py: frameworks interleaved round by round in this process, median
over rounds of the mean step time, ratios the medians of per-round ratios; "gemm-only" replays
the matrix products of one minisnn step. Target (issue 11): numba step <= 0.85 x PyTorch's.

    python bench/methods_step.py                 # JSON to bench/results/methods_step.json
    python bench/methods_step.py --quick --json /tmp/m.json
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from common import default_json_path, environment, write_json
from train_step import (MINISNN_BACKENDS, MinisnnStep, TorchStep, choose_steps, interleaved_timing, make_batch, minisnn_steps,
                        paired_ratio, torch_available)

from minisnn.backends import get_backend
from minisnn.losses import SoftmaxCrossEntropy
from minisnn.methods import build_model
from minisnn.optim import SGD

LR, MOMENTUM = 0.01, 0.9
# name -> (method, batch, inputs, width, depth, classes); depth counts blocks for resnet
CONFIGS = {"BN8": ("batchnorm", 128, 784, 1024, 8, 10), "RES32": ("resnet", 128, 784, 256, 16, 10)}
QUICK_CONFIGS = {"BN-tiny": ("batchnorm", 16, 12, 32, 2, 3), "RES-tiny": ("resnet", 16, 12, 32, 2, 3)}
STEP_TARGET = 0.85


class MethodStep(MinisnnStep):
    """One minisnn training step of a method's network on a fixed batch (gemm_replay inherited)."""

    def __init__(self, backend_name: str, config: tuple, seed: int = 0):
        method, batch, n_in, width, depth, classes = config
        self.backend = get_backend(backend_name, dtype="float32")
        self.model = build_model(method, n_in, classes, depth=depth, width=width, backend=self.backend, seed=seed)
        self.loss = SoftmaxCrossEntropy(self.backend)
        self.optimizer = SGD(self.model, lr=LR, momentum=MOMENTUM)
        x, labels = make_batch((batch, n_in, width, depth, classes), seed)
        self.x, self.labels = self.backend.asarray(x), self.backend.asarray(labels)


def torch_model(config: tuple):
    """The same network in PyTorch (its default initialization: timing only)."""
    import torch

    method, _, n_in, width, depth, classes = config
    nn = torch.nn
    if method == "batchnorm":
        layers: list = []
        for i in range(depth):
            layers += [nn.Linear(n_in if i == 0 else width, width), nn.ReLU(), nn.BatchNorm1d(width)]
        return nn.Sequential(*layers, nn.Linear(width, classes))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.branch = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(),
                                        nn.Linear(width, width), nn.BatchNorm1d(width))

        def forward(self, x):
            return torch.relu(self.branch(x) + x)

    return nn.Sequential(nn.Linear(n_in, width), nn.BatchNorm1d(width), nn.ReLU(), *[Block() for _ in range(depth)],
                         nn.Linear(width, classes))


class MethodTorchStep(TorchStep):
    """The same step in PyTorch eager (its __call__: zero_grad, cross-entropy, backward, SGD step)."""

    def __init__(self, config: tuple, threads: int, seed: int = 0):
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        _, batch, n_in, width, depth, classes = config
        self.torch, self.model = torch, torch_model(config)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        x, labels = make_batch((batch, n_in, width, depth, classes), seed)
        self.x, self.labels = torch.from_numpy(x), torch.from_numpy(labels)


def bench_config(config: tuple, args: argparse.Namespace) -> dict[str, Any]:
    candidates: dict[str, Callable] = dict(minisnn_steps(lambda backend_name: MethodStep(backend_name, config)))
    replays = {f"{label} gemm-only": step.gemm_replay() for label, step in candidates.items()}
    if args.with_torch:
        candidates["torch"] = MethodTorchStep(config, args.threads)
    candidates.update(replays)
    steps = args.steps or choose_steps(candidates, args.seconds_per_round)
    timing = interleaved_timing(candidates, args.rounds, steps)
    ratios: dict[str, Any] = {}
    for backend_name in MINISNN_BACKENDS:
        label = f"minisnn-{backend_name}"
        if label in timing:
            ratios[f"{label} / gemm-only"] = paired_ratio(timing, label, f"{label} gemm-only")
            if "torch" in timing:
                ratios[f"{label} / torch"] = paired_ratio(timing, label, "torch")
                ratios[f"{label} / torch, ratio of minima"] = timing[label]["min_ms"] / timing["torch"]["min_ms"]
    if "minisnn-numba / torch" in ratios:
        ratios["targets_met"] = {f"numba / torch <= {STEP_TARGET}": ratios["minisnn-numba / torch"] <= STEP_TARGET}
    names = ("method", "batch", "inputs", "width", "depth", "classes")
    return {"config": dict(zip(names, config)), "timing": timing, "ratios": ratios}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated config names")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=0, help="timed steps per round (default: about 0.5 s worth)")
    parser.add_argument("--seconds-per-round", type=float, default=0.5, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="PyTorch intra-op threads")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny configs, 2 rounds (a smoke test)")
    parser.add_argument("--json", default=None, help="output path (default bench/results/methods_step.json)")
    args = parser.parse_args(argv)
    configs = QUICK_CONFIGS if args.quick else {name: CONFIGS[name] for name in args.configs.split(",")}
    if args.quick:
        args.rounds, args.steps = 2, 2
    args.with_torch = not args.no_torch and torch_available()
    report: dict[str, Any] = {"benchmark": "methods_step", "environment": environment(),
                              "settings": {"lr": LR, "momentum": MOMENTUM, "dtype": "float32",
                                           "torch_threads": args.threads if args.with_torch else None},
                              "configs": {}}
    if args.with_torch:
        import torch

        report["environment"]["torch"] = torch.__version__
    for name, config in configs.items():
        result = report["configs"][name] = bench_config(config, args)
        print(f"{name} {result['config']}")
        for label, t in result["timing"].items():
            print(f"  {label:28s} median {t['median_ms']:9.3f} ms  min {t['min_ms']:9.3f} ms")
        for key, value in result["ratios"].items():
            if key != "targets_met":
                print(f"  {key:45s} {value:6.3f}")
        for key, met in result["ratios"].get("targets_met", {}).items():
            print(f"  target {key:38s} {'met' if met else 'NOT met'}")
    path = write_json(args.json or default_json_path("methods_step"), report)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What packing parameters into one flat buffer buys a training step, on configs C1-C4.

Two otherwise identical steps (bench/train_step.py's model, batch and SGD with momentum), in
one process, interleaved round by round:
- per-array: the model as minisnn builds it; the optimizer calls sgd_update once per array;
- packed: the same model with every parameter and gradient rebound, by this benchmark, to a
  view of one flat (P,) buffer each (64-byte aligned slices), and one sgd_update call over the
  whole buffers (what minisnn did before parameter packing was removed).
The ratio packed / per-array (median of per-round ratios) is what packing would save.

    python bench/packing.py                       # numba and numpy backends, C1-C4
    python bench/packing.py --quick --json /tmp/p.json
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
from common import default_json_path, environment, write_json
from train_step import CONFIGS, QUICK_CONFIGS, MinisnnStep, choose_steps, interleaved_timing, paired_ratio

from minisnn.backends import BackendUnavailable
from minisnn.losses import SoftmaxCrossEntropy

ALIGNMENT = 16  # elements between slice starts: 64 bytes in float32
BACKENDS = ("numba", "numpy")


class PackedStep(MinisnnStep):
    """MinisnnStep whose parameters and gradients are views of two flat buffers, updated in one call."""

    def __init__(self, backend_name: str, config: tuple[int, ...], seed: int = 0):
        super().__init__(backend_name, config, seed)
        be, params = self.backend, self.model.named_parameters()
        sizes = [-(-p.value.size // ALIGNMENT) * ALIGNMENT for p in params]
        self.values, self.grads, self.velocity = (be.zeros((sum(sizes),)) for _ in range(3))  # (P,) each
        offset = 0
        for p, size in zip(params, sizes):
            layer, key = self._owner(p.name)
            for flat, store in ((self.values, layer.params), (self.grads, layer.grads)):
                view = flat[offset:offset + p.value.size].reshape(p.value.shape)
                view[...] = store[key]
                store[key] = view
            offset += size
        self.loss = SoftmaxCrossEntropy(be)

    def _owner(self, name: str):
        """(layer, key) of a parameter name "<index>.<key>" of the top-level model."""
        index, key = name.split(".")
        return self.model.layers[int(index)], key

    def __call__(self):
        be, opt = self.backend, self.optimizer
        logits = self.model.forward(self.x, train=True)
        value = self.loss.forward(logits, self.labels)
        self.model.backward(self.loss.backward())
        be.sgd_update(self.values, self.grads, self.velocity, opt.current_lr, opt.momentum, opt.weight_decay,
                      opt.nesterov)
        opt.step_count += 1
        return value


def bench_config(config: tuple[int, ...], rounds: int, seconds_per_round: float) -> dict[str, Any]:
    candidates = {}
    for name in BACKENDS:
        try:
            candidates[f"{name} per-array"] = MinisnnStep(name, config)
            candidates[f"{name} packed"] = PackedStep(name, config)
        except BackendUnavailable as exc:
            print(f"  {name}: skipped ({exc})")
    first_losses = {label: float(step()) for label, step in candidates.items()}
    steps = choose_steps(candidates, seconds_per_round)
    timing = interleaved_timing(candidates, rounds, steps)
    ratios = {f"{name} packed / per-array": paired_ratio(timing, f"{name} packed", f"{name} per-array")
              for name in BACKENDS if f"{name} packed" in timing}
    return {"config": dict(zip(("batch", "inputs", "width", "depth", "classes"), config)),
            "arrays_per_update": 2 * (config[3] + 1), "first_step_loss": first_losses, "timing": timing,
            "ratios": ratios}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated config names (C1-C4)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds-per-round", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true", help="one tiny config, 2 rounds (a smoke test)")
    parser.add_argument("--json", default=None, help="output path (default bench/results/packing.json)")
    args = parser.parse_args(argv)
    configs = QUICK_CONFIGS if args.quick else {name: CONFIGS[name] for name in args.configs.split(",")}
    rounds, seconds = (2, 0.05) if args.quick else (args.rounds, args.seconds_per_round)
    report: dict[str, Any] = {"benchmark": "packing", "environment": environment(), "configs": {}}
    for name, config in configs.items():
        result = report["configs"][name] = bench_config(config, rounds, seconds)
        print(f"{name} {result['config']}")
        for label, t in result["timing"].items():
            print(f"  {label:20s} median {t['median_ms']:9.3f} ms  min {t['min_ms']:9.3f} ms")
        for label, ratio in result["ratios"].items():
            print(f"  {label:32s} {ratio:6.3f}")
        losses = set(np.round(list(result["first_step_loss"].values()), 4))
        print(f"  first-step losses agree: {len(losses) == 1}")
    print(f"wrote {write_json(args.json or default_json_path('packing'), report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Experiment harness benchmark (issue 13): trial throughput against PyTorch, harness overhead, Dask scaling.

1. throughput: the same small UCI trials (16 SNN configurations x 4 data sets, 100 epochs, the
   UCI protocol of minisnn.experiments) run by minisnn (run_trial) and by a plain PyTorch eager
   loop doing the same work (the same split and standardization, architecture
   [Linear, SELU, AlphaDropout] x depth + Linear with LeCun-normal weights, SGD, batch size,
   epochs, a validation pass per epoch keeping the best weights, a test pass), both in 2 worker
   processes of 1 thread, interleaved in 4 rounds. Target: minisnn's trials per hour >= 2x
   PyTorch's.
2. overhead: trials of about 1 second run through the whole harness (planning, the SQLite store,
   the executor, the report and the CSV export) on 1 worker; overhead = (wall time of it all -
   the trials' own wall times) / the trials' wall times. Target <= 5%.
3. dask: the same grid on a Dask LocalCluster of 1 and of 2 single-threaded workers. Target:
   trials per hour with 2 workers >= 1.7x with 1. busy_workers (the trials' wall times over the
   elapsed time) shows whether the executor kept its workers busy, apart from how fast the
   machine ran each trial (on a machine shared with other work, 2 workers get less than 2 cores).

    python bench/harness.py --data-root DIR     # DIR/uci/{iris,wine,glass,pima}; JSON to bench/results/harness.json
    python bench/harness.py --data-root DIR --quick --json /tmp/h.json
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import default_json_path, environment, write_json

from minisnn.data.locations import data_root
from minisnn.experiments import LocalExecutor, Store, TrialSpec, run_experiment
from minisnn.experiments.protocols import load_split
from minisnn.experiments.report import write_report
from minisnn.experiments.trial import batch_size_for

DATASETS = ("uci:iris", "uci:wine", "uci:glass", "uci:pima")
GRID = {"width": [64, 256], "depth": [2, 8], "lr": [0.01, 0.1], "dropout": [0.0, 0.05], "shape": ["rectangular"]}
QUICK_GRID = {"width": [32], "depth": [2], "lr": [0.01, 0.1], "dropout": [0.05], "shape": ["rectangular"]}
PROTOCOL = {"name": "uci", "split": "kfold", "fold": 0, "val_fraction": 0.15}
TARGETS = {"minisnn_over_torch": 2.0, "overhead_fraction": 0.05, "dask_2_over_1": 1.7}


def grid_specs(datasets, grid: dict, epochs: int, backend: str) -> list[TrialSpec]:
    configs = [dict(zip(sorted(grid), values)) for values in itertools.product(*(grid[k] for k in sorted(grid)))]
    return [TrialSpec(d, PROTOCOL, "snn", c, {"epochs": epochs, "backend": backend}) for d in datasets for c in configs]


# ---- the PyTorch trial ---------------------------------------------------------------------------
def _torch_worker_init() -> None:
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)


def torch_trial(spec_dict: dict, root: str) -> dict[str, Any]:
    """The work of one minisnn trial written as a plain PyTorch eager loop; returns its wall time and test accuracy."""
    import torch
    from torch import nn

    started = time.perf_counter()
    spec = TrialSpec.from_dict(spec_dict)
    seeds = spec.seeds()
    split = load_split(spec.dataset, spec.protocol, seeds["split"], root).standardized()
    torch.manual_seed(seeds["model"] % 2**63)
    params, epochs = spec.params, spec.training["epochs"]
    layers: list[nn.Module] = []
    d_in = split.x_train.shape[1]
    for _ in range(params["depth"]):
        linear = nn.Linear(d_in, params["width"])
        nn.init.normal_(linear.weight, std=d_in ** -0.5)
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.SELU()] + ([nn.AlphaDropout(params["dropout"])] if params["dropout"] > 0 else [])
        d_in = params["width"]
    layers.append(nn.Linear(d_in, split.task.n_outputs))
    model = nn.Sequential(*layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=params["lr"])
    loss_fn = nn.CrossEntropyLoss()
    x = torch.as_tensor(split.x_train, dtype=torch.float32)
    y = torch.as_tensor(split.y_train)
    x_val, y_val = torch.as_tensor(split.x_val, dtype=torch.float32), torch.as_tensor(split.y_val)
    batch = batch_size_for(spec.training["batch_size"], x.shape[0])
    generator = torch.Generator().manual_seed(seeds["batches"] % 2**63)
    curve, best, best_state = [], -1.0, None
    window = spec.training["window"]
    for _ in range(epochs):
        model.train()
        for rows in torch.randperm(x.shape[0], generator=generator).split(batch):
            optimizer.zero_grad()
            loss_fn(model(x[rows]), y[rows]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            curve.append(float((model(x_val).argmax(1) == y_val).float().mean()))
        smoothed = float(np.mean(curve[-window:]))
        if smoothed > best:
            best, best_state = smoothed, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    with torch.no_grad():
        accuracy = float((model(torch.as_tensor(split.x_test, dtype=torch.float32)).argmax(1)
                          == torch.as_tensor(split.y_test)).float().mean())
    return {"wall_s": time.perf_counter() - started, "test_accuracy": accuracy}


def _warm(trial, spec_dict: dict, root: str) -> int:
    """Run a 1-epoch trial in a pool worker (imports, first-call set-up, data cache) and hold a
    moment, so that every worker of the pool warms up."""
    trial({**spec_dict, "training": {**spec_dict["training"], "epochs": 1}}, root)
    time.sleep(0.5)
    return os.getpid()


def _minisnn_trial(spec_dict: dict, root: str) -> dict[str, Any]:
    from minisnn.experiments.trial import run_trial

    record = run_trial(spec_dict, root)
    return {"wall_s": record["wall_s"], "test_accuracy": (record["test"] or {}).get("accuracy", float("nan"))}


def _summary(results: list[dict[str, Any]], elapsed: float) -> dict[str, Any]:
    return {"trials": len(results), "elapsed_s": elapsed, "trials_per_hour": len(results) / elapsed * 3600,
            "mean_trial_s": float(np.mean([r["wall_s"] for r in results])),
            "mean_test_accuracy": float(np.nanmean([r["test_accuracy"] for r in results]))}


# ---- minisnn through the harness ---------------------------------------------------------------------
def run_minisnn(specs: list[TrialSpec], root: str, executor, folder: Path, report: bool = False) -> dict[str, Any]:
    """Plan, run and (report) the specs into a fresh store; times and the trials' own wall times."""
    store_path = folder / f"store-{time.perf_counter_ns()}.sqlite"
    started = time.perf_counter()
    with Store(store_path) as store:
        summary = run_experiment(store, specs, executor, root, progress=None)
        records = store.records(("ok", "diverged"))
        if report:
            store.export_csv(folder / "trials.csv")
            write_report(records, folder / "report", {}, figures=False)
    elapsed = time.perf_counter() - started
    if summary.failed:
        raise RuntimeError(f"{summary.failed} trials failed; see {store_path}")
    trial_time = float(sum(r["wall_s"] for r in records))
    accuracy = [r["test"]["accuracy"] for r in records if r.get("test")]
    return {"trials": len(records), "elapsed_s": elapsed, "trials_per_hour": len(records) / elapsed * 3600,
            "sum_trial_s": trial_time, "mean_trial_s": trial_time / len(records),
            "busy_workers": trial_time / elapsed,  # how many trials ran at once on average
            "mean_test_accuracy": float(np.mean(accuracy)) if accuracy else None}


def throughput(root: str, quick: bool, backend: str) -> dict[str, Any]:
    """minisnn and PyTorch trials in two warmed-up pools of 2 single-threaded workers, interleaved
    in rounds (each round a quarter of the trials, every data set in each), so that a change of
    the machine's load hits both alike; the ratio is the median of the rounds' ratios."""
    import concurrent.futures
    import multiprocessing

    from minisnn.experiments.executors import pin_threads, prepare_kernels

    specs = grid_specs(DATASETS[:2] if quick else DATASETS, QUICK_GRID if quick else GRID, 5 if quick else 100,
                       backend)
    out: dict[str, Any] = {"trials": len(specs), "workers": 2, "threads_per_worker": 1, "backend": backend}
    if importlib.util.find_spec("torch") is None:
        out["torch"] = "not installed (pip install torch==2.13.0)"
        return out
    prepare_kernels({backend})
    rounds = 1 if quick else 4
    chunks = [[spec.to_dict() for spec in specs[i::rounds]] for i in range(rounds)]
    context = multiprocessing.get_context("spawn")
    frameworks = {"minisnn": (_minisnn_trial, pin_threads, (1,)), "torch": (torch_trial, _torch_worker_init, ())}
    pools = {name: concurrent.futures.ProcessPoolExecutor(2, mp_context=context, initializer=init, initargs=args)
             for name, (_, init, args) in frameworks.items()}
    results: dict[str, list] = {name: [] for name in frameworks}
    elapsed = {name: 0.0 for name in frameworks}
    ratios = []
    try:
        for name, (trial, _, _) in frameworks.items():
            for spec in {spec.dataset: spec.to_dict() for spec in specs}.values():
                list(pools[name].map(_warm, [trial] * 2, [spec] * 2, [root] * 2))
        for chunk in chunks:
            seconds = {}
            for name, (trial, _, _) in frameworks.items():
                started = time.perf_counter()
                results[name] += pools[name].map(trial, chunk, [root] * len(chunk))
                seconds[name] = time.perf_counter() - started
                elapsed[name] += seconds[name]
            ratios.append(seconds["torch"] / seconds["minisnn"])
    finally:
        for pool in pools.values():
            pool.shutdown()
    for name in frameworks:
        out[name] = _summary(results[name], elapsed[name])
    out["round_ratios"] = ratios
    out["minisnn_over_torch"] = float(np.median(ratios))
    return out


def timed_specs(root: str, backend: str, count: int, seconds: float) -> list[TrialSpec]:
    """`count` trials of about `seconds` each (epochs scaled from a timed 10-epoch trial)."""
    probe = grid_specs(DATASETS[3:], {"width": [256], "depth": [4], "lr": [0.01], "dropout": [0.05],
                                      "shape": ["rectangular"]}, 10, backend)[0]
    executor = LocalExecutor(0, threads=1)
    next(executor.run([probe], root))  # builds the kernels if needed, loads the data
    started = time.perf_counter()
    next(executor.run([probe], root))
    epochs = max(1, int(round(10 * seconds / (time.perf_counter() - started))))
    grid = {"width": [256], "depth": [4], "lr": [0.001 * (i + 1) for i in range(count)], "dropout": [0.05],
            "shape": ["rectangular"]}
    return grid_specs(DATASETS[3:], grid, epochs, backend)


def overhead(root: str, quick: bool, backend: str, folder: Path, seconds: float) -> dict[str, Any]:
    specs = timed_specs(root, backend, 4 if quick else 30, seconds)
    out = {"epochs_per_trial": specs[0].training["epochs"]}
    for name, executor in (("in_process", LocalExecutor(0, threads=1)), ("one_worker", LocalExecutor(1, threads=1))):
        timing = run_minisnn(specs, root, executor, folder, report=True)
        timing["overhead_fraction"] = (timing["elapsed_s"] - timing["sum_trial_s"]) / timing["sum_trial_s"]
        out[name] = timing
    return out


def dask_scaling(root: str, quick: bool, backend: str, folder: Path, seconds: float) -> dict[str, Any]:
    if importlib.util.find_spec("distributed") is None:
        return {"skipped": 'dask not installed (pip install "minisnn[dask]")'}
    from minisnn.experiments import DaskExecutor

    specs = timed_specs(root, backend, 4 if quick else 24, seconds)
    out = {"trials": len(specs), "epochs_per_trial": specs[0].training["epochs"]}
    for workers in (1, 2):
        out[f"workers_{workers}"] = run_minisnn(specs, root, DaskExecutor(workers=workers, threads=1), folder)
    out["dask_2_over_1"] = out["workers_2"]["trials_per_hour"] / out["workers_1"]["trials_per_hour"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=None, help="the folder holding uci/ (default: minisnn's data root)")
    parser.add_argument("--parts", default="throughput,overhead,dask")
    parser.add_argument("--backend", default=None, help="default numba when installed, else numpy")
    parser.add_argument("--quick", action="store_true", help="a few short trials (smoke test)")
    parser.add_argument("--trial-seconds", type=float, default=1.0,
                        help="length of the trials of the overhead and dask parts (default 1)")
    parser.add_argument("--json", default=str(default_json_path("harness")))
    args = parser.parse_args()
    root = str(data_root(args.data_root))
    missing = [d for d in DATASETS if not (Path(root) / "uci" / d[4:] / f"{d[4:]}.txt").is_file()]
    if missing:
        print(f"missing data sets under {root}/uci: {', '.join(missing)}", file=sys.stderr)
        return 1
    backend = args.backend or ("numba" if importlib.util.find_spec("numba") else "numpy")
    scratch_dir = tempfile.TemporaryDirectory()
    scratch, seconds = Path(scratch_dir.name), args.trial_seconds
    parts = {"throughput": lambda: throughput(root, args.quick, backend),
             "overhead": lambda: overhead(root, args.quick, backend, scratch, seconds),
             "dask": lambda: dask_scaling(root, args.quick, backend, scratch, seconds)}
    unknown = [name for name in args.parts.split(",") if name not in parts]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; parts are {', '.join(parts)}")
    result: dict[str, Any] = {"environment": environment(), "cores": len(os.sched_getaffinity(0)),
                              "backend": backend, "quick": args.quick, "trial_seconds": seconds, "targets": TARGETS}
    with scratch_dir:
        for name in args.parts.split(","):
            started = time.perf_counter()
            result[name] = parts[name]()
            print(f"{name} ({time.perf_counter() - started:.0f} s): {result[name]}", flush=True)
    result["load_average_after"] = os.getloadavg()
    print(write_json(args.json, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

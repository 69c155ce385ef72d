"""Fit time and test accuracy of minisnn.sklearn.SNNClassifier against scikit-learn's MLPClassifier.

Both get the same hidden layers (depth x width), epochs, batch size and optimizer (Adam, lr
1e-3, MLPClassifier's default), without dropout (MLPClassifier has none), on the same data, in
the same run. SNNClassifier: method snn (SELU, LeCun init), its own standardization;
MLPClassifier: its defaults otherwise (ReLU, L2 1e-4) behind a StandardScaler, every epoch run
(tol=0, no early stopping). SNNClassifier trains in float32 (its default dtype) from the float64
features; "sklearn-mlp" gets the features as float32, which MLPClassifier keeps (the same
precision: the target is measured against it), "sklearn-mlp-float64" as float64 (what it does
with float64 data, for reference). BLAS and Numba are limited to --threads threads for all. Round r
fits every contender with random_state=r, interleaved; times are medians over rounds of one
whole fit, the ratio the median of per-round ratios (minisnn / MLPClassifier); accuracy, on the
test split, is the mean over rounds (HTRU2 has no test split: a stratified 20% hold-out, seed 0;
UCI: the official split; letter and magic are the two largest UCI sets here). Target (issue 15):
minisnn <= 0.5 x MLPClassifier's fit time at equal or better test accuracy.

"gemm_floor_seconds" is the time of the fit's matrix products alone (one step's products,
recorded and replayed, times the steps of the fit): both libraries do these same products with
the same BLAS, so floor / MLPClassifier's time is the lowest ratio any engine could reach here.

    python bench/sklearn_fit.py --data-root DIR         # htru2/ and uci/NAME/ under DIR ($MINISNN_DATA)
    python bench/sklearn_fit.py --quick --json /tmp/s.json   # a synthetic smoke test, no data needed
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from typing import Any, Callable

import numpy as np
from common import default_json_path, environment, time_call, write_json

from minisnn.backends import BackendUnavailable, get_backend
from minisnn.data import make_synthetic, read_htru2, read_uci
from minisnn.data.loaders import ArrayDataset, BatchIterator
from minisnn.losses import SoftmaxCrossEntropy
from minisnn.methods import build_model
from minisnn.optim import Adam
from minisnn.train import train_step
from minisnn.data.locations import data_root
from minisnn.data.preprocessing import stratified_split
from minisnn.threads import set_threads

try:
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from minisnn.sklearn import SNNClassifier
except ImportError as exc:
    raise SystemExit(f"bench/sklearn_fit.py needs scikit-learn: pip install minisnn[sklearn] ({exc})") from None

DATASETS = ("htru2", "uci:letter", "uci:magic")
TIME_TARGET = 0.5
BACKENDS = ("numpy", "numba")


def load(name: str, root) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) of a data set, float64 features."""
    if name == "synthetic":
        data = make_synthetic(n_train=600, n_test=200, n_features=8, n_classes=3, seed=0)
        x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    elif name == "htru2":
        data = read_htru2(root / "htru2")
        train, test = stratified_split(data.y_train, 0.2, seed=0)
        x_train, y_train, x_test, y_test = data.x_train[train], data.y_train[train], data.x_train[test], data.y_train[test]
    elif name.startswith("uci:"):
        data = read_uci(root / "uci" / name[4:])
        x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    else:
        raise SystemExit(f"unknown data set {name!r}; use htru2, uci:NAME or synthetic")
    return x_train.astype(np.float64), y_train, x_test.astype(np.float64), y_test


def contenders(args, backends: list[str]) -> dict[str, tuple[Callable[[int], Any], type]]:
    """name -> (a function making a fresh, unfitted estimator from a random_state, the features' dtype)."""
    settings = dict(method="snn", depth=args.depth, width=args.width, max_epochs=args.epochs,
                    batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, dropout=args.dropout)
    makers: dict[str, tuple[Callable[[int], Any], type]] = {
        f"minisnn-{name}": ((lambda seed, name=name: SNNClassifier(backend=name, random_state=seed, **settings)),
                            np.float64)
        for name in backends
    }

    def mlp(seed: int):
        return make_pipeline(StandardScaler(), MLPClassifier(
            hidden_layer_sizes=(args.width,) * args.depth, batch_size=args.batch_size, max_iter=args.epochs,
            tol=0.0, n_iter_no_change=args.epochs + 1, random_state=seed))

    makers["sklearn-mlp"] = (mlp, np.float32)
    makers["sklearn-mlp-float64"] = (mlp, np.float64)
    return makers


def gemm_floor(x_train: np.ndarray, y_train: np.ndarray, args) -> float:
    """Seconds the matrix products of one fit take alone: one training step's products (float32,
    NumPy's matmul, recorded from a real step) replayed, times the fit's steps."""
    be = get_backend("numpy", dtype="float32")
    n_classes = int(np.unique(y_train).size)
    model = build_model("snn", x_train.shape[1], n_classes, depth=args.depth, width=args.width,
                        dropout=args.dropout, backend=be, seed=0)
    x = be.asarray(x_train[: args.batch_size], dtype=np.float32)  # (B, D)
    y = be.asarray(np.arange(len(x)) % n_classes, dtype=np.int64)  # (B,)
    calls: list[tuple[Any, Any, Any]] = []
    original = be.matmul

    def recording_matmul(a, b, out=None):
        calls.append((a, b, out))
        return original(a, b, out=out)

    be.matmul = recording_matmul
    train_step(model, SoftmaxCrossEntropy(be), Adam(model), x, y)
    be.matmul = original

    def replay() -> None:
        for a, b, out in calls:
            original(a, b, out=out)

    steps = len(BatchIterator(ArrayDataset(x_train, y_train), args.batch_size)) * args.epochs
    return time_call(replay, min_time=0.3)["median_s"] * steps


def bench_dataset(name: str, args, backends: list[str]) -> dict[str, Any]:
    x_train, y_train, x_test, y_test = load(name, args.data_root)
    floor = gemm_floor(x_train, y_train, args)
    makers = contenders(args, backends)
    times: dict[str, list[float]] = {key: [] for key in makers}
    accuracy: dict[str, list[float]] = {key: [] for key in makers}
    for seed in range(args.rounds):
        for key, (make, dtype) in makers.items():
            estimator = make(seed)
            x_fit = x_train.astype(dtype)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                estimator.fit(x_fit, y_train)
            times[key].append(time.perf_counter() - start)
            accuracy[key].append(float((estimator.predict(x_test.astype(dtype)) == y_test).mean()))
    result = {"n_train": len(y_train), "n_test": len(y_test), "n_features": int(x_train.shape[1]),
              "n_classes": int(np.unique(y_train).size), "fit_seconds": {}, "test_accuracy": {},
              "test_accuracy_rounds": {}, "ratios": {}, "meets_target": {}, "gemm_floor_seconds": floor}
    for key in makers:
        result["fit_seconds"][key] = {"median": statistics.median(times[key]), "min": min(times[key]),
                                      "rounds": times[key]}
        result["test_accuracy"][key] = statistics.mean(accuracy[key])
        result["test_accuracy_rounds"][key] = accuracy[key]
    for key in (key for key in makers if key.startswith("minisnn-")):
        for reference in ("sklearn-mlp", "sklearn-mlp-float64"):
            result["ratios"][f"{key} / {reference}"] = statistics.median(
                t / m for t, m in zip(times[key], times[reference]))
        result["meets_target"][key] = bool(result["ratios"][f"{key} / sklearn-mlp"] <= TIME_TARGET and
                                           result["test_accuracy"][key] >= result["test_accuracy"]["sklearn-mlp"])
    result["ratios"]["gemm_floor / sklearn-mlp"] = floor / result["fit_seconds"]["sklearn-mlp"]["median"]
    return result


def print_dataset(name: str, result: dict[str, Any]) -> None:
    print(f"{name}: {result['n_train']} train / {result['n_test']} test, {result['n_features']} features, "
          f"{result['n_classes']} classes")
    for key, seconds in result["fit_seconds"].items():
        note = ""
        if key in result["meets_target"]:
            note = (f"  x{result['ratios'][f'{key} / sklearn-mlp']:.2f} of sklearn-mlp, "
                    f"x{result['ratios'][f'{key} / sklearn-mlp-float64']:.2f} of float64; "
                    f"target met: {result['meets_target'][key]}")
        print(f"  {key:19s} fit {seconds['median']:8.3f} s  test accuracy {result['test_accuracy'][key]:.4f}{note}")
    print(f"  matrix products alone {result['gemm_floor_seconds']:.3f} s: "
          f"x{result['ratios']['gemm_floor / sklearn-mlp']:.2f} of sklearn-mlp")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: htru2, uci:NAME, synthetic")
    parser.add_argument("--data-root", default=None, help="folder with htru2/ and uci/ (default: $MINISNN_DATA, "
                        "else ~/.cache/minisnn)")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--optimizer", default="adam", help="SNNClassifier's optimizer (sgd, adam, adamw)")
    parser.add_argument("--lr", type=float, default=None, help="SNNClassifier's learning rate (default: the "
                        "optimizer's, 1e-3 for adam)")
    parser.add_argument("--dropout", type=float, default=0.0, help="SNNClassifier's alpha dropout rate")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="BLAS and Numba threads, for both")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="minisnn backends to time")
    parser.add_argument("--quick", action="store_true", help="a small synthetic problem, tiny network, 1 round")
    parser.add_argument("--json", default=None, help="output path (default bench/results/sklearn_fit.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.depth, args.width, args.epochs, args.rounds = "synthetic", 2, 16, 3, 1
    args.data_root = data_root(args.data_root)
    backends = []
    for name in args.backends.split(","):
        try:
            get_backend(name)
            backends.append(name)
        except BackendUnavailable as exc:
            print(f"skipping backend {name}: {exc}")
    set_threads(args.threads)
    results = {}
    for name in args.datasets.split(","):
        results[name] = bench_dataset(name, args, backends)
        print_dataset(name, results[name])
    payload = {
        "benchmark": "sklearn_fit",
        "environment": {**environment(), "scikit_learn": sklearn.__version__, "threads": args.threads},
        "settings": {"depth": args.depth, "width": args.width, "epochs": args.epochs, "batch_size": args.batch_size,
                     "optimizer": args.optimizer, "lr": args.lr, "dropout": args.dropout, "rounds": args.rounds,
                     "quick": args.quick, "time_target": TIME_TARGET},
        "datasets": results,
    }
    path = write_json(args.json or default_json_path("sklearn_fit"), payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`minisnn predict`: a saved model's predictions for new, unlabelled data, as CSV."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

from ..checkpoint import load_model
from ..data import DataError
from ..data.ranges import check_magnitude, feature_limit
from ..data.registry import file_kind
from ..data.tabular import load_npz, npz_features, read_csv_features
from ..files import check_writable, write_atomically
from ..tasks import ClassificationTask, MultiTaskBinaryTask, task_from_config
from ._options import HelpFormatter


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict with a checkpoint on new data (no labels needed), as CSV",
        description="Load a checkpoint written by `minisnn train --save` and write its predictions for every row "
        "of --data: for classification the predicted class (as the original label when the training labels were "
        "text) and each class's probability; for multitask each task's probability; for regression the outputs. "
        "Features are standardized with the statistics recorded in the checkpoint. NumPy only.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("checkpoint", type=Path, help="a .npz checkpoint")
    p.add_argument("--data", type=Path, required=True,
                   help="a .csv or .csv.gz file (a header line optional) with the model's features as columns, or an "
                   ".npz file with an array x (N, D); a column named like the training label column is left out")
    p.add_argument("--label-column", default=None, help="a column of the CSV file to leave out (e.g. its labels)")
    p.add_argument("--output", type=Path, default=None, help="the CSV file to write (default: standard output)")
    p.set_defaults(func=run_predict)


def read_features(path: Path, n_features: int, label_column: str | None, training_label: str = "label"
                  ) -> tuple[np.ndarray, list[str] | None, Callable[[int], str]]:
    """(x (N, D), feature names or None, row -> where it was read) of an unlabelled CSV or NPZ file;
    a CSV column named `training_label` is left out when the file has one column too many."""
    kind = file_kind(path)
    if kind == "npz":
        if label_column is not None:
            raise ValueError(f"--label-column applies to CSV files; {path} is an NPZ file (its array x is read)")
        arrays = load_npz(path)
        key = "x" if "x" in arrays else "x_test" if "x_test" in arrays else None
        if key is None:
            raise DataError(path, f"needs an array 'x' (N, D); it has {', '.join(arrays) or 'none'}")
        return npz_features(path, key, arrays[key]), None, lambda row: f"{path}, array {key!r}, row {row}"
    if kind != "csv":
        raise DataError(path, "predict reads a .csv, .csv.gz or .npz file")
    return read_csv_features(path, label_column, n_features=n_features, label_name=training_label)


def model_inputs(model, x: np.ndarray, source: str, origin: Callable[[int], str], names: list[str] | None) -> np.ndarray:
    """Features (N, D) as the model takes them: the right width, standardized with the checkpoint's
    statistics, every value representable in the model's dtype (else a ValueError naming row and column)."""
    if x.shape[1] != model.n_inputs:
        raise ValueError(f"{source} has {x.shape[1]} features, the model expects {model.n_inputs}")
    dtype = model.backend.dtype
    check_magnitude(x, feature_limit(dtype, len(x), False), origin, names)
    standardizer = model.meta.get("standardizer")
    if standardizer is None:
        return x
    x = (x - np.asarray(standardizer["mean"], dtype=np.float64)) / np.asarray(standardizer["scale"], dtype=np.float64)
    limit = (float(np.finfo(dtype).max), f"standardized with the checkpoint's statistics it does not fit {dtype.name}")
    check_magnitude(x, limit, origin, names, "standardized value")
    return x


def prediction_table(task, model, x: np.ndarray, class_labels: list | None = None) -> tuple[list[str], list[list]]:
    """(CSV header, rows) of the model's predictions for the task: classification gives the
    predicted class (class_labels[id] where given) and each class's probability, multitask each
    task's probability, regression the outputs."""
    if isinstance(task, ClassificationTask):
        proba = model.predict_proba(x).astype(np.float64)  # (N, C)
        names = [str(c) for c in class_labels] if class_labels is not None else None
        header = ["predicted"] + ([f"p_{name}" for name in names] if names else [f"p{c}" for c in range(proba.shape[1])])
        ids = proba.argmax(axis=1)  # (N,)
        predicted = [names[i] for i in ids] if names else [int(i) for i in ids]
        return header, [[label, *(f"{p:.6g}" for p in row)] for label, row in zip(predicted, proba)]
    outputs = model.logits(x).astype(np.float64)  # (N, T)
    if isinstance(task, MultiTaskBinaryTask):
        probabilities = np.exp(-np.logaddexp(0.0, -outputs))
        return [f"p_{name}" for name in task.task_names], [[f"{p:.6g}" for p in row] for row in probabilities]
    return [f"y{j}" for j in range(outputs.shape[1])], [[f"{v:.6g}" for v in row] for row in outputs]


def write_table(path: Path | None, header: list[str], rows: list[list]) -> None:
    """The table as CSV: atomically to `path`, or to standard output when path is None."""
    def write(handle: TextIO) -> None:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)

    if path is None:
        write(sys.stdout)
    else:
        write_atomically(path, write, binary=False)


def run_predict(args) -> int:
    if args.output is not None:
        check_writable(args.output, "--output predictions")
    model = load_model(args.checkpoint)
    meta = model.meta
    task = task_from_config(meta["task"]) if "task" in meta else ClassificationTask(model.n_outputs)
    x, names, origin = read_features(args.data.expanduser(), model.n_inputs, args.label_column,
                                     meta.get("label_column", "label"))
    x = model_inputs(model, x, str(args.data), origin, names)
    header, rows = prediction_table(task, model, x, meta.get("class_labels"))
    write_table(args.output, header, rows)
    if args.output is not None:
        print(f"predictions for {len(rows)} rows written to {args.output}")
    return 0

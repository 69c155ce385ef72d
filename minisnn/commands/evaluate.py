"""`minisnn evaluate`: the task's metrics of a saved model on a data set, optionally its predictions."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..checkpoint import load_model
from ..tasks import ClassificationTask, MultiTaskBinaryTask, task_from_config
from ..files import write_atomically
from .train import add_data_arguments, format_metrics, load_task_data


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a data set's test split (NumPy only)",
        description="Load a checkpoint written by `minisnn train --save` and report its task's metrics (loss, "
        "accuracy, balanced accuracy and ROC AUC for classification; per-task and mean ROC AUC for multitask; "
        "RMSE and R^2 for regression) on the test split of --data. A data set without an official test split is "
        "split with the hold-out fraction and seed recorded in the checkpoint, and features are standardized "
        "with the statistics recorded there, exactly as in training.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("checkpoint", type=Path, help="a .npz checkpoint")
    add_data_arguments(p)
    p.add_argument("--predictions", type=Path, default=None,
                   help="write the predictions per sample to this CSV file: the predicted class and class "
                   "probabilities (classification), each task's probability (multitask), the outputs (regression)")
    p.set_defaults(func=run_evaluate)


def prediction_table(task, model, x: np.ndarray) -> tuple[np.ndarray, str, list[str]]:
    """(table (N, K), CSV header, per-column formats) of the model's predictions for the task."""
    if isinstance(task, ClassificationTask):
        proba = model.predict_proba(x)  # (N, C)
        return (np.column_stack([proba.argmax(axis=1), proba]),
                "predicted," + ",".join(f"p{c}" for c in range(proba.shape[1])), ["%d"] + ["%.6g"] * proba.shape[1])
    outputs = model.logits(x).astype(np.float64)  # (N, T)
    if isinstance(task, MultiTaskBinaryTask):
        return np.exp(-np.logaddexp(0.0, -outputs)), ",".join(f"p_{name}" for name in task.task_names), ["%.6g"] * task.n_tasks
    return outputs, ",".join(f"y{j}" for j in range(outputs.shape[1])), ["%.6g"] * outputs.shape[1]


def run_evaluate(args) -> int:
    model = load_model(args.checkpoint)
    meta = model.meta
    task = task_from_config(meta["task"]) if "task" in meta else ClassificationTask(model.n_outputs)
    data = load_task_data(args, task.name, meta.get("holdout", 0.0), meta.get("seed", 0))
    split, x, y = ("test", data.x_test, data.y_test) if data.x_test is not None else ("train", data.x_train, data.y_train)
    if x.shape[1] != model.n_inputs:
        raise ValueError(f"{data.name} has {x.shape[1]} features, the model in {args.checkpoint} expects {model.n_inputs}")
    if "standardizer" in meta:
        x = (x - np.asarray(meta["standardizer"]["mean"])) / np.asarray(meta["standardizer"]["scale"])
    task.check(x, y, f"{data.name} {split} split")
    metrics = task.evaluate(model, x, y)
    print(f"{data.name} {split} split ({len(y)} samples): {format_metrics(metrics)}")
    if args.predictions is not None:
        table, header, formats = prediction_table(task, model, x)
        write_atomically(args.predictions, lambda handle: np.savetxt(handle, table, delimiter=",", header=header,
                                                                     comments="", fmt=formats), binary=False)
        print(f"predictions written to {args.predictions}")
    return 0

"""`minisnn evaluate`: the task's metrics of a saved model on a data set, optionally its predictions."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

from ..checkpoint import load_model
from ..files import check_writable
from ..tasks import ClassificationTask, task_from_config
from ._options import HelpFormatter
from .predict import model_inputs, prediction_table, write_table
from .train import add_data_arguments, format_metrics, load_task_data


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a data set's test split (NumPy only)",
        description="Load a checkpoint written by `minisnn train --save` and report its task's metrics (loss, "
        "accuracy, balanced accuracy and ROC AUC for classification; per-task and mean ROC AUC for multitask; "
        "RMSE and R^2 for regression) on the test split of --data, by default the data set it was trained on. "
        "A data set without an official test split is split with the hold-out fraction and seed recorded in the "
        "checkpoint, and features are standardized with the statistics recorded there, exactly as in training. "
        "Labels must be among the model's classes.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("checkpoint", type=Path, help="a .npz checkpoint")
    add_data_arguments(p, default=None)
    p.add_argument("--predictions", type=Path, default=None,
                   help="write the predictions per sample to this CSV file: the predicted class and class "
                   "probabilities (classification), each task's probability (multitask), the outputs (regression)")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args) -> int:
    if args.predictions is not None:
        check_writable(args.predictions, "--predictions")
    model = load_model(args.checkpoint)
    meta = model.meta
    task = task_from_config(meta["task"]) if "task" in meta else ClassificationTask(model.n_outputs)
    spec = args.data or meta.get("data")
    if spec is None:
        raise ValueError(f"{args.checkpoint} does not record its data set: give --data")
    label_column = args.label_column if args.data else args.label_column or meta.get("label_column")
    options = Namespace(data=spec, data_root=args.data_root, label_column=label_column)
    classes = {"n_classes": model.n_outputs, "class_labels": meta.get("class_labels")} if task.name == "classification" else {}
    data = load_task_data(options, task.name, meta.get("holdout", 0.0), meta.get("seed", 0), model.backend.dtype,
                          **classes)
    split, x, y = ("test", data.x_test, data.y_test) if data.x_test is not None else ("train", data.x_train, data.y_train)
    where = f"{data.name} {split} split"
    if x.shape[1] != model.n_inputs:
        raise ValueError(f"{data.name} has {x.shape[1]} features, the model in {args.checkpoint} expects {model.n_inputs}")
    x = model_inputs(model, x, where, data.where(split), data.feature_names)
    task.check(x, y, where)
    metrics = task.evaluate(model, x, y)
    print(f"{where} ({len(y)} samples): {format_metrics(metrics)}")
    if args.predictions is not None:
        write_table(args.predictions, *prediction_table(task, model, x, meta.get("class_labels")))
        print(f"predictions written to {args.predictions}")
    return 0

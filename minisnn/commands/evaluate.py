"""`minisnn evaluate`: loss and accuracy of a saved model on a data set, optionally its predictions."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..checkpoint import load_model
from ..train import check_classification_data, evaluate
from .train import add_data_arguments, load_data


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a data set's test split (NumPy only)",
        description="Load a checkpoint written by `minisnn train --save` and report its cross-entropy and "
        "accuracy on the test split of --data. A data set without an official test split is split "
        "with the hold-out fraction and seed recorded in the checkpoint, and features are standardized "
        "with the statistics recorded there, exactly as in training.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("checkpoint", type=Path, help="a .npz checkpoint")
    add_data_arguments(p)
    p.add_argument("--predictions", type=Path, default=None,
                   help="write predicted class and class probabilities per sample to this CSV file")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args) -> int:
    model = load_model(args.checkpoint)
    meta = model.meta
    data = load_data(args, meta.get("holdout", 0.0), meta.get("seed", 0))
    if "standardizer" in meta:
        mean, scale = np.asarray(meta["standardizer"]["mean"]), np.asarray(meta["standardizer"]["scale"])
        if mean.shape != (data.n_features,):
            raise ValueError(f"{data.name} has {data.n_features} features, the model in {args.checkpoint} "
                             f"expects {mean.shape[0]}")
        data = replace(data, x_train=(data.x_train - mean) / scale,
                       x_test=None if data.x_test is None else (data.x_test - mean) / scale)
    split, x, y = ("test", data.x_test, data.y_test) if data.x_test is not None else ("train", data.x_train, data.y_train)
    if x.shape[1] != model.n_inputs:
        raise ValueError(f"{data.name} has {x.shape[1]} features, the model in {args.checkpoint} expects {model.n_inputs}")
    check_classification_data(x, y, model.n_outputs, f"{data.name} {split} split")
    loss, accuracy = evaluate(model, x, y)
    print(f"{data.name} {split} split ({len(y)} samples): loss {loss:.4f}, accuracy {accuracy:.4f}")
    if args.predictions is not None:
        proba = model.predict_proba(x)  # (N, C)
        table = np.column_stack([proba.argmax(axis=1), proba])
        header = "predicted," + ",".join(f"p{c}" for c in range(proba.shape[1]))
        tmp = args.predictions.with_name(args.predictions.name + ".tmp")
        np.savetxt(tmp, table, delimiter=",", header=header, comments="", fmt=["%d"] + ["%.6g"] * proba.shape[1])
        tmp.replace(args.predictions)
        print(f"predictions written to {args.predictions}")
    return 0

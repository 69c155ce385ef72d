"""`minisnn train`: train an SNN (or a baseline MLP) on the built-in problem or a data set."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

from ..backends import BACKEND_NAMES, get_backend
from ..checkpoint import load_training_state, save_checkpoint
from ..data import load_dataset, make_synthetic, standardize, stratified_split
from ..init import INITIALIZERS
from ..model import ACTIVATIONS, SHAPES, mlp
from ..optim import SCHEDULES, SGD, Schedule
from ..train import fit


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train an MLP (an 8-layer SNN by default) and report per-epoch loss and accuracy",
        description="Train a multilayer perceptron with hand-written backprop and SGD. Without options it "
        "trains an 8-layer SELU network (width 256, alpha dropout 0.05) on a deterministic built-in "
        "synthetic classification problem.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = p.add_argument_group("data")
    add_data_arguments(data)
    data.add_argument("--no-standardize", dest="standardize", action="store_false",
                      help="keep the features as read (default: zero mean, unit variance per feature with "
                      "statistics of the training split only, stored in the checkpoint; the synthetic data "
                      "is already standard)")
    data.add_argument("--holdout", type=float, default=0.15,
                      help="fraction of the training data held out (stratified) for test metrics when the "
                      "data set has no official test split; 0 disables")
    net = p.add_argument_group("network")
    net.add_argument("--depth", type=int, default=8, help="number of hidden layers")
    net.add_argument("--width", type=int, default=256, help="units per hidden layer (the first one if conic)")
    net.add_argument("--shape", choices=SHAPES, default="rectangular", help="constant or geometrically shrinking widths")
    net.add_argument("--activation", choices=ACTIVATIONS, default="selu")
    net.add_argument("--dropout", type=float, default=0.05,
                     help="dropout rate in [0, 1): alpha dropout for SELU, standard dropout otherwise")
    net.add_argument("--init", choices=INITIALIZERS, default=None,
                     help="weight initializer (default: lecun_normal for SELU, he_normal for ReLU/ELU, "
                     "glorot_normal for tanh)")
    net.add_argument("--no-fused", dest="fused", action="store_false",
                     help="use separate Linear, SELU and AlphaDropout layers instead of fused LinearSELU")
    opt = p.add_argument_group("optimization")
    opt.add_argument("--epochs", type=int, default=10)
    opt.add_argument("--batch-size", type=int, default=128)
    opt.add_argument("--lr", type=float, default=0.01, help="learning rate")
    opt.add_argument("--momentum", type=float, default=0.9)
    opt.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    opt.add_argument("--weight-decay", type=float, default=0.0)
    opt.add_argument("--schedule", choices=SCHEDULES, default="constant",
                     help="learning-rate schedule: constant, step (x0.1 every third of the run), cosine")
    run = p.add_argument_group("run")
    run.add_argument("--backend", choices=BACKEND_NAMES + ("auto",), default=None,
                     help="compute backend (default: $MINISNN_BACKEND, else auto)")
    run.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    run.add_argument("--seed", type=int, default=0, help="seed of weights, dropout masks and shuffling")
    run.add_argument("--save", type=Path, default=None, help="write a checkpoint (.npz) after training")
    run.add_argument("--resume", type=Path, default=None,
                     help="continue from a checkpoint (its architecture and optimizer replace the options above)")
    run.add_argument("--metrics-json", type=Path, default=None, help="write per-epoch metrics to this JSON file")
    run.add_argument("--quiet", action="store_true", help="print only the final summary")
    p.set_defaults(func=run_train)


def add_data_arguments(group) -> None:
    """--data, --label-column and --data-root (shared with `minisnn evaluate`)."""
    group.add_argument("--data", default="synthetic",
                       help="synthetic | htru2 | uci:NAME | fashion-mnist | mnist | tox21[:TASK] | PATH to a "
                       ".csv, .csv.gz or .npz file")
    group.add_argument("--label-column", default=None, help="name of the label column of a CSV/NPZ file")
    group.add_argument("--data-root", type=Path, default=None,
                       help="folder holding the data sets (default: $MINISNN_DATA, else ~/.cache/minisnn)")


def load_data(args, holdout: float, seed: int):
    """The LabeledData named by --data, as read; when it has no test split and holdout > 0, a
    stratified fraction `holdout` of the training data (drawn from `seed`) becomes the test split."""
    if args.data == "synthetic":
        return make_synthetic(seed=seed)
    data = load_dataset(args.data, root=args.data_root, label_column=args.label_column)
    if data.x_test is None and holdout > 0:
        train_idx, test_idx = stratified_split(data.y_train, holdout, seed=seed)
        data = replace(data, x_train=data.x_train[train_idx], y_train=data.y_train[train_idx],
                       x_test=data.x_train[test_idx], y_test=data.y_train[test_idx])
    return data


def run_train(args) -> int:
    if not 0 <= args.holdout < 1:
        raise ValueError(f"--holdout must lie in [0, 1), got {args.holdout}")
    data = load_data(args, args.holdout, args.seed)
    meta = {"data": data.name, "seed": args.seed, "holdout": args.holdout}
    if args.standardize and args.data != "synthetic":
        data = standardize(data)  # statistics of the training split only
        scaler = data.meta["standardizer"]
        meta["standardizer"] = {"mean": scaler.mean.tolist(), "scale": scaler.scale.tolist()}
    backend = get_backend(args.backend, dtype=args.dtype, seed=args.seed)
    steps_per_epoch = -(-len(data.y_train) // args.batch_size)
    if args.resume is not None:
        model, optimizer, saved_meta = load_training_state(args.resume, backend)
        if optimizer is None:
            raise ValueError(f"{args.resume}: the checkpoint holds no optimizer state to resume from")
        epochs_done = int(saved_meta.get("epochs_done", 0))
    else:
        model = mlp(data.n_features, data.n_classes, depth=args.depth, width=args.width, shape=args.shape,
                    dropout=args.dropout, activation=args.activation, fused=args.fused, init=args.init,
                    backend=backend, seed=args.seed)
        total = max(1, args.epochs * steps_per_epoch)
        schedule = Schedule(args.schedule, step_size=max(1, total // 3), total_steps=total)
        epochs_done = 0
        optimizer = SGD(model, lr=args.lr, momentum=args.momentum, nesterov=args.nesterov,
                        weight_decay=args.weight_decay, schedule=schedule)
    out = sys.stdout
    if not args.quiet:
        out.write(f"data {data.name}: {len(data.y_train)} training samples, {data.n_features} features, "
                  f"{data.n_classes} classes" + (f", {len(data.y_test)} test samples" if data.y_test is not None else "")
                  + "\n" + model.summary() + "\n")
        out.flush()
    history = fit(model, data.x_train, data.y_train, optimizer, epochs=args.epochs, batch_size=args.batch_size,
                  x_test=data.x_test, y_test=data.y_test, seed=args.seed, start_epoch=epochs_done,
                  progress=None if args.quiet else sys.stderr)
    last = history[-1]
    summary = f"final: train loss {last.train_loss:.4f}, train accuracy {last.train_accuracy:.4f}"
    if last.test_accuracy is not None:
        summary += f", test loss {last.test_loss:.4f}, test accuracy {last.test_accuracy:.4f}"
    out.write(summary + f" ({sum(m.seconds for m in history):.1f}s on {backend.name})\n")
    if args.save is not None:
        save_checkpoint(args.save, model, optimizer, meta={**meta, "epochs_done": last.epoch})
        out.write(f"checkpoint written to {args.save}\n")
    if args.metrics_json is not None:
        args.metrics_json.write_text(json.dumps([asdict(m) for m in history], indent=2) + "\n")
    return 0

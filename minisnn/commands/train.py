"""`minisnn train`: train an SNN (or a baseline MLP) on the built-in problem or a data set."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backends import BACKEND_NAMES, get_backend
from ..callbacks import Checkpoint, EarlyStopping
from ..checkpoint import load_training_state, save_checkpoint
from ..data import ArrayDataset, BatchIterator, DataError, Standardizer, load_dataset, make_synthetic, stratified_split
from ..data.registry import tox21_folder
from ..data.tox21 import read_tox21_tables
from ..files import write_atomically
from ..init import INITIALIZERS
from ..model import ACTIVATIONS, SHAPES, mlp
from ..optim import SCHEDULES, SGD, Adam, AdamW, Schedule
from ..tasks import TASKS, ClassificationTask, MultiTaskBinaryTask, RegressionTask, Task
from ..train import fit

OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
SMOOTHING = 10  # epochs of the moving average early stopping watches (the paper's rule)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train an MLP (an 8-layer SNN by default) and report per-epoch loss and metrics",
        description="Train a multilayer perceptron with hand-written backprop. Without options it trains an "
        "8-layer SELU network (width 256, alpha dropout 0.05) with SGD on a deterministic built-in synthetic "
        "classification problem.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = p.add_argument_group("data")
    add_data_arguments(data)
    data.add_argument("--task", choices=tuple(TASKS), default=None,
                      help="classification (softmax); multitask (binary tasks with missing labels: tox21, or an "
                      ".npz whose y is (N, T) of 0, 1, NaN); regression (float targets: an .npz with x and y). "
                      "Default: multitask for tox21, classification otherwise")
    data.add_argument("--no-standardize", dest="standardize", action="store_false",
                      help="keep the features as read (default: zero mean, unit variance per feature with "
                      "statistics of the training split only, stored in the checkpoint; the synthetic data "
                      "is already standard)")
    data.add_argument("--holdout", type=float, default=0.15,
                      help="fraction of the training data held out (stratified) as the test split when the "
                      "data set has no official one; 0 disables")
    data.add_argument("--validation", type=float, default=0.0, metavar="FRACTION",
                      help="fraction of the training data (after the test split is set aside) held out as a "
                      "validation set, evaluated every epoch (stratified for classification); 0 disables")
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
    opt.add_argument("--batch-size", type=int, default=128,
                     help="samples per batch; a final partial batch under half this size joins the one before it")
    opt.add_argument("--drop-last", action="store_true", help="leave out each epoch's final partial batch instead")
    opt.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="sgd")
    opt.add_argument("--lr", type=float, default=None, help="learning rate (default 0.01 for sgd, 0.001 for adam, adamw)")
    opt.add_argument("--momentum", type=float, default=None, help="SGD momentum (default 0.9)")
    opt.add_argument("--nesterov", action="store_true", help="Nesterov momentum (SGD)")
    opt.add_argument("--beta1", type=float, default=None, help="Adam's first-moment decay (default 0.9)")
    opt.add_argument("--beta2", type=float, default=None, help="Adam's second-moment decay (default 0.999)")
    opt.add_argument("--eps", type=float, default=None, help="Adam's epsilon (default 1e-8)")
    opt.add_argument("--weight-decay", type=float, default=None,
                     help="weight decay (default 0; 0.01 for adamw, where it is decoupled)")
    opt.add_argument("--schedule", choices=SCHEDULES, default="constant",
                     help="learning-rate schedule: constant, step (x0.1 every third of the run), cosine")
    opt.add_argument("--early-stopping", type=int, nargs="?", const=10, default=None, metavar="PATIENCE",
                     help=f"the paper's model selection: stop once the {SMOOTHING}-epoch moving average of the "
                     "validation metric (roc_auc for two classes and multitask, accuracy for more classes, loss "
                     "for regression) has not improved for PATIENCE epochs (10 if not given), and restore the "
                     "weights of its best epoch; needs --validation")
    run = p.add_argument_group("run")
    run.add_argument("--backend", choices=BACKEND_NAMES + ("auto",), default=None,
                     help="compute backend (default: $MINISNN_BACKEND, else auto)")
    run.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    run.add_argument("--threads", type=int, default=None, metavar="N",
                     help="limit BLAS, OpenMP and Numba to N threads (default: leave them as they are)")
    run.add_argument("--seed", type=int, default=0, help="seed of weights, dropout masks, splits and shuffling")
    run.add_argument("--save", type=Path, default=None,
                     help="write a checkpoint (.npz) after training (the chosen epoch's weights with "
                     "--early-stopping); {epoch} in the name becomes the epoch number")
    run.add_argument("--save-every", type=int, default=None, metavar="N",
                     help="also write the --save checkpoint every N epochs")
    run.add_argument("--resume", type=Path, default=None,
                     help="continue from a checkpoint (its architecture, task and optimizer replace the options above)")
    run.add_argument("--metrics-json", type=Path, default=None,
                     help="write the per-epoch history (and the test metrics) to this JSON file")
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


@dataclass
class TaskData:
    """A data set with its task: features x (N, D) float, targets y as the task takes them, and an
    optional test split."""

    name: str
    task: Task
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def default_task(spec: str) -> str:
    """The task a data set is trained for unless --task says otherwise."""
    return "multitask" if spec.strip().lower() == "tox21" else "classification"


def _read_target_npz(path: Path, label_column: str | None) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test) of an .npz holding x and y, or x_train and y_train (and
    x_test, y_test); y (N,) becomes (N, 1). Values are checked by the task."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(path, f"not a readable NPZ archive ({exc})") from exc
    split = "_train" if "x_train" in arrays else ""
    y_key = label_column or f"y{split}"
    if f"x{split}" not in arrays or y_key not in arrays:
        raise DataError(path, f"needs arrays 'x' and 'y' (or 'x_train' and 'y_train'); it has {', '.join(arrays)}")
    x_test, y_test = arrays.get("x_test"), arrays.get("y_test")
    if (x_test is None) != (y_test is None):
        raise DataError(path, "x_test and y_test go together")

    def as_columns(y: np.ndarray | None) -> np.ndarray | None:
        return y[:, None] if y is not None and y.ndim == 1 else y

    return arrays[f"x{split}"], as_columns(arrays[y_key]), x_test, as_columns(y_test)


def _split(task: Task, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) sorted row indices; stratified for classification, else a seeded random draw."""
    if isinstance(task, ClassificationTask):
        return stratified_split(y, fraction, seed=seed)
    held = int(round(fraction * len(y)))
    if not 0 < held < len(y):
        raise ValueError(f"holding out {fraction} of {len(y)} samples leaves one side empty")
    order = np.random.default_rng(seed).permutation(len(y))
    return np.sort(order[held:]), np.sort(order[:held])


def load_task_data(args, kind: str, holdout: float, seed: int) -> TaskData:
    """The data named by --data for task `kind`, as read; when it has no test split and holdout > 0,
    a fraction `holdout` of the training data (drawn from `seed`) becomes the test split."""
    spec = args.data.strip()
    if kind == "classification":
        data = make_synthetic(seed=seed) if spec == "synthetic" else load_dataset(
            spec, root=args.data_root, label_column=args.label_column)
        out = TaskData(data.name, ClassificationTask(data.n_classes), data.x_train, data.y_train, data.x_test,
                       data.y_test)
    elif kind == "multitask" and spec.lower() == "tox21":
        tables = read_tox21_tables(tox21_folder(args.data_root))
        task = MultiTaskBinaryTask(len(tables.task_names), tables.task_names)
        out = TaskData("tox21", task, tables.train.x, task.targets_with_missing(tables.train.labels, tables.train.mask),
                       tables.test.x, task.targets_with_missing(tables.test.labels, tables.test.mask))
    elif Path(spec).suffix.lower() == ".npz":
        x, y, x_test, y_test = _read_target_npz(Path(spec).expanduser(), args.label_column)
        if y.ndim != 2:
            raise DataError(spec, f"targets must be (N,) or (N, T), got shape {y.shape}")
        task = MultiTaskBinaryTask(y.shape[1]) if kind == "multitask" else RegressionTask(y.shape[1])
        out = TaskData(Path(spec).stem, task, x, y, x_test, y_test)
    else:
        raise ValueError(f"--task {kind} reads tox21 or an .npz file (arrays x and y, or x_train and y_train), "
                         f"not {spec!r}")
    if out.x_test is None and holdout > 0:
        keep, held = _split(out.task, out.y_train, holdout, seed)
        out = TaskData(out.name, out.task, out.x_train[keep], out.y_train[keep], out.x_train[held], out.y_train[held])
    return out


def build_optimizer(args, model, total_steps: int):
    """The optimizer named by --optimizer with the options given; options of another optimizer are errors."""
    sgd = args.optimizer == "sgd"
    given = {"--momentum": args.momentum, "--nesterov": args.nesterov or None, "--beta1": args.beta1,
             "--beta2": args.beta2, "--eps": args.eps}
    foreign = [name for name, value in given.items() if value is not None and (name in ("--momentum", "--nesterov")) != sgd]
    if foreign:
        raise ValueError(f"{', '.join(foreign)} cannot be used with --optimizer {args.optimizer}")
    schedule = Schedule(args.schedule, step_size=max(1, total_steps // 3), total_steps=max(1, total_steps))
    options = {"lr": args.lr, "weight_decay": args.weight_decay}
    if sgd:
        options.update(momentum=0.9 if args.momentum is None else args.momentum, nesterov=args.nesterov)
    else:
        options.update(beta1=args.beta1, beta2=args.beta2, eps=args.eps)
    return OPTIMIZERS[args.optimizer](model, schedule=schedule, **{k: v for k, v in options.items() if v is not None})


def format_metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())


def run_train(args) -> int:
    if not 0 <= args.holdout < 1 or not 0 <= args.validation < 1:
        raise ValueError(f"--holdout and --validation must lie in [0, 1), got {args.holdout} and {args.validation}")
    if args.save_every is not None and (args.save is None or args.save_every < 1):
        raise ValueError("--save-every N needs --save PATH and N >= 1")
    if args.early_stopping is not None and (args.validation == 0 or args.early_stopping < 1):
        raise ValueError("--early-stopping needs --validation FRACTION (it watches the validation curve) "
                         "and a patience >= 1")
    backend = get_backend(args.backend, dtype=args.dtype)
    resumed = load_training_state(args.resume, backend) if args.resume is not None else None
    if resumed is not None and resumed[1] is None:
        raise ValueError(f"{args.resume}: the checkpoint holds no optimizer state to resume from")
    saved_task = resumed[2].get("task", {}).get("task") if resumed is not None else None
    kind = saved_task or args.task or default_task(args.data)
    data = load_task_data(args, kind, args.holdout, args.seed)
    x_train, y_train, validation = data.x_train, data.y_train, None
    if args.validation > 0:
        keep, held = _split(data.task, y_train, args.validation, args.seed)
        x_train, y_train, validation = x_train[keep], y_train[keep], (x_train[held], y_train[held])
    data.task.check(data.x_train, data.y_train, "training data")  # before standardizing
    if data.x_test is not None:
        data.task.check(data.x_test, data.y_test, "test data")
    meta = {"data": data.name, "seed": args.seed, "holdout": args.holdout, "validation": args.validation,
            "task": data.task.config()}
    x_test = data.x_test
    if args.standardize and args.data != "synthetic":
        scaler = Standardizer().fit(x_train)  # statistics of the training rows only
        x_train = scaler.transform(x_train)
        validation = None if validation is None else (scaler.transform(validation[0]), validation[1])
        x_test = None if x_test is None else scaler.transform(x_test)
        meta["standardizer"] = {"mean": scaler.mean.tolist(), "scale": scaler.scale.tolist()}
    steps_per_epoch = len(BatchIterator(ArrayDataset(x_train, y_train), args.batch_size, drop_last=args.drop_last))
    if resumed is not None:
        model, optimizer, saved_meta = resumed
        epochs_done = int(saved_meta.get("epochs_done", 0))
    else:
        model = mlp(data.n_features, data.task.n_outputs, depth=args.depth, width=args.width, shape=args.shape,
                    dropout=args.dropout, activation=args.activation, fused=args.fused, init=args.init,
                    backend=backend, seed=args.seed)
        optimizer = build_optimizer(args, model, args.epochs * steps_per_epoch)
        epochs_done = 0
    callbacks = []
    stopper = None
    if args.early_stopping is not None:
        stopper = EarlyStopping(patience=args.early_stopping, window=SMOOTHING)
        callbacks.append(stopper)
    if args.save_every is not None:
        callbacks.append(Checkpoint(args.save, every=args.save_every, meta=meta))
    out = sys.stdout
    if not args.quiet:
        sizes = [f"{len(x_train)} training samples", f"{data.n_features} features", f"task {data.task.name} "
                 f"({data.task.n_outputs} outputs)"]
        sizes += [f"{len(validation[0])} validation samples"] if validation is not None else []
        sizes += [f"{len(x_test)} test samples"] if x_test is not None else []
        out.write(f"data {data.name}: {', '.join(sizes)}\n{model.summary()}\n")
        out.flush()
    history = fit(model, x_train, y_train, optimizer, task=data.task, epochs=args.epochs, batch_size=args.batch_size,
                  validation=validation, callbacks=callbacks, seed=args.seed, start_epoch=epochs_done,
                  drop_last=args.drop_last, threads=args.threads, progress=None if args.quiet else sys.stderr)
    last = history[-1]
    summary = f"final: train loss {last['train_loss']:.4f}"
    if "train_accuracy" in last:
        summary += f", train accuracy {last['train_accuracy']:.4f}"
    out.write(summary + f" ({float(history.seconds.sum()):.1f}s on {backend.name})\n")
    if stopper is not None:
        stopped = f"stopped after epoch {stopper.stopped_epoch}" if stopper.stopped_epoch else "ran every epoch"
        out.write(f"early stopping: best epoch {stopper.best_epoch} ({SMOOTHING}-epoch mean {stopper.monitor} "
                  f"{stopper.best_value:.4f}), {stopped}; weights of epoch {stopper.best_epoch} restored\n")
    test_metrics = None
    if x_test is not None:
        test_metrics = data.task.evaluate(model, x_test, data.y_test)
        out.write(f"test ({len(x_test)} samples): {format_metrics(test_metrics)}\n")
    if args.save is not None:
        path = Path(str(args.save).format(epoch=last["epoch"])) if "{epoch}" in str(args.save) else args.save
        save_checkpoint(path, model, optimizer, meta={**meta, "epochs_done": last["epoch"],
                                                     "best_epoch": history.best_epoch})
        out.write(f"checkpoint written to {path}\n")
    if args.metrics_json is not None:
        test = None if test_metrics is None else {k: None if np.isnan(v) else v for k, v in test_metrics.items()}
        write_atomically(args.metrics_json,
                         lambda handle: json.dump({**history.to_dict(), "test": test}, handle, indent=2), binary=False)
    return 0

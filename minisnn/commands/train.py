"""`minisnn train`: train an SNN, or any of the networks it is compared with, on the built-in problem or a data set."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..backends import BACKEND_NAMES, get_backend
from ..callbacks import Checkpoint, EarlyStopping
from ..checkpoint import load_training_state, save_checkpoint
from ..data import ArrayDataset, BatchIterator, DataError, Standardizer, load_dataset, make_synthetic, stratified_split
from ..data.ranges import check_magnitude, feature_limit, target_limit
from ..data.registry import file_kind, tox21_source
from ..data.tabular import load_npz, npz_features
from ..data.tox21 import SPLITS as TOX21_SPLITS
from ..data.tox21 import read_tox21_smiles, read_tox21_tables, split_molecules
from ..files import check_writable, write_atomically
from ..init import INITIALIZERS
from ..methods import METHODS, ORDERS, RESNET_SHAPES, build_model
from ..model import ACTIVATIONS, SHAPES, mlp
from ..optim import SCHEDULES, SGD, Adam, AdamW, Schedule
from ..tasks import TASKS, ClassificationTask, MultiTaskBinaryTask, RegressionTask, Task
from ..train import TrainingDiverged, fit
from ._options import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, SEED, HelpFormatter, integer, number

OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
SMOOTHING = 10  # epochs of the moving average early stopping watches (the paper's rule)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train an MLP (an 8-layer SNN by default) and report per-epoch loss and metrics",
        description="Train a multilayer perceptron with hand-written backprop. Without options it trains an "
        "8-layer SELU network (width 256, alpha dropout 0.05) with SGD on a deterministic built-in synthetic "
        "classification problem.",
        formatter_class=HelpFormatter,
    )
    data = p.add_argument_group("data")
    add_data_arguments(data)
    data.add_argument("--task", choices=tuple(TASKS), default=None,
                      help="classification (softmax); multitask (binary tasks with missing labels: tox21, or an "
                      ".npz whose y is (N, T) of 0, 1, NaN); regression (float targets: an .npz with x and y). "
                      "Default: multitask for tox21 (tox21:random, tox21:scaffold), classification otherwise")
    data.add_argument("--no-standardize", dest="standardize", action="store_false",
                      help="keep the features as read (default: zero mean, unit variance per feature with "
                      "statistics of the training split only, stored in the checkpoint; the synthetic data "
                      "is already standard)")
    data.add_argument("--holdout", type=FRACTION, default=0.15,
                      help="fraction of the training data held out (stratified) as the test split when the "
                      "data set has no official one; 0 disables")
    data.add_argument("--validation", type=FRACTION, default=0.0, metavar="FRACTION",
                      help="fraction of the training data (after the test split is set aside) held out as a "
                      "validation set, evaluated every epoch (stratified for classification); 0 disables")
    net = p.add_argument_group("network")
    net.add_argument("--method", choices=METHODS, default="snn",
                     help="the network: snn (SELU, LeCun init, alpha dropout) or one it is compared with: msra "
                     "(ReLU, He init), batchnorm, layernorm, weightnorm, highway, resnet (see `minisnn.methods`)")
    net.add_argument("--depth", type=integer(0), default=8, help="number of hidden layers (residual blocks for resnet)")
    net.add_argument("--width", type=COUNT, default=256, help="units per hidden layer (the first one if conic)")
    net.add_argument("--shape", choices=tuple(dict.fromkeys(SHAPES + RESNET_SHAPES)), default="rectangular",
                     help="constant or geometrically shrinking widths; diavolo: resnet blocks with a bottleneck")
    net.add_argument("--dropout", type=FRACTION, default=None,
                     help="dropout rate in [0, 1): alpha dropout for SELU, standard dropout otherwise "
                     "(default: 0.05 for snn, 0 for the other methods)")
    net.add_argument("--bottleneck", type=number(0.0, 1.0, low_open=True), default=None,
                     help="resnet --shape diavolo: the middle layer's width as a fraction of --width (default 0.5)")
    net.add_argument("--order", choices=ORDERS, default=None,
                     help="batchnorm, layernorm: normalization after the ReLU (default, the authors' order) or before")
    net.add_argument("--activation", choices=ACTIVATIONS, default=None,
                     help="snn only: a plain MLP of this activation instead of SELU (default selu)")
    net.add_argument("--init", choices=INITIALIZERS, default=None,
                     help="snn only: weight initializer (default: lecun_normal for SELU, he_normal for ReLU/ELU, "
                     "glorot_normal for tanh)")
    net.add_argument("--no-fused", dest="fused", action="store_false",
                     help="snn only: separate Linear, SELU and AlphaDropout layers instead of fused LinearSELU")
    opt = p.add_argument_group("optimization")
    opt.add_argument("--epochs", type=COUNT, default=10, help="passes over the training data")
    opt.add_argument("--batch-size", type=COUNT, default=128,
                     help="samples per batch; a final partial batch under half this size joins the one before it")
    opt.add_argument("--drop-last", action="store_true", help="leave out each epoch's final partial batch instead")
    opt.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="sgd", help="the optimizer")
    opt.add_argument("--lr", type=POSITIVE, default=None, help="learning rate (default 0.01 for sgd, 0.001 for adam, adamw)")
    opt.add_argument("--momentum", type=FRACTION, default=None, help="SGD momentum (default 0.9)")
    opt.add_argument("--nesterov", action="store_true", help="Nesterov momentum (SGD)")
    opt.add_argument("--beta1", type=FRACTION, default=None, help="Adam's first-moment decay (default 0.9)")
    opt.add_argument("--beta2", type=FRACTION, default=None, help="Adam's second-moment decay (default 0.999)")
    opt.add_argument("--eps", type=POSITIVE, default=None, help="Adam's epsilon (default 1e-8)")
    opt.add_argument("--weight-decay", type=NON_NEGATIVE, default=None,
                     help="weight decay (default 0; 0.01 for adamw, where it is decoupled)")
    opt.add_argument("--schedule", choices=SCHEDULES, default="constant",
                     help="learning-rate schedule: constant, step (x0.1 every third of the run), cosine")
    opt.add_argument("--early-stopping", type=COUNT, nargs="?", const=10, default=None, metavar="PATIENCE",
                     help=f"the paper's model selection: stop once the {SMOOTHING}-epoch moving average of the "
                     "validation metric (roc_auc for two classes and multitask, accuracy for more classes, loss "
                     "for regression) has not improved for PATIENCE epochs (10 if not given), and restore the "
                     "weights of its best epoch; needs --validation")
    run = p.add_argument_group("run")
    run.add_argument("--backend", choices=BACKEND_NAMES + ("auto",), default=None,
                     help="compute backend (default: $MINISNN_BACKEND, else auto)")
    run.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="working precision")
    run.add_argument("--threads", type=COUNT, default=None, metavar="N",
                     help="limit BLAS, OpenMP and Numba to N threads (default: leave them as they are)")
    run.add_argument("--seed", type=SEED, default=0, help="seed of weights, dropout masks, splits and shuffling")
    run.add_argument("--save", type=Path, default=None,
                     help="write a checkpoint (.npz) after training (the chosen epoch's weights with "
                     "--early-stopping); {epoch} in the name becomes the epoch number")
    run.add_argument("--save-every", type=COUNT, default=None, metavar="N",
                     help="also write the --save checkpoint every N epochs")
    run.add_argument("--resume", type=Path, default=None,
                     help="continue from a checkpoint (its architecture, task and optimizer replace the options above)")
    run.add_argument("--metrics-json", type=Path, default=None,
                     help="write the per-epoch history (and the test metrics) to this JSON file")
    run.add_argument("--quiet", action="store_true", help="print only the final summary")
    p.set_defaults(func=run_train)


def add_data_arguments(group, default: str | None = "synthetic") -> None:
    """--data, --label-column and --data-root (shared with evaluate, predict and selfnorm)."""
    group.add_argument("--data", default=default,
                       help="synthetic | htru2 | uci:NAME | fashion-mnist | mnist | tox21[:TASK] | PATH to a "
                       ".csv, .csv.gz or .npz file" + ("" if default else " (default: the data set the checkpoint "
                                                         "was trained on)"))
    group.add_argument("--label-column", default=None,
                       help="the label column of a CSV file or label array of an NPZ file (default: \"label\", "
                       "else the last column; y or y_train); an error for any other data set")
    group.add_argument("--data-root", type=Path, default=None,
                       help="folder holding the data sets (default: $MINISNN_DATA, else ~/.cache/minisnn)")


@dataclass
class TaskData:
    """A data set with its task: features x (N, D) float, targets y as the task takes them, and an
    optional test split; origin(split, row) says where a row was read, for error messages;
    class_labels are the original labels of text classes."""

    name: str
    task: Task
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    origin: Callable[[str, int], str] | None = None
    feature_names: list[str] | None = None
    class_labels: list[str] | None = None

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def where(self, split: str) -> Callable[[int], str]:
        """row -> where row `row` of `split` was read."""
        if self.origin is None:
            return lambda row: f"{self.name} {split} split, row {row + 1}"
        return lambda row: self.origin(split, row)


TOX21_MULTITASK = ("tox21",) + tuple(f"tox21:{split}" for split in TOX21_SPLITS)


def default_task(spec: str) -> str:
    """The task a data set is trained for unless --task says otherwise."""
    return "multitask" if spec.strip().lower() in TOX21_MULTITASK else "classification"


def tox21_task_data(spec: str, root, holdout: float, seed: int) -> TaskData:
    """All Tox21 tasks: the DeepTox files with their split, else the SMILES file with RDKit
    features and a test split of `holdout` drawn at random with `seed` (tox21, tox21:random) or
    by scaffold (tox21:scaffold). What featurizing skipped is reported on stderr."""
    kind, where = tox21_source(root)
    split = spec.lower().partition(":")[2]
    if kind == "deeptox":
        if split:
            raise ValueError(f"--data {spec}: the DeepTox files in {where} have their own split; use --data tox21")
        tables = read_tox21_tables(where)
        task = MultiTaskBinaryTask(len(tables.task_names), tables.task_names)
        y_train = task.targets_with_missing(tables.train.labels, tables.train.mask)  # (N, T)
        y_test = task.targets_with_missing(tables.test.labels, tables.test.mask)  # (M, T)
        return TaskData("tox21", task, tables.train.x, y_train, tables.test.x, y_test,
                        lambda part, row: f"{where / f'tox21_dense_{part}.csv.gz'}, data row {row + 1}",
                        tables.feature_names)
    data = read_tox21_smiles(where)
    for line in data.report():
        print(f"tox21: {line}", file=sys.stderr)
    task = MultiTaskBinaryTask(len(data.task_names), data.task_names)
    train = test = np.arange(len(data.x))  # (N,)
    if holdout > 0:
        train, test = split_molecules(data, split or "random", holdout, seed)
    lines = {"train": data.lines[train], "test": data.lines[test]}
    return TaskData("tox21", task, data.x[train], data.targets[train], data.x[test] if holdout > 0 else None,
                    data.targets[test] if holdout > 0 else None,
                    lambda part, row: f"{where}, line {lines[part][row]}", data.feature_names)


def data_spec(spec: str) -> str:
    """The --data value as a checkpoint records it: a file as an absolute path, a data set by name."""
    path = Path(spec.strip()).expanduser()
    return str(path.resolve()) if file_kind(path) is not None or path.is_dir() else spec.strip()


def _read_target_npz(path: Path, label_column: str | None) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test, x key) of an .npz holding x and y, or x_train and y_train
    (and x_test, y_test); y (N,) becomes (N, 1). Target values are checked by the task."""
    arrays = load_npz(path)
    split = "_train" if "x_train" in arrays else ""
    y_key = label_column or f"y{split}"
    if f"x{split}" not in arrays or y_key not in arrays:
        raise DataError(path, f"needs arrays 'x' and 'y' (or 'x_train' and 'y_train'); it has {', '.join(arrays)}")
    x_test, y_test = arrays.get("x_test"), arrays.get("y_test")
    if (x_test is None) != (y_test is None):
        raise DataError(path, "x_test and y_test go together")

    def targets(key: str, y: np.ndarray, rows: int) -> np.ndarray:
        if y.dtype.kind not in "biuf" or y.ndim not in (1, 2) or y.shape[0] != rows:
            raise DataError(path, f"array {key!r} must hold numeric targets (N,) or (N, T) for the {rows} rows of x, "
                            f"got {y.dtype} of shape {y.shape}")
        return (y[:, None] if y.ndim == 1 else y).astype(np.float64)

    x = npz_features(path, f"x{split}", arrays[f"x{split}"])
    y = targets(y_key, arrays[y_key], x.shape[0])
    if x_test is not None:
        x_test = npz_features(path, "x_test", x_test)
        y_test = targets("y_test", y_test, x_test.shape[0])
    return x, y, x_test, y_test, f"x{split}"


def _split(task: Task, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) sorted row indices; stratified for classification, else a seeded random draw."""
    if isinstance(task, ClassificationTask):
        return stratified_split(y, fraction, seed=seed)
    held = int(round(fraction * len(y)))
    if not 0 < held < len(y):
        raise ValueError(f"holding out {fraction} of {len(y)} samples leaves one side empty")
    order = np.random.default_rng(seed).permutation(len(y))
    return np.sort(order[held:]), np.sort(order[:held])


def check_value_ranges(data: TaskData, dtype, standardize: bool) -> None:
    """ValueError naming file, row and column of the first feature (or regression target) that does
    not fit `dtype` or would overflow the statistics computed from it (minisnn.data.ranges)."""
    limit = feature_limit(dtype, len(data.x_train), standardize)
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        if x is None:
            continue
        check_magnitude(x, limit, data.where(split), data.feature_names)
        if isinstance(data.task, RegressionTask):
            check_magnitude(y, target_limit(dtype), data.where(split), None, "target")


def load_task_data(args, kind: str, holdout: float, seed: int, dtype="float64", standardize: bool = False,
                   n_classes: int | None = None, class_labels: list | None = None) -> TaskData:
    """The data named by --data for task `kind`, as read, its values checked for `dtype`
    (check_value_ranges); when it has no test split and holdout > 0, a fraction `holdout` of the
    training data (drawn from `seed`) becomes the test split. n_classes and class_labels (a
    trained model's) are what class labels are checked against and mapped by."""
    spec = args.data.strip()
    if args.label_column is not None and file_kind(Path(spec)) is None:
        raise ValueError(f"--label-column applies to CSV and NPZ files, not to the data set {spec!r}")
    if kind == "classification":
        data = make_synthetic(seed=seed) if spec == "synthetic" else load_dataset(
            spec, root=args.data_root, label_column=args.label_column, n_classes=n_classes, class_labels=class_labels)
        for line in data.meta.get("report", []):  # what featurizing a Tox21 SMILES file skipped
            print(f"tox21: {line}", file=sys.stderr)
        out = TaskData(data.name, ClassificationTask(data.n_classes), data.x_train, data.y_train, data.x_test,
                       data.y_test, data.origin, data.feature_names, data.class_labels)
    elif kind == "multitask" and spec.lower() in TOX21_MULTITASK:
        out = tox21_task_data(spec, args.data_root, holdout, seed)
    elif file_kind(Path(spec)) == "npz":
        path = Path(spec).expanduser()
        x, y, x_test, y_test, x_key = _read_target_npz(path, args.label_column)
        task = MultiTaskBinaryTask(y.shape[1]) if kind == "multitask" else RegressionTask(y.shape[1])
        out = TaskData(path.stem, task, x, y, x_test, y_test,
                       lambda split, row: f"{path}, row {row} of {x_key if split == 'train' else 'x_test'}")
    else:
        raise ValueError(f"--task {kind} reads tox21 or an .npz file (arrays x and y, or x_train and y_train), "
                         f"not {spec!r}")
    check_value_ranges(out, dtype, standardize)
    if out.x_test is None and holdout > 0:
        keep, held = _split(out.task, out.y_train, holdout, seed)
        out = replace(out, x_train=out.x_train[keep], y_train=out.y_train[keep], x_test=out.x_train[held],
                      y_test=out.y_train[held], origin=None)
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


def check_network_options(args) -> None:
    """ValueError naming the options that do not apply to --method (before any data is read)."""
    snn_only = {"--activation": args.activation is not None, "--init": args.init is not None,
                "--no-fused": not args.fused}
    given = [option for option, used in snn_only.items() if used]
    if args.method != "snn" and given:
        verb = "apply" if len(given) > 1 else "applies"
        raise ValueError(f"{', '.join(given)} {verb} to --method snn only; --method {args.method} fixes its layers")
    if args.method == "snn" and args.shape == "diavolo":
        raise ValueError("--shape diavolo applies to --method resnet only")
    if args.method == "snn" and (args.bottleneck is not None or args.order is not None):
        raise ValueError("--bottleneck and --order do not apply to --method snn")


def build_network(args, n_inputs: int, n_outputs: int, backend):
    """The network the options describe: --method's layers, --depth hidden layers of --width units."""
    if args.method == "snn":
        dropout = 0.05 if args.dropout is None else args.dropout
        return mlp(n_inputs, n_outputs, depth=args.depth, width=args.width, shape=args.shape, dropout=dropout,
                   activation=args.activation or "selu", fused=args.fused, init=args.init, backend=backend,
                   seed=args.seed)
    extra = {name: value for name, value in (("bottleneck", args.bottleneck), ("order", args.order)) if value is not None}
    return build_model(args.method, n_inputs, n_outputs, depth=args.depth, width=args.width, shape=args.shape,
                       dropout=args.dropout, backend=backend, seed=args.seed, **extra)


def format_metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())


def check_outputs(paths: dict[str, Path | None]) -> None:
    """Every output path (option -> path) can be written, and no two options name the same file;
    called before any long work. {epoch} in a name is checked as epoch 1."""
    seen: dict[Path, str] = {}
    for option, path in paths.items():
        if path is None:
            continue
        concrete = Path(str(path).replace("{epoch}", "1"))
        check_writable(concrete, f"{option} output")
        key = concrete.expanduser().resolve()
        if key in seen:
            raise ValueError(f"{seen[key]} and {option} both name {path}: one would overwrite the other")
        seen[key] = option


def divergence_cause(x: np.ndarray, model, optimizer) -> str:
    """The likely cause of a NaN or infinite loss, from what can be seen: the inputs, the
    optimizer's settings, the weights, the feature scale, else the learning rate."""
    if not np.isfinite(x).all():
        return "the inputs hold NaN or infinite values"
    settings = optimizer.config()
    broken = {name: value for name, value in settings.items() if isinstance(value, float) and not math.isfinite(value)}
    if broken:
        name, value = next(iter(broken.items()))
        return f"the optimizer's {name} is {value}"
    if not all(np.isfinite(a).all() for a in model.state_arrays().values()):
        return "the model's weights hold NaN or infinite values (a damaged checkpoint?)"
    scale = float(np.abs(x).max())
    if scale > 1e3:
        return f"the features are large (|x| up to {scale:.3g}): standardize them (leave out --no-standardize)"
    return f"the learning rate {settings.get('lr'):g} is too high for this network and data: try a lower --lr"


def run_train(args) -> int:
    if args.save_every is not None and args.save is None:
        raise ValueError("--save-every N needs --save PATH")
    if args.early_stopping is not None and args.validation == 0:
        raise ValueError("--early-stopping needs --validation FRACTION (it watches the validation curve)")
    check_outputs({"--save": args.save, "--metrics-json": args.metrics_json})
    check_network_options(args)
    backend = get_backend(args.backend, dtype=args.dtype)
    resumed = load_training_state(args.resume, backend) if args.resume is not None else None
    if resumed is not None and resumed[1] is None:
        raise ValueError(f"{args.resume}: the checkpoint holds no optimizer state to resume from")
    saved_task = resumed[2].get("task", {}).get("task") if resumed is not None else None
    kind = saved_task or args.task or default_task(args.data)
    standardize = args.standardize and args.data != "synthetic"
    data = load_task_data(args, kind, args.holdout, args.seed, backend.dtype, standardize)
    x_train, y_train, validation = data.x_train, data.y_train, None
    if args.validation > 0:
        keep, held = _split(data.task, y_train, args.validation, args.seed)
        x_train, y_train, validation = x_train[keep], y_train[keep], (x_train[held], y_train[held])
    data.task.check(data.x_train, data.y_train, f"{data.name} training data")  # before standardizing
    if data.x_test is not None:
        data.task.check(data.x_test, data.y_test, f"{data.name} test data")
    meta = {"data": data_spec(args.data), "method": args.method, "seed": args.seed, "holdout": args.holdout, "validation": args.validation,
            "task": data.task.config()}
    if args.label_column is not None:
        meta["label_column"] = args.label_column
    if data.class_labels is not None:
        meta["class_labels"] = list(data.class_labels)
    x_test = data.x_test
    if standardize:
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
        model = build_network(args, data.n_features, data.task.n_outputs, backend)
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
    try:
        history = fit(model, x_train, y_train, optimizer, task=data.task, epochs=args.epochs,
                      batch_size=args.batch_size, validation=validation, callbacks=callbacks, seed=args.seed,
                      start_epoch=epochs_done, drop_last=args.drop_last, threads=args.threads,
                      progress=None if args.quiet else sys.stderr)
    except TrainingDiverged as exc:
        raise TrainingDiverged(f"{exc}; likely cause: {divergence_cause(x_train, model, optimizer)}") from None
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

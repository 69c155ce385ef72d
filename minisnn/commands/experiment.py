"""`minisnn experiment run | status | report`: the SNN paper's comparison, resumable (docs/EXPERIMENTS.md)."""

from __future__ import annotations

import argparse
import importlib.util
import sys

from ..data.locations import ENV_VAR, data_root

STORE_HELP = "the SQLite results store (created if absent)"


def _csv_list(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(item) for item in _csv_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "experiment", help="run, watch and report the paper's method comparison",
        description="Grid search of the paper's methods over data sets with early stopping, stored one row per "
                    f"trial in SQLite; a second run resumes. Data are read from --data-root, else ${ENV_VAR}, "
                    "else ~/.cache/minisnn.")
    actions = parser.add_subparsers(dest="experiment_action", required=True)

    run = actions.add_parser("run", help="run the trials of an experiment that are not in the store yet")
    run.add_argument("--data", type=_csv_list, required=True,
                     help="data sets: uci:NAME, uci:all, htru2, tox21, or a CSV/NPZ path (comma-separated)")
    run.add_argument("--methods", type=_csv_list, default=["snn"],
                     help="snn, msra, batchnorm, layernorm, weightnorm, highway, resnet (comma-separated)")
    run.add_argument("--grid", default="small", help="paper, small, tiny, or the path of a JSON grid (default small)")
    run.add_argument("--store", required=True, help=STORE_HELP)
    run.add_argument("--data-root", default=None)
    run.add_argument("--uci-split", choices=("kfold", "halves"), default="kfold",
                     help="kfold: a test fold of conxuntos_kfold.dat (the paper's); halves: conxuntos.dat")
    run.add_argument("--uci-folds", type=_int_list, default=(0,), help="folds of conxuntos_kfold.dat (default 0)")
    run.add_argument("--kfold-folds", type=_int_list, default=None, help="HTRU2 test folds (default all 10)")
    run.add_argument("--repetitions", type=int, default=1, help="runs of every trial with other seeds")
    run.add_argument("--tox21-split", choices=("random", "scaffold"), default=None,
                     help="Tox21 from SMILES: test molecules drawn at random (default) or by Bemis-Murcko scaffold")
    run.add_argument("--epochs", type=int, default=None, help="override the grid's epochs (the paper: 100)")
    run.add_argument("--final", choices=("selected", "retrain"), default=None,
                     help="final model: the weights selected on validation (default) or retrained on "
                          "training + validation for the chosen epochs")
    run.add_argument("--backend", default=None, help="numpy (default), numba, cupy or auto")
    run.add_argument("--dtype", choices=("float32", "float64"), default=None)
    run.add_argument("--executor", choices=("local", "dask"), default="local")
    run.add_argument("--workers", type=int, default=None,
                     help="worker processes (default: one per core; 0 runs trials in this process)")
    run.add_argument("--threads", type=int, default=None, help="threads per worker (default cores / workers)")
    run.add_argument("--address", default=None, help="Dask scheduler address (default: a LocalCluster)")
    run.add_argument("--retries", type=int, default=1, help="Dask retries of a trial that raises")
    run.add_argument("--retry-failed", action="store_true", help="run failed trials again")
    run.add_argument("--limit", type=int, default=None, help="run at most this many pending trials")
    run.set_defaults(func=run_command)

    status = actions.add_parser("status", help="trials done, failed and pending, and the time left")
    status.add_argument("--store", required=True, help=STORE_HELP)
    status.add_argument("--workers", type=int, default=None, help="workers assumed for the ETA (default: cores)")
    status.add_argument("--by", choices=("dataset", "method"), default=None, help="also count per data set or method")
    status.set_defaults(func=status_command)

    report = actions.add_parser("report", help="tables, ranks, tests and figures from a store")
    report.add_argument("--store", required=True, help=STORE_HELP)
    report.add_argument("--out", required=True, help="folder for report.md, CSV tables and PNG figures")
    report.add_argument("--paper-results", default=None,
                        help="the paper's UCI table (paper_results.csv; default DATA_ROOT/uci/paper_results.csv "
                             "when present)")
    report.add_argument("--data-root", default=None)
    report.add_argument("--no-figures", action="store_true")
    report.set_defaults(func=report_command)


def _executor(args):
    from ..experiments import DaskExecutor, LocalExecutor

    if args.executor == "dask":
        return DaskExecutor(args.address, workers=args.workers or 2, retries=args.retries, threads=args.threads or 1)
    return LocalExecutor(args.workers, args.threads)


def run_command(args: argparse.Namespace) -> int:
    from ..experiments import ProtocolOptions, Store, plan_trials, run_experiment
    from ..experiments.protocols import prepare_data
    from ..experiments.runner import format_seconds

    training = {name: value for name, value in (("epochs", args.epochs), ("final", args.final),
                                                ("backend", args.backend), ("dtype", args.dtype))
                if value is not None}
    options = ProtocolOptions(args.uci_split, args.uci_folds, args.kfold_folds, args.repetitions,
                              tox21_split=args.tox21_split)
    root = str(data_root(args.data_root))
    specs = plan_trials(args.data, args.methods, args.grid, root, training, options)
    for spec in {spec.dataset: spec for spec in reversed(specs)}.values():  # each data set's first trial
        prepare_data(spec.dataset, spec.protocol, root)
    executor = _executor(args)
    with Store(args.store) as store:
        print(f"{len(specs)} trials planned into {args.store}; executor {executor.name}", file=sys.stderr)
        summary = run_experiment(store, specs, executor, root, retry_failed=args.retry_failed, limit=args.limit)
        counts = store.counts({spec.key for spec in specs})
    print(f"ran {summary.ran} trials in {format_seconds(summary.seconds)} ({summary.failed} failed); "
          f"this experiment: {counts['done']} done, {counts['failed']} failed, {counts['pending']} pending")
    if summary.scale_mismatches:
        print(f"test file on another scale than the training file: {', '.join(summary.scale_mismatches)}")
    return 1 if summary.failed else 0


def status_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..experiments import Store
    from ..experiments.executors import cores
    from ..experiments.runner import format_seconds

    if not Path(args.store).is_file():
        raise ValueError(f"no results store at {args.store}")
    with Store(args.store) as store:
        counts = store.counts()
        errors = store.errors(5)
        groups = store.counts_by(args.by) if args.by else []
    workers = args.workers or cores()
    eta = None if counts["mean_wall_s"] is None else counts["pending"] * counts["mean_wall_s"] / workers
    print(f"planned {counts['planned']}: done {counts['done']} ({counts['diverged']} diverged), "
          f"failed {counts['failed']}, pending {counts['pending']}")
    mean = counts["mean_wall_s"]
    print(f"mean trial time {'?' if mean is None else f'{mean:.2f} s'}; "
          f"ETA of the pending trials with {workers} workers: {format_seconds(eta)}")
    if groups:
        width = max(len(name) for name, _ in groups)
        for name, group in groups:
            print(f"  {name:<{width}}  done {group['done']:>6}  failed {group['failed']:>6}  "
                  f"pending {group['pending']:>6}")
    for key, what, error in errors:
        print(f"failed {key} ({what}): {error}")
    return 0


def report_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..experiments import Store
    from ..experiments.paper import paper_values
    from ..experiments.report import PLOTS_HINT, write_report

    if not Path(args.store).is_file():
        raise ValueError(f"no results store at {args.store}")
    paper_path = args.paper_results
    if paper_path is None:
        default = data_root(args.data_root) / "uci" / "paper_results.csv"
        paper_path = default if default.is_file() else None
    figures = not args.no_figures
    if figures and importlib.util.find_spec("matplotlib") is None:
        print(f"no figures: {PLOTS_HINT}", file=sys.stderr)
        figures = False
    with Store(args.store) as store:
        records = store.records()
        written = [store.export_csv(Path(args.out) / "trials.csv")]
    written += write_report(records, args.out, paper_values(paper_path), figures=figures)
    for path in written:
        print(path)
    return 0

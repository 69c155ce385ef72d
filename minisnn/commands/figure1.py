"""`minisnn figure1`: the SNN paper's Figure 1, training loss of deep SELU and ReLU + BatchNorm nets."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..backends import BACKEND_NAMES
from ..data import load_dataset
from ..data.errors import DataNotFound
from ..figure1 import FIGURE1_METHODS, Figure1Setting, plot_figure1, run_figure1, summary_table, write_csv
from ..files import write_atomically
from ..theory._optional import figure_class
from ._options import COUNT, POSITIVE, SEED, HelpFormatter, integer


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "figure1",
        help="the paper's Figure 1: training loss per epoch of SELU nets and ReLU + BatchNorm nets of 8, 16 and "
        "32 layers (PNG, CSV, JSON)",
        description="Train SELU nets (LeCun-normal init, no dropout) and ReLU nets with batch normalization after "
        "the ReLU (He-normal init) of each depth on MNIST (when present, else Fashion-MNIST), width = input size, "
        "inputs standardized per feature, plain SGD without momentum, batch 128, the authors' learning rate "
        "(1e-5 on the batch-summed cross-entropy, i.e. 1.28e-3 on the mean), and draw the training loss per "
        "epoch. The defaults are the paper's (all 60,000 rows, 2000 epochs: days on a CPU); --samples, --epochs "
        "and --time-budget reduce it. Writes OUT/figure1.json (every epoch's and step's loss, rewritten as it "
        "goes), figure1.csv, figure1.md and figure1.png. A run with the same setting and OUT reuses the finished "
        "curves; with --checkpoints it continues unfinished ones. --plot-only redraws from figure1.json. "
        "The PNG needs matplotlib (minisnn[plots]).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--data", default="auto",
                   help="auto (mnist when present, else fashion-mnist) | mnist | fashion-mnist | any --data of "
                   "`minisnn train` with a training split")
    p.add_argument("--data-root", type=Path, default=None,
                   help="folder holding the data sets (default: $MINISNN_DATA, else ~/.cache/minisnn)")
    p.add_argument("--samples", type=COUNT, default=None,
                   help="train on a seeded random subset of this many training rows (default: all)")
    p.add_argument("--epochs", type=COUNT, default=2000, help="epochs per network (the paper: 2000)")
    p.add_argument("--depths", default="8,16,32", help="comma-separated hidden-layer counts")
    p.add_argument("--methods", default=",".join(FIGURE1_METHODS), help="comma-separated subset of "
                   + ", ".join(FIGURE1_METHODS))
    p.add_argument("--width", type=COUNT, default=None, help="hidden width (default: the input size)")
    p.add_argument("--batch-size", type=COUNT, default=128, help="samples per SGD step")
    p.add_argument("--lr-sum", type=POSITIVE, default=1e-5,
                   help="learning rate on the batch-summed loss (the mean loss's is this times the batch size)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the subset, the weights and the batch order")
    p.add_argument("--backend", choices=BACKEND_NAMES + ("auto",), default="numpy")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--threads", type=COUNT, default=None, help="BLAS/Numba threads (default: leave them)")
    p.add_argument("--time-budget", type=POSITIVE, default=None, metavar="MINUTES",
                   help="stop after the first round of epochs that ends past this many minutes")
    p.add_argument("--checkpoints", type=Path, default=None, metavar="DIR",
                   help="save every network after each epoch here, and continue from it in a later run")
    p.add_argument("--out", type=Path, default=Path("figure1"), help="output folder")
    p.add_argument("--plot-only", action="store_true", help="only redraw the PNG and tables from OUT/figure1.json")
    p.set_defaults(func=run)


def run(args) -> int:
    figure_class()  # fail before training when matplotlib is missing
    results_path = args.out / "figure1.json"
    if args.plot_only:
        if not results_path.exists():
            raise ValueError(f"--plot-only needs {results_path}; run without --plot-only first")
        results = json.loads(results_path.read_text())
    else:
        setting = Figure1Setting(data="", samples=args.samples, depths=_depths(args.depths),
                                 methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
                                 width=args.width, batch_size=args.batch_size, lr_sum=args.lr_sum, seed=args.seed,
                                 backend=args.backend, dtype=args.dtype)
        data = _load(args.data, args.data_root)
        setting = Figure1Setting(**{**setting.__dict__, "data": data.name})
        if args.threads is not None:
            from ..threads import set_threads

            set_threads(args.threads)
        start = time.perf_counter()
        progress = (lambda line: print(line, file=sys.stderr, flush=True))
        results = run_figure1(data, setting, args.epochs, args.out, checkpoints=args.checkpoints,
                              time_budget_s=None if args.time_budget is None else args.time_budget * 60,
                              progress=progress)
        print(f"trained for {time.perf_counter() - start:.0f} s", file=sys.stderr)
    epochs = min(len(c["epoch_loss"]) for c in results["curves"].values())
    note = ""
    if results["data"]["rows"] < 60000 or epochs < 2000:
        note = (f"reduced: {results['data']['rows']} training rows, {epochs} epochs "
                f"(the paper: 60,000 rows, 2000 epochs)")
    plot_figure1(results, args.out / "figure1.png", note=note)
    write_csv(results, args.out / "figure1.csv")
    table = summary_table(results)
    write_atomically(args.out / "figure1.md", lambda h: h.write(((note + "\n\n" if note else "") + table + "\n").encode()))
    print(table)
    print(f"\nwrote {args.out / 'figure1.png'}, figure1.csv, figure1.md, figure1.json")
    return 0


def _depths(text: str) -> tuple[int, ...]:
    parse = integer(1)
    try:
        depths = tuple(parse(part.strip()) for part in text.split(",") if part.strip())
    except Exception as exc:
        raise ValueError(f"--depths takes comma-separated layer counts of at least 1, got {text!r}: {exc}") from None
    if not depths:
        raise ValueError("--depths is empty")
    return depths


def _load(name: str, root):
    if name != "auto":
        return load_dataset(name, root=root)
    try:
        return load_dataset("mnist", root=root, download=False)
    except DataNotFound:
        return load_dataset("fashion-mnist", root=root, download=False)

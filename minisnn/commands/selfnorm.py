"""`minisnn selfnorm`: per-layer statistics of deep networks (activations and the paper's methods) next to g's prediction."""

from __future__ import annotations

import sys
from pathlib import Path

from ..backends import BACKEND_NAMES, get_backend
from ..data import load_dataset
from ..files import check_writable
from ..methods import METHODS
from ..selfnorm import ACTIVATIONS, format_selfnorm, plot_selfnorm, run_selfnorm
from ..theory._optional import figure_class
from ._options import COUNT, POSITIVE, SEED, HelpFormatter, integer
from .train import add_data_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "selfnorm",
        help="show self-normalization: per-layer mean/variance of deep SELU vs ReLU/tanh/ELU nets or of the paper's "
        "methods side by side, optional plot",
        description="Push standardized data (the N(0, 1) inputs of the synthetic problem by default) through deep "
        "networks at initialization and after a short training run, and print every hidden layer's mean and "
        "variance next to what the moment map g predicts for SELU: plain MLPs of each activation (--activations), "
        "or the paper's methods (--methods snn,msra,batchnorm,...: what does BatchNorm do that SELU does by "
        "itself?). With --plot, draw the "
        "(mu, nu) trajectories over the field of g (the paper's Figure 2) and the per-layer statistics. "
        "Needs SciPy (minisnn[theory]); --plot needs matplotlib (minisnn[plots]).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--depth", type=COUNT, default=32, help="hidden layers of every network")
    p.add_argument("--width", type=COUNT, default=256, help="units per hidden layer")
    p.add_argument("--activations", default=None,
                   help="comma-separated subset of " + ", ".join(ACTIVATIONS) + " (plain MLPs; default: all four "
                   "unless --methods is given)")
    p.add_argument("--methods", default=None,
                   help="comma-separated subset of " + ", ".join(METHODS) + " (minisnn.methods networks, built "
                   "without dropout), or 'all'")
    add_data_arguments(p)  # "synthetic" (the default) means selfnorm's own 64-feature synthetic problem
    p.add_argument("--samples", type=integer(2), default=1024, help="probe inputs pushed through each network")
    p.add_argument("--epochs", type=integer(0), default=1, help="training epochs before the second measurement (0: skip)")
    p.add_argument("--lr", type=POSITIVE, default=0.01, help="SGD learning rate")
    p.add_argument("--batch-size", type=COUNT, default=128, help="samples per training batch")
    p.add_argument("--backend", choices=BACKEND_NAMES + ("auto",), default="numpy")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the weights and the data order")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="write the figure to this PNG file")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.plot is not None:
        if args.plot.suffix.lower() != ".png":
            raise ValueError(f"--plot writes a PNG file: give a name ending in .png, got {str(args.plot)!r}")
        check_writable(args.plot, "--plot")
        figure_class()  # fail before the measurements when matplotlib is missing
    data = None if args.data == "synthetic" else load_dataset(args.data, root=args.data_root,
                                                               label_column=args.label_column)
    methods = _names(args.methods, METHODS)
    activations = _names(args.activations, ACTIVATIONS) if args.activations is not None or not methods else ()
    backend = get_backend(args.backend, dtype=args.dtype)
    progress = _show_progress if sys.stderr.isatty() else None
    result = run_selfnorm(depth=args.depth, width=args.width, activations=activations, data=data,
                          n_probe=args.samples, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                          backend=backend, seed=args.seed, methods=methods, progress=progress)
    if progress is not None:
        print(" " * 60, end="\r", file=sys.stderr)
    print(format_selfnorm(result))
    if args.plot is not None:
        plot_selfnorm(result, args.plot)
        print(f"\nwrote {args.plot}")
    return 0


def _names(text: str | None, known: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of names ('all': every known one); unknown names are checked later."""
    if text is None:
        return known if known == ACTIVATIONS else ()
    if text.strip() == "all":
        return known
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _show_progress(message: str) -> None:
    print(f"selfnorm: {message:<48}", end="\r", file=sys.stderr, flush=True)

"""`minisnn data list`: which data sets are on disk and where; `minisnn data fetch NAME`: download one."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.download import REMOTE_DATASETS, ensure_dataset
from ..data.locations import ENV_VAR, data_root
from ..data.registry import dataset_statuses

ROOT_HELP = f"folder holding the data sets (default: ${ENV_VAR}, else ~/.cache/minisnn)"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="list or fetch data sets",
        description=f"Data sets are read from --data-root, else ${ENV_VAR}, else ~/.cache/minisnn.",
    )
    actions = parser.add_subparsers(dest="data_action", required=True)
    listing = actions.add_parser("list", help="show which data sets are present and where")
    listing.add_argument("--data-root", type=Path, default=None, help=ROOT_HELP)
    listing.set_defaults(func=run)
    fetch = actions.add_parser("fetch", help="download a data set and verify its checksums")
    fetch.add_argument("name", choices=sorted(REMOTE_DATASETS), help="the data set to download")
    fetch.add_argument("--data-root", type=Path, default=None, help=ROOT_HELP)
    fetch.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.data_action == "fetch":
        folder = ensure_dataset(args.name, args.data_root)
        print(f"{args.name}: ready in {folder}")
        return 0
    print(f"data root: {data_root(args.data_root)}")
    statuses = dataset_statuses(args.data_root)
    width = max(len(status.name) for status in statuses)
    for status in statuses:
        state = "present" if status.present else "missing"
        note = f"  ({status.note})" if status.note else ""
        print(f"{status.name:<{width}}  {state:<7}  {status.location}{note}")
    return 0

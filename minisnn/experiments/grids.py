"""Hyperparameter grids as data: JSON files in minisnn/experiments/grids/, or a user's own file.

The format:

    {"name": "...", "description": "...",
     "training": {"epochs": 10},                      (optional: training settings, spec.TRAINING_DEFAULTS)
     "methods": {"snn": [{"width": [256], "depth": [2, 8], "lr": [0.01, 0.1], ...}, ...], ...}}

Each method maps to a list of sub-grids; a sub-grid maps hyperparameter names (spec.PARAM_TYPES)
to lists of values, and stands for their Cartesian product; a method's configurations are the
union of its sub-grids, in order, with duplicates (equal after normalization: lr 1 is lr 1.0)
removed. `null` is a value too (highway's width null: the input width).

Built-in grids: "paper" (the paper's grid for the data set's family: paper-uci, paper-htru2 or
paper-tox21), "small" (4 configurations per method) and "tiny" (2, for smoke tests).
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .spec import canonical_json, normalize_params, normalize_training

GRID_DIR = Path(__file__).parent / "grids"
FAMILIES = ("uci", "htru2", "tox21")


@dataclass
class Grid:
    """A parsed grid: method -> configurations (normalized hyperparameter dicts), training settings."""

    name: str
    methods: dict[str, list[dict[str, Any]]]
    training: dict[str, Any]
    source: str

    def configurations(self, method: str) -> list[dict[str, Any]]:
        if method not in self.methods:
            raise ValueError(f"grid {self.name!r} ({self.source}) has no configurations for method {method!r}; "
                             f"it has {', '.join(self.methods)}")
        return self.methods[method]


def expand(subgrids: list[dict[str, list]], where: str) -> list[dict[str, Any]]:
    """The union of the sub-grids' products, normalized, first occurrence kept."""
    if not isinstance(subgrids, list) or not subgrids:
        raise ValueError(f"{where}: expected a non-empty list of sub-grids")
    seen: dict[str, dict[str, Any]] = {}
    for index, subgrid in enumerate(subgrids):
        if not isinstance(subgrid, dict) or not all(isinstance(v, list) and v for v in subgrid.values()):
            raise ValueError(f"{where}[{index}]: a sub-grid maps each hyperparameter to a non-empty list of values")
        names = sorted(subgrid)
        for values in itertools.product(*(subgrid[name] for name in names)):
            try:
                params = normalize_params(dict(zip(names, values)))
            except ValueError as exc:
                raise ValueError(f"{where}[{index}]: {exc}") from None
            seen.setdefault(canonical_json(params), params)
    return list(seen.values())


def parse_grid(data: dict[str, Any], source: str) -> Grid:
    if not isinstance(data, dict) or not isinstance(data.get("methods"), dict) or not data["methods"]:
        raise ValueError(f"{source}: a grid is a JSON object with a non-empty 'methods' object")
    unknown = sorted(set(data) - {"name", "description", "training", "methods"})
    if unknown:
        raise ValueError(f"{source}: unknown grid field(s) {', '.join(unknown)}")
    training = data.get("training", {})
    try:
        normalize_training(training)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    methods = {method: expand(subgrids, f"{source}: methods.{method}") for method, subgrids in data["methods"].items()}
    return Grid(str(data.get("name", Path(source).stem)), methods, dict(training), source)


def builtin_grids() -> list[str]:
    """Names of the grid files shipped with minisnn."""
    return sorted(path.stem for path in GRID_DIR.glob("*.json"))


def load_grid(name: str | os.PathLike, family: str | None = None) -> Grid:
    """A built-in grid by name ("paper" needs the data set's family), or a grid file by path."""
    text = str(name)
    if text == "paper":
        if family not in FAMILIES:
            raise ValueError(f"the paper's grids exist for the families {', '.join(FAMILIES)}, not {family!r}; "
                             f"pass a grid by name ({', '.join(builtin_grids())}) or a file")
        text = f"paper-{family}"
    path = GRID_DIR / f"{text}.json" if text in builtin_grids() else Path(text).expanduser()
    if not path.is_file():
        raise ValueError(f"no grid {text!r}: built-in grids are paper, {', '.join(builtin_grids())}; "
                         f"or give the path of a JSON grid file")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    return parse_grid(data, str(path))

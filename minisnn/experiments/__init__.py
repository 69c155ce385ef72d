"""The experiment harness: the SNN paper's comparison as code (docs/EXPERIMENTS.md).

A trial (spec.TrialSpec) is a pure function of plain inputs (trial.run_trial); grids are data
(grids.py, grids/*.json); plan.plan_trials lists an experiment's trials; store.Store keeps one
row per trial in SQLite; executors run trials locally or on Dask; runner.run_experiment ties them
together and resumes where a run stopped; selection, stats and report turn the records into the
paper's tables.
"""

from .executors import DaskExecutor, LocalExecutor
from .grids import Grid, load_grid
from .plan import ProtocolOptions, plan_trials
from .runner import run_experiment
from .selection import best_epoch, moving_average, select, select_groups
from .spec import TrialSpec
from .store import Store
from .trial import comparable, run_trial

__all__ = ["TrialSpec", "run_trial", "comparable", "Grid", "load_grid", "ProtocolOptions", "plan_trials", "Store",
           "LocalExecutor", "DaskExecutor", "run_experiment", "best_epoch", "moving_average", "select",
           "select_groups"]

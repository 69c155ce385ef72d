"""The driver: plan trials into a store, run the missing ones on an executor, store each record as it arrives.

A second run of the same experiment finds every finished key in the store and runs only the
rest (failed trials too with retry_failed). Records of two-file UCI data sets whose test file is
on another scale than the training file are stored as they are and reported: a warning here,
a column in the report.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, Iterable, TextIO

from .spec import TrialSpec
from .store import Store


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class ProgressLine:
    """Trials done, failures and ETA: one rewritten line on a terminal, a line per 5% otherwise."""

    def __init__(self, stream: TextIO | None, total: int, workers: int):
        self.stream, self.total, self.workers = stream, total, max(1, workers)
        self.interactive = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
        self.done = self.failed = 0
        self.started = time.perf_counter()
        self.every = max(1, total // 20)

    def update(self, record: dict[str, Any]) -> None:
        self.done += 1
        self.failed += record.get("status") == "failed"
        if self.stream is None:
            return
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        spec = record.get("spec", {})
        line = (f"trials {self.done}/{self.total}  failed {self.failed}  elapsed {format_seconds(elapsed)}  "
                f"ETA {format_seconds(eta)}  last: {spec.get('dataset')} {spec.get('method')} {record.get('status')}")
        if self.interactive:
            self.stream.write("\r" + line[:119].ljust(119))
            if self.done == self.total:
                self.stream.write("\n")
        elif self.done % self.every == 0 or self.done == self.total:
            self.stream.write(line + "\n")
        self.stream.flush()


@dataclass
class RunSummary:
    planned: int
    new: int
    ran: int
    failed: int
    scale_mismatches: list[str]
    seconds: float


def run_experiment(store: Store, specs: Iterable[TrialSpec], executor, data_root: str | None = None,
                   retry_failed: bool = False, progress: TextIO | None = sys.stderr,
                   limit: int | None = None) -> RunSummary:
    """Plan `specs` into `store` and run those without a result (module doc); `limit` runs at most
    that many (the rest stay pending)."""
    started = time.perf_counter()
    specs = list(specs)
    new = store.add_trials(specs)
    todo = store.pending({spec.key for spec in specs}, retry_failed=retry_failed)
    if limit is not None:
        todo = todo[:limit]
    display = ProgressLine(progress, len(todo), getattr(executor, "workers", 1))
    mismatched: dict[str, None] = {}
    failed = 0
    for record in executor.run(todo, data_root):
        store.put(record)
        failed += record["status"] == "failed"
        scale = (record.get("data") or {}).get("scale_check") or {}
        dataset = record["spec"]["dataset"]
        if scale.get("mismatch") and dataset not in mismatched:
            mismatched[dataset] = None
            if progress is not None:
                progress.write(f"\nwarning: {dataset}: the test file is on another scale than the training file "
                               f"(feature {scale['feature']}: mean shifted by {scale['max_mean_shift_sd']:.2f} "
                               f"training standard deviations; std ratios {scale['std_ratio_min']:.2f}.."
                               f"{scale['std_ratio_max']:.2f}); its test results are marked in the report\n")
        display.update(record)
    return RunSummary(len(specs), new, display.done, failed, list(mismatched), time.perf_counter() - started)

"""The results store: one SQLite file (standard library, no server) in WAL mode.

Tables: `trials` (every trial ever planned into this store: key, canonical spec, data set,
method, when added) and `results` (one row per finished trial: status "ok", "diverged" or
"failed", the record as canonical JSON without its wall time, the error of a failed trial,
the chosen epoch, the smoothed validation value, the test value of the selection metric, the
wall time and when it finished). Only the driver writes, one committed row per result as it
arrives, so an interrupted run loses at most the trials in flight; WAL lets `status` and
`report` read while a run writes. Planning the same trial again is a no-op, so methods and data
sets can be added to a store at any time.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable

from ..files import write_atomically
from .spec import TrialSpec, canonical_json

SCHEMA_VERSION = "1"
STATUSES = ("ok", "diverged", "failed")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    key TEXT PRIMARY KEY, spec TEXT NOT NULL, dataset TEXT NOT NULL, method TEXT NOT NULL,
    protocol TEXT NOT NULL, repetition INTEGER NOT NULL, added_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY REFERENCES trials(key), status TEXT NOT NULL, record TEXT NOT NULL, error TEXT,
    best_epoch INTEGER, val_best REAL, test_value REAL, wall_s REAL, finished_at TEXT NOT NULL);
"""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def held_out_value(record: dict[str, Any]) -> float | None:
    """The test value of the metric the trial was selected by (e.g. accuracy for UCI)."""
    test, monitor = record.get("test"), record.get("monitor", "")
    return None if not test else test.get(monitor[len("val_"):])


class Store:
    """A results store at `path` (created if absent). Use as a context manager or call close()."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            found = self.db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise ValueError(f"{self.path} is not a minisnn results store ({exc})") from None
        if found is None:
            with self.db:
                self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif found[0] != SCHEMA_VERSION:
            self.db.close()
            raise ValueError(f"{self.path} has store schema {found[0]}, this minisnn reads {SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- planning -----------------------------------------------------------------------
    def add_trials(self, specs: Iterable[TrialSpec]) -> int:
        """Plan trials into the store; returns how many were new."""
        rows = [(s.key, canonical_json(s.to_dict()), s.dataset, s.method, canonical_json(s.protocol), s.repetition,
                 _now()) for s in specs]
        with self.db:
            before = self.db.total_changes
            self.db.executemany("INSERT OR IGNORE INTO trials VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            return self.db.total_changes - before

    def pending(self, keys: Iterable[str] | None = None, retry_failed: bool = False) -> list[TrialSpec]:
        """Planned trials without a result (and failed ones if retry_failed), in planning order;
        only those in `keys` when given."""
        query = ("SELECT t.key, t.spec FROM trials t LEFT JOIN results r ON r.key = t.key "
                 "WHERE r.key IS NULL" + (" OR r.status = 'failed'" if retry_failed else "") + " ORDER BY t.rowid")
        wanted = None if keys is None else set(keys)
        return [TrialSpec.from_dict(json.loads(spec)) for key, spec in self.db.execute(query)
                if wanted is None or key in wanted]

    # ---- results ------------------------------------------------------------------------
    def put(self, record: dict[str, Any]) -> None:
        """Store one trial's record (replacing an earlier result of the same key), committed at once."""
        if record.get("status") not in STATUSES or not record.get("key"):
            raise ValueError(f"a record needs a key and a status in {STATUSES}, got {record.get('status')!r}")
        body = {name: value for name, value in record.items() if name != "wall_s"}
        row = (record["key"], record["status"], canonical_json(body), record.get("error"), record.get("best_epoch"),
               record.get("val_best"), held_out_value(record), record.get("wall_s"), _now())
        with self.db:
            if self.db.execute("SELECT 1 FROM trials WHERE key = ?", (record["key"],)).fetchone() is None:
                spec = TrialSpec.from_dict(record["spec"])
                self.db.execute("INSERT INTO trials VALUES (?, ?, ?, ?, ?, ?, ?)",
                                (spec.key, canonical_json(spec.to_dict()), spec.dataset, spec.method,
                                 canonical_json(spec.protocol), spec.repetition, _now()))
            self.db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def records(self, statuses: Iterable[str] = ("ok",)) -> list[dict[str, Any]]:
        """The stored records with these statuses (wall_s put back), in planning order."""
        statuses = tuple(statuses)
        marks = ", ".join("?" * len(statuses))
        query = (f"SELECT r.record, r.wall_s FROM results r JOIN trials t ON t.key = r.key "
                 f"WHERE r.status IN ({marks}) ORDER BY t.rowid")
        return [{**json.loads(record), "wall_s": wall_s} for record, wall_s in self.db.execute(query, statuses)]

    def result_rows(self) -> list[tuple]:
        """Every results row as stored (key, status, record, error, best_epoch, val_best, test_value,
        wall_s, finished_at), by key."""
        return self.db.execute("SELECT * FROM results ORDER BY key").fetchall()

    def counts(self, keys: Iterable[str] | None = None) -> dict[str, Any]:
        """Trials planned, done ("ok" + "diverged"), failed and pending, and the mean wall time of finished ones."""
        rows = self.db.execute("SELECT t.key, r.status, r.wall_s FROM trials t LEFT JOIN results r ON r.key = t.key")
        wanted = None if keys is None else set(keys)
        out = {"planned": 0, "ok": 0, "diverged": 0, "failed": 0, "pending": 0}
        total_time, timed = 0.0, 0
        for key, status, wall_s in rows:
            if wanted is not None and key not in wanted:
                continue
            out["planned"] += 1
            out[status or "pending"] += 1
            if wall_s is not None and status != "failed":
                total_time, timed = total_time + wall_s, timed + 1
        out["done"] = out["ok"] + out["diverged"]
        out["mean_wall_s"] = total_time / timed if timed else None
        return out

    def counts_by(self, column: str) -> list[tuple[str, dict[str, int]]]:
        """(data set or method, {"done", "failed", "pending"}) for each value of `column`, sorted."""
        if column not in ("dataset", "method"):
            raise ValueError(f"counts can be grouped by dataset or method, not {column!r}")
        rows = self.db.execute(f"SELECT t.{column}, r.status, count(*) FROM trials t LEFT JOIN results r "
                               f"ON r.key = t.key GROUP BY t.{column}, r.status ORDER BY t.{column}")
        out: dict[str, dict[str, int]] = {}
        for value, status, count in rows:
            group = out.setdefault(value, {"done": 0, "failed": 0, "pending": 0})
            group["pending" if status is None else "failed" if status == "failed" else "done"] += count
        return list(out.items())

    def errors(self, limit: int = 20) -> list[tuple[str, str, str]]:
        """(key, data set and method, error) of failed trials."""
        query = ("SELECT r.key, t.dataset || ' ' || t.method, r.error FROM results r JOIN trials t ON t.key = r.key "
                 "WHERE r.status = 'failed' ORDER BY t.rowid LIMIT ?")
        return self.db.execute(query, (limit,)).fetchall()

    def export_csv(self, path: str | os.PathLike) -> Path:
        """One CSV row per planned trial: spec fields, hyperparameters, status, chosen epoch, validation
        and test values, wall time and error (written atomically)."""
        rows = self.db.execute("SELECT t.key, t.spec, r.status, r.best_epoch, r.val_best, r.test_value, r.wall_s, "
                               "r.error, r.record FROM trials t LEFT JOIN results r ON r.key = t.key ORDER BY t.rowid")
        table = []
        for key, spec, status, best_epoch, val_best, value, wall_s, error, record in rows:
            spec = json.loads(spec)
            notes = json.loads(record).get("data", {}) if record else {}
            scale = notes.get("scale_check") or {}
            table.append({"key": key, "dataset": spec["dataset"], "method": spec["method"],
                          "protocol": canonical_json(spec["protocol"]), "repetition": spec["repetition"],
                          **{f"param_{name}": value_ for name, value_ in sorted(spec["params"].items())},
                          "status": status or "pending", "best_epoch": best_epoch, "val_best": val_best,
                          "test_value": value, "scale_mismatch": scale.get("mismatch"), "wall_s": wall_s,
                          "error": error})
        columns = list(dict.fromkeys(name for row in table for name in row))

        def write(handle) -> None:
            writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(table)

        return write_atomically(path, write, binary=False)

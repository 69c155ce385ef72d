"""Model selection over trials: the best (configuration, epoch) on the smoothed validation curve.

Within a trial, the validation curve is smoothed by a trailing moving average of `window`
epochs (the value of epoch e is the mean of epochs max(1, e - window + 1) .. e, as
minisnn.callbacks.KeepBest computes it) and the best epoch is the earliest one where the smoothed
curve is best. Across the configurations of one selection group (the same data set, method,
protocol with its fold, and repetition), the trial with the best smoothed value wins; smoothed
values equal to TIE_DIGITS decimal places are ties, broken in this order: more layers (depth),
then lower learning rate, then higher dropout (a missing dropout counts as 0), and last the
smaller trial key, so the choice never depends on the order trials finished in.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Iterable

import numpy as np

TIE_DIGITS = 12


def moving_average(curve: Iterable[float], window: int) -> np.ndarray:
    """Trailing moving average (E,) of a curve (E,) over `window` epochs (fewer at the start)."""
    values = np.asarray(list(curve), dtype=np.float64)  # (E,)
    if window < 1:
        raise ValueError(f"the smoothing window must be at least 1 epoch, got {window}")
    return np.array([float(np.mean(values[max(0, e - window + 1):e + 1])) for e in range(values.size)])


def best_epoch(curve: Iterable[float], mode: str, window: int) -> tuple[int, float]:
    """(epoch, smoothed value): the earliest 1-based epoch where the smoothed curve is best
    (mode "max": highest, "min": lowest)."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    smoothed = moving_average(curve, window)
    if smoothed.size == 0:
        raise ValueError("an empty validation curve has no best epoch")
    if np.isnan(smoothed).any():
        raise ValueError(f"the validation curve holds NaN at epoch {int(np.flatnonzero(np.isnan(smoothed))[0]) + 1}")
    index = int(np.argmax(smoothed) if mode == "max" else np.argmin(smoothed))  # the first best
    return index + 1, float(smoothed[index])


def trial_choice(record: dict[str, Any]) -> tuple[int, float] | None:
    """(epoch, smoothed value) of a trial record, from its curve; None when it has none."""
    curve = record.get("curves", {}).get(record.get("monitor", ""), [])
    if record.get("status") != "ok" or not curve:
        return None
    return best_epoch(curve, record["mode"], record["window"])


def preference(record: dict[str, Any]) -> tuple:
    """Sort key, smallest first: better smoothed value, then more layers, lower lr, higher dropout, key."""
    epoch, value = trial_choice(record)
    params = record["spec"]["params"]
    signed = -value if record["mode"] == "max" else value
    return (round(signed, TIE_DIGITS), -(params.get("depth") or 0), params["lr"], -(params.get("dropout") or 0.0),
            record["key"])


def group_of(record: dict[str, Any]) -> str:
    """The selection group: data set, method, protocol (with its fold) and repetition, as JSON."""
    spec = record["spec"]
    return json.dumps([spec["dataset"], spec["method"], spec["protocol"], spec.get("repetition", 0)], sort_keys=True)


def select(records: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The winning record among trials of one group (module doc), or None if none can be selected."""
    candidates = [r for r in records if trial_choice(r) is not None]
    return min(candidates, key=preference) if candidates else None


def select_groups(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """group_of(...) -> the winning record of each group that has one."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[group_of(record)].append(record)
    chosen = {group: select(members) for group, members in groups.items()}
    return {group: record for group, record in chosen.items() if record is not None}

"""Reports from stored records: selected configurations, test values, ranks, tests, the paper's numbers.

For every selection group (selection.group_of: data set, method, protocol with its fold,
repetition) the winning trial is chosen (selection.select); a data set's result for a method is
the mean (and standard deviation) of the winners' test values over its groups (the 10 folds of
HTRU2, repetitions). Methods are ranked on the data sets every reported method has a result for;
the Friedman test and Wilcoxon tests against the best method follow (stats); a data set with
several groups per method (folds, repetitions) also gets a paired Wilcoxon test over its groups
against its best method (paired.csv); with the paper's values for every compared data set and
method, the same ranks and Friedman test of the paper's numbers on those data sets. Written to a
folder: report.md, selected.csv, ranks.csv and, with matplotlib, ranks.png, curves.png (the
smoothed validation curves of the selected trials) and paper.png (minisnn against the paper per
data set).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..files import write_atomically
from . import stats
from .selection import moving_average, select_groups, trial_choice

PLOTS_HINT = 'figures need matplotlib: pip install "minisnn[plots]"'
MAX_CURVE_PANELS = 12


@dataclass
class Result:
    """One data set and method: the test values of the selected trials (one per selection group)."""

    dataset: str
    method: str
    metric: str
    values: list[float] = field(default_factory=list)
    selected: list[dict[str, Any]] = field(default_factory=list)  # the winning records
    scale_mismatch: bool = False

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.values)) if len(self.values) > 1 else 0.0

    @property
    def configuration(self) -> str:
        """The selected hyperparameters, or each group's when they differ."""
        configs = list(dict.fromkeys(json.dumps(r["spec"]["params"], sort_keys=True) for r in self.selected))
        return configs[0] if len(configs) == 1 else " | ".join(configs)


def collect(records: list[dict[str, Any]]) -> dict[tuple[str, str], Result]:
    """(data set, method) -> Result, from the stored records (status "ok")."""
    results: dict[tuple[str, str], Result] = {}
    for record in select_groups(records).values():
        spec = record["spec"]
        metric = record["monitor"][len("val_"):]
        result = results.setdefault((spec["dataset"], spec["method"]), Result(spec["dataset"], spec["method"], metric))
        value = (record.get("test") or {}).get(metric)
        result.values.append(float("nan") if value is None else float(value))
        result.selected.append(record)
        result.scale_mismatch |= bool(((record.get("data") or {}).get("scale_check") or {}).get("mismatch"))
    return dict(sorted(results.items()))


@dataclass
class Comparison:
    """The rank analysis over the data sets complete for every method."""

    methods: list[str]
    datasets: list[str]
    scores: np.ndarray  # (D, M)
    average_ranks: np.ndarray  # (M,)
    friedman: stats.Friedman | None
    best: str | None
    wilcoxon: dict[str, float | None] | None
    note: str = ""


def compare(results: dict[tuple[str, str], Result]) -> Comparison:
    methods = sorted({method for _, method in results})
    by_dataset: dict[str, dict[str, float]] = defaultdict(dict)
    for (dataset, method), result in results.items():
        if math.isfinite(result.mean):
            by_dataset[dataset][method] = result.mean
    datasets = sorted(d for d, values in by_dataset.items() if len(values) == len(methods))
    scores = np.array([[by_dataset[d][m] for m in methods] for d in datasets]).reshape(len(datasets), len(methods))
    if not datasets:
        return Comparison(methods, [], scores, np.full(len(methods), np.nan), None, None, None,
                          "no data set has a result for every method")
    average = stats.ranks(scores).mean(axis=0)
    friedman = best = wilcoxon = None
    note = ""
    if len(datasets) >= 2 and len(methods) >= 2:
        friedman = stats.friedman(scores)
        try:
            best, wilcoxon = stats.wilcoxon_vs_best(scores, methods)
        except ImportError as exc:
            note = str(exc)
    else:
        note = "the tests need at least 2 data sets and 2 methods"
    return Comparison(methods, datasets, scores, average, friedman, best, wilcoxon, note)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def selected_rows(results, paper: dict[tuple[str, str], float]) -> tuple[list[str], list[list[Any]]]:
    header = ["dataset", "method", "metric", "test_mean", "test_std", "groups", "paper", "minus_paper",
              "scale_mismatch", "configuration"]
    rows = []
    for (dataset, method), result in results.items():
        theirs = paper.get((dataset, method))
        rows.append([dataset, method, result.metric, _fmt(result.mean), _fmt(result.std), len(result.values),
                     _fmt(theirs), _fmt(None if theirs is None else result.mean - theirs),
                     "yes" if result.scale_mismatch else "", result.configuration])
    return header, rows


def markdown(results, comparison: Comparison, paper) -> str:
    header, rows = selected_rows(results, paper)
    lines = ["# Experiment report", "", "## Selected configurations and test values", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "/") for cell in row) + " |" for row in rows]
    mismatched = sorted({r.dataset for r in results.values() if r.scale_mismatch})
    if mismatched:
        lines += ["", f"Test file on another scale than the training file: {', '.join(mismatched)}."]
    lines += ["", "## Ranks", "", f"Over {len(comparison.datasets)} data sets with a result for every method "
              f"({', '.join(comparison.methods)}); rank 1 is best.", ""]
    theirs = paper_comparison(comparison, paper)
    if comparison.datasets:
        expected = (len(comparison.methods) + 1) / 2
        extra = " paper's average rank, same data sets | paper minus expected |" if theirs else ""
        lines += ["| method | average rank | minus expected | Wilcoxon p vs best |" + extra,
                  "|---|---|---|---|" + ("---|---|" if theirs else "")]
        for j in np.argsort(comparison.average_ranks, kind="stable"):
            method, rank = comparison.methods[j], comparison.average_ranks[j]
            p = "best" if method == comparison.best else _fmt((comparison.wilcoxon or {}).get(method), 3)
            paper_cells = (f" {theirs.average_ranks[j]:.4f} | {theirs.average_ranks[j] - expected:+.4f} |"
                           if theirs else "")
            lines.append(f"| {method} | {rank:.4f} | {rank - expected:+.4f} | {p} |" + paper_cells)
    if comparison.friedman is not None:
        f = comparison.friedman
        lines += ["", f"Friedman chi-square {f.statistic:.3f} with {f.df} degrees of freedom, p = {f.p_value:.3g}."]
    if theirs is not None and theirs.friedman is not None:
        f = theirs.friedman
        lines += ["", f"The paper's accuracies on the same {len(theirs.datasets)} data sets: Friedman chi-square "
                  f"{f.statistic:.3f}, p = {f.p_value:.3g}; best by average rank: {theirs.best}."]
    header, rows = side_by_side_rows(results, paper)
    if rows:
        lines += ["", "## Side by side with the paper", "",
                  "Each method's test value (mean over folds and repetitions), then the paper's.", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    if comparison.note:
        lines += ["", comparison.note + "."]
    header, rows = paired_rows(results)
    if rows:
        lines += ["", "## Per data set, paired over folds and repetitions", "",
                  "Mean and standard deviation of the test values over the selection groups (folds, "
                  "repetitions); p: the paired Wilcoxon signed-rank test of each method's values against "
                  "those of the best method of the data set, paired by fold and repetition.", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def paper_comparison(comparison: Comparison, paper: dict[tuple[str, str], float]) -> Comparison | None:
    """The same rank analysis on the paper's values for the data sets and methods of `comparison`
    (None unless the paper has a value for every one of them)."""
    keys = [(d, m) for d in comparison.datasets for m in comparison.methods]
    if not keys or any(key not in paper for key in keys):
        return None
    results = {key: Result(key[0], key[1], "paper", [paper[key]]) for key in keys}
    return compare(results)


def side_by_side_rows(results, paper: dict[tuple[str, str], float]) -> tuple[list[str], list[list[Any]]]:
    """Per data set with a paper value: every method's test value and the paper's, side by side."""
    methods = sorted({method for _, method in results})
    datasets = sorted({d for d, _ in results if any((d, m) in paper for m in methods)})
    header = ["dataset"] + [f"{m} {who}" for m in methods for who in ("minisnn", "paper")]
    rows = []
    for dataset in datasets:
        row = [dataset]
        for method in methods:
            result = results.get((dataset, method))
            row += [_fmt(None if result is None else result.mean), _fmt(paper.get((dataset, method)))]
        rows.append(row)
    return header, rows


def _values_by_group(result: Result) -> dict[str, float]:
    """The test value of each selection group of a result, keyed by its protocol and repetition."""
    return {json.dumps([r["spec"]["protocol"], r["spec"].get("repetition", 0)], sort_keys=True): value
            for r, value in zip(result.selected, result.values)}


def paired_rows(results) -> tuple[list[str], list[list[Any]]]:
    """Per data set with at least 2 selection groups for every method (HTRU2's 10 folds, Tox21's
    repetitions): each method's mean and standard deviation, and the p-value of the paired Wilcoxon
    test against the method with the best mean ('best'; empty where SciPy is missing or all pairs
    are equal), methods in order of their means."""
    header = ["dataset", "method", "metric", "mean", "std", "groups", "wilcoxon_p_vs_best"]
    by_dataset: dict[str, dict[str, Result]] = defaultdict(dict)
    for (dataset, method), result in results.items():
        by_dataset[dataset][method] = result
    rows = []
    for dataset, methods in by_dataset.items():
        if len(methods) < 2 or any(len(r.values) < 2 for r in methods.values()):
            continue
        order = sorted(methods, key=lambda m: -methods[m].mean if math.isfinite(methods[m].mean) else math.inf)
        best = _values_by_group(methods[order[0]])
        for method in order:
            result = methods[method]
            p = "best" if method == order[0] else _paired_p(best, _values_by_group(result))
            rows.append([dataset, method, result.metric, _fmt(result.mean), _fmt(result.std), len(result.values), p])
    return header, rows


def _paired_p(best: dict[str, float], other: dict[str, float]) -> str:
    shared = sorted(set(best) & set(other))
    pairs = np.array([[best[key], other[key]] for key in shared]).reshape(-1, 2)  # (groups, 2)
    if len(pairs) < 2 or not np.isfinite(pairs).all() or np.all(pairs[:, 0] == pairs[:, 1]):
        return ""
    try:
        from scipy.stats import wilcoxon
    except ImportError:
        return ""
    return _fmt(float(wilcoxon(pairs[:, 0], pairs[:, 1]).pvalue), 4)


def _figures(folder: Path, results, comparison: Comparison, paper) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(PLOTS_HINT) from None
    written = []

    def save(fig, name: str) -> None:
        path = folder / name
        write_atomically(path, lambda handle: fig.savefig(handle, format="png", dpi=100))
        plt.close(fig)
        written.append(path)

    if comparison.datasets:
        order = np.argsort(comparison.average_ranks)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.barh([comparison.methods[i] for i in order][::-1], comparison.average_ranks[order][::-1])
        ax.set_xlabel(f"average rank over {len(comparison.datasets)} data sets (1 = best)")
        save(fig, "ranks.png")
    datasets = sorted({dataset for dataset, _ in results})[:MAX_CURVE_PANELS]
    if datasets:
        columns = min(3, len(datasets))
        rows = math.ceil(len(datasets) / columns)
        fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
        for ax, dataset in zip(axes.flat, datasets):
            for (name, method), result in results.items():
                record = result.selected[0] if name == dataset else None
                if record is not None and trial_choice(record) is not None:
                    curve = moving_average(record["curves"][record["monitor"]], record["window"])
                    ax.plot(np.arange(1, curve.size + 1), curve, label=method)
            ax.set_title(dataset, fontsize=9)
            ax.set_xlabel("epoch")
            ax.set_ylabel("validation (moving average)", fontsize=8)
            ax.legend(fontsize=7)
        for ax in list(axes.flat)[len(datasets):]:
            ax.set_visible(False)
        fig.tight_layout()
        save(fig, "curves.png")
    pairs = [(paper[key], result.mean, key[1]) for key, result in results.items() if key in paper]
    if pairs:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        for method in sorted({m for _, _, m in pairs}):
            ax.scatter([p for p, _, m in pairs if m == method], [o for _, o, m in pairs if m == method],
                       s=12, label=method)
        low = min(min(p, o) for p, o, _ in pairs)
        ax.plot([low, 1], [low, 1], color="grey", linewidth=0.8)
        ax.set_xlabel("paper")
        ax.set_ylabel("minisnn")
        ax.legend(fontsize=7)
        save(fig, "paper.png")
    return written


def write_report(records: list[dict[str, Any]], folder: str | os.PathLike, paper: dict[tuple[str, str], float],
                 figures: bool = True) -> list[Path]:
    """Write report.md, selected.csv, ranks.csv and (figures and matplotlib) the PNG figures into
    `folder`; returns the paths written."""
    folder = Path(folder)
    results = collect(records)
    comparison = compare(results)
    written = [write_atomically(folder / "report.md", lambda h: h.write(markdown(results, comparison, paper)),
                                binary=False)]
    text = _csv_text(*selected_rows(results, paper))
    written.append(write_atomically(folder / "selected.csv", lambda h: h.write(text), binary=False))
    expected = (len(comparison.methods) + 1) / 2
    theirs = paper_comparison(comparison, paper)
    rank_rows = [[m, _fmt(r), _fmt(r - expected),
                  "best" if m == comparison.best else _fmt((comparison.wilcoxon or {}).get(m), 6),
                  _fmt(None if theirs is None else theirs.average_ranks[j]),
                  _fmt(None if theirs is None else theirs.average_ranks[j] - expected)]
                 for j, (m, r) in enumerate(zip(comparison.methods, comparison.average_ranks))]
    ranks_text = _csv_text(["method", "average_rank", "minus_expected", "wilcoxon_p_vs_best",
                            "paper_average_rank", "paper_minus_expected"], rank_rows)
    written.append(write_atomically(folder / "ranks.csv", lambda h: h.write(ranks_text), binary=False))
    paired = paired_rows(results)
    if paired[1]:
        paired_text = _csv_text(*paired)
        written.append(write_atomically(folder / "paired.csv", lambda h: h.write(paired_text), binary=False))
    if figures:
        written += _figures(folder, results, comparison, paper)
    return written

"""Comparing methods over data sets: ranks, the Friedman test, paired Wilcoxon tests.

scores (D, M): one value per data set (rows) and method (columns), higher is better. Ranks are
per data set, 1 for the best, tied values sharing the mean of their ranks
(minisnn.metrics.average_ranks). The Friedman statistic with the tie correction (as the usual
references and SciPy's friedmanchisquare compute it):

    chi2 = 12 / (D M (M + 1)) * sum_j R_j^2 - 3 D (M + 1),  R_j the rank sum of method j,
    divided by 1 - sum over data sets and tie groups of (t^3 - t) / (D (M^3 - M)),

compared with a chi-square distribution of M - 1 degrees of freedom (chi2_sf, exact for integer
degrees of freedom, no SciPy needed). The paired Wilcoxon signed-rank tests compare each method's
per-data-set ranks with those of the best method (lowest average rank), as the SNN paper's
analysis of its UCI table does; they need SciPy (`pip install "minisnn[theory]"`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..metrics import average_ranks

SCIPY_HINT = 'the Wilcoxon tests need SciPy: pip install "minisnn[theory]"'


def ranks(scores: np.ndarray) -> np.ndarray:
    """Per-row ranks (D, M) of scores (D, M), 1 for the highest, ties averaged."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or np.isnan(scores).any():
        raise ValueError(f"scores must be a (data sets, methods) array without NaN, got shape {scores.shape}")
    return np.array([average_ranks(-row) for row in scores]).reshape(scores.shape)


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X chi-square with integer df >= 1 (closed forms of the upper incomplete gamma)."""
    if df < 1 or df != int(df):
        raise ValueError(f"degrees of freedom must be an integer >= 1, got {df}")
    if x <= 0:
        return 1.0
    half = x / 2.0
    if df % 2 == 0:
        return math.exp(-half) * sum(half ** i / math.factorial(i) for i in range(df // 2))
    tail = sum(math.exp((i - 0.5) * math.log(half) - half - math.lgamma(i + 0.5)) for i in range(1, (df + 1) // 2))
    return math.erfc(math.sqrt(half)) + tail


@dataclass
class Friedman:
    statistic: float
    df: int
    p_value: float


def friedman(scores: np.ndarray) -> Friedman:
    """The Friedman test of scores (D, M) with the tie correction (module doc)."""
    r = ranks(scores)
    n, k = r.shape
    if n < 2 or k < 2:
        raise ValueError(f"the Friedman test needs at least 2 data sets and 2 methods, got {n} and {k}")
    statistic = 12.0 / (n * k * (k + 1)) * float((r.sum(axis=0) ** 2).sum()) - 3.0 * n * (k + 1)
    ties = 0.0
    for row in r:
        _, counts = np.unique(row, return_counts=True)
        ties += float((counts ** 3 - counts).sum())
    correction = 1.0 - ties / (n * (k ** 3 - k))
    statistic = statistic / correction if correction > 0 else float("nan")
    return Friedman(statistic, k - 1, chi2_sf(statistic, k - 1) if math.isfinite(statistic) else float("nan"))


def wilcoxon_vs_best(scores: np.ndarray, names: list[str]) -> tuple[str, dict[str, float | None]]:
    """(the best method by average rank, {other method: p-value of the paired Wilcoxon test of the
    per-data-set ranks}); p is None where every pair is equal."""
    try:
        from scipy.stats import wilcoxon
    except ImportError:
        raise ImportError(SCIPY_HINT) from None
    r = ranks(scores)
    best = int(np.argmin(r.mean(axis=0)))
    out: dict[str, float | None] = {}
    for j, name in enumerate(names):
        if j == best:
            continue
        differ = r[:, j] != r[:, best]
        out[name] = float(wilcoxon(r[:, best], r[:, j]).pvalue) if differ.any() else None
    return names[best], out

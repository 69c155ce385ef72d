"""Lazy imports of the optional extras (SciPy, matplotlib) with an error that says what to install."""

from __future__ import annotations

from types import ModuleType


def scipy_special() -> ModuleType:
    """scipy.special, or ImportError naming the extra that provides it."""
    try:
        import scipy.special
    except ImportError as exc:
        raise ImportError(
            "minisnn.theory needs SciPy for erfc/erfcx: install minisnn[theory] (pip install 'minisnn[theory]')"
        ) from exc
    return scipy.special


def scipy_optimize() -> ModuleType:
    """scipy.optimize, or ImportError naming the extra that provides it."""
    try:
        import scipy.optimize
    except ImportError as exc:
        raise ImportError(
            "minisnn.theory needs SciPy for root finding: install minisnn[theory] (pip install 'minisnn[theory]')"
        ) from exc
    return scipy.optimize


def figure_class() -> type:
    """matplotlib's Figure, drawn with the headless Agg canvas (pyplot and its global state are not used)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "plotting needs matplotlib: install minisnn[plots] (pip install 'minisnn[plots]')"
        ) from exc
    return Figure

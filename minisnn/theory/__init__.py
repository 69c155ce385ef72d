"""The mathematics of self-normalizing networks, executable: moment map, Jacobian, fixed points, parameters.

Needs SciPy (install minisnn[theory]); it is imported on first use, so `import minisnn.theory` works
without it and the first computation names the missing extra.
"""

from .fixed_points import FixedPoint, fixed_point, iterate
from .jacobian import eigenvalues, jacobian, spectral_norm
from .moments import SeluMoments, gaussian_terms, moment_map, selu_moments
from .params import SeluParams, selu_params, selu_params_zero_mean
from .theorems import (
    Domain,
    Extreme,
    TheoremCheck,
    contraction,
    format_checks,
    theorem1,
    theorem2,
    theorem3,
    verify_theorems,
)

__all__ = [
    "Domain",
    "Extreme",
    "FixedPoint",
    "SeluMoments",
    "SeluParams",
    "TheoremCheck",
    "contraction",
    "eigenvalues",
    "fixed_point",
    "format_checks",
    "gaussian_terms",
    "iterate",
    "jacobian",
    "moment_map",
    "selu_moments",
    "selu_params",
    "selu_params_zero_mean",
    "spectral_norm",
    "theorem1",
    "theorem2",
    "theorem3",
    "verify_theorems",
]

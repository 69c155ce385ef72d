"""minisnn: a framework-free engine for Self-Normalizing Neural Networks."""

from .backends import get_backend
from .constants import ALPHA_01, LAMBDA_01, alpha_dropout_params

__version__ = "0.1.0"

__all__ = ["get_backend", "ALPHA_01", "LAMBDA_01", "alpha_dropout_params", "__version__"]

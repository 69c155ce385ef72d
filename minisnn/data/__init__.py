"""Data: in-memory labelled data, the built-in synthetic problem, readers and loaders."""

from .labeled import LabeledData
from .synthetic import make_synthetic

__all__ = ["LabeledData", "make_synthetic"]

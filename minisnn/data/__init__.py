"""Data: in-memory labelled data, the built-in synthetic problem, readers and loaders."""

from .download import ensure_dataset
from .errors import DataError, DataNotFound
from .htru2 import read_htru2
from .idx import read_idx, read_idx_dataset
from .labeled import LabeledData
from .loaders import ArrayDataset, BatchIterator
from .locations import data_root
from .preprocessing import (
    Standardizer,
    kfold_indices,
    one_hot,
    standardize,
    stratified_kfold_indices,
    stratified_split,
)
from .registry import dataset_statuses, load_dataset
from .synthetic import make_synthetic
from .tabular import read_csv_dataset, read_npz_dataset
from .tox21 import read_tox21, read_tox21_tables
from .uci import list_uci_datasets, read_paper_results, read_uci

__all__ = [
    "LabeledData",
    "make_synthetic",
    "load_dataset",
    "dataset_statuses",
    "data_root",
    "ensure_dataset",
    "DataError",
    "DataNotFound",
    "ArrayDataset",
    "BatchIterator",
    "Standardizer",
    "standardize",
    "one_hot",
    "stratified_split",
    "kfold_indices",
    "stratified_kfold_indices",
    "read_htru2",
    "read_uci",
    "list_uci_datasets",
    "read_paper_results",
    "read_idx",
    "read_idx_dataset",
    "read_tox21",
    "read_tox21_tables",
    "read_csv_dataset",
    "read_npz_dataset",
]

"""The SNN paper's own numbers, to set beside a reproduction.

Source: G. Klambauer, T. Unterthiner, A. Mayr, S. Hochreiter, "Self-Normalizing Neural Networks",
NeurIPS 2017. UCI: the per-data-set test accuracies of its appendix table, read from a CSV file
the user supplies (paper_results.csv: dataset,N,M,SNN,MS,HW,ResNet,BN,WN,LN; see
minisnn.data.uci.read_paper_results), never shipped here. HTRU2: the ROC AUC averaged over the 10
test folds, from the paper's HTRU2 table. Tox21: the mean ROC AUC over the 12 tasks from the
paper's Tox21 table (by number of layers), the best over depths for the two methods quoted here.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..data.uci import read_paper_results

# The paper's column names in paper_results.csv, by minisnn method.
UCI_COLUMNS = {"snn": "SNN", "msra": "MS", "highway": "HW", "resnet": "ResNet", "batchnorm": "BN",
               "weightnorm": "WN", "layernorm": "LN"}
HTRU2_AUC = {"snn": 0.9803, "msra": 0.9791, "weightnorm": 0.9786, "highway": 0.9766, "layernorm": 0.9762,
             "batchnorm": 0.9760, "resnet": 0.9753}
TOX21_AUC = {"snn": 0.845, "batchnorm": 0.800}


def paper_values(path: str | os.PathLike | None) -> dict[tuple[str, str], float]:
    """(data set, method) -> the paper's test value: HTRU2 and Tox21 always, UCI data sets from
    the paper_results.csv at `path` when given (NaN cells left out)."""
    values = {("htru2", method): value for method, value in HTRU2_AUC.items()}
    values.update({("tox21", method): value for method, value in TOX21_AUC.items()})
    if path is not None:
        for name, result in read_paper_results(Path(path)).items():
            for method, column in UCI_COLUMNS.items():
                accuracy = result.accuracy.get(column)
                if accuracy is not None and accuracy == accuracy:
                    values[(f"uci:{name}", method)] = accuracy
    return values

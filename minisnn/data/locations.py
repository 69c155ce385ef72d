"""Where data lives: an explicit folder, else $MINISNN_DATA, else ~/.cache/minisnn."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MINISNN_DATA"
DEFAULT_ROOT = Path("~/.cache/minisnn")
# Debian's dataset-fashion-mnist package installs the IDX files here.
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root folder: `root` if given, else $MINISNN_DATA if set, else ~/.cache/minisnn."""
    if root is not None:
        return Path(root).expanduser()
    from_env = os.environ.get(ENV_VAR, "").strip()
    return Path(from_env).expanduser() if from_env else DEFAULT_ROOT.expanduser()

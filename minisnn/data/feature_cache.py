"""Molecular features computed once and kept on disk, keyed by the input file's content and the settings.

The cache folder is $MINISNN_FEATURE_CACHE, else ~/.cache/minisnn/features. An entry is one .npz
file (written atomically, read with allow_pickle=False) named by the first 20 hex digits of the
SHA-256 of: the SHA-256 of the SMILES file's bytes, the feature settings and the RDKit version
(descriptor values can change between RDKit releases). A file that is unreadable or whose stored
key differs is recomputed and replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..files import write_atomically
from .molecules import FeatureSettings, MoleculeFeatures, featurize, rdkit_version

ENV_VAR = "MINISNN_FEATURE_CACHE"
DEFAULT_FOLDER = Path("~/.cache/minisnn/features")
KEY_DIGITS = 20


def cache_folder() -> Path:
    from_env = os.environ.get(ENV_VAR, "").strip()
    return Path(from_env).expanduser() if from_env else DEFAULT_FOLDER.expanduser()


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(file_hash: str, settings: FeatureSettings) -> str:
    text = json.dumps({"file": file_hash, "settings": settings.config(), "rdkit": rdkit_version()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_DIGITS]


def _write(path: Path, key: str, features: MoleculeFeatures) -> None:
    header = {"key": key, "feature_names": features.feature_names, "scaffolds": features.scaffolds,
              "unparsed": features.unparsed, "nonfinite": features.nonfinite, "rdkit": features.rdkit}
    arrays = {"x": features.x, "rows": features.rows, "header": np.array(json.dumps(header))}
    write_atomically(path, lambda handle: np.savez(handle, **arrays))


def _read(path: Path, key: str) -> MoleculeFeatures | None:
    """The entry at `path` if it is readable and holds `key`, else None."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(str(archive["header"]))
            x, rows = archive["x"], archive["rows"]  # (N, D), (N,)
        if header["key"] != key or x.shape != (len(rows), len(header["feature_names"])):
            return None
        return MoleculeFeatures(x, rows, header["feature_names"], header["scaffolds"], header["unparsed"],
                                header["nonfinite"], header["rdkit"])
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile):
        return None


def cached_features(source: str | os.PathLike, smiles: list[str], settings: FeatureSettings,
                    folder: str | os.PathLike | None = None) -> tuple[MoleculeFeatures, bool]:
    """(features of `smiles`, read from file `source`; True when they came from the cache)."""
    key = cache_key(file_sha256(source), settings)
    path = Path(folder).expanduser() if folder is not None else cache_folder()
    path = path / f"{Path(source).name.split('.')[0]}-{key}.npz"
    found = _read(path, key) if path.is_file() else None
    if found is not None:
        return found, True
    features = featurize(smiles, settings)
    _write(path, key, features)
    return features, False

"""Fetching HTRU2, MNIST and Fashion-MNIST on first use, verified by SHA-256 and written atomically.

Nothing is written under a final file name until its checksum has matched; without a network
the error says which file to download and where to place it.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..files import write_atomically
from .errors import DataError, DataNotFound
from .locations import ENV_VAR, SYSTEM_FASHION_MNIST, data_root

TIMEOUT_S = 60


@dataclass(frozen=True)
class RemoteFile:
    """A file placed as `name` in its data set folder. `sha256` is of that file; when `member` is set,
    the URLs serve a zip archive and the file is the archive member of that name."""

    name: str
    urls: tuple[str, ...]
    sha256: str
    member: str | None = None


def _idx_files(base_urls: tuple[str, ...], sha256: dict[str, str]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(name, tuple(base + name for base in base_urls), digest) for name, digest in sha256.items())


REMOTE_DATASETS: dict[str, tuple[RemoteFile, ...]] = {
    "htru2": (
        RemoteFile(
            "HTRU_2.csv",
            ("https://archive.ics.uci.edu/static/public/372/htru2.zip",),
            "b2b388ceaa9718d00f6feba97bfe7096ee61996526cee2bea94e9dd034e9cbbe",
            member="HTRU_2.csv",
        ),
    ),
    "mnist": _idx_files(
        ("https://storage.googleapis.com/cvdf-datasets/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        {
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ),
    "fashion-mnist": _idx_files(
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        {
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    ),
}


def fetch_url(url: str) -> bytes:
    """The body of `url` (the one place that touches the network; tests replace it)."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        return response.read()


def atomic_write(path: Path, payload: bytes) -> None:
    """Write `payload` to `path` atomically (minisnn.files.write_atomically)."""
    write_atomically(path, lambda handle: handle.write(payload))


def _zip_member(payload: bytes, member: str, url: str, target: Path) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            names = [name for name in archive.namelist() if name.rsplit("/", 1)[-1] == member]
            if not names:
                raise DataError(target, f"the archive from {url} holds no {member}")
            return archive.read(names[0])
    except zipfile.BadZipFile as exc:
        raise DataError(target, f"the download from {url} is not a valid zip archive ({exc})") from exc


def placement_hint(remote: RemoteFile, target: Path) -> str:
    what = f"{remote.member} from the archive {remote.urls[0]}" if remote.member else remote.urls[0]
    return f"download {what} and place it at {target}"


def _root_hint(folder: Path) -> str:
    return f" (or set {ENV_VAR} to a folder holding {folder.name}/)"


def download_file(remote: RemoteFile, folder: Path) -> Path:
    """Fetch `remote` into folder/remote.name, verifying its SHA-256 first."""
    target = folder / remote.name
    failures = []
    for url in remote.urls:
        try:
            payload = fetch_url(url)
            break
        except (urllib.error.URLError, OSError) as exc:
            failures.append(f"{url}: {exc}")
    else:
        hint = placement_hint(remote, target) + _root_hint(folder)
        raise DataNotFound(target, f"missing and the download failed ({'; '.join(failures)}); {hint}")
    if remote.member:
        payload = _zip_member(payload, remote.member, url, target)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != remote.sha256:
        problem = f"SHA-256 of the download from {url} is {digest}, expected {remote.sha256}; nothing was written"
        raise DataError(target, problem)
    atomic_write(target, payload)
    return target


def missing_files(name: str, folder: Path) -> list[RemoteFile]:
    return [remote for remote in REMOTE_DATASETS[name] if not (folder / remote.name).is_file()]


def dataset_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where data set `name` is read from: root/name, or for Fashion-MNIST the system copy when only that exists."""
    folder = data_root(root) / name
    if name == "fashion-mnist" and missing_files(name, folder) and not missing_files(name, SYSTEM_FASHION_MNIST):
        return SYSTEM_FASHION_MNIST
    return folder


def ensure_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The folder holding all files of `name` ("htru2", "mnist", "fashion-mnist"), fetching missing ones."""
    if name not in REMOTE_DATASETS:
        raise ValueError(f"no download for {name!r}; downloadable: {', '.join(REMOTE_DATASETS)}")
    folder = dataset_folder(name, root)
    missing = missing_files(name, folder)
    if missing and not download:
        hints = "; ".join(placement_hint(remote, folder / remote.name) for remote in missing)
        raise DataNotFound(folder, f"{name} is not here and downloads are off: {hints}{_root_hint(folder)}")
    for position, remote in enumerate(missing):
        try:
            download_file(remote, folder)
        except DataNotFound as exc:
            rest = missing[position + 1 :]
            if not rest:
                raise
            hints = "; ".join(placement_hint(other, folder / other.name) for other in rest)
            raise DataNotFound(exc.path, f"{exc.problem}; likewise {hints}") from None
    return folder

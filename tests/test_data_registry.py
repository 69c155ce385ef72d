"""load_dataset, data locations, checksummed atomic downloads (network mocked) and `minisnn data`."""

import argparse
import gzip
import hashlib
import io
import os
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minisnn.commands import data as data_command
from minisnn.data import DataError, DataNotFound, data_root, download, ensure_dataset, load_dataset, make_synthetic
from minisnn.data.download import REMOTE_DATASETS, RemoteFile, atomic_write, dataset_folder

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HTRU_TEXT = "1,2,3,4,5,6,7,8,0\n8,7,6,5,4,3,2,1,1\n"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any download attempt fails as it would offline, unless a test installs its own fetch."""

    def offline(url):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(download, "fetch_url", offline)
    monkeypatch.delenv("MINISNN_DATA", raising=False)


def zipped(name, text):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"HTRU2/{name}", text)
        archive.writestr("Readme.txt", "about")
    return buffer.getvalue()


def fake_htru2(monkeypatch, payload_text=HTRU_TEXT):
    """Pin HTRU2 to a small file and serve it zipped; returns the list of fetched URLs."""
    digest = hashlib.sha256(HTRU_TEXT.encode()).hexdigest()
    remote = RemoteFile("HTRU_2.csv", ("https://example.org/htru2.zip",), digest, member="HTRU_2.csv")
    monkeypatch.setitem(REMOTE_DATASETS, "htru2", (remote,))
    fetched = []

    def fetch(url):
        fetched.append(url)
        return zipped("HTRU_2.csv", payload_text)

    monkeypatch.setattr(download, "fetch_url", fetch)
    return fetched


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root() == tmp_path / "home" / ".cache" / "minisnn"
    monkeypatch.setenv("MINISNN_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "explicit") == tmp_path / "explicit"


def test_load_dataset_names_and_paths(monkeypatch, tmp_path):
    synthetic = load_dataset("synthetic")
    assert np.array_equal(synthetic.x_train, make_synthetic().x_train)
    (tmp_path / "htru2").mkdir()
    (tmp_path / "htru2" / "HTRU_2.csv").write_text(HTRU_TEXT)
    monkeypatch.setenv("MINISNN_DATA", str(tmp_path))
    assert load_dataset("htru2").y_train.tolist() == [0, 1]
    csv = tmp_path / "table.csv"
    csv.write_text("a,kind\n1,1\n2,0\n")
    assert load_dataset(str(csv), label_column="kind").y_train.tolist() == [1, 0]
    np.savez(tmp_path / "t.npz", x=np.ones((2, 2)), y=np.array([0, 1]))
    assert load_dataset(str(tmp_path / "t.npz")).n_features == 2
    with pytest.raises(DataNotFound, match="file not found"):
        load_dataset(str(tmp_path / "absent.csv"))
    with pytest.raises(ValueError, match="unknown data set 'cifar'; use synthetic, htru2, uci:NAME"):
        load_dataset("cifar")


def test_load_dataset_uci_and_tox21_locations(tmp_path):
    with pytest.raises(DataNotFound, match=r"no UCI data set 'iris' here \(data sets under .*uci: none\)"):
        load_dataset("uci:iris", root=tmp_path)
    with pytest.raises(DataNotFound, match="Tox21 needs the DeepTox files tox21_dense_train.csv.gz"):
        load_dataset("tox21:NR.AhR", root=tmp_path)
    folder = tmp_path / "uci" / "toy"
    folder.mkdir(parents=True)
    (folder / "toy.txt").write_text("n_entradas= 1\nn_clases= 2\nn_arquivos= 1\nfich1= toy_R.dat\nn_patrons1= 2\n"
                                    "n_patrons_entrena= 1\nn_patrons_valida= 1\n")
    (folder / "toy_R.dat").write_text("\tf1\tclase\n1\t0.5\t1\n2\t0.7\t0\n")
    (folder / "conxuntos.dat").write_text("1\n0\n")
    (folder / "conxuntos_kfold.dat").write_text("0\n1\n1\n0\n0\n1\n1\n0\n")
    by_name = load_dataset("uci:toy", root=tmp_path)
    assert by_name.x_train.tolist() == [[0.7]] and by_name.y_test.tolist() == [1]
    assert load_dataset(str(folder)).x_test.tolist() == [[0.5]]  # a UCI folder given as a path


@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared data folder")
def test_load_dataset_uci_from_shared_root():
    data = load_dataset("uci:iris", root=SHARED)
    assert data.name == "uci:iris" and (len(data.y_train), len(data.y_test)) == (75, 75)


def test_download_verifies_and_writes_atomically(monkeypatch, tmp_path):
    fetched = fake_htru2(monkeypatch)
    data = load_dataset("htru2", root=tmp_path)
    assert data.x_train.shape == (2, 8) and fetched == ["https://example.org/htru2.zip"]
    assert leftovers(tmp_path / "htru2") == ["HTRU_2.csv"]
    load_dataset("htru2", root=tmp_path)
    assert len(fetched) == 1  # present now: no second download


def test_checksum_mismatch_leaves_nothing(monkeypatch, tmp_path):
    fake_htru2(monkeypatch, payload_text=HTRU_TEXT.replace("8,7", "9,7"))
    with pytest.raises(DataError, match="SHA-256 of the download from https://example.org/htru2.zip is"):
        load_dataset("htru2", root=tmp_path)
    assert leftovers(tmp_path / "htru2") == []


def test_offline_error_says_which_file_goes_where(tmp_path):
    target = tmp_path / "htru2" / "HTRU_2.csv"
    with pytest.raises(DataNotFound) as caught:
        load_dataset("htru2", root=tmp_path)
    message = str(caught.value)
    assert "network disabled in tests" in message
    assert f"download HTRU_2.csv from the archive https://archive.ics.uci.edu/static/public/372/htru2.zip " \
           f"and place it at {target}" in message
    with pytest.raises(DataNotFound, match="downloads are off: download https://storage.googleapis.com"):
        ensure_dataset("mnist", tmp_path, download=False)
    with pytest.raises(DataNotFound) as caught:
        ensure_dataset("mnist", tmp_path)
    for remote in REMOTE_DATASETS["mnist"]:  # every missing file is named, not just the first
        assert f"{remote.urls[0]} and place it at {tmp_path / 'mnist' / remote.name}" in str(caught.value)
    assert leftovers(tmp_path / "htru2") == []


def test_second_mirror_is_tried_and_idx_files_are_checked(monkeypatch, tmp_path):
    payloads = {}
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        images = "images" in name
        shape = (3, 2, 2) if images else (3,)
        header = bytes([0, 0, 8, len(shape)]) + b"".join(size.to_bytes(4, "big") for size in shape)
        payloads[name] = gzip.compress(header + bytes(int(np.prod(shape))))
    remotes = tuple(RemoteFile(name, (f"https://a.example/{name}", f"https://b.example/{name}"),
                               hashlib.sha256(body).hexdigest()) for name, body in payloads.items())
    monkeypatch.setitem(REMOTE_DATASETS, "mnist", remotes)
    fetched = []

    def fetch(url):
        fetched.append(url)
        if url.startswith("https://a."):
            raise urllib.error.URLError("mirror down")
        return payloads[url.rsplit("/", 1)[1]]

    monkeypatch.setattr(download, "fetch_url", fetch)
    data = load_dataset("mnist", root=tmp_path)
    assert data.x_train.shape == (3, 4) and data.x_test.shape == (3, 4)
    assert len(fetched) == 8 and all(url.startswith("https://b.") for url in fetched[1::2])


def test_atomic_write_failure_keeps_no_partial_file(monkeypatch, tmp_path):
    target = tmp_path / "sub" / "file.bin"
    atomic_write(target, b"first")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"second")
    assert target.read_bytes() == b"first" and leftovers(tmp_path / "sub") == ["file.bin"]


@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared data folder")
def test_pinned_htru2_checksum_matches_the_real_file(monkeypatch, tmp_path):
    real = (SHARED / "htru2" / "HTRU_2.csv").read_text()
    monkeypatch.setattr(download, "fetch_url", lambda url: zipped("HTRU_2.csv", real))
    assert ensure_dataset("htru2", tmp_path) == tmp_path / "htru2"
    assert (tmp_path / "htru2" / "HTRU_2.csv").read_text() == real


def test_fashion_mnist_falls_back_to_the_system_copy(monkeypatch, tmp_path):
    system = tmp_path / "usr-share"
    system.mkdir()
    monkeypatch.setattr(download, "SYSTEM_FASHION_MNIST", system)
    assert dataset_folder("fashion-mnist", tmp_path / "root") == tmp_path / "root" / "fashion-mnist"
    for remote in REMOTE_DATASETS["fashion-mnist"]:
        (system / remote.name).write_bytes(b"")
    assert dataset_folder("fashion-mnist", tmp_path / "root") == system
    assert dataset_folder("mnist", tmp_path / "root") == tmp_path / "root" / "mnist"


def parse(argv):
    parser = argparse.ArgumentParser(prog="minisnn")
    data_command.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_data_list_and_fetch_commands(monkeypatch, tmp_path, capsys):
    (tmp_path / "htru2").mkdir()
    (tmp_path / "htru2" / "HTRU_2.csv").write_text(HTRU_TEXT)
    args = parse(["data", "list", "--data-root", str(tmp_path)])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"data root: {tmp_path}"
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["htru2"][:2] == ["present", str(tmp_path / "htru2")]
    assert rows["mnist"][:2] == ["missing", str(tmp_path / "mnist")] and rows["synthetic"][0] == "present"
    assert rows["uci:NAME"][0] == "missing" and rows["tox21"][0] == "missing"
    args = parse(["data", "fetch", "mnist", "--data-root", str(tmp_path / "offline")])
    with pytest.raises(DataNotFound, match="mnist/train-images-idx3-ubyte.gz"):
        args.func(args)
    fake_htru2(monkeypatch)
    args = parse(["data", "fetch", "htru2", "--data-root", str(tmp_path / "fresh")])
    assert args.func(args) == 0 and (tmp_path / "fresh" / "htru2" / "HTRU_2.csv").is_file()
    assert capsys.readouterr().out.strip() == f"htru2: ready in {tmp_path / 'fresh' / 'htru2'}"

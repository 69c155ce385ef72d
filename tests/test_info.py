"""`minisnn info`: the report's content, as text and JSON, with optional libraries present or not."""

import json
import sys

import numpy as np
import pytest

from minisnn.cli import main
from minisnn.commands import info


def test_json_report_lists_backends_versions_and_blas(capsys):
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backends"]["numpy"] == "available"
    assert set(report["backends"]) == {"numpy", "numba", "cupy"}
    assert report["numpy"] == np.__version__
    assert report["cpu_count"] >= 1
    assert isinstance(report["gpu"]["usable"], bool)
    assert report["threads"]["pools"], "at least one BLAS entry or a note saying what to install"
    if report["backends"]["numba"] == "available":
        assert report["numba"]["threads"] >= 1


def test_text_report_names_each_backend_and_the_gpu(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    for name in ("numpy", "numba", "cupy", "gpu:", "thread pools"):
        assert name in text


def test_blas_architecture_is_reported_when_threadpoolctl_is_installed():
    pytest.importorskip("threadpoolctl")
    blas = [pool for pool in info.blas_info() if pool.get("user_api") == "blas"]
    assert blas and all(pool["num_threads"] >= 1 for pool in blas)


def test_missing_optional_libraries_are_reported_not_raised(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    monkeypatch.setitem(sys.modules, "numba", None)
    assert info.numba_info() is None
    gpu = info.gpu_info()
    assert gpu["usable"] is False and gpu["reason"].startswith("cupy not importable")
    assert "install threadpoolctl" in info.blas_info()[0]["note"]

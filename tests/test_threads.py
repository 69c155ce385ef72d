"""set_threads and thread_settings: BLAS, OpenMP and Numba thread counts at run time, and `minisnn info`."""

import gc
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from minisnn.cli import main
from minisnn.threads import set_threads, thread_settings


def _numba():
    """Numba, imported (and its pool started), or None when it is not installed."""
    try:
        import numba
    except ImportError:
        return None
    numba.get_num_threads()
    return numba


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


@pytest.fixture(autouse=True)
def restore_threads():
    """Every pool and Numba get back the thread counts they had before the test."""
    numba = _numba()  # first, so the OpenMP library Numba's pool loads is among the pools restored
    numba_threads = numba.get_num_threads() if numba else None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limiter = None
    else:
        limiter = threadpool_limits(limits=None)  # changes nothing; remembers every pool's count
    yield
    if limiter is not None:
        limiter.restore_original_limits()
    if numba is not None:
        numba.set_num_threads(numba_threads)


def test_set_threads_limits_the_blas_pool_and_the_limit_persists():
    pytest.importorskip("threadpoolctl")
    original = _blas_threads()
    assert original, "NumPy's BLAS is not visible to threadpoolctl"
    applied = set_threads(1)
    assert _blas_threads() == [1] * len(original)
    assert [p["num_threads"] for p in applied["pools"] if p["user_api"] == "blas"] == [1] * len(original)
    a = np.random.default_rng(0).standard_normal((64, 64))
    a @ a
    gc.collect()  # nothing may restore the limit behind the caller's back
    assert _blas_threads() == [1] * len(original)
    set_threads(2)
    assert _blas_threads() == [min(2, n) for n in original]


def test_set_threads_sets_numba_threads_when_numba_is_imported():
    numba = _numba()
    if numba is None:
        pytest.skip("numba not installed")
    pytest.importorskip("threadpoolctl")
    assert set_threads(1)["numba"]["threads"] == 1
    assert numba.get_num_threads() == 1
    assert thread_settings()["numba"]["threads"] == 1
    set_threads(10_000)  # more than Numba launched: clamped to NUMBA_NUM_THREADS
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS


def test_numba_is_left_alone_when_not_imported(monkeypatch):
    pytest.importorskip("threadpoolctl")
    monkeypatch.setitem(sys.modules, "numba", None)
    assert set_threads(1)["numba"] is None
    assert thread_settings()["numba"] is None


def test_set_threads_never_imports_numba():
    pytest.importorskip("threadpoolctl")
    code = ("import sys; from minisnn.threads import set_threads, thread_settings; set_threads(1); "
            "thread_settings(); assert 'numba' not in sys.modules, 'numba imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_none_changes_nothing():
    pytest.importorskip("threadpoolctl")
    set_threads(1)
    assert set_threads(None) is None
    assert _blas_threads() and set(_blas_threads()) == {1}


@pytest.mark.parametrize("bad", [0, -2, 1.5, 2.0, "2", True])
def test_bad_thread_counts_are_rejected_by_name(bad):
    with pytest.raises(ValueError, match=re.escape(f"got {bad!r}")):
        set_threads(bad)


def test_missing_threadpoolctl_says_what_to_install(monkeypatch):
    numba = _numba()
    before = numba.get_num_threads() if numba else None
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    with pytest.raises(ImportError, match=re.escape("pip install threadpoolctl")):
        set_threads(1)
    if numba is not None:
        assert numba.get_num_threads() == before, "nothing is changed when the limit cannot be applied"
    assert "pip install threadpoolctl" in thread_settings()["pools"][0]["note"]
    assert set_threads(None) is None


def test_settings_report_the_thread_variables(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    environment = thread_settings()["environment"]
    assert environment["OMP_NUM_THREADS"] == "3" and "MKL_NUM_THREADS" not in environment


def test_info_shows_the_threads_in_force(capsys, monkeypatch):
    pytest.importorskip("threadpoolctl")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "7")
    set_threads(1)
    assert main(["info", "--json"]) == 0
    threads = json.loads(capsys.readouterr().out)["threads"]
    assert [p["num_threads"] for p in threads["pools"] if p["user_api"] == "blas"] == [1] * len(_blas_threads())
    assert threads["environment"]["OPENBLAS_NUM_THREADS"] == "7"
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"user_api=blas, .*num_threads=1$", text, re.MULTILINE)
    assert re.search(r"^environment: .*OPENBLAS_NUM_THREADS=7", text, re.MULTILINE)
    if threads["numba"] is not None:  # `minisnn info` imports Numba where it is installed
        assert threads["numba"]["threads"] == 1
        assert f"numba threads in force: 1 of {threads['numba']['max_threads']}" in text

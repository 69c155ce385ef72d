"""The `minisnn theory` command."""

import sys

import pytest

pytest.importorskip("scipy")

from minisnn.cli import main


def test_report_has_every_section(capsys):
    assert main(["theory", "--grid", "5"]) == 0
    out = capsys.readouterr().out
    assert "alpha_01       = 1.6732632423543772" in out and "lambda_01      = 1.0507009873554805" in out
    assert "[[+0.000000000000, +0.088834755107]" in out and "spectral norm 0.7876733605" in out
    assert "(1.0, 3.0)          3.000000    2.349062" in out
    assert "(0, 4)           2.404005338216483   1.070232274447111  0.712948" in out
    assert out.count("holds on a 5^4 grid") == 5 and "+0.8976084" in out


def test_requested_targets_and_convention(capsys):
    assert main(["theory", "--no-theorems", "--omega", "1", "--target", "-0.1", "2"]) == 0
    out = capsys.readouterr().out
    assert "(omega, tau) = (1, 1)" in out and "1.976902195424" in out and "1.073851239616" in out
    assert "(0, 4)" not in out and "Theorem" not in out
    assert main(["theory", "--no-theorems", "--target", "2", "1"]) == 0
    assert "(2, 1): no SELU parameters reach the fixed point" in capsys.readouterr().out


def test_bad_grid_is_an_error(capsys):
    assert main(["theory", "--grid", "1"]) == 1
    assert "--grid needs at least 2 points" in capsys.readouterr().err


def test_missing_scipy_is_reported(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    assert main(["theory", "--no-theorems"]) == 1
    assert "install minisnn[theory]" in capsys.readouterr().err

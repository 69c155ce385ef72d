"""The `minisnn theory` command."""

import io
import sys

import pytest

pytest.importorskip("scipy")

from minisnn.cli import main
from minisnn.commands.theory import progress


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


def test_an_unreachable_target_is_reported_and_fails(capsys):
    assert main(["theory", "--no-theorems", "--target", "2", "1", "--target", "0", "1"]) == 2
    captured = capsys.readouterr()
    assert "(2, 1): no SELU parameters reach the fixed point" in captured.out and "(0, 1)  " in captured.out
    assert captured.err.strip() == ("minisnn theory: error: no SELU parameters reach the fixed point (2, 1) "
                                    "(see the table above)")


@pytest.mark.parametrize("args, message", [
    (["--grid", "1"], "argument --grid: must be in [2, 61], got 1"),
    (["--grid", "1000000"], "argument --grid: must be in [2, 61], got 1000000"),
    (["--tau", "0"], "argument --tau: must be > 0, got 0"),
    (["--omega", "nan"], "argument --omega: a finite number is needed, got 'nan'"),
    (["--target", "nan", "1"], "argument --target: a finite number is needed, got 'nan'"),
])
def test_bad_options_exit_2_with_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["theory", *args])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err == f"minisnn theory: error: {message} (see `minisnn theory --help`)"


def test_missing_scipy_is_reported(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    assert main(["theory", "--no-theorems"]) == 2
    assert "install minisnn[theory]" in capsys.readouterr().err


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_shows_only_on_a_terminal(monkeypatch):
    import minisnn.commands.theory as command

    monkeypatch.setattr(command.time, "perf_counter", iter([0.0, 2.5]).__next__)
    terminal, pipe = Terminal(), io.StringIO()
    with progress("checking", terminal):
        pass
    with progress("checking", pipe):
        pass
    assert terminal.getvalue() == "\rchecking ... done in 2.5s\n" and pipe.getvalue() == ""

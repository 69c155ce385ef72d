"""Theorems 1-3 on a grid (docs/MATH.md section 3): the extremes to 1e-5, the verdicts, the report."""

import pytest

pytest.importorskip("scipy")

from minisnn.theory import Domain, format_checks, theorem1, theorem2, theorem3, verify_theorems
from minisnn.theory.theorems import THEOREM3_WIDE_DOMAIN


def test_theorem1_extremes_on_the_21_grid():
    check = theorem1(21)
    e = check.extremes
    assert e["min mu~"].value == pytest.approx(-0.0310605, abs=1e-5)
    assert e["max mu~"].value == pytest.approx(0.0677251, abs=1e-5)
    assert e["min nu~"].value == pytest.approx(0.803712, abs=1e-5)
    assert e["max nu~"].value == pytest.approx(1.481575, abs=1e-5)
    assert e["max norm(H)"].value == pytest.approx(0.8976084, abs=1e-5)
    assert e["max norm(H)"].at == pytest.approx((-0.1, -0.1, 0.8, 1.1))
    assert check.holds


def test_the_other_theorems_and_the_wider_ranges():
    checks = {c.name: c for c in verify_theorems(11)}
    assert len(checks) == 5 and all(c.holds for c in checks.values())
    assert checks["Theorem 1, wider tau (contraction)"].extremes["max norm(H)"].value == pytest.approx(0.9890263, abs=1e-5)
    assert checks["Theorem 2 (variance decreases)"].extremes["max nu~ - nu"].value == pytest.approx(-0.119744, abs=1e-5)
    assert checks["Theorem 3 (variance increases)"].extremes["min nu~ - nu"].value == pytest.approx(0.007736, abs=1e-5)
    wide = checks["Theorem 3, wider nu (variance increases)"]
    assert wide.extremes["min nu~ - nu"].value == pytest.approx(0.011029, abs=1e-5)
    assert wide.domain == THEOREM3_WIDE_DOMAIN


def test_the_appendix_lower_end_also_holds():
    check = theorem3(9, Domain(mu=(-0.1, 0.1), omega=(-0.1, 0.1), nu=(0.05, 0.16), tau=(0.8, 1.25)))
    assert check.holds and check.extremes["min nu~ - nu"].value > 0.007736


def test_a_domain_outside_the_theorem_fails():
    # Variance 1 does not decrease: Theorem 2's claim fails there, and the check says so.
    check = theorem2(5, Domain(mu=(-0.1, 0.1), omega=(-0.1, 0.1), nu=(0.5, 1.0), tau=(0.95, 1.1)))
    assert not check.holds
    assert "FAILS" in format_checks([check])


def test_report_lists_every_check_and_extreme():
    text = format_checks(verify_theorems(3))
    assert text.count("holds on a 3^4 grid") == 5
    assert "max norm(H)" in text and "min nu~ - nu" in text and "at (mu=-0.1, omega=-0.1, nu=0.8, tau=1.1)" in text


def test_grid_needs_two_points():
    with pytest.raises(ValueError, match="at least 2 points"):
        theorem1(1)

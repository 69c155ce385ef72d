"""pyproject.toml lists every subpackage, and the kernel sources ship with the package."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_subpackage_is_listed():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "minisnn").rglob("__init__.py")}
    assert found | {"minisnn.kernels"} == listed


def test_kernel_sources_are_package_data():
    config = _pyproject()["tool"]["setuptools"]
    assert config["package-dir"]["minisnn.kernels"] == "kernels"
    assert sorted(config["package-data"]["minisnn.kernels"]) == ["*.cu", "*.cuh"]
    assert list((ROOT / "kernels").glob("*.cu")) and (ROOT / "kernels" / "common.cuh").is_file()

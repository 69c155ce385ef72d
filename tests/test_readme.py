"""README: its Python examples run as written (with one training epoch instead of ten), and its
install command installs everything its test command needs, which CI runs verbatim."""

import ast
import re
import shlex
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Reached only through pytest.importorskip, and not installable everywhere: these tests skip cleanly.
OPTIONAL = {"torch": "PyTorch comparisons (pip install torch==2.13.0)", "cupy": "a CUDA GPU",
            "cupy_backends": "a CUDA GPU", "tomli": "Python < 3.11 only",
            "distributed": "the Dask executor of minisnn.experiments"}


def test_readme_python_examples_run(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    code = "\n".join(blocks).replace("epochs=10", "epochs=1")
    monkeypatch.chdir(tmp_path)  # the tour writes snn.npz into the working folder
    monkeypatch.setenv("MINISNN_BACKEND", "numpy")
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert (tmp_path / "snn.npz").is_file()
    assert namespace["model"].n_outputs == 4


def readme_commands() -> tuple[list[str], str]:
    """(the set-up commands, the test command): the bash blocks of the Set-up section, comments dropped."""
    section = README.read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    blocks = [[line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]
              for block in re.findall(r"```bash\n(.*?)```", section, re.S)]
    assert len(blocks) == 2 and len(blocks[1]) == 1, blocks
    return blocks[0], blocks[1][0]


def _pyproject() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    """The normalized distribution name of a requirement ("cupy-cuda12x[ctk]>=14" -> "cupy-cuda12x")."""
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def installed_requirements(install: str) -> set[str]:
    """The distributions README's `pip install -e ".[extras]"` asks for: the dependencies and the extras' lists."""
    words = shlex.split(install)
    assert words[:3] == ["pip", "install", "-e"] and len(words) == 4, install
    match = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", words[3])
    assert match, words[3]
    project = _pyproject()["project"]
    names = {_name(r) for r in project["dependencies"]}
    for extra in (match.group(1) or "").split(","):
        names |= {_name(r) for r in project["optional-dependencies"][extra]}
    return names


def suite_imports() -> tuple[set[str], set[str]]:
    """(modules imported by a plain import somewhere in tests/, modules reached via pytest.importorskip),
    third-party top-level names only."""
    local = {path.stem for path in (ROOT / "tests").rglob("*.py")} | {p.name for p in (ROOT / "tests").rglob("*") if p.is_dir()}
    plain, skipped = set(), set()
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                plain |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                plain.add(node.module.split(".")[0])
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "importorskip" and node.args
                  and isinstance(node.args[0], ast.Constant)):
                skipped.add(node.args[0].value.split(".")[0])
    third_party = lambda names: {n for n in names if n not in sys.stdlib_module_names and n not in local and n != "minisnn"}
    return third_party(plain), third_party(skipped)


def test_the_install_command_covers_what_the_tests_import():
    setup, test_command = readme_commands()
    installs = [command for command in setup if command.startswith("pip ")]
    assert len(setup) == 2 and len(installs) == 1 and setup[1] == "minisnn train", setup
    assert test_command == "python -m pytest -q"
    requested = installed_requirements(installs[0])
    plain, skipped = suite_imports()
    distributions = {module: {_name(d) for d in dists} for module, dists in packages_distributions().items()}
    uncovered = sorted(m for m in plain | (skipped - set(OPTIONAL)) if not distributions.get(m, set()) & requested)
    assert not uncovered, f"README's install command does not install what these test imports need: {uncovered}"
    assert {"pytest", "hypothesis", "scipy", "matplotlib", "numba"} <= plain | skipped  # the scan finds imports


def test_ci_runs_readme_test_command():
    _, test_command = readme_commands()
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert ci[-1] == test_command

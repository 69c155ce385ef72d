"""The README's Python examples run as written (with one training epoch instead of ten)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


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

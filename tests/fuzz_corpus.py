"""A seeded corpus of bad inputs to the `minisnn` command, and how the command handles each.

build(folder, seed) writes the corpus' files into `folder` and returns its Cases: bad option
values, bad output paths, bad CSV values, bad labels, bad NPZ archives, unreadable or misnamed
files, misused --label-column, and bad data for evaluate and predict. run(case) calls
minisnn.cli.main in this process and sorts the outcome into

- "clear": a non-zero exit with a message naming everything the case lists in `mentions`
  (the option, the path as given, the file, line, column or offending value), given before the
  long work when the case says so;
- "unclear": a non-zero exit without a traceback whose message misses one of them, or that
  came only after training;
- "silent": exit 0;
- "traceback": an exception escaped main.

Run as a script (`python tests/fuzz_corpus.py`) it prints the counts per class of problem; with
PYTHONPATH pointing at another checkout it measures that version of minisnn.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import sys
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KINDS = ("cli-value", "output-path", "csv-value", "label", "npz", "file", "label-column", "evaluate-predict")


@dataclass
class Case:
    kind: str  # one of KINDS
    name: str
    argv: list[str]
    mentions: tuple[str, ...] = ()  # substrings a clear message contains
    before_work: bool = False  # the error must come before training ("final:" must not be printed)


@dataclass
class Result:
    outcome: str  # clear, unclear, silent or traceback
    code: int | None
    out: str
    err: str
    missing: list[str] = field(default_factory=list)  # mentions the message lacks

    @property
    def one_line(self) -> bool:
        return len(self.err.strip().splitlines()) == 1


def run(case: Case) -> Result:
    """Run the case through minisnn.cli.main in this process and classify what happened."""
    from minisnn.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(case.argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception:  # noqa: BLE001 - a traceback is the outcome being measured
        return Result("traceback", None, out.getvalue(), err.getvalue() + traceback.format_exc())
    text = err.getvalue()
    if "Traceback (most recent call last)" in text:
        return Result("traceback", code, out.getvalue(), text)
    if code == 0:
        return Result("silent", code, out.getvalue(), text)
    missing = [m for m in case.mentions if m.lower() not in text.lower()]
    late = case.before_work and "final:" in out.getvalue()
    return Result("unclear" if missing or late else "clear", code, out.getvalue(), text,
                  missing + (["(came after training)"] if late else []))


# ---- the files -------------------------------------------------------------------------------------
FEATURES = ("a", "b", "c")


def _table(rng: np.random.Generator, rows: int = 40, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((rows, len(FEATURES))).round(4)  # (rows, 3)
    y = np.arange(rows) % classes  # every class present
    return x, y


def _csv_lines(x: np.ndarray, labels) -> list[str]:
    """Header and one line per row; line k + 2 of the file holds row k."""
    return [",".join(FEATURES) + ",label"] + [",".join(f"{v:g}" for v in row) + f",{lab}" for row, lab in zip(x, labels)]


def _write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


class _Builder:
    def __init__(self, folder: Path, seed: int):
        self.folder = folder
        self.rng = np.random.default_rng(seed)
        self.cases: list[Case] = []
        self.count = 0
        x, y = _table(self.rng)
        self.good_csv = _write(folder / "good.csv", _csv_lines(x, y))
        self.good_x, self.good_y = x, y
        unlabelled = [",".join(FEATURES)] + [",".join(f"{v:g}" for v in row) for row in x]
        self.features_csv = _write(folder / "features.csv", unlabelled)
        self.small = ["--backend", "numpy", "--depth", "1", "--width", "4", "--epochs", "1", "--quiet"]
        self.checkpoint = str(folder / "good-model.npz")

    def add(self, kind, name, argv, mentions=(), before_work=False):
        self.cases.append(Case(kind, name, [str(a) for a in argv], tuple(str(m) for m in mentions), before_work))

    def train(self, *args):
        return ["train", *self.small, "--data", self.good_csv, *args]

    def path(self, stem: str, suffix: str) -> Path:
        self.count += 1
        return self.folder / f"{stem}-{self.count}{suffix}"

    def placement(self, rows: int = 40) -> tuple[int, int]:
        return int(self.rng.integers(0, rows)), int(self.rng.integers(0, len(FEATURES)))


def _cli_values(b: _Builder) -> None:
    bad = {
        "--batch-size": ["0", "-1", "1.5", "abc", ""],
        "--epochs": ["0", "-2", "ten"],
        "--depth": ["-1", "2.5"],
        "--width": ["0", "-5"],
        "--dropout": ["1", "1.5", "-0.1", "nan"],
        "--lr": ["0", "-0.1", "nan", "inf"],
        "--momentum": ["-0.1", "1", "nan", "2"],
        "--weight-decay": ["-1", "nan", "inf"],
        "--holdout": ["1", "-0.1", "nan"],
        "--validation": ["1", "nan", "-0.5"],
        "--threads": ["0", "-1"],
        "--seed": ["-1", str(2**64), "x"],
    }
    for option, values in bad.items():
        for value in values:
            b.add("cli-value", f"train {option} {value!r}", b.train(option, value), [option], before_work=True)
    for option, values in {"--beta1": ["1", "-0.5", "nan"], "--beta2": ["1.5", "1"], "--eps": ["0", "-1e-8", "nan"]}.items():
        for value in values:
            b.add("cli-value", f"train adam {option} {value!r}", b.train("--optimizer", "adam", option, value), [option],
                  before_work=True)
    b.add("cli-value", "train --save-every 0", b.train("--save", b.path("m", ".npz"), "--save-every", "0"),
          ["--save-every"], before_work=True)
    b.add("cli-value", "train --early-stopping 0", b.train("--validation", "0.2", "--early-stopping", "0"),
          ["--early-stopping"], before_work=True)
    # seeded draws from each option's invalid region
    for _ in range(6):
        b.add("cli-value", "train --batch-size random", b.train("--batch-size", str(-int(b.rng.integers(0, 10**6)))),
              ["--batch-size"], before_work=True)
        b.add("cli-value", "train --lr random", b.train("--lr", f"{-float(b.rng.exponential()):g}"), ["--lr"], before_work=True)
        b.add("cli-value", "train --dropout random", b.train("--dropout", f"{1 + float(b.rng.exponential()):g}"),
              ["--dropout"], before_work=True)
    theory = {"--grid": ["1", "0", "-3", "x", "1000000"], "--omega": ["nan", "inf"], "--tau": ["0", "-1", "nan"],
              "--dropout": ["1", "nan", "-0.2"]}
    for option, values in theory.items():
        for value in values:
            b.add("cli-value", f"theory {option} {value!r}", ["theory", "--no-theorems", option, value]
                  if option != "--grid" else ["theory", option, value], [option])
    for target, mention in ((["nan", "1"], "--target"), (["0", "-1"], "-1"), (["0", "0"], "(0, 0)"), (["2", "1"], "(2, 1)")):
        b.add("cli-value", f"theory --target {' '.join(target)}", ["theory", "--no-theorems", "--target", *target], [mention])
    b.add("cli-value", "data fetch unknown", ["data", "fetch", "nosuch"], ["nosuch"])
    b.add("cli-value", "evaluate without a checkpoint", ["evaluate"], ["checkpoint"])


def _output_paths(b: _Builder) -> None:
    folder = b.folder
    (folder / "a-file").write_text("x")
    bad = [("/proc/minisnn-model.npz", "/proc/minisnn-model.npz"),
           (str(folder / "no-such-folder" / "m.npz"), "no-such-folder"),
           (str(folder), str(folder)),
           (str(folder / "a-file" / "m.npz"), "a-file")]
    for path, mention in bad:
        b.add("output-path", f"train --save {path}", b.train("--save", path), [mention], before_work=True)
        b.add("output-path", f"train --metrics-json {path}", b.train("--metrics-json", path.replace(".npz", ".json")),
              [mention.replace(".npz", ".json")], before_work=True)
        b.add("output-path", f"evaluate --predictions {path}",
              ["evaluate", b.checkpoint, "--data", b.good_csv, "--predictions", path.replace(".npz", ".csv")],
              [mention.replace(".npz", ".csv")])
        b.add("output-path", f"predict --output {path}",
              ["predict", b.checkpoint, "--data", b.features_csv, "--output", path.replace(".npz", ".csv")],
              [mention.replace(".npz", ".csv")])
    ok = b.path("ok", ".npz")
    b.add("output-path", "--save and --metrics-json the same file", b.train("--save", ok, "--metrics-json", ok),
          ["--metrics-json"], before_work=True)
    b.add("output-path", "--save {epoch} into a missing folder",
          b.train("--save", folder / "missing" / "run-{epoch}.npz", "--save-every", "1"), ["missing"], before_work=True)


def _csv_values(b: _Builder) -> None:
    x, y = b.good_x, b.good_y
    cases = [("1e300", "float32"), ("-1e300", "float32"), ("1.7e308", "float64"), ("1e200", "float64"),
             ("1e39", "float32"), ("-4e38", "float32"), ("nan", "float32"), ("inf", "float32"), ("-inf", "float64"),
             ("abc", "float32"), ("", "float32"), ('"1,5"', "float32"), ("0x10", "float32"), ("1e", "float32")]
    for value, dtype in cases:
        for _ in range(2):
            row, column = b.placement()
            lines = _csv_lines(x, y)
            cells = lines[row + 1].split(",")
            cells[column] = value
            lines[row + 1] = ",".join(cells)
            path = _write(b.path("values", ".csv"), lines)
            mentions = [Path(path).name, f"line {row + 2}"]
            mentions += [FEATURES[column]] if value not in ('"1,5"',) else []
            b.add("csv-value", f"{value} at line {row + 2}, column {FEATURES[column]} ({dtype})",
                  ["train", *b.small, "--data", path, "--dtype", dtype], mentions, before_work=True)
    for extra in (1, -1):
        row, _ = b.placement()
        lines = _csv_lines(x, y)
        lines[row + 1] = lines[row + 1] + ",7" if extra > 0 else lines[row + 1].split(",", 1)[1]
        path = _write(b.path("ragged", ".csv"), lines)
        b.add("csv-value", f"ragged row at line {row + 2}", ["train", *b.small, "--data", path],
              [Path(path).name, f"line {row + 2}"], before_work=True)
    for value in ("1e300", "1e39"):
        row, column = b.placement()
        lines = [",".join(f"{v:g}" for v in r) for r in x]
        cells = lines[row].split(",")
        cells[column] = value
        lines[row] = ",".join(cells)
        path = _write(b.path("predict-values", ".csv"), [",".join(FEATURES)] + lines)
        b.add("csv-value", f"predict {value} at line {row + 2}", ["predict", b.checkpoint, "--data", path],
              [Path(path).name, f"line {row + 2}", FEATURES[column]])


def _labels(b: _Builder) -> None:
    x, y = b.good_x, b.good_y
    for _ in range(3):
        row = int(b.rng.integers(0, len(y)))
        labels = y.copy()
        labels[row] = 100
        path = _write(b.path("label100", ".csv"), _csv_lines(x, labels))
        b.add("label", f"label 100 at line {row + 2} of a 3-class file", ["train", *b.small, "--data", path],
              [Path(path).name, "100", f"line {row + 2}"], before_work=True)
    path = _write(b.path("one-based", ".csv"), _csv_lines(x, y + 1))
    b.add("label", "1-based labels", ["train", *b.small, "--data", path], [Path(path).name, "3"], before_work=True)
    for value in ("-1", "0.5", "", "nan", "1e9"):
        row = int(b.rng.integers(0, len(y)))
        labels = y.astype(object)
        labels[row] = value
        path = _write(b.path("badlabel", ".csv"), _csv_lines(x, labels))
        b.add("label", f"label {value!r} at line {row + 2}", ["train", *b.small, "--data", path],
              [Path(path).name, f"line {row + 2}"], before_work=True)
    labels = y.astype(object)
    labels[5] = "cat"
    path = _write(b.path("mixed", ".csv"), _csv_lines(x, labels))
    b.add("label", "one string label among numbers", ["train", *b.small, "--data", path],
          [Path(path).name, "cat", "line 7"], before_work=True)
    path = _write(b.path("oneclass", ".csv"), _csv_lines(x, np.zeros_like(y)))
    b.add("label", "a single class", ["train", *b.small, "--data", path], [Path(path).name, "2 classes"], before_work=True)
    rng = b.rng
    xs = rng.standard_normal((30, 3))
    for name, arrays, mention in [
        ("float n_classes", dict(x=xs, y=np.arange(30) % 3, n_classes=np.array(2.5)), "n_classes"),
        ("huge n_classes", dict(x=xs, y=np.arange(30) % 3, n_classes=np.array(10**9)), "n_classes"),
        ("negative n_classes", dict(x=xs, y=np.arange(30) % 3, n_classes=np.array(-3)), "n_classes"),
        ("n_classes array", dict(x=xs, y=np.arange(30) % 3, n_classes=np.array([2, 3])), "n_classes"),
        ("unseen test label", dict(x_train=xs, y_train=np.arange(30) % 3, x_test=xs[:5], y_test=np.array([0, 1, 2, 3, 0])),
         "3"),
        ("1-based npz labels", dict(x=xs, y=np.arange(30) % 3 + 1), "3"),
        ("label 100 in npz", dict(x=xs, y=np.where(np.arange(30) == 7, 100, np.arange(30) % 3)), "100"),
        ("float labels", dict(x=xs, y=(np.arange(30) % 3) + 0.25), "0.25"),
    ]:
        path = b.path("labels", ".npz")
        np.savez(path, **arrays)
        b.add("label", name, ["train", *b.small, "--data", path], [path.name, mention], before_work=True)
    # evaluation data with a class the model does not have
    labels = y.copy()
    labels[11] = 5
    path = _write(b.path("eval-unseen", ".csv"), _csv_lines(x, labels))
    b.add("label", "evaluate: label 5 for a 3-class model", ["evaluate", b.checkpoint, "--data", path], [Path(path).name, "5"])


def _npz(b: _Builder) -> None:
    rng = b.rng
    xs = rng.standard_normal((30, 3))
    ys = np.arange(30) % 3
    npy = b.path("array", ".npy")
    np.save(npy, xs)
    renamed = b.path("really-npy", ".npz")
    renamed.write_bytes(npy.read_bytes())
    b.add("npz", ".npy content named .npz", ["train", *b.small, "--data", renamed], [renamed.name], before_work=True)
    b.add("npz", ".npy content named .npz, regression", ["train", *b.small, "--data", renamed, "--task", "regression"],
          [renamed.name], before_work=True)
    for name, arrays, mentions in [
        ("object array", dict(x=np.array([{"a": 1}] * 30, dtype=object), y=ys), ()),
        ("x 1-D", dict(x=xs[:, 0], y=ys), ("'x'",)),
        ("x 3-D", dict(x=xs[:, :, None], y=ys), ("'x'",)),
        ("x strings", dict(x=xs.astype(str), y=ys), ("'x'",)),
        ("x complex", dict(x=xs.astype(complex), y=ys), ("'x'",)),
        ("y 2-D", dict(x=xs, y=ys[:, None]), ("'y'",)),
        ("no y", dict(x=xs), ("'y'",)),
        ("x_test without y_test", dict(x_train=xs, y_train=ys, x_test=xs[:4]), ("y_test",)),
        ("x_test columns", dict(x_train=xs, y_train=ys, x_test=xs[:4, :2], y_test=ys[:4]), ("x_test",)),
        ("empty x", dict(x=np.zeros((0, 3)), y=np.zeros(0, dtype=int)), ()),
        ("NaN in x", dict(x=np.where(np.arange(90).reshape(30, 3) == 40, np.nan, xs), y=ys), ("row 13", "column 1")),
        ("1e300 in x", dict(x=np.where(np.arange(90).reshape(30, 3) == 40, 1e300, xs), y=ys), ("row 13", "column 1")),
        ("1e39 in x", dict(x=np.where(np.arange(90).reshape(30, 3) == 40, 1e39, xs), y=ys), ("row 13", "column 1")),
    ]:
        path = b.path("bad", ".npz")
        np.savez(path, **arrays)
        b.add("npz", name, ["train", *b.small, "--data", path], [path.name, *mentions], before_work=True)
    for name, arrays in [("regression 1e300 target", dict(x=xs, y=np.where(np.arange(30) == 4, 1e300, xs[:, 0]))),
                         ("regression inf target", dict(x=xs, y=np.where(np.arange(30) == 4, np.inf, xs[:, 0]))),
                         ("regression 1e300 feature", dict(x=np.where(np.arange(90).reshape(30, 3) == 13, 1e300, xs),
                                                           y=xs[:, 0])),
                         ("regression string x", dict(x=xs.astype(str), y=xs[:, 0]))]:
        path = b.path("reg", ".npz")
        np.savez(path, **arrays)
        b.add("npz", name, ["train", *b.small, "--data", path, "--task", "regression"], [path.name, "row 4"]
              if "string" not in name else [path.name], before_work=True)


def _files(b: _Builder) -> None:
    folder = b.folder
    empty = b.path("empty", ".csv")
    empty.write_text("")
    header_only = _write(b.path("header-only", ".csv"), ["a,b,c,label"])
    blank = b.path("blank", ".csv")
    blank.write_text("\n\n\n")
    garbage = b.path("garbage", ".csv")
    garbage.write_bytes(bytes(range(256)) * 4)
    latin = b.path("latin1", ".csv")
    latin.write_bytes("a,b,c,label\n1,2,3,0\n4,5,6,\xe9\n".encode("latin-1"))
    fake_gz = b.path("fake", ".csv.gz")
    fake_gz.write_text("a,b,c,label\n1,2,3,0\n")
    cut_gz = b.path("cut", ".csv.gz")
    with gzip.open(cut_gz, "wt") as handle:
        handle.write("\n".join(_csv_lines(b.good_x, b.good_y)))
    cut_gz.write_bytes(cut_gz.read_bytes()[:-12])
    zip_csv = b.path("zip", ".csv")
    np.savez(zip_csv.with_suffix(".tmp.npz"), x=np.zeros((2, 2)))
    zip_csv.write_bytes(zip_csv.with_suffix(".tmp.npz").read_bytes())
    for path in (empty, header_only, blank, garbage, latin, fake_gz, cut_gz, zip_csv):
        b.add("file", f"unreadable {Path(path).name}", ["train", *b.small, "--data", path], [Path(path).name],
              before_work=True)
    txt = _write(b.path("table", ".txt"), _csv_lines(b.good_x, b.good_y))
    json_file = b.path("table", ".json")
    json_file.write_text("{}")
    npy = b.path("features", ".npy")
    np.save(npy, b.good_x)
    for path in (txt, json_file, npy):
        b.add("file", f"wrong extension {Path(path).suffix}", ["train", *b.small, "--data", path], [Path(path).name],
              before_work=True)
    missing = folder / "absent.csv"
    b.add("file", "missing file", ["train", *b.small, "--data", missing], ["absent.csv"], before_work=True)
    b.add("file", "a folder as data", ["train", *b.small, "--data", folder / "a-folder.csv"], ["a-folder.csv"],
          before_work=True)
    (folder / "a-folder.csv").mkdir()
    b.add("file", "unknown uci data set", ["train", *b.small, "--data", "uci:nosuch", "--data-root", folder],
          ["nosuch"], before_work=True)
    b.add("file", "evaluate a .npy checkpoint", ["evaluate", npy, "--data", b.good_csv], [Path(npy).name])
    b.add("file", "evaluate a CSV as checkpoint", ["evaluate", b.good_csv, "--data", b.good_csv], ["good.csv"])
    b.add("file", "evaluate a missing checkpoint", ["evaluate", folder / "none.npz", "--data", b.good_csv], ["none.npz"])
    b.add("file", "resume from a .npy", b.train("--resume", npy), [Path(npy).name], before_work=True)


def _label_column(b: _Builder) -> None:
    root = b.folder / "root"
    (root / "htru2").mkdir(parents=True)
    rows = [",".join(f"{v:g}" for v in b.rng.standard_normal(8)) + f",{i % 2}" for i in range(40)]
    (root / "htru2" / "HTRU_2.csv").write_text("\n".join(rows) + "\n")
    b.add("label-column", "--label-column with synthetic",
          ["train", *b.small, "--label-column", "label"], ["--label-column"], before_work=True)
    b.add("label-column", "--label-column with htru2",
          ["train", *b.small, "--data", "htru2", "--data-root", root, "--label-column", "x"], ["--label-column"],
          before_work=True)
    b.add("label-column", "unknown column of a CSV", b.train("--label-column", "nope"), ["nope"], before_work=True)
    path = b.path("xy", ".npz")
    np.savez(path, x=b.good_x, y=b.good_y)
    b.add("label-column", "unknown array of an NPZ", ["train", *b.small, "--data", path, "--label-column", "nope"],
          ["nope"], before_work=True)
    b.add("label-column", "evaluate --label-column with synthetic", ["evaluate", b.checkpoint, "--data",
          "synthetic", "--label-column", "label"], ["--label-column"])


def _evaluate_predict(b: _Builder) -> None:
    wide = _write(b.path("wide", ".csv"), ["a,b,c,d,label"] + [f"1,2,3,4,{i % 3}" for i in range(30)])
    b.add("evaluate-predict", "evaluate: feature count", ["evaluate", b.checkpoint, "--data", wide], ["4 features", "3"])
    b.add("evaluate-predict", "predict: feature count", ["predict", b.checkpoint, "--data", wide], ["5", "3"])
    nan = _write(b.path("nan", ".csv"), ["a,b,c"] + ["1,2,3"] * 5 + ["1,nan,3"])
    b.add("evaluate-predict", "predict: NaN feature", ["predict", b.checkpoint, "--data", nan], [Path(nan).name, "line 7"])
    empty = _write(b.path("empty-features", ".csv"), ["a,b,c"])
    b.add("evaluate-predict", "predict: no rows", ["predict", b.checkpoint, "--data", empty], [Path(empty).name])
    b.add("evaluate-predict", "predict: missing data file", ["predict", b.checkpoint, "--data", b.folder / "gone.csv"],
          ["gone.csv"])
    b.add("evaluate-predict", "predict: no --data", ["predict", b.checkpoint], ["--data"])
    strings = _write(b.path("strings", ".csv"), ["a,b,c"] + ["1,x,3"] * 3)
    b.add("evaluate-predict", "predict: text feature", ["predict", b.checkpoint, "--data", strings],
          [Path(strings).name, "line 2"])


def build(folder: str | Path, seed: int = 0) -> list[Case]:
    """Write the corpus' files into `folder` (which must exist) and return its cases, the same for the same seed."""
    from minisnn.cli import main

    b = _Builder(Path(folder), seed)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        trained = main(["train", *b.small, "--data", b.good_csv, "--save", b.checkpoint])
    if trained != 0:
        raise RuntimeError("the corpus' checkpoint did not train")
    for add in (_cli_values, _output_paths, _csv_values, _labels, _npz, _files, _label_column, _evaluate_predict):
        add(b)
    return b.cases


def summary(results: list[tuple[Case, Result]]) -> dict[str, Counter]:
    counts: dict[str, Counter] = {kind: Counter() for kind in KINDS}
    for case, result in results:
        counts[case.kind][result.outcome] += 1
    return counts


if __name__ == "__main__":
    import tempfile

    verbose = "-v" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        cases = build(tmp)
        results = [(case, run(case)) for case in cases]
    outcomes = ("clear", "unclear", "silent", "traceback")
    print(f"{'class':<18}{'cases':>6}" + "".join(f"{o:>11}" for o in outcomes))
    for kind, counter in summary(results).items():
        print(f"{kind:<18}{sum(counter.values()):>6}" + "".join(f"{counter[o]:>11}" for o in outcomes))
    total = Counter(r.outcome for _, r in results)
    print(f"{'all':<18}{len(results):>6}" + "".join(f"{total[o]:>11}" for o in outcomes))
    if verbose:
        for case, result in results:
            if result.outcome != "clear":
                last = (result.err.strip().splitlines() or [""])[-1]
                print(f"[{result.outcome}] {case.kind}: {case.name}: exit {result.code}: {last[:200]} "
                      f"missing {result.missing}")

"""The seeded corpus of bad command lines (tests/fuzz_corpus.py): bad option values, bad output
paths, misused --label-column, bad data for evaluate and predict. Each must end in one line on
stderr naming the option, path or value, exit status 2, no traceback; output paths are checked
before training, and no temporary file is left behind."""

import pytest

from fuzz_corpus import build, run

KINDS = ("cli-value", "output-path", "label-column", "evaluate-predict")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, build(folder, seed=0)


def test_the_corpus_is_seeded(tmp_path_factory, corpus):
    folder, cases = corpus
    other = tmp_path_factory.mktemp("again")
    again = build(other, seed=0)

    def plain(argv, root):
        return [arg.replace(str(root), "ROOT") for arg in argv]

    assert [plain(c.argv, other) for c in again] == [plain(c.argv, folder) for c in cases]
    assert sum(case.kind == "cli-value" for case in again) >= 60


@pytest.mark.parametrize("kind", KINDS)
def test_every_bad_command_line_is_a_clear_one_line_error(corpus, kind):
    folder, cases = corpus
    failures = []
    for case in (case for case in cases if case.kind == kind):
        result = run(case)
        if result.outcome != "clear" or result.code != 2 or not result.one_line:
            failures.append(f"{case.name}: {result.outcome}, exit {result.code}, missing {result.missing}: "
                            f"{result.err.strip()[-300:]}")
    assert not failures, "\n".join(failures)
    assert not list(folder.rglob("*.tmp")), "a failed write left a temporary file"

"""The seeded corpus of bad data files (tests/fuzz_corpus.py): huge values, NaN and inf, ragged rows,
bad labels, unreadable and misnamed files. Each must end in one line on stderr naming the file
(and the line, column or value where there is one), exit status 2, no traceback, before training."""

import pytest

from fuzz_corpus import build, run

KINDS = ("csv-value", "label", "npz", "file")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build(tmp_path_factory.mktemp("corpus"), seed=0)


def test_the_corpus_covers_every_class_of_bad_data(corpus):
    counts = {kind: sum(case.kind == kind for case in corpus) for kind in KINDS}
    assert all(count >= 15 for count in counts.values()), counts


@pytest.mark.parametrize("kind", KINDS)
def test_every_bad_data_case_is_a_clear_one_line_error(corpus, kind):
    failures = []
    for case in (case for case in corpus if case.kind == kind):
        result = run(case)
        if result.outcome != "clear" or result.code != 2 or not result.one_line:
            failures.append(f"{case.name}: {result.outcome}, exit {result.code}, missing {result.missing}: "
                            f"{result.err.strip()[-300:]}")
    assert not failures, "\n".join(failures)

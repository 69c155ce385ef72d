"""Any change to a checkpoint is detected: a seeded corpus of damaged and edited files (tests/checkpoint_mutants.py).

Every mutant whose checksums were left as they were is rejected with a ValueError naming the file,
or loads to exactly the saved model, optimizer and meta. Mutants whose checksums were recomputed
(deliberate edits) are rejected the same way or load to a valid checkpoint. Nothing gives another
exception, and small files declaring huge sizes are rejected with little memory.
"""

import json
import math
import tracemalloc
import warnings
from collections import Counter

import pytest
from checkpoint_mutants import CORPUS_SIZES, base_checkpoints, corpus, fingerprint, method_checkpoints, outcome, run

from minisnn.checkpoint import load_training_state, save_checkpoint


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    bases = base_checkpoints(folder)
    originals = [fingerprint(*load_training_state(folder / name)) for name in ("base-float32.npz", "base-float64.npz")]
    return run(corpus(bases), originals, folder)


def test_the_corpus_holds_every_class(results):
    counts = Counter(mutant.kind for mutant, _, _ in results)
    assert counts == {**CORPUS_SIZES, "memory": 16}
    assert len({mutant.data for mutant, _, _ in results}) > 0.9 * len(results)  # mutants differ


@pytest.mark.parametrize("kind", [k for k in CORPUS_SIZES if not k.startswith("resealed")])
def test_unsealed_mutants_are_rejected_or_load_unchanged(results, kind):
    outcomes = Counter(result for mutant, result, _ in results if mutant.kind == kind)
    wrong = [(m.name, r, d) for m, r, d in results if m.kind == kind and r not in ("error", "same")]
    assert not wrong, wrong[:5]
    assert outcomes["error"] >= CORPUS_SIZES[kind] // 3  # the class does damage


def test_no_mutant_gives_a_traceback_or_an_error_without_the_file_name(results):
    bad = [(m.kind, m.name, r, d) for m, r, d in results if r in ("traceback", "unclear")]
    assert not bad, bad[:5]


def test_error_messages_are_one_short_line(results):
    for mutant, result, detail in results:
        if result == "error":
            assert "\n" not in detail and len(detail) < 500, (mutant.name, detail)


def _floats(value):
    if isinstance(value, dict):
        return [f for item in value.values() for f in _floats(item)]
    if isinstance(value, list):
        return [f for item in value for f in _floats(item)]
    return [value] if isinstance(value, float) else []


def test_resealed_edits_that_load_give_valid_checkpoints(results, tmp_path):
    """A deliberate edit may load, but only as a checkpoint that saves and loads again unchanged."""
    loaded = [m for m, r, _ in results if m.kind.startswith("resealed") and r == "changed"]
    assert 0 < len(loaded) < 0.5 * sum(n for k, n in CORPUS_SIZES.items() if k.startswith("resealed"))
    for index, mutant in enumerate(loaded):
        path = tmp_path / f"m{index}.npz"
        path.write_bytes(mutant.data)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model, optimizer, meta = load_training_state(path)
        assert all(math.isfinite(f) for f in _floats([model.config(), optimizer.config()])), mutant.name
        again = save_checkpoint(tmp_path / f"again{index}.npz", model, optimizer, meta)
        assert outcome(again, load_training_state, fingerprint(model, optimizer, meta))[0] == "same", mutant.name
        json.dumps(meta, allow_nan=False)


def test_small_files_declaring_huge_sizes_are_rejected_with_little_memory(results, tmp_path):
    memory = [m for m, _, _ in results if m.kind == "memory"]
    assert len(memory) == 16 and all(len(m.data) < 8 << 20 for m in memory)  # files of a few MiB at most
    for index, mutant in enumerate(memory):
        path = tmp_path / f"bomb{index}.npz"
        path.write_bytes(mutant.data)
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match=str(path)):
                load_training_state(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 16 << 20, (mutant.name, peak)


def test_every_network_kind_keeps_the_property(tmp_path):
    """The checks are generic: networks with running statistics, weight norm, highway and residual
    blocks are covered like the MLPs (a smaller corpus, every class spread over minisnn.METHODS)."""
    from minisnn import METHODS

    bases = method_checkpoints(tmp_path)
    originals = []
    for method in METHODS:
        originals.append(fingerprint(*load_training_state(tmp_path / f"{method}.npz")))
    sizes = {"byte flip": 14, "header edit": 35, "header delete": 14, "header add": 7, "array edit": 14,
             "resealed header edit": 35, "resealed array edit": 14}
    results = run(corpus(bases, seed=5, sizes=sizes, memory=False), originals, tmp_path)
    wrong = [(m.kind, m.name, r, d) for m, r, d in results
             if r in ("traceback", "unclear") or (r == "changed" and not m.kind.startswith("resealed"))]
    assert not wrong, wrong[:5]
    assert {m.base for m, r, _ in results if r == "error"} == set(range(len(METHODS)))

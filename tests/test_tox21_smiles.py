"""Tox21 from SMILES: RDKit features, the feature cache, random and scaffold splits, and the
reader, train command and harness protocol on a small hand-written CSV file."""

from __future__ import annotations

import builtins
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from minisnn.data.feature_cache import cached_features
from minisnn.data.molecules import (FeatureSettings, import_rdkit, molecular_descriptors, morgan_fingerprints,
                                    parse_smiles, random_split, scaffold_split)
from minisnn.data.tox21 import read_smiles_table, read_tox21_smiles, split_molecules

needs_rdkit = pytest.mark.skipif(importlib.util.find_spec("rdkit") is None, reason='needs RDKit ("minisnn[chem]")')

SHARED_TOX21 = Path(__file__).resolve().parents[2] / "shared" / "data" / "tox21" / "tox21.csv"

# (SMILES, labels of tasks A and B; "" missing): benzenes, pyridines, cyclohexanes, naphthalenes,
# chains (no ring: scaffold ""), and two SMILES RDKit cannot parse (data lines 4 and 9).
MOLECULES = [
    ("c1ccccc1O", "1", "0"), ("c1ccccc1C", "0", ""), ("c1ccccc1N", "1", "1"), ("C1CC", "0", "0"),
    ("c1ccccc1Cl", "0", "1"), ("c1ccccc1CC", "1", "0"), ("c1ccccc1C(=O)O", "0", "0"), ("c1ccncc1", "1", "1"),
    ("not a smiles", "1", "0"), ("Cc1ccncc1", "0", "0"), ("Oc1ccncc1", "1", ""), ("C1CCCCC1", "0", "1"),
    ("OC1CCCCC1", "1", "0"), ("NC1CCCCC1", "0", "0"), ("c1ccc2ccccc2c1", "1", "1"), ("Oc1ccc2ccccc2c1", "0", "0"),
    ("CCO", "0", "1"), ("CCCC", "1", "0"), ("CC(=O)O", "0", ""), ("CCN", "1", "1"), ("[Na+].[Cl-]", "0", "0"),
    ("c1ccccc1Br", "1", "0"), ("c1ccccc1F", "0", "1"), ("CC(C)O", "1", "0"), ("Clc1ccncc1", "0", "1"),
    ("ClC1CCCCC1", "1", "0"), ("Cc1ccc2ccccc2c1", "1", "0"), ("OCC(O)CO", "0", "1"),
]


def write_csv(path: Path, molecules=MOLECULES) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["smiles,A,B"] + [",".join(row) for row in molecules]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "feature-cache"
    monkeypatch.setenv("MINISNN_FEATURE_CACHE", str(folder))
    return folder


def test_missing_rdkit_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_rdkit(name, *args, **kwargs):
        if name == "rdkit" or name.startswith("rdkit."):
            raise ImportError("No module named 'rdkit'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rdkit)
    with pytest.raises(ImportError, match=r'pip install "minisnn\[chem\]"'):
        import_rdkit()


def test_train_without_rdkit_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from minisnn.cli import main

    real_import = builtins.__import__

    def no_rdkit(name, *args, **kwargs):
        if name.split(".")[0] == "rdkit":
            raise ImportError("No module named 'rdkit'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rdkit)
    write_csv(tmp_path / "tox21" / "tox21.csv")
    assert main(["train", "--data", "tox21", "--data-root", str(tmp_path), "--backend", "numpy"]) == 2
    assert 'molecular features need RDKit: pip install "minisnn[chem]"' in capsys.readouterr().err


def test_feature_settings_are_checked():
    with pytest.raises(ValueError, match="bits must be an integer >= 0"):
        FeatureSettings(bits=-1)
    with pytest.raises(ValueError, match="no features"):
        FeatureSettings(bits=0, descriptors=False)


@needs_rdkit
def test_morgan_bits_count_the_distinct_atom_environments():
    molecules, unparsed = parse_smiles(["CCO", "c1ccccc1", "C"])
    assert unparsed == []
    radius0 = morgan_fingerprints(molecules, radius=0, bits=2048)  # (3, 2048)
    # ethanol: methyl C, methylene C, hydroxyl O; benzene: six identical aromatic CH; methane: one atom
    assert radius0.sum(axis=1).tolist() == [3, 1, 1]
    assert set(np.unique(radius0)) == {0.0, 1.0}
    radius2 = morgan_fingerprints(molecules, radius=2, bits=2048)
    # benzene's atoms stay identical at every radius: one new environment per radius
    assert radius2[1].sum() == 3
    assert (radius2[0] >= radius0[0]).all()  # radius 2 keeps the radius-0 bits
    assert morgan_fingerprints(molecules, radius=2, bits=64).shape == (3, 64)


@needs_rdkit
def test_descriptors_known_values_and_nonfinite_replaced():
    molecules, _ = parse_smiles(["CCO", "c1ccccc1", "[Na+].[Cl-]"])
    names, values, nonfinite = molecular_descriptors(molecules)
    column = {name: index for index, name in enumerate(names)}
    assert values.shape == (3, len(names)) and np.isfinite(values).all()
    assert values[0, column["MolWt"]] == pytest.approx(2 * 12.011 + 6 * 1.008 + 15.999, abs=1e-3)  # 46.069
    assert values[0, column["NumHDonors"]] == 1 and values[0, column["HeavyAtomCount"]] == 3
    assert values[1, column["RingCount"]] == 1 and values[1, column["NumAromaticRings"]] == 1
    assert values[1, column["Ipc"]] == pytest.approx(np.log1p(34.3994618804395), rel=1e-9)  # log1p of RDKit's Ipc
    # sodium chloride has no Gasteiger charges: RDKit's BCUT2D values are NaN, replaced by 0 and counted
    assert nonfinite["BCUT2D_MWHI"] == 1 and values[2, column["BCUT2D_MWHI"]] == 0.0
    assert "MolWt" not in nonfinite


@needs_rdkit
def test_unparsable_smiles_are_skipped_and_reported(tmp_path, cache):
    data = read_tox21_smiles(write_csv(tmp_path / "tox21.csv"))
    assert data.features.unparsed == [3, 8] and len(data.x) == len(MOLECULES) - 2
    assert data.lines[:4].tolist() == [2, 3, 4, 6]  # file lines (line 1 is the header)
    report = "\n".join(data.report())
    assert "2 SMILES RDKit cannot parse were skipped: line 5, line 10" in report
    assert "non-finite descriptor values replaced by 0: BCUT2D_CHGHI 1" in report
    assert data.task_names == ["A", "B"] and data.targets.shape == (len(data.x), 2)
    assert np.isnan(data.targets[1, 1]) and data.targets[0].tolist() == [1.0, 0.0]
    assert data.x.shape[1] == 2048 + len(molecular_descriptors([])[0])


@needs_rdkit
def test_cache_hit_on_second_call_and_keyed_by_content_and_settings(tmp_path, cache):
    path = write_csv(tmp_path / "tox21.csv")
    settings = FeatureSettings(radius=1, bits=128)
    smiles = [row[0] for row in MOLECULES]
    first, hit = cached_features(path, smiles, settings)
    assert not hit and len(list(cache.glob("*.npz"))) == 1
    second, hit = cached_features(path, smiles, settings)
    assert hit and np.array_equal(first.x, second.x) and second.unparsed == first.unparsed
    assert second.scaffolds == first.scaffolds and second.nonfinite == first.nonfinite
    _, hit = cached_features(path, smiles, FeatureSettings(radius=2, bits=128))
    assert not hit  # other settings, another entry
    write_csv(path, MOLECULES[:-1])
    _, hit = cached_features(path, smiles[:-1], settings)
    assert not hit  # other file content
    for entry in cache.glob("*.npz"):
        entry.write_bytes(b"damaged")
    third, hit = cached_features(path, smiles[:-1], settings)
    assert not hit and third.x.shape[0] == len(MOLECULES) - 3  # recomputed, not read


@needs_rdkit
def test_scaffold_split_keeps_each_scaffold_on_one_side(tmp_path, cache):
    data = read_tox21_smiles(write_csv(tmp_path / "tox21.csv"), FeatureSettings(bits=64, descriptors=False))
    parsed = [row[0] for position, row in enumerate(MOLECULES) if position not in (3, 8)]
    assert data.scaffolds[parsed.index("c1ccccc1O")] == "c1ccccc1" and data.scaffolds[parsed.index("CCO")] == ""
    kept, held = split_molecules(data, "scaffold", 0.25)
    assert set(kept).isdisjoint(held) and len(kept) + len(held) == len(data.x)
    assert {data.scaffolds[i] for i in kept}.isdisjoint(data.scaffolds[i] for i in held)
    assert len(held) >= 0.25 * len(data.x) - 1
    assert "c1ccccc1" in {data.scaffolds[i] for i in kept}  # the largest groups stay on the training side
    again = split_molecules(data, "scaffold", 0.25)
    assert all(np.array_equal(a, b) for a, b in zip((kept, held), again))


def test_split_helpers():
    kept, held = random_split(20, 0.25, seed=3)
    assert len(held) == 5 and np.array_equal(np.sort(np.concatenate([kept, held])), np.arange(20))
    assert np.array_equal(random_split(20, 0.25, seed=3)[1], held)
    assert not np.array_equal(random_split(20, 0.25, seed=4)[1], held)
    kept, held = scaffold_split(["a", "a", "a", "b", "b", "c", "d"], 0.4)  # training part: at most 4.2 molecules
    assert kept.tolist() == [0, 1, 2, 5] and held.tolist() == [3, 4, 6]  # b does not fit, the smaller c does
    with pytest.raises(ValueError, match="leaves one side empty"):
        scaffold_split(["a"] * 5, 0.2)


def test_bad_smiles_file_names_file_and_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("smiles,A\nCCO,1\nCCC,2\n")
    with pytest.raises(ValueError, match=r"t.csv, line 3: task A: label '2' is not 0, 1 or missing"):
        read_smiles_table(path)
    path.write_text("molecule,A\nCCO,1\n")
    with pytest.raises(ValueError, match="header names no 'smiles' column"):
        read_smiles_table(path)


@needs_rdkit
def test_train_and_evaluate_tox21_on_a_small_smiles_file(tmp_path, cache, capsys):
    from minisnn.cli import main

    write_csv(tmp_path / "tox21" / "tox21.csv")
    common = ["--data-root", str(tmp_path), "--width", "8", "--depth", "2", "--batch-size", "8", "--holdout", "0.25",
              "--backend", "numpy", "--threads", "1"]
    assert main(["train", "--data", "tox21", *common, "--epochs", "2", "--save", str(tmp_path / "m.npz")]) == 0
    captured = capsys.readouterr()
    assert "data tox21: 20 training samples, 2265 features, task multitask (2 outputs), 6 test samples" in captured.out
    assert "roc_auc_A" in captured.out and "2 SMILES RDKit cannot parse were skipped" in captured.err
    assert main(["evaluate", str(tmp_path / "m.npz"), "--data-root", str(tmp_path)]) == 0
    assert "tox21 test split (6 samples)" in capsys.readouterr().out
    assert main(["train", "--data", "tox21:scaffold", *common, "--epochs", "1", "--quiet"]) == 0
    assert "test (" in capsys.readouterr().out
    assert main(["train", "--data", "tox21:B", *common, "--epochs", "1", "--quiet"]) == 0  # one task
    captured = capsys.readouterr()
    assert "roc_auc" in captured.out and "2 SMILES RDKit cannot parse were skipped" in captured.err


def test_registry_finds_the_smiles_file_and_names_both_forms(tmp_path):
    from minisnn.data import DataNotFound
    from minisnn.data.registry import dataset_statuses, tox21_source

    with pytest.raises(DataNotFound, match="DeepTox files .* or the SMILES file tox21.csv"):
        tox21_source(tmp_path)
    path = write_csv(tmp_path / "tox21" / "tox21.csv")
    assert tox21_source(tmp_path) == ("smiles", path)
    status = {entry.name: entry for entry in dataset_statuses(tmp_path)}["tox21"]
    assert status.present and status.note == "SMILES: features from RDKit"


@needs_rdkit
def test_harness_protocol_reads_the_smiles_file(tmp_path, cache):
    from minisnn.experiments import TrialSpec, run_trial
    from minisnn.experiments.protocols import load_split

    write_csv(tmp_path / "tox21" / "tox21.csv")
    protocol = {"name": "holdout", "val_fraction": 0.2, "split": "scaffold", "test_fraction": 0.25, "bits": 64}
    split = load_split("tox21", protocol, 0, tmp_path)
    assert split.task.task_names == ["A", "B"] and split.notes["split"] == "scaffold"
    assert split.x_train.shape[1] == 64 + len(molecular_descriptors([])[0])
    assert len(split.x_train) + len(split.x_val) + len(split.x_test) == len(MOLECULES) - 2
    assert np.isnan(split.y_train).any() or np.isnan(split.y_val).any() or np.isnan(split.y_test).any()
    with pytest.raises(ValueError, match="unknown: fold"):
        load_split("tox21", {"name": "holdout", "fold": 1}, 0, tmp_path)
    with pytest.raises(ValueError, match="unknown Tox21 split 'cluster'"):
        load_split("tox21", {"name": "holdout", "split": "cluster", "bits": 64}, 0, tmp_path)
    spec = TrialSpec("tox21", {**protocol, "split": "random"}, "snn", {"width": 8, "depth": 2, "lr": 0.05},
                     {"epochs": 2, "batch_size": 8})
    record = run_trial(spec, str(tmp_path))
    assert record["status"] == "ok" and {"roc_auc", "roc_auc_A"} <= set(record["test"])
    assert json.dumps(record["data"]["features"]) == json.dumps({"radius": 2, "bits": 64, "descriptors": True})


@needs_rdkit
@pytest.mark.skipif(not SHARED_TOX21.is_file(), reason="needs ../shared/data/tox21/tox21.csv")
def test_moleculenet_tox21_file_reads_and_parses():
    smiles, tasks, targets, lines = read_smiles_table(SHARED_TOX21)
    assert len(smiles) == 7831 and len(tasks) == 12 and lines[0] == 2
    labelled = dict(zip(tasks, (~np.isnan(targets)).sum(axis=0).tolist()))
    positives = dict(zip(tasks, np.nansum(targets, axis=0).astype(int).tolist()))
    assert labelled["NR-AR"] == 7265 and labelled["SR-MMP"] == 5810
    assert positives["NR-PPAR-gamma"] == 186 and positives["SR-ARE"] == 942
    _, unparsed = parse_smiles(smiles)
    assert len(unparsed) == 8 and unparsed[0] + 2 == 1324  # line 1324 is the first RDKit rejects


@needs_rdkit
def test_tox21_study_script_writes_the_table_and_reruns_without_training(tmp_path, cache):
    import importlib.util as loader

    pytest.importorskip("matplotlib")
    script = Path(__file__).resolve().parents[1] / "bench" / "paper" / "tox21.py"
    spec = loader.spec_from_file_location("tox21_study", script)
    study = loader.module_from_spec(spec)
    spec.loader.exec_module(study)
    write_csv(tmp_path / "tox21" / "tox21.csv", MOLECULES * 2)  # every scaffold group twice: 52 rows
    args = ["--data-root", str(tmp_path), "--grid", "tiny", "--depths", "2", "--methods", "snn,batchnorm",
            "--epochs", "2", "--bits", "32", "--backend", "numpy", "--store", str(tmp_path / "s.sqlite"),
            "--out", str(tmp_path / "out")]
    assert study.main(args) == 0
    table = (tmp_path / "out" / "tox21.md").read_text()
    assert "## scaffold split" in table and "| 2 | " in table and "a reference, not a target" in table
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["trials"] == 8 and run["trials_run"] == 8 and len(run["rows"]) == 4  # 2 lrs each, one selected
    assert (tmp_path / "out" / "tox21.png").stat().st_size > 0
    assert study.main(args) == 0
    assert json.loads((tmp_path / "out" / "run.json").read_text())["trials_run"] == 0  # the store has them all

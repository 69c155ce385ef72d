"""Molecular features from SMILES with RDKit (the optional extra `chem`), and splits of molecules.

- Morgan fingerprints (ECFP: radius 2 is ECFP4) as 0/1 bit vectors of `bits` bits;
- RDKit's 2-D descriptors (rdkit.Chem.Descriptors, about 200 per molecule). A value RDKit gives
  as NaN or infinite is replaced by 0 and counted per descriptor (MoleculeFeatures.nonfinite);
  the descriptors in LOG_SCALED, whose values span many orders of magnitude (Ipc reaches 1e15
  on Tox21 and overflows float32 once squared), enter as log1p(value);
- Bemis-Murcko scaffolds (the ring systems and the chains linking them, chirality ignored; ""
  for a molecule without rings);
- random_split (seeded) and scaffold_split (whole scaffold groups, largest first, stay together).

A SMILES that RDKit cannot parse is skipped and its row reported (MoleculeFeatures.unparsed).
Nothing here imports RDKit until a function needs it; without it the error names the extra.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RDKIT_HINT = 'molecular features need RDKit: pip install "minisnn[chem]"'
LOG_SCALED = ("Ipc",)
SHOWN_ROWS = 5  # unparsed rows named in a report


def import_rdkit():
    """The rdkit package (its RDKit log silenced), or ImportError naming the extra to install."""
    try:
        import rdkit
        from rdkit import RDLogger
    except ImportError as exc:
        raise ImportError(f"{RDKIT_HINT} ({exc})") from exc
    RDLogger.DisableLog("rdApp.*")
    return rdkit


def rdkit_version() -> str:
    return import_rdkit().__version__


@dataclass(frozen=True)
class FeatureSettings:
    """Which features to compute: a Morgan fingerprint of `radius` and `bits` (bits 0: none) and
    whether to append the RDKit 2-D descriptors."""

    radius: int = 2
    bits: int = 2048
    descriptors: bool = True

    def __post_init__(self):
        for name in ("radius", "bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"fingerprint {name} must be an integer >= 0, got {value!r}")
        if not isinstance(self.descriptors, bool):
            raise ValueError(f"descriptors must be true or false, got {self.descriptors!r}")
        if self.bits == 0 and not self.descriptors:
            raise ValueError("no features: fingerprint bits 0 and descriptors off")

    def config(self) -> dict:
        return {"radius": int(self.radius), "bits": int(self.bits), "descriptors": self.descriptors}


@dataclass
class MoleculeFeatures:
    """x (N, D) float64 for the N parsed molecules; rows (N,) their 0-based positions in the input
    list; scaffolds their Bemis-Murcko scaffold SMILES; unparsed the 0-based positions RDKit could
    not parse; nonfinite descriptor name -> how many NaN or infinite values were replaced by 0."""

    x: np.ndarray
    rows: np.ndarray
    feature_names: list[str]
    scaffolds: list[str]
    unparsed: list[int]
    nonfinite: dict[str, int] = field(default_factory=dict)
    rdkit: str = ""

    def report(self, row_name=lambda row: f"row {row + 1}") -> list[str]:
        """One line per problem: the unparsed molecules (count, the first few named by row_name)
        and the descriptors with non-finite values."""
        lines = []
        if self.unparsed:
            shown = ", ".join(row_name(row) for row in self.unparsed[:SHOWN_ROWS])
            more = f" and {len(self.unparsed) - SHOWN_ROWS} more" if len(self.unparsed) > SHOWN_ROWS else ""
            lines.append(f"{len(self.unparsed)} SMILES RDKit cannot parse were skipped: {shown}{more}")
        if self.nonfinite:
            counts = ", ".join(f"{name} {count}" for name, count in sorted(self.nonfinite.items()))
            lines.append(f"non-finite descriptor values replaced by 0: {counts}")
        return lines


def parse_smiles(smiles: list[str]) -> tuple[list, list[int]]:
    """(RDKit molecules of the parsable SMILES, in order; 0-based positions of the others)."""
    from rdkit import Chem

    import_rdkit()
    molecules, unparsed = [], []
    for position, text in enumerate(smiles):
        molecule = Chem.MolFromSmiles(text) if text.strip() else None
        if molecule is None:
            unparsed.append(position)
        else:
            molecules.append(molecule)
    return molecules, unparsed


def morgan_fingerprints(molecules: list, radius: int = 2, bits: int = 2048) -> np.ndarray:
    """(N, bits) float64 of 0 and 1: the hashed Morgan fingerprint (ECFP2r) of each molecule."""
    from rdkit.Chem import rdFingerprintGenerator

    import_rdkit()
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    out = np.zeros((len(molecules), bits), dtype=np.float64)
    for row, molecule in enumerate(molecules):
        out[row] = generator.GetFingerprintAsNumPy(molecule)
    return out


def molecular_descriptors(molecules: list) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """(names, values (N, K) float64, non-finite counts by name) of RDKit's 2-D descriptors;
    non-finite values are 0, LOG_SCALED descriptors log1p of their value."""
    from rdkit.Chem import Descriptors

    import_rdkit()
    functions = list(Descriptors._descList)
    names = [name for name, _ in functions]
    values = np.empty((len(molecules), len(functions)), dtype=np.float64)
    with np.errstate(all="ignore"):
        for row, molecule in enumerate(molecules):
            for column, (_, function) in enumerate(functions):
                try:
                    values[row, column] = function(molecule)
                except (ValueError, ZeroDivisionError, OverflowError, RuntimeError):
                    values[row, column] = np.nan
        bad = ~np.isfinite(values)  # (N, K)
        values[bad] = 0.0
        for name in LOG_SCALED:
            if name in names:
                column = names.index(name)
                values[:, column] = np.sign(values[:, column]) * np.log1p(np.abs(values[:, column]))
    counts = {names[column]: int(count) for column, count in enumerate(bad.sum(axis=0)) if count}
    return names, values, counts


def murcko_scaffolds(molecules: list) -> list[str]:
    """The Bemis-Murcko scaffold of each molecule as canonical SMILES ("" without rings)."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    import_rdkit()
    return [MurckoScaffold.MurckoScaffoldSmiles(mol=molecule, includeChirality=False) for molecule in molecules]


def featurize(smiles: list[str], settings: FeatureSettings = FeatureSettings()) -> MoleculeFeatures:
    """The features `settings` names for every parsable SMILES (module doc)."""
    molecules, unparsed = parse_smiles(smiles)
    unparsed_set = set(unparsed)
    rows = np.array([row for row in range(len(smiles)) if row not in unparsed_set], dtype=np.int64)  # (N,)
    blocks, names, nonfinite = [], [], {}
    if settings.bits:
        blocks.append(morgan_fingerprints(molecules, settings.radius, settings.bits))
        names += [f"morgan{settings.radius}_{bit}" for bit in range(settings.bits)]
    if settings.descriptors:
        descriptor_list, values, nonfinite = molecular_descriptors(molecules)
        blocks.append(values)
        names += descriptor_list
    x = np.concatenate(blocks, axis=1)  # (N, D); FeatureSettings asks for at least one block
    return MoleculeFeatures(x, rows, names, murcko_scaffolds(molecules), unparsed, nonfinite, rdkit_version())


def random_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) sorted indices of range(n): a seeded random round(fraction * n) held out."""
    held = int(round(fraction * n))
    if not 0 < held < n:
        raise ValueError(f"holding out {fraction} of {n} molecules leaves one side empty")
    order = np.random.default_rng(seed).permutation(n)  # (n,)
    return np.sort(order[held:]), np.sort(order[:held])


def scaffold_split(scaffolds: list[str], fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) sorted indices: molecules grouped by scaffold, groups taken largest first
    (ties: the group seen first) into the kept part while it stays within (1 - fraction) of all,
    every other group held out. No scaffold lies on both sides; the held-out part is the rarer
    chemistry (the MoleculeNet / DeepChem scaffold split)."""
    n = len(scaffolds)
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must lie in (0, 1), got {fraction}")
    groups: dict[str, list[int]] = {}
    for index, scaffold in enumerate(scaffolds):
        groups.setdefault(scaffold, []).append(index)
    ordered = sorted(groups.values(), key=lambda members: (-len(members), members[0]))
    cutoff = (1.0 - fraction) * n
    kept: list[int] = []
    held: list[int] = []
    for members in ordered:
        (kept if len(kept) + len(members) <= cutoff else held).extend(members)
    if not kept or not held:
        raise ValueError(f"a scaffold split holding out {fraction} of {n} molecules leaves one side empty "
                         f"({len(groups)} scaffolds, the largest of {len(ordered[0])} molecules)")
    return np.array(sorted(kept), dtype=np.int64), np.array(sorted(held), dtype=np.int64)

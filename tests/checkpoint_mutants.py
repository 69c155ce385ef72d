"""A seeded corpus of damaged and edited checkpoints, and how a minisnn loads each of them.

Classes of mutant (made from checkpoints the minisnn under test saves itself):
    byte flip, truncation, zip structure    damage to the file (a disk, a copy, a transfer)
    header edit / delete / add, array edit  hand edits that leave the checksums as they were
    resealed header edit, resealed array    the same edits with every checksum recomputed (a
                                            deliberate editor): these test the field checks
    memory                                  small files declaring huge sizes (zip bombs, shapes)
Outcomes: "error" (a ValueError naming the file), "same" (loads to exactly the original
model, optimizer and meta), "changed" (loads to something else), "unclear" (a ValueError not
naming the file), "traceback" (any other exception). The property minisnn keeps: unsealed
mutants are "error" or "same"; no mutant gives "unclear" or "traceback".

Run as a script to print the outcome table of the minisnn on sys.path (e.g. an old checkout's
PYTHONPATH), the memory class under a 3 GiB address-space limit: `python tests/checkpoint_mutants.py
[--seeds N] [-v]` (N corpora of seeds 12, 13, ...; -v lists the mutants that did not give an error).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import struct
import sys
import tempfile
import warnings
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

HEADER_MEMBER = "header.json.npy"
HASH_KEY = "header_sha256"
BOMB_BYTES = 4 << 30  # what a memory mutant's member decompresses to, or its arrays declare


class Mutant(NamedTuple):
    kind: str
    name: str
    data: bytes
    base: int  # index of the checkpoint it was made from


# ---- the original checkpoints ------------------------------------------------------------------
def base_checkpoints(folder: Path) -> list[bytes]:
    """Two small trained checkpoints: SGD with momentum in float32, AdamW in float64, with meta."""
    from minisnn import SGD, get_backend, mlp, save_checkpoint, train_step
    from minisnn.losses import SoftmaxCrossEntropy
    from minisnn.optim import AdamW, Schedule

    rng = np.random.default_rng(0)
    meta = {"data": "synthetic", "seed": 0, "holdout": 0.2, "validation": 0.1, "epochs_done": 2, "best_epoch": None,
            "task": {"task": "classification", "n_classes": 3}, "class_labels": ["cat", "dog", "emu"],
            "standardizer": {"mean": rng.standard_normal(5).tolist(), "scale": (1 + rng.random(5)).tolist()}}
    out = []
    optimizers = {"float32": lambda m: SGD(m, lr=0.05, momentum=0.9, schedule=Schedule("cosine", total_steps=9)),
                  "float64": lambda m: AdamW(m, lr=1e-2, weight_decay=0.1)}
    for dtype, make in optimizers.items():
        be = get_backend("numpy", dtype=dtype)
        model = mlp(5, 3, depth=2, width=8, dropout=0.1, backend=be, seed=1)
        optimizer = make(model)
        loss = SoftmaxCrossEntropy(be)
        for _ in range(2):
            train_step(model, loss, optimizer, be.asarray(rng.standard_normal((16, 5))), rng.integers(0, 3, 16))
        path = save_checkpoint(folder / f"base-{dtype}.npz", model, optimizer, meta=meta)
        out.append(path.read_bytes())
    return out


def method_checkpoints(folder: Path) -> list[bytes]:
    """One small trained checkpoint per network of minisnn.METHODS (normalization layers with running
    statistics, weight normalization, highway and residual blocks), float64, SGD with momentum."""
    from minisnn import METHODS, SGD, build_model, get_backend, save_checkpoint, train_step
    from minisnn.losses import SoftmaxCrossEntropy

    rng = np.random.default_rng(1)
    be = get_backend("numpy", dtype="float64")
    out = []
    for method in METHODS:
        model = build_model(method, 5, 3, depth=2, width=6, backend=be, seed=2)
        optimizer = SGD(model, lr=0.01, momentum=0.5)
        train_step(model, SoftmaxCrossEntropy(be), optimizer, rng.standard_normal((8, 5)), rng.integers(0, 3, 8))
        out.append(save_checkpoint(folder / f"{method}.npz", model, optimizer).read_bytes())
    return out


# ---- packing -----------------------------------------------------------------------------------
def unpack(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return json.loads(arrays.pop("header.json").tobytes()), arrays


def _record(array: np.ndarray) -> dict[str, Any]:
    return {"shape": list(array.shape), "dtype": array.dtype.name,
            "sha256": hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()}


def pack(header: dict[str, Any], arrays: dict[str, np.ndarray], reseal_arrays: bool = False,
         reseal_header: bool = False, compression: int = zipfile.ZIP_STORED) -> bytes:
    """An .npz of header and arrays; resealing recomputes the array records and the header's hash
    (SHA-256 of json.dumps(header without its hash, sort_keys=True), as docs/CHECKPOINTS.md says)."""
    header = copy.deepcopy(header)
    if reseal_arrays:
        header["arrays"] = {name: _record(a) for name, a in arrays.items()}
    if reseal_header and isinstance(header, dict) and HASH_KEY in header:
        rest = {k: v for k, v in header.items() if k != HASH_KEY}
        header[HASH_KEY] = hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        members = {"header.json": np.frombuffer(json.dumps(header, sort_keys=True).encode(), np.uint8), **arrays}
        for name, array in members.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


# ---- JSON edits ----------------------------------------------------------------------------------
def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (the root excluded)."""
    out = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        out.append(prefix + (key,))
        out += _paths(item, prefix + (key,))
    return out


def _get(value: Any, path: tuple) -> Any:
    for key in path:
        value = value[key]
    return value


def _replacements(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value, int(value), None, str(value).lower()]
    if isinstance(value, int):
        return [value + 1, value - 1, -1, 0, 2 * value + 3, float(value), 2**31, str(value), None, True, [value]]
    if isinstance(value, float):
        return [float("nan"), float("inf"), -float("inf"), -value, 0.0, 1e308, np.nextafter(value, np.inf).item(),
                value * 1.5, int(value), str(value), None]
    if isinstance(value, str):
        return ["", value + "x", value.upper(), value[::-1], 0, None, [value]]
    if value is None:
        return [0, 0.5, "", {}, [], True]
    if isinstance(value, list):
        return [value[:-1], value + value[-1:], value[::-1], [], {}, None]
    return [{}, [], None, {"type": "Linear"}, "x"]


def header_edits(header: dict[str, Any], rng: np.random.Generator, kind: str) -> tuple[str, dict[str, Any]]:
    """One random edit of a copy of the header: "edit" a value, "delete" a key or "add" one."""
    header = copy.deepcopy(header)
    paths = _paths(header)
    if kind == "add":
        dicts = [()] + [p for p in paths if isinstance(_get(header, p), dict)]
        where = dicts[rng.integers(len(dicts))]
        key = ["extra", "alpha", "lam", "d_out", "type", "step", "dropout", "mean", "n_classes"][rng.integers(9)]
        value = [1, -1, 0.5, float("nan"), "x", None, [1], {}][rng.integers(8)]
        if key in _get(header, where):
            key = key + "_2"
        _get(header, where)[key] = value
        return f"add {'/'.join(map(str, where + (key,)))}={value!r}", header
    if kind == "delete":
        keys = [p for p in paths if isinstance(_get(header, p[:-1]), dict)]
        path = keys[rng.integers(len(keys))]
        del _get(header, path[:-1])[path[-1]]
        return f"delete {'/'.join(map(str, path))}", header
    path = paths[rng.integers(len(paths))]
    options = _replacements(_get(header, path))
    value = options[rng.integers(len(options))]
    _get(header, path[:-1])[path[-1]] = value
    return f"edit {'/'.join(map(str, path))}={json.dumps(value)[:40]}", header


def array_edits(arrays: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[str, dict[str, np.ndarray]]:
    arrays = dict(arrays)
    names = sorted(arrays)
    name = names[rng.integers(len(names))]
    a = arrays[name]
    kind = ["value", "ulp", "nan", "swap", "dtype", "shape", "delete", "add", "rename"][rng.integers(9)]
    if kind in ("value", "ulp", "nan") and a.size:
        b = a.copy().reshape(-1)
        i = rng.integers(b.size)
        if kind == "value" or b.dtype.kind != "f":
            b[i] += 1
        else:
            b[i] = np.nan if kind == "nan" else np.nextafter(b[i], np.inf)
        arrays[name] = b.reshape(a.shape)
    elif kind == "swap":
        same = [n for n in names if n != name and arrays[n].shape == a.shape] or [n for n in names if n != name]
        other = same[rng.integers(len(same))]
        arrays[name], arrays[other] = arrays[other], a
        name = f"{name}<->{other}"
    elif kind == "dtype":
        arrays[name] = a.astype({"f": np.float16 if a.dtype == np.float32 else np.float32}.get(a.dtype.kind, np.int32))
    elif kind == "shape":
        arrays[name] = a.reshape(-1)[::-1].copy() if a.ndim != 1 else a.reshape(1, -1)
    elif kind == "delete":
        del arrays[name]
    elif kind == "add":
        arrays[name + "x"] = a.copy()
    else:
        arrays[name.replace("/", "/x", 1)] = arrays.pop(name)
    return f"{kind} {name}", arrays


# ---- byte-level damage -------------------------------------------------------------------------
def _header_range(data: bytes) -> tuple[int, int]:
    """Byte range of the header member's data in the file."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(HEADER_MEMBER)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    return start, start + info.compress_size


def zip_structure_damage(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """Damage to a zip record (local header, central directory, end record), or garbage around it."""
    records = [(m, sig) for sig in (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06")
               for m in range(len(data)) if data.startswith(sig, m)]
    choice = rng.integers(6)
    if choice == 0:
        return "garbage appended", data + bytes(rng.integers(0, 256, 64, dtype=np.uint8))
    if choice == 1:
        return "garbage prepended", bytes(rng.integers(0, 256, 64, dtype=np.uint8)) + data
    offset, signature = records[rng.integers(len(records))]
    field = int(rng.integers(4, 30 if signature != b"PK\x01\x02" else 46))
    width = int(rng.choice([1, 2, 4]))
    value = [0, 0xFF, 0x7F, int(rng.integers(0, 2**31))][rng.integers(4)]
    damaged = bytearray(data)
    damaged[offset + field : offset + field + width] = (value % (1 << 8 * width)).to_bytes(width, "little")
    return f"{signature!r} at {offset}, bytes {field}..{field + width} = {value}", bytes(damaged)


def bit_flip(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    start, stop = _header_range(data)
    offset = int(rng.integers(start, stop) if rng.random() < 0.5 else rng.integers(len(data)))
    damaged = bytearray(data)
    damaged[offset] ^= 1 << int(rng.integers(8))
    return f"bit flip at {offset}{' (header)' if start <= offset < stop else ''}", bytes(damaged)


# ---- memory ------------------------------------------------------------------------------------
def _deflated_zeros(count: int) -> bytes:
    """A raw deflate stream of `count` zero bytes (count a multiple of 1 MiB), made in milliseconds."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * (count >> 20) + compressor.flush()


def _npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                   "shape": shape})
    return buffer.getvalue()


def with_bomb(data: bytes, member: str, npy_shape: tuple[int, ...], npy_dtype: str, declared_size: int | None = None
              ) -> bytes:
    """The checkpoint with `member` replaced by a deflated .npy of `npy_shape` whose data is BOMB_BYTES
    zeros; the zip directory declares `declared_size` bytes (default: the true size). The CRC is left 0:
    a reader that checks sizes first never reaches it."""
    prefix = _npy_header(npy_shape, npy_dtype)
    stream = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = stream.compress(prefix) + stream.flush(zlib.Z_FULL_FLUSH) + _deflated_zeros(BOMB_BYTES)
    size = len(prefix) + BOMB_BYTES if declared_size is None else declared_size
    out = io.BytesIO()
    central = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [(info.filename, archive.read(info.filename)) for info in archive.infolist()]
    for name, content in members:
        offset = out.tell()
        raw_name = name.encode()
        if name == member:
            method, body, crc, full = 8, payload, 0, size
        else:
            method, body, crc, full = 0, content, zlib.crc32(content), len(content)
        extra = struct.pack("<HHQQ", 1, 16, full, len(body))  # zip64 sizes
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, method, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                              len(raw_name), len(extra)) + raw_name + extra + body)
        extra = struct.pack("<HHQQQ", 1, 24, full, len(body), offset)
        central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 45, 45, 0, method, 0, 0, crc, 0xFFFFFFFF,
                                   0xFFFFFFFF, len(raw_name), len(extra), 0, 0, 0, 0, 0xFFFFFFFF)
                       + raw_name + extra)
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    end64 = out.tell()
    out.write(struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, len(central), len(central),
                          len(directory), start))
    out.write(struct.pack("<4sLQL", b"PK\x06\x07", 0, end64, 1))
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
    return out.getvalue()


def memory_mutants(data: bytes, base: int) -> list[Mutant]:
    """Small files that declare huge sizes: zip bombs, absurd shapes in the header and the config."""
    header, arrays = unpack(data)
    weight = next(name for name in sorted(arrays) if name.startswith("param/") and arrays[name].ndim == 2)
    shape, dtype = arrays[weight].shape, arrays[weight].dtype.name
    huge = (BOMB_BYTES // 4,)
    mutants = [
        ("bomb: a weight's .npy declares 4 GiB", with_bomb(data, weight + ".npy", huge, "float32")),
        ("bomb: the header's .npy declares 4 GiB", with_bomb(data, HEADER_MEMBER, (BOMB_BYTES,), "uint8")),
        ("bomb: true .npy shape, the zip directory says 4 GiB", with_bomb(data, weight + ".npy", shape, dtype)),
        ("bomb: true sizes declared, 4 GiB of data follow", with_bomb(data, weight + ".npy", shape, dtype,
                                                                      len(_npy_header(shape, dtype))
                                                                      + arrays[weight].nbytes)),
    ]
    absurd = copy.deepcopy(header)
    absurd["arrays"][weight]["shape"] = [2**40, 2**40]
    mutants.append(("header records a weight of 2^40 x 2^40", pack(absurd, arrays, reseal_header=True)))
    big_layer = copy.deepcopy(header)
    big_layer["model"]["layers"][0]["d_out"] = 2**31
    mutants.append(("config: the first layer 2^31 wide", pack(big_layer, arrays, reseal_header=True)))
    big_input = copy.deepcopy(header)
    big_input["model"]["n_inputs"] = big_input["model"]["layers"][0]["d_in"] = 10**9
    mutants.append(("config: 10^9 inputs", pack(big_input, arrays, reseal_header=True)))
    mutants.append(("a .npy file (np.save) instead of an .npz", _npy_header(huge, "float32") + bytes(64)))
    return [Mutant("memory", name, content, base) for name, content in mutants]


# ---- the corpus --------------------------------------------------------------------------------
CORPUS_SIZES = {"byte flip": 160, "truncation": 30, "zip structure": 40, "header edit": 90, "header delete": 30,
                "header add": 30, "array edit": 40, "resealed header edit": 90, "resealed header delete": 30,
                "resealed header add": 30, "resealed array edit": 40}


def corpus(bases: list[bytes], seed: int = 12, sizes: dict[str, int] | None = None, memory: bool = True
           ) -> list[Mutant]:
    """The seeded corpus: `sizes` (default CORPUS_SIZES) mutants per class, alternating between the base
    checkpoints, then the memory class."""
    rng = np.random.default_rng(seed)
    mutants = []
    for kind, count in (sizes or CORPUS_SIZES).items():
        for i in range(count):
            base = i % len(bases)
            data = bases[base]
            if kind == "byte flip":
                name, content = bit_flip(data, rng)
            elif kind == "truncation":
                cut = int(rng.integers(len(data)))
                name, content = f"first {cut} of {len(data)} bytes", data[:cut]
            elif kind == "zip structure":
                name, content = zip_structure_damage(data, rng)
            else:
                header, arrays = unpack(data)
                sealed = kind.startswith("resealed")
                if kind.endswith("array edit"):
                    name, arrays = array_edits(arrays, rng)
                else:
                    name, header = header_edits(header, rng, kind.split()[-1])
                content = pack(header, arrays, reseal_arrays=sealed and kind.endswith("array edit"),
                               reseal_header=sealed)
            mutants.append(Mutant(kind, name, content, base))
    for base, data in enumerate(bases if memory else []):
        mutants += memory_mutants(data, base)
    return mutants


# ---- outcomes ------------------------------------------------------------------------------------
def fingerprint(model, optimizer, meta) -> str:
    """Everything a load produces, as one comparable string."""
    parts = [json.dumps(model.config(), sort_keys=True), json.dumps(meta, sort_keys=True)]
    parts += [f"{name}:{a.dtype}:{a.shape}:{hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}"
              for name, a in sorted(model.state_arrays().items())]
    if optimizer is not None:
        parts += [json.dumps(optimizer.config(), sort_keys=True), str(optimizer.step_count)]
        parts += [f"{name}:{hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}"
                  for name, a in sorted(optimizer.state_arrays().items())]
    return "\n".join(parts)


def outcome(path: Path, load: Callable, original: str) -> tuple[str, str]:
    """(outcome, detail) of loading path with load(path) -> (model, optimizer, meta)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = load(path)
    except ValueError as exc:
        return ("error" if str(path) in str(exc) else "unclear"), str(exc)
    except Exception as exc:  # noqa: BLE001 - classifying every failure is the point
        return "traceback", f"{type(exc).__name__}: {exc}"
    return ("same" if fingerprint(*loaded) == original else "changed"), ""


def run(mutants: list[Mutant], originals: list[str], folder: Path) -> list[tuple[Mutant, str, str]]:
    from minisnn.checkpoint import load_training_state

    results = []
    for mutant in mutants:
        path = folder / f"mutant-{len(results)}.npz"
        path.write_bytes(mutant.data)
        results.append((mutant, *outcome(path, load_training_state, originals[mutant.base])))
        path.unlink()
    return results


def table(results: list[tuple[Mutant, str, str]]) -> str:
    kinds = list(dict.fromkeys(m.kind for m, _, _ in results))
    columns = ("error", "same", "changed", "unclear", "traceback")
    lines = [f"{'class':24} {'cases':>5} " + " ".join(f"{c:>9}" for c in columns)]
    for kind in kinds:
        counts = Counter(o for m, o, _ in results if m.kind == kind)
        lines.append(f"{kind:24} {sum(counts.values()):5} " + " ".join(f"{counts[c]:9}" for c in columns))
    return "\n".join(lines)


def main() -> None:
    import resource

    from minisnn.checkpoint import load_training_state

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bases = base_checkpoints(folder)
        originals = []
        for i, data in enumerate(bases):
            (folder / f"o{i}.npz").write_bytes(data)
            originals.append(fingerprint(*load_training_state(folder / f"o{i}.npz")))
        seeds = int(sys.argv[sys.argv.index("--seeds") + 1]) if "--seeds" in sys.argv else 1
        results = [r for seed in range(12, 12 + seeds) for r in run(corpus(bases, seed), originals, folder)]
    print(table(results))
    if "-v" in sys.argv:
        for mutant, result, detail in results:
            if result != "error":
                print(f"{mutant.kind} | {mutant.name} | {result} | {detail[:200]}")


if __name__ == "__main__":
    main()

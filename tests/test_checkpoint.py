"""Checkpoints: bit-exact round trips, resumed training, atomic writes, tampering and mismatches."""

import hashlib
import json
import os
import zipfile

import numpy as np
import pytest

from minisnn import SGD, get_backend, load_model, load_training_state, mlp, save_checkpoint, train_step
from minisnn.checkpoint import HEADER_KEY, CheckpointError, UnhashedHeaderWarning, read_checkpoint
from minisnn.checkpoint_header import header_hash
from minisnn.losses import SoftmaxCrossEntropy
from minisnn.optim import Schedule


_META = {"holdout": 0.2, "seed": 0, "task": {"task": "classification", "n_classes": 3}, "class_labels": ["a", "b", "c"],
         "standardizer": {"mean": [0.5] * 6, "scale": [2.0] * 6}, "epochs_done": 3}


def _trained(tmp_path, dtype="float32", steps=3):
    be = get_backend("numpy", dtype=dtype)
    model = mlp(6, 3, depth=3, width=16, dropout=0.1, shape="conic", backend=be, seed=1)
    opt = SGD(model, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4,
              schedule=Schedule("cosine", total_steps=50))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((steps + 3, 32, 6)), rng.integers(0, 3, (steps + 3, 32))
    loss = SoftmaxCrossEntropy(be)
    for i in range(steps):
        train_step(model, loss, opt, be.asarray(x[i]), be.asarray(y[i]))
    return model, opt, loss, x, y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_bit_exact(tmp_path, dtype):
    model, opt, _, x, _ = _trained(tmp_path, dtype)
    path = save_checkpoint(tmp_path / "m.npz", model, opt)
    loaded = load_model(path)
    assert loaded.config() == model.config()
    for a, b in zip(model.named_parameters(), loaded.named_parameters()):
        assert a.name == b.name and a.value.dtype == b.value.dtype
        np.testing.assert_array_equal(a.value, b.value)
    assert [(n, int(v)) for n, v in loaded.named_buffers()] == [(n, int(v)) for n, v in model.named_buffers()]
    assert all(int(v) == 3 for _, v in loaded.named_buffers())  # every dropout layer drew 3 masks
    np.testing.assert_array_equal(loaded.predict_proba(x[0]), model.predict_proba(x[0]))


def test_resumed_training_continues_exactly(tmp_path):
    model, opt, loss, x, y = _trained(tmp_path)
    path = save_checkpoint(tmp_path / "m.npz", model, opt)
    model2, opt2, meta = load_training_state(path, get_backend("numpy"))
    assert meta == {}
    assert opt2.step_count == opt.step_count and opt2.config() == opt.config()
    loss2 = SoftmaxCrossEntropy(model2.backend)
    for i in range(3, 6):  # dropout masks, velocities and schedule all continue from the saved step
        a = float(train_step(model, loss, opt, model.backend.asarray(x[i]), model.backend.asarray(y[i])))
        b = float(train_step(model2, loss2, opt2, model2.backend.asarray(x[i]), model2.backend.asarray(y[i])))
        assert a == b


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    model, opt, *_ = _trained(tmp_path)
    path = tmp_path / "m.npz"
    save_checkpoint(path, model, opt)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, opt)
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def _rewrite(path, mutate, reseal=True):
    """Rewrite a checkpoint with mutate(header, arrays) applied, bypassing save_checkpoint; resealing
    recomputes the header's own hash (as a deliberate editor would), not the arrays' records."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays.pop(HEADER_KEY).tobytes())
    mutate(header, arrays)
    if reseal and "header_sha256" in header:
        header["header_sha256"] = header_hash(header)
    arrays[HEADER_KEY] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def _sha256(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.mark.parametrize("mutate, message", [
    (lambda h, a: a.__setitem__("param/0.W", a["param/0.W"] + 1), "does not match its SHA-256"),
    (lambda h, a: h.__setitem__("format_version", 99), "format version 99 is not supported"),
    (lambda h, a: h.__setitem__("format", "other"), "header format is 'other'"),
    (lambda h, a: a.pop("param/0.b"), r"arrays do not match the header \(missing \['param/0.b'\]"),
    (lambda h, a: a.__setitem__("evil", np.zeros(2)), r"unexpected \['evil'\]"),
    (lambda h, a: h["model"]["layers"][0].__setitem__("d_out", 7),
     r"param/0.W has shape \(6, 16\), the model needs \(6, 7\)"),
    (lambda h, a: h["model"]["layers"][0].__setitem__("type", "Conv2D"), "unknown layer type 'Conv2D'"),
    (lambda h, a: h.__setitem__("dtype", "int8"), "dtype 'int8' is not one of"),
    (lambda h, a: a.__setitem__("buffer/0.step", np.array(-1)), "does not match its SHA-256"),
    (lambda h, a: h["arrays"]["buffer/0.step"].update(sha256=_sha256(np.array(-1))) or a.__setitem__(
        "buffer/0.step", np.array(-1)), "buffer/0.step is a counter and must be non-negative"),
    (lambda h, a: h["model"]["layers"].pop(), "missing"),
    (lambda h, a: h["model"]["layers"][1].__setitem__("lam", float("nan")), r"model.layers\[1\].lam is nan"),
    (lambda h, a: h["model"]["layers"][1].__setitem__("alpha", "1.67"),
     r"model.layers\[1\].alpha is \"1.67\" in the file"),
    (lambda h, a: h["model"]["layers"][0].__setitem__("d_in", 6.0),
     r"model.layers\[0\].d_in is 6.0 in the file, but builds as 6"),
    (lambda h, a: h["model"]["layers"][0].__setitem__("seed", -3), r"model.layers\[0\].seed is -3"),
    (lambda h, a: h["optimizer"]["config"].__setitem__("lr", True), r"optimizer.config.lr is true in the file"),
    (lambda h, a: h["optimizer"]["config"].__setitem__("weight_decay", float("inf")), "weight_decay is inf"),
    (lambda h, a: h["optimizer"].__setitem__("step", 2.5), "optimizer.step must be a non-negative integer"),
    (lambda h, a: h["meta"].__setitem__("holdout", 1.5), r"meta.holdout must be a fraction in \[0, 1\)"),
    (lambda h, a: h["meta"].__setitem__("standardizer", {"mean": [0.0] * 6, "scale": [1.0] * 5}),
     "meta.standardizer.scale must be a list of 6 numbers"),
    (lambda h, a: h["meta"].__setitem__("standardizer", {"mean": [0.0] * 6, "scale": [1.0] * 5 + [0.0]}),
     r"meta.standardizer.scale\[5\] is 0.0; it must be a positive finite number"),
    (lambda h, a: h["meta"].__setitem__("class_labels", ["a", "b", "a"]), "meta.class_labels repeats 'a'"),
    (lambda h, a: h["meta"].__setitem__("class_labels", ["a", "b"]), "meta.class_labels must be a list of 3 labels"),
    (lambda h, a: h["meta"].__setitem__("class_labels", ["a", None, 2]), r"meta.class_labels\[1\] is None"),
    (lambda h, a: h["meta"].__setitem__("task", {"task": "classification", "n_classes": 4}),
     r"meta.task needs 4 model outputs \(an integer\), the model has 3"),
    (lambda h, a: h["meta"].__setitem__("epochs_done", -1), "meta.epochs_done must be a non-negative integer"),
    (lambda h, a: h.__setitem__("comment", "hi"), r"unexpected \['comment'\]"),
    (lambda h, a: h["arrays"].pop("optimizer/velocity/0.W") and a.pop("optimizer/velocity/0.W"),
     r"optimizer state arrays do not match the optimizer's \(missing \['velocity/0.W'\], unexpected \[\]\)"),
    (lambda h, a: h["optimizer"]["config"].update(momentum=0.0, nesterov=False),  # then SGD keeps no velocity
     r"missing \[\], unexpected \['velocity/0.W', "),
    (lambda h, a: h["arrays"].__setitem__("evil", h["arrays"]["param/0.b"]) or a.__setitem__("evil", a["param/0.b"]),
     r"arrays \['evil'\] are neither param/, buffer/ nor optimizer/ state"),
    (lambda h, a: h["arrays"].__setitem__("param/9.W", h["arrays"]["param/0.b"]) or a.__setitem__(
        "param/9.W", a["param/0.b"]), r"unexpected \['param/9.W'\]"),
    (lambda h, a: h["arrays"]["param/0.W"].__setitem__("shape", [6, -16]), r"arrays\['param/0.W'\].shape must be"),
    (lambda h, a: h["arrays"]["param/0.W"].__setitem__("dtype", "object"), r"arrays\['param/0.W'\].dtype 'object'"),
])
def test_tampered_or_mismatched_files_give_clear_errors(tmp_path, mutate, message):
    """Edits with the header's hash recomputed: each field's own check names the problem."""
    model, opt, *_ = _trained(tmp_path)
    path = save_checkpoint(tmp_path / "m.npz", model, opt, meta=_META)
    _rewrite(path, mutate)
    with pytest.raises(CheckpointError, match=message) as info:
        load_model(path)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize("mutate", [
    lambda h, a: h["model"]["layers"][1].__setitem__("lam", 1.0),  # a valid model, but not the saved one
    lambda h, a: h["meta"].pop("standardizer"),
    lambda h, a: h["meta"].__setitem__("holdout", 0.3),
    lambda h, a: h["optimizer"]["config"].__setitem__("lr", 0.5),
    lambda h, a: h["model"]["layers"][1].__setitem__("alpha", 1.6732632423543774),  # one ulp
])
def test_any_header_edit_is_detected_by_the_header_hash(tmp_path, mutate):
    model, opt, *_ = _trained(tmp_path)
    path = save_checkpoint(tmp_path / "m.npz", model, opt, meta=_META)
    _rewrite(path, mutate, reseal=False)
    with pytest.raises(CheckpointError, match="the header does not match its header_sha256"):
        load_model(path)


def test_non_checkpoint_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_model(tmp_path / "missing.npz")
    with pytest.raises(CheckpointError, match="not a file"):
        load_model(tmp_path)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match=f"{junk}: not a zip \\(.npz\\) archive"):
        read_checkpoint(junk)
    array = tmp_path / "array.npz"
    np.save(array, np.zeros(3))  # np.save adds .npy to the name
    with pytest.raises(CheckpointError, match="a single .npy array \\(np.save\\), not an .npz archive"):
        load_model(tmp_path / "array.npz.npy")
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a minisnn checkpoint"):
        read_checkpoint(plain)
    model, opt, *_ = _trained(tmp_path)
    path = save_checkpoint(tmp_path / "t.npz", model, opt)
    data = path.read_bytes()
    path.write_bytes(data[:200])  # truncated: the zip directory is lost
    with pytest.raises(CheckpointError, match=f"{path}: not a zip"):
        read_checkpoint(path)
    path.write_bytes(data[:1000] + data[-500:])  # the middle lost: the directory points beyond the file
    with pytest.raises(CheckpointError, match=f"{path}: (member|not a readable zip)"):
        read_checkpoint(path)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "pickle.npz"
    with zipfile.ZipFile(path, "w") as z:
        with z.open(HEADER_KEY + ".npy", "w") as f:
            np.lib.format.write_array(f, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


def test_backend_dtype_must_match(tmp_path):
    model, opt, *_ = _trained(tmp_path, "float32")
    path = save_checkpoint(tmp_path / "m.npz", model, opt)
    with pytest.raises(CheckpointError, match="saved as float32, but the backend is float64"):
        load_model(path, get_backend("numpy", dtype="float64"))


def test_inference_needs_numpy_only(tmp_path):
    model, opt, *_ = _trained(tmp_path)
    path = save_checkpoint(tmp_path / "m.npz", model, opt)
    code = ("import sys; import minisnn; m = minisnn.load_model(sys.argv[1]); import numpy as np; "
            "print(m.predict(np.zeros((2, 6))).tolist()); "
            "bad = [n for n in ('numba', 'cupy', 'scipy', 'matplotlib', 'torch') if n in sys.modules]; "
            "assert not bad, bad")
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                            env={**os.environ, "MINISNN_BACKEND": "numpy"})
    assert result.returncode == 0, result.stderr


def test_adam_state_round_trips_and_training_resumes_exactly(tmp_path):
    from minisnn.optim import AdamW

    be = get_backend("numpy", dtype="float64")
    model = mlp(6, 3, depth=2, width=8, dropout=0.1, backend=be, seed=3)
    opt = AdamW(model, lr=1e-2, weight_decay=0.1)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 16, 6)), rng.integers(0, 3, (6, 16))
    loss = SoftmaxCrossEntropy(be)
    for i in range(3):
        train_step(model, loss, opt, x[i], y[i])
    path = save_checkpoint(tmp_path / "adam.npz", model, opt)
    assert {name.split("/")[1] for name in read_checkpoint(path)[1] if name.startswith("optimizer/")} == {"m", "v"}
    model2, opt2, _ = load_training_state(path)
    assert type(opt2) is AdamW and opt2.config() == opt.config() and opt2.step_count == 3
    loss2 = SoftmaxCrossEntropy(model2.backend)
    for i in range(3, 6):
        assert float(train_step(model, loss, opt, x[i], y[i])) == float(train_step(model2, loss2, opt2, x[i], y[i]))


def test_version_1_checkpoints_still_load(tmp_path):
    """Version 1 kept dropout steps in the header ("layer_state") and velocities as "velocity/<name>"."""
    model, opt, loss, x, y = _trained(tmp_path)
    path = save_checkpoint(tmp_path / "m.npz", model, opt)

    def to_version_1(header, arrays):
        steps = {name: int(arrays.pop(name)) for name in [n for n in arrays if n.startswith("buffer/")]}
        header["layer_state"] = [{"step": steps[f"buffer/{i}.step"]} if f"buffer/{i}.step" in steps else {}
                                 for i in range(len(header["model"]["layers"]))]
        for name in [n for n in arrays if n.startswith("optimizer/")]:
            arrays["velocity/" + name.split("/", 2)[2]] = arrays.pop(name)
        header["format_version"] = 1
        del header["model"]["type"], header["header_sha256"]
        header["optimizer"]["config"].pop("kind")
        header["rng_state"] = {"bit_generator": "PCG64"}  # version 1 kept the backend's RNG state
        header["arrays"] = {name: {"shape": list(a.shape), "dtype": a.dtype.name, "sha256": _sha256(a)}
                            for name, a in arrays.items()}

    _rewrite(path, to_version_1)
    with pytest.warns(UnhashedHeaderWarning, match="format version 1 has no header checksum: its arrays are verified"):
        model2, opt2, _ = load_training_state(path)
    assert [int(v) for _, v in model2.named_buffers()] == [3, 3, 3]
    loss2 = SoftmaxCrossEntropy(model2.backend)
    be = model.backend
    for i in range(3, 5):
        assert float(train_step(model, loss, opt, be.asarray(x[i]), y[i])) == float(
            train_step(model2, loss2, opt2, be.asarray(x[i]), y[i]))


def _to_version_2(header, arrays):
    """Version 2 is version 3 without the header's own hash."""
    del header["header_sha256"]
    header["format_version"] = 2


def test_version_2_checkpoints_still_load_with_their_fields_checked(tmp_path):
    model, opt, *_ = _trained(tmp_path)
    path = save_checkpoint(tmp_path / "m.npz", model, opt, meta=_META)
    _rewrite(path, _to_version_2)
    with pytest.warns(UnhashedHeaderWarning, match="format version 2 has no header checksum"):
        model2, opt2, meta = load_training_state(path)
    assert model2.config() == model.config() and opt2.config() == opt.config() and meta == _META
    for a, b in zip(model.named_parameters(), model2.named_parameters()):
        np.testing.assert_array_equal(a.value, b.value)
    # Without a header hash a valid edit goes unseen (docs/CHECKPOINTS.md), but invalid values do not.
    _rewrite(path, lambda h, a: h["model"]["layers"][1].__setitem__("lam", 1.0))
    with pytest.warns(UnhashedHeaderWarning):
        assert load_model(path).layers[1].lam == 1.0
    _rewrite(path, lambda h, a: h["model"]["layers"][1].__setitem__("lam", float("nan")))
    with pytest.raises(CheckpointError, match=r"model.layers\[1\].lam is nan"):
        load_model(path)


def test_a_version_2_header_cannot_carry_a_hash_it_does_not_check(tmp_path):
    model, opt, *_ = _trained(tmp_path)
    path = save_checkpoint(tmp_path / "m.npz", model, opt)
    _rewrite(path, lambda h, a: h.__setitem__("format_version", 2), reseal=False)
    with pytest.raises(CheckpointError,
                       match=r"wrong for format version 2: missing \[\], unexpected \['header_sha256'\]"):
        load_model(path)


def test_new_checkpoints_are_version_3_with_a_header_hash(tmp_path):
    model, opt, *_ = _trained(tmp_path)
    header, _ = read_checkpoint(save_checkpoint(tmp_path / "m.npz", model, opt))
    assert header["format_version"] == 3
    rest = {k: v for k, v in header.items() if k != "header_sha256"}
    assert header["header_sha256"] == hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def test_meta_must_be_json(tmp_path):
    model, opt, *_ = _trained(tmp_path)
    with pytest.raises(ValueError, match="meta must be JSON-able"):
        save_checkpoint(tmp_path / "m.npz", model, opt, meta={"x": object()})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_checkpoints_get_the_permissions_of_the_umask(tmp_path):
    model, opt, *_ = _trained(tmp_path)
    old = os.umask(0o027)
    try:
        path = save_checkpoint(tmp_path / "m.npz", model, opt)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640


def test_an_interrupted_save_leaves_the_old_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    model, opt, *_ = _trained(tmp_path)
    path = save_checkpoint(tmp_path / "m.npz", model, opt)
    before = path.read_bytes()
    real_write_array = np.lib.format.write_array
    written = []

    def interrupted(handle, array, *args, **kwargs):  # the third array's write is interrupted midway
        written.append(array)
        if len(written) == 3:
            handle.write(b"partial")
            raise KeyboardInterrupt
        return real_write_array(handle, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, opt)
    assert len(written) == 3
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_the_size_a_config_implies_is_bounded_by_the_arrays_the_file_declares():
    from minisnn.checkpoint_header import check_implied_size, implied_elements

    wide = {"type": "Sequential", "n_inputs": 1_500_000,
            "layers": [{"type": "Linear", "d_in": 1_500_000, "d_out": 2, "seed": 2**60},
                       {"type": "LinearSELU", "d_in": 2, "d_out": 2, "dropout": 0.1, "seed": 7}, {"type": "SELU"}]}
    assert implied_elements(wide) == 1_500_000 + 3_000_000 + 4
    check_implied_size(wide, 3_000_000 + 2 + 4 + 2 + 1)  # a real model with many inputs loads
    wide["layers"][0]["d_out"] = wide["layers"][1]["d_in"] = 2**20
    with pytest.raises(ValueError,
                       match="implies about 1,572,867,597,152 array elements, but the file holds 3,000,009"):
        check_implied_size(wide, 3_000_009)
    nested = {"type": "Block", "width": 3, "body": [{"type": "Linear", "d_in": 4, "d_out": 5}], "sizes": [10, 20]}
    assert implied_elements(nested) == 20 * 10 + 4 * 5  # own sizes 3, 10, 20 (lists count); children on their own


@pytest.mark.parametrize("labels, ok", [(["a", "b", "c"], True), ([0, 1, 2], True), ([0.5, "x", 7], True),
                                        ([1, 1.0, 2], False), ([True, False, 2], False), ([1, "1", 2], True),
                                        ([float("inf"), 1, 2], False), ([[1], 2, 3], False)])
def test_class_labels_are_unique_json_scalars(labels, ok):
    from minisnn.checkpoint_header import check_meta

    if ok:
        check_meta({"class_labels": labels}, n_inputs=4, n_outputs=3)
    else:
        with pytest.raises(ValueError, match="meta.class_labels"):
            check_meta({"class_labels": labels}, n_inputs=4, n_outputs=3)

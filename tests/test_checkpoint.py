"""Checkpoints: bit-exact round trips, resumed training, atomic writes, tampering and mismatches."""

import json
import os
import zipfile

import numpy as np
import pytest

from minisnn import SGD, get_backend, load_model, load_training_state, mlp, save_checkpoint, train_step
from minisnn.checkpoint import HEADER_KEY, CheckpointError, read_checkpoint
from minisnn.losses import SoftmaxCrossEntropy
from minisnn.optim import Schedule


def _trained(tmp_path, dtype="float32", steps=3):
    be = get_backend("numpy", dtype=dtype)
    model = mlp(6, 3, depth=3, width=16, dropout=0.1, shape="conic", backend=be, seed=1)
    opt = SGD(model, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4, schedule=Schedule("cosine", total_steps=50))
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


def _rewrite(path, mutate):
    """Rewrite a checkpoint with mutate(header, arrays) applied, bypassing save_checkpoint."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays.pop(HEADER_KEY).tobytes())
    mutate(header, arrays)
    arrays[HEADER_KEY] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize("mutate, message", [
    (lambda h, a: a.__setitem__("param/0.W", a["param/0.W"] + 1), "does not match its SHA-256"),
    (lambda h, a: h.__setitem__("format_version", 99), "format version 99 is not supported"),
    (lambda h, a: h.__setitem__("format", "other"), "header format is 'other'"),
    (lambda h, a: a.pop("param/0.b"), r"arrays do not match the header \(missing \['param/0.b'\]"),
    (lambda h, a: a.__setitem__("evil", np.zeros(2)), r"unexpected \['evil'\]"),
    (lambda h, a: h["model"]["layers"][0].__setitem__("d_out", 7), r"param/0.W has shape \(6, 16\), the model needs \(6, 7\)"),
    (lambda h, a: h["model"]["layers"][0].__setitem__("type", "Conv2D"), "unknown layer type 'Conv2D'"),
    (lambda h, a: h.__setitem__("dtype", "int8"), "dtype 'int8' is not one of"),
    (lambda h, a: a.__setitem__("buffer/0.step", np.array(-1)), "does not match its SHA-256"),
    (lambda h, a: h["arrays"]["buffer/0.step"].update(sha256=__import__("hashlib").sha256(
        np.array(-1).tobytes()).hexdigest()) or a.__setitem__("buffer/0.step", np.array(-1)),
     "buffer/0.step is a counter and must be non-negative"),
    (lambda h, a: h["model"]["layers"].pop(), "missing"),
])
def test_tampered_or_mismatched_files_give_clear_errors(tmp_path, mutate, message):
    model, opt, *_ = _trained(tmp_path)
    path = save_checkpoint(tmp_path / "m.npz", model, opt)
    _rewrite(path, mutate)
    with pytest.raises(CheckpointError, match=message):
        load_model(path)


def test_non_checkpoint_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_model(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="not a readable .npz checkpoint"):
        read_checkpoint(junk)
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a minisnn checkpoint"):
        read_checkpoint(plain)
    model, opt, *_ = _trained(tmp_path)
    path = save_checkpoint(tmp_path / "t.npz", model, opt)
    path.write_bytes(path.read_bytes()[:200])  # truncated
    with pytest.raises(CheckpointError, match="not a readable"):
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
        del header["model"]["type"]
        header["optimizer"]["config"].pop("kind")
        header["arrays"] = {name: {"shape": list(a.shape), "dtype": a.dtype.name,
                                   "sha256": __import__("hashlib").sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}
                            for name, a in arrays.items()}

    _rewrite(path, to_version_1)
    model2, opt2, _ = load_training_state(path)
    assert [int(v) for _, v in model2.named_buffers()] == [3, 3, 3]
    loss2 = SoftmaxCrossEntropy(model2.backend)
    for i in range(3, 5):
        assert float(train_step(model, loss, opt, x[i], y[i])) == float(train_step(model2, loss2, opt2, x[i], y[i]))

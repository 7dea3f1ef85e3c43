"""Checkpoints: round trip, atomic writes, and clear errors on truncated, foreign or mismatched files."""

import json
import os
import zipfile

import numpy as np
import pytest

from fcn_scratch import checkpoint as ckpt
from fcn_scratch.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from fcn_scratch.data import CLASS_NAMES
from fcn_scratch.models import FCN8s, FCN16s

SMALL = dict(widths=(4, 4, 8, 8, 8), convs_per_block=(1, 1, 1, 1, 1), fc_channels=8)


def _model(dtype=np.float32, cls=FCN8s, num_classes=5):
    model = cls(num_classes, dtype=dtype, seed=0, **SMALL)
    rng = np.random.default_rng(1)
    for _, p, _ in model.named_parameters():  # non-trivial values everywhere (score layers start at 0)
        p[...] = rng.standard_normal(p.shape).astype(p.dtype)
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip(tmp_path, dtype):
    model = _model(dtype)
    path = tmp_path / "model.npz"
    training = {"epochs": 3, "seed": 7, "data": {"size": [32, 32]}, "mean_iou": np.float64(0.5)}
    save_checkpoint(path, model, class_names=CLASS_NAMES, training=training)
    loaded, meta = load_checkpoint(path)
    assert type(loaded) is FCN8s and loaded.dtype == np.dtype(dtype)
    assert meta["arch"] == "FCN8s"
    assert meta["class_names"] == list(CLASS_NAMES)
    assert meta["training"] == {"epochs": 3, "seed": 7, "data": {"size": [32, 32]}, "mean_iou": 0.5}
    assert meta["config"]["widths"] == list(SMALL["widths"])
    a, b = model.state_dict(), loaded.state_dict()
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype
        np.testing.assert_array_equal(a[k], b[k])
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(dtype)
    model.eval()
    np.testing.assert_array_equal(model.forward(x), loaded.forward(x))
    assert not loaded.training  # loaded for inference


def test_file_is_plain_npz_without_pickles(tmp_path):
    path = tmp_path / "m.npz"
    save_checkpoint(path, _model())
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data[ckpt.HEADER]))
        assert header["format"] == ckpt.FORMAT and header["arch"] == "FCN8s"
        assert "param/conv1_1.weight" in data.files and "param/upscore8.bias" in data.files
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    good = _model()
    save_checkpoint(path, good, training={"run": 1})
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip file")  # something gets written, then the disk "fills up"
        raise OSError("No space left on device")

    monkeypatch.setattr(ckpt.np, "savez", broken_savez)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(path, _model(), training={"run": 2})
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "fresh.npz", good)
    assert path.read_bytes() == before  # the old checkpoint is untouched
    assert not (tmp_path / "fresh.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temp file left behind
    monkeypatch.undo()
    assert load_checkpoint(path)[1]["training"] == {"run": 1}


def test_truncated_file(tmp_path):
    path = tmp_path / "model.npz"
    save_checkpoint(path, _model())
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 100):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            load_checkpoint(bad)


def test_corrupted_member_is_caught(tmp_path):
    path = tmp_path / "model.npz"
    save_checkpoint(path, _model())
    data = bytearray(path.read_bytes())
    # flip bytes inside the first weight's data (past the header member): the zip CRC check must notice
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("param/conv1_1.weight.npy")
    start = info.header_offset + 30 + len(info.filename) + 200
    data[start : start + 8] = bytes(8)
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(bad)


def test_foreign_files(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, weights=np.zeros(3))
    with pytest.raises(CheckpointError, match="not an fcn_scratch checkpoint"):
        load_checkpoint(plain)
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(CheckpointError, match="not an fcn_scratch checkpoint"):
        load_checkpoint(npy)
    text = tmp_path / "notes.npz"
    text.write_text("hello, I am not a zip file")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(text)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{ckpt.HEADER: np.array([{"evil": 1}], dtype=object)})
    with pytest.raises(CheckpointError, match="truncated or corrupt|pickle"):
        load_checkpoint(pickled)
    other_format = tmp_path / "other.npz"
    np.savez(other_format, **{ckpt.HEADER: np.array(json.dumps({"format": "someone.else"}))})
    with pytest.raises(CheckpointError, match="not an fcn_scratch checkpoint"):
        load_checkpoint(other_format)
    bad_json = tmp_path / "badjson.npz"
    np.savez(bad_json, **{ckpt.HEADER: np.array("{not json")})
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(bad_json)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.npz")


def test_architecture_mismatch(tmp_path):
    path = tmp_path / "liar.npz"
    save_checkpoint(path, _model(), arch="FCN16s")  # FCN-8s weights labelled FCN-16s
    with pytest.raises(CheckpointError, match="does not match FCN16s.*(score_pool3_fr|upscore8|upscore16)"):
        load_checkpoint(path)


def test_shape_mismatch_names_the_key(tmp_path):
    model = _model()
    config = model.config()
    config["num_classes"] = 6
    path = tmp_path / "classes.npz"
    save_checkpoint(path, model, config=config)
    with pytest.raises(CheckpointError, match=r"score_pool3_fr.weight.\] has shape \(5, 8, 1, 1\), expected \(6, 8, 1, 1\)"):
        load_checkpoint(path)


def test_unknown_architecture_and_bad_config(tmp_path):
    path = tmp_path / "unknown.npz"
    save_checkpoint(path, _model(), arch="UNet")
    with pytest.raises(CheckpointError, match="architecture 'UNet'"):
        load_checkpoint(path)
    path = tmp_path / "badconfig.npz"
    save_checkpoint(path, _model(), config={"num_classes": 5, "widths": (1, 2)})
    with pytest.raises(CheckpointError, match="cannot build FCN8s"):
        load_checkpoint(path)


def test_non_finite_weights_are_refused(tmp_path):
    model = _model()
    model.fc6.params["weight"][0, 0, 0, 0] = np.nan
    path = tmp_path / "nan.npz"
    save_checkpoint(path, model)
    with pytest.raises(CheckpointError, match="fc6.weight"):
        read_checkpoint(path)


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(tmp_path / "x.npz", _model(), training={"fn": print})
    assert not any(tmp_path.iterdir())


def test_custom_registry_and_other_model(tmp_path):
    model = _model(cls=FCN16s, num_classes=3)
    path = tmp_path / "m16.npz"
    save_checkpoint(path, model)
    loaded, meta = load_checkpoint(path, registry={"FCN16s": FCN16s})
    assert type(loaded) is FCN16s and loaded.num_classes == 3 and meta["class_names"] is None

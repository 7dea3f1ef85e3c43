"""Weights to PyTorch and back: the seed's classes load the export strictly, and compute the same logits."""

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fcn_scratch.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from fcn_scratch.export import (  # noqa: E402
    ExportError,
    engine_key,
    export_torch,
    import_torch,
    import_torch_checkpoint,
    infer_config,
    torch_key,
)
from fcn_scratch.models import FCN8s, FCN16s, FCN32s  # noqa: E402
from fcn_scratch.torch_ref import CLASSES  # noqa: E402

pytestmark = pytest.mark.torch

CONFIG = dict(widths=(4, 6, 8, 8, 10), convs_per_block=(2, 1, 3, 1, 2), fc_channels=12)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def random_model(cls, dtype, seed=0):
    """Random values in every parameter (fresh score layers are zero, which would hide a mix-up)."""
    model = cls(3, **CONFIG, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    state = {}
    for name, p, _ in model.named_parameters():
        scale = np.sqrt(2.0 / p[0].size) if p.ndim == 4 else 0.1
        state[name] = (rng.standard_normal(p.shape) * scale).astype(dtype)
    model.load_state_dict(state)
    return model.eval()


def seed_class(model):
    cfg = model.config()
    twin = CLASSES[type(model).__name__](cfg["num_classes"], cfg["in_channels"], cfg["widths"],
                                         cfg["convs_per_block"], cfg["fc_channels"])
    return twin.to(torch.float64 if model.dtype == np.float64 else torch.float32).eval()


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("cls", [FCN32s, FCN16s, FCN8s], ids=["32s", "16s", "8s"])
def test_round_trip_same_logits_both_ways(tmp_path, cls, dtype, tol):
    model = random_model(cls, dtype)
    ckpt = save_checkpoint(tmp_path / "model.npz", model, class_names=["a", "b", "c"])
    info = export_torch(ckpt, tmp_path / "model.pt")
    assert info["arch"] == cls.__name__ and info["dtype"] == np.dtype(dtype).name

    twin = seed_class(model)
    sd = torch.load(tmp_path / "model.pt", weights_only=True)
    twin.load_state_dict(sd, strict=True)  # every name and shape the seed class expects, nothing else
    assert list(sd) == list(twin.state_dict())

    x = np.random.default_rng(1).standard_normal((2, 3, 32, 64)).astype(dtype)
    ours = model.forward(x)
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x)).numpy()
    assert theirs.dtype == ours.dtype
    scale = np.abs(ours).max()
    assert scale > 0.1  # random weights: a real signal, not all zeros
    assert np.abs(ours - theirs).max() / scale < tol

    back = import_torch(tmp_path / "model.pt")  # architecture and widths read off the shapes
    assert type(back) is cls and back.dtype == model.dtype
    for (k, a), (k2, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert k == k2 and a.dtype == b.dtype and np.array_equal(a, b)  # bit for bit
    assert np.array_equal(back.forward(x), ours)


def test_names_follow_the_seed():
    assert torch_key("FCN8s", "conv3_2.weight") == "conv3_2.0.weight"
    assert torch_key("FCN8s", "fc6.weight") == "fc6.weight"  # bare Conv2d in 16s / 8s
    assert torch_key("FCN32s", "fc7.bias") == "fc7.0.bias"  # a CBR in 32s
    assert torch_key("FCN8s", "upscore2_pool4.weight") == "upscore2_pool4.weight"
    for key in ("conv1_1.weight", "fc6.bias", "score_pool3_fr.weight", "upscore8.bias"):
        assert engine_key(torch_key("FCN32s", key)) == key


def test_infer_config_reads_the_shapes():
    model = FCN16s(7, in_channels=2, **CONFIG, dtype=np.float64, seed=0)
    arch, config = infer_config(model.state_dict())
    assert arch == "FCN16s"
    assert config == dict(num_classes=7, in_channels=2, widths=CONFIG["widths"],
                          convs_per_block=CONFIG["convs_per_block"], fc_channels=12, dtype="float64")


def test_import_into_a_checkpoint(tmp_path):
    model = random_model(FCN8s, np.float32)
    torch.save({torch_key("FCN8s", k): torch.from_numpy(v) for k, v in model.state_dict().items()},
               tmp_path / "w.pt")
    out = import_torch_checkpoint(tmp_path / "w.pt", tmp_path / "w.npz", class_names=["x", "y", "z"])
    loaded, meta = load_checkpoint(out)
    assert meta["class_names"] == ["x", "y", "z"] and meta["arch"] == "FCN8s"
    assert all(np.array_equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_bad_files_are_refused(tmp_path, capsys):
    with pytest.raises(ExportError, match="not found"):
        import_torch(tmp_path / "none.pt")
    # an arbitrary pickled object: weights_only refuses to build it
    torch.save({"conv1_1.weight": Evil()}, tmp_path / "evil.pt", pickle_module=pickle)
    with pytest.raises(ExportError, match="weights_only"):
        import_torch(tmp_path / "evil.pt")
    assert "must never run" not in capsys.readouterr().out
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(ExportError, match="junk.pt"):
        import_torch(tmp_path / "junk.pt")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(ExportError, match="not a state_dict"):
        import_torch(tmp_path / "list.pt")
    model = random_model(FCN8s, np.float32)
    sd = {k: torch.from_numpy(v) for k, v in model.state_dict().items()}
    torch.save({k: v.half() for k, v in sd.items()}, tmp_path / "half.pt")
    with pytest.raises(ExportError, match=r"float16.*\.float\(\)"):
        import_torch(tmp_path / "half.pt")
    torch.save(sd, tmp_path / "ok.pt")
    with pytest.raises(ExportError, match="does not match FCN16s"):
        import_torch(tmp_path / "ok.pt", arch="FCN16s", config=dict(num_classes=3, **CONFIG))
    del sd["upscore8.weight"]
    torch.save(sd, tmp_path / "cut.pt")
    with pytest.raises(ExportError, match="architecture"):
        import_torch(tmp_path / "cut.pt")

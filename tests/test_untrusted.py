"""Untrusted files and absurd requests are bounded (issue 10, items 4-8): one clear line, never a traceback.

Crafted files are written here, in ``tmp_path``: a 20000 x 20000 PNG of 48 KB
(a decompression bomb), checkpoints whose header lies about the weights, whose
``.npy`` headers declare terabytes, whose zip members inflate far beyond their
size; metadata of the wrong types; outputs that cannot be written; runs too
big for the machine; and arguments that used to produce silent nonsense
(a band that ignores every pixel, ``--repeats 0``, negative counts, NaN
weights, masked arrays, out-of-range max-pool indices handed to a kernel).
"""

import io
import json
import os
import re
import struct
import subprocess
import sys
import time
import zipfile
import zlib

import numpy as np
import pytest
from numpy.lib import format as npy

from fcn_scratch import budget, kernels
from fcn_scratch import checkpoint as ckpt
from fcn_scratch import images as img
from fcn_scratch.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from fcn_scratch.cli import main
from fcn_scratch.data import CLASS_NAMES, toy_shapes
from fcn_scratch.metrics import MAX_CLASSES, ConfusionMatrix, confusion_matrix, scores
from fcn_scratch.models import TINY, FCN8s, FCN16s, FCN32s
from cli_helpers import error_line

SMALL = dict(widths=(4, 4, 8, 8, 8), convs_per_block=(1, 1, 1, 1, 1), fc_channels=8)
K = len(CLASS_NAMES)


def _model(cls=FCN8s, **kw):
    model = cls(K, seed=0, **{**SMALL, **kw})
    rng = np.random.default_rng(1)
    for _, p, _ in model.named_parameters():
        p[...] = rng.standard_normal(p.shape).astype(p.dtype) * 0.1
    return model


@pytest.fixture
def good_ckpt(tmp_path):
    path = tmp_path / "model.npz"
    save_checkpoint(path, _model(), class_names=CLASS_NAMES,
                    training={"normalization": {"mean": 0.5, "std": 0.25},
                              "data": {"size": [32, 32], "val_images": 4, "val_seed": 3, "ignore_border": 1}})
    return path


@pytest.fixture
def rgb_png(tmp_path):
    path = tmp_path / "in.png"
    _png(path, np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8))
    return path


def _png(path, array, mode=None, palette=None):
    from PIL import Image

    im = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    if palette is not None:
        im = Image.fromarray(array, mode="P")
        im.putpalette(palette)
    im.save(path, format="PNG")
    return path


def bomb_png(path, width=20000, height=20000):
    """A 1-bit greyscale PNG of ``width x height`` zero pixels: about 48 KB on disk for 20000 x 20000."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width + 7) // 8)  # the filter byte, then 8 pixels per byte
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


# --------------------------------------------------------------------------- 4. images through Pillow, bounded


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return bomb_png(tmp_path_factory.mktemp("bomb") / "bomb.png")


def test_decompression_bomb_is_refused_before_decoding(bomb):
    assert os.path.getsize(bomb) < 100_000
    t0 = time.perf_counter()
    for reader in (img.read_rgb, img.read_mask, img.image_size):
        with pytest.raises(img.ImageError, match=r"20000x20000 = 400,000,000 pixels, above the limit of 50,000,000"):
            reader(bomb)
    assert time.perf_counter() - t0 < 2.0  # decoding 400 megapixels would take far longer


def test_our_limit_and_pillows_warning_and_error_all_give_the_same_line(tmp_path, monkeypatch):
    from PIL import Image

    small = bomb_png(tmp_path / "small.png", 300, 200)  # 60,000 pixels
    with pytest.raises(img.ImageError, match=r"300x200 = 60,000 pixels, above the limit of 59,999"):
        img.read_rgb(small, max_pixels=59_999)
    assert img.read_rgb(small, max_pixels=60_000).shape == (200, 300, 3)
    # Pillow's own guard (a warning above Image.MAX_IMAGE_PIXELS, an error above twice it), at a small scale:
    # during a read it is raised to at least max_pixels, so it never refuses what max_pixels admits ...
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    assert img.read_rgb(small, max_pixels=60_000).shape == (200, 300, 3)  # 6x Pillow's limit: its error
    assert img.read_mask(small, max_pixels=60_000).shape == (200, 300)
    assert Image.MAX_IMAGE_PIXELS == 10_000  # ... and put back afterwards
    # ... and when it refuses (its warning, then its error), the line is ours, naming the limit applied
    bmp = tmp_path / "small.bmp"
    Image.new("L", (300, 200)).save(bmp)
    for limit in (50_000, 20_000):  # Pillow's limit is then 50,000 (60,000 warns) or 20,000 (60,000 > 2x: error)
        with pytest.raises(img.ImageError, match=rf"300x200 = 60,000 pixels, above the limit of {limit:,} pixels"):
            img.read_rgb(small, max_pixels=limit)
        with pytest.raises(img.ImageError, match=rf"has 60,000 pixels, above the limit of {limit:,} pixels"):
            img.image_size(bmp, max_pixels=limit)  # not a PNG: the size comes from Pillow's message
    assert Image.MAX_IMAGE_PIXELS == 10_000


def test_pillows_limit_is_restored_after_concurrent_reads(tmp_path, monkeypatch):
    """Reads in several threads, each with its own max_pixels: all succeed, and Pillow's limit is its own after."""
    import threading

    from PIL import Image

    small = bomb_png(tmp_path / "small.png", 300, 200)  # 60,000 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    errors = []

    def reader(limit):
        try:
            for _ in range(20):
                assert img.read_mask(small, max_pixels=limit).shape == (200, 300)
        except Exception as exc:  # reported below: an assertion in a thread does not fail the test
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(limit,)) for limit in (60_000, 70_000, 100_000, 60_000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and Image.MAX_IMAGE_PIXELS == 10_000


def test_max_pixels_above_pillows_own_limit_is_usable(tmp_path):
    """A 95-megapixel image, above Pillow's default ~89.5 MP, is admitted by max_pixels=200 MP (header only)."""
    from PIL import Image

    big = bomb_png(tmp_path / "big.png", 10000, 9500)
    assert 10000 * 9500 > Image.MAX_IMAGE_PIXELS  # Pillow alone would warn (which we turn into a refusal)
    assert img.image_size(big, max_pixels=200_000_000) == (9500, 10000)
    for limit in (None, 90_000_000):
        with pytest.raises(img.ImageError, match=rf"10000x9500 = 95,000,000 pixels, above the limit of "
                                                 rf"{limit or img.MAX_PIXELS:,} pixels"):
            img.image_size(big, max_pixels=limit)


def test_predict_refuses_the_bomb_in_one_line(bomb, good_ckpt, tmp_path, capsys):
    out = tmp_path / "mask.png"
    line = error_line(capsys, ["predict", "--checkpoint", str(good_ckpt), "--input", str(bomb),
                                "--output", str(out)])
    assert "bomb.png" in line and "20000x20000" in line and "limit" in line
    assert not out.exists()


def test_predict_on_the_bomb_stays_small_in_a_real_process(bomb, good_ckpt, tmp_path):
    """The whole command in a fresh process: exit 2 in seconds, its peak RSS far below the 400 MB of one decode.

    The child reports its own ``VmHWM`` (peak RSS since its exec; ``ru_maxrss`` would carry over the
    parent's peak from before the exec).
    """
    code = ("import sys\n"
            "from fcn_scratch.cli import main\n"
            "status = main(sys.argv[1:])\n"
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])\n"
            "sys.exit(status)\n")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, "predict", "--checkpoint", str(good_ckpt), "--input",
                           str(bomb), "--output", str(tmp_path / "m.png")], capture_output=True, text=True,
                          timeout=300)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 2 and "20000x20000" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    peak_kib = int(proc.stdout.split()[-1])
    assert peak_kib * 1024 < 300 * 2**20, peak_kib  # the imports take ~130 MiB; one decode alone 400 MB
    assert seconds < 120


def test_read_rgb_modes(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(img.read_rgb(_png(tmp_path / "rgb.png", rgb)), rgb / np.float32(255))
    rgba = np.concatenate([rgb, np.full((5, 7, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(img.read_rgb(_png(tmp_path / "rgba.png", rgba)), rgb / np.float32(255))
    grey = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    out = img.read_rgb(_png(tmp_path / "grey.png", grey))
    assert out.shape == (5, 7, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.repeat((grey / np.float32(255))[:, :, None], 3, axis=2))
    grey16 = rng.integers(0, 65536, (5, 7), dtype=np.uint16)
    out16 = img.read_rgb(_png(tmp_path / "grey16.png", grey16))
    np.testing.assert_allclose(out16[:, :, 1], grey16 / 65535.0, rtol=1e-6)
    lut = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    idx = rng.integers(0, 4, (5, 7), dtype=np.uint8)
    pal = img.read_rgb(_png(tmp_path / "pal.png", idx, palette=lut.ravel().tolist()))
    np.testing.assert_array_equal(pal, lut[idx] / np.float32(255))  # looked up, not the indices
    one_bit = img.read_rgb(bomb_png(tmp_path / "one.png", 9, 4))
    assert one_bit.shape == (4, 9, 3) and not one_bit.any()
    for v in (img.read_rgb(tmp_path / "rgb.png"), out, pal):
        assert v.min() >= 0 and v.max() <= 1


def test_read_mask_keeps_palette_indices_and_void(tmp_path):
    """A VOC SegmentationClass PNG: palette indices (255 = void) come back as ids, not colours."""
    lut = np.zeros((256, 3), np.uint8)
    lut[1], lut[2], lut[255] = (128, 0, 0), (0, 128, 0), (224, 224, 192)
    ids = np.array([[0, 1, 2, 255], [255, 2, 1, 0]], dtype=np.uint8)
    mask = img.read_mask(_png(tmp_path / "voc.png", ids, palette=lut.ravel().tolist()))
    assert mask.dtype == np.uint8 and mask.shape == (2, 4)
    np.testing.assert_array_equal(mask, ids)
    np.testing.assert_array_equal(img.read_mask(_png(tmp_path / "grey.png", ids)), ids)  # 8-bit grey ids
    with pytest.raises(img.ImageError, match="RGB image; expected a palette"):
        img.read_mask(_png(tmp_path / "colour.png", np.zeros((2, 4, 3), np.uint8)))
    assert img.image_size(tmp_path / "voc.png") == (2, 4)


def _eps(path, width=10, height=20):
    """A minimal Encapsulated PostScript file, whatever ``path``'s extension says."""
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 " + f"{width} {height}".encode() +
                     b"\n0 0 moveto 10 20 lineto stroke\nshowpage\n%%EOF\n")
    return path


def test_only_the_listed_formats_are_opened(tmp_path, rgb_png, good_ckpt, capsys, monkeypatch):
    """EPS (Ghostscript would run the PostScript inside) and other formats are refused before their plugin
    parses the file, whatever the extension; the line names the file and its format."""
    from PIL import EpsImagePlugin, Image

    parsed = []
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: parsed.append(1))
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: parsed.append("gs"))
    pillows_eps = tmp_path / "pillow.jpg"
    Image.new("RGB", (10, 20), "red").save(pillows_eps, format="EPS")
    for path in (_eps(tmp_path / "x.jpg"), pillows_eps):
        for reader in (img.image_size, img.read_rgb, img.read_mask):
            with pytest.raises(img.ImageError, match=rf"image '.*{path.name}' is in EPS format; fcn_scratch reads "
                                                     r"only PNG, JPEG, BMP, GIF, TIFF, PPM, WEBP"):
                reader(path)
    line = error_line(capsys, ["predict", "--checkpoint", str(good_ckpt), "--input", str(tmp_path / "x.jpg"),
                                "--output", str(tmp_path / "o.png")])
    assert "x.jpg" in line and "EPS format" in line
    assert parsed == []  # the EPS plugin never saw the file, Ghostscript never ran
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    for fmt in ("PCX", "SGI", "ICO", "QOI"):
        path = tmp_path / f"{fmt}.png"
        Image.fromarray(rgb).save(path, format=fmt)
        with pytest.raises(img.ImageError, match=rf"is in {fmt} format; fcn_scratch reads only"):
            img.read_rgb(path)
    # the listed ones are read, lossless ones exactly
    for fmt, ext in (("PNG", "png"), ("BMP", "bmp"), ("TIFF", "tif"), ("PPM", "ppm"), ("WEBP", "webp"),
                     ("GIF", "gif"), ("JPEG", "jpg"), ("MPO", "jpg")):
        path = tmp_path / f"ok-{fmt}.{ext}"
        kw = {"lossless": True} if fmt == "WEBP" else {"save_all": True} if fmt == "MPO" else {}
        Image.fromarray(rgb).save(path, format=fmt, **kw)
        out = img.read_rgb(path)
        assert out.shape == (6, 5, 3) and img.image_size(path) == (6, 5), fmt
        if fmt in ("PNG", "BMP", "TIFF", "PPM", "WEBP"):
            np.testing.assert_array_equal(out, rgb / np.float32(255), err_msg=fmt)


def test_float_and_integer_images_out_of_range_are_refused_not_clipped(tmp_path):
    from PIL import Image

    ramp = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    Image.fromarray(ramp, mode="F").save(tmp_path / "f.tif")
    np.testing.assert_array_equal(img.read_rgb(tmp_path / "f.tif")[:, :, 2], ramp)  # [0, 1]: as it is
    for value in (7.5, -0.25):
        Image.fromarray(ramp * value, mode="F").save(tmp_path / "bad.tif")
        with pytest.raises(img.ImageError, match=r"is a F image with values in .* outside 0..1; refusing to guess"):
            img.read_rgb(tmp_path / "bad.tif")
    ints = np.array([[0, 65535], [1000, 30000]], dtype=np.int32)
    Image.fromarray(ints, mode="I").save(tmp_path / "i.tif")
    np.testing.assert_allclose(img.read_rgb(tmp_path / "i.tif")[:, :, 0], ints / 65535.0, rtol=1e-7)
    for bad in (70000, -1):
        Image.fromarray(np.array([[0, bad]], dtype=np.int32), mode="I").save(tmp_path / "bad_i.tif")
        with pytest.raises(img.ImageError, match=rf"is a I image with values in \[{min(0, bad)}, {max(0, bad)}\], "
                                                 r"outside 0..65535"):
            img.read_rgb(tmp_path / "bad_i.tif")


def test_exif_orientation_is_not_applied(tmp_path):
    """The documented choice: pixels as stored, so an image stays aligned with its EXIF-less mask."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.new("RGB", (20, 10), "white").save(tmp_path / "phone.jpg", exif=exif.tobytes())
    assert Image.open(tmp_path / "phone.jpg").getexif()[0x0112] == 6
    assert img.read_rgb(tmp_path / "phone.jpg").shape == (10, 20, 3)
    assert img.image_size(tmp_path / "phone.jpg") == (10, 20)


def test_unreadable_and_missing_images(tmp_path):
    (tmp_path / "fake.png").write_text("not an image")
    with pytest.raises(img.ImageError, match="cannot read image"):
        img.read_rgb(tmp_path / "fake.png")
    with pytest.raises(img.ImageError, match="not found"):
        img.read_rgb(tmp_path / "none.png")
    data = (tmp_path / "t.png")
    _png(data, np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    (tmp_path / "cut.png").write_bytes(data.read_bytes()[:200])  # a valid header, truncated pixels
    with pytest.raises(img.ImageError, match="cannot read image"):
        img.read_rgb(tmp_path / "cut.png")


# --------------------------------------------------------------------------- 5. crafted checkpoints


def _members(path):
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _rewrite(path, mutate_header=None, **extra_members):
    """Re-save ``path`` with its JSON header changed by ``mutate_header(dict)`` and members added."""
    arrays = _members(path)
    header = json.loads(str(arrays[ckpt.HEADER]))
    if mutate_header:
        mutate_header(header)
    arrays[ckpt.HEADER] = np.array(json.dumps(header))
    arrays.update(extra_members)
    np.savez(path, **arrays)
    return path


def test_state_shapes_equal_the_built_models():
    for cls in (FCN32s, FCN16s, FCN8s):
        for kw in (TINY, SMALL, dict(widths=(3, 5, 7, 9, 11), convs_per_block=(1, 2, 3, 1, 2), fc_channels=6)):
            built = {k: v.shape for k, v in cls(7, in_channels=2, **kw).state_dict().items()}
            assert list(cls.state_shapes(7, in_channels=2, **kw).items()) == list(built.items())


def test_header_that_lies_about_fc_channels_is_refused_before_any_allocation(tmp_path, capsys, monkeypatch):
    path = tmp_path / "liar.npz"
    model = _model()
    save_checkpoint(path, model, config=dict(model.config(), fc_channels=20000))
    built = []
    monkeypatch.setattr(FCN8s, "__init__", lambda *a, **k: built.append(1) or (_ for _ in ()).throw(AssertionError))
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"state_dict\['fc6.weight'\] has shape \(8, 8, 1, 1\), "
                                              r"expected \(20000, 8, 1, 1\)"):
        load_checkpoint(path)
    assert time.perf_counter() - t0 < 1.0 and not built  # no model was built
    monkeypatch.undo()
    for value, match in ((1e9, "fc_channels must be an int in 1..65536, got 1000000000.0"),
                         (10**9, "fc_channels must be an int in 1..65536, got 1000000000"),
                         (-3, "fc_channels must be an int"), ("8", "fc_channels must be an int")):
        _rewrite(path, lambda h: h["config"].update(fc_channels=value))
        with pytest.raises(CheckpointError, match=match):
            load_checkpoint(path)
        assert "cannot build FCN8s" in error_line(capsys, ["evaluate", "--checkpoint", str(path)])


def test_npy_header_declaring_terabytes_is_refused_without_allocating(tmp_path):
    path = tmp_path / "huge.npz"
    save_checkpoint(path, _model())
    arrays = _members(path)
    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    with zipfile.ZipFile(path, "w") as z:
        for name, a in arrays.items():
            b = io.BytesIO()
            if name == "param/fc6.weight":
                b.write(buf.getvalue() + bytes(64))  # 4 TB declared, 64 bytes stored
            else:
                npy.write_array(b, a)
            z.writestr(name + ".npy", b.getvalue())
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"declares shape \(1000000000000,\) of float32 "
                                              r"\(4,000,000,000,000 bytes\) but stores 64 bytes"):
        read_checkpoint(path)
    assert time.perf_counter() - t0 < 1.0


def test_zip_bomb_members_are_bounded_by_their_declared_size(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    save_checkpoint(path, _model())
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
        b = io.BytesIO()
        npy.write_array(b, np.zeros(8 * 2**20, np.float32))  # 32 MiB of zeros deflate to ~32 KB
        z.writestr("resume/padding.npy", b.getvalue())
    assert os.path.getsize(path) < 200_000
    monkeypatch.setattr(ckpt, "MAX_CHECKPOINT_BYTES", 16 * 2**20)
    with pytest.raises(CheckpointError, match=r"declares 0.0 GiB of uncompressed data, above the limit"):
        load_checkpoint(path)
    monkeypatch.setattr(ckpt, "MAX_CHECKPOINT_BYTES", 64 * 2**20)
    load_checkpoint(path)  # under the limit: resume/ members are tolerated and not loaded


def test_resume_members_are_tolerated_but_never_pickled(tmp_path):
    path = tmp_path / "r.npz"
    save_checkpoint(path, _model())
    _rewrite(path, **{"resume/step": np.array(7), "resume/rng": np.arange(4, dtype=np.uint64),
                      "resume/adam.m/fc6.weight": np.zeros((8, 8, 1, 1), np.float32)})
    model, meta = load_checkpoint(path)
    header, state = read_checkpoint(path)
    assert not any(k.startswith("resume") for k in state) and "fc6.weight" in state
    _rewrite(path, **{"resume/evil": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(CheckpointError, match="pickled"):
        load_checkpoint(path)


def test_loading_refuses_weights_that_do_not_fit_in_memory(good_ckpt, monkeypatch):
    monkeypatch.setattr(budget, "available_bytes", lambda: 1000)
    with pytest.raises(CheckpointError, match="loading its weights needs about .* more than the 0 MiB available"):
        load_checkpoint(good_ckpt)


BAD_HEADERS = [
    (lambda h: h["config"].update(dtype="float16"), "dtype must be 'float32' or 'float64'"),
    (lambda h: h["config"].update(dtype=5), "dtype must be"),
    (lambda h: h["config"].update(widths=[4, 4, 8, 8]), "widths must be a list of 5 ints"),
    (lambda h: h.update(class_names=None) or h["config"].update(num_classes=2**40),
     "num_classes must be an int in 1..4096"),
    (lambda h: h["config"].update(dropout=float("nan")), "dropout must be a number in"),
    (lambda h: h["config"].update(dropout=10**400), "dropout must be a number in"),  # beyond float range
    (lambda h: h["config"].update(evil=1), "unexpected entries"),
    (lambda h: h["config"].pop("num_classes"), "'num_classes' is missing"),
    (lambda h: h.update(class_names="background"), "'class_names' must be a list of strings"),
    (lambda h: h.update(class_names=[1, 2, 3, 4, 5]), "'class_names' must be a list of strings"),
    (lambda h: h.update(class_names=["a", "b"]), "'class_names' has 2 names for num_classes=5"),
    (lambda h: h.update(keys=[1]), "'keys' must be a list of distinct"),
    (lambda h: h.update(training="fast"), "header entry 'training' is missing or not a dict"),
    (lambda h: h["training"].update(normalization="imagenet"), "'normalization' must be"),
    (lambda h: h["training"].update(normalization={"mean": 0.5}), "'normalization' must be"),
    (lambda h: h["training"].update(normalization={"mean": 0.5, "std": 0}), "'std' must be positive"),
    (lambda h: h["training"].update(normalization={"mean": 0.5, "std": [1, 2]}), "a list of 3"),
    (lambda h: h["training"].update(normalization={"mean": float("nan"), "std": 1}), "'mean' must be a finite"),
    (lambda h: h["training"].update(normalization={"mean": "0.5", "std": 1}), "'mean' must be a finite"),
    (lambda h: h["training"].update(normalization={"mean": [10**400, 0, 0], "std": 1}), "'mean' must be a finite"),
    (lambda h: h["training"].update(normalization={"mean": 0.5, "std": -10**400}), "'std' must be a finite"),
    (lambda h: h["training"].update(data="toy"), "'data' must be a dict"),
    (lambda h: h["training"]["data"].update(size="big"), "'size' must be"),
    (lambda h: h["training"]["data"].update(size=[10**9, 10**9]), "'size' must be"),
    (lambda h: h["training"]["data"].update(val_images=-1), "'val_images' must be"),
    (lambda h: h["training"]["data"].update(val_seed=1.5), "'val_seed' must be"),
    (lambda h: h["training"]["data"].update(ignore_border=None), "'ignore_border' must be"),
]


DEEP_JSON = ['{"a":' * 100_000 + "1" + "}" * 100_000, "[" * 200_000 + "]" * 200_000]


@pytest.mark.parametrize("text", DEEP_JSON, ids=["object", "array"])
def test_a_header_nested_deeper_than_the_stack_is_one_line(good_ckpt, rgb_png, tmp_path, capsys, text):
    """json.loads raises RecursionError (not a ValueError) on such nesting: still one CheckpointError."""
    arrays = _members(good_ckpt)
    arrays[ckpt.HEADER] = np.array(text)
    np.savez(good_ckpt, **arrays)
    for reader in (read_checkpoint, load_checkpoint, ckpt.read_extras):
        with pytest.raises(CheckpointError, match=r"header is not valid JSON \(maximum recursion depth"):
            reader(good_ckpt)
    line = error_line(capsys, ["predict", "--checkpoint", str(good_ckpt), "--input", str(rgb_png),
                                "--output", str(tmp_path / "o.png")])
    assert "model.npz" in line and "not valid JSON" in line


def test_a_training_state_nested_deeper_than_the_stack_is_a_value_error():
    from fcn_scratch import runs

    with pytest.raises(ValueError, match=r"training state is not valid JSON \(maximum recursion depth"):
        runs.unpack_state({"state.json": np.array(DEEP_JSON[0])})


@pytest.mark.parametrize("mutate, match", BAD_HEADERS)
def test_bad_header_values_give_one_line_in_predict_and_evaluate(good_ckpt, rgb_png, tmp_path, capsys, mutate,
                                                                match):
    _rewrite(good_ckpt, mutate)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(good_ckpt)
    out = tmp_path / "o.png"
    for argv in (["predict", "--checkpoint", str(good_ckpt), "--input", str(rgb_png), "--output", str(out)],
                 ["evaluate", "--checkpoint", str(good_ckpt)]):
        assert re.search(match, error_line(capsys, argv))
    assert not out.exists()


def test_per_channel_normalization_is_applied_per_channel(good_ckpt, rgb_png, tmp_path, capsys):
    """A list mean/std scales axis 1 of (N, C, H, W), the same as the equal scalars do."""
    out_scalar, out_list = tmp_path / "s.png", tmp_path / "l.png"
    assert main(["predict", "--checkpoint", str(good_ckpt), "--input", str(rgb_png), "--output",
                 str(out_scalar)]) == 0
    _rewrite(good_ckpt, lambda h: h["training"].update(normalization={"mean": [0.5] * 3, "std": [0.25] * 3}))
    assert main(["predict", "--checkpoint", str(good_ckpt), "--input", str(rgb_png), "--output", str(out_list)]) == 0
    np.testing.assert_array_equal(img.read_rgb(out_scalar), img.read_rgb(out_list))


def _two_saves(path):
    """Two checkpoints of the same architecture that differ everywhere: weights, class names, extras."""
    saves = []
    for tag, seed in (("A", 1), ("B", 2)):
        model = FCN8s(2, seed=0, widths=(2, 2, 2, 2, 2), convs_per_block=(1, 1, 1, 1, 1), fc_channels=4)
        rng = np.random.default_rng(seed)
        for _, p, _ in model.named_parameters():
            p[...] = rng.standard_normal(p.shape).astype(p.dtype)
        saves.append(dict(model=model, class_names=[tag + "0", tag + "1"], training={"tag": tag},
                          extras={"step": np.array(seed)}))
    save_checkpoint(path, **saves[0])
    return saves


def _replace_once(monkeypatch, path, save):
    """Replace ``path`` (atomically, as training does every epoch) the first time a read checks its memory:
    after the header and the .npy headers are scanned, before any weight is read."""
    calls = []
    check = ckpt._check_memory

    def check_then_replace(*args):
        check(*args)
        if not calls:
            calls.append(1)
            save_checkpoint(path, **save)

    monkeypatch.setattr(ckpt, "_check_memory", check_then_replace)
    return calls


def test_a_read_sees_one_save_even_if_the_file_is_replaced_midway(tmp_path, monkeypatch):
    """Header, weights and extras all come from the file as it was opened: one handle for the whole read."""
    path = tmp_path / "model.npz"
    a, b = _two_saves(path)
    want = a["model"].state_dict()
    for read in ("read_checkpoint", "load_checkpoint", "read_extras"):
        save_checkpoint(path, **a)
        calls = _replace_once(monkeypatch, path, b)
        if read == "read_checkpoint":
            header, state = read_checkpoint(path)
            assert header["class_names"] == ["A0", "A1"]
        elif read == "load_checkpoint":
            model, meta = load_checkpoint(path)
            assert meta["training"] == {"tag": "A"}
            state = model.state_dict()
        else:
            assert ckpt.read_extras(path) == {"step": 1}
            state = want
        assert calls, "the file was not replaced during the read"
        for k, v in want.items():
            np.testing.assert_array_equal(state[k], v, err_msg=f"{read}: {k}")
        assert read_checkpoint(path)[0]["class_names"] == ["B0", "B1"]  # the file was replaced indeed
        monkeypatch.undo()


def test_reads_during_a_stream_of_atomic_saves_are_consistent(tmp_path):
    """A writer rewrites the file as fast as it can while the reader loads it: every load is one whole save."""
    import threading

    path = tmp_path / "model.npz"
    saves = _two_saves(path)
    weights = {s["training"]["tag"]: s["model"].state_dict() for s in saves}
    stop, written = threading.Event(), []

    def writer():
        while not stop.is_set():
            save_checkpoint(path, **saves[len(written) % 2])
            written.append(1)

    thread = threading.Thread(target=writer)
    thread.start()
    reads, t0 = 0, time.perf_counter()
    try:
        while reads < 200 and time.perf_counter() - t0 < 3:  # bounded: ~100 reads in 3 s on a busy machine
            header, state = read_checkpoint(path)
            tag = header["training"]["tag"]
            assert header["class_names"] == [tag + "0", tag + "1"]
            for k, v in weights[tag].items():
                np.testing.assert_array_equal(state[k], v, err_msg=f"read {reads}: header {tag}, {k}")
            reads += 1
    finally:
        stop.set()
        thread.join()
    assert reads >= 20 and len(written) >= 20, (reads, len(written))  # the two did overlap


# --------------------------------------------------------------------------- 6. outputs checked before the work


def test_predict_output_checked_before_the_work(good_ckpt, rgb_png, tmp_path, capsys, monkeypatch):
    import fcn_scratch.train as train

    monkeypatch.setattr(train, "predict", lambda *a, **k: pytest.fail("predict ran before the output check"))
    base = ["predict", "--checkpoint", str(good_ckpt), "--input", str(rgb_png), "--output"]
    assert "must end in .png" in error_line(capsys, base + [str(tmp_path / "x.xyz")])
    assert "does not exist" in error_line(capsys, base + [str(tmp_path / "missing" / "m.png")])
    (tmp_path / "dir.png").mkdir()
    assert "is a directory" in error_line(capsys, base + [str(tmp_path / "dir.png")])

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(img.tempfile, "mkstemp", refuse)  # what a read-only folder does (root ignores chmod)
    assert "is not writable (Permission denied)" in error_line(capsys, base + [str(tmp_path / "m.png")])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_predict_into_a_read_only_directory(good_ckpt, rgb_png, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert "not writable" in error_line(capsys, ["predict", "--checkpoint", str(good_ckpt), "--input",
                                                      str(rgb_png), "--output", str(ro / "m.png")])
    finally:
        ro.chmod(0o755)


def test_predict_writes_its_png_atomically(good_ckpt, rgb_png, tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.png"
    assert main(["predict", "--checkpoint", str(good_ckpt), "--input", str(rgb_png), "--output", str(out)]) == 0
    before = out.read_bytes()
    from PIL import Image

    def full_disk(self, fp, *a, **k):
        fp.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    assert "No space left" in error_line(capsys, ["predict", "--checkpoint", str(good_ckpt), "--input",
                                                   str(rgb_png), "--output", str(out)])
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "in.png", "m.png", "model.npz"]  # no temp file left


def test_evaluate_json_checked_before_the_evaluation(good_ckpt, tmp_path, capsys, monkeypatch):
    import fcn_scratch.train as train

    monkeypatch.setattr(train, "evaluate", lambda *a, **k: pytest.fail("evaluated before the output check"))
    base = ["evaluate", "--checkpoint", str(good_ckpt), "--json"]
    assert "is a directory" in error_line(capsys, base + [str(tmp_path)])
    assert "does not exist" in error_line(capsys, base + [str(tmp_path / "no" / "s.json")])
    monkeypatch.undo()
    assert main(base + [str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["images"] == 4


def test_bench_json_checked_before_the_bench_and_repeats_at_least_one(tmp_path, capsys, monkeypatch):
    import fcn_scratch.bench as bench

    monkeypatch.setattr(bench, "run", lambda *a, **k: pytest.fail("the bench ran before the output check"))
    assert "does not exist" in error_line(capsys, ["bench", "--json", str(tmp_path / "no" / "b.json")])
    assert "expected a positive integer, got 0" in error_line(capsys, ["bench", "--repeats", "0"])
    monkeypatch.undo()
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        bench.run(("kernels",), repeats=0, print_fn=lambda *a: None)


# --------------------------------------------------------------------------- 7. absurd sizes


@pytest.mark.parametrize("flags", [["--fc-channels", "1000000000"], ["--size", "100000"],
                                   ["--train-images", "1000000000"], ["--widths", "4096,4096,4096,4096,4096"]])
@pytest.mark.parametrize("command", ["train", "compare"])
def test_absurd_sizes_are_refused_before_allocating(command, flags, tmp_path, capsys):
    t0 = time.perf_counter()
    line = error_line(capsys, [command, *flags, "--out", str(tmp_path / "o"), "--quiet"])
    assert "needs about" in line and "available" in line
    assert time.perf_counter() - t0 < 2.0
    assert not (tmp_path / "o").exists()


def test_the_memory_check_uses_the_available_memory(tmp_path, capsys, monkeypatch):
    args = ["train", "--size", "32", "--train-images", "8", "--val-images", "4", "--epochs", "1", "--quiet",
            "--out", str(tmp_path / "o")]
    est = budget.check_training(("fcn8s",), K, size=32, train_images=8, val_images=4, batch_size=8,
                                available=2**60)["total"]
    monkeypatch.setattr(budget, "available_bytes", lambda: est - 1)
    line = error_line(capsys, args)
    assert f"more than the {budget.format_bytes(est - 1)} available" in line


def test_estimate_is_above_the_measured_peak_of_the_default_run():
    """Measured for issue 10 (2 cores, ``ru_maxrss`` above the resident set after imports): the default
    ``fcn-scratch train`` peaked 328 MiB above its imports, ``--size 256 --train-images 64 --val-images 16``
    1532 MiB. The estimate must stay above both, and not absurdly (under 2x)."""
    for size, n_train, n_val, measured in ((64, 640, 96, 328), (256, 64, 16, 1532)):
        est = budget.estimate_training([FCN8s], dict(TINY, num_classes=K), size=size, train_images=n_train,
                                       val_images=n_val, batch_size=8, threads=2)["total"] / 2**20
        assert measured < est < 2 * measured, (size, est)


def test_predict_refuses_an_image_too_big_for_memory(good_ckpt, rgb_png, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(budget, "available_bytes", lambda: 100 * 2**20)  # loading 2x the weights fits
    line = error_line(capsys, ["predict", "--checkpoint", str(good_ckpt), "--input", str(rgb_png), "--output",
                                str(tmp_path / "m.png")])
    assert "segmenting the 24x20 image" in line and "more than the 100 MiB available" in line
    line = error_line(capsys, ["evaluate", "--checkpoint", str(good_ckpt), "--images", "100000"])
    assert "evaluating on 100000 images of 32x32" in line


def test_inference_estimate_grows_with_the_image():
    cfg = dict(TINY, num_classes=K)
    a = budget.estimate_inference(FCN8s, cfg, images=1, size=(1024, 1024), batch_size=1)["activations"]
    b = budget.estimate_inference(FCN8s, cfg, images=1, size=(2048, 2048), batch_size=1)["activations"]
    assert 3.5 < b / a < 4.5  # proportional to the pixels once they dwarf the 4 MiB convolution bands


# --------------------------------------------------------------------------- 8. silent nonsense


def test_ignore_border_wider_than_half_the_image(tmp_path, capsys, good_ckpt):
    tiny = ["--size", "32", "--train-images", "8", "--val-images", "4", "--epochs", "1", "--widths", "4,4,8,8,8",
            "--fc-channels", "8", "--quiet"]  # were the check missing, this would train (briefly) and exit 0
    line = error_line(capsys, ["train", *tiny, "--ignore-border", "1000", "--out", str(tmp_path / "o")])
    assert "--ignore-border 1000 is wider than half the 32x32 images" in line
    assert not (tmp_path / "o").exists()
    line = error_line(capsys, ["evaluate", "--checkpoint", str(good_ckpt), "--ignore-border", "17"])
    assert "wider than half the 32x32 images" in line


def test_metrics_scores_validate_counts():
    good = np.array([[3, 1], [0, 2]])
    assert scores(good)["pixel_accuracy"] == pytest.approx(5 / 6)
    assert scores(good / good.sum())["mean_iou"] == pytest.approx(scores(good)["mean_iou"])  # normalised is fine
    for bad, match in ((np.array([[3, -1], [0, 2]]), ">= 0"), (np.array([[3.0, np.nan], [0, 2]]), "finite"),
                       (np.array([[3.0, np.inf], [0, 2]]), "finite"), (np.ones((2, 3)), "square"),
                       (np.zeros((0, 0)), "square"), (np.ma.masked_array(good, good == 0), "masked")):
        with pytest.raises((ValueError, TypeError), match=match):
            scores(bad)
    with pytest.raises(TypeError, match="numeric"):
        scores(np.array([["a", "b"], ["c", "d"]]))


def test_confusion_matrix_bounds_num_classes():
    t = np.zeros((2, 2), np.int64)
    for k in (2**40, MAX_CLASSES + 1):
        with pytest.raises(ValueError, match="num_classes must be at most 4096"):
            confusion_matrix(t, t, k)
        with pytest.raises(ValueError, match="at most 4096"):
            ConfusionMatrix(k)
    assert confusion_matrix(t, t, MAX_CLASSES).shape == (MAX_CLASSES, MAX_CLASSES)


def test_masked_arrays_are_refused():
    from fcn_scratch.train import check_images, check_masks, evaluate

    model = _model()
    x, m = toy_shapes(2, 32, seed=0)
    mx = np.ma.masked_array(x, np.zeros_like(x, bool))
    mm = np.ma.masked_array(m, m == 0)
    with pytest.raises(TypeError, match="masked array"):
        check_images(mx, model)
    with pytest.raises(TypeError, match=r"masks.filled\(255\)"):
        check_masks(mm, x, K, 255)
    with pytest.raises(TypeError, match="masked array"):
        evaluate(model, x, mm)
    with pytest.raises(TypeError, match="masked array"):
        confusion_matrix(mm, m, K)
    filled = evaluate(model, x, mm.filled(255))  # the documented way: masked pixels become ignore_index
    assert np.isfinite(filled["pixel_accuracy"])


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_load_state_dict_refuses_non_finite_weights(value):
    model = _model()
    state = model.state_dict()
    before = model.state_dict()
    state["upscore8.weight"][0, 0, 0, 0] = value
    with pytest.raises(ValueError, match=r"state_dict\['upscore8.weight'\] contains NaN or inf"):
        model.load_state_dict(state)
    for k, v in model.state_dict().items():  # nothing was written
        np.testing.assert_array_equal(v, before[k])


# --------------------------------------------------------------------------- the kernels' public wrappers


@pytest.fixture(params=["numba", "numpy"])
def backend(request):
    with kernels.use_backend(request.param):
        yield request.param


def _pool_case(rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    y, idx = kernels.maxpool_forward(x, 2, 2, 2, 2, 0, 0, 1, 1, 3, 3)
    return x, y, idx


def test_maxpool_backward_refuses_indices_out_of_the_plane(backend):
    x, y, idx = _pool_case(np.random.default_rng(0))
    for bad_value in (10**9, 36, -5, -2):
        bad = idx.copy()
        bad[1, 2, 0, 1] = bad_value
        with pytest.raises(ValueError, match=r"argmax must hold flat indices in \[0, H\*W\) = \[0, 36\) or -1"):
            kernels.maxpool_backward(y, bad, 6, 6)
    with pytest.raises(TypeError, match="integer array of dout's shape"):
        kernels.maxpool_backward(y, idx[:1], 6, 6)
    with pytest.raises(TypeError, match="integer array"):
        kernels.maxpool_backward(y, idx.astype(np.float64), 6, 6)
    with pytest.raises(ValueError, match=r"\[0, 9\)"):
        kernels.maxpool_backward(y, idx, 3, 3)  # indices of a 6x6 plane into a 3x3 one
    edge = idx.copy()
    edge[0, 0, 0, 0], edge[0, 0, 0, 1] = 35, -1  # the last pixel and "no pixel" are both legal
    dx = kernels.maxpool_backward(y, edge, 6, 6)
    expected = np.zeros((2, 3, 36), np.float32)
    for (n, c, i, j), k in np.ndenumerate(edge):
        if k >= 0:
            expected[n, c, k] += y[n, c, i, j]
    np.testing.assert_allclose(dx.reshape(2, 3, 36), expected, rtol=1e-6)


def test_kernel_wrappers_check_sizes_and_types(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 5, 5))
    cols = kernels.im2col(x, 3, 3, 1, 1, 1, 1, 1, 1, 5, 5)
    with pytest.raises(ValueError, match=r"cols must have shape \(N, C\*kh\*kw, Ho\*Wo\) = \(1, 18, 36\)"):
        kernels.col2im(cols, 1, 2, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 6, 6)  # says 6x6 outputs, holds 5x5
    with pytest.raises(ValueError, match=r"= \(1, 27, 25\)"):
        kernels.col2im(cols, 1, 3, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 5, 5)
    with pytest.raises(ValueError, match="output size .* larger than"):
        kernels.maxpool_forward(x, 2, 2, 2, 2, 0, 0, 1, 1, 4, 3)  # 2x2 windows: at most 3 fit 5 rows
    for args, err in (((x, 0, 3, 1, 1, 1, 1, 1, 1, 5, 5), ValueError), ((x, 3, 3, 0, 1, 1, 1, 1, 1, 5, 5), ValueError),
                      ((x, 3, 3, 1, 1, -1, 1, 1, 1, 5, 5), ValueError), ((x, 3, 3, 1, 1, 1, 1, 1, 1, -5, 5), ValueError),
                      ((x, 3.0, 3, 1, 1, 1, 1, 1, 1, 5, 5), TypeError), ((x, True, 3, 1, 1, 1, 1, 1, 1, 5, 5), TypeError),
                      ((x[0], 3, 3, 1, 1, 1, 1, 1, 1, 5, 5), ValueError),
                      ((x.astype(np.int64), 3, 3, 1, 1, 1, 1, 1, 1, 5, 5), TypeError),
                      ((x.tolist(), 3, 3, 1, 1, 1, 1, 1, 1, 5, 5), TypeError)):
        with pytest.raises(err):
            kernels.im2col(*args)
        with pytest.raises(err):
            kernels.maxpool_forward(*args)
    with pytest.raises(ValueError, match="H must be in"):
        kernels.col2im(cols, 1, 2, 0, 5, 3, 3, 1, 1, 1, 1, 1, 1, 5, 5)
    with pytest.raises(ValueError, match="too large"):
        kernels.im2col(x, 2**31, 2**31, 1, 1, 0, 0, 1, 1, 1, 1)
    # the legitimate calls still agree with each other (the adjoint identity)
    c = rng.standard_normal(cols.shape)
    lhs = np.vdot(cols, c)
    rhs = np.vdot(x, kernels.col2im(c, 1, 2, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 5, 5))
    assert lhs == pytest.approx(rhs)


def test_the_kernel_checks_also_hold_uncompiled():
    """The same wrapper tests with NUMBA_DISABLE_JIT=1: the plain-Python kernels behind the same checks."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                           "maxpool_backward_refuses or kernel_wrappers_check"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "4 passed" in proc.stdout

"""VOC-layout datasets: the sample writer, the reader's validation, the palette, and the batches."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from fcn_scratch.data import CLASS_NAMES, normalize
from fcn_scratch.viz import palette, save_label_png
from fcn_scratch.voc import (
    DatasetError,
    VOCDataset,
    batch_count,
    evaluate_dataset,
    iterate_dataset,
    open_splits,
    sample_arrays,
    write_sample,
)

# The 21 PASCAL VOC 2012 class colours as the devkit's VOClabelcolormap lists them, and the void colour.
VOC21 = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128), (0, 128, 128),
         (128, 128, 128), (64, 0, 0), (192, 0, 0), (64, 128, 0), (192, 128, 0), (64, 0, 128), (192, 0, 128),
         (64, 128, 128), (192, 128, 128), (0, 64, 0), (128, 64, 0), (0, 192, 0), (128, 192, 0), (0, 64, 128)]


@pytest.fixture(scope="module")
def _sample_template(tmp_path_factory):
    root = tmp_path_factory.mktemp("template") / "ds"
    write_sample(root, n=8, size=(16, 28), seed=3)
    return root


@pytest.fixture
def sample(tmp_path, _sample_template):
    """A fresh copy of a small written sample, for each test to break in its own way."""
    return shutil.copytree(_sample_template, tmp_path / "ds")


def test_palette_is_vocs():
    lut = palette(256)
    assert [tuple(c) for c in lut[:21]] == VOC21
    assert tuple(lut[255]) == (224, 224, 192)
    assert len({tuple(c) for c in lut}) == 256  # every id its own colour


def test_label_png_is_an_8bit_palette_png_holding_the_ids(tmp_path):
    mask = np.random.default_rng(0).integers(0, 21, size=(7, 11))
    mask[0, :3] = 255
    save_label_png(mask, tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == "P" and im.size == (11, 7)
        pal = np.array(im.getpalette()[: 256 * 3]).reshape(-1, 3)
        ids = np.array(im)
    assert (ids == mask).all()
    assert [tuple(c) for c in pal[:21]] == VOC21 and tuple(pal[255]) == (224, 224, 192)
    with pytest.raises(ValueError, match="mask"):
        save_label_png(np.full((2, 2), 256), tmp_path / "bad.png")


def test_sample_reads_back_exactly(tmp_path):
    root = tmp_path / "ds"
    summary = write_sample(root, n=10, size=(20, 36), seed=5)
    assert (summary["train"], summary["val"]) == (8, 2)
    items = sample_arrays(10, (20, 36), seed=5)
    splits = open_splits(root)
    assert splits["train"].class_names == list(CLASS_NAMES) == splits["val"].class_names
    assert splits["train"].num_classes == len(CLASS_NAMES)
    assert splits["train"].ids + splits["val"].ids == [name for name, _, _ in items]
    got = [splits[s].load(i) for s in ("train", "val") for i in range(len(splits[s]))]
    for (name, rgb, mask), (image, m) in zip(items, got):
        assert m.dtype == np.int64 and (m == mask).all(), name
        assert image.dtype == np.float32 and image.shape == (3,) + mask.shape
        np.testing.assert_array_equal(image, normalize(rgb.transpose(2, 0, 1) / np.float32(255)))
    masks = np.concatenate([m.ravel() for _, _, m in items])
    assert set(np.unique(masks)) == set(range(len(CLASS_NAMES))) | {255}  # all classes and the void band
    assert len({m.shape for _, _, m in items}) > 1  # mixed sizes
    assert all(20 <= s <= 36 for _, _, m in items for s in m.shape)
    with Image.open(root / "SegmentationClass" / f"{items[0][0]}.png") as im:
        assert im.mode == "P"


def test_sample_as_jpeg_keeps_masks_exact(tmp_path):
    write_sample(tmp_path, n=4, size=24, seed=1, image_format="jpg")
    ds = VOCDataset(tmp_path, "train")
    items = sample_arrays(4, 24, seed=1)
    image, mask = ds.load(0)
    assert ds.image_paths[0].endswith(".jpg")
    assert (mask == items[0][2]).all()
    rgb = items[0][1].transpose(2, 0, 1) / 255.0
    assert np.abs(image * 0.25 + 0.5 - rgb).mean() < 0.02  # lossy, but close (4:2:0 chroma would give 0.04)


def test_grey_masks_and_class_count_from_the_largest_id(tmp_path):
    root = tmp_path
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(root / sub)
    for name, top in (("a", 2), ("b", 6)):
        Image.fromarray(np.zeros((5, 4, 3), np.uint8)).save(root / "JPEGImages" / f"{name}.png")
        m = np.zeros((5, 4), np.uint8)
        m[0, 0], m[1, 1] = top, 255
        Image.fromarray(m, mode="L").save(root / "SegmentationClass" / f"{name}.png")
    (root / "ImageSets/Segmentation/train.txt").write_text("a\n")
    (root / "ImageSets/Segmentation/val.txt").write_text("\nb\n\n")
    assert VOCDataset(root, "train").num_classes == 3
    splits = open_splits(root)  # one class list for both: the largest id of either split
    assert splits["train"].num_classes == splits["val"].num_classes == 7
    assert splits["val"].class_names == [f"class_{k}" for k in range(7)]
    assert splits["val"].load(0)[1][1, 1] == 255


# --------------------------------------------------------------------------- bad datasets, one clear line each


def _corrupt(path):
    path.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a PNG")


def _bad_sample(root, what):
    """Break the sample in one way; return the file the error must name and a phrase it must contain."""
    seg = root / "ImageSets" / "Segmentation"
    ids = (seg / "train.txt").read_text().split()
    first = ids[0]
    img, msk = root / "JPEGImages" / f"{first}.png", root / "SegmentationClass" / f"{first}.png"
    if what == "missing split":
        (seg / "train.txt").unlink()
        return seg / "train.txt", "not found"
    if what == "empty split":
        (seg / "train.txt").write_text("\n\n")
        return seg / "train.txt", "empty"
    if what == "duplicate id":
        (seg / "train.txt").write_text("\n".join(ids + [first]) + "\n")
        return seg / "train.txt", "twice"
    if what == "path as id":
        (seg / "train.txt").write_text("../../etc/passwd\n")
        return seg / "train.txt", "not a file name"
    if what == "missing image":
        img.unlink()
        return root / "JPEGImages" / f"{first}.jpg", "not found"
    if what == "missing mask":
        msk.unlink()
        return msk, "not found"
    if what == "size mismatch":
        with Image.open(msk) as im:
            w, h = im.size
        save_label_png(np.zeros((h + 1, w), np.uint8), msk)
        return msk, f"is {w}x{h + 1} but its image"
    if what == "class id too large":
        with Image.open(msk) as im:
            m = np.array(im)
        m[0, 0] = len(CLASS_NAMES)  # the first id past labels.txt's names
        save_label_png(m, msk)
        return msk, f"class id {len(CLASS_NAMES)}"
    if what == "unreadable mask":
        _corrupt(msk)
        return msk, "cannot read"
    if what == "unreadable image":
        _corrupt(img)
        return img, "cannot read"
    if what == "colour mask":
        with Image.open(msk) as im:
            im.convert("RGB").save(msk)
        return msk, "RGB"
    raise AssertionError(what)


BAD = ["missing split", "empty split", "duplicate id", "path as id", "missing image", "missing mask",
       "size mismatch", "class id too large", "unreadable mask", "unreadable image", "colour mask"]


@pytest.mark.parametrize("what", BAD)
def test_every_bad_dataset_gives_one_line_naming_the_file(sample, what):
    path, phrase = _bad_sample(sample, what)
    with pytest.raises(DatasetError) as info:
        open_splits(sample)
    msg = str(info.value)
    assert str(path) in msg and phrase in msg and "\n" not in msg, msg


def test_size_mismatch_message_gives_both_sizes(sample):
    ds = VOCDataset(sample, "val")
    h, w = ds.sizes[0]
    save_label_png(np.zeros((h, w + 2), np.uint8), ds.mask_paths[0])
    with pytest.raises(DatasetError, match=rf"is {w + 2}x{h} but its image .* is {w}x{h} \(WxH\)"):
        VOCDataset(sample, "val")


def test_class_id_checked_against_explicit_names(sample):
    with pytest.raises(DatasetError, match="holds class id 4, but the given class_names list names 3 classes"):
        VOCDataset(sample, "train", class_names=["a", "b", "c"])


def test_pixel_limit_is_checked_before_decoding(sample):
    with pytest.raises(DatasetError, match="above the limit of 100 pixels"):
        VOCDataset(sample, "train", max_pixels=100)


def test_missing_folder_and_bad_labels(tmp_path, sample):
    with pytest.raises(DatasetError, match="not found"):
        VOCDataset(tmp_path / "nope")
    (sample / "labels.txt").write_text("background\n\ncircle\n")
    with pytest.raises(DatasetError, match="line 2 is blank"):
        VOCDataset(sample)
    (sample / "labels.txt").write_text("a\nb\na\n")
    with pytest.raises(DatasetError, match="'a' twice"):
        VOCDataset(sample)


def test_read_per_batch_when_over_budget_gives_the_same_data(sample):
    cached = VOCDataset(sample, "train")
    streamed = VOCDataset(sample, "train", memory_budget=0)
    assert cached.in_memory and not streamed.in_memory
    assert cached.nbytes == sum(h * w * 13 for h, w in cached.sizes)
    shared = open_splits(sample, memory_budget=cached.nbytes)  # room for train only
    assert shared["train"].in_memory and not shared["val"].in_memory
    assert not open_splits(sample, memory_budget=cached.nbytes - 1)["train"].in_memory
    for i in range(len(cached)):
        for a, b in zip(cached.load(i), streamed.load(i)):
            np.testing.assert_array_equal(a, b)
    # a file changed after validation is caught when it is read again, before the loss sees it
    m = np.array(Image.open(streamed.mask_paths[1]))
    m[0, 0] = 9
    save_label_png(m, streamed.mask_paths[1])
    with pytest.raises(DatasetError, match="now holds class id 9"):
        streamed.load(1)
    assert cached.load(1)[1][0, 0] != 9  # the in-memory copy is the validated one


# --------------------------------------------------------------------------- batches


class CoordinateDataset:
    """Images whose pixels spell their own coordinates: channel 0 = row + 1, channel 1 = column + 1
    (0 is left for padding), channel 2 = the image index; mask = (row + column) % 5."""

    def __init__(self, sizes):
        self.sizes = list(sizes)

    def __len__(self):
        return len(self.sizes)

    def same_size(self):
        return len(set(self.sizes)) == 1

    def load(self, i):
        H, W = self.sizes[i]
        yy, xx = np.mgrid[0:H, 0:W]
        image = np.stack([yy + 1, xx + 1, np.full((H, W), i)]).astype(np.float32)
        return image, ((yy + xx) % 5).astype(np.int64)


def _check_window(image, mask, src_size, flipped=False):
    """The batch sample must be one contiguous window of the source, padding 0 / 255 elsewhere."""
    if flipped:
        image, mask = image[:, :, ::-1], mask[:, ::-1]
    H, W = src_size
    inside = image[0] > 0
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    r0, c0 = rows[0], cols[0]
    h, w = len(rows), len(cols)
    assert (rows == np.arange(r0, r0 + h)).all() and (cols == np.arange(c0, c0 + w)).all()
    assert inside[r0 : r0 + h, c0 : c0 + w].all() and inside.sum() == h * w  # a rectangle
    y, x = image[0, r0, c0] - 1, image[1, r0, c0] - 1
    yy, xx = np.mgrid[0:h, 0:w]
    assert (image[0, r0 : r0 + h, c0 : c0 + w] == y + yy + 1).all()  # consecutive source rows
    assert (image[1, r0 : r0 + h, c0 : c0 + w] == x + xx + 1).all()  # consecutive source columns
    assert (mask[r0 : r0 + h, c0 : c0 + w] == (y + yy + x + xx) % 5).all()  # the mask moved with it
    assert h == min(H, image.shape[1]) and w == min(W, image.shape[2])  # nothing lost that fits
    assert (image[:, ~inside] == 0).all() and (mask[~inside] == 255).all()  # pad: mean colour / void


def test_crops_come_from_the_image_and_pads_are_void():
    ds = CoordinateDataset([(30, 12), (9, 9), (20, 40), (16, 16), (5, 33)])
    offsets = set()
    for images, masks in iterate_dataset(ds, 2, crop=16, seed=0):
        assert images.shape[1:] == (3, 16, 16) and masks.shape[1:] == (16, 16)
        assert images.dtype == np.float32 and masks.dtype == np.int64
        for image, mask in zip(images, masks):
            src = ds.sizes[int(image[2].max())]
            _check_window(image, mask, src)
            offsets.add((src, int(image[0][image[0] > 0].min()), int(np.flatnonzero(image[0].any(0))[0])))
    assert len(offsets) == 5
    # over many seeds the window takes several positions, both inside a big image and around a small one
    starts = {s: set() for s in ((30, 12), (9, 9))}
    for seed in range(30):
        for images, _ in iterate_dataset(CoordinateDataset([(30, 12), (9, 9)]), 1, crop=16, seed=seed,
                                         shuffle=False):
            img = images[0]
            src = ((30, 12), (9, 9))[int(img[2].max())]
            r0 = int(np.flatnonzero(img[0].any(1))[0])
            starts[src].add((int(img[0][img[0] > 0].min()), r0))
    assert len(starts[(30, 12)]) > 5 and len(starts[(9, 9)]) > 3


def test_flips_flip_image_and_mask_together():
    ds = CoordinateDataset([(6, 10)] * 12)
    flips = []
    for images, masks in iterate_dataset(ds, 3, flip=True, seed=1, shuffle=False):
        for image, mask in zip(images, masks):
            flipped = image[1, 0, 0] == 10  # column 9 (+1) on the left: mirrored
            flips.append(flipped)
            _check_window(image, mask, (6, 10), flipped=flipped)
            original = ds.load(0)
            expect_img = original[0][:2, :, ::-1] if flipped else original[0][:2]
            expect_mask = original[1][:, ::-1] if flipped else original[1]
            assert (image[:2] == expect_img).all() and (mask == expect_mask).all()
    assert 0 < sum(flips) < len(flips)  # both outcomes occur


def test_same_seed_same_batches_and_whole_images_at_batch_one():
    ds = CoordinateDataset([(30, 12), (9, 9), (20, 40), (16, 16), (5, 33)])
    runs = [list(iterate_dataset(ds, 2, crop=(12, 20), flip=True, seed=s)) for s in (7, 7, 8)]
    assert len(runs[0]) == batch_count(ds, 2) == 3
    for (a, ma), (b, mb) in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ma, mb)
    assert any(a.shape != b.shape or not np.array_equal(a, b) for (a, _), (b, _) in zip(runs[0], runs[2]))
    whole = list(iterate_dataset(ds, 1, shuffle=False))
    assert [tuple(m.shape[1:]) for _, m in whole] == ds.sizes
    assert all(np.array_equal(x[0], ds.load(i)[0]) for i, (x, _) in enumerate(whole))
    with pytest.raises(ValueError, match="batch_size=1"):
        next(iterate_dataset(ds, 2))
    assert batch_count(ds, 2, drop_last=True) == len(list(iterate_dataset(ds, 2, crop=8, drop_last=True))) == 2


def test_batches_of_a_real_sample(sample):
    ds = VOCDataset(sample, "train")
    seen = 0
    for images, masks in iterate_dataset(ds, 4, crop=24, flip=True, seed=0):
        assert images.shape[1:] == (3, 24, 24) and masks.shape[1:] == (24, 24)
        assert set(np.unique(masks)) <= set(range(ds.num_classes)) | {255}
        seen += len(images)
    assert seen == len(ds)


def test_skip_leaves_out_batches_without_changing_the_rest():
    ds = CoordinateDataset([(30, 12), (9, 9), (20, 40), (16, 16), (5, 33), (8, 8), (12, 30)])
    full = list(iterate_dataset(ds, 2, crop=10, flip=True, seed=4))
    loads = []
    ds.load = lambda i, _load=ds.load: loads.append(i) or _load(i)
    rest = list(iterate_dataset(ds, 2, crop=10, flip=True, seed=4, skip=2))
    assert len(rest) == len(full) - 2 and len(loads) == len(ds) - 4  # the skipped files are not read
    for (a, ma), (b, mb) in zip(full[2:], rest):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ma, mb)


def test_evaluate_dataset_matches_evaluate_on_stacked_arrays(tmp_path):
    from fcn_scratch.layers import SoftmaxCrossEntropy
    from fcn_scratch.models import FCN8s
    from fcn_scratch.train import evaluate

    write_sample(tmp_path, n=6, size=24, seed=2)  # one size, so the arrays stack
    ds = VOCDataset(tmp_path, "train")
    model = FCN8s(ds.num_classes, widths=(4, 4, 6, 6, 8), convs_per_block=(1, 1, 1, 1, 1), fc_channels=8,
                  dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    model.load_state_dict({k: rng.standard_normal(v.shape) * 0.5 for k, v in model.state_dict().items()})
    got = evaluate_dataset(model, ds, with_loss=True)
    x, m = ds.arrays()
    want = evaluate(model, x.astype(np.float64), m, num_classes=ds.num_classes)
    np.testing.assert_array_equal(got["confusion_matrix"], want["confusion_matrix"])
    assert got["confusion_matrix"].sum() == (m != 255).sum()
    assert len(np.flatnonzero(got["confusion_matrix"].sum(axis=0))) > 1  # predictions are not all one class
    assert got["mean_iou"] == want["mean_iou"]
    model.eval()
    loss = SoftmaxCrossEntropy().forward(model.forward(x.astype(np.float64)), m)
    assert abs(got["loss"] - loss) < 1e-12
    with pytest.raises(ValueError, match="predicts 3 classes"):
        evaluate_dataset(FCN8s(3, widths=(4, 4, 4, 4, 4), convs_per_block=(1,) * 5, fc_channels=4), ds)


def test_write_sample_refuses_bad_arguments(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="cannot create"):
        write_sample(tmp_path / "file", n=2)
    with pytest.raises(ValueError, match="n must be >= 2"):
        write_sample(tmp_path / "d", n=1)
    with pytest.raises(ValueError, match="8 <= min <= max"):
        write_sample(tmp_path / "d", n=4, size=(40, 20))
    with pytest.raises(ValueError, match="image_format"):
        write_sample(tmp_path / "d", n=4, image_format="gif")

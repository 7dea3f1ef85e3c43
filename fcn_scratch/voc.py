"""Datasets on disk in PASCAL VOC 2012 layout: read, validate, batch, and write a toy sample.

The layout (what VOC 2012 and torchvision's ``VOCSegmentation`` use)::

    DIR/JPEGImages/<id>.jpg            the images (.jpg, .jpeg or .png; looked for in that order)
    DIR/SegmentationClass/<id>.png     the masks: palette PNGs whose *indices* are the class ids,
                                       255 = void (not scored, no loss); plain 8-bit grey PNGs work too
    DIR/ImageSets/Segmentation/train.txt   one id per line (blank lines skipped)
    DIR/ImageSets/Segmentation/val.txt
    DIR/labels.txt                     optional: the class names, one per line, in id order

Without ``labels.txt`` the classes are ``class_0``, ``class_1``, ... up to the
largest id seen in the masks (over every split opened together by
:func:`open_splits`, so train and val agree).

* :class:`VOCDataset` ``(root, split)``: ``ids``, ``class_names``, ``num_classes``,
  ``sizes`` ``[(H, W), ...]``, ``len(ds)``, ``ds.load(i) -> (image (3, H, W) float32
  normalised as fcn_scratch.data.normalize, mask (H, W) int64)``.
* :func:`open_splits` ``(root, ("train", "val"))`` -> datasets sharing one class list.
* :func:`iterate_dataset` mini-batches ``(images (B, 3, S, S), masks (B, S, S))``:
  whole images at batch size 1 (the paper's way), or random crops / pads to ``crop``
  with optional horizontal flips, all drawn from one seeded generator.
* :func:`evaluate_dataset` the metrics of a model on whole images of any sizes.
* :func:`write_sample` toy shapes (:func:`fcn_scratch.data.toy_shapes`) of mixed
  sizes written in this layout, so the format is documented by example.
* The palette and :func:`save_label_png` live in :mod:`fcn_scratch.viz` (re-exported here).

Validation happens up front, when the dataset is opened, so nothing is partly
trained before a bad file is found. Each problem raises one :class:`DatasetError`
(a ``ValueError``) naming the file: a missing split list, an empty split, a
duplicate id, an id whose image or mask is missing, an unreadable file, an image
and mask of different sizes (both given as WxH), a mask id ``>= num_classes``
other than 255. Its cost: the image *headers* only (Pillow's lazy open, no pixel
decoded) and one decode of every mask. Measured on a shared 2-core machine:
0.4-0.9 ms per image for the 48-80 px sample of :func:`write_sample` (100 images
in 38-93 ms), about 5 ms per 500x375 VOC-size image (so about 7 s for VOC's 1,464
training images), against 30-40 ms to decode and normalise one such JPEG.

Memory: the decoded masks and images take ``H*W*(3*4 + 1)`` bytes per image
(float32 RGB + uint8 ids). When the split's total is at most ``memory_budget``
bytes (default :data:`MEMORY_BUDGET`, 512 MiB) the dataset keeps what it decodes
(masks from validation, images on first load), so the second epoch reads no
file; above the budget every :meth:`VOCDataset.load` reads its two files again
(PASCAL VOC's 1,464 training images take about 3.5 GB, so they are read per batch).
"""

from __future__ import annotations

import math
import os

import numpy as np

from ._validate import pair, positive_int
from .data import CLASS_NAMES, IGNORE_INDEX, denormalize, normalize, toy_shapes
from .atomic import write_atomic
from .images import ImageError, image_size, read_mask, read_rgb, write_png
from .init import make_rng
from .viz import palette, save_label_png

IMAGE_DIR = "JPEGImages"
MASK_DIR = "SegmentationClass"
SPLIT_DIR = os.path.join("ImageSets", "Segmentation")
LABELS_FILE = "labels.txt"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MEMORY_BUDGET = 512 * 2**20  # bytes of decoded images + masks a dataset may keep in memory
BYTES_PER_PIXEL = 3 * 4 + 1  # a float32 RGB image and a uint8 mask


class DatasetError(ValueError):
    """A dataset folder that does not follow the VOC layout; the message names the file."""


def _wxh(hw) -> str:
    return f"{hw[1]}x{hw[0]}"


def split_path(root, split) -> str:
    """``root/ImageSets/Segmentation/<split>.txt``."""
    return os.path.join(os.fspath(root), SPLIT_DIR, f"{split}.txt")


def read_split(root, split) -> list[str]:
    """The ids listed in a split file, in file order; refuses a missing or empty list, a duplicate or a path."""
    path = split_path(root, split)
    if not os.path.isfile(path):
        raise DatasetError(f"split list {path!r} not found (expected one image id per line)")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read split list {path!r}: {exc}") from None
    ids, seen = [], {}
    for number, line in enumerate(lines, 1):
        name = line.strip()
        if not name:
            continue
        # VOC ids are file stems: a separator or '..' could point outside the folder
        if "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
            raise DatasetError(f"split list {path!r} line {number}: {name!r} is not a file name (an id is the "
                               f"stem of JPEGImages/<id>.jpg)")
        if name in seen:
            raise DatasetError(f"split list {path!r} lists id {name!r} twice (lines {seen[name]} and {number})")
        seen[name] = number
        ids.append(name)
    if not ids:
        raise DatasetError(f"split list {path!r} is empty: no image ids")
    return ids


def read_labels(root) -> list[str] | None:
    """The class names of ``root/labels.txt`` (one per line, trailing blank lines ignored), or None."""
    path = os.path.join(os.fspath(root), LABELS_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            names = [line.strip() for line in f.read().splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read class names {path!r}: {exc}") from None
    while names and not names[-1]:
        names.pop()
    if not names:
        raise DatasetError(f"class names {path!r} is empty; delete it to use class_0, class_1, ...")
    if "" in names:
        raise DatasetError(f"class names {path!r} line {names.index('') + 1} is blank (line k names class k-1)")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DatasetError(f"class names {path!r} lists {dup!r} twice")
    if len(names) > IGNORE_INDEX:
        raise DatasetError(f"class names {path!r} lists {len(names)} classes; at most {IGNORE_INDEX} "
                           f"(ids 0..254, 255 is void)")
    return names


def _image_path(root, name) -> str | None:
    for suffix in IMAGE_SUFFIXES:
        path = os.path.join(root, IMAGE_DIR, name + suffix)
        if os.path.isfile(path):
            return path
    return None


def _scan(root, split, max_pixels, budget):
    """Check every file of one split; returns ``(ids, image paths, mask paths, sizes, masks, largest id)``.

    Image sizes come from the headers (no decode); each mask is decoded once
    (its values must be checked). The decoded masks are returned, so an in-memory
    dataset keeps them, while the split's decoded size stays within ``budget``
    bytes; past it they are dropped at once (``masks`` is then None).
    """
    ids = read_split(root, split)
    images, masks_paths, sizes, masks, largest, nbytes = [], [], [], [], [], 0
    for name in ids:
        img = _image_path(root, name)
        if img is None:
            raise DatasetError(f"image for id {name!r} (split {split!r}) not found: expected "
                               f"{os.path.join(root, IMAGE_DIR, name + '.jpg')!r} or .png")
        msk = os.path.join(root, MASK_DIR, name + ".png")
        if not os.path.isfile(msk):
            raise DatasetError(f"mask for id {name!r} (split {split!r}) not found: expected {msk!r}")
        try:
            hw = image_size(img, max_pixels=max_pixels)
            mask = read_mask(msk, max_pixels=max_pixels)
        except ImageError as exc:  # already names the file
            raise DatasetError(str(exc)) from None
        if mask.shape != hw:
            raise DatasetError(f"mask {msk!r} is {_wxh(mask.shape)} but its image {img!r} is {_wxh(hw)} (WxH)")
        present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256)[:IGNORE_INDEX])
        images.append(img)
        masks_paths.append(msk)
        sizes.append(hw)
        nbytes += hw[0] * hw[1] * BYTES_PER_PIXEL
        largest.append(int(present[-1]) if present.size else -1)
        if masks is not None:
            masks.append(mask)
            if nbytes > budget:
                masks = None  # will be read per batch: hold no more of them now
    return ids, images, masks_paths, sizes, masks, largest


class VOCDataset:
    """One split of a VOC-layout folder, validated when opened (see the module docstring).

    Parameters
    ----------
    root : the dataset folder.
    split : the split list's name, ``"train"`` reads ``ImageSets/Segmentation/train.txt``.
    class_names : overrides ``labels.txt``; ``num_classes`` = their count.
    num_classes : without names: the class count (default: largest id seen + 1); names become
        ``class_0 ..``. A mask id ``>= num_classes`` (other than 255) is an error.
    max_pixels : per-image pixel limit checked before decoding (default
        :data:`fcn_scratch.images.MAX_PIXELS`).
    memory_budget : bytes of decoded data kept in memory (default :data:`MEMORY_BUDGET`);
        ``0`` reads every image from disk on every :meth:`load`.

    Attributes: ``root``, ``split``, ``ids``, ``image_paths``, ``mask_paths``,
    ``sizes`` (``(H, W)`` per image), ``class_names``, ``num_classes``,
    ``nbytes`` (decoded size of the whole split), ``in_memory``.
    """

    def __init__(self, root, split="train", *, class_names=None, num_classes=None, max_pixels=None,
                 memory_budget=MEMORY_BUDGET, _scanned=None):
        root = os.fspath(root)
        if not os.path.isdir(root):
            raise DatasetError(f"dataset folder {root!r} not found" if not os.path.exists(root)
                               else f"dataset {root!r} is not a folder")
        if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, np.integer)) or memory_budget < 0:
            raise ValueError(f"memory_budget must be an int >= 0 (bytes), got {memory_budget!r}")
        self.root, self.split, self.max_pixels = root, str(split), max_pixels
        ids, images, masks_paths, sizes, masks, largest = _scanned or _scan(root, self.split, max_pixels,
                                                                           memory_budget)
        source = "the given class_names list"
        if class_names is None:
            class_names, source = read_labels(root), LABELS_FILE
        if class_names is not None:
            class_names = [str(n) for n in class_names]
            if num_classes is not None and int(num_classes) != len(class_names):
                raise ValueError(f"num_classes={num_classes} but {len(class_names)} class names are given")
            num_classes = len(class_names)
        elif num_classes is None:
            num_classes = max(largest) + 1
            if num_classes < 1:
                raise DatasetError(f"every mask of split {self.split!r} in {root!r} is void (255): "
                                   f"no class to learn")
        num_classes = positive_int(num_classes, "num_classes")
        if num_classes > IGNORE_INDEX:
            raise ValueError(f"num_classes must be <= {IGNORE_INDEX} (255 is void), got {num_classes}")
        for msk, top in zip(masks_paths, largest):
            if top >= num_classes:
                what = f"{source} names {num_classes} classes" if class_names is not None \
                    else f"num_classes is {num_classes}"
                raise DatasetError(f"mask {msk!r} holds class id {top}, but {what} (ids 0..{num_classes - 1}; "
                                   f"255 = void)")
        self.ids, self.image_paths, self.mask_paths, self.sizes = ids, images, masks_paths, sizes
        self.num_classes = num_classes
        self.class_names = class_names if class_names is not None else [f"class_{k}" for k in range(num_classes)]
        self.nbytes = sum(h * w * BYTES_PER_PIXEL for h, w in sizes)
        self.in_memory = self.nbytes <= memory_budget and masks is not None
        self._masks = masks if self.in_memory else None
        self._images = [None] * len(ids) if self.in_memory else None

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (f"VOCDataset({self.root!r}, {self.split!r}: {len(self)} images, {self.num_classes} classes, "
                f"{'in memory' if self.in_memory else 'read per batch'})")

    def _index(self, i) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -len(self) <= i < len(self):
            raise IndexError(f"index {i!r} out of range for a dataset of {len(self)} images")
        return int(i) % len(self)

    def load_mask(self, i) -> np.ndarray:
        """Mask ``i`` as ``(H, W)`` int64 class ids (255 = void), re-checked if read again from disk."""
        i = self._index(i)
        if self._masks is not None:
            return self._masks[i].astype(np.int64)
        path = self.mask_paths[i]
        try:
            mask = read_mask(path, max_pixels=self.max_pixels)
        except ImageError as exc:
            raise DatasetError(str(exc)) from None
        # the file may have changed since validation: the loss must never meet a bad id
        if mask.shape != self.sizes[i]:
            raise DatasetError(f"mask {path!r} is now {_wxh(mask.shape)}, was {_wxh(self.sizes[i])} when "
                               f"the dataset was opened")
        bad = (mask >= self.num_classes) & (mask != IGNORE_INDEX)
        if bad.any():
            raise DatasetError(f"mask {path!r} now holds class id {int(mask[bad].max())} "
                               f">= num_classes {self.num_classes}")
        return mask.astype(np.int64)

    def load_rgb(self, i) -> np.ndarray:
        """Image ``i`` as display RGB ``(H, W, 3)`` float32 in ``[0, 1]`` (read from disk)."""
        i = self._index(i)
        path = self.image_paths[i]
        try:
            rgb = read_rgb(path, max_pixels=self.max_pixels)
        except ImageError as exc:
            raise DatasetError(str(exc)) from None
        if rgb.shape[:2] != self.sizes[i]:
            raise DatasetError(f"image {path!r} is now {_wxh(rgb.shape)}, was {_wxh(self.sizes[i])} when "
                               f"the dataset was opened")
        return rgb

    def load(self, i) -> tuple[np.ndarray, np.ndarray]:
        """``(image (3, H, W) float32, normalised as fcn_scratch.data.normalize, mask (H, W) int64)``."""
        i = self._index(i)
        image = self._images[i] if self._images is not None else None
        if image is None:
            image = normalize(self.load_rgb(i).transpose(2, 0, 1))
            if self._images is not None:
                self._images[i] = image
        return image.copy(), self.load_mask(i)

    def __getitem__(self, i):
        return self.load(i)

    def same_size(self) -> bool:
        """True when every image has the same ``(H, W)`` (then batches of whole images can be stacked)."""
        return len(set(self.sizes)) == 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole split stacked, ``(N, 3, H, W)`` float32 and ``(N, H, W)`` int64; all sizes must match."""
        if not self.same_size():
            a, b = sorted(set(self.sizes))[:2]
            raise ValueError(f"split {self.split!r} holds images of different sizes ({_wxh(a)} and {_wxh(b)}); "
                             f"iterate over them with iterate_dataset instead")
        pairs = [self.load(i) for i in range(len(self))]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def open_splits(root, splits=("train", "val"), *, class_names=None, num_classes=None, max_pixels=None,
                memory_budget=MEMORY_BUDGET) -> dict:
    """Open several splits with one class list: ``{"train": VOCDataset, "val": VOCDataset}``.

    Every split is validated before any dataset is returned. Without ``labels.txt``
    (or ``class_names``/``num_classes``) the class count is the largest id seen in
    *any* of the splits plus one, so a class missing from ``val`` still has its place.
    ``memory_budget`` is shared: the splits are kept in memory in the given order while they fit.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DatasetError(f"dataset folder {root!r} not found" if not os.path.exists(root)
                           else f"dataset {root!r} is not a folder")
    scanned, left = {}, memory_budget
    for s in splits:  # the budget goes to the splits in order while they fit
        scanned[s] = _scan(root, s, max_pixels, left)
        if scanned[s][4] is not None:
            left -= sum(h * w * BYTES_PER_PIXEL for h, w in scanned[s][3])
    if class_names is None:
        class_names = read_labels(root)
    if class_names is None and num_classes is None:
        num_classes = max(max(sc[5]) for sc in scanned.values()) + 1
        if num_classes < 1:
            raise DatasetError(f"every mask in {root!r} is void (255): no class to learn")
    out = {}
    for s in splits:
        kept = scanned[s][4] is not None
        out[s] = VOCDataset(root, s, class_names=class_names, num_classes=num_classes, max_pixels=max_pixels,
                            memory_budget=memory_budget if kept else 0, _scanned=scanned[s])
    return out


# --------------------------------------------------------------------------- batches


def _window(hw, size, rng):
    """Draw one random ``(h, w) = size`` window for an image of ``hw = (H, W)``: its top-left ``(a, b)``.

    Along each axis of length ``L`` the window starts at ``a`` drawn uniformly from
    ``min(0, L - S) .. max(0, L - S)``: ``a >= 0`` cuts rows ``a .. a+S-1`` (the
    window lies inside a larger image); ``a < 0`` places the image ``-a`` rows into
    the window (the window surrounds a smaller image).
    """
    (H, W), (S_h, S_w) = hw, size
    a = int(rng.integers(min(0, H - S_h), max(0, H - S_h) + 1))
    b = int(rng.integers(min(0, W - S_w), max(0, W - S_w) + 1))
    return a, b


def crop_or_pad(image, mask, size, top_left):
    """Cut or pad ``image (C, H, W)`` and ``mask (H, W)`` to the window ``size`` at ``top_left`` (see :func:`_window`).

    Padding is 0 in the image (the mean colour, after normalisation) and 255 (void) in the mask.
    """
    _, H, W = image.shape
    (S_h, S_w), (a, b) = size, top_left
    out_img = np.zeros((image.shape[0], S_h, S_w), dtype=image.dtype)
    out_mask = np.full((S_h, S_w), IGNORE_INDEX, dtype=np.int64)
    y0, y1, x0, x1 = max(a, 0), min(a + S_h, H), max(b, 0), min(b + S_w, W)
    out_img[:, y0 - a : y1 - a, x0 - b : x1 - b] = image[:, y0:y1, x0:x1]
    out_mask[y0 - a : y1 - a, x0 - b : x1 - b] = mask[y0:y1, x0:x1]
    return out_img, out_mask


def batch_count(dataset, batch_size, *, drop_last=False) -> int:
    """How many batches :func:`iterate_dataset` yields per pass."""
    n, batch_size = len(dataset), positive_int(batch_size, "batch_size")
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def iterate_dataset(dataset, batch_size=1, *, crop=None, flip=False, shuffle=True, seed=None, rng=None,
                    drop_last=False, skip=0):
    """Yield ``(images (B, 3, h, w) float32, masks (B, h, w) int64)`` covering ``dataset`` once.

    * ``crop=None``: whole images. Batch size 1 takes any sizes (the FCN paper
      trains so); a larger batch needs every image the same size.
    * ``crop=S`` (or ``(h, w)``): each image is cut to a random ``S x S`` window, or
      padded around when smaller (image with 0 = the mean colour, mask with 255),
      see :func:`_window` and :func:`crop_or_pad`, so images of any size batch together.
    * ``flip``: each sample is mirrored left-right, image and mask together, with probability 1/2.
    * ``skip``: leave out the first ``skip`` batches (resuming inside an epoch) without
      reading their files; their random draws are still made, so the batches after
      them are exactly those of the whole pass.

    Every random choice comes from one generator (``rng``, or a new one from
    ``seed``), drawn in a fixed order -- the permutation first, then per sample
    its window row, column and flip -- from the image sizes alone (known when the
    dataset is opened), before the files are read: the same seed gives the same batches.
    """
    batch_size = positive_int(batch_size, "batch_size")
    size = None if crop is None else pair(crop, "crop", minimum=1)
    if isinstance(skip, bool) or not isinstance(skip, (int, np.integer)) or skip < 0:
        raise ValueError(f"skip must be an int >= 0 (batches to leave out), got {skip!r}")
    if size is None and batch_size > 1 and not dataset.same_size():
        a, b = sorted(set(dataset.sizes))[:2]
        raise ValueError(f"batch_size={batch_size} on whole images needs one image size, but the images differ "
                         f"({_wxh(a)} and {_wxh(b)}): use batch_size=1 (as the FCN paper) or crop=S")
    gen = make_rng(seed, rng) if (shuffle or flip or size is not None) else None
    n = len(dataset)
    order = gen.permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for number, start in enumerate(range(0, stop, batch_size)):
        plan = []
        for i in order[start : start + batch_size]:
            i = int(i)
            window = _window(dataset.sizes[i], size, gen) if size is not None else None
            mirror = bool(flip and gen.random() < 0.5)
            plan.append((i, window, mirror))
        if number < skip:
            continue
        images, masks = [], []
        for i, window, mirror in plan:
            image, mask = dataset.load(i)
            if window is not None:
                image, mask = crop_or_pad(image, mask, size, window)
            if mirror:
                image, mask = image[:, :, ::-1], mask[:, ::-1]
            images.append(image)
            masks.append(mask)
        yield np.ascontiguousarray(np.stack(images)), np.ascontiguousarray(np.stack(masks))


def evaluate_dataset(model, dataset, *, ignore_index=IGNORE_INDEX, with_loss=False) -> dict:
    """Scores of ``model`` on every image of ``dataset`` at its own size (batch 1, eval mode, no_grad).

    One confusion matrix over all pixels of all images (:mod:`fcn_scratch.metrics`),
    so a big image weighs more than a small one, as in :func:`fcn_scratch.train.evaluate`,
    whose keys it returns: ``pixel_accuracy``, ``mean_accuracy``, ``mean_iou``, ``fw_iou``,
    ``per_class_iou``, ``per_class_accuracy``, ``confusion_matrix``; with ``with_loss``
    also ``loss``, the cross-entropy averaged over every non-ignored pixel of the set.
    """
    from .layers import SoftmaxCrossEntropy, no_grad
    from .metrics import ConfusionMatrix

    if getattr(model, "num_classes", dataset.num_classes) != dataset.num_classes:
        raise ValueError(f"the model predicts {model.num_classes} classes but the dataset has "
                         f"{dataset.num_classes} ({', '.join(dataset.class_names[:5])}...)")
    cm = ConfusionMatrix(dataset.num_classes, ignore_index)
    criterion = SoftmaxCrossEntropy(ignore_index=ignore_index)
    loss_sum, pixels = 0.0, 0
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        for i in range(len(dataset)):
            image, mask = dataset.load(i)
            with no_grad():
                logits = model.forward(image[None].astype(model.dtype, copy=False))
            cm.update(mask[None], logits.argmax(axis=1))
            if with_loss:
                valid = int((mask != ignore_index).sum())
                if valid:  # the layer's mean over this image's valid pixels, back to a sum
                    loss_sum += criterion.forward(logits, mask[None]) * valid
                    pixels += valid
    finally:
        model.train(was_training)
    out = cm.scores()
    out["confusion_matrix"] = cm.matrix.copy()
    if with_loss:
        out["loss"] = loss_sum / pixels if pixels else 0.0
    return out


# --------------------------------------------------------------------------- a toy sample in this layout


def _size_range(size):
    if isinstance(size, (bool, np.bool_)):
        raise TypeError(f"size must be an int or a (min, max) pair, got {size!r}")
    if isinstance(size, (int, np.integer)):
        lo = hi = int(size)
    elif isinstance(size, (tuple, list)) and len(size) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size):
        lo, hi = int(size[0]), int(size[1])
    else:
        raise TypeError(f"size must be an int or a (min, max) pair of ints, got {size!r}")
    if lo < 8 or hi < lo:
        raise ValueError(f"size must satisfy 8 <= min <= max, got {size!r}")
    return lo, hi


def sample_arrays(n=100, size=(48, 80), *, seed=0, ignore_border=1):
    """The images and masks :func:`write_sample` writes: a list of ``(id, rgb (H, W, 3) uint8, mask (H, W) int64)``.

    Image ``i`` is ``toy_shapes(1, (H_i, W_i), seed=s_i, ignore_border=...)``; ``H_i``,
    ``W_i`` (each uniform in ``size``'s inclusive range) and ``s_i`` are drawn up front
    from ``default_rng(seed)``. RGB is quantised to 8 bits as a PNG holds it.
    """
    n = positive_int(n, "n")
    lo, hi = _size_range(size)
    rng = make_rng(seed, None)
    dims = rng.integers(lo, hi + 1, size=(n, 2))
    seeds = rng.integers(0, 2**31 - 1, size=n)
    digits = max(4, len(str(n - 1)))
    out = []
    for i in range(n):
        x, m = toy_shapes(1, (int(dims[i, 0]), int(dims[i, 1])), seed=int(seeds[i]), ignore_border=ignore_border)
        rgb = np.round(denormalize(x[0]) * 255).astype(np.uint8).transpose(1, 2, 0)
        out.append((f"shapes_{i:0{digits}d}", np.ascontiguousarray(rgb), m[0]))
    return out


def _write_text(path, lines):
    data = "".join(f"{line}\n" for line in lines).encode("utf-8")
    write_atomic(path, lambda f: f.write(data), suffix=".txt")


def write_sample(out_dir, n=100, size=(48, 80), *, seed=0, val_fraction=0.2, ignore_border=1,
                 image_format="png") -> dict:
    """Write ``n`` toy-shapes images in VOC layout under ``out_dir``; returns a summary dict.

    * ``JPEGImages/<id>.png`` (lossless, so a reader gets exactly these pixels; the
      folder keeps VOC's name) or ``.jpg`` with ``image_format="jpg"`` (as VOC ships; quality 95 without chroma
      subsampling: mean error 0.013 of the range on these noisy images, 0.04 with 4:2:0);
    * ``SegmentationClass/<id>.png`` 8-bit palette PNGs in VOC's palette, 255 = void
      (the ``ignore_border``-pixel band along label borders, 0 for none);
    * ``labels.txt`` :data:`fcn_scratch.data.CLASS_NAMES`; ``ImageSets/Segmentation/train.txt``
      and ``val.txt``: the first ``n - n_val`` ids, then the last ``n_val = max(1, round(n * val_fraction))``.

    Sizes vary per image (``size`` = ``(min, max)`` side in pixels, or one int), see
    :func:`sample_arrays`. Existing files of the same names are replaced; the split
    lists are written last, so a reader never meets an id whose files are not there yet.
    """
    n = positive_int(n, "n")
    if n < 2:
        raise ValueError(f"n must be >= 2 (at least one training and one validation image), got {n}")
    if not isinstance(val_fraction, (int, float)) or isinstance(val_fraction, bool) or not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
    if image_format not in ("png", "jpg"):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    items = sample_arrays(n, size, seed=seed, ignore_border=ignore_border)
    out_dir = os.fspath(out_dir)
    for sub in (IMAGE_DIR, MASK_DIR, SPLIT_DIR):
        try:
            os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
        except OSError as exc:  # a file in the way, a read-only disk, ...
            raise ValueError(f"cannot create {os.path.join(out_dir, sub)!r}: {exc.strerror or exc}") from None
    for name, rgb, mask in items:
        image_path = os.path.join(out_dir, IMAGE_DIR, f"{name}.{image_format}")
        if image_format == "png":
            write_png(image_path, rgb)
        else:
            from PIL import Image

            write_atomic(image_path, lambda f: Image.fromarray(rgb).save(f, format="JPEG", quality=95,
                                                                              subsampling=0),
                         suffix=".jpg")
        save_label_png(mask, os.path.join(out_dir, MASK_DIR, f"{name}.png"))
    _write_text(os.path.join(out_dir, LABELS_FILE), CLASS_NAMES)
    ids = [name for name, _, _ in items]
    _write_text(split_path(out_dir, "train"), ids[: n - n_val])
    _write_text(split_path(out_dir, "val"), ids[n - n_val :])
    sizes = [m.shape for _, _, m in items]
    return dict(root=out_dir, train=n - n_val, val=n_val, class_names=list(CLASS_NAMES),
                min_size=_wxh(min(sizes, key=lambda s: s[0] * s[1])),
                max_size=_wxh(max(sizes, key=lambda s: s[0] * s[1])), image_format=image_format)


__all__ = ["VOCDataset", "DatasetError", "open_splits", "read_split", "read_labels", "split_path",
           "iterate_dataset", "batch_count", "crop_or_pad", "evaluate_dataset", "write_sample", "sample_arrays",
           "save_label_png", "palette", "MEMORY_BUDGET", "IMAGE_SUFFIXES"]

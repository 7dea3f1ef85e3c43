"""Figures for training runs, drawn with matplotlib's object API (no pyplot, no display needed).

* :func:`colorize` a mask ``(H, W)`` -> RGB ``(H, W, 3)`` uint8 with the PASCAL VOC palette
* :func:`predictions_figure` a grid: image | ground truth | prediction, with a class legend
* :func:`curves_figure` training loss and validation mean IoU per epoch
* :func:`comparison_figure` image | truth | FCN-32s | FCN-16s | FCN-8s side by side
* :func:`save_mask_png` write a colour mask PNG
* :func:`save_label_png` write class ids as an 8-bit palette PNG in VOC's palette (what VOC tools read)
* :func:`confusion_figure` the confusion matrix as a heat map (rows = truth, normalised per row, counts in cells)
* :func:`overlay_figure` the colour mask blended over the image, with a legend of the class names
* :func:`png_bytes` a figure rendered to PNG bytes (for pages that embed their images)

Each figure function returns the :class:`matplotlib.figure.Figure` and, given
``path``, also saves it there. Using ``Figure`` directly (not ``pyplot``)
renders through the Agg canvas without touching the user's backend, so this
works on a headless server and inside a notebook alike.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .data import IGNORE_INDEX, to_hwc

VOID_COLOUR = (224, 224, 192)  # VOC's colour for the 255 "ignore" band


def palette(num_classes: int) -> np.ndarray:
    """PASCAL VOC's colour map ``(K, 3)`` uint8: class bits spread over the high bits of R, G, B.

    0 black, 1 dark red, 2 green, 3 olive, 4 navy, 5 purple, ... distinct for any K <= 256.
    """
    colours = np.zeros((num_classes, 3), dtype=np.uint8)
    for k in range(num_classes):
        c, r, g, b = k, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours[k] = r, g, b
    return colours


def colorize(mask, num_classes: int | None = None) -> np.ndarray:
    """Class ids ``(H, W)`` -> RGB ``(H, W, 3)`` uint8; ``255`` (ignored) in VOC's cream colour."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype.kind not in "iu":
        raise ValueError(f"mask must be an (H, W) integer array, got shape {mask.shape}, dtype {mask.dtype}")
    valid = mask != IGNORE_INDEX
    K = int(mask[valid].max()) + 1 if num_classes is None and valid.any() else (num_classes or 1)
    if valid.any() and (mask[valid].min() < 0 or mask[valid].max() >= K):
        raise ValueError(f"mask holds class ids outside [0, {K})")
    lut = palette(K)
    out = np.empty(mask.shape + (3,), dtype=np.uint8)
    out[valid] = lut[mask[valid]]
    out[~valid] = VOID_COLOUR
    return out


def save_mask_png(mask, path, num_classes: int | None = None) -> None:
    """Write ``mask (H, W)`` as a colour PNG (VOC palette), pixel for pixel."""
    from matplotlib.image import imsave

    imsave(path, colorize(mask, num_classes))


def _legend(fig, class_names, ncol=6, ignored="ignored (255)"):
    colours = palette(len(class_names)) / 255.0
    handles = [Patch(facecolor=colours[k], edgecolor="0.5", label=name) for k, name in enumerate(class_names)]
    handles.append(Patch(facecolor=np.array(VOID_COLOUR) / 255.0, edgecolor="0.5", label=ignored))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), ncol), frameon=False, fontsize=9)


def _show(ax, picture, title=None):
    ax.imshow(picture, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)


def _finish(fig, path):
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def predictions_figure(images, masks, preds, class_names, path=None, *, max_rows=6, title=None) -> Figure:
    """Rows of image | ground truth | prediction for the first ``max_rows`` images.

    images ``(N, 3, H, W)`` (normalised as :func:`fcn_scratch.data.normalize`),
    masks and preds ``(N, H, W)`` int.
    """
    n = min(len(images), max_rows)
    K = len(class_names)
    top_in = 0.75 if title else 0.35  # inches above the grid for the suptitle and column titles
    height = 2.1 * n + 0.8 + top_in
    fig = Figure(figsize=(6.6, height))
    axes = fig.subplots(n, 3, squeeze=False)
    for i in range(n):
        correct = np.mean((preds[i] == masks[i])[masks[i] != IGNORE_INDEX]) if (masks[i] != IGNORE_INDEX).any() else np.nan
        _show(axes[i, 0], to_hwc(images[i]), "image" if i == 0 else None)
        _show(axes[i, 1], colorize(masks[i], K), "ground truth" if i == 0 else None)
        _show(axes[i, 2], colorize(preds[i], K), "prediction" if i == 0 else None)
        axes[i, 2].set_xlabel(f"{100 * correct:.1f}% pixels right", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.15 / height)
    fig.subplots_adjust(left=0.03, right=0.97, top=1 - top_in / height, bottom=0.8 / height,
                        wspace=0.05, hspace=0.25)
    _legend(fig, class_names, ncol=3)
    return _finish(fig, path)


def curves_figure(history, path=None, *, title=None) -> Figure:
    """Training loss (left) and validation mean IoU and pixel accuracy (right) per epoch."""
    fig = Figure(figsize=(9, 3.4))
    ax_loss, ax_iou = fig.subplots(1, 2)
    epochs = history.get("epoch", [])
    ax_loss.plot(epochs, history.get("loss", []), marker="o", ms=3)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (cross-entropy)")
    ax_loss.set_yscale("log")
    ax_loss.grid(alpha=0.3)
    if history.get("val_mean_iou"):
        ax_iou.plot(epochs, history["val_mean_iou"], marker="o", ms=3, label="mean IoU")
        ax_iou.plot(epochs, history["val_pixel_accuracy"], marker="s", ms=3, label="pixel accuracy")
        ax_iou.legend(loc="lower right")
    else:
        ax_iou.text(0.5, 0.5, "no validation data", ha="center", va="center", transform=ax_iou.transAxes)
    ax_iou.set_xlabel("epoch")
    ax_iou.set_ylabel("validation")
    ax_iou.set_ylim(0, 1)
    ax_iou.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, path)


def comparison_figure(images, masks, preds_by_model: dict, class_names, path=None, *, scores=None,
                      max_rows=5, words=("image", "ground truth", "ignored (255)")) -> Figure:
    """Image | truth | one column per model (e.g. FCN-32s, FCN-16s, FCN-8s); ``scores`` adds mIoU to titles.

    ``words``: the two column titles and the void pixels' legend entry (a lesson passes its own language's).
    """
    names = list(preds_by_model)
    n = min([len(images), max_rows] + [len(p) for p in preds_by_model.values()])
    cols = 2 + len(names)
    K = len(class_names)
    top_in = 0.55 if scores else 0.35
    height = 2.1 * n + 0.6 + top_in
    fig = Figure(figsize=(2.1 * cols, height))
    axes = fig.subplots(n, cols, squeeze=False)
    for i in range(n):
        _show(axes[i, 0], to_hwc(images[i]), words[0] if i == 0 else None)
        _show(axes[i, 1], colorize(masks[i], K), words[1] if i == 0 else None)
        for j, name in enumerate(names):
            head = name if scores is None or name not in scores else f"{name}\nmIoU {scores[name]:.3f}"
            _show(axes[i, 2 + j], colorize(preds_by_model[name][i], K), head if i == 0 else None)
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - top_in / height, bottom=0.6 / height,
                        wspace=0.05, hspace=0.08)
    _legend(fig, class_names, ignored=words[2])
    return _finish(fig, path)


def voc_palette_bytes() -> bytes:
    """The 768-byte palette of a VOC label PNG: ``palette(256)`` flattened as R, G, B, R, G, B, ...

    The bit-interleaving rule gives entry 255 exactly VOC's void colour (224, 224, 192).
    """
    return palette(256).tobytes()


def save_label_png(mask, path) -> None:
    """Write class ids ``mask (H, W)`` (0..254, and 255 = void) as an 8-bit palette PNG (mode ``"P"``).

    The pixel values *are* the class ids; the palette only colours them (VOC's
    ``labelcolormap``), so VOC tools, Pillow (``Image.open(p)`` -> ``np.array``)
    and :func:`fcn_scratch.images.read_mask` read the ids back unchanged.
    Written to a temporary file and renamed: a reader never sees half a PNG.
    """
    from PIL import Image

    from .atomic import write_atomic

    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype.kind not in "iu" or mask.size == 0:
        raise ValueError(f"mask must be a non-empty (H, W) integer array, got shape {mask.shape}, dtype {mask.dtype}")
    if mask.min() < 0 or mask.max() > 255:
        raise ValueError(f"mask values must be class ids in [0, 255] (255 = void), got [{mask.min()}, {mask.max()}]")
    H, W = mask.shape
    # the bytes are the palette indices, as they are
    img = Image.frombytes("P", (W, H), np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
    img.putpalette(voc_palette_bytes())
    write_atomic(path, lambda f: img.save(f, format="PNG"), suffix=".png")


def png_bytes(fig, dpi=100, metadata=None) -> bytes:
    """Render a matplotlib ``Figure`` to PNG bytes (Agg canvas, no display); ``metadata``: PNG text chunks."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata=metadata)
    return buf.getvalue()


def confusion_figure(cm, class_names, path=None, *, title=None) -> Figure:
    """The confusion matrix ``cm (K, K)`` (rows = truth, columns = prediction) as a heat map.

    Each row is normalised by its total, ``cm[i, j] / sum_j cm[i, j]`` (the share of
    class ``i``'s pixels predicted as ``j``; a class absent from the truth gives a
    blank row), so the diagonal is each class's accuracy whatever its frequency.
    The raw pixel counts are written in the cells.
    """
    cm = np.asarray(cm)
    K = len(class_names)
    if cm.ndim != 2 or cm.shape != (K, K) or cm.dtype.kind not in "iuf":
        raise ValueError(f"cm must be a ({K}, {K}) numeric matrix (one row and column per class name), "
                         f"got shape {cm.shape}, dtype {cm.dtype}")
    if not np.isfinite(cm).all() or (cm < 0).any():
        raise ValueError("cm must hold finite, non-negative counts")
    rows = cm.sum(axis=1, keepdims=True).astype(np.float64)
    share = np.full(cm.shape, np.nan)
    np.divide(cm, rows, out=share, where=rows > 0)
    side = max(3.5, 0.55 * K + 2.0)
    fig = Figure(figsize=(side + 1.0, side))
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(share), cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class's pixels")
    ax.set_xticks(range(K), labels=[str(n) for n in class_names], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(K), labels=[str(n) for n in class_names], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    fontsize = 8 if K <= 8 else max(4, 8 - (K - 8) // 3)
    for i in range(K):
        for j in range(K):
            value = cm[i, j]
            text = f"{int(value)}" if cm.dtype.kind in "iu" or float(value).is_integer() else f"{value:.3g}"
            dark = share[i, j] == share[i, j] and share[i, j] > 0.5
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color="white" if dark else "black")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _finish(fig, path)


def overlay_figure(image, mask, class_names, path=None, *, alpha=0.5, title=None) -> Figure:
    """The colour mask blended over the image, ``(1 - alpha) * image + alpha * colour``, with a class legend.

    image ``(H, W, 3)`` display RGB in ``[0, 1]`` (or a network image ``(3, H, W)``,
    normalised as :func:`fcn_scratch.data.normalize`), mask ``(H, W)`` class ids
    (255 = void, drawn cream). The legend lists every class name.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[2] != 3:
        image = to_hwc(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB in [0, 1] or (3, H, W), got shape {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask must be (H, W) = {image.shape[:2]} like the image, got shape {mask.shape}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    colour = colorize(mask, len(class_names)) / 255.0
    blend = np.clip((1.0 - alpha) * image.astype(np.float64) + alpha * colour, 0.0, 1.0)
    H, W = mask.shape
    width = 6.0
    rows = (len(class_names) + 1 + 2) // 3
    legend_in = 0.3 * rows + 0.2
    top_in = 0.4 if title else 0.1
    height = width * H / W + legend_in + top_in
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0.0, legend_in / height, 1.0, 1.0 - (legend_in + top_in) / height))
    ax.imshow(blend, interpolation="nearest")
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.05 / height)
    _legend(fig, class_names, ncol=3)
    return _finish(fig, path)


__all__ = ["palette", "colorize", "save_mask_png", "save_label_png", "voc_palette_bytes", "png_bytes",
           "predictions_figure", "curves_figure", "comparison_figure", "confusion_figure", "overlay_figure"]

"""Figures for training runs, drawn with matplotlib's object API (no pyplot, no display needed).

* :func:`colorize` a mask ``(H, W)`` -> RGB ``(H, W, 3)`` uint8 with the PASCAL VOC palette
* :func:`predictions_figure` a grid: image | ground truth | prediction, with a class legend
* :func:`curves_figure` training loss and validation mean IoU per epoch
* :func:`comparison_figure` image | truth | FCN-32s | FCN-16s | FCN-8s side by side
* :func:`save_mask_png` write a colour mask PNG

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


def _legend(fig, class_names, ncol=6):
    colours = palette(len(class_names)) / 255.0
    handles = [Patch(facecolor=colours[k], edgecolor="0.5", label=name) for k, name in enumerate(class_names)]
    handles.append(Patch(facecolor=np.array(VOID_COLOUR) / 255.0, edgecolor="0.5", label="ignored (255)"))
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
                      max_rows=5) -> Figure:
    """Image | truth | one column per model (e.g. FCN-32s, FCN-16s, FCN-8s); ``scores`` adds mIoU to titles."""
    names = list(preds_by_model)
    n = min([len(images), max_rows] + [len(p) for p in preds_by_model.values()])
    cols = 2 + len(names)
    K = len(class_names)
    top_in = 0.55 if scores else 0.35
    height = 2.1 * n + 0.6 + top_in
    fig = Figure(figsize=(2.1 * cols, height))
    axes = fig.subplots(n, cols, squeeze=False)
    for i in range(n):
        _show(axes[i, 0], to_hwc(images[i]), "image" if i == 0 else None)
        _show(axes[i, 1], colorize(masks[i], K), "ground truth" if i == 0 else None)
        for j, name in enumerate(names):
            head = name if scores is None or name not in scores else f"{name}\nmIoU {scores[name]:.3f}"
            _show(axes[i, 2 + j], colorize(preds_by_model[name][i], K), head if i == 0 else None)
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - top_in / height, bottom=0.6 / height,
                        wspace=0.05, hspace=0.08)
    _legend(fig, class_names)
    return _finish(fig, path)


__all__ = ["palette", "colorize", "save_mask_png", "predictions_figure", "curves_figure", "comparison_figure"]

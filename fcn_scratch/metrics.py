"""Segmentation metrics from one confusion matrix over the whole dataset (FCN paper, section 5).

``cm[i, j]`` counts pixels of true class ``i`` predicted as ``j`` (rows = truth),
accumulated over *every* image before any ratio is taken (averaging per-image
scores would weight a tiny image as much as a big one). With ``n_ij = cm[i, j]``,
``t_i = sum_j n_ij`` (row: pixels of class i) and ``p_j = sum_i n_ij`` (column:
pixels predicted as j):

* pixel accuracy ``sum_i n_ii / sum_i t_i``
* mean accuracy ``nanmean_i (n_ii / t_i)``
* IoU ``n_ii / (t_i + p_i - n_ii)``; mean IoU ``nanmean_i IoU_i``
* frequency-weighted IoU ``sum_i (t_i / sum t) * IoU_i``

A class absent from both truth and prediction has ``0 / 0`` = NaN IoU and is
left out of the means (no warning is raised for it).
"""

from __future__ import annotations

import numpy as np

from ._validate import positive_int

# A (K, K) int64 matrix of 4096 classes is 128 MiB; datasets segment 21 (VOC) to about 1,200 (LVIS) classes.
MAX_CLASSES = 4096


def _num_classes(num_classes) -> int:
    K = positive_int(num_classes, "num_classes")
    if K > MAX_CLASSES:
        raise ValueError(f"num_classes must be at most {MAX_CLASSES} (the confusion matrix is num_classes**2 "
                         f"int64 counts), got {K}")
    return K


def _plain(a, name):
    """``a`` as an ndarray; a masked array is refused (``np.asarray`` would silently drop its mask)."""
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{name} is a numpy masked array, whose mask would be ignored; fill the masked "
                        f"pixels first, e.g. {name}.filled(255) to mark them ignore_index")
    return np.asarray(a)


def confusion_matrix(truth, pred, num_classes: int, ignore_index: int | None = 255) -> np.ndarray:
    """``(K, K)`` int64 counts, rows = truth, columns = prediction; ``ignore_index`` pixels skipped.

    ``truth`` and ``pred`` are integer arrays of the same shape (any, e.g. ``(N, H, W)``).
    Truth must be in ``[0, K)`` or ``ignore_index``; predictions in ``[0, K)``;
    ``1 <= K <= MAX_CLASSES`` (4096). One ``np.bincount`` over ``K * truth + pred`` does the counting.
    """
    K = _num_classes(num_classes)
    truth, pred = _plain(truth, "truth"), _plain(pred, "pred")
    for name, a in (("truth", truth), ("pred", pred)):
        if a.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integer class ids, got dtype {a.dtype}")
    if truth.shape != pred.shape:
        raise ValueError(f"truth and pred must have the same shape, got {truth.shape} and {pred.shape}")
    keep = np.ones(truth.shape, dtype=bool) if ignore_index is None else truth != ignore_index
    t, p = truth[keep].astype(np.int64), pred[keep].astype(np.int64)
    if t.size and (t.min() < 0 or t.max() >= K):
        bad = t[(t < 0) | (t >= K)][0]
        raise ValueError(f"truth contains {bad}, outside [0, {K}) and not ignore_index={ignore_index}")
    if p.size and (p.min() < 0 or p.max() >= K):
        bad = p[(p < 0) | (p >= K)][0]
        raise ValueError(f"pred contains {bad}, outside [0, {K})")
    return np.bincount(K * t + p, minlength=K * K).reshape(K, K)


def _ratio(num, den):
    """Elementwise ``num / den`` with NaN where ``den == 0`` (and no warning)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _nanmean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    ok = ~np.isnan(x)
    return float(x[ok].mean()) if ok.any() else float("nan")


def scores(cm) -> dict:
    """All metrics of a confusion matrix ``cm (K, K)`` (rows = truth).

    Returns floats ``pixel_accuracy``, ``mean_accuracy``, ``mean_iou``, ``fw_iou``
    and lists ``per_class_iou``, ``per_class_accuracy`` (NaN for a class absent
    from the truth, and for IoU also from the prediction). An empty matrix gives NaN everywhere.
    ``cm`` must hold counts: integers, or finite floats (e.g. a normalised matrix), all >= 0.
    """
    cm = _plain(cm, "cm")
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] < 1:
        raise ValueError(f"cm must be a square (K, K) matrix with K >= 1, got shape {cm.shape}")
    if cm.dtype.kind not in "iuf" and cm.dtype != np.bool_:
        raise TypeError(f"cm must hold numeric counts, got dtype {cm.dtype}")
    if cm.dtype.kind == "f" and not np.isfinite(cm).all():
        raise ValueError("cm must hold finite counts, got NaN or inf")
    if cm.size and cm.min() < 0:
        raise ValueError(f"cm must hold counts >= 0, got {cm.min()}")
    cm = cm.astype(np.float64)
    diag = np.diag(cm)
    rows, cols, total = cm.sum(axis=1), cm.sum(axis=0), cm.sum()
    acc = _ratio(diag, rows)
    iou = _ratio(diag, rows + cols - diag)
    freq = _ratio(rows, total)
    present = rows > 0  # classes in the truth; their IoU is never NaN
    return {
        "pixel_accuracy": float(_ratio(diag.sum(), total)),
        "mean_accuracy": _nanmean(acc),
        "mean_iou": _nanmean(iou),
        "fw_iou": float((freq[present] * iou[present]).sum()) if total else float("nan"),
        "per_class_iou": iou.tolist(),
        "per_class_accuracy": acc.tolist(),
    }


class ConfusionMatrix:
    """Accumulates one confusion matrix over many batches: ``update(truth, pred)``, then ``scores()``."""

    def __init__(self, num_classes: int, ignore_index: int | None = 255):
        self.num_classes = _num_classes(num_classes)
        self.ignore_index = ignore_index
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, truth, pred) -> "ConfusionMatrix":
        self.matrix += confusion_matrix(truth, pred, self.num_classes, self.ignore_index)
        return self

    def reset(self) -> None:
        self.matrix[...] = 0

    def scores(self) -> dict:
        return scores(self.matrix)


__all__ = ["MAX_CLASSES", "confusion_matrix", "scores", "ConfusionMatrix"]

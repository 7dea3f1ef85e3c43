"""Exercise 12 (lesson 09): the confusion matrix and mean IoU (FCN paper, section 5).

Write both functions, then grade them:

    fcn-scratch exercise check mean_iou

You may use numpy. Do not import the engine's ``fcn_scratch.metrics`` (``confusion_matrix``,
``scores``, ``ConfusionMatrix``) or ``fcn_scratch.train.evaluate``: those are the answers.
"""

import numpy as np


def confusion_matrix(truth, pred, num_classes, ignore_index=255):
    """``(K, K)`` int64 counts: ``cm[t, p]`` = pixels of true class t predicted as p (rows = truth).

    truth, pred: integer arrays of the same shape (e.g. ``(N, H, W)``); truth in
    ``[0, K)`` or ``ignore_index`` (those pixels are skipped, whatever the
    prediction; ``ignore_index=None`` skips nothing); pred in ``[0, K)``.

    Hint: after dropping the ignored pixels, one call does the counting:
    ``np.bincount(K * t + p, minlength=K * K).reshape(K, K)``.
    """
    raise NotImplementedError("write confusion_matrix (exercise 12)")


def scores(cm):
    """Every metric of one confusion matrix ``cm (K, K)``, as a dict.

    With n_ij = cm[i, j], t_i = sum_j n_ij (row: pixels of class i) and
    p_j = sum_i n_ij (column: pixels predicted as j):

        "pixel_accuracy"      sum_i n_ii / sum_i t_i                      float
        "per_class_accuracy"  n_ii / t_i                                  list of K floats
        "mean_accuracy"       nanmean of per_class_accuracy               float
        "per_class_iou"       n_ii / (t_i + p_i - n_ii)                   list of K floats
        "mean_iou"            nanmean of per_class_iou                    float
        "fw_iou"              sum over classes with t_i > 0 of (t_i / sum t) * IoU_i   float

    0/0 is NaN (a class absent from the truth, and for IoU also from the
    prediction): NaN classes are LEFT OUT of the means, not counted as 0.
    An all-zero matrix gives NaN for every score. Hint: ``np.nanmean``, and
    ``np.errstate(invalid="ignore", divide="ignore")`` silences the 0/0 warnings.
    """
    raise NotImplementedError("write scores (exercise 12)")

"""Metrics against confusion matrices computed by hand."""

import warnings

import numpy as np
import pytest

from fcn_scratch.metrics import ConfusionMatrix, confusion_matrix, scores


def test_confusion_matrix_by_hand():
    # 3 classes; one ignored pixel (255) that must not be counted anywhere
    truth = np.array([[0, 0, 1, 1], [2, 2, 255, 0]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 0]])
    expected = np.array([
        [2, 1, 0],  # truth 0: (0,0) right, (0,1) -> 1, (1,3) right
        [0, 2, 0],  # truth 1: both right
        [1, 0, 1],  # truth 2: (1,0) right, (1,1) -> 0
    ])
    cm = confusion_matrix(truth, pred, 3)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)
    assert cm.sum() == 7  # 8 pixels, one ignored


def test_scores_by_hand():
    cm = np.array([
        [50, 2, 3],
        [4, 20, 1],
        [6, 0, 14],
    ])
    s = scores(cm)
    total = 100
    assert s["pixel_accuracy"] == pytest.approx(84 / total, rel=1e-12)
    acc = [50 / 55, 20 / 25, 14 / 20]
    assert s["mean_accuracy"] == pytest.approx(np.mean(acc), rel=1e-12)
    # IoU = n_ii / (t_i + p_i - n_ii); columns p = (60, 22, 18)
    iou = [50 / (55 + 60 - 50), 20 / (25 + 22 - 20), 14 / (20 + 18 - 14)]
    np.testing.assert_allclose(s["per_class_iou"], iou)
    np.testing.assert_allclose(s["per_class_accuracy"], acc)
    assert s["mean_iou"] == pytest.approx(np.mean(iou), rel=1e-12)
    assert s["fw_iou"] == pytest.approx(0.55 * iou[0] + 0.25 * iou[1] + 0.20 * iou[2], rel=1e-12)


def test_absent_class_is_nan_and_left_out_of_the_means():
    # class 2 appears neither in the truth nor in the prediction
    truth = np.array([0, 0, 0, 1, 1, 3])
    pred = np.array([0, 0, 1, 1, 1, 0])
    cm = confusion_matrix(truth, pred, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value" or "mean of empty slice" warnings
        s = scores(cm)
    iou = s["per_class_iou"]
    assert np.isnan(iou[2]) and np.isnan(s["per_class_accuracy"][2])
    # class 0: t=3, p=3, n=2 -> 2/4; class 1: t=2, p=3, n=2 -> 2/3; class 3: t=1, p=0, n=0 -> 0
    np.testing.assert_allclose([iou[0], iou[1], iou[3]], [0.5, 2 / 3, 0.0])
    assert s["mean_iou"] == pytest.approx((0.5 + 2 / 3 + 0.0) / 3, rel=1e-12)
    assert s["mean_accuracy"] == pytest.approx((2 / 3 + 1 + 0) / 3, rel=1e-12)
    assert s["pixel_accuracy"] == pytest.approx(4 / 6, rel=1e-12)
    assert s["fw_iou"] == pytest.approx(3 / 6 * 0.5 + 2 / 6 * 2 / 3 + 1 / 6 * 0.0, rel=1e-12)


def test_predicted_but_absent_class_has_zero_iou():
    truth = np.array([0, 0, 0, 0])
    pred = np.array([0, 0, 1, 1])
    s = scores(confusion_matrix(truth, pred, 2))
    assert s["per_class_iou"] == [0.5, 0.0]  # class 1 predicted, never true: IoU 0, not NaN
    assert np.isnan(s["per_class_accuracy"][1])
    assert s["mean_iou"] == pytest.approx(0.25, rel=1e-12)


def test_empty_matrix_is_all_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = scores(np.zeros((3, 3), dtype=np.int64))
        all_ignored = confusion_matrix(np.full((2, 2), 255), np.zeros((2, 2), dtype=int), 3)
    assert all_ignored.sum() == 0
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
        assert np.isnan(s[key])


def _loop_confusion(truth, pred, K, ignore_index=255):
    """The independent count: one pixel at a time, rows = truth."""
    cm = np.zeros((K, K), dtype=np.int64)
    for t, p in zip(np.ravel(truth), np.ravel(pred)):
        if t != ignore_index:
            cm[t, p] += 1
    return cm


def _loop_mean_iou(cm):
    """``nanmean_i n_ii / (t_i + p_i - n_ii)`` with plain Python sums, absent classes left out."""
    K = len(cm)
    ious = []
    for i in range(K):
        union = sum(cm[i][j] for j in range(K)) + sum(cm[j][i] for j in range(K)) - cm[i][i]
        if union:
            ious.append(cm[i][i] / union)
    return sum(ious) / len(ious)


def test_accumulating_over_batches_equals_one_matrix():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, size=(6, 5, 7))
    truth[truth == 3] = 255
    pred = rng.integers(0, 3, size=(6, 5, 7))
    acc = ConfusionMatrix(3)
    for i in range(0, 6, 4):  # batches of 4 and 2 images
        acc.update(truth[i : i + 4], pred[i : i + 4])
    expected = _loop_confusion(truth, pred, 3)
    np.testing.assert_array_equal(acc.matrix, expected)
    assert acc.matrix.sum() == np.count_nonzero(truth != 255)
    # the scores come from that one matrix, not from the mean of per-batch scores
    assert acc.scores()["mean_iou"] == pytest.approx(_loop_mean_iou(expected), rel=1e-12)
    row_acc = [expected[i][i] / sum(expected[i]) for i in range(3) if sum(expected[i])]  # rows = truth
    assert acc.scores()["mean_accuracy"] == pytest.approx(sum(row_acc) / len(row_acc), rel=1e-12)
    per_batch = [_loop_mean_iou(_loop_confusion(truth[i : i + 4], pred[i : i + 4], 3)) for i in range(0, 6, 4)]
    assert abs(np.mean(per_batch) - _loop_mean_iou(expected)) > 1e-3  # the data does tell the two apart
    acc.reset()
    assert acc.matrix.sum() == 0


def test_bincount_matches_a_plain_loop():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 5, size=200)
    pred = rng.integers(0, 5, size=200)
    loop = np.zeros((5, 5), dtype=np.int64)
    for t, p in zip(truth, pred):
        loop[t, p] += 1
    np.testing.assert_array_equal(confusion_matrix(truth, pred, 5), loop)


@pytest.mark.parametrize(
    "truth, pred, exc, match",
    [
        (np.array([0, 3]), np.array([0, 1]), ValueError, "truth contains 3"),
        (np.array([0, 1]), np.array([0, 7]), ValueError, "pred contains 7"),
        (np.array([0, -1]), np.array([0, 1]), ValueError, "truth contains -1"),
        (np.array([0, 1]), np.array([0, 1, 1]), ValueError, "same shape"),
        (np.array([0.0, 1.0]), np.array([0, 1]), TypeError, "truth must hold integer"),
    ],
)
def test_bad_input(truth, pred, exc, match):
    with pytest.raises(exc, match=match):
        confusion_matrix(truth, pred, 3)


def test_scores_rejects_a_non_square_matrix():
    with pytest.raises(ValueError, match="square"):
        scores(np.zeros((2, 3)))

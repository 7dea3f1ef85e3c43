"""Exercise 12 (lesson 09): the confusion matrix and mean IoU (FCN paper, section 5).

Write both functions, then grade them:

    fcn-scratch exercise check mean_iou

You may use numpy. Do not import the engine's ``fcn_scratch.metrics`` (``confusion_matrix``,
``scores``, ``ConfusionMatrix``) or ``fcn_scratch.train.evaluate``: those are the answers.

한국어
------
연습 문제 12 (레슨 09): 혼동 행렬(confusion matrix)과 평균 IoU(mean IoU) (FCN 논문 5절).

두 함수를 작성한 뒤 채점하세요:

    fcn-scratch exercise check mean_iou --lang ko

numpy는 써도 됩니다. 엔진의 ``fcn_scratch.metrics``(``confusion_matrix``, ``scores``,
``ConfusionMatrix``)와 ``fcn_scratch.train.evaluate``는 import하지 마세요: 그것이
정답입니다.
"""

import numpy as np


def confusion_matrix(truth, pred, num_classes, ignore_index=255):
    """``(K, K)`` int64 counts: ``cm[t, p]`` = pixels of true class t predicted as p (rows = truth).

    truth, pred: integer arrays of the same shape (e.g. ``(N, H, W)``); truth in
    ``[0, K)`` or ``ignore_index`` (those pixels are skipped, whatever the
    prediction; ``ignore_index=None`` skips nothing); pred in ``[0, K)``.

    Hint: after dropping the ignored pixels, one call does the counting:
    ``np.bincount(K * t + p, minlength=K * K).reshape(K, K)``.

    한국어: ``(K, K)`` int64 개수 행렬. ``cm[t, p]`` = 정답 클래스(class)가 t인데 p로 예측된
    픽셀(pixel) 수(행 = 정답).

    truth, pred: 모양이 같은 정수 배열(예: ``(N, H, W)``). truth는 ``[0, K)`` 또는
    ``ignore_index``(그런 픽셀은 예측이 무엇이든 건너뜁니다. ``ignore_index=None``이면
    아무것도 건너뛰지 않습니다), pred는 ``[0, K)``입니다.

    힌트: 무시할 픽셀을 뺀 뒤에는 한 번의 호출로 셀 수 있습니다:
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

    한국어: 혼동 행렬 하나 ``cm (K, K)``로 구하는 모든 지표를 dict로 반환합니다.

    n_ij = cm[i, j], t_i = sum_j n_ij(행: 클래스 i의 픽셀 수), p_j = sum_i n_ij(열: j로 예측된
    픽셀 수)라 하면:

        "pixel_accuracy"      sum_i n_ii / sum_i t_i                      float
        "per_class_accuracy"  n_ii / t_i                                  list of K floats
        "mean_accuracy"       nanmean of per_class_accuracy               float
        "per_class_iou"       n_ii / (t_i + p_i - n_ii)                   list of K floats
        "mean_iou"            nanmean of per_class_iou                    float
        "fw_iou"              sum over classes with t_i > 0 of (t_i / sum t) * IoU_i   float

    "pixel_accuracy"는 픽셀 정확도(pixel accuracy), "per_class_accuracy"는 클래스별 정확도,
    "mean_iou"는 평균 IoU, "fw_iou"는 t_i > 0인 클래스들에 빈도 가중치(weight)를 준 IoU입니다.
    "list of K floats"는 float K개의 리스트입니다.

    0/0은 NaN입니다(정답에 없는 클래스, IoU에서는 예측에도 없는 클래스). NaN인 클래스는 0으로
    치지 말고 평균에서 '빼야' 합니다. 모두 0인 행렬이면 모든 점수가 NaN입니다. 힌트:
    ``np.nanmean``, 그리고 ``np.errstate(invalid="ignore", divide="ignore")``로 0/0 경고를
    끌 수 있습니다.
    """
    raise NotImplementedError("write scores (exercise 12)")

"""Exercise 10 (lesson 07): per-pixel softmax cross-entropy with ignored pixels.

Write both functions, then grade them:

    fcn-scratch exercise check softmax_cross_entropy

You may use numpy. Do not import the engine's ``softmax_cross_entropy_forward`` /
``softmax_cross_entropy_backward`` (``fcn_scratch.functional``) or
``fcn_scratch.layers.SoftmaxCrossEntropy``: those are the answers.

한국어
------
연습 문제 10 (레슨 07): 무시하는 픽셀(pixel)이 있는 픽셀별 소프트맥스(softmax) 교차
엔트로피(cross-entropy).

두 함수를 작성한 뒤 채점하세요:

    fcn-scratch exercise check softmax_cross_entropy --lang ko

numpy는 써도 됩니다. 엔진의 ``softmax_cross_entropy_forward`` /
``softmax_cross_entropy_backward``(``fcn_scratch.functional``)와
``fcn_scratch.layers.SoftmaxCrossEntropy``는 import하지 마세요: 그것이 정답입니다.
"""

import numpy as np


def softmax_cross_entropy_forward(logits, labels, ignore_index=255):
    """Mean softmax cross-entropy over the non-ignored pixels: returns ``(loss, cache)``.

    logits ``(N, C, H, W)`` float; labels ``(N, H, W)`` ints in ``[0, C)`` or
    ``ignore_index``. With V the number of pixels whose label is not ignore_index:

        loss = (1/V) * sum over valid pixels of [ log sum_c exp(z_c) - z_label ]

    a Python float; V = 0 gives loss 0.0. The cache is what the backward needs.

    Hints: subtract each pixel's max logit first (``logits - logits.max(axis=1,
    keepdims=True)``): the loss is unchanged and exp cannot overflow. Pick the
    label's logit with ``np.take_along_axis(z, labels[:, None], axis=1)`` after
    replacing ignored labels by 0 (any valid class), then mask them out.

    한국어: 무시하지 않은 픽셀에 대한 소프트맥스 교차 엔트로피의 평균입니다. ``(loss, cache)``를
    반환합니다.

    로짓(logit) ``(N, C, H, W)`` float, 레이블(label) ``(N, H, W)``은 ``[0, C)``의 정수 또는
    ``ignore_index``입니다. 레이블이 ignore_index가 아닌 픽셀 수를 V라 하면:

        loss = (1/V) * sum over valid pixels of [ log sum_c exp(z_c) - z_label ]

    (유효한 픽셀에 대한 합입니다.) 손실(loss)은 Python float이고, V = 0이면 0.0입니다.
    캐시에는 역전파에 필요한 것을 둡니다.

    힌트: 픽셀마다 가장 큰 로짓을 먼저 빼세요(``logits - logits.max(axis=1, keepdims=True)``):
    손실은 변하지 않고 exp가 넘치지(overflow) 않습니다. 무시할 레이블을 0(아무 유효한
    클래스(class))으로 바꾼 뒤 ``np.take_along_axis(z, labels[:, None], axis=1)``로 레이블의
    로짓을 고르고, 그다음 마스크로 무시할 픽셀을 빼세요.
    """
    raise NotImplementedError("write softmax_cross_entropy_forward (exercise 10)")


def softmax_cross_entropy_backward(cache, dloss=1.0):
    """dlogits ``(N, C, H, W)``: the gradient of ``dloss * loss`` w.r.t. the logits.

        dlogits = dloss * (softmax(z) - onehot(label)) / V    on valid pixels
                = 0                                             on ignored pixels

    V = 0 gives all zeros. Keep the logits' dtype.

    한국어: 로짓에 대한 ``dloss * loss``의 기울기(gradient) dlogits ``(N, C, H, W)``.

        dlogits = dloss * (softmax(z) - onehot(label)) / V    on valid pixels
                = 0                                             on ignored pixels

    (유효한 픽셀에서는 첫 줄, 무시한 픽셀에서는 0입니다.) V = 0이면 모두 0입니다. 로짓의
    dtype을 지키세요.
    """
    raise NotImplementedError("write softmax_cross_entropy_backward (exercise 10)")

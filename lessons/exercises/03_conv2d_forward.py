"""Exercise 03 (lesson 03): convolution forward pass by im2col + one GEMM.

Write ``conv2d_forward`` below, then grade it:

    fcn-scratch exercise check conv2d_forward

You may use numpy and the engine's unfolding, ``from fcn_scratch.kernels import
im2col`` (or paste your own from exercise 01). Do not import the engine's
``fcn_scratch.functional.conv2d_forward`` (nor ``fcn_scratch.layers.Conv2d``):
that is the answer the grader compares you with.

한국어
------
연습 문제 03 (레슨 03): im2col + GEMM 한 번으로 하는 합성곱(convolution) 순전파(forward pass).

아래 ``conv2d_forward``를 작성한 뒤 채점하세요:

    fcn-scratch exercise check conv2d_forward --lang ko

numpy와 엔진의 펼치기 함수 ``from fcn_scratch.kernels import im2col``(또는 연습 문제
01에서 직접 작성한 것)은 써도 됩니다. 엔진의 ``fcn_scratch.functional.conv2d_forward``
(와 ``fcn_scratch.layers.Conv2d``)는 import하지 마세요: 채점기가 비교하는 정답입니다.
"""

import numpy as np


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """Cross-correlation, as PyTorch's ``conv2d``: returns ``(y, cache)``.

    x ``(N, C, H, W)``, weight ``(F, C, kh, kw)``, bias ``(F,)`` or None;
    stride, padding, dilation: an int or a pair ``(h, w)``. Returns
    y ``(N, F, Ho, Wo)`` with ``Ho = floor((H + 2p - d(k-1) - 1) / s) + 1``
    (per axis), and a ``cache`` of your choice (exercise 04's backward reads it).

        y[n, f, i, j] = b[f] + sum_{c,u,v} w[f, c, u, v] * x_pad[n, c, i*sh + u*dh, j*sw + v*dw]

    Hints: make every hyper-parameter a pair first
    (``sh, sw = (stride, stride) if isinstance(stride, int) else stride``);
    compute Ho, Wo; ``cols = im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)``
    is ``(N, C*kh*kw, Ho*Wo)``; then ``weight.reshape(F, -1) @ cols`` (matmul
    broadcasts over N) is ``(N, F, Ho*Wo)``; add ``bias[None, :, None]`` unless
    bias is None; reshape to ``(N, F, Ho, Wo)``. Keep x's shape, the weight,
    the cols and the geometry in the cache.

    한국어: PyTorch의 ``conv2d``와 같은 교차 상관(cross-correlation)입니다. ``(y, cache)``를
    반환합니다.

    x ``(N, C, H, W)``, 가중치(weight) ``(F, C, kh, kw)``, 편향(bias) ``(F,)`` 또는 None.
    스트라이드(stride), 패딩(padding), 팽창(dilation)은 int 또는 ``(h, w)`` 쌍입니다.
    y ``(N, F, Ho, Wo)``(축마다 ``Ho = floor((H + 2p - d(k-1) - 1) / s) + 1``)와, 내용을
    직접 정하는 ``cache``(연습 문제 04의 역전파가 읽습니다)를 반환합니다.

        y[n, f, i, j] = b[f] + sum_{c,u,v} w[f, c, u, v] * x_pad[n, c, i*sh + u*dh, j*sw + v*dw]

    힌트: 먼저 모든 하이퍼파라미터(hyper-parameter)를 쌍으로 만드세요
    (``sh, sw = (stride, stride) if isinstance(stride, int) else stride``). Ho, Wo를
    계산하고, ``cols = im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)``는
    ``(N, C*kh*kw, Ho*Wo)``입니다. 그다음 ``weight.reshape(F, -1) @ cols``(matmul이 N에 대해
    브로드캐스트됩니다)는 ``(N, F, Ho*Wo)``입니다. bias가 None이 아니면
    ``bias[None, :, None]``을 더하고 ``(N, F, Ho, Wo)``로 reshape하세요. x의 모양, 가중치,
    cols와 설정값을 캐시에 두세요.
    """
    raise NotImplementedError("write conv2d_forward (exercise 03)")

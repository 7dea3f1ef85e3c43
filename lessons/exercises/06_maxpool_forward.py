"""Exercise 06 (lesson 04): max-pool forward, PyTorch's ``max_pool2d``.

Write ``maxpool2d_forward`` below, then grade it:

    fcn-scratch exercise check maxpool_forward

You may use numpy. Do not import the engine's ``fcn_scratch.functional.maxpool2d_forward``,
``fcn_scratch.kernels.maxpool_forward`` or ``fcn_scratch.layers.MaxPool2d``: those are the answers.

한국어
------
연습 문제 06 (레슨 04): 최대 풀링(max-pooling) 순전파(forward pass), PyTorch의 ``max_pool2d``.

아래 ``maxpool2d_forward``를 작성한 뒤 채점하세요:

    fcn-scratch exercise check maxpool_forward --lang ko

numpy는 써도 됩니다. 엔진의 ``fcn_scratch.functional.maxpool2d_forward``,
``fcn_scratch.kernels.maxpool_forward``, ``fcn_scratch.layers.MaxPool2d``는 import하지
마세요: 그것이 정답입니다.
"""

import numpy as np


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over ``kh x kw`` windows: returns ``(y, cache)``.

    x ``(N, C, H, W)``; kernel_size, stride, padding, dilation: an int or a
    pair ``(h, w)``; ``stride=None`` means ``stride = kernel_size``. Returns
    y ``(N, C, Ho, Wo)`` (x's dtype) and a cache of your choice.

        y[n, c, i, j] = max over u < kh, v < kw of x_pad[n, c, i*sh + u*dh, j*sw + v*dw]

    Output size (per axis), PyTorch's rule:
      floor mode: ``Ho = (H + 2p - d(k-1) - 1) // s + 1``
      ceil mode:  ``Ho = ceil((H + 2p - d(k-1) - 1) / s) + 1``, then minus 1 if
                  ``(Ho - 1) * s >= H + p`` (the last window must start inside
                  the input or the left padding).

    Hints: pad with ``-np.inf``, not 0 (a zero pad would beat every negative
    activation at the border); in ceil mode the last window may hang over the
    bottom/right edge: pad enough -inf there for it to fit. A loop over the
    taps (u, v) with ``np.maximum`` over strided slices is enough.

    한국어: ``kh x kw`` 윈도우마다 최댓값을 구합니다. ``(y, cache)``를 반환합니다.

    x ``(N, C, H, W)``. kernel_size, 스트라이드(stride), 패딩(padding), 팽창(dilation)은
    int 또는 ``(h, w)`` 쌍이고, ``stride=None``이면 ``stride = kernel_size``입니다.
    y ``(N, C, Ho, Wo)``(x의 dtype)와 내용을 직접 정하는 캐시를 반환합니다.

        y[n, c, i, j] = max over u < kh, v < kw of x_pad[n, c, i*sh + u*dh, j*sw + v*dw]

    출력 크기(축마다), PyTorch의 규칙:
      내림 모드(floor mode): ``Ho = (H + 2p - d(k-1) - 1) // s + 1``
      올림 모드(ceil mode):  ``Ho = ceil((H + 2p - d(k-1) - 1) / s) + 1``, 그리고
                      ``(Ho - 1) * s >= H + p``이면 1을 뺍니다(마지막 윈도우는 입력 안이나
                      왼쪽 패딩에서 시작해야 합니다).

    힌트: 0이 아니라 ``-np.inf``로 패딩하세요(0 패딩은 가장자리의 모든 음수 활성화(activation)
    값보다 큽니다). 올림 모드에서는 마지막 윈도우가 아래/오른쪽 가장자리 밖으로 걸칠 수
    있으니, 그 윈도우가 들어갈 만큼 -inf를 덧붙이세요. 탭 (u, v)에 대한 반복문과 스트라이드
    슬라이스에 대한 ``np.maximum``이면 충분합니다.
    """
    raise NotImplementedError("write maxpool2d_forward (exercise 06)")

"""Exercise 07 (lesson 04): max-pool backward, routing the gradient to the argmax.

This file holds BOTH functions: your forward (start from exercise 06) must keep
in its cache where each window's maximum was. Grade them:

    fcn-scratch exercise check maxpool_backward

You may use numpy. Do not import the engine's ``fcn_scratch.functional.maxpool2d_forward``
/ ``maxpool2d_backward``, ``fcn_scratch.kernels.maxpool_forward`` / ``maxpool_backward``
or ``fcn_scratch.layers.MaxPool2d``: those are the answers.

한국어
------
연습 문제 07 (레슨 04): 최대 풀링(max-pooling) 역전파(backward pass), 기울기(gradient)를
argmax로 보내기.

이 파일에는 함수가 '둘' 다 있습니다: 여러분의 순전파(forward pass, 연습 문제 06에서 시작하세요)는
각 윈도우의 최댓값이 어디였는지 캐시에 남겨야 합니다. 채점:

    fcn-scratch exercise check maxpool_backward --lang ko

numpy는 써도 됩니다. 엔진의 ``fcn_scratch.functional.maxpool2d_forward``
/ ``maxpool2d_backward``, ``fcn_scratch.kernels.maxpool_forward`` / ``maxpool_backward``,
``fcn_scratch.layers.MaxPool2d``는 import하지 마세요: 그것이 정답입니다.
"""

import numpy as np


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """As exercise 06: x ``(N, C, H, W)`` -> ``(y (N, C, Ho, Wo), cache)``.

    The cache must say, for every output pixel, WHICH input pixel won its
    window (e.g. a flat index ``h*W + w`` per output, shape ``(N, C, Ho, Wo)``).
    On a tie the FIRST maximum in row-major window order (tap u, then v) wins.

    한국어: 연습 문제 06과 같습니다: x ``(N, C, H, W)`` -> ``(y (N, C, Ho, Wo), cache)``.

    캐시는 출력 픽셀마다 '어느' 입력 픽셀이 윈도우에서 이겼는지 알려 줘야 합니다(예: 출력마다
    평탄화한 인덱스 ``h*W + w``, 모양 ``(N, C, Ho, Wo)``). 동점(tie)이면 윈도우를 행 우선
    순서(탭 u, 그다음 v)로 볼 때 '첫 번째' 최댓값이 이깁니다.
    """
    raise NotImplementedError("write maxpool2d_forward with argmax indices (exercise 07)")


def maxpool2d_backward(dy, cache):
    """Gradient of :func:`maxpool2d_forward`: dx ``(N, C, H, W)`` from dy ``(N, C, Ho, Wo)``.

        dx[n, c, h, w] = sum of dy[n, c, i, j] over the windows (i, j) that (h, w) won

    Every other pixel gets 0. Hints: when the stride is smaller than the kernel
    one pixel can win several windows, and then it gets the SUM of their
    gradients: use ``np.add.at`` (or ``+=`` in a loop), not ``dx[idx] = dy``,
    which keeps only one of the repeated indices. Never write into dy.

    한국어: :func:`maxpool2d_forward`의 기울기입니다: dy ``(N, C, Ho, Wo)``에서 dx ``(N, C, H, W)``.

        dx[n, c, h, w] = sum of dy[n, c, i, j] over the windows (i, j) that (h, w) won

    즉 (h, w)가 이긴 윈도우 (i, j)들의 dy를 더합니다. 다른 픽셀은 모두 0입니다. 힌트:
    스트라이드가 커널보다 작으면 한 픽셀이 여러 윈도우에서 이길 수 있고, 그때는 그 기울기들의
    '합'을 받습니다: 반복된 인덱스 중 하나만 남기는 ``dx[idx] = dy`` 말고 ``np.add.at``(또는
    반복문의 ``+=``)을 쓰세요. dy에 값을 써 넣지 마세요.
    """
    raise NotImplementedError("write maxpool2d_backward (exercise 07)")

"""Exercise 09 (lesson 06): the bilinear upsampling kernel FCN starts its upsamplers from.

Write both functions, then grade them:

    fcn-scratch exercise check bilinear_kernel

You may use numpy and math. Do not import the engine's ``fcn_scratch.init``
(``bilinear_taps``, ``bilinear_kernel``, ``bilinear_weight``): those are the answers.

한국어
------
연습 문제 09 (레슨 06): FCN이 업샘플링(upsampling) 층의 출발점으로 쓰는 쌍선형(bilinear)
업샘플링 커널(kernel).

두 함수를 작성한 뒤 채점하세요:

    fcn-scratch exercise check bilinear_kernel --lang ko

numpy와 math는 써도 됩니다. 엔진의 ``fcn_scratch.init``(``bilinear_taps``,
``bilinear_kernel``, ``bilinear_weight``)은 import하지 마세요: 그것이 정답입니다.
"""

import math

import numpy as np


def bilinear_kernel(k, dtype=np.float64):
    """The ``k x k`` bilinear interpolation kernel ``w[i, j] = t[i] * t[j]``.

    The 1-D taps, for ``i = 0 .. k-1``:

        f = ceil(k / 2)
        c = f - 1      if k is odd   (a tap sits exactly on the centre)
            f - 0.5    if k is even  (the centre falls between two taps)
        t[i] = 1 - |i - c| / f

    k = 4 gives taps 1/4, 3/4, 3/4, 1/4; k = 3 gives 1/2, 1, 1/2.
    Returns a ``(k, k)`` array of ``dtype``. Used as a transposed convolution
    with stride s and k = 2s, it interpolates linearly between input pixels.

    한국어: ``k x k`` 쌍선형 보간(bilinear interpolation) 커널 ``w[i, j] = t[i] * t[j]``.

    1차원 탭, ``i = 0 .. k-1``에 대해:

        f = ceil(k / 2)
        c = f - 1      if k is odd   (a tap sits exactly on the centre)
            f - 0.5    if k is even  (the centre falls between two taps)
        t[i] = 1 - |i - c| / f

    (k가 홀수면 c = f - 1로 탭 하나가 정확히 중심에 놓이고, 짝수면 c = f - 0.5로 중심이 두
    탭 사이에 떨어집니다.) k = 4면 탭은 1/4, 3/4, 3/4, 1/4이고, k = 3이면 1/2, 1, 1/2입니다.
    ``dtype``의 ``(k, k)`` 배열을 반환합니다. 스트라이드(stride) s, k = 2s인 전치
    합성곱(transposed convolution)으로 쓰면 입력 픽셀 사이를 선형으로 보간합니다.
    """
    raise NotImplementedError("write bilinear_kernel (exercise 09)")


def bilinear_weight(in_channels, out_channels, k, dtype=np.float32):
    """A ConvTranspose2d weight ``(in_channels, out_channels, kh, kw)`` that upsamples each channel bilinearly.

    ``k`` is an int or a pair ``(kh, kw)`` (then the kernel is the outer product
    of the kh-taps and the kw-taps). The kernel sits on the channel diagonal
    only, ``w[c, c] = kernel`` for ``c < min(in_channels, out_channels)``:
    channel c feeds channel c, every other entry is 0.

    한국어: 채널(channel)마다 쌍선형으로 업샘플링하는 ConvTranspose2d 가중치(weight)
    ``(in_channels, out_channels, kh, kw)``.

    ``k``는 int 또는 쌍 ``(kh, kw)``입니다(쌍이면 커널은 kh 탭과 kw 탭의 외적입니다). 커널은
    채널 대각선에만 놓입니다: ``c < min(in_channels, out_channels)``에 대해
    ``w[c, c] = kernel``, 즉 채널 c는 채널 c로만 가고 나머지 원소는 모두 0입니다.
    """
    raise NotImplementedError("write bilinear_weight (exercise 09)")

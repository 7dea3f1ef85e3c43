"""Exercise 04 (lesson 03): convolution backward pass.

This file holds BOTH functions: your forward (paste it from exercise 03) makes
the cache your backward reads, so you choose what the cache holds. Grade them:

    fcn-scratch exercise check conv2d_backward

The grader compares dx, dweight, dbias with the engine's and runs float64
finite differences of your forward against a random upstream gradient.
You may use numpy and the engine's ``from fcn_scratch.kernels import im2col,
col2im`` (or your own from exercises 01-02). Do not import the engine's
``fcn_scratch.functional.conv2d_forward`` / ``conv2d_backward`` (nor
``fcn_scratch.layers.Conv2d``): those are the answers.

한국어
------
연습 문제 04 (레슨 03): 합성곱(convolution) 역전파(backward pass).

이 파일에는 함수가 '둘' 다 있습니다: 역전파가 읽는 캐시는 여러분의 순전파(forward pass, 연습 문제
03에서 붙여 넣으세요)가 만들므로, 캐시에 무엇을 담을지 직접 정합니다. 채점:

    fcn-scratch exercise check conv2d_backward --lang ko

채점기는 dx, dweight, dbias를 엔진의 값과 비교하고, 무작위 상류 기울기(gradient)로
여러분 순전파의 float64 유한 차분(finite difference)을 구해 비교합니다.
numpy와 엔진의 ``from fcn_scratch.kernels import im2col, col2im``(또는 연습 문제
01-02에서 직접 작성한 것)은 써도 됩니다. 엔진의
``fcn_scratch.functional.conv2d_forward`` / ``conv2d_backward``(와
``fcn_scratch.layers.Conv2d``)는 import하지 마세요: 그것이 정답입니다.
"""

import numpy as np


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """As exercise 03: x ``(N, C, H, W)``, weight ``(F, C, kh, kw)``, bias ``(F,)`` or None
    -> ``(y (N, F, Ho, Wo), cache)``. Keep what the backward needs in the cache.

    한국어: 연습 문제 03과 같습니다: x ``(N, C, H, W)``, 가중치 ``(F, C, kh, kw)``,
    편향 ``(F,)`` 또는 None -> ``(y (N, F, Ho, Wo), cache)``. 역전파에 필요한 것을 캐시에 두세요.
    """
    raise NotImplementedError("paste your conv2d_forward from exercise 03")


def conv2d_backward(dy, cache, input_grad=True):
    """Gradients of :func:`conv2d_forward`: returns ``(dx, dweight, dbias)``.

    dy ``(N, F, Ho, Wo)`` is the upstream gradient dL/dy. Returns
    dx ``(N, C, H, W)`` (None when ``input_grad=False``), dweight
    ``(F, C, kh, kw)``, dbias ``(F,)`` (None when the forward had no bias).
    With ``cols`` the forward's im2col output and ``dY = dy.reshape(N, F, Ho*Wo)``:

        dweight = sum_n dY[n] @ cols[n].T          reshaped to (F, C, kh, kw)
        dbias   = dY summed over n and the pixels
        dx      = col2im(weight.reshape(F, -1).T @ dY, geometry of the forward)

    Hints: dx is a transposed convolution of dy; col2im sums the overlapping
    taps for you. If you write dx instead as a 'full' convolution of dy (stride
    1 only), the kernel must be flipped in both spatial axes and its in/out
    channels swapped. Never write into dy (a skip hands it to two branches).

    한국어: :func:`conv2d_forward`의 기울기(gradient)입니다. ``(dx, dweight, dbias)``를 반환합니다.

    dy ``(N, F, Ho, Wo)``는 상류 기울기 dL/dy입니다. dx ``(N, C, H, W)``(``input_grad=False``면
    None), dweight ``(F, C, kh, kw)``, dbias ``(F,)``(순전파에 편향(bias)이 없었으면 None)를
    반환합니다. ``cols``가 순전파의 im2col 출력이고 ``dY = dy.reshape(N, F, Ho*Wo)``이면:

        dweight = sum_n dY[n] @ cols[n].T          reshaped to (F, C, kh, kw)
        dbias   = dY summed over n and the pixels
        dx      = col2im(weight.reshape(F, -1).T @ dY, geometry of the forward)

    (dweight는 (F, C, kh, kw)로 reshape하고, dbias는 dY를 n과 픽셀(pixel)에 대해 더한 값,
    dx의 col2im은 순전파의 설정값으로 합니다.)

    힌트: dx는 dy의 전치 합성곱(transposed convolution)입니다. 겹치는 탭은 col2im이 더해
    줍니다. dx를 dy의 'full' 합성곱으로 쓴다면(스트라이드 1에서만), 커널(kernel)을 두 공간
    축 모두에서 뒤집고 입력/출력 채널(channel)을 맞바꿔야 합니다. dy에 값을 써 넣지 마세요
    (스킵 연결(skip connection)은 dy를 두 갈래에 넘깁니다).
    """
    raise NotImplementedError("write conv2d_backward (exercise 04)")

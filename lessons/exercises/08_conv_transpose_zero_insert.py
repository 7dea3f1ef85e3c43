"""Exercise 08 (lesson 05): transposed convolution by zero insertion, and its backward.

This file holds BOTH functions (your forward's cache feeds your backward). Grade them:

    fcn-scratch exercise check conv_transpose_zero_insert

The signature is exactly the engine's ``conv_transpose2d_forward``, including
``method``: this exercise computes the zero-insertion route whatever ``method``
says (the grader passes ``method="zero_insert"``). You may use numpy and the
engine's convolution, ``from fcn_scratch.functional import conv2d_forward,
conv2d_backward`` (or your own from exercises 03-04). Do not import the engine's
``conv_transpose2d_forward`` / ``conv_transpose2d_backward``, ``zero_insert``,
``pad_or_crop`` or ``fcn_scratch.layers.ConvTranspose2d``: those are the answers.

한국어
------
연습 문제 08 (레슨 05): 0 삽입(zero insertion)으로 하는 전치 합성곱(transposed convolution)과
그 역전파(backward pass).

이 파일에는 함수가 '둘' 다 있습니다: 순전파(forward pass)가 남긴 캐시를 역전파가 읽습니다. 채점:

    fcn-scratch exercise check conv_transpose_zero_insert --lang ko

시그니처는 ``method``까지 엔진의 ``conv_transpose2d_forward``와 똑같습니다: 이 연습
문제는 ``method``가 무엇이든 0 삽입 방식으로 계산합니다(채점기는 ``method="zero_insert"``를
넘깁니다). numpy와 엔진의 합성곱 ``from fcn_scratch.functional import conv2d_forward,
conv2d_backward``(또는 연습 문제 03-04에서 직접 작성한 것)는 써도 됩니다. 엔진의
``conv_transpose2d_forward`` / ``conv_transpose2d_backward``, ``zero_insert``,
``pad_or_crop``, ``fcn_scratch.layers.ConvTranspose2d``는 import하지 마세요: 그것이
정답입니다.
"""

import numpy as np


def conv_transpose2d_forward(
    x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1, method="col2im"
):
    """Transposed convolution, as PyTorch's ``conv_transpose2d``: returns ``(y, cache)``.

    x ``(N, C_in, H, W)``, weight ``(C_in, C_out, kh, kw)`` (note: in before
    out, the transpose of a conv weight), bias ``(C_out,)`` or None; stride,
    padding, output_padding, dilation: an int or a pair ``(h, w)``. Returns
    y ``(N, C_out, Ho, Wo)`` with ``Ho = (H-1)s - 2p + d(k-1) + op + 1``.

    The recipe (per axis):
      1. insert ``s-1`` zeros between neighbouring input pixels:
         ``(H-1)s + 1`` rows, x at rows ``0, s, 2s, ...``;
      2. pad ``d(k-1) - p`` zeros on top/left and ``d(k-1) - p + op`` on the
         bottom/right (``k-p-1`` when d = 1); a NEGATIVE amount crops instead;
      3. a stride-1 convolution, dilation d, no padding, with the kernel
         flipped in both spatial axes and its in/out channels swapped:
         ``np.flip(weight, (2, 3)).transpose(1, 0, 2, 3)``, shape ``(C_out, C_in, kh, kw)``,
         plus the bias.

    FCN's upsamplers use k = 2s, p = s/2 (k4 s2 p1 doubles the size).

    한국어: PyTorch의 ``conv_transpose2d``와 같은 전치 합성곱입니다. ``(y, cache)``를 반환합니다.

    x ``(N, C_in, H, W)``, 가중치(weight) ``(C_in, C_out, kh, kw)``(주의: 입력이 출력보다
    앞입니다. 합성곱 가중치의 전치입니다), 편향(bias) ``(C_out,)`` 또는 None. 스트라이드(stride),
    패딩(padding), output_padding, 팽창(dilation)은 int 또는 ``(h, w)`` 쌍입니다.
    y ``(N, C_out, Ho, Wo)``, ``Ho = (H-1)s - 2p + d(k-1) + op + 1``을 반환합니다.

    만드는 법(축마다):
      1. 이웃한 입력 픽셀 사이에 0을 ``s-1``개씩 넣습니다: 행은 ``(H-1)s + 1``개가 되고,
         x는 ``0, s, 2s, ...``번째 행에 놓입니다.
      2. 위/왼쪽에 0을 ``d(k-1) - p``개, 아래/오른쪽에 ``d(k-1) - p + op``개 덧붙입니다
         (d = 1이면 ``k-p-1``). 이 값이 '음수'면 덧붙이는 대신 그만큼 크롭(crop)합니다.
      3. 커널(kernel)을 두 공간 축 모두에서 뒤집고 입력/출력 채널(channel)을 맞바꾼 가중치
         ``np.flip(weight, (2, 3)).transpose(1, 0, 2, 3)``(모양 ``(C_out, C_in, kh, kw)``)로
         스트라이드 1, 팽창 d, 패딩 없는 합성곱을 하고 편향을 더합니다.

    FCN의 업샘플링(upsampling) 층은 k = 2s, p = s/2를 씁니다(k4 s2 p1은 크기를 두 배로 만듭니다).
    """
    raise NotImplementedError("write conv_transpose2d_forward by zero insertion (exercise 08)")


def conv_transpose2d_backward(dy, cache):
    """Gradients of :func:`conv_transpose2d_forward`: ``(dx, dweight, dbias)``.

    dy ``(N, C_out, Ho, Wo)`` -> dx ``(N, C_in, H, W)``, dweight
    ``(C_in, C_out, kh, kw)``, dbias ``(C_out,)`` (None without bias).
    Go back through the three steps in reverse order:
      3. the stride-1 convolution: its backward gives d(padded input), the
         gradient of the flipped, swapped kernel, and dbias;
      2. the padding: cut the padded rows/columns off (where step 2 cropped,
         the cropped pixels get zeros);
      1. the zero insertion: keep every s-th pixel, ``dz[:, :, ::sh, ::sw]``.
    Then flip the kernel gradient back and swap its channels back to
    ``(C_in, C_out, kh, kw)``.

    한국어: :func:`conv_transpose2d_forward`의 기울기(gradient): ``(dx, dweight, dbias)``.

    dy ``(N, C_out, Ho, Wo)`` -> dx ``(N, C_in, H, W)``, dweight ``(C_in, C_out, kh, kw)``,
    dbias ``(C_out,)``(편향이 없으면 None). 세 단계를 거꾸로 거쳐 가세요:
      3. 스트라이드 1 합성곱: 그 역전파가 d(패딩한 입력), 뒤집고 바꾼 커널의 기울기, dbias를
         줍니다.
      2. 패딩: 덧붙인 행/열을 잘라 냅니다(2단계에서 크롭한 곳의 픽셀은 0을 받습니다).
      1. 0 삽입: s번째 픽셀마다 남깁니다, ``dz[:, :, ::sh, ::sw]``.
    그다음 커널 기울기를 다시 뒤집고 채널도 원래대로 바꿔 ``(C_in, C_out, kh, kw)``로
    만드세요.
    """
    raise NotImplementedError("write conv_transpose2d_backward (exercise 08)")

"""Exercise 11 (lesson 08): FCN-8s's skip fusion, crop at the top-left and add.

FCN-16s/8s upsample the coarse scores x2 (``upscore2``) and add the finer
scores of a skip (``score_pool4_fr``); on an input whose H, W are not
multiples of 32 the upsampled map is a row/column or so bigger than the skip,
and is cut at the TOP-LEFT corner first. Write the fusion and its backward:

    fcn-scratch exercise check fcn8s_skip_fusion

The last check runs a tiny FCN-8s on a 37x45 image with both of its fusions
done by your function. You may use numpy. Do not import the engine's
``fcn_scratch.functional.crop_add_forward`` / ``crop_add_backward`` (nor
``crop_forward``, ``add_forward``, ``layers.Crop``, ``layers.Add``): those are the answers.

한국어
------
연습 문제 11 (레슨 08): FCN-8s의 스킵 융합, 왼쪽 위 기준으로 크롭(crop)해서 더하기.

FCN-16s/8s는 거친 점수를 x2 업샘플링(upsampling)하고(``upscore2``) 스킵의 더 촘촘한
점수(``score_pool4_fr``)를 더합니다. H, W가 32의 배수가 아닌 입력에서는 업샘플링한 맵이
스킵보다 한두 행/열 커서, 먼저 '왼쪽 위' 모서리를 기준으로 잘라 냅니다. 융합과 그
역전파(backward pass)를 작성하세요:

    fcn-scratch exercise check fcn8s_skip_fusion --lang ko

마지막 검사는 두 융합을 모두 여러분의 함수로 하는 작은 FCN-8s를 37x45 이미지에서
실행합니다. numpy는 써도 됩니다. 엔진의 ``fcn_scratch.functional.crop_add_forward`` /
``crop_add_backward``(와 ``crop_forward``, ``add_forward``, ``layers.Crop``,
``layers.Add``)는 import하지 마세요: 그것이 정답입니다.
"""

import numpy as np


def crop_add_forward(up, skip):
    """``y = up[:, :, :h, :w] + skip``: returns ``(y, cache)``.

    up ``(N, C, Hu, Wu)`` the upsampled scores, skip ``(N, C, h, w)`` the skip's
    scores, with ``Hu >= h`` and ``Wu >= w`` -> y ``(N, C, h, w)``.

    Why the top-left (offset 0) and not the centre: pool output row i covers
    input rows 2i and 2i+1, and the bilinear upsampler (k = 2s, p = s/2) puts
    row i's peak back on the same place, so both grids already line up at the
    top-left; the surplus rows/columns come from ceil-mode pooling's last,
    partial window, at the bottom/right, and those are the ones dropped.

    한국어: ``y = up[:, :, :h, :w] + skip``. ``(y, cache)``를 반환합니다.

    up ``(N, C, Hu, Wu)``는 업샘플링한 점수, skip ``(N, C, h, w)``는 스킵의 점수이고
    ``Hu >= h``, ``Wu >= w``입니다 -> y ``(N, C, h, w)``.

    가운데가 아니라 왼쪽 위(오프셋 0)인 이유: 풀링(pooling) 출력의 행 i는 입력의 행 2i와
    2i+1을 덮고, 쌍선형(bilinear) 업샘플링 층(k = 2s, p = s/2)은 행 i의 꼭대기를 같은 자리로
    되돌리므로 두 격자는 이미 왼쪽 위에서 맞춰져 있습니다. 남는 행/열은 올림 모드(ceil mode)
    풀링의 마지막, 일부만 걸친 윈도우에서 생기며 아래/오른쪽에 있고, 버리는 것이 바로
    그것입니다.
    """
    raise NotImplementedError("write crop_add_forward (exercise 11)")


def crop_add_backward(dy, cache):
    """Gradients of :func:`crop_add_forward`: ``(d_up, d_skip)``.

    dy ``(N, C, h, w)`` -> d_up ``(N, C, Hu, Wu)``: dy in the kept top-left
    window, 0 in the cropped-off rows and columns; d_skip ``(N, C, h, w)``: dy
    itself (return a copy: never hand out or write into dy).

    한국어: :func:`crop_add_forward`의 기울기(gradient): ``(d_up, d_skip)``.

    dy ``(N, C, h, w)`` -> d_up ``(N, C, Hu, Wu)``: 남긴 왼쪽 위 윈도우에는 dy, 크롭으로 잘린
    행과 열에는 0. d_skip ``(N, C, h, w)``: dy 자체(복사본을 반환하세요: dy를 그대로 넘기거나
    dy에 값을 써 넣지 마세요).
    """
    raise NotImplementedError("write crop_add_backward (exercise 11)")

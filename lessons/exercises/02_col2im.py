"""Exercise 02 (lesson 02): col2im, the adjoint of im2col.

Write ``col2im`` below, then grade it:

    fcn-scratch exercise check col2im

You may use numpy. Do not import the engine's ``fcn_scratch.kernels.col2im``
(the answer the grader compares you with). Calling the engine's im2col to
test your own work is fine, but col2im itself must not use it.

한국어
------
연습 문제 02 (레슨 02): im2col의 수반(adjoint), col2im.

아래 ``col2im``을 작성한 뒤 채점하세요:

    fcn-scratch exercise check col2im --lang ko

numpy는 써도 됩니다. 엔진의 ``fcn_scratch.kernels.col2im``(채점기가 비교하는 정답)은
import하지 마세요. 작성한 코드를 시험하려고 엔진의 im2col을 부르는 것은 괜찮지만,
col2im 자체가 그것을 써서는 안 됩니다.
"""

import numpy as np


def col2im(cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Sum the patch columns back into an image: the adjoint of :func:`im2col`.

    cols ``(N, C*kh*kw, Ho*Wo)`` laid out as im2col's output (row
    ``(c*kh + i)*kw + j`` is tap (i, j) of channel c, column ``ho*Wo + wo`` is
    output pixel (ho, wo)); the other arguments are the geometry im2col used.
    Returns x ``(N, C, H, W)``, same dtype as cols, with

        x[n, c, h, w] = sum of cols[n, (c*kh + i)*kw + j, ho*Wo + wo]
                        over every (i, j, ho, wo) with ho*sh + i*dh - ph = h
                                                  and wo*sw + j*dw - pw = w

    Entries that im2col read from the zero padding have no pixel: drop them.

    Hints: windows overlap when the stride is smaller than the kernel, so a
    pixel collects several entries: ADD (``+=``), never assign. Scatter into a
    zero array of the padded size ``(N, C, H + 2ph, W + 2pw)`` with the same tap
    loops (and slices) as im2col, then cut the padding off. col2im is not
    the inverse of im2col: ``col2im(im2col(x))`` counts each pixel once per
    window that read it. It is the adjoint: ``<im2col(x), c> == <x, col2im(c)>``.

    한국어: 패치 열들을 더해 이미지로 되돌립니다. :func:`im2col`의 수반입니다.

    cols ``(N, C*kh*kw, Ho*Wo)``는 im2col의 출력과 같은 배치입니다(행
    ``(c*kh + i)*kw + j``는 채널 c의 탭 (i, j), 열 ``ho*Wo + wo``는 출력 픽셀 (ho, wo)).
    나머지 인자는 im2col이 쓴 설정값입니다. cols와 같은 dtype의 x ``(N, C, H, W)``를
    반환합니다:

        x[n, c, h, w] = sum of cols[n, (c*kh + i)*kw + j, ho*Wo + wo]
                        over every (i, j, ho, wo) with ho*sh + i*dh - ph = h
                                                  and wo*sw + j*dw - pw = w

    즉 두 등식을 만족하는 모든 (i, j, ho, wo)에 대해 더합니다. im2col이 0 패딩(padding)에서
    읽은 원소는 돌아갈 픽셀(pixel)이 없으니 버립니다.

    힌트: 스트라이드(stride)가 커널(kernel)보다 작으면 윈도우가 겹쳐서 한 픽셀이 여러 원소를
    받습니다: 대입하지 말고 '더하세요'(``+=``). 패딩한 크기 ``(N, C, H + 2ph, W + 2pw)``의
    0 배열에 im2col과 같은 탭 반복문(과 슬라이스)으로 흩뿌린 뒤 패딩을 잘라 내세요.
    col2im은 im2col의 역함수가 아닙니다: ``col2im(im2col(x))``는 각 픽셀을 그 픽셀을 읽은
    윈도우 수만큼 셉니다. col2im은 수반입니다: ``<im2col(x), c> == <x, col2im(c)>``.
    """
    raise NotImplementedError("write col2im (exercise 02)")

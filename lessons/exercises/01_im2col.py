"""Exercise 01 (lesson 02): im2col, the patch matrix behind every convolution.

Write ``im2col`` below, then grade it:

    fcn-scratch exercise check im2col            # this file
    fcn-scratch exercise check im2col --file my_copy.py

You may use numpy (np.pad, loops, slicing). Do not import the engine's
``fcn_scratch.kernels.im2col`` (nor its twins): that is the answer the grader
compares you with.

한국어
------
연습 문제 01 (레슨 02): 모든 합성곱(convolution) 뒤에 있는 패치 행렬(patch matrix), im2col.

아래 ``im2col``을 작성한 뒤 채점하세요:

    fcn-scratch exercise check im2col --lang ko            # 이 파일
    fcn-scratch exercise check im2col --file my_copy.py --lang ko

numpy(np.pad, 반복문, 슬라이싱)는 써도 됩니다. 엔진의
``fcn_scratch.kernels.im2col``(과 그 쌍둥이 구현)은 import하지 마세요:
채점기가 여러분의 답과 비교하는 정답이 바로 그것입니다.
"""

import numpy as np


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Unfold every ``kh x kw`` window of ``x`` into one column.

    x ``(N, C, H, W)``; kernel ``kh x kw``; stride ``(sh, sw)``; zero padding
    ``(ph, pw)`` on every side; dilation ``(dh, dw)``; ``Ho, Wo`` the output
    size (given: ``Ho = (H + 2ph - dh(kh-1) - 1) // sh + 1``).
    Returns cols ``(N, C*kh*kw, Ho*Wo)``, same dtype as x, with

        cols[n, (c*kh + i)*kw + j, ho*Wo + wo] = x_pad[n, c, ho*sh + i*dh, wo*sw + j*dw]

    where ``x_pad`` is x with ``ph`` zero rows above and below and ``pw`` zero
    columns left and right. Rows run over (channel, tap row, tap column) with
    the tap column fastest; columns over output pixels in row-major order.

    Hints: ``np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))``; two loops over the
    taps (i, j) are enough: ``x_pad[:, :, i*dh : i*dh + sh*(Ho-1) + 1 : sh, ...]``
    is the ``(N, C, Ho, Wo)`` block every output pixel reads at tap (i, j).
    Dilation spaces the taps; the stride moves the window.

    한국어: ``x``의 ``kh x kw`` 윈도우를 하나씩 열(column) 하나로 펼칩니다.

    x ``(N, C, H, W)``, 커널(kernel) ``kh x kw``, 스트라이드(stride) ``(sh, sw)``,
    모든 변에 0으로 채우는 패딩(padding) ``(ph, pw)``, 팽창(dilation) ``(dh, dw)``,
    출력 크기 ``Ho, Wo``(인자로 주어짐: ``Ho = (H + 2ph - dh(kh-1) - 1) // sh + 1``).
    x와 같은 dtype의 cols ``(N, C*kh*kw, Ho*Wo)``를 반환합니다:

        cols[n, (c*kh + i)*kw + j, ho*Wo + wo] = x_pad[n, c, ho*sh + i*dh, wo*sw + j*dw]

    ``x_pad``는 x의 위아래에 0인 행을 ``ph``개씩, 왼쪽과 오른쪽에 0인 열을 ``pw``개씩
    덧붙인 배열입니다. 행은 (채널(channel), 탭 행, 탭 열) 순서이고 탭 열이 가장 빨리
    바뀝니다. 열은 출력 픽셀(pixel)을 행 우선 순서로 나열합니다.

    힌트: ``np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))``. 탭 (i, j)에 대한 이중
    반복문이면 충분합니다: ``x_pad[:, :, i*dh : i*dh + sh*(Ho-1) + 1 : sh, ...]``가 모든
    출력 픽셀이 탭 (i, j)에서 읽는 ``(N, C, Ho, Wo)`` 블록입니다. 팽창은 탭 사이를
    벌리고, 스트라이드는 윈도우를 옮깁니다.
    """
    raise NotImplementedError("write im2col (exercise 01)")

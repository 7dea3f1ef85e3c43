# %% [markdown]
# # Lesson 03: convolution forward and backward, through im2col and GEMM
#
# The engine's `Conv2d` is three lines of idea: unfold the input into the
# patch matrix (lesson 02), multiply by the weight matrix (one GEMM), add the
# bias. Its backward pass is the same three lines read backwards. This lesson
#
# 1. pins the **output-size formula** `H_out = floor((H + 2p - d(k-1) - 1)/s) + 1`,
# 2. computes the forward pass by hand from the engine's pieces,
# 3. shows what **stride** and **padding** do,
# 4. shows **dilation** (atrous convolution): the 1x3 filter [1, 2, 3] at rate 4
#    is the filter [1, 0, 0, 0, 2, 0, 0, 0, 3],
# 5. derives the backward pass (dW, db, dx),
# 6. checks it by **finite differences** against a *random* upstream gradient,
#    and shows why an all-ones upstream gradient hides real bugs.
#
# Sources: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning"
# (arXiv:1603.07285), chapter 2 (output size with padding and stride) and section 5.1
# (dilated convolutions); atrous convolution in DeepLab (Chen et al., arXiv:1412.7062) and
# Yu & Koltun (arXiv:1511.07122); VGG's 3x3 convolutions with padding 1 (Simonyan &
# Zisserman, arXiv:1409.1556, section 2.1); the study notes' dilation example (the filter
# [1, 2, 3] at rate 4); gradient checks as in Stanford's CS231n (relative error, random
# upstream gradient).
# Run: `python lessons/03_convolution.py [--step] [--no-figures] [--figures DIR]`.

# %% [markdown]
# # 레슨 03: im2col과 GEMM으로 계산하는 합성곱의 순전파와 역전파
#
# 엔진의 `Conv2d`는 아이디어로 치면 세 줄입니다. 입력을 패치 행렬로 펼치고(레슨 02), 가중치(weight)
# 행렬을 곱하고(GEMM 한 번), 편향(bias)을 더합니다. 역전파(backward pass)는 같은 세 줄을 거꾸로 읽은
# 것입니다. 이 레슨은 다음 순서로 진행합니다.
#
# 1. **출력 크기 공식** `H_out = floor((H + 2p - d(k-1) - 1)/s) + 1`을 짚어 둡니다.
# 2. 엔진의 부품으로 순전파(forward pass)를 직접 계산합니다.
# 3. **스트라이드(stride)**와 **패딩(padding)**이 하는 일을 보입니다.
# 4. **팽창(dilation)**, 곧 아트러스 합성곱(atrous convolution)을 보입니다. 비율 4로 팽창한 1x3 필터
#    [1, 2, 3]은 필터 [1, 0, 0, 0, 2, 0, 0, 0, 3]과 같습니다.
# 5. 역전파(dW, db, dx)를 유도합니다.
# 6. *무작위* 상류 기울기(upstream gradient)로 역전파를 **유한 차분(finite difference)**과 비교해 검사하고,
#    모두 1인 상류 기울기가 왜 진짜 버그를 숨기는지 보입니다.
#
# 출처: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning"(arXiv:1603.07285)의
# 2장(패딩과 스트라이드가 있을 때의 출력 크기)과 5.1절(팽창 합성곱(dilated convolution)); DeepLab(Chen et al.,
# arXiv:1412.7062)과 Yu & Koltun(arXiv:1511.07122)의 아트러스 합성곱; 패딩 1을 쓰는 VGG의 3x3 합성곱(Simonyan &
# Zisserman, arXiv:1409.1556, 2.1절); 학습 노트의 팽창 예(비율 4의 필터 [1, 2, 3]); Stanford CS231n
# 방식의 기울기 검사(gradient check): 상대 오차, 무작위 상류 기울기.
# 실행: `python lessons/03_convolution.py --lang ko [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import Lesson, draw_matrix, sliding_window_animation  # first: repo on sys.path, headless backend

import matplotlib.pyplot as plt
import numpy as np

from fcn_scratch import gradcheck, kernels
from fcn_scratch.functional import conv2d_backward, conv2d_forward, conv_output_size
from fcn_scratch.layers import Conv2d
from fcn_scratch.naive import conv2d_naive

lesson = Lesson("03_convolution", "Convolution through im2col + GEMM, and its gradient check",
                ko="im2col + GEMM으로 계산하는 합성곱(convolution)과 그 기울기 검사(gradient check)")
rng = np.random.default_rng(3)

# %%
lesson.step("The output-size formula: H_out = floor((H + 2p - d(k-1) - 1) / s) + 1",
            ko="출력 크기 공식: H_out = floor((H + 2p - d(k-1) - 1) / s) + 1")
lesson.say("    H   k  s  p  d   H_out   why", ko="    H   k  s  p  d   H_out   이유")
cases = [
    (224, 3, 1, 1, 1, lesson.tr("VGG's 3x3 conv, padding 1: size kept ('same')",
                                ko="VGG의 3x3 합성곱, 패딩(padding) 1: 크기 유지('same')")),
    (224, 3, 2, 1, 1, lesson.tr("stride 2 halves the size", ko="스트라이드(stride) 2: 크기가 절반")),
    (7, 7, 1, 0, 1, lesson.tr("fc6 as a 7x7 conv on a 7x7 map: one output", ko="7x7 맵 위의 7x7 합성곱 fc6: 출력 하나")),
    (14, 7, 1, 0, 1, lesson.tr("the same conv on a 14x14 map: 14 - 7 + 1 = 8 positions",
                               ko="같은 합성곱을 14x14 맵에: 14 - 7 + 1 = 8개 위치")),
    (9, 3, 1, 2, 2, lesson.tr("3x3 at dilation 2, padding 2: size kept", ko="팽창(dilation) 2의 3x3, 패딩 2: 크기 유지")),
    (10, 4, 3, 1, 1, lesson.tr("the floor drops a window that would stick out", ko="밖으로 삐져나갈 윈도우는 내림(floor)이 버린다")),
]
for H, k, s, p, d, why in cases:
    Ho = conv_output_size(H, k, s, p, d)
    print(f"  {H:3d}  {k:2d} {s:2d} {p:2d} {d:2d}   {Ho:5d}   {why}")
    x_small = rng.standard_normal((1, 1, H, 5))  # only the height matters here
    y, _ = conv2d_forward(x_small, rng.standard_normal((1, 1, k, 1)), stride=(s, 1), padding=(p, 0),
                          dilation=(d, 1))
    lesson.check(y.shape[2] == Ho == (H + 2 * p - d * (k - 1) - 1) // s + 1,
                 f"H={H} k={k} s={s} p={p} d={d}: conv2d_forward gives H_out = {Ho}",
                 ko=f"H={H} k={k} s={s} p={p} d={d}: conv2d_forward의 결과도 H_out = {Ho}이다")

# %%
lesson.step("Forward = im2col, then one GEMM, then the bias",
            ko="순전파(forward pass) = im2col, 이어서 GEMM 한 번, 그리고 편향(bias)")
x = rng.standard_normal((2, 3, 7, 6))  # (N, C, H, W)
w = rng.standard_normal((4, 3, 3, 3))  # (F, C, kh, kw)
b = rng.standard_normal(4)  # (F,)
s, p = 1, 1
Ho, Wo = conv_output_size(7, 3, s, p), conv_output_size(6, 3, s, p)
cols = kernels.im2col(x, 3, 3, s, s, p, p, 1, 1, Ho, Wo)  # (N, C*kh*kw, Ho*Wo)
y_hand = (w.reshape(4, -1) @ cols + b[:, None]).reshape(2, 4, Ho, Wo)
lesson.say(f"x {x.shape} --im2col--> cols {cols.shape};  W {w.reshape(4, -1).shape} @ cols -> {y_hand.shape}",
           ko=f"입력 x {x.shape} --im2col--> cols {cols.shape};  가중치(weight) W {w.reshape(4, -1).shape} @ cols "
              f"-> 출력 {y_hand.shape}")
y, cache = conv2d_forward(x, w, b, stride=s, padding=p)
lesson.close(y_hand, y, "W @ im2col(x) + b is exactly what conv2d_forward computes",
             ko="W @ im2col(x) + b는 conv2d_forward가 계산하는 값과 정확히 같다")
lesson.close(y, conv2d_naive(x, w, b, stride=s, padding=p), "and matches the 7-loop conv2d_naive",
             ko="7중 루프로 짠 conv2d_naive와도 일치한다")

# %%
lesson.step("Stride and padding", ko="스트라이드와 패딩")
x1 = np.arange(25.0).reshape(1, 1, 5, 5)
w1 = np.ones((1, 1, 3, 3))  # a box filter: each output is the sum of its window
outs = {}
for s, p in [(1, 0), (1, 1), (2, 1)]:
    outs[s, p] = conv2d_forward(x1, w1, stride=s, padding=p)[0][0, 0]
    lesson.say(f"stride {s}, padding {p}: output {outs[s, p].shape}\n{outs[s, p]}",
               ko=f"스트라이드 {s}, 패딩 {p}: 출력 {outs[s, p].shape}\n{outs[s, p]}")
lesson.close(outs[2, 1], outs[1, 1][::2, ::2], "stride 2 = stride 1, then keep every 2nd row and column",
             ko="스트라이드 2 = 스트라이드 1로 계산한 뒤 행과 열을 하나씩 걸러 남긴 것")
padded = np.pad(x1, ((0, 0), (0, 0), (1, 1), (1, 1)))
lesson.close(outs[1, 1], conv2d_forward(padded, w1)[0][0, 0],
             "padding 1 = surround with a ring of zeros, then no padding",
             ko="패딩 1 = 0으로 된 테두리를 한 겹 두른 뒤 패딩 없이 계산한 것")
lesson.check(outs[1, 1][0, 0] == x1[0, 0, :2, :2].sum(), "a corner output only sums the 4 real pixels it covers",
             ko="모서리 출력은 자기가 덮는 실제 픽셀(pixel) 4개만 더한다")

fig, axes = plt.subplots(1, 4, figsize=(13, 3.6), gridspec_kw={"width_ratios": [5, 3, 5, 3]})
draw_matrix(axes[0], x1[0, 0], lesson.label("input 5x5 (kernel: 3x3 of ones)", ko="입력 5x5 (커널: 1로 채운 3x3)"),
            fmt="{:.0f}", cmap="Blues", vmax=40)
for ax, (s, p) in zip(axes[1:], outs):
    Ho = conv_output_size(5, 3, s, p)
    draw_matrix(ax, outs[s, p], f"s={s}, p={p}: {Ho}x{Ho}\nfloor((5+{2 * p}-3)/{s})+1 = {Ho}", fmt="{:.0f}",
                cmap="Oranges", vmax=330)
fig.suptitle(lesson.label("Stride and padding set the output size: H_out = floor((H + 2p - k)/s) + 1",
                          ko="스트라이드와 패딩이 출력 크기를 정한다: H_out = floor((H + 2p - k)/s) + 1"), fontsize=11, y=1.1)
lesson.save(fig, "stride_padding")

# Animated, in the style of Dumoulin & Visin's convolution arithmetic guide: a 3x3 kernel with
# distinct weights slides over the same input, padding 1, stride 2. Each frame writes the engine's
# output cell; first, every window (a column of im2col) dotted with K must give that cell.
K_demo = np.array([[0.0, 1.0, 2.0], [2.0, 2.0, 0.0], [0.0, 1.0, 2.0]]).reshape(1, 1, 3, 3)
y_demo, _ = conv2d_forward(x1, K_demo, stride=2, padding=1)
windows = kernels.im2col(x1, 3, 3, 2, 2, 1, 1, 1, 1, 3, 3)[0]  # (9 taps, 9 windows): window t is frame t
lesson.close(K_demo.ravel() @ windows, y_demo.ravel(), "each animation frame: window . K = the engine's output cell",
             ko="애니메이션의 프레임마다: 윈도우 . K = 엔진의 출력 칸")
lesson.save_animation(*sliding_window_animation(
    padded[0, 0], K_demo[0, 0], y_demo[0, 0], stride=2, real=np.pad(np.ones((5, 5), bool), 1),
    titles=(lesson.label("input 5x5 + padding 1 (white)", ko="입력 5x5 + 패딩 1 (흰 칸)"),
            lesson.label("kernel K", ko="커널 K"), lesson.label("output 3x3, stride 2", ko="출력 3x3, 스트라이드 2")),
    final=lesson.label("all 9 cells = conv2d_forward(x, K, stride=2, padding=1)",
                       ko="9칸 모두 = conv2d_forward(x, K, stride=2, padding=1)"),
    left_out=lesson.label("   (0·w terms left out)", ko="   (0·w 항은 생략)")), "conv_sliding")

# %%
lesson.step("Dilation (atrous): the filter [1, 2, 3] at rate 4 is [1, 0, 0, 0, 2, 0, 0, 0, 3]",
            ko="팽창 합성곱(dilated convolution), 곧 아트러스(atrous) 합성곱: 비율 4의 필터 [1, 2, 3]은 [1, 0, 0, 0, 2, 0, 0, 0, 3]이다")
f = np.array([1.0, 2.0, 3.0]).reshape(1, 1, 1, 3)  # a 1x3 filter
rate = 4
dilated = np.zeros((1, 1, 1, rate * (3 - 1) + 1))
dilated[..., ::rate] = f  # rate-1 zeros ("holes", French: trous) between the taps
print(lesson.tr("filter         ", ko="필터        "), f[0, 0, 0])
print(lesson.tr(f"dilated, rate {rate}", ko=f"팽창, 비율 {rate}"), dilated[0, 0, 0])
# What the engine's conv does with dilation 4, read tap by tap: on a width-9 input the 1x3 filter fits once,
# so the output is sum_u f[u] x[4u]; a one-hot input e_i returns the weight the engine puts on pixel i.
seen = [conv2d_forward(np.eye(9)[i].reshape(1, 1, 1, 9), f, dilation=(1, rate))[0].item() for i in range(9)]
print(lesson.tr("the engine's weights on a 9-pixel window, one-hot probes:",
                ko="9픽셀 윈도우에 엔진이 주는 가중치 (원-핫 입력으로 측정):"), seen)
lesson.check(np.array_equal(seen, [1, 0, 0, 0, 2, 0, 0, 0, 3]),
             "conv2d_forward at dilation 4 weighs the 9 pixels by [1, 0, 0, 0, 2, 0, 0, 0, 3] "
             "(the study notes' example)",
             ko="팽창 4의 conv2d_forward는 픽셀 9개에 가중치 [1, 0, 0, 0, 2, 0, 0, 0, 3]을 준다 (학습 노트의 예)")
x = rng.standard_normal((1, 1, 3, 20))
y_atrous, _ = conv2d_forward(x, f, dilation=(1, rate))
y_explicit, _ = conv2d_forward(x, dilated)
print(lesson.tr("output widths:", ko="출력 너비:"), y_atrous.shape[-1], lesson.tr("(dilation=4) and", ko="(dilation=4)와"),
      y_explicit.shape[-1], lesson.tr("(explicit 1x9 filter)", ko="(직접 펼친 1x9 필터)"))
lesson.close(y_atrous, y_explicit, "conv with dilation 4 == conv with the explicit dilated 1x9 filter",
             ko="팽창 4의 합성곱 == 직접 펼친 팽창 1x9 필터의 합성곱")
lesson.check(y_atrous.shape[-1] == conv_output_size(20, 3, 1, 0, 4) == 20 - 9 + 1,
             "the formula's d(k-1)+1 = 9 is the span of the dilated kernel",
             ko="공식의 d(k-1)+1 = 9는 팽창된 커널(kernel)이 걸치는 폭이다")
w3 = rng.standard_normal((2, 1, 3, 3))
w5 = np.zeros((2, 1, 5, 5))
w5[:, :, ::2, ::2] = w3
x = rng.standard_normal((1, 1, 9, 9))
lesson.close(conv2d_forward(x, w3, padding=2, dilation=2)[0], conv2d_forward(x, w5, padding=2)[0],
             "2-D: a 3x3 kernel at rate 2 sees a 5x5 field with 9 weights (no new parameters)",
             ko="2차원: 비율 2의 3x3 커널은 가중치 9개로 5x5 영역을 본다 (새 파라미터(parameter)는 없다)")

fig, axes = plt.subplots(3, 1, figsize=(8, 4.2), gridspec_kw={"height_ratios": [1, 1, 2.2]})
draw_matrix(axes[0], f[0, 0], lesson.label("1x3 filter [1, 2, 3]: 3 weights, span 3",
                                           ko="1x3 필터 [1, 2, 3]: 가중치 3개, 폭 3"),
            fmt="{:.0f}", cmap="Greens", vmin=-1, vmax=4)
axes[0].set_xlim(-0.5, 8.5)
draw_matrix(axes[1], dilated[0, 0],
            lesson.label("the same 3 weights at rate 4: rate-1 = 3 holes between taps, span d(k-1)+1 = 9",
                         ko="같은 가중치 3개를 비율 4로: 탭 사이에 구멍 rate-1 = 3개, 폭 d(k-1)+1 = 9"),
            fmt="{:.0f}", cmap="Greens", vmin=-1, vmax=4)
foot = np.zeros((5, 5))
foot[::2, ::2] = 1
draw_matrix(axes[2], foot, lesson.label("3x3 kernel at rate 2: 9 taps (1) spread over a 5x5 field",
                                        ko="비율 2의 3x3 커널: 탭 9개(1)가 5x5 영역에 퍼져 있다"),
            fmt="{:.0f}", cmap="Greens", vmin=-0.3, vmax=1.3)
fig.tight_layout()
lesson.save(fig, "dilation")

# Animated: a 3x3 kernel at rate 2 slides over a 7x7 input; its 9 taps skip a pixel in each direction.
x_d = np.random.default_rng(30).integers(0, 4, (1, 1, 7, 7)).astype(float)  # own generator: rng's stream unchanged
w_d = np.array([[1.0, 0.0, 2.0], [2.0, 1.0, 0.0], [0.0, 1.0, 1.0]]).reshape(1, 1, 3, 3)
y_d, _ = conv2d_forward(x_d, w_d, dilation=2)
windows = kernels.im2col(x_d, 3, 3, 1, 1, 0, 0, 2, 2, 3, 3)[0]  # taps 2 apart: (9 taps, 9 windows)
lesson.close(w_d.ravel() @ windows, y_d.ravel(),
             "each animation frame: the 9 dilated taps . w = the engine's output cell",
             ko="애니메이션의 프레임마다: 팽창된 탭 9개 . w = 엔진의 출력 칸")
lesson.save_animation(*sliding_window_animation(
    x_d[0, 0], w_d[0, 0], y_d[0, 0], dilation=2,
    titles=(lesson.label("input 7x7 (taps shaded)", ko="입력 7x7 (탭은 음영)"),
            lesson.label("kernel w, dilation 2", ko="커널 w, 팽창 2"), lesson.label("output 3x3", ko="출력 3x3")),
    final=lesson.label("all 9 cells = conv2d_forward(x, w, dilation=2): a 5x5 field, 9 weights",
                       ko="9칸 모두 = conv2d_forward(x, w, dilation=2): 5x5 영역, 가중치 9개"),
    left_out=lesson.label("   (0·w terms left out)", ko="   (0·w 항은 생략)")), "dilation_sliding")

# %%
lesson.step("Backward: dW = sum_n dY_n cols_n^T,  db = sum of dY,  dx = col2im(W^T dY)",
            ko="역전파(backward pass): dW = sum_n dY_n cols_n^T,  db = dY의 합,  dx = col2im(W^T dY)")
x = rng.standard_normal((2, 3, 7, 6))
w = rng.standard_normal((4, 3, 3, 3))
b = rng.standard_normal(4)
y, cache = conv2d_forward(x, w, b, stride=2, padding=1)
dy = rng.standard_normal(y.shape)  # upstream gradient dL/dy
N, F, Ho, Wo = y.shape
cols = kernels.im2col(x, 3, 3, 2, 2, 1, 1, 1, 1, Ho, Wo)
dy2 = dy.reshape(N, F, Ho * Wo)
dw_hand = sum(dy2[n] @ cols[n].T for n in range(N)).reshape(w.shape)  # y = W cols  =>  dW = dY cols^T
db_hand = dy.sum(axis=(0, 2, 3))  # b is added to every output pixel
dx_hand = kernels.col2im(w.reshape(F, -1).T @ dy2, N, 3, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, Ho, Wo)
print(f"dY {dy.shape}: dW {dw_hand.shape}, db {db_hand.shape}, dx {dx_hand.shape}")
dx, dw, db = conv2d_backward(dy, cache)
lesson.close(dw, dw_hand, "dW = sum_n dY_n @ cols_n^T", ko="dW = sum_n dY_n @ cols_n^T가 성립한다")
lesson.close(db, db_hand, "db = sum of dY over batch and pixels", ko="db = 배치(batch)와 픽셀 전체에 걸친 dY의 합")
lesson.close(dx, dx_hand, "dx = col2im(W^T @ dY): the adjoint of im2col sums the overlaps",
             ko="dx = col2im(W^T @ dY): im2col의 수반(adjoint)이 겹친 부분을 더한다")
# With stride 1 the same dx is also a 'full' convolution of dY: kernel flipped in space, in/out
# channels swapped, padding k-1-p. That is lesson 05's zero insertion with z = s-1 = 0.
y1, cache1 = conv2d_forward(x, w, b, stride=1, padding=1)
dy1 = rng.standard_normal(y1.shape)
flipped = np.ascontiguousarray(np.flip(w, axis=(2, 3)).transpose(1, 0, 2, 3))  # (C, F, kh, kw)
dx_full, _ = conv2d_forward(dy1, flipped, padding=3 - 1 - 1)
dx_col2im = kernels.col2im(w.reshape(F, -1).T @ dy1.reshape(N, F, -1), N, 3, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 7, 6)
lesson.close(dx_full, dx_col2im, "stride 1: the full convolution with the flipped kernel == col2im(W^T dY)",
             ko="스트라이드 1: 뒤집은 커널(입출력 채널(channel)도 맞바꾼 것)로 하는 'full' 합성곱 == col2im(W^T dY)")
lesson.close(conv2d_backward(dy1, cache1)[0], dx_full, "and both equal the engine's dx", ko="둘 다 엔진의 dx와 같다")

# %%
lesson.step("Gradient check: central finite differences against a RANDOM upstream gradient",
            ko="기울기 검사: '무작위' 상류 기울기(upstream gradient)로 하는 중앙 유한 차분(finite difference)")
# L(x) = sum(conv(x) * g) for a random g; dL/dx_i ~ (L(x + h e_i) - L(x - h e_i)) / 2h.
x = rng.standard_normal((2, 3, 7, 6))
g = rng.standard_normal(conv2d_forward(x, w, b, stride=2, padding=1)[0].shape)


def loss():
    return float(np.sum(conv2d_forward(x, w, b, stride=2, padding=1)[0] * g))


h = 1e-6
x[0, 1, 3, 2] += h
plus = loss()
x[0, 1, 3, 2] -= 2 * h
minus = loss()
x[0, 1, 3, 2] += h
numeric = (plus - minus) / (2 * h)
analytic = conv2d_backward(g, conv2d_forward(x, w, b, stride=2, padding=1)[1])[0][0, 1, 3, 2]
lesson.say(f"one entry by hand: numeric {numeric:.10f}  analytic {analytic:.10f}",
           ko=f"손으로 계산한 원소 하나: 수치 {numeric:.10f}  해석 {analytic:.10f}")
lesson.close(numeric, analytic, "one entry of dx: numeric and analytic agree to 7 digits", rtol=1e-7, atol=0,
             ko="dx의 원소 하나: 수치 기울기와 해석 기울기가 7자리까지 일치한다")
# The engine does this for every entry of the input and of every parameter:
layer = Conv2d(3, 4, 3, stride=2, padding=1, dilation=2, dtype=np.float64, seed=0)
errors = gradcheck.check_module(layer, rng.standard_normal((2, 3, 9, 8)))
lesson.say("gradcheck.check_module(Conv2d(3, 4, 3, stride=2, padding=1, dilation=2)):",
           ko="gradcheck.check_module(Conv2d(3, 4, 3, stride=2, padding=1, dilation=2))의 결과:")
for name, err in errors.items():
    lesson.say(f"    {name:6s} rel error {err:.1e}", ko=f"    {name:6s} 상대 오차 {err:.1e}")
lesson.check(max(errors.values()) < gradcheck.TOL_SMOOTH,
             f"x, weight and bias all below TOL_SMOOTH = {gradcheck.TOL_SMOOTH:g} (float64, h = 1e-6)",
             ko=f"x, 가중치, 편향 모두 TOL_SMOOTH = {gradcheck.TOL_SMOOTH:g} 미만이다 (float64, h = 1e-6)")

# %%
lesson.step("Why never all-ones: an upstream gradient of ones hides permutation bugs",
            ko="모두 1인 기울기를 쓰지 않는 이유: 1로 채운 상류 기울기는 순열 버그를 숨긴다")
# Two realistic bugs in a conv backward: reading dY with rows and columns swapped
# (a reshape in the wrong order), and reading the filters in the wrong order.
# Both only PERMUTE the entries of dY, and a permutation of all-ones is all-ones.
x = rng.standard_normal((2, 3, 7, 6))
y, cache = conv2d_forward(x, w, b, stride=2, padding=1)  # y is (2, 4, 4, 3): Ho != Wo
backwards = {
    "correct": lambda g: conv2d_backward(g, cache),
    "H/W swapped": lambda g: conv2d_backward(np.ascontiguousarray(g.swapaxes(2, 3)).reshape(g.shape), cache),
    "filters reversed": lambda g: conv2d_backward(np.ascontiguousarray(g[:, ::-1]), cache),
}
said = {"correct": lesson.tr("correct", ko="올바른 역전파"), "H/W swapped": lesson.tr("H/W swapped", ko="H/W 뒤바뀜"),
        "filters reversed": lesson.tr("filters reversed", ko="필터 역순")}  # the variants' names as printed
inputs = {"x": x, "weight": w, "bias": b}
table = {}
for g_name, g in [("all-ones", np.ones(y.shape)), ("random", rng.standard_normal(y.shape))]:
    def loss(g=g):
        return float(np.sum(conv2d_forward(x, w, b, stride=2, padding=1)[0] * g))
    numeric = {k: gradcheck.numerical_gradient(loss, v) for k, v in inputs.items()}
    for bug, backward in backwards.items():
        analytic = dict(zip(inputs, backward(g)))
        table[bug, g_name] = max(gradcheck.rel_error(analytic[k], numeric[k]) for k in inputs)
lesson.say(f"{'backward':18s} {'all-ones g':>12s} {'random g':>12s}", ko="역전파               모두 1인 g     무작위 g")
for bug in backwards:
    width = 18 - sum("가" <= ch <= "힣" for ch in said[bug])  # a Hangul syllable takes two columns
    print(f"{said[bug]:{width}s} {table[bug, 'all-ones']:12.1e} {table[bug, 'random']:12.1e}")
tol = gradcheck.TOL_SMOOTH
lesson.check(table["correct", "all-ones"] < tol and table["correct", "random"] < tol,
             "the correct backward passes both", ko="올바른 역전파는 두 검사를 모두 통과한다")
for bug in [name for name in backwards if name != "correct"]:  # the two buggy ones
    lesson.check(table[bug, "all-ones"] < tol,
                 f"'{said[bug]}' PASSES the all-ones check ({table[bug, 'all-ones']:.0e})",
                 ko=f"'{said[bug]}'은 모두 1인 검사를 '통과한다' ({table[bug, 'all-ones']:.0e})")
    lesson.check(table[bug, "random"] > 1e-2, f"'{said[bug]}' FAILS the random check ({table[bug, 'random']:.0e})",
                 ko=f"'{said[bug]}'은 무작위 검사에서 '실패한다' ({table[bug, 'random']:.0e})")

fig, ax = plt.subplots(figsize=(7.5, 3.8))
xs = np.arange(len(backwards))
for k, (g_name, color, legend) in enumerate([
        ("all-ones", "tab:gray", lesson.label("upstream gradient: all-ones", ko="상류 기울기: 모두 1")),
        ("random", "tab:blue", lesson.label("upstream gradient: random", ko="상류 기울기: 무작위"))]):
    vals = [table[bug, g_name] for bug in backwards]
    bars = ax.bar(xs + (k - 0.5) * 0.38, vals, 0.38, color=color, label=legend)
    ax.bar_label(bars, labels=[f"{v:.0e}" for v in vals], fontsize=8)
ax.axhline(tol, color="tab:red", ls="--", lw=1)
ax.text(-0.45, tol * 2, lesson.label(f"tolerance TOL_SMOOTH = {tol:g}", ko=f"허용 오차 TOL_SMOOTH = {tol:g}"),
        color="tab:red", ha="left", fontsize=8)
ax.set_yscale("log")
ax.set_ylim(1e-13, 10)
ax.set_xticks(xs, [lesson.label(bug, ko=said[bug]) for bug in backwards])
ax.set_ylabel(lesson.label("max relative error vs finite differences", ko="유한 차분 대비 최대 상대 오차"))
ax.set_title(lesson.label("A gradient check with all-ones dY passes two buggy backward passes",
                          ko="모두 1인 dY로 하는 기울기 검사는 버그 있는 역전파 두 개를 통과시킨다"))
ax.legend(loc="upper left", fontsize=8)
lesson.save(fig, "gradcheck_ones_vs_random")

# %%
lesson.done(summary=[
    ("The engine's output sizes follow floor((H + 2p - d(k-1) - 1)/s) + 1.",
     "엔진의 출력 크기는 floor((H + 2p - d(k-1) - 1)/s) + 1을 따른다."),
    ("Forward = im2col, one GEMM, plus the bias, equal to the 7-loop convolution.",
     "순전파 = im2col, GEMM 한 번, 편향 더하기이며, 7중 루프 합성곱과 같다."),
    ("Stride 2 is stride 1 subsampled, padding is a ring of zeros, and dilation 4 weighs pixels 0, 4, 8 by [1,"
        " 2, 3].",
     "스트라이드 2는 스트라이드 1의 결과를 솎아 낸 것이고, 패딩은 0으로 된 테두리이며, 팽창 4는 픽셀 0, 4, 8에 "
        "가중치 [1, 2, 3]을 준다."),
    ("The hand-derived dW, db and dx equal the engine's backward and pass finite differences.",
     "손으로 유도한 dW, db, dx는 엔진의 역전파와 같고 유한 차분 검사를 통과한다."),
    ("An all-ones upstream gradient lets two buggy backward passes through; a random one catches both.",
     "모두 1인 상류 기울기는 버그 있는 역전파 두 개를 통과시키고, 무작위 상류 기울기는 둘 다 잡아낸다."),
], exercises=["conv2d_forward", "conv2d_backward"])

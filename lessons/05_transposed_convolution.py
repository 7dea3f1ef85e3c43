# %% [markdown]
# # Lesson 05: transposed convolution, three ways, proved equal
#
# FCN turns its coarse score map back into a full-size one with learnable
# upsampling layers, `nn.ConvTranspose2d` in the PyTorch FCN port (k64 s32 p16,
# k4 s2 p1, ...). The study notes describe the operation three ways; here the
# engine computes it all three ways and checks they agree:
#
# 1. **the scatter**: each input pixel stamps a scaled copy of the kernel
#    into the output, overlapping stamps add up (`fcn_scratch.naive.conv_transpose2d_scatter`);
# 2. **zero insertion**: put `z = s-1` zeros between input pixels, pad with
#    `p' = k-p-1` zeros, then run an ordinary stride-1 convolution with the
#    flipped kernel (the engine's `method="zero_insert"`); the output size is
#    `(i-1)s + k - 2p`;
# 3. **the transpose** of the convolution's matrix, `C^T` (`fcn_scratch.naive.conv_matrix`),
#    which the engine computes as a GEMM then col2im (`method="col2im"`):
#    exactly the backward pass of a convolution.
#
# Then: why "deconvolution" is a misnomer (the transpose is not the inverse),
# and what `output_padding` is for.
#
# Sources: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning"
# (arXiv:1603.07285), chapter 4 (the transpose of the convolution matrix; the same thing as
# a direct convolution over a zero-inserted, padded input; o = s(i-1) + k - 2p + a); the FCN
# paper (Long, Shelhamer & Darrell, arXiv:1411.4038), section 3.3 "Upsampling is backwards
# strided convolution"; the study notes' zero-insertion recipe (z = s-1, p' = k-p-1), their
# worked 2x2 example, and their remark that "deconvolution" is the usual but inexact name.
# Run: `python lessons/05_transposed_convolution.py [--step] [--no-figures] [--figures DIR]`.

# %% [markdown]
# # 레슨 05: 전치 합성곱(transposed convolution), 세 가지 방법으로 계산하고 같음을 증명하기
#
# FCN은 거친 점수 맵(score map)을 학습 가능한 업샘플링(upsampling) 층으로 다시 원래 크기로 키웁니다.
# PyTorch FCN 포팅에서는 `nn.ConvTranspose2d`입니다(k64 s32 p16, k4 s2 p1, ...). 학습 노트는 이 연산을 세
# 가지 방식으로 설명하는데, 여기서는 엔진이 세 방식 모두로 계산하고 결과가 같은지 확인합니다.
#
# 1. **흩뿌리기(scatter)**: 입력 픽셀(pixel)마다 자기 값을 곱한 커널(kernel)을 출력에 도장처럼 찍고,
#    겹치는 도장은 더합니다(`fcn_scratch.naive.conv_transpose2d_scatter`).
# 2. **0 삽입(zero insertion)**: 입력 픽셀 사이에 0을 `z = s-1`개씩 넣고, 둘레를 0으로 `p' = k-p-1`만큼
#    패딩(padding)한 뒤, 뒤집은 커널로 스트라이드(stride) 1의 보통 합성곱(convolution)을 합니다(엔진의
#    `method="zero_insert"`). 출력 크기는 `(i-1)s + k - 2p`입니다.
# 3. 합성곱 행렬의 **전치** `C^T`(`fcn_scratch.naive.conv_matrix`): 엔진은 이것을 GEMM과 col2im으로
#    계산합니다(`method="col2im"`). 바로 합성곱의 역전파(backward pass)입니다.
#
# 이어서 "역합성곱(deconvolution)"이 왜 잘못 붙은 이름인지(전치는 역연산이 아닙니다), 그리고
# `output_padding`이 무엇을 위해 있는지 살펴봅니다.
#
# 출처: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (arXiv:1603.07285)
# 4장(합성곱 행렬의 전치, 그리고 그것이 0을 삽입하고 패딩한 입력에 대한 직접 합성곱과 같다는 사실,
# o = s(i-1) + k - 2p + a); FCN 논문(Long, Shelhamer & Darrell, arXiv:1411.4038) 3.3절 "Upsampling is
# backwards strided convolution"; 학습 노트의 0 삽입 방법(z = s-1, p' = k-p-1)과 2x2 풀이 예제, 그리고
# "역합성곱"이 흔히 쓰이지만 정확하지 않은 이름이라는 노트의 지적.
# 실행: `python lessons/05_transposed_convolution.py --lang ko [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import (Lesson, animation_panels, cell_box, cell_lines, draw_matrix, place_box,  # first: repo on path
                     set_matrix, sliding_window_animation)

import matplotlib.pyplot as plt
import numpy as np

from fcn_scratch import gradcheck
from fcn_scratch.functional import (conv2d_backward, conv2d_forward, conv_output_size, conv_transpose2d_forward,
                                    conv_transpose_output_size, pad_or_crop, zero_insert)
from fcn_scratch.layers import ConvTranspose2d
from fcn_scratch.naive import conv_matrix, conv_transpose2d_matrix, conv_transpose2d_scatter

lesson = Lesson("05_transposed_convolution", "Transposed convolution: scatter, zero insertion, matrix transpose",
                ko="전치 합성곱(transposed convolution): 흩뿌리기(scatter), 0 삽입(zero insertion), 행렬 전치")
rng = np.random.default_rng(5)

# The study notes' worked example: a 2x2 input and a 2x2 kernel.
X = np.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 1, 2, 2)
K = np.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 1, 2, 2)  # ConvTranspose2d weight (C_in, C_out, kh, kw)

# %%
lesson.step("Way 1, the scatter: each input pixel stamps a scaled copy of the kernel",
            ko="방법 1, 흩뿌리기: 입력 픽셀(pixel)마다 자기 값을 곱한 커널(kernel)을 도장처럼 찍는다")
stamps = []
for i in range(2):
    for j in range(2):
        canvas = np.zeros((3, 3))
        canvas[i : i + 2, j : j + 2] = X[0, 0, i, j] * K[0, 0]  # stride 1: the stamp moves 1 pixel per input pixel
        stamps.append(canvas)
        lesson.say(f"x[{i},{j}] = {X[0, 0, i, j]:.0f} stamps {X[0, 0, i, j]:.0f} * K at ({i},{j}):\n{canvas}",
                   ko=f"x[{i},{j}] = {X[0, 0, i, j]:.0f}이므로 ({i},{j}) 위치에 {X[0, 0, i, j]:.0f} * K를 찍습니다:\n{canvas}")
Y = sum(stamps)
print(lesson.tr("sum of the stamps:\n", ko="찍은 도장의 합:\n"), Y)
lesson.check(np.array_equal(Y, conv_transpose2d_scatter(X, K)[0, 0]), "the sum equals naive.conv_transpose2d_scatter",
             ko="그 합은 naive.conv_transpose2d_scatter와 같다")
engine_Y = conv_transpose2d_forward(X, K)[0][0, 0]  # the engine's own transposed convolution
lesson.check(np.array_equal(engine_Y, [[0, 0, 1], [0, 4, 6], [4, 12, 9]]),
             "the engine's conv_transpose2d_forward gives the worked example's [[0,0,1],[0,4,6],[4,12,9]]",
             ko="엔진의 conv_transpose2d_forward는 풀이 예제와 같은 [[0,0,1],[0,4,6],[4,12,9]]를 낸다")
centre = [int(stamp[1, 1]) for stamp in stamps]
print(lesson.tr("the four stamps' centre cells:", ko="네 도장의 가운데 칸:"), centre)
lesson.check(engine_Y[1, 1] == sum(centre) == 4,
             "the engine's centre cell is the four stamps' centres added, 0+2+2+0 = 4, as in the study notes' figure",
             ko="엔진 출력의 가운데 칸은 네 도장의 가운데 값을 더한 0+2+2+0 = 4로, 학습 노트의 그림과 같다")

fig, axes = plt.subplots(1, 5, figsize=(14, 3.2))
for ax, stamp, (i, j) in zip(axes, stamps, [(0, 0), (0, 1), (1, 0), (1, 1)]):
    draw_matrix(ax, stamp, lesson.label(f"x[{i},{j}]={X[0, 0, i, j]:.0f} times K\nplaced at ({i},{j})",
                                        ko=f"x[{i},{j}]={X[0, 0, i, j]:.0f} 곱하기 K\n({i},{j}) 위치에 찍음"),
                fmt="{:.0f}", cmap="Purples", vmin=-2, vmax=14)
draw_matrix(axes[4], Y, lesson.label("sum = transposed conv\ncentre: 0+2+2+0 = 4", ko="합 = 전치 합성곱\n가운데: 0+2+2+0 = 4"),
            fmt="{:.0f}", cmap="Purples", vmin=-2, vmax=14)
fig.suptitle(lesson.label("Scatter view: input [[0,1],[2,3]], kernel [[0,1],[2,3]], stride 1",
                          ko="흩뿌리기로 본 전치 합성곱: 입력 [[0,1],[2,3]], 커널 [[0,1],[2,3]], 스트라이드 1"),
             fontsize=11, y=1.05)
lesson.save(fig, "scatter")

# Animated with stride 2, where each stamp moves 2 output pixels per input pixel and stamps overlap:
# step 2's 2x2 input with a kernel that is not symmetric (so step 2's flip shows). The operation is
# linear, so the output after t stamps is the engine's transposed conv of x with only its first t pixels.
X_a = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
K_a = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [2.0, 1.0, 1.0]]).reshape(1, 1, 3, 3)
partial = [conv_transpose2d_forward(np.where(np.arange(4).reshape(X_a.shape) < t, X_a, 0), K_a, stride=2)[0][0, 0]
           for t in range(5)]  # partial[t]: the first t pixels (row-major) stamped
added = []
for t in range(4):
    i, j = divmod(t, 2)
    stamp = np.zeros((5, 5))
    stamp[2 * i : 2 * i + 3, 2 * j : 2 * j + 3] = X_a[0, 0, i, j] * K_a[0, 0]
    added.append(np.array_equal(partial[t + 1] - partial[t], stamp))
lesson.check(all(added), "each frame adds exactly x[i,j] * K at output rows 2i..2i+2, columns 2j..2j+2",
             ko="프레임마다 출력의 행 2i..2i+2, 열 2j..2j+2에 정확히 x[i,j] * K가 더해진다")
lesson.close(partial[4], conv_transpose2d_scatter(X_a, K_a, stride=2)[0, 0], "the last frame is the whole scatter",
             ko="마지막 프레임은 흩뿌리기의 전체 결과이다")

fig, axes, caption = animation_panels([2, 3, 3, 5], (9.6, 3.9))
draw_matrix(axes[0], X_a[0, 0], lesson.label("input x", ko="입력 x"), fmt="{:.0f}", cmap="Blues", vmin=-2, vmax=7)
draw_matrix(axes[1], K_a[0, 0], lesson.label("kernel K", ko="커널 K"), fmt="{:.0f}", cmap="Greens", vmin=-1, vmax=6)
stamp_im = draw_matrix(axes[2], np.full((3, 3), np.nan), lesson.label("stamp x[i,j] * K", ko="도장 x[i,j] * K"),
                       fmt="{:.0f}", cmap="Purples", vmin=-2, vmax=partial[4].max() + 2)
out_im = draw_matrix(axes[3], np.full((5, 5), np.nan), lesson.label("output 5x5, stride 2", ko="출력 5x5, 스트라이드 2"),
                     fmt="{:.0f}", cmap="Purples", vmin=-2, vmax=partial[4].max() + 2)
for ax, shape in zip(axes, [(2, 2), (3, 3), (3, 3), (5, 5)]):
    cell_lines(ax, shape)
in_box, footprint = cell_box(axes[0], 0, 0), cell_box(axes[3], 0, 0, 3, 3)


def scatter_frame(f):
    """Frame 2t: pixel t's stamp is shown and its place outlined; frame 2t+1: it is added. Frame 8: the result."""
    t, done = divmod(f, 2)
    if t == 4:
        set_matrix(stamp_im, np.full((3, 3), np.nan))
        set_matrix(out_im, partial[4])
        in_box.set_visible(False), footprint.set_visible(False)
        caption.set_text(lesson.label("sum of the 4 stamps = conv_transpose2d_forward(x, K, stride=2)",
                                      ko="도장 4개의 합 = conv_transpose2d_forward(x, K, stride=2)"))
        return
    i, j = divmod(t, 2)
    touched = np.zeros((5, 5), bool)  # cells some stamp has reached so far: the others stay blank
    for u in range(t + done):
        touched[2 * (u // 2) : 2 * (u // 2) + 3, 2 * (u % 2) : 2 * (u % 2) + 3] = True
    set_matrix(stamp_im, X_a[0, 0, i, j] * K_a[0, 0])
    set_matrix(out_im, np.where(touched, partial[t + done], np.nan))
    place_box(in_box, i, j), place_box(footprint, 2 * i, 2 * j)
    caption.set_text(lesson.label(f"x[{i},{j}] = {X_a[0, 0, i, j]:.0f}: its stamp {X_a[0, 0, i, j]:.0f} * K ",
                                  ko=f"x[{i},{j}] = {X_a[0, 0, i, j]:.0f}: 도장 {X_a[0, 0, i, j]:.0f} * K")
                     + (lesson.label("is added in; overlapping cells sum", ko="를 더함, 겹치는 칸은 합산") if done
                        else lesson.label(f"goes to rows {2 * i}-{2 * i + 2}, columns {2 * j}-{2 * j + 2} (stride 2)",
                                          ko=f" -> 행 {2 * i}-{2 * i + 2}, 열 {2 * j}-{2 * j + 2} (스트라이드 2)")))


lesson.save_animation(fig, scatter_frame, 9, "scatter_stride2", fps=1.5)

# %%
lesson.step("Way 2, zero insertion: z = s-1 zeros between pixels, pad p' = k-p-1, stride-1 conv, flipped kernel",
            ko="방법 2, 0 삽입: 픽셀 사이에 0을 z = s-1개, 패딩(padding) p' = k-p-1, 뒤집은 커널로 스트라이드(stride) 1 "
               "합성곱(convolution)")


def by_zero_insertion(x, w, s, p, verbose=False):
    """The zero-insertion recipe, spelled out with the engine's pieces (single channel, square kernel)."""
    k = w.shape[-1]
    z, p_ = s - 1, k - p - 1
    inserted = zero_insert(x, s)  # z = s-1 zeros between neighbours
    padded = pad_or_crop(inserted, (p_, p_), (p_, p_))  # p' = k-p-1 zeros around
    flipped = np.flip(w, axis=(2, 3)).transpose(1, 0, 2, 3)  # flip in space, swap in/out channels
    y, _ = conv2d_forward(np.ascontiguousarray(padded), np.ascontiguousarray(flipped))  # stride 1
    if verbose:
        print(f"s={s}, p={p}, k={k}: z = s-1 = {z}, p' = k-p-1 = {p_}")
        lesson.say(f"  input {x.shape[2:]} -> zeros inserted {inserted.shape[2:]} -> padded {padded.shape[2:]}"
                   f" -> conv {k}x{k} -> {y.shape[2:]};  (i-1)s + k - 2p = {(x.shape[2] - 1) * s + k - 2 * p}",
                   ko=f"  입력 {x.shape[2:]} -> 0 삽입 {inserted.shape[2:]} -> 패딩 {padded.shape[2:]}"
                      f" -> {k}x{k} 합성곱 -> {y.shape[2:]};  (i-1)s + k - 2p = {(x.shape[2] - 1) * s + k - 2 * p}")
    return y, inserted, padded, flipped


y1, _, padded1, flipped1 = by_zero_insertion(X, K, s=1, p=0, verbose=True)
print(lesson.tr("padded input:\n", ko="패딩한 입력:\n"), padded1[0, 0], lesson.tr("\nflipped kernel:\n", ko="\n뒤집은 커널:\n"),
      flipped1[0, 0], lesson.tr("\noutput:\n", ko="\n출력:\n"), y1[0, 0])
lesson.check(np.array_equal(y1[0, 0], Y),
             "stride 1: z = 0, p' = 1, a plain conv with the flipped kernel gives the scatter's result",
             ko="스트라이드 1: z = 0, p' = 1, 뒤집은 커널로 보통 합성곱을 하면 흩뿌리기와 같은 결과가 나온다")
# Why flipped: the stamp puts K[u, v] at offset (u, v) AFTER the input pixel; read from the
# output pixel's side, the input pixel sits at offset -(u, v): the kernel runs backwards.
lesson.check(not np.array_equal(conv2d_forward(padded1, K)[0][0, 0], Y), "without the flip the result is wrong",
             ko="커널을 뒤집지 않으면 결과가 틀린다")
lesson.say("Note: the study notes' figure adds up the centre 0+2+2+0 = 4 in this stride-1 case (z = 0); its step 3,\n"
           "one zero between rows and columns (2x2 -> 3x3), is the stride-2 case (z = 1), next:",
           ko="참고: 학습 노트의 그림이 가운데 칸을 0+2+2+0 = 4로 더하는 것은 스트라이드 1인 이 경우(z = 0)입니다. 그림의 3단계,\n"
              "곧 행과 열 사이에 0을 하나씩 넣는 것(2x2 -> 3x3)은 스트라이드 2인 경우(z = 1)이며, 바로 다음에 봅니다:")
X_big = rng.standard_normal((1, 1, 2, 2))  # the notes' step 3: stride 2, one zero between rows and columns
y2, inserted2, padded2, flipped2 = by_zero_insertion(X_big, rng.standard_normal((1, 1, 3, 3)), s=2, p=1, verbose=True)
lesson.check(inserted2.shape[2:] == (3, 3), "stride 2: z = 1 zero between the pixels turns 2x2 into (2i-1) = 3x3",
             ko="스트라이드 2: 픽셀 사이에 0을 z = 1개씩 넣으면 2x2가 (2i-1) = 3x3이 된다")
lesson.check(y2.shape[2:] == (3, 3), "k=3, s=2, p=1 on a 2x2 input: output (2-1)*2 + 3 - 2 = 3",
             ko="2x2 입력에 k=3, s=2, p=1이면 출력은 (2-1)*2 + 3 - 2 = 3이다")

Xs = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
Ks = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]).reshape(1, 1, 3, 3)
ys, ins, pad_s, flip_s = by_zero_insertion(Xs, Ks, s=2, p=0)
fig, axes = plt.subplots(1, 5, figsize=(15, 3.6), gridspec_kw={"width_ratios": [2, 3, 7, 3, 5]})
draw_matrix(axes[0], Xs[0, 0], lesson.label("input 2x2", ko="입력 2x2"), fmt="{:.0f}", cmap="Blues", vmin=-1, vmax=6)
draw_matrix(axes[1], ins[0, 0], lesson.label("z = s-1 = 1 zero\ninserted: 3x3", ko="0을 z = s-1 = 1개씩\n삽입: 3x3"),
            fmt="{:.0f}", cmap="Blues", vmin=-1, vmax=6)
draw_matrix(axes[2], pad_s[0, 0], lesson.label("padded by p' = k-p-1 = 2: 7x7", ko="p' = k-p-1 = 2만큼 패딩: 7x7"),
            fmt="{:.0f}", cmap="Blues", vmin=-1, vmax=6)
draw_matrix(axes[3], flip_s[0, 0], lesson.label("kernel 3x3, flipped\n(symmetric here)", ko="뒤집은 3x3 커널\n(여기서는 대칭)"),
            fmt="{:.0f}", cmap="Greens", vmin=-1, vmax=6)
draw_matrix(axes[4], ys[0, 0], lesson.label("stride-1 conv: 5x5\n(i-1)s+k-2p = 2+3-0 = 5",
                                            ko="스트라이드 1 합성곱: 5x5\n(i-1)s+k-2p = 2+3-0 = 5"),
            fmt="{:.0f}", cmap="Purples", vmin=-2, vmax=20)
fig.suptitle(lesson.label("Zero insertion: transposed conv with k=3, s=2, p=0 as an ordinary convolution",
                          ko="0 삽입: k=3, s=2, p=0인 전치 합성곱을 보통 합성곱으로 계산"), fontsize=11, y=1.06)
lesson.save(fig, "zero_insertion")
lesson.check(np.array_equal(ys, conv_transpose2d_scatter(Xs, Ks, stride=2)), "the pictured example equals the scatter",
             ko="그림의 예는 흩뿌리기 결과와 같다")

# Animated: step 1's animated example (stride 2, a kernel that is not symmetric) as zero insertion.
# The flipped kernel slides over the zero-inserted, padded input; the same output appears.
y_a, inserted_a, padded_a, flipped_a = by_zero_insertion(X_a, K_a, s=2, p=0)
real_a = pad_or_crop(zero_insert(np.ones_like(X_a), 2), (2, 2), (2, 2))[0, 0] == 1  # the 4 true pixels
lesson.close(y_a[0, 0], partial[4], "zero insertion gives the scatter animation's last frame",
             ko="0 삽입은 흩뿌리기 애니메이션의 마지막 프레임과 같은 결과를 낸다")
lesson.close(conv_transpose2d_forward(X_a, K_a, stride=2, method="zero_insert")[0], y_a,
             "and the engine's method='zero_insert' computes the same", ko="엔진의 method='zero_insert'도 같은 값을 계산한다")
lesson.save_animation(*sliding_window_animation(
    padded_a[0, 0], flipped_a[0, 0], y_a[0, 0], real=real_a,
    titles=(lesson.label("1 zero inserted, padded by k-p-1 = 2", ko="0을 1개씩 삽입, k-p-1 = 2만큼 패딩"),
            lesson.label("K flipped", ko="뒤집은 K"), lesson.label("output 5x5, stride 1", ko="출력 5x5, 스트라이드 1")),
    final=lesson.label("the same 5x5 as the scatter: conv_transpose2d_forward(x, K, stride=2)",
                       ko="흩뿌리기와 같은 5x5: conv_transpose2d_forward(x, K, stride=2)"),
    left_out=lesson.label("   (0·w terms left out)", ko="   (0·w 항은 생략)")), "zero_insertion_sliding", fps=3)

# %%
lesson.step("Scatter == zero insertion == col2im, for every stride, padding, output padding, dilation",
            ko="흩뿌리기 == 0 삽입 == col2im: 모든 스트라이드, 패딩, 출력 패딩, 팽창(dilation)에서")
n_cases = 0
for i in (1, 2, 3):
    for k in (1, 2, 3, 4):
        for s in (1, 2, 3):
            for p in range(k):
                if conv_transpose_output_size(i, k, s, p) < 1:
                    continue
                x = rng.standard_normal((2, 3, i, i + 1))
                w = rng.standard_normal((3, 2, k, k))
                b = rng.standard_normal(2)
                ref = conv_transpose2d_scatter(x, w, b, stride=s, padding=p)
                for method in ("zero_insert", "col2im"):
                    y, _ = conv_transpose2d_forward(x, w, b, stride=s, padding=p, method=method)
                    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12,
                                               err_msg=f"{method} i={i} k={k} s={s} p={p}")
                if y.shape[2] != (i - 1) * s + k - 2 * p:
                    raise AssertionError(lesson.tr(f"output size wrong for i={i} k={k} s={s} p={p}",
                                                   ko=f"i={i} k={k} s={s} p={p}에서 출력 크기가 틀렸다"))
                n_cases += 1
lesson.check(n_cases > 50, f"{n_cases} configurations: both engine methods equal the scatter, size (i-1)s + k - 2p",
             ko=f"설정 {n_cases}가지: 엔진의 두 방법 모두 흩뿌리기와 같고, 크기는 (i-1)s + k - 2p이다")
x, w = rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((2, 3, 3, 2))
for kw in [dict(stride=2, padding=1, output_padding=1), dict(stride=(2, 3), padding=(0, 1), dilation=2)]:
    ref = conv_transpose2d_scatter(x, w, **kw)
    lesson.close(conv_transpose2d_forward(x, w, **kw, method="zero_insert")[0], ref,
                 f"zero_insert == scatter with {kw}", ko=f"{kw}에서 zero_insert == scatter(흩뿌리기)")
    lesson.close(conv_transpose2d_forward(x, w, **kw, method="col2im")[0], ref, f"col2im == scatter with {kw}",
                 ko=f"{kw}에서 col2im == scatter(흩뿌리기)")
for method in ("col2im", "zero_insert"):
    layer = ConvTranspose2d(3, 2, 4, stride=2, padding=1, method=method, dtype=np.float64, seed=1)
    err = max(gradcheck.check_module(layer, rng.standard_normal((2, 3, 3, 4))).values())
    lesson.check(err < gradcheck.TOL_SMOOTH,
                 f"ConvTranspose2d(method={method!r}) passes the gradient check ({err:.0e})",
                 ko=f"ConvTranspose2d(method={method!r})는 기울기 검사(gradient check)를 통과한다 ({err:.0e})")

# %%
lesson.step("Way 3, the transpose: conv(x) = C x, transposed conv(y) = C^T y",
            ko="방법 3, 전치: 합성곱이 conv(x) = C x이면 전치 합성곱은 C^T y이다")
# The transposed conv 2x2 -> 3x3 with kernel K is the transpose of the conv 3x3 -> 2x2 with kernel K.
C = conv_matrix((3, 3), K[:, :1])  # conv weight (F=1, C=1, 2, 2): rows = 4 outputs, columns = 9 inputs
print(lesson.tr("C, the 3x3 -> 2x2 convolution as a (4 x 9) matrix:\n",
                ko="C, 곧 3x3 -> 2x2 합성곱을 (4 x 9) 행렬로 쓴 것:\n"), C)
x3 = rng.standard_normal((1, 1, 3, 3))
lesson.close(C @ x3.ravel(), conv2d_forward(x3, K)[0].ravel(), "C @ x equals conv2d_forward(x, K)",
             ko="C @ x는 conv2d_forward(x, K)와 같다")
yT = (C.T @ X.ravel()).reshape(3, 3)
print(lesson.tr("C^T @ [0, 1, 2, 3] reshaped to 3x3:\n", ko="C^T @ [0, 1, 2, 3]을 3x3으로 바꾼 것:\n"), yT)
lesson.check(np.array_equal(yT, Y), "C^T applied to the 2x2 input gives the scatter's [[0,0,1],[0,4,6],[4,12,9]]",
             ko="2x2 입력에 C^T를 곱하면 흩뿌리기와 같은 [[0,0,1],[0,4,6],[4,12,9]]가 나온다")
x, w = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((3, 2, 4, 4))
ref = conv_transpose2d_matrix(x, w, stride=2, padding=1)
lesson.close(conv_transpose2d_forward(x, w, stride=2, padding=1)[0], ref, "k=4 s=2 p=1 with channels: col2im == C^T",
             ko="채널(channel)이 여럿인 k=4 s=2 p=1: col2im == C^T")
# The engine's col2im method IS the backward pass of the convolution with the same weight:
# conv weight (F, C, k, k) = transposed-conv weight (C_in = F, C_out = C, k, k).
out_hw = (conv_transpose_output_size(4, 4, 2, 1), conv_transpose_output_size(5, 4, 2, 1))
_, conv_cache = conv2d_forward(rng.standard_normal((2, 2, *out_hw)), w, stride=2, padding=1)
dx, _, _ = conv2d_backward(x, conv_cache)
lesson.close(conv_transpose2d_forward(x, w, stride=2, padding=1)[0], dx,
             "transposed conv(x) == conv2d_backward(dy = x): the backward pass of a convolution",
             ko="x의 전치 합성곱 == conv2d_backward(dy = x): 곧 합성곱의 역전파(backward pass)이다")

fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [9, 4]})
draw_matrix(axes[0], C, lesson.label("C (4 x 9): conv 3x3 -> 2x2 with K = [[0,1],[2,3]]",
                                     ko="C (4 x 9): K = [[0,1],[2,3]]인 3x3 -> 2x2 합성곱"),
            fmt=lambda v: f"{v:.0f}" if v else "", cmap="Greens", vmin=-1, vmax=4)
axes[0].set_xticks(range(9), [f"x{r}{c}" for r in range(3) for c in range(3)], fontsize=8)
axes[0].set_yticks(range(4), [f"y{r}{c}" for r in range(2) for c in range(2)], fontsize=8)
draw_matrix(axes[1], C.T, lesson.label("C^T (9 x 4): the\ntransposed convolution", ko="C^T (9 x 4):\n전치 합성곱"),
            fmt=lambda v: f"{v:.0f}" if v else "", cmap="Greens", vmin=-1, vmax=4)
axes[1].set_yticks(range(9), [f"out{r}{c}" for r in range(3) for c in range(3)], fontsize=8)
axes[1].set_xticks(range(4), [f"in{r}{c}" for r in range(2) for c in range(2)], fontsize=8)
lesson.save(fig, "conv_matrix")

# %%
lesson.step("The dot-product test: <conv(x), y> == <conv_transpose(y), x>",
            ko="내적 검사(dot-product test): <conv(x), y> == <conv_transpose(y), x>")
for k, s, p in [(4, 2, 1), (16, 8, 4), (3, 1, 1), (3, 2, 0)]:
    w = rng.standard_normal((3, 2, k, k))  # conv (2 -> 3 channels) and its transpose (3 -> 2)
    x = rng.standard_normal((2, 2, 2 * k + 3, 2 * k + 1))
    cx, _ = conv2d_forward(x, w, stride=s, padding=p)
    y = rng.standard_normal(cx.shape)
    op = tuple(n - conv_transpose_output_size(m, k, s, p) for n, m in zip(x.shape[2:], y.shape[2:]))
    ty, _ = conv_transpose2d_forward(y, w, stride=s, padding=p, output_padding=op)
    lhs, rhs = np.sum(cx * y), np.sum(ty * x)
    print(f"k={k:2d} s={s} p={p}: <conv(x), y> = {lhs:+.10f}  <conv_transpose(y), x> = {rhs:+.10f}")
    lesson.close(lhs, rhs, f"k={k} s={s} p={p}: the two inner products agree", rtol=1e-12,
                 ko=f"k={k} s={s} p={p}: 두 내적이 일치한다")

# %%
lesson.step("'Deconvolution' is a misnomer: the transpose is not the inverse",
            ko="'역합성곱(deconvolution)'은 잘못 붙은 이름이다: 전치는 역연산이 아니다")
# Even when the convolution IS invertible (square C: 3x3 kernel, stride 1, 'same' padding),
# conv_transpose(conv(x)) = C^T C x is not x. The real deconvolution solves C x = y.
w = np.array([[[[0.1, 0.2, 0.0], [0.3, 1.0, 0.4], [0.0, 0.2, 0.1]]]])
x = rng.standard_normal((1, 1, 4, 4))
y, _ = conv2d_forward(x, w, padding=1)
back, _ = conv_transpose2d_forward(y, w, padding=1)
C = conv_matrix((4, 4), w, padding=1)
solved = np.linalg.solve(C, y.ravel()).reshape(x.shape)
lesson.say(f"C is {C.shape}, rank {np.linalg.matrix_rank(C)}; "
           f"max |C^T C - I| = {np.abs(C.T @ C - np.eye(16)).max():.2f}",
           ko=f"C는 {C.shape}이고 계수(rank)는 {np.linalg.matrix_rank(C)}입니다. "
              f"max |C^T C - I| = {np.abs(C.T @ C - np.eye(16)).max():.2f}")
print("x:\n", x[0, 0], "\nconv_transpose(conv(x)):\n", back[0, 0], "\nsolve(C, conv(x)):\n", solved[0, 0])
lesson.check(np.abs(back - x).max() > 0.1,
             f"conv_transpose(conv(x)) != x (max difference {np.abs(back - x).max():.2f})",
             ko=f"conv_transpose(conv(x)) != x (최대 차이 {np.abs(back - x).max():.2f})")
lesson.close(solved, x, "an actual deconvolution (solving C x = y) does recover x", rtol=1e-8, atol=1e-10,
             ko="진짜 역합성곱(C x = y를 푸는 것)은 x를 되찾는다")
lesson.close(back.ravel(), C.T @ C @ x.ravel(), "conv_transpose(conv(x)) = C^T C x",
             ko="conv_transpose(conv(x))는 C^T C x이다")
# And FCN's stride-2 layers cannot be inverted at all: C maps 36 numbers to 9.
C2 = conv_matrix((6, 6), rng.standard_normal((1, 1, 4, 4)), stride=2, padding=1)
lesson.check(C2.shape == (9, 36) and np.linalg.matrix_rank(C2) == 9,
             "k=4 s=2 p=1 on 6x6: C is 9x36 of rank 9, 27 dimensions are lost; upsampling must LEARN them",
             ko="6x6에 k=4 s=2 p=1: C는 계수 9인 9x36 행렬이라 27개 차원을 잃으므로, 업샘플링(upsampling)은 그것을 "
                "'학습'해야 한다")

fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
vmax = np.abs(np.concatenate([x.ravel(), back.ravel()])).max()
for ax, a, t in zip(axes, [x, y, back, solved], [
        "x", "y = conv(x), 3x3, p=1",
        lesson.label("conv_transpose(y)\n= C^T C x: not x", ko="conv_transpose(y)\n= C^T C x: x가 아님"),
        lesson.label("solve(C, y): the real\ninverse, = x", ko="solve(C, y): 진짜\n역연산, = x")]):
    im = draw_matrix(ax, a[0, 0], t, fmt="{:.2f}", cmap="RdBu_r", vmin=-vmax, vmax=vmax, fontsize=8)
fig.colorbar(im, ax=axes, shrink=0.8)
fig.suptitle(lesson.label("The transpose is not the inverse ('deconvolution' is a misnomer)",
                          ko="전치는 역연산이 아니다 ('역합성곱'은 잘못 붙은 이름)"), fontsize=11, y=0.93)
lesson.save(fig, "not_the_inverse")

# %%
lesson.step("output_padding: a stride-2 conv maps two input sizes to one; output_padding picks which",
            ko="output_padding: 스트라이드 2 합성곱은 두 입력 크기를 하나로 보내고, output_padding이 그중 하나를 고른다")
for H in (7, 8):
    lesson.say(f"conv k=3 s=2 p=1: {H}x{H} -> {conv_output_size(H, 3, 2, 1)}x{conv_output_size(H, 3, 2, 1)}",
               ko=f"합성곱 k=3 s=2 p=1: {H}x{H} -> {conv_output_size(H, 3, 2, 1)}x{conv_output_size(H, 3, 2, 1)}")
lesson.check(conv_output_size(7, 3, 2, 1) == conv_output_size(8, 3, 2, 1) == 4, "7 and 8 both become 4",
             ko="7과 8 모두 4가 된다")
w = rng.standard_normal((2, 3, 3, 3))
g = rng.standard_normal((1, 2, 4, 4))
for op, H in [(0, 7), (1, 8)]:
    t, _ = conv_transpose2d_forward(g, w, stride=2, padding=1, output_padding=op)
    x = rng.standard_normal((1, 3, H, H))
    cx, cache = conv2d_forward(x, w, stride=2, padding=1)
    print(f"output_padding={op}: 4x4 -> {t.shape[2]}x{t.shape[3]}  ((4-1)*2 - 2 + 3 + {op} = {6 - 2 + 3 + op})")
    lesson.check(t.shape[2:] == (H, H), f"output_padding={op} gives {H}x{H}", ko=f"output_padding={op}이면 {H}x{H}이다")
    lesson.close(np.sum(cx * g), np.sum(t * x),
                 f"and is then the exact adjoint of the conv on {H}x{H} (dot-product test)", rtol=1e-12,
                 ko=f"이때 {H}x{H} 입력의 합성곱과 정확히 수반(adjoint) 관계이다 (내적 검사)")
    lesson.close(t, conv2d_backward(g, cache)[0], f"= that conv's backward pass on {H}x{H}",
                 ko=f"= {H}x{H} 입력에서 그 합성곱의 역전파")
try:
    conv_transpose2d_forward(g, w, stride=2, padding=1, output_padding=2)
    rejected = False
except ValueError as err:
    print(lesson.tr("output_padding=2 with stride 2:", ko="스트라이드 2에서 output_padding=2:"), err)
    rejected = True
lesson.check(rejected, "output_padding must be < max(stride, dilation): it only picks among sizes the conv merges",
             ko="output_padding은 max(stride, dilation), 곧 스트라이드와 팽창 중 큰 값보다 작아야 한다: 합성곱이 하나로 "
                "합치는 크기들 가운데서 고를 뿐이다")

# %%
lesson.step("The PyTorch FCN port's upsamplers use k = 2s, p = s/2: the output is exactly s times the input",
            ko="PyTorch FCN 포팅의 업샘플링 층은 k = 2s, p = s/2를 쓴다: 출력이 정확히 입력의 s배가 된다")
# Where the rule comes from: the FCN paper (arXiv:1411.4038, sections 3.3 and 4.2) upsamples by "backwards
# strided convolution" with k = 2s (upscore2 k4 s2, upscore8 k16 s8, upscore k64 s32), and its released Caffe
# nets run those deconvolutions WITHOUT padding, then cut the output with a Crop layer at an offset (lesson 08
# derives the offsets 19; 5, 27; 5, 9, 31 that its 100-pixel input padding makes necessary). The PyTorch port
# this engine mirrors (the study notes' FCN32s/16s/8s classes) folds the crop into the layer instead: p = s/2.
# In a transposed convolution, padding p just cuts p rows/columns off each side of the output:
lesson.say("layer             k   s   p    7x7 score map ->", ko="층                k   s   p    7x7 점수 맵(score map) ->")
for name, k, s, p in [("upscore2", 4, 2, 1), ("upscore8", 16, 8, 4), ("upscore16", 32, 16, 8),
                      ("upscore32", 64, 32, 16)]:
    out = conv_transpose_output_size(7, k, s, p)
    print(f"{name:15s} {k:3d} {s:3d} {p:3d}    {out}")
    lesson.check(out == 7 * s == (7 - 1) * s + k - 2 * p, f"{name}: (7-1)*{s} + {k} - {2 * p} = {7 * s} = 7 * {s}",
                 ko=f"{name}의 출력: (7-1)*{s} + {k} - {2 * p} = {7 * s} = 7 * {s}")
x = rng.standard_normal((1, 2, 7, 7))
w = np.zeros((2, 2, 64, 64))
y, _ = conv_transpose2d_forward(x, w, stride=32, padding=16)
lesson.check(y.shape == (1, 2, 224, 224), "the port's FCN-32s upscore32 (k64 s32 p16) turns 7x7 into 224x224",
             ko="PyTorch 포팅의 FCN-32s upscore32 (k64 s32 p16)는 7x7을 224x224로 만든다")
for k, s in [(4, 2), (16, 8), (64, 32)]:
    w = rng.standard_normal((2, 2, k, k))
    unpadded, _ = conv_transpose2d_forward(x, w, stride=s)  # the paper's Caffe deconvolution: p = 0
    padded, _ = conv_transpose2d_forward(x, w, stride=s, padding=s // 2)
    lesson.say(f"k={k:2d} s={s:2d}: unpadded 7x7 -> {unpadded.shape[2]}x{unpadded.shape[3]}, crop offset {s // 2} -> "
               f"{padded.shape[2]}x{padded.shape[3]}",
               ko=f"k={k:2d} s={s:2d}: 패딩 없이 7x7 -> {unpadded.shape[2]}x{unpadded.shape[3]}, 크롭(crop) 오프셋 {s // 2} -> "
                  f"{padded.shape[2]}x{padded.shape[3]}")
    lesson.close(unpadded[:, :, s // 2 : s // 2 + 7 * s, s // 2 : s // 2 + 7 * s], padded,
                 f"k={k} s={s}: the unpadded deconvolution cropped at offset s/2 = {s // 2} == padding p = s/2",
                 ko=f"k={k} s={s}: 패딩 없는 역합성곱을 오프셋 s/2 = {s // 2}에서 크롭한 것 == 패딩 p = s/2")

# %%
lesson.done(summary=[
    ("Scatter, zero insertion (z = s-1, p' = k-p-1, flipped kernel) and col2im give the same transposed "
        "convolution for every stride, padding, output padding and dilation.",
     "흩뿌리기, 0 삽입(z = s-1, p' = k-p-1, 뒤집은 커널), col2im은 모든 스트라이드, 패딩, 출력 패딩, 팽창에서 "
     "같은 전치 합성곱을 낸다."),
    ("A transposed convolution is C^T, the backward pass of the convolution, and passes the dot-product test.",
     "전치 합성곱은 C^T, 곧 합성곱의 역전파이며 내적 검사를 통과한다."),
    ("It is not the inverse: conv_transpose(conv(x)) = C^T C x, not x.",
     "전치 합성곱은 역연산이 아니다: conv_transpose(conv(x))는 x가 아니라 C^T C x이다."),
    ("output_padding picks which of the input sizes a strided conv merges comes back.",
     "output_padding은 스트라이드가 있는 합성곱이 하나로 합치는 입력 크기들 중 어느 것으로 되돌아갈지 고른다."),
    ("k = 2s, p = s/2 gives exactly s times the input, the same as the paper's unpadded deconvolution cropped "
        "at s/2.",
     "k = 2s, p = s/2이면 출력은 정확히 입력의 s배이고, 논문의 패딩 없는 역합성곱을 s/2에서 크롭한 것과 같다."),
], exercises=["conv_transpose_zero_insert"])

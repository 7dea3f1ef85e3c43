# %% [markdown]
# # Lesson 02: im2col and col2im
#
# A convolution slides a window over the input and, at every position, takes a
# dot product with the kernel. **im2col** ("image to columns") copies every
# window into one column of a matrix, the *patch matrix*; the whole
# convolution then becomes a single matrix product (a GEMM), which BLAS runs
# fast. **col2im** goes the other way: it adds every column back into the
# pixels it came from. This lesson shows
#
# 1. the layout of the patch matrix,
# 2. what it costs: about ``k^2`` times the memory of the input,
# 3. that col2im is **not** the inverse of im2col (it *sums* overlapping
#    windows), but its **adjoint** (transpose), proved by the dot-product test.
#
# Sources: im2col + one GEMM as the way to run convolutions on BLAS: Chellapilla, Puri &
# Simard, "High Performance Convolutional Neural Networks for Document Processing" (2006),
# and Caffe (Jia et al., arXiv:1408.5093); convolution as a sparse matrix and its transpose:
# Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (arXiv:1603.07285),
# section 4.1. The engine's kernels are in `fcn_scratch/kernels/` (a Numba kernel and a
# NumPy twin each).
# Run: `python lessons/02_im2col_col2im.py [--step] [--no-figures] [--figures DIR]`.

# %% [markdown]
# # 레슨 02: im2col과 col2im
#
# 합성곱(convolution)은 입력 위로 윈도우(window)를 밀어 가며 위치마다 커널(kernel)과 내적을 구합니다.
# **im2col**("image to columns")은 모든 윈도우를 행렬의 열 하나씩으로 복사하는데, 이 행렬이
# *패치 행렬(patch matrix)*입니다. 그러면 합성곱 전체가 행렬곱 하나(GEMM)가 되고, BLAS가 이것을 빠르게
# 계산합니다. **col2im**은 반대 방향으로 갑니다. 모든 열을 그 값이 왔던 픽셀(pixel)에 다시 더합니다.
# 이 레슨에서는 다음을 보입니다.
#
# 1. 패치 행렬의 구조,
# 2. 그 비용: 입력의 약 ``k^2``배 메모리,
# 3. col2im은 im2col의 역연산이 **아니라**(겹치는 윈도우를 *더합니다*) **수반(adjoint)**(전치)이라는 것.
#    내적 검사(dot-product test)로 증명합니다.
#
# 출처: 합성곱을 BLAS로 돌리는 방법인 im2col + GEMM 한 번: Chellapilla, Puri & Simard, "High Performance
# Convolutional Neural Networks for Document Processing"(2006)과 Caffe(Jia et al., arXiv:1408.5093).
# 희소 행렬로 본 합성곱과 그 전치: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning"
# (arXiv:1603.07285) 4.1절. 엔진의 커널은 `fcn_scratch/kernels/`에 있습니다(각각 Numba 커널 하나와 그
# NumPy 쌍둥이 하나).
# 실행: `python lessons/02_im2col_col2im.py --lang ko [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import Lesson, draw_matrix  # first: puts the repo on sys.path, picks a headless backend

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from fcn_scratch import kernels
from fcn_scratch.functional import conv2d_backward, conv2d_forward, conv_output_size
from fcn_scratch.naive import col2im_naive, conv2d_naive, im2col_naive

lesson = Lesson("02_im2col_col2im", "im2col and col2im: the patch matrix and its adjoint",
                ko="im2col과 col2im: 패치 행렬(patch matrix)과 그 수반(adjoint)")
rng = np.random.default_rng(2)


def unfold(x, k, s=1, p=0, d=1):
    """The engine's im2col kernel with the output size filled in: (N, C, H, W) -> (N, C*k*k, Ho*Wo)."""
    Ho, Wo = (conv_output_size(n, k, s, p, d) for n in x.shape[2:])
    return kernels.im2col(x, k, k, s, s, p, p, d, d, Ho, Wo)


def fold(cols, x_shape, k, s=1, p=0, d=1):
    """The engine's col2im kernel: (N, C*k*k, Ho*Wo) -> (N, C, H, W), overlapping entries summed."""
    N, C, H, W = x_shape
    Ho, Wo = conv_output_size(H, k, s, p, d), conv_output_size(W, k, s, p, d)
    return kernels.col2im(cols, N, C, H, W, k, k, s, s, p, p, d, d, Ho, Wo)


# %%
lesson.step("The patch matrix: one column per output pixel, one row per kernel tap",
            ko="패치 행렬: 출력 픽셀(pixel)마다 열 하나, 커널(kernel) 탭마다 행 하나")
x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)  # values 1..16 so every pixel is recognisable
cols = unfold(x, k=3)  # 3x3 windows, stride 1, no padding -> 2x2 output positions
print(lesson.tr("input x[0, 0] (4x4):\n", ko="입력 x[0, 0] (4x4):\n"), x[0, 0])
print(lesson.tr("patch matrix cols[0] (9 taps x 4 positions):\n", ko="패치 행렬 cols[0] (탭 9개 x 위치 4개):\n"), cols[0])
print(lesson.tr("shape:", ko="모양:"), x.shape, "->", cols.shape, "= (N, C*kh*kw, Ho*Wo)")
# Column j holds the window whose top-left corner is output pixel (j // Wo, j % Wo).
for j in range(4):
    i0, j0 = divmod(j, 2)
    window = x[0, 0, i0 : i0 + 3, j0 : j0 + 3]
    lesson.check(np.array_equal(cols[0, :, j], window.ravel()),
                 f"column {j} is the 3x3 window at ({i0}, {j0}), read row by row",
                 ko=f"{j}번 열은 ({i0}, {j0})에 있는 3x3 윈도우를 행 순서대로 읽은 것이다")
lesson.check(np.array_equal(cols, im2col_naive(x, 3)), "the kernel agrees with the plain-loop im2col_naive",
             ko="커널은 단순 루프로 짠 im2col_naive와 일치한다")

fig = plt.figure(figsize=(10, 4.6))
grid = fig.add_gridspec(2, 4, width_ratios=[1, 1, 0.25, 1.5])
colors = ["tab:red", "tab:blue", "tab:green", "tab:orange"]
for j, c in enumerate(colors):
    i0, j0 = divmod(j, 2)
    ax = fig.add_subplot(grid[i0, j0])
    draw_matrix(ax, x[0, 0], lesson.label(f"window {j}: output pixel ({i0},{j0})", ko=f"윈도우 {j}: 출력 픽셀 ({i0},{j0})"),
                cmap="YlGnBu", fmt="{:.0f}", vmin=-4)
    ax.add_patch(Rectangle((j0 - 0.5, i0 - 0.5), 3, 3, fill=False, lw=3, ec=c))
ax = fig.add_subplot(grid[:, 3])
draw_matrix(ax, cols[0], lesson.label("patch matrix im2col(x)\n9 taps x 4 windows", ko="패치 행렬 im2col(x)\n탭 9개 x 윈도우 4개"),
            cmap="YlGnBu", fmt="{:.0f}", vmin=-4)
for j, c in enumerate(colors):
    ax.add_patch(Rectangle((j - 0.45, -0.45), 0.9, 8.9, fill=False, lw=3, ec=c))
ax.set_xticks(range(4), [lesson.label(f"win {j}", ko=f"윈도우 {j}") for j in range(4)], fontsize=8)
ax.set_yticks(range(9), [lesson.label(f"tap ({u},{v})", ko=f"탭 ({u},{v})") for u in range(3) for v in range(3)],
              fontsize=8)
fig.suptitle(lesson.label("im2col: each 3x3 window of the 4x4 input becomes one column",
                          ko="im2col: 4x4 입력의 3x3 윈도우 하나하나가 열 하나가 된다"), fontsize=11, y=1.03)
lesson.save(fig, "patch_matrix")

# %%
lesson.step("Channels, stride, padding and dilation change which pixels a column holds, not the layout",
            ko="채널(channel), 스트라이드(stride), 패딩(padding), 팽창(dilation)은 열에 담기는 픽셀만 바꾸고 "
               "행렬의 구조는 그대로 둔다")
x = rng.standard_normal((2, 3, 7, 6))
lesson.say("row index of tap (c, u, v) = (c*kh + u)*kw + v; for C=3, k=3 the 27 rows are",
           ko="탭 (c, u, v)의 행 번호 = (c*kh + u)*kw + v입니다. C=3, k=3이면 27개 행은 이렇게 나뉩니다")
lesson.say("  c=0: rows 0..8, c=1: rows 9..17, c=2: rows 18..26", ko="  c=0: 행 0..8, c=1: 행 9..17, c=2: 행 18..26")
for k, s, p, d in [(3, 1, 1, 1), (3, 2, 1, 1), (2, 2, 0, 1), (3, 1, 2, 2), (1, 1, 0, 1)]:
    ref = im2col_naive(x, k, s, p, d)
    for backend in kernels.BACKENDS:
        with kernels.use_backend(backend):
            got = unfold(x, k, s, p, d)
        lesson.check(np.array_equal(got, ref),
                     f"k={k} s={s} p={p} d={d}: {backend:5s} im2col {got.shape} == im2col_naive",
                     ko=f"k={k} s={s} p={p} d={d}: {backend:5s} im2col {got.shape}의 결과가 im2col_naive와 같다")
cols = unfold(x, 3, 1, 1)
lesson.check(cols[0, 0, 0] == 0.0, "tap (0, 0) of window (0, 0) lies on the zero padding: it reads 0",
             ko="윈도우 (0, 0)의 탭 (0, 0)은 0으로 채운 패딩 위에 있어서 0을 읽는다")

# %%
lesson.step("Why bother: the whole convolution is then ONE matrix product",
            ko="굳이 이렇게 하는 이유: 그러면 합성곱(convolution) 전체가 행렬곱 '단 하나'가 된다")
w = rng.standard_normal((4, 3, 3, 3))  # 4 filters of shape (C=3, 3, 3)
cols = unfold(x, 3, 1, 1)  # (2, 27, 42)
y = (w.reshape(4, 27) @ cols).reshape(2, 4, 7, 6)  # (4, 27) @ (27, 42), once per image
print(lesson.tr("weight (F, C, kh, kw) =", ko="가중치(weight) (F, C, kh, kw) ="), w.shape,
      lesson.tr("-> as a matrix", ko="-> 행렬로는"), w.reshape(4, 27).shape)
print("(F, C*kh*kw) @ (C*kh*kw, Ho*Wo) =", (4, 27), "@", cols.shape[1:], "->", y.shape)
lesson.close(y, conv2d_naive(x, w, padding=1), "W @ im2col(x) equals the 7-loop convolution conv2d_naive",
             ko="W @ im2col(x)는 7중 루프 합성곱 conv2d_naive와 같다")

# %%
lesson.step("The price: the patch matrix is about k^2 times bigger than the input",
            ko="대가: 패치 행렬은 입력보다 약 k^2배 크다")
x = rng.standard_normal((1, 8, 32, 32))
lesson.say(" k  stride  pad   input entries   patch entries   ratio",
           ko="(s = 스트라이드, p = 패딩)\n k       s    p    입력 원소 수    패치 원소 수    비율")
for k, s in [(1, 1), (3, 1), (5, 1), (7, 1), (3, 2), (2, 2)]:
    p = (k - 1) // 2 if s == 1 else (1 if k == 3 else 0)
    cols = unfold(x, k, s, p)
    ratio = cols.size / x.size
    print(f"{k:2d}  {s:6d}  {p:3d}  {x.size:14d}  {cols.size:14d}  {ratio:6.2f}")
    lesson.check(np.isclose(ratio, k * k / s**2),
                 f"k={k}, stride {s}, 'same' padding: k^2/s^2 = {ratio:g} patch entries per input entry",
                 ko=f"k={k}, 스트라이드 {s}, 'same' 패딩: 입력 원소 하나당 패치 원소 k^2/s^2 = {ratio:g}개")
lesson.check(unfold(x, 2, 2).size == x.size, "k = s = 2: windows do not overlap, no blow-up at all",
             ko="k = s = 2: 윈도우가 겹치지 않으므로 전혀 불어나지 않는다")
# VGG's conv1_2 (64 -> 64 channels, 3x3, padding 1), in float32, measured on a 56x56 image (a quarter side):
x64 = rng.standard_normal((1, 64, 56, 56)).astype(np.float32)
cols64 = unfold(x64, 3, 1, 1)
lesson.say(f"64 channels, 56x56, float32: input {x64.nbytes / 2**20:.2f} MiB, "
           f"patch matrix {cols64.nbytes / 2**20:.2f} MiB"
           f" ({cols64.dtype}); on a 224x224 image (16x the pixels): {16 * x64.nbytes / 2**20:.1f} MiB -> "
           f"{16 * cols64.nbytes / 2**20:.1f} MiB per image",
           ko=f"채널 64개, 56x56, float32: 입력 {x64.nbytes / 2**20:.2f} MiB, 패치 행렬 {cols64.nbytes / 2**20:.2f} MiB"
              f" ({cols64.dtype}). 224x224 이미지(픽셀 16배)라면 이미지 한 장에 {16 * x64.nbytes / 2**20:.1f} MiB -> "
              f"{16 * cols64.nbytes / 2**20:.1f} MiB입니다")
lesson.check(cols64.dtype == np.float32 and cols64.nbytes == 9 * x64.nbytes,
             "the engine's float32 patch matrix of a 3x3 'same' conv takes exactly 9x the input's bytes",
             ko="3x3 'same' 합성곱에서 엔진의 float32 패치 행렬은 정확히 입력의 9배 바이트를 차지한다")

# %%
lesson.step("col2im is NOT the inverse of im2col: it sums overlapping windows",
            ko="col2im은 im2col의 역연산이 '아니다': 겹치는 윈도우를 더한다")
x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
back = fold(unfold(x, 3), x.shape, 3)
count = fold(unfold(np.ones_like(x), 3), x.shape, 3)  # how many windows cover each pixel
print("x:\n", x[0, 0])
print("col2im(im2col(x)):\n", back[0, 0])
print(lesson.tr("count = col2im(im2col(ones)):\n", ko="덮는 윈도우 수 count = col2im(im2col(ones)):\n"), count[0, 0])
lesson.check(not np.allclose(back, x), "col2im(im2col(x)) != x", ko="col2im(im2col(x))는 x와 다르다")
# Independent count: along one axis, pixel h is covered by the windows starting at i with i <= h < i + 3.
per_axis = np.array([sum(i <= h < i + 3 for i in range(2)) for h in range(4)])
lesson.check(np.array_equal(count[0, 0], np.outer(per_axis, per_axis)),
             f"count = outer({per_axis.tolist()}, {per_axis.tolist()}): windows covering each pixel",
             ko=f"count = outer({per_axis.tolist()}, {per_axis.tolist()}): 픽셀마다 그 픽셀을 덮는 윈도우 수")
lesson.close(back, x * count, "col2im(im2col(x)) == x * count: each pixel comes back once per window",
             ko="col2im(im2col(x)) == x * count: 각 픽셀은 자기를 덮는 윈도우마다 한 번씩 되돌아온다")
lesson.close(col2im_naive(unfold(x, 3), x.shape, 3), back, "the kernel agrees with col2im_naive",
             ko="커널은 col2im_naive와 일치한다")
x2 = rng.standard_normal((1, 2, 6, 6))
lesson.close(fold(unfold(x2, 2, 2), x2.shape, 2, 2), x2,
             "only when windows do not overlap (k = s = 2) does col2im undo im2col",
             ko="윈도우가 겹치지 않을 때(k = s = 2)만 col2im이 im2col을 되돌린다")

fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
for ax, a, t in zip(axes, [x[0, 0], back[0, 0], count[0, 0]],
                    ["x", "col2im(im2col(x)), k=3",
                     lesson.label("count: windows covering\neach pixel", ko="count: 각 픽셀을\n덮는 윈도우 수")]):
    im = draw_matrix(ax, a, t, fmt="{:.0f}", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8)
fig.suptitle(lesson.label("col2im sums overlaps: col2im(im2col(x)) = x * count, not x",
                          ko="col2im은 겹친 부분을 더한다: col2im(im2col(x))는 x가 아니라 x * count"), fontsize=11)
lesson.save(fig, "not_the_inverse")

# %%
lesson.step("col2im is the ADJOINT of im2col: the dot-product test",
            ko="col2im은 im2col의 '수반'이다: 내적 검사(dot-product test)")
# im2col is linear, y = A x with A a 0/1 copy matrix; its adjoint A^T satisfies
# <A x, Y> = <x, A^T Y> for every x and Y. col2im must be that A^T.
for k, s, p, d in [(3, 1, 0, 1), (3, 2, 1, 1), (3, 1, 2, 2), (4, 3, 1, 1)]:
    x = rng.standard_normal((2, 3, 9, 8))
    Y = rng.standard_normal(unfold(x, k, s, p, d).shape)
    lhs = np.sum(unfold(x, k, s, p, d) * Y)
    rhs = np.sum(x * fold(Y, x.shape, k, s, p, d))
    print(f"k={k} s={s} p={p} d={d}:  <im2col(x), Y> = {lhs:+.12f}   <x, col2im(Y)> = {rhs:+.12f}")
    lesson.close(lhs, rhs, f"k={k} s={s} p={p} d={d}: <im2col(x), Y> == <x, col2im(Y)>", rtol=1e-12,
                 ko=f"k={k} s={s} p={p} d={d}: <im2col(x), Y>와 <x, col2im(Y)>가 같다")
# Build A itself, one column per input pixel (im2col of a one-hot image), for the 4x4, k=3 case.
basis = np.eye(16).reshape(16, 1, 1, 4, 4)
A = np.stack([unfold(e, 3)[0].ravel() for e in basis], axis=1)  # (9*4, 16)
print(lesson.tr("A has shape", ko="A의 모양은"), A.shape,
      lesson.tr("(patch entries x input pixels); A^T A is diagonal with diagonal\n",
                ko="(패치 원소 x 입력 픽셀)입니다. A^T A는 대각 행렬이며 대각 성분은 다음과 같습니다:\n"),
      np.diag(A.T @ A).reshape(4, 4))
lesson.check(set(np.unique(A)) == {0.0, 1.0} and np.all(A.sum(axis=1) == 1),
             "A is a 0/1 copy matrix: every patch entry copies exactly one pixel",
             ko="A는 0/1 복사 행렬이다: 패치 원소 하나는 정확히 픽셀 하나를 복사한다")
lesson.close(A.T @ A, np.diag(count.ravel()), "A^T A = diag(count): why col2im(im2col(x)) = x * count",
             ko="A^T A = diag(count): 그래서 col2im(im2col(x)) = x * count이다")
Y = rng.standard_normal((1, 9, 4))
lesson.close(fold(Y, (1, 1, 4, 4), 3).ravel(), A.T @ Y.ravel(), "col2im(Y) == A^T Y, the transpose",
             ko="col2im(Y) == A^T Y, 곧 전치다")

fig, axes = plt.subplots(1, 2, figsize=(10, 5.2), gridspec_kw={"width_ratios": [1, 1.3]})
axes[0].imshow(A, cmap="Greys", aspect="auto", interpolation="nearest")
axes[0].set_title(lesson.label("im2col as a matrix A (36 x 16)\nblack = 1: patch entry copies that pixel",
                               ko="행렬 A로 본 im2col (36 x 16)\n검은 칸 = 1: 패치 원소가 그 픽셀을 복사"), fontsize=10)
axes[0].set_xticks(range(0, 16, 3))
axes[0].set_xlabel(lesson.label("input pixel (row-major index in the 4x4 image)",
                                ko="입력 픽셀 (4x4 이미지에서 행 우선 인덱스)"))
axes[0].set_ylabel(lesson.label("patch-matrix entry (tap, window)", ko="패치 행렬 원소 (탭, 윈도우)"))
im = draw_matrix(axes[1], A.T @ A, lesson.label("col2im(im2col( . )) as a matrix:\nA^T A = diag(count) (blank = 0)",
                                                ko="행렬로 본 col2im(im2col( . )):\nA^T A = diag(count) (빈칸 = 0)"),
                 fmt=lambda v: f"{v:.0f}" if v else "", fontsize=9)
fig.colorbar(im, ax=axes[1], shrink=0.7)
lesson.save(fig, "adjoint_matrix")

# %%
lesson.step("Where col2im is used: the backward pass of a convolution",
            ko="col2im이 쓰이는 곳: 합성곱의 역전파(backward pass)")
x = rng.standard_normal((2, 3, 7, 6))
w = rng.standard_normal((4, 3, 3, 3))
y, cache = conv2d_forward(x, w, stride=2, padding=1)
dy = rng.standard_normal(y.shape)
dx, dw, _ = conv2d_backward(dy, cache)
dcols = w.reshape(4, 27).T @ dy.reshape(2, 4, -1)  # gradient w.r.t. the patch matrix
print("dY", dy.shape, "-> W^T dY", dcols.shape, "-> col2im ->", dx.shape)
lesson.close(dx, fold(dcols, x.shape, 3, 2, 1), "conv backward: dx = col2im(W^T dY), the adjoint of im2col",
             ko="합성곱 역전파: dx = col2im(W^T dY), 곧 im2col의 수반이다")

# %%
lesson.done(summary=[
    ("Column j of im2col is output pixel j's window; both kernels equal the plain loops for every stride, "
        "padding and dilation.",
     "im2col의 열 j는 출력 픽셀 j의 윈도우이다. 두 커널은 모든 스트라이드, 패딩, 팽창에서 단순 루프와 같다."),
    ("W @ im2col(x) is the convolution.", "W @ im2col(x)가 곧 합성곱이다."),
    ("The patch matrix holds k^2/s^2 entries per input entry: 9x the bytes for a 3x3 'same' conv.",
     "패치 행렬은 입력 원소 하나당 원소를 k^2/s^2개 담는다: 3x3 'same' 합성곱이면 바이트가 9배다."),
    ("col2im(im2col(x)) = x * count: col2im sums overlaps, it is not the inverse.",
     "col2im(im2col(x)) = x * count: col2im은 겹친 부분을 더할 뿐, 역연산이 아니다."),
    ("col2im is the adjoint (transpose) of im2col, and a convolution's dx is col2im(W^T dY).",
     "col2im은 im2col의 수반(전치)이며, 합성곱의 dx는 col2im(W^T dY)이다."),
], exercises=["im2col", "col2im"])

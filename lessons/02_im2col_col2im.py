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

# %%
from _common import Lesson, draw_matrix  # first: puts the repo on sys.path, picks a headless backend

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from fcn_scratch import kernels
from fcn_scratch.functional import conv2d_backward, conv2d_forward, conv_output_size
from fcn_scratch.naive import col2im_naive, conv2d_naive, im2col_naive

lesson = Lesson("02_im2col_col2im", "im2col and col2im: the patch matrix and its adjoint")
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
lesson.step("The patch matrix: one column per output pixel, one row per kernel tap")
x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)  # values 1..16 so every pixel is recognisable
cols = unfold(x, k=3)  # 3x3 windows, stride 1, no padding -> 2x2 output positions
print("input x[0, 0] (4x4):\n", x[0, 0])
print("patch matrix cols[0] (9 taps x 4 positions):\n", cols[0])
print("shape:", x.shape, "->", cols.shape, "= (N, C*kh*kw, Ho*Wo)")
# Column j holds the window whose top-left corner is output pixel (j // Wo, j % Wo).
for j in range(4):
    i0, j0 = divmod(j, 2)
    window = x[0, 0, i0 : i0 + 3, j0 : j0 + 3]
    lesson.check(np.array_equal(cols[0, :, j], window.ravel()),
                 f"column {j} is the 3x3 window at ({i0}, {j0}), read row by row")
lesson.check(np.array_equal(cols, im2col_naive(x, 3)), "the kernel agrees with the plain-loop im2col_naive")

fig = plt.figure(figsize=(10, 4.6))
grid = fig.add_gridspec(2, 4, width_ratios=[1, 1, 0.25, 1.5])
colors = ["tab:red", "tab:blue", "tab:green", "tab:orange"]
for j, c in enumerate(colors):
    i0, j0 = divmod(j, 2)
    ax = fig.add_subplot(grid[i0, j0])
    draw_matrix(ax, x[0, 0], f"window {j}: output pixel ({i0},{j0})", cmap="YlGnBu", fmt="{:.0f}", vmin=-4)
    ax.add_patch(Rectangle((j0 - 0.5, i0 - 0.5), 3, 3, fill=False, lw=3, ec=c))
ax = fig.add_subplot(grid[:, 3])
draw_matrix(ax, cols[0], "patch matrix im2col(x)\n9 taps x 4 windows", cmap="YlGnBu", fmt="{:.0f}", vmin=-4)
for j, c in enumerate(colors):
    ax.add_patch(Rectangle((j - 0.45, -0.45), 0.9, 8.9, fill=False, lw=3, ec=c))
ax.set_xticks(range(4), [f"win {j}" for j in range(4)], fontsize=8)
ax.set_yticks(range(9), [f"tap ({u},{v})" for u in range(3) for v in range(3)], fontsize=8)
fig.suptitle("im2col: each 3x3 window of the 4x4 input becomes one column", fontsize=11, y=1.03)
lesson.save(fig, "patch_matrix")

# %%
lesson.step("Channels, stride, padding and dilation change which pixels a column holds, not the layout")
x = rng.standard_normal((2, 3, 7, 6))
print("row index of tap (c, u, v) = (c*kh + u)*kw + v; for C=3, k=3 the 27 rows are")
print("  c=0: rows 0..8, c=1: rows 9..17, c=2: rows 18..26")
for k, s, p, d in [(3, 1, 1, 1), (3, 2, 1, 1), (2, 2, 0, 1), (3, 1, 2, 2), (1, 1, 0, 1)]:
    ref = im2col_naive(x, k, s, p, d)
    for backend in kernels.BACKENDS:
        with kernels.use_backend(backend):
            got = unfold(x, k, s, p, d)
        lesson.check(np.array_equal(got, ref),
                     f"k={k} s={s} p={p} d={d}: {backend:5s} im2col {got.shape} == im2col_naive")
cols = unfold(x, 3, 1, 1)
lesson.check(cols[0, 0, 0] == 0.0, "tap (0, 0) of window (0, 0) lies on the zero padding: it reads 0")

# %%
lesson.step("Why bother: the whole convolution is then ONE matrix product")
w = rng.standard_normal((4, 3, 3, 3))  # 4 filters of shape (C=3, 3, 3)
cols = unfold(x, 3, 1, 1)  # (2, 27, 42)
y = (w.reshape(4, 27) @ cols).reshape(2, 4, 7, 6)  # (4, 27) @ (27, 42), once per image
print("weight (F, C, kh, kw) =", w.shape, "-> as a matrix", w.reshape(4, 27).shape)
print("(F, C*kh*kw) @ (C*kh*kw, Ho*Wo) =", (4, 27), "@", cols.shape[1:], "->", y.shape)
lesson.close(y, conv2d_naive(x, w, padding=1), "W @ im2col(x) equals the 7-loop convolution conv2d_naive")

# %%
lesson.step("The price: the patch matrix is about k^2 times bigger than the input")
x = rng.standard_normal((1, 8, 32, 32))
print(" k  stride  pad   input entries   patch entries   ratio")
for k, s in [(1, 1), (3, 1), (5, 1), (7, 1), (3, 2), (2, 2)]:
    p = (k - 1) // 2 if s == 1 else (1 if k == 3 else 0)
    cols = unfold(x, k, s, p)
    ratio = cols.size / x.size
    print(f"{k:2d}  {s:6d}  {p:3d}  {x.size:14d}  {cols.size:14d}  {ratio:6.2f}")
    lesson.check(np.isclose(ratio, k * k / s**2),
                 f"k={k}, stride {s}, 'same' padding: k^2/s^2 = {ratio:g} patch entries per input entry")
lesson.check(unfold(x, 2, 2).size == x.size, "k = s = 2: windows do not overlap, no blow-up at all")
# VGG's conv1_2 (64 -> 64 channels, 3x3, padding 1), in float32, measured on a 56x56 image (a quarter side):
x64 = rng.standard_normal((1, 64, 56, 56)).astype(np.float32)
cols64 = unfold(x64, 3, 1, 1)
print(f"64 channels, 56x56, float32: input {x64.nbytes / 2**20:.2f} MiB, patch matrix {cols64.nbytes / 2**20:.2f} MiB"
      f" ({cols64.dtype}); on a 224x224 image (16x the pixels): {16 * x64.nbytes / 2**20:.1f} MiB -> "
      f"{16 * cols64.nbytes / 2**20:.1f} MiB per image")
lesson.check(cols64.dtype == np.float32 and cols64.nbytes == 9 * x64.nbytes,
             "the engine's float32 patch matrix of a 3x3 'same' conv takes exactly 9x the input's bytes")

# %%
lesson.step("col2im is NOT the inverse of im2col: it sums overlapping windows")
x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
back = fold(unfold(x, 3), x.shape, 3)
count = fold(unfold(np.ones_like(x), 3), x.shape, 3)  # how many windows cover each pixel
print("x:\n", x[0, 0])
print("col2im(im2col(x)):\n", back[0, 0])
print("count = col2im(im2col(ones)):\n", count[0, 0])
lesson.check(not np.allclose(back, x), "col2im(im2col(x)) != x")
# Independent count: along one axis, pixel h is covered by the windows starting at i with i <= h < i + 3.
per_axis = np.array([sum(i <= h < i + 3 for i in range(2)) for h in range(4)])
lesson.check(np.array_equal(count[0, 0], np.outer(per_axis, per_axis)),
             f"count = outer({per_axis.tolist()}, {per_axis.tolist()}): windows covering each pixel")
lesson.close(back, x * count, "col2im(im2col(x)) == x * count: each pixel comes back once per window")
lesson.close(col2im_naive(unfold(x, 3), x.shape, 3), back, "the kernel agrees with col2im_naive")
x2 = rng.standard_normal((1, 2, 6, 6))
lesson.close(fold(unfold(x2, 2, 2), x2.shape, 2, 2), x2,
             "only when windows do not overlap (k = s = 2) does col2im undo im2col")

fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
for ax, a, t in zip(axes, [x[0, 0], back[0, 0], count[0, 0]],
                    ["x", "col2im(im2col(x)), k=3", "count: windows covering\neach pixel"]):
    im = draw_matrix(ax, a, t, fmt="{:.0f}", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8)
fig.suptitle("col2im sums overlaps: col2im(im2col(x)) = x * count, not x", fontsize=11)
lesson.save(fig, "not_the_inverse")

# %%
lesson.step("col2im is the ADJOINT of im2col: the dot-product test")
# im2col is linear, y = A x with A a 0/1 copy matrix; its adjoint A^T satisfies
# <A x, Y> = <x, A^T Y> for every x and Y. col2im must be that A^T.
for k, s, p, d in [(3, 1, 0, 1), (3, 2, 1, 1), (3, 1, 2, 2), (4, 3, 1, 1)]:
    x = rng.standard_normal((2, 3, 9, 8))
    Y = rng.standard_normal(unfold(x, k, s, p, d).shape)
    lhs = np.sum(unfold(x, k, s, p, d) * Y)
    rhs = np.sum(x * fold(Y, x.shape, k, s, p, d))
    print(f"k={k} s={s} p={p} d={d}:  <im2col(x), Y> = {lhs:+.12f}   <x, col2im(Y)> = {rhs:+.12f}")
    lesson.close(lhs, rhs, f"k={k} s={s} p={p} d={d}: <im2col(x), Y> == <x, col2im(Y)>", rtol=1e-12)
# Build A itself, one column per input pixel (im2col of a one-hot image), for the 4x4, k=3 case.
basis = np.eye(16).reshape(16, 1, 1, 4, 4)
A = np.stack([unfold(e, 3)[0].ravel() for e in basis], axis=1)  # (9*4, 16)
print("A has shape", A.shape, "(patch entries x input pixels); A^T A is diagonal with diagonal\n",
      np.diag(A.T @ A).reshape(4, 4))
lesson.check(set(np.unique(A)) == {0.0, 1.0} and np.all(A.sum(axis=1) == 1),
             "A is a 0/1 copy matrix: every patch entry copies exactly one pixel")
lesson.close(A.T @ A, np.diag(count.ravel()), "A^T A = diag(count): why col2im(im2col(x)) = x * count")
Y = rng.standard_normal((1, 9, 4))
lesson.close(fold(Y, (1, 1, 4, 4), 3).ravel(), A.T @ Y.ravel(), "col2im(Y) == A^T Y, the transpose")

fig, axes = plt.subplots(1, 2, figsize=(10, 5.2), gridspec_kw={"width_ratios": [1, 1.3]})
axes[0].imshow(A, cmap="Greys", aspect="auto", interpolation="nearest")
axes[0].set_title("im2col as a matrix A (36 x 16)\nblack = 1: patch entry copies that pixel", fontsize=10)
axes[0].set_xticks(range(0, 16, 3))
axes[0].set_xlabel("input pixel (row-major index in the 4x4 image)")
axes[0].set_ylabel("patch-matrix entry (tap, window)")
im = draw_matrix(axes[1], A.T @ A, "col2im(im2col( . )) as a matrix:\nA^T A = diag(count) (blank = 0)",
                 fmt=lambda v: f"{v:.0f}" if v else "", fontsize=9)
fig.colorbar(im, ax=axes[1], shrink=0.7)
lesson.save(fig, "adjoint_matrix")

# %%
lesson.step("Where col2im is used: the backward pass of a convolution")
x = rng.standard_normal((2, 3, 7, 6))
w = rng.standard_normal((4, 3, 3, 3))
y, cache = conv2d_forward(x, w, stride=2, padding=1)
dy = rng.standard_normal(y.shape)
dx, dw, _ = conv2d_backward(dy, cache)
dcols = w.reshape(4, 27).T @ dy.reshape(2, 4, -1)  # gradient w.r.t. the patch matrix
print("dY", dy.shape, "-> W^T dY", dcols.shape, "-> col2im ->", dx.shape)
lesson.close(dx, fold(dcols, x.shape, 3, 2, 1), "conv backward: dx = col2im(W^T dY), the adjoint of im2col")

# %%
lesson.done(summary=[
    "Column j of im2col is output pixel j's window; both kernels equal the plain loops for every stride, "
        "padding and dilation.",
    "W @ im2col(x) is the convolution.",
    "The patch matrix holds k^2/s^2 entries per input entry: 9x the bytes for a 3x3 'same' conv.",
    "col2im(im2col(x)) = x * count: col2im sums overlaps, it is not the inverse.",
    "col2im is the adjoint (transpose) of im2col, and a convolution's dx is col2im(W^T dY).",
], exercises=["im2col", "col2im"])

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

lesson = Lesson("05_transposed_convolution", "Transposed convolution: scatter, zero insertion, matrix transpose")
rng = np.random.default_rng(5)

# The study notes' worked example: a 2x2 input and a 2x2 kernel.
X = np.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 1, 2, 2)
K = np.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 1, 2, 2)  # ConvTranspose2d weight (C_in, C_out, kh, kw)

# %%
lesson.step("Way 1, the scatter: each input pixel stamps a scaled copy of the kernel")
stamps = []
for i in range(2):
    for j in range(2):
        canvas = np.zeros((3, 3))
        canvas[i : i + 2, j : j + 2] = X[0, 0, i, j] * K[0, 0]  # stride 1: the stamp moves 1 pixel per input pixel
        stamps.append(canvas)
        print(f"x[{i},{j}] = {X[0, 0, i, j]:.0f} stamps {X[0, 0, i, j]:.0f} * K at ({i},{j}):\n{canvas}")
Y = sum(stamps)
print("sum of the stamps:\n", Y)
lesson.check(np.array_equal(Y, conv_transpose2d_scatter(X, K)[0, 0]), "the sum equals naive.conv_transpose2d_scatter")
engine_Y = conv_transpose2d_forward(X, K)[0][0, 0]  # the engine's own transposed convolution
lesson.check(np.array_equal(engine_Y, [[0, 0, 1], [0, 4, 6], [4, 12, 9]]),
             "the engine's conv_transpose2d_forward gives the worked example's [[0,0,1],[0,4,6],[4,12,9]]")
centre = [int(stamp[1, 1]) for stamp in stamps]
print("the four stamps' centre cells:", centre)
lesson.check(engine_Y[1, 1] == sum(centre) == 4,
             "the engine's centre cell is the four stamps' centres added, 0+2+2+0 = 4, as in the study notes' figure")

fig, axes = plt.subplots(1, 5, figsize=(14, 3.2))
for ax, stamp, (i, j) in zip(axes, stamps, [(0, 0), (0, 1), (1, 0), (1, 1)]):
    draw_matrix(ax, stamp, f"x[{i},{j}]={X[0, 0, i, j]:.0f} times K\nplaced at ({i},{j})", fmt="{:.0f}",
                cmap="Purples", vmin=-2, vmax=14)
draw_matrix(axes[4], Y, "sum = transposed conv\ncentre: 0+2+2+0 = 4", fmt="{:.0f}", cmap="Purples", vmin=-2, vmax=14)
fig.suptitle("Scatter view: input [[0,1],[2,3]], kernel [[0,1],[2,3]], stride 1", fontsize=11, y=1.05)
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
lesson.check(all(added), "each frame adds exactly x[i,j] * K at output rows 2i..2i+2, columns 2j..2j+2")
lesson.close(partial[4], conv_transpose2d_scatter(X_a, K_a, stride=2)[0, 0], "the last frame is the whole scatter")

fig, axes, caption = animation_panels([2, 3, 3, 5], (9.6, 3.9))
draw_matrix(axes[0], X_a[0, 0], "input x", fmt="{:.0f}", cmap="Blues", vmin=-2, vmax=7)
draw_matrix(axes[1], K_a[0, 0], "kernel K", fmt="{:.0f}", cmap="Greens", vmin=-1, vmax=6)
stamp_im = draw_matrix(axes[2], np.full((3, 3), np.nan), "stamp x[i,j] * K", fmt="{:.0f}", cmap="Purples",
                       vmin=-2, vmax=partial[4].max() + 2)
out_im = draw_matrix(axes[3], np.full((5, 5), np.nan), "output 5x5, stride 2", fmt="{:.0f}", cmap="Purples",
                     vmin=-2, vmax=partial[4].max() + 2)
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
        caption.set_text("sum of the 4 stamps = conv_transpose2d_forward(x, K, stride=2)")
        return
    i, j = divmod(t, 2)
    touched = np.zeros((5, 5), bool)  # cells some stamp has reached so far: the others stay blank
    for u in range(t + done):
        touched[2 * (u // 2) : 2 * (u // 2) + 3, 2 * (u % 2) : 2 * (u % 2) + 3] = True
    set_matrix(stamp_im, X_a[0, 0, i, j] * K_a[0, 0])
    set_matrix(out_im, np.where(touched, partial[t + done], np.nan))
    place_box(in_box, i, j), place_box(footprint, 2 * i, 2 * j)
    caption.set_text(f"x[{i},{j}] = {X_a[0, 0, i, j]:.0f}: its stamp {X_a[0, 0, i, j]:.0f} * K "
                     + ("is added in; overlapping cells sum" if done else f"goes to rows {2 * i}-{2 * i + 2}, "
                        f"columns {2 * j}-{2 * j + 2} (stride 2)"))


lesson.save_animation(fig, scatter_frame, 9, "scatter_stride2", fps=1.5)

# %%
lesson.step("Way 2, zero insertion: z = s-1 zeros between pixels, pad p' = k-p-1, stride-1 conv, flipped kernel")


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
        print(f"  input {x.shape[2:]} -> zeros inserted {inserted.shape[2:]} -> padded {padded.shape[2:]}"
              f" -> conv {k}x{k} -> {y.shape[2:]};  (i-1)s + k - 2p = {(x.shape[2] - 1) * s + k - 2 * p}")
    return y, inserted, padded, flipped


y1, _, padded1, flipped1 = by_zero_insertion(X, K, s=1, p=0, verbose=True)
print("padded input:\n", padded1[0, 0], "\nflipped kernel:\n", flipped1[0, 0], "\noutput:\n", y1[0, 0])
lesson.check(np.array_equal(y1[0, 0], Y),
             "stride 1: z = 0, p' = 1, a plain conv with the flipped kernel gives the scatter's result")
# Why flipped: the stamp puts K[u, v] at offset (u, v) AFTER the input pixel; read from the
# output pixel's side, the input pixel sits at offset -(u, v): the kernel runs backwards.
lesson.check(not np.array_equal(conv2d_forward(padded1, K)[0][0, 0], Y), "without the flip the result is wrong")
print("Note: the study notes' figure adds up the centre 0+2+2+0 = 4 in this stride-1 case (z = 0); its step 3,\n"
      "one zero between rows and columns (2x2 -> 3x3), is the stride-2 case (z = 1), next:")
X_big = rng.standard_normal((1, 1, 2, 2))  # the notes' step 3: stride 2, one zero between rows and columns
y2, inserted2, padded2, flipped2 = by_zero_insertion(X_big, rng.standard_normal((1, 1, 3, 3)), s=2, p=1, verbose=True)
lesson.check(inserted2.shape[2:] == (3, 3), "stride 2: z = 1 zero between the pixels turns 2x2 into (2i-1) = 3x3")
lesson.check(y2.shape[2:] == (3, 3), "k=3, s=2, p=1 on a 2x2 input: output (2-1)*2 + 3 - 2 = 3")

Xs = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
Ks = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]).reshape(1, 1, 3, 3)
ys, ins, pad_s, flip_s = by_zero_insertion(Xs, Ks, s=2, p=0)
fig, axes = plt.subplots(1, 5, figsize=(15, 3.6), gridspec_kw={"width_ratios": [2, 3, 7, 3, 5]})
draw_matrix(axes[0], Xs[0, 0], "input 2x2", fmt="{:.0f}", cmap="Blues", vmin=-1, vmax=6)
draw_matrix(axes[1], ins[0, 0], "z = s-1 = 1 zero\ninserted: 3x3", fmt="{:.0f}", cmap="Blues", vmin=-1, vmax=6)
draw_matrix(axes[2], pad_s[0, 0], "padded by p' = k-p-1 = 2: 7x7", fmt="{:.0f}", cmap="Blues", vmin=-1, vmax=6)
draw_matrix(axes[3], flip_s[0, 0], "kernel 3x3, flipped\n(symmetric here)", fmt="{:.0f}", cmap="Greens", vmin=-1,
            vmax=6)
draw_matrix(axes[4], ys[0, 0], "stride-1 conv: 5x5\n(i-1)s+k-2p = 2+3-0 = 5", fmt="{:.0f}", cmap="Purples", vmin=-2,
            vmax=20)
fig.suptitle("Zero insertion: transposed conv with k=3, s=2, p=0 as an ordinary convolution", fontsize=11, y=1.06)
lesson.save(fig, "zero_insertion")
lesson.check(np.array_equal(ys, conv_transpose2d_scatter(Xs, Ks, stride=2)), "the pictured example equals the scatter")

# Animated: step 1's animated example (stride 2, a kernel that is not symmetric) as zero insertion.
# The flipped kernel slides over the zero-inserted, padded input; the same output appears.
y_a, inserted_a, padded_a, flipped_a = by_zero_insertion(X_a, K_a, s=2, p=0)
real_a = pad_or_crop(zero_insert(np.ones_like(X_a), 2), (2, 2), (2, 2))[0, 0] == 1  # the 4 true pixels
lesson.close(y_a[0, 0], partial[4], "zero insertion gives the scatter animation's last frame")
lesson.close(conv_transpose2d_forward(X_a, K_a, stride=2, method="zero_insert")[0], y_a,
             "and the engine's method='zero_insert' computes the same")
lesson.save_animation(*sliding_window_animation(
    padded_a[0, 0], flipped_a[0, 0], y_a[0, 0], real=real_a,
    titles=("1 zero inserted, padded by k-p-1 = 2", "K flipped", "output 5x5, stride 1"),
    final="the same 5x5 as the scatter: conv_transpose2d_forward(x, K, stride=2)"), "zero_insertion_sliding", fps=3)

# %%
lesson.step("Scatter == zero insertion == col2im, for every stride, padding, output padding, dilation")
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
                    raise AssertionError(f"output size wrong for i={i} k={k} s={s} p={p}")
                n_cases += 1
lesson.check(n_cases > 50, f"{n_cases} configurations: both engine methods equal the scatter, size (i-1)s + k - 2p")
x, w = rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((2, 3, 3, 2))
for kw in [dict(stride=2, padding=1, output_padding=1), dict(stride=(2, 3), padding=(0, 1), dilation=2)]:
    ref = conv_transpose2d_scatter(x, w, **kw)
    lesson.close(conv_transpose2d_forward(x, w, **kw, method="zero_insert")[0], ref,
                 f"zero_insert == scatter with {kw}")
    lesson.close(conv_transpose2d_forward(x, w, **kw, method="col2im")[0], ref, f"col2im == scatter with {kw}")
for method in ("col2im", "zero_insert"):
    layer = ConvTranspose2d(3, 2, 4, stride=2, padding=1, method=method, dtype=np.float64, seed=1)
    err = max(gradcheck.check_module(layer, rng.standard_normal((2, 3, 3, 4))).values())
    lesson.check(err < gradcheck.TOL_SMOOTH,
                 f"ConvTranspose2d(method={method!r}) passes the gradient check ({err:.0e})")

# %%
lesson.step("Way 3, the transpose: conv(x) = C x, transposed conv(y) = C^T y")
# The transposed conv 2x2 -> 3x3 with kernel K is the transpose of the conv 3x3 -> 2x2 with kernel K.
C = conv_matrix((3, 3), K[:, :1])  # conv weight (F=1, C=1, 2, 2): rows = 4 outputs, columns = 9 inputs
print("C, the 3x3 -> 2x2 convolution as a (4 x 9) matrix:\n", C)
x3 = rng.standard_normal((1, 1, 3, 3))
lesson.close(C @ x3.ravel(), conv2d_forward(x3, K)[0].ravel(), "C @ x equals conv2d_forward(x, K)")
yT = (C.T @ X.ravel()).reshape(3, 3)
print("C^T @ [0, 1, 2, 3] reshaped to 3x3:\n", yT)
lesson.check(np.array_equal(yT, Y), "C^T applied to the 2x2 input gives the scatter's [[0,0,1],[0,4,6],[4,12,9]]")
x, w = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((3, 2, 4, 4))
ref = conv_transpose2d_matrix(x, w, stride=2, padding=1)
lesson.close(conv_transpose2d_forward(x, w, stride=2, padding=1)[0], ref, "k=4 s=2 p=1 with channels: col2im == C^T")
# The engine's col2im method IS the backward pass of the convolution with the same weight:
# conv weight (F, C, k, k) = transposed-conv weight (C_in = F, C_out = C, k, k).
out_hw = (conv_transpose_output_size(4, 4, 2, 1), conv_transpose_output_size(5, 4, 2, 1))
_, conv_cache = conv2d_forward(rng.standard_normal((2, 2, *out_hw)), w, stride=2, padding=1)
dx, _, _ = conv2d_backward(x, conv_cache)
lesson.close(conv_transpose2d_forward(x, w, stride=2, padding=1)[0], dx,
             "transposed conv(x) == conv2d_backward(dy = x): the backward pass of a convolution")

fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [9, 4]})
draw_matrix(axes[0], C, "C (4 x 9): conv 3x3 -> 2x2 with K = [[0,1],[2,3]]", fmt=lambda v: f"{v:.0f}" if v else "",
            cmap="Greens", vmin=-1, vmax=4)
axes[0].set_xticks(range(9), [f"x{r}{c}" for r in range(3) for c in range(3)], fontsize=8)
axes[0].set_yticks(range(4), [f"y{r}{c}" for r in range(2) for c in range(2)], fontsize=8)
draw_matrix(axes[1], C.T, "C^T (9 x 4): the\ntransposed convolution", fmt=lambda v: f"{v:.0f}" if v else "",
            cmap="Greens", vmin=-1, vmax=4)
axes[1].set_yticks(range(9), [f"out{r}{c}" for r in range(3) for c in range(3)], fontsize=8)
axes[1].set_xticks(range(4), [f"in{r}{c}" for r in range(2) for c in range(2)], fontsize=8)
lesson.save(fig, "conv_matrix")

# %%
lesson.step("The dot-product test: <conv(x), y> == <conv_transpose(y), x>")
for k, s, p in [(4, 2, 1), (16, 8, 4), (3, 1, 1), (3, 2, 0)]:
    w = rng.standard_normal((3, 2, k, k))  # conv (2 -> 3 channels) and its transpose (3 -> 2)
    x = rng.standard_normal((2, 2, 2 * k + 3, 2 * k + 1))
    cx, _ = conv2d_forward(x, w, stride=s, padding=p)
    y = rng.standard_normal(cx.shape)
    op = tuple(n - conv_transpose_output_size(m, k, s, p) for n, m in zip(x.shape[2:], y.shape[2:]))
    ty, _ = conv_transpose2d_forward(y, w, stride=s, padding=p, output_padding=op)
    lhs, rhs = np.sum(cx * y), np.sum(ty * x)
    print(f"k={k:2d} s={s} p={p}: <conv(x), y> = {lhs:+.10f}  <conv_transpose(y), x> = {rhs:+.10f}")
    lesson.close(lhs, rhs, f"k={k} s={s} p={p}: the two inner products agree", rtol=1e-12)

# %%
lesson.step("'Deconvolution' is a misnomer: the transpose is not the inverse")
# Even when the convolution IS invertible (square C: 3x3 kernel, stride 1, 'same' padding),
# conv_transpose(conv(x)) = C^T C x is not x. The real deconvolution solves C x = y.
w = np.array([[[[0.1, 0.2, 0.0], [0.3, 1.0, 0.4], [0.0, 0.2, 0.1]]]])
x = rng.standard_normal((1, 1, 4, 4))
y, _ = conv2d_forward(x, w, padding=1)
back, _ = conv_transpose2d_forward(y, w, padding=1)
C = conv_matrix((4, 4), w, padding=1)
solved = np.linalg.solve(C, y.ravel()).reshape(x.shape)
print(f"C is {C.shape}, rank {np.linalg.matrix_rank(C)}; max |C^T C - I| = {np.abs(C.T @ C - np.eye(16)).max():.2f}")
print("x:\n", x[0, 0], "\nconv_transpose(conv(x)):\n", back[0, 0], "\nsolve(C, conv(x)):\n", solved[0, 0])
lesson.check(np.abs(back - x).max() > 0.1,
             f"conv_transpose(conv(x)) != x (max difference {np.abs(back - x).max():.2f})")
lesson.close(solved, x, "an actual deconvolution (solving C x = y) does recover x", rtol=1e-8, atol=1e-10)
lesson.close(back.ravel(), C.T @ C @ x.ravel(), "conv_transpose(conv(x)) = C^T C x")
# And FCN's stride-2 layers cannot be inverted at all: C maps 36 numbers to 9.
C2 = conv_matrix((6, 6), rng.standard_normal((1, 1, 4, 4)), stride=2, padding=1)
lesson.check(C2.shape == (9, 36) and np.linalg.matrix_rank(C2) == 9,
             "k=4 s=2 p=1 on 6x6: C is 9x36 of rank 9, 27 dimensions are lost; upsampling must LEARN them")

fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
vmax = np.abs(np.concatenate([x.ravel(), back.ravel()])).max()
for ax, a, t in zip(axes, [x, y, back, solved], ["x", "y = conv(x), 3x3, p=1", "conv_transpose(y)\n= C^T C x: not x",
                                                  "solve(C, y): the real\ninverse, = x"]):
    im = draw_matrix(ax, a[0, 0], t, fmt="{:.2f}", cmap="RdBu_r", vmin=-vmax, vmax=vmax, fontsize=8)
fig.colorbar(im, ax=axes, shrink=0.8)
fig.suptitle("The transpose is not the inverse ('deconvolution' is a misnomer)", fontsize=11, y=0.93)
lesson.save(fig, "not_the_inverse")

# %%
lesson.step("output_padding: a stride-2 conv maps two input sizes to one; output_padding picks which")
for H in (7, 8):
    print(f"conv k=3 s=2 p=1: {H}x{H} -> {conv_output_size(H, 3, 2, 1)}x{conv_output_size(H, 3, 2, 1)}")
lesson.check(conv_output_size(7, 3, 2, 1) == conv_output_size(8, 3, 2, 1) == 4, "7 and 8 both become 4")
w = rng.standard_normal((2, 3, 3, 3))
g = rng.standard_normal((1, 2, 4, 4))
for op, H in [(0, 7), (1, 8)]:
    t, _ = conv_transpose2d_forward(g, w, stride=2, padding=1, output_padding=op)
    x = rng.standard_normal((1, 3, H, H))
    cx, cache = conv2d_forward(x, w, stride=2, padding=1)
    print(f"output_padding={op}: 4x4 -> {t.shape[2]}x{t.shape[3]}  ((4-1)*2 - 2 + 3 + {op} = {6 - 2 + 3 + op})")
    lesson.check(t.shape[2:] == (H, H), f"output_padding={op} gives {H}x{H}")
    lesson.close(np.sum(cx * g), np.sum(t * x),
                 f"and is then the exact adjoint of the conv on {H}x{H} (dot-product test)", rtol=1e-12)
    lesson.close(t, conv2d_backward(g, cache)[0], f"= that conv's backward pass on {H}x{H}")
try:
    conv_transpose2d_forward(g, w, stride=2, padding=1, output_padding=2)
    rejected = False
except ValueError as err:
    print("output_padding=2 with stride 2:", err)
    rejected = True
lesson.check(rejected, "output_padding must be < max(stride, dilation): it only picks among sizes the conv merges")

# %%
lesson.step("The PyTorch FCN port's upsamplers use k = 2s, p = s/2: the output is exactly s times the input")
# Where the rule comes from: the FCN paper (arXiv:1411.4038, sections 3.3 and 4.2) upsamples by "backwards
# strided convolution" with k = 2s (upscore2 k4 s2, upscore8 k16 s8, upscore k64 s32), and its released Caffe
# nets run those deconvolutions WITHOUT padding, then cut the output with a Crop layer at an offset (lesson 08
# derives the offsets 19; 5, 27; 5, 9, 31 that its 100-pixel input padding makes necessary). The PyTorch port
# this engine mirrors (the study notes' FCN32s/16s/8s classes) folds the crop into the layer instead: p = s/2.
# In a transposed convolution, padding p just cuts p rows/columns off each side of the output:
print("layer             k   s   p    7x7 score map ->")
for name, k, s, p in [("upscore2", 4, 2, 1), ("upscore8", 16, 8, 4), ("upscore16", 32, 16, 8),
                      ("upscore32", 64, 32, 16)]:
    out = conv_transpose_output_size(7, k, s, p)
    print(f"{name:15s} {k:3d} {s:3d} {p:3d}    {out}")
    lesson.check(out == 7 * s == (7 - 1) * s + k - 2 * p, f"{name}: (7-1)*{s} + {k} - {2 * p} = {7 * s} = 7 * {s}")
x = rng.standard_normal((1, 2, 7, 7))
w = np.zeros((2, 2, 64, 64))
y, _ = conv_transpose2d_forward(x, w, stride=32, padding=16)
lesson.check(y.shape == (1, 2, 224, 224), "the port's FCN-32s upscore32 (k64 s32 p16) turns 7x7 into 224x224")
for k, s in [(4, 2), (16, 8), (64, 32)]:
    w = rng.standard_normal((2, 2, k, k))
    unpadded, _ = conv_transpose2d_forward(x, w, stride=s)  # the paper's Caffe deconvolution: p = 0
    padded, _ = conv_transpose2d_forward(x, w, stride=s, padding=s // 2)
    print(f"k={k:2d} s={s:2d}: unpadded 7x7 -> {unpadded.shape[2]}x{unpadded.shape[3]}, crop offset {s // 2} -> "
          f"{padded.shape[2]}x{padded.shape[3]}")
    lesson.close(unpadded[:, :, s // 2 : s // 2 + 7 * s, s // 2 : s // 2 + 7 * s], padded,
                 f"k={k} s={s}: the unpadded deconvolution cropped at offset s/2 = {s // 2} == padding p = s/2")

# %%
lesson.done(summary=[
    "Scatter, zero insertion (z = s-1, p' = k-p-1, flipped kernel) and col2im give the same transposed "
        "convolution for every stride, padding, output padding and dilation.",
    "A transposed convolution is C^T, the backward pass of the convolution, and passes the dot-product test.",
    "It is not the inverse: conv_transpose(conv(x)) = C^T C x, not x.",
    "output_padding picks which of the input sizes a strided conv merges comes back.",
    "k = 2s, p = s/2 gives exactly s times the input, the same as the paper's unpadded deconvolution cropped "
        "at s/2.",
], exercises=["conv_transpose_zero_insert"])

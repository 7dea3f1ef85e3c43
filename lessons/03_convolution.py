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

# %%
from _common import Lesson, draw_matrix, sliding_window_animation  # first: repo on sys.path, headless backend

import matplotlib.pyplot as plt
import numpy as np

from fcn_scratch import gradcheck, kernels
from fcn_scratch.functional import conv2d_backward, conv2d_forward, conv_output_size
from fcn_scratch.layers import Conv2d
from fcn_scratch.naive import conv2d_naive

lesson = Lesson("03_convolution", "Convolution through im2col + GEMM, and its gradient check")
rng = np.random.default_rng(3)

# %%
lesson.step("The output-size formula: H_out = floor((H + 2p - d(k-1) - 1) / s) + 1")
print("    H   k  s  p  d   H_out   why")
cases = [
    (224, 3, 1, 1, 1, "VGG's 3x3 conv, padding 1: size kept ('same')"),
    (224, 3, 2, 1, 1, "stride 2 halves the size"),
    (7, 7, 1, 0, 1, "fc6 as a 7x7 conv on a 7x7 map: one output"),
    (14, 7, 1, 0, 1, "the same conv on a 14x14 map: 14 - 7 + 1 = 8 positions"),
    (9, 3, 1, 2, 2, "3x3 at dilation 2, padding 2: size kept"),
    (10, 4, 3, 1, 1, "the floor drops a window that would stick out"),
]
for H, k, s, p, d, why in cases:
    Ho = conv_output_size(H, k, s, p, d)
    print(f"  {H:3d}  {k:2d} {s:2d} {p:2d} {d:2d}   {Ho:5d}   {why}")
    x_small = rng.standard_normal((1, 1, H, 5))  # only the height matters here
    y, _ = conv2d_forward(x_small, rng.standard_normal((1, 1, k, 1)), stride=(s, 1), padding=(p, 0),
                          dilation=(d, 1))
    lesson.check(y.shape[2] == Ho == (H + 2 * p - d * (k - 1) - 1) // s + 1,
                 f"H={H} k={k} s={s} p={p} d={d}: conv2d_forward gives H_out = {Ho}")

# %%
lesson.step("Forward = im2col, then one GEMM, then the bias")
x = rng.standard_normal((2, 3, 7, 6))  # (N, C, H, W)
w = rng.standard_normal((4, 3, 3, 3))  # (F, C, kh, kw)
b = rng.standard_normal(4)  # (F,)
s, p = 1, 1
Ho, Wo = conv_output_size(7, 3, s, p), conv_output_size(6, 3, s, p)
cols = kernels.im2col(x, 3, 3, s, s, p, p, 1, 1, Ho, Wo)  # (N, C*kh*kw, Ho*Wo)
y_hand = (w.reshape(4, -1) @ cols + b[:, None]).reshape(2, 4, Ho, Wo)
print(f"x {x.shape} --im2col--> cols {cols.shape};  W {w.reshape(4, -1).shape} @ cols -> {y_hand.shape}")
y, cache = conv2d_forward(x, w, b, stride=s, padding=p)
lesson.close(y_hand, y, "W @ im2col(x) + b is exactly what conv2d_forward computes")
lesson.close(y, conv2d_naive(x, w, b, stride=s, padding=p), "and matches the 7-loop conv2d_naive")

# %%
lesson.step("Stride and padding")
x1 = np.arange(25.0).reshape(1, 1, 5, 5)
w1 = np.ones((1, 1, 3, 3))  # a box filter: each output is the sum of its window
outs = {}
for s, p in [(1, 0), (1, 1), (2, 1)]:
    outs[s, p] = conv2d_forward(x1, w1, stride=s, padding=p)[0][0, 0]
    print(f"stride {s}, padding {p}: output {outs[s, p].shape}\n{outs[s, p]}")
lesson.close(outs[2, 1], outs[1, 1][::2, ::2], "stride 2 = stride 1, then keep every 2nd row and column")
padded = np.pad(x1, ((0, 0), (0, 0), (1, 1), (1, 1)))
lesson.close(outs[1, 1], conv2d_forward(padded, w1)[0][0, 0],
             "padding 1 = surround with a ring of zeros, then no padding")
lesson.check(outs[1, 1][0, 0] == x1[0, 0, :2, :2].sum(), "a corner output only sums the 4 real pixels it covers")

fig, axes = plt.subplots(1, 4, figsize=(13, 3.6), gridspec_kw={"width_ratios": [5, 3, 5, 3]})
draw_matrix(axes[0], x1[0, 0], "input 5x5 (kernel: 3x3 of ones)", fmt="{:.0f}", cmap="Blues", vmax=40)
for ax, (s, p) in zip(axes[1:], outs):
    Ho = conv_output_size(5, 3, s, p)
    draw_matrix(ax, outs[s, p], f"s={s}, p={p}: {Ho}x{Ho}\nfloor((5+{2 * p}-3)/{s})+1 = {Ho}", fmt="{:.0f}",
                cmap="Oranges", vmax=330)
fig.suptitle("Stride and padding set the output size: H_out = floor((H + 2p - k)/s) + 1", fontsize=11, y=1.1)
lesson.save(fig, "stride_padding")

# Animated, in the style of Dumoulin & Visin's convolution arithmetic guide: a 3x3 kernel with
# distinct weights slides over the same input, padding 1, stride 2. Each frame writes the engine's
# output cell; first, every window (a column of im2col) dotted with K must give that cell.
K_demo = np.array([[0.0, 1.0, 2.0], [2.0, 2.0, 0.0], [0.0, 1.0, 2.0]]).reshape(1, 1, 3, 3)
y_demo, _ = conv2d_forward(x1, K_demo, stride=2, padding=1)
windows = kernels.im2col(x1, 3, 3, 2, 2, 1, 1, 1, 1, 3, 3)[0]  # (9 taps, 9 windows): window t is frame t
lesson.close(K_demo.ravel() @ windows, y_demo.ravel(), "each animation frame: window . K = the engine's output cell")
lesson.save_animation(*sliding_window_animation(
    padded[0, 0], K_demo[0, 0], y_demo[0, 0], stride=2, real=np.pad(np.ones((5, 5), bool), 1),
    titles=("input 5x5 + padding 1 (white)", "kernel K", "output 3x3, stride 2"),
    final="all 9 cells = conv2d_forward(x, K, stride=2, padding=1)"), "conv_sliding")

# %%
lesson.step("Dilation (atrous): the filter [1, 2, 3] at rate 4 is [1, 0, 0, 0, 2, 0, 0, 0, 3]")
f = np.array([1.0, 2.0, 3.0]).reshape(1, 1, 1, 3)  # a 1x3 filter
rate = 4
dilated = np.zeros((1, 1, 1, rate * (3 - 1) + 1))
dilated[..., ::rate] = f  # rate-1 zeros ("holes", French: trous) between the taps
print("filter         ", f[0, 0, 0])
print(f"dilated, rate {rate}", dilated[0, 0, 0])
# What the engine's conv does with dilation 4, read tap by tap: on a width-9 input the 1x3 filter fits once,
# so the output is sum_u f[u] x[4u]; a one-hot input e_i returns the weight the engine puts on pixel i.
seen = [conv2d_forward(np.eye(9)[i].reshape(1, 1, 1, 9), f, dilation=(1, rate))[0].item() for i in range(9)]
print("the engine's weights on a 9-pixel window, one-hot probes:", seen)
lesson.check(np.array_equal(seen, [1, 0, 0, 0, 2, 0, 0, 0, 3]),
             "conv2d_forward at dilation 4 weighs the 9 pixels by [1, 0, 0, 0, 2, 0, 0, 0, 3] "
             "(the study notes' example)")
x = rng.standard_normal((1, 1, 3, 20))
y_atrous, _ = conv2d_forward(x, f, dilation=(1, rate))
y_explicit, _ = conv2d_forward(x, dilated)
print("output widths:", y_atrous.shape[-1], "(dilation=4) and", y_explicit.shape[-1], "(explicit 1x9 filter)")
lesson.close(y_atrous, y_explicit, "conv with dilation 4 == conv with the explicit dilated 1x9 filter")
lesson.check(y_atrous.shape[-1] == conv_output_size(20, 3, 1, 0, 4) == 20 - 9 + 1,
             "the formula's d(k-1)+1 = 9 is the span of the dilated kernel")
w3 = rng.standard_normal((2, 1, 3, 3))
w5 = np.zeros((2, 1, 5, 5))
w5[:, :, ::2, ::2] = w3
x = rng.standard_normal((1, 1, 9, 9))
lesson.close(conv2d_forward(x, w3, padding=2, dilation=2)[0], conv2d_forward(x, w5, padding=2)[0],
             "2-D: a 3x3 kernel at rate 2 sees a 5x5 field with 9 weights (no new parameters)")

fig, axes = plt.subplots(3, 1, figsize=(8, 4.2), gridspec_kw={"height_ratios": [1, 1, 2.2]})
draw_matrix(axes[0], f[0, 0], "1x3 filter [1, 2, 3]: 3 weights, span 3", fmt="{:.0f}", cmap="Greens", vmin=-1, vmax=4)
axes[0].set_xlim(-0.5, 8.5)
draw_matrix(axes[1], dilated[0, 0], "the same 3 weights at rate 4: rate-1 = 3 holes between taps, span d(k-1)+1 = 9",
            fmt="{:.0f}", cmap="Greens", vmin=-1, vmax=4)
foot = np.zeros((5, 5))
foot[::2, ::2] = 1
draw_matrix(axes[2], foot, "3x3 kernel at rate 2: 9 taps (1) spread over a 5x5 field",
            fmt="{:.0f}", cmap="Greens", vmin=-0.3, vmax=1.3)
fig.tight_layout()
lesson.save(fig, "dilation")

# Animated: a 3x3 kernel at rate 2 slides over a 7x7 input; its 9 taps skip a pixel in each direction.
x_d = np.random.default_rng(30).integers(0, 4, (1, 1, 7, 7)).astype(float)  # own generator: rng's stream unchanged
w_d = np.array([[1.0, 0.0, 2.0], [2.0, 1.0, 0.0], [0.0, 1.0, 1.0]]).reshape(1, 1, 3, 3)
y_d, _ = conv2d_forward(x_d, w_d, dilation=2)
windows = kernels.im2col(x_d, 3, 3, 1, 1, 0, 0, 2, 2, 3, 3)[0]  # taps 2 apart: (9 taps, 9 windows)
lesson.close(w_d.ravel() @ windows, y_d.ravel(),
             "each animation frame: the 9 dilated taps . w = the engine's output cell")
lesson.save_animation(*sliding_window_animation(
    x_d[0, 0], w_d[0, 0], y_d[0, 0], dilation=2,
    titles=("input 7x7 (taps shaded)", "kernel w, dilation 2", "output 3x3"),
    final="all 9 cells = conv2d_forward(x, w, dilation=2): a 5x5 field, 9 weights"), "dilation_sliding")

# %%
lesson.step("Backward: dW = sum_n dY_n cols_n^T,  db = sum of dY,  dx = col2im(W^T dY)")
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
lesson.close(dw, dw_hand, "dW = sum_n dY_n @ cols_n^T")
lesson.close(db, db_hand, "db = sum of dY over batch and pixels")
lesson.close(dx, dx_hand, "dx = col2im(W^T @ dY): the adjoint of im2col sums the overlaps")
# With stride 1 the same dx is also a 'full' convolution of dY: kernel flipped in space, in/out
# channels swapped, padding k-1-p. That is lesson 05's zero insertion with z = s-1 = 0.
y1, cache1 = conv2d_forward(x, w, b, stride=1, padding=1)
dy1 = rng.standard_normal(y1.shape)
flipped = np.ascontiguousarray(np.flip(w, axis=(2, 3)).transpose(1, 0, 2, 3))  # (C, F, kh, kw)
dx_full, _ = conv2d_forward(dy1, flipped, padding=3 - 1 - 1)
dx_col2im = kernels.col2im(w.reshape(F, -1).T @ dy1.reshape(N, F, -1), N, 3, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 7, 6)
lesson.close(dx_full, dx_col2im, "stride 1: the full convolution with the flipped kernel == col2im(W^T dY)")
lesson.close(conv2d_backward(dy1, cache1)[0], dx_full, "and both equal the engine's dx")

# %%
lesson.step("Gradient check: central finite differences against a RANDOM upstream gradient")
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
print(f"one entry by hand: numeric {numeric:.10f}  analytic {analytic:.10f}")
lesson.close(numeric, analytic, "one entry of dx: numeric and analytic agree to 7 digits", rtol=1e-7, atol=0)
# The engine does this for every entry of the input and of every parameter:
layer = Conv2d(3, 4, 3, stride=2, padding=1, dilation=2, dtype=np.float64, seed=0)
errors = gradcheck.check_module(layer, rng.standard_normal((2, 3, 9, 8)))
print("gradcheck.check_module(Conv2d(3, 4, 3, stride=2, padding=1, dilation=2)):")
for name, err in errors.items():
    print(f"    {name:6s} rel error {err:.1e}")
lesson.check(max(errors.values()) < gradcheck.TOL_SMOOTH,
             f"x, weight and bias all below TOL_SMOOTH = {gradcheck.TOL_SMOOTH:g} (float64, h = 1e-6)")

# %%
lesson.step("Why never all-ones: an upstream gradient of ones hides permutation bugs")
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
inputs = {"x": x, "weight": w, "bias": b}
table = {}
for g_name, g in [("all-ones", np.ones(y.shape)), ("random", rng.standard_normal(y.shape))]:
    def loss(g=g):
        return float(np.sum(conv2d_forward(x, w, b, stride=2, padding=1)[0] * g))
    numeric = {k: gradcheck.numerical_gradient(loss, v) for k, v in inputs.items()}
    for bug, backward in backwards.items():
        analytic = dict(zip(inputs, backward(g)))
        table[bug, g_name] = max(gradcheck.rel_error(analytic[k], numeric[k]) for k in inputs)
print(f"{'backward':18s} {'all-ones g':>12s} {'random g':>12s}")
for bug in backwards:
    print(f"{bug:18s} {table[bug, 'all-ones']:12.1e} {table[bug, 'random']:12.1e}")
tol = gradcheck.TOL_SMOOTH
lesson.check(table["correct", "all-ones"] < tol and table["correct", "random"] < tol,
             "the correct backward passes both")
for bug in ["H/W swapped", "filters reversed"]:
    lesson.check(table[bug, "all-ones"] < tol, f"'{bug}' PASSES the all-ones check ({table[bug, 'all-ones']:.0e})")
    lesson.check(table[bug, "random"] > 1e-2, f"'{bug}' FAILS the random check ({table[bug, 'random']:.0e})")

fig, ax = plt.subplots(figsize=(7.5, 3.8))
xs = np.arange(len(backwards))
for k, (g_name, color) in enumerate([("all-ones", "tab:gray"), ("random", "tab:blue")]):
    vals = [table[bug, g_name] for bug in backwards]
    bars = ax.bar(xs + (k - 0.5) * 0.38, vals, 0.38, color=color, label=f"upstream gradient: {g_name}")
    ax.bar_label(bars, labels=[f"{v:.0e}" for v in vals], fontsize=8)
ax.axhline(tol, color="tab:red", ls="--", lw=1)
ax.text(-0.45, tol * 2, f"tolerance TOL_SMOOTH = {tol:g}", color="tab:red", ha="left", fontsize=8)
ax.set_yscale("log")
ax.set_ylim(1e-13, 10)
ax.set_xticks(xs, list(backwards))
ax.set_ylabel("max relative error vs finite differences")
ax.set_title("A gradient check with all-ones dY passes two buggy backward passes")
ax.legend(loc="upper left", fontsize=8)
lesson.save(fig, "gradcheck_ones_vs_random")

# %%
lesson.done(summary=[
    "The engine's output sizes follow floor((H + 2p - d(k-1) - 1)/s) + 1.",
    "Forward = im2col, one GEMM, plus the bias, equal to the 7-loop convolution.",
    "Stride 2 is stride 1 subsampled, padding is a ring of zeros, and dilation 4 weighs pixels 0, 4, 8 by [1,"
        " 2, 3].",
    "The hand-derived dW, db and dx equal the engine's backward and pass finite differences.",
    "An all-ones upstream gradient lets two buggy backward passes through; a random one catches both.",
], exercises=["conv2d_forward", "conv2d_backward"])

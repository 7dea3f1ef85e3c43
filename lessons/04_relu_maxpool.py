# %% [markdown]
# # Lesson 04: ReLU and max-pooling
#
# Two layers without parameters, whose gradients are *routings*: ReLU lets
# the gradient through where the input was positive, max-pooling sends it to
# the pixel that won each window. This lesson shows
#
# 1. ReLU, its gradient, and why a finite-difference check must keep inputs
#    away from the kink at 0,
# 2. max-pooling forward with the winners' indices,
# 3. **ceil mode**, and why the PyTorch FCN port uses `MaxPool2d(2, stride=2, ceil_mode=True)`:
#    odd sizes keep their last row/column, and any input size survives five pools,
# 4. **-inf padding** (a zero pad would beat negative activations),
# 5. routing the gradient to the **argmax**, and what happens at **ties**.
#
# Sources: the PyTorch FCN port this engine mirrors (the study notes' FCN32s/16s/8s classes:
# `nn.ReLU`, `nn.MaxPool2d(2, stride=2, ceil_mode=True)`) and, behind it, the original Caffe
# FCN, whose pooling layer rounds its output size up; PyTorch's `MaxPool2d` documentation
# (ceil mode, implicit -inf padding); Dumoulin & Visin (arXiv:1603.07285) chapter 3 (pooling
# arithmetic); the pooling "switches" max-unpooling reuses: Zeiler & Fergus (arXiv:1311.2901).
# Run: `python lessons/04_relu_maxpool.py [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import Lesson, draw_matrix  # first: puts the repo on sys.path, picks a headless backend

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from fcn_scratch import gradcheck, kernels
from fcn_scratch.functional import (maxpool2d_backward, maxpool2d_forward, pool_output_size, relu_backward,
                                    relu_forward)
from fcn_scratch.layers import MaxPool2d, ReLU
from fcn_scratch.naive import maxpool2d_naive, relu_naive

lesson = Lesson("04_relu_maxpool", "ReLU and max-pooling: ceil mode, -inf padding, argmax routing, ties")
rng = np.random.default_rng(4)

# %%
lesson.step("ReLU: y = max(x, 0), dx = dy * [x > 0]")
x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
y, mask = relu_forward(x)
dy = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
dx = relu_backward(dy, mask)
print("x        ", x, "\ny        ", y, "\ndy       ", dy, "\ndx       ", dx)
lesson.check(np.array_equal(y, relu_naive(x)), "forward matches relu_naive")
lesson.check(np.array_equal(dx, [0, 0, 0, 40, 50]), "the gradient passes where x > 0 only (0 at x = 0, as PyTorch)")
errors = gradcheck.check_module(ReLU(), gradcheck.away_from_kinks((2, 3, 5, 7), rng))
print(f"gradcheck of ReLU on inputs with |x| >= 0.1: rel error {errors['x']:.1e}")
lesson.check(errors["x"] < gradcheck.TOL_KINK, f"ReLU passes the gradient check (< TOL_KINK = {gradcheck.TOL_KINK:g})")

# %%
lesson.step("Why the check keeps inputs away from the kink at 0")
h = 1e-6
print("   x        numeric (f(x+h)-f(x-h))/2h   analytic")
for x0, expected in [(0.0, 0.5), (3e-7, 0.65), (0.1, 1.0)]:
    f_plus, f_minus = relu_forward(np.array([x0 + h]))[0][0], relu_forward(np.array([x0 - h]))[0][0]
    numeric = (f_plus - f_minus) / (2 * h)  # central difference of the engine's own ReLU
    analytic = relu_backward(np.ones(1), relu_forward(np.array([x0]))[1])[0]
    print(f"  {x0:<8g} {numeric:27.4f}   {analytic:8.1f}")
    lesson.check(np.isclose(numeric, expected) and analytic == (1.0 if x0 > 0 else 0.0),
                 f"x = {x0:g}: the engine's central difference gives {expected}, its backward {float(x0 > 0):g}")
print("within h of 0 the difference straddles the kink and matches neither slope, so checks avoid it:")
lesson.check(np.abs(gradcheck.away_from_kinks((1000,), rng)).min() >= 0.1 > h,
             "gradcheck.away_from_kinks draws |x| >= 0.1, far more than h = 1e-6 from the kink")

# %%
lesson.step("Max-pooling 2x2, stride 2: the max of each window, and where it was")
x = gradcheck.distinct_values((1, 1, 4, 4), rng, spacing=1.0)
y, cache = maxpool2d_forward(x, 2, 2)
indices = cache[1]
print("x:\n", x[0, 0], "\ny = maxpool(x):\n", y[0, 0])
print("indices (flat h*W + w of each winner):\n", indices[0, 0])
lesson.check(np.array_equal(x[0, 0].ravel()[indices[0, 0]], y[0, 0]),
             "x.flat[indices] == y: indices point at the maxima")
for backend in kernels.BACKENDS:
    with kernels.use_backend(backend):
        yb, (_, ib) = maxpool2d_forward(x, 2, 2)
    yn, inn = maxpool2d_naive(x, 2, 2)
    lesson.check(np.array_equal(yb, yn) and np.array_equal(ib, inn),
                 f"{backend} kernel == maxpool2d_naive (values and indices)")

# %%
lesson.step("Ceil mode: an odd size keeps its last row and column")
x = rng.standard_normal((1, 1, 7, 7))
y_floor, c_floor = maxpool2d_forward(x, 2, 2, ceil_mode=False)
y_ceil, c_ceil = maxpool2d_forward(x, 2, 2, ceil_mode=True)
print(f"7x7 input, 2x2 windows, stride 2: floor mode -> {y_floor.shape[2:]}, ceil mode -> {y_ceil.shape[2:]}")
lesson.check(y_floor.shape[2:] == (3, 3) and y_ceil.shape[2:] == (4, 4), "floor((7-2)/2)+1 = 3, ceil((7-2)/2)+1 = 4")
dx_floor = maxpool2d_backward(np.ones(y_floor.shape), c_floor)
dx_ceil = maxpool2d_backward(np.ones(y_ceil.shape), c_ceil)
lesson.check(not dx_floor[0, 0, 6, :].any() and not dx_floor[0, 0, :, 6].any(),
             "floor mode: row 6 and column 6 get no gradient, they never reach the output")
lesson.check(y_ceil[0, 0, 3, 3] == x[0, 0, 6, 6], "ceil mode: the last window is the lone pixel (6, 6)")
lesson.check(dx_ceil.sum() == y_ceil.size and dx_ceil[0, 0, 6].sum() > 0,
             "ceil mode: every window, the partial ones too, routes its gradient")
# The one exception: a window that would START in the right padding is dropped.
print("pool_output_size(5, k=2, s=2, p=1, ceil): ceil((5+2-2)/2)+1 = 4, but window 4 would start at 6 >= 5+1,"
      " in the padding ->", pool_output_size(5, 2, 2, 1, ceil_mode=True))
naive_rows = maxpool2d_naive(np.zeros((1, 1, 5, 5)), 2, 2, 1, ceil_mode=True)[0].shape[2]
lesson.check(pool_output_size(5, 2, 2, 1, ceil_mode=True) == 3 == naive_rows,
             "a last window starting inside the right padding is dropped (PyTorch's rule)")

# %%
lesson.step("Why FCN pools in ceil mode: every size survives five pools")
print("   H   after pool1..pool5 (floor)   after pool1..pool5 (ceil)   ceil(H/32)")
for H in [224, 100, 37, 20]:
    sizes = {}
    for ceil in (False, True):
        size, chain = H, []
        for _ in range(5):
            size = pool_output_size(size, 2, 2, ceil_mode=ceil)
            chain.append(size)
        sizes[ceil] = chain
    print(f"  {H:3d}   {str(sizes[False]):28s} {str(sizes[True]):27s} {-(-H // 32):4d}")
    lesson.check(sizes[True][-1] == -(-H // 32),
                 f"H={H}: ceil mode gives ceil(H/32) = {-(-H // 32)} at pool5, covering every pixel")
try:
    x = rng.standard_normal((1, 1, 20, 20))
    for _ in range(5):
        x, _ = maxpool2d_forward(x, 2, 2, ceil_mode=False)
    failed = False
except ValueError as err:
    print("floor mode on a 20x20 input, at pool5:", err)
    failed = True
lesson.check(failed, "in floor mode a 20x20 input dies at pool5 (1x1 cannot hold a 2x2 window); ceil mode gives 1x1")

fig, axes = plt.subplots(1, 2, figsize=(10, 5))
x7 = np.arange(49.0).reshape(7, 7)
for ax, ceil in zip(axes, (False, True)):
    n = pool_output_size(7, 2, 2, ceil_mode=ceil)
    draw_matrix(ax, x7, "", fmt="{:.0f}", cmap="Greys", vmin=-60, vmax=60)
    for i in range(n):
        for j in range(n):
            partial = 2 * i + 2 > 7 or 2 * j + 2 > 7  # a ceil-mode window hanging over the edge
            ax.add_patch(Rectangle((2 * j - 0.45, 2 * i - 0.45), min(2, 7 - 2 * j) - 0.1, min(2, 7 - 2 * i) - 0.1,
                                   fill=False, lw=2.5, ec="tab:orange" if partial else "tab:blue"))
    if not ceil:
        ax.add_patch(Rectangle((-0.5, 5.5), 7, 1, color="tab:red", alpha=0.35))
        ax.add_patch(Rectangle((5.5, -0.5), 1, 6, color="tab:red", alpha=0.35))
    note = "orange: partial windows keep the edge" if ceil else "red: never pooled, lost"
    ax.set_title(f"{'ceil' if ceil else 'floor'} mode: {n}x{n} windows\n{note}", fontsize=10)
fig.suptitle("MaxPool2d(2, stride=2) on a 7x7 input", fontsize=11)
lesson.save(fig, "ceil_mode")

# %%
lesson.step("Padding is -inf, not 0: a zero pad would beat negative activations")
x = -np.arange(1.0, 17.0).reshape(1, 1, 4, 4)  # every value negative
y_inf, _ = maxpool2d_forward(x, 3, 2, padding=1)  # the engine pads with -inf
x_zero_padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))  # what a zero pad would do
y_zero, _ = maxpool2d_forward(x_zero_padded, 3, 2)
print("x (all negative):\n", x[0, 0])
print("engine, padding 1 (-inf):\n", y_inf[0, 0], "\nif the pad were zeros:\n", y_zero[0, 0])
lesson.check(np.isin(y_inf, x).all(), "-inf padding: every output is a real input value")
lesson.check((y_zero == 0).sum() == 3, "zero padding: 3 of 4 windows report 0, a value the input never had")
lesson.check(np.array_equal(y_inf, maxpool2d_naive(x, 3, 2, 1)[0]), "the engine agrees with maxpool2d_naive")

fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), gridspec_kw={"width_ratios": [4, 2, 2]})
draw_matrix(axes[0], x[0, 0], "x: all negative", fmt="{:.0f}", cmap="Blues_r", vmin=-17, vmax=1)
draw_matrix(axes[1], y_inf[0, 0], "3x3 pool, s=2, p=1\n-inf padding (engine)", fmt="{:.0f}", cmap="Blues_r", vmin=-17,
            vmax=1)
draw_matrix(axes[2], y_zero[0, 0], "the same with a\nzero pad: wrong 0s", fmt="{:.0f}", cmap="Blues_r", vmin=-17,
            vmax=1)
lesson.save(fig, "padding")

# %%
lesson.step("Backward: each window's gradient goes to its winner; a pixel that wins twice gets the sum")
x = gradcheck.distinct_values((1, 1, 7, 7), rng, spacing=0.1)
x[0, 0, 3, 3] = 10.0  # in the overlap of four 3x3 windows (stride 2): it wins all four
y, cache = maxpool2d_forward(x, 3, 2, padding=1)
dy = np.arange(1.0, y.size + 1).reshape(y.shape)  # easy to trace: window k sends k
dx = maxpool2d_backward(dy, cache)
print("dy (4x4):\n", dy[0, 0], "\ndx (7x7):\n", dx[0, 0])
expected = np.zeros(49)
np.add.at(expected, maxpool2d_naive(x, 3, 2, 1)[1].ravel(), dy.ravel())  # scatter-add at the naive winners
lesson.close(dx.ravel(), expected, "dx = scatter-add of dy at the winners' indices")
lesson.check(dx[0, 0, 3, 3] == dy[0, 0, 1:3, 1:3].sum() == 6 + 7 + 10 + 11,
             "pixel (3, 3) won 4 windows: 6+7+10+11 = 34")
lesson.check(np.isclose(dx.sum(), dy.sum()) and (dx != 0).sum() <= y.size, "nothing is lost, only winners are non-zero")
errors = gradcheck.check_module(MaxPool2d(3, 2, 1, ceil_mode=True), gradcheck.distinct_values((2, 3, 8, 9), rng))
print(f"gradcheck of MaxPool2d(3, 2, 1, ceil_mode=True) on tie-free inputs: rel error {errors['x']:.1e}")
lesson.check(errors["x"] < gradcheck.TOL_KINK, "max-pool passes the gradient check")

fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), gridspec_kw={"width_ratios": [7, 4, 7]})
draw_matrix(axes[0], x[0, 0], "x (winners outlined)", fmt="{:.1f}", cmap="Greys", vmin=-4, vmax=12, fontsize=8)
for idx in np.unique(cache[1]):
    axes[0].add_patch(Rectangle((idx % 7 - 0.5, idx // 7 - 0.5), 1, 1, fill=False, lw=2.5, ec="tab:red"))
draw_matrix(axes[1], dy[0, 0], "dy (one per window)", fmt="{:.0f}", cmap="Oranges")
draw_matrix(axes[2], dx[0, 0], "dx = dy routed to the winners\n(3,3) won 4 windows: 6+7+10+11",
            fmt=lambda v: f"{v:.0f}" if v else "", cmap="Oranges", fontsize=8)
fig.suptitle("MaxPool2d(3, stride=2, padding=1): the gradient follows the argmax", fontsize=11, y=1.06)
lesson.save(fig, "argmax_routing")

# %%
lesson.step("Ties: the first maximum wins (row-major), and finite differences break down")
x = np.array([[[[5.0, 5.0], [5.0, 5.0]]]])  # one window, four equal values
y, cache = maxpool2d_forward(x, 2)
dx = maxpool2d_backward(np.ones(y.shape), cache)
print("x:\n", x[0, 0], "\nwinner index:", cache[1].ravel()[0], "\nanalytic dx:\n", dx[0, 0])
lesson.check(cache[1].ravel()[0] == 0 and np.array_equal(dx[0, 0], [[1, 0], [0, 0]]),
             "the first maximum (row-major) takes the whole gradient; it is not split")
numeric = gradcheck.numerical_gradient(lambda: float(maxpool2d_forward(x, 2)[0].sum()), x)
print("numeric dx (central differences):\n", numeric[0, 0])
lesson.close(numeric, np.full_like(x, 0.5), "at a tie every entry gets 0.5 (+h wins, -h loses): no single slope exists",
             rtol=1e-6)
x = gradcheck.distinct_values((2, 3, 8, 9), rng)
lesson.check(np.unique(x).size == x.size and np.diff(np.sort(x.ravel())).min() > 2 * h,
             "so gradient checks draw tie-free inputs: gradcheck.distinct_values, all >> h apart")

# %%
lesson.done(summary=[
    "ReLU passes the gradient where x > 0; within h of the kink finite differences match neither slope.",
    "Max-pool indices point at the window maxima; both kernels equal the plain loops.",
    "Ceil mode keeps odd edges and leaves ceil(H/32) after five pools; floor mode drops rows or fails.",
    "Padding is -inf: every pooled value is a real input value.",
    "The gradient goes to each window's winner (summed over repeat wins); at a tie the first maximum takes it"
        " all.",
], exercises=["relu", "maxpool_forward", "maxpool_backward"])

# %% [markdown]
# # Lesson 06: upsampling -- nearest, bilinear, bed of nails, max-unpooling, and the checkerboard
#
# FCN's score map is 32 times smaller than the image; upsampling brings it
# back. The study notes list four fixed ways to enlarge a map, and FCN's own,
# learnable one (the transposed convolution of lesson 05) starts as one of them.
# This lesson runs each from `fcn_scratch.upsample`:
#
# 1. **nearest** neighbour: copy each pixel into an s x s block,
# 2. the **bilinear kernel** (`fcn_scratch.init.bilinear_kernel`): `f = ceil(k/2)`,
#    `c = f - 1` (k odd) or `f - 1/2` (k even), `w[i, j] = (1 - |i-c|/f)(1 - |j-c|/f)`;
#    for k = 4 the taps are 1/4, 3/4, 3/4, 1/4,
# 3. **bilinear** upsampling, which *is* a transposed convolution carrying that
#    kernel -- how FCN initialises its `upscore` layers,
# 4. **bed of nails**: each pixel at the corner of its block, zeros elsewhere,
# 5. **max-unpooling**: each pixel back where max-pooling found its maximum,
#    using the indices of `MaxPool2d(return_indices=True)`,
# 6. that every one of them is linear and its backward pass is its transpose,
# 7. the **checkerboard** artifact of a transposed convolution whose kernel is
#    not a multiple of its stride (k = 3, s = 2: uneven overlap), and why k = 2s
#    avoids it (constant in, constant interior out).
# 8. **shift and stitch**, the FCN paper's other route from a coarse map to a dense one.
#
# Sources: Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts" (Distill,
# 2016, doi:10.23915/distill.00003): uneven overlap when the kernel size is not divisible by
# the stride; the FCN paper (Long, Shelhamer & Darrell, arXiv:1411.4038), section 3.3
# (upsampling as backwards convolution, initialised to bilinear interpolation) and section
# 3.2 (shift-and-stitch); max-unpooling with the pooling switches: Zeiler & Fergus
# (arXiv:1311.2901), SegNet (Badrinarayanan et al., arXiv:1511.00561); the study notes' list
# of upsampling methods (nearest neighbour, bilinear, bed of nails, max-unpooling).
# Run: `python lessons/06_upsampling.py [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import (Lesson, animation_panels, cell_box, cell_lines, draw_matrix, place_box,  # first: repo on path
                     set_matrix)

import math

import matplotlib.pyplot as plt
import numpy as np

from fcn_scratch.functional import conv2d_forward, conv_transpose2d_forward
from fcn_scratch.init import bilinear_kernel, bilinear_taps, bilinear_weight
from fcn_scratch.layers import ConvTranspose2d, MaxPool2d
from fcn_scratch.models import FCN8s
from fcn_scratch.upsample import BedOfNails, BilinearUpsample, MaxUnpool2d, NearestUpsample, bilinear_geometry

lesson = Lesson("06_upsampling", "Upsampling: nearest, bilinear, bed of nails, max-unpooling, checkerboard")
rng = np.random.default_rng(6)

x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # the small map every method enlarges x2 below
results = {}

# %%
lesson.step("Nearest neighbour: y[i, j] = x[i // s, j // s], each pixel copied into an s x s block")
nearest = NearestUpsample(2)
results["nearest"] = y = nearest.forward(x)
print("x:\n", x[0, 0], f"\nNearestUpsample(2): {x.shape} -> {y.shape}\n", y[0, 0])
lesson.check(np.array_equal(y[0, 0], np.kron(x[0, 0], np.ones((2, 2)))), "every pixel becomes a 2x2 block")
lesson.check(NearestUpsample((2, 3)).forward(x).shape == (1, 1, 6, 9), "the factors may differ per axis: (2, 3)")

# %%
lesson.step("The bilinear kernel: f = ceil(k/2), c = f-1 (k odd) or f-1/2 (k even), w = (1-|i-c|/f)(1-|j-c|/f)")
for k in (4, 3, 16):
    f = math.ceil(k / 2)
    c = f - 1 if k % 2 else f - 0.5
    by_hand = np.array([1 - abs(i - c) / f for i in range(k)])
    print(f"k={k:2d}: f={f}, c={c}, taps = {np.round(bilinear_taps(k), 4)}")
    lesson.close(bilinear_taps(k), by_hand, f"k={k}: bilinear_taps follows the formula")
    lesson.close(bilinear_kernel(k), np.outer(by_hand, by_hand), f"k={k}: the kernel is the outer product of the taps")
lesson.close(bilinear_taps(4), [1 / 4, 3 / 4, 3 / 4, 1 / 4], "k=4 (FCN's x2 layers): taps 1/4, 3/4, 3/4, 1/4")
print("bilinear_kernel(4):\n", bilinear_kernel(4))
w = bilinear_weight(3, 3, 4)  # a ConvTranspose2d weight (C_in, C_out, k, k)
off_diagonal = w[~np.eye(3, dtype=bool)]
lesson.check(all(np.array_equal(w[c, c], bilinear_kernel(4, np.float32)) for c in range(3)) and not off_diagonal.any(),
             "bilinear_weight(3, 3, 4): the kernel on the channel diagonal, zeros elsewhere (class c stays class c)")

# %%
lesson.step("Bilinear upsampling is a transposed convolution with the bilinear kernel (k = 2s, p = s/2)")
bilinear = BilinearUpsample(1, 2)
results["bilinear"] = y = bilinear.forward(x)
print(f"BilinearUpsample(1, 2): kernel {bilinear.kernel_size}, padding {bilinear.padding}\n", y[0, 0])
y_convt, _ = conv_transpose2d_forward(x, bilinear_weight(1, 1, 4, np.float64), stride=2, padding=1)
lesson.close(y, y_convt, "= ConvTranspose2d(k=4, stride=2, padding=1) carrying the bilinear kernel")
# Output pixel o sits at source coordinate (o + 1/2)/s - 1/2 (pixel centres): bilinear interpolation
# reproduces any linear function there, so a ramp stays an exact ramp inside the map.
ramp = (np.arange(5.0)[:, None] + 10 * np.arange(6.0)[None, :])[None, None]  # x[i, j] = i + 10 j
src_r, src_c = (np.arange(10) + 0.5) / 2 - 0.5, (np.arange(12) + 0.5) / 2 - 0.5
up = bilinear.forward(ramp)[0, 0]
lesson.close(up[1:-1, 1:-1], (src_r[:, None] + 10 * src_c[None, :])[1:-1, 1:-1],
             "inside the map it interpolates exactly: the ramp i + 10j becomes the ramp at the source coordinates")
edge = BilinearUpsample(1, 2).forward(np.ones((1, 1, 3, 3)))[0, 0, 2]
print("ones(3, 3) upsampled x2, a middle row:", edge)
lesson.close(edge, [0.75, 1, 1, 1, 1, 0.75], "at the border it blends with the zeros beyond the edge (3/4)")
# FCN's upsamplers are these very layers, made learnable: x2, x8, x16, x32 with k = 2s (the paper's Caffe
# nets leave them unpadded and crop afterwards; the PyTorch port pads p = s/2 instead, lesson 05).
for s in (2, 8, 16, 32):
    k, p = bilinear_geometry(s)
    up_layer = ConvTranspose2d(2, 2, k, stride=s, padding=p, dtype=np.float64, seed=0)
    up_layer.params["weight"][...] = bilinear_weight(2, 2, k, np.float64)
    up_layer.params["bias"][...] = 0
    z = rng.standard_normal((1, 2, 3, 4))
    out = up_layer.forward(z)
    lesson.check(out.shape[2:] == (3 * s, 4 * s) and np.allclose(out, BilinearUpsample(2, s).forward(z)),
                 f"x{s}: ConvTranspose2d(k={k}, s={s}, p={p}) with bilinear weights = BilinearUpsample(2, {s})")
fresh = FCN8s.tiny(3, seed=0)
lesson.check(all(np.array_equal(getattr(fresh, n).weight, bilinear_weight(3, 3, k)) for n, k in
                 (("upscore2", 4), ("upscore2_pool4", 4), ("upscore8", 16))),
             "a fresh FCN-8s: upscore2, upscore2_pool4, upscore8 all start as bilinear interpolation")

# %%
lesson.step("Bed of nails: each pixel at the top-left of its s x s block, zeros elsewhere")
results["bed of nails"] = y = BedOfNails(2).forward(x)
print(y[0, 0])
lesson.check(np.array_equal(y[0, 0, ::2, ::2], x[0, 0]) and y[0, 0].sum() == x.sum(),
             "the nails hold the input, every other pixel is 0")

# %%
lesson.step("Max-unpooling: put each value back where MaxPool2d(return_indices=True) found it")
before = rng.permutation(16).astype(float).reshape(1, 1, 4, 4)  # distinct values: no ties
pool = MaxPool2d(2, return_indices=True)
pooled, indices = pool.forward(before)
print("before pooling:\n", before[0, 0], "\npooled:\n", pooled[0, 0], "\nindices (flat h*W + w):\n", indices[0, 0])
unpool = MaxUnpool2d(2)
results["max-unpooling"] = unpooled = unpool.forward(pooled, indices)
print("unpooled:\n", unpooled[0, 0])
is_max = before == np.kron(pooled, np.ones((2, 2)))  # the winner of each 2x2 window
lesson.check(np.array_equal(unpooled, np.where(is_max, before, 0)),
             "each maximum returns to its own pixel; the other 3 of each window become 0")
lesson.check(np.array_equal(pool.forward(unpooled)[0], pooled), "pooling the unpooled map gives the pooled map back")
corner = np.array([[0, 2], [8, 10]]).reshape(1, 1, 2, 2)  # indices of every block's top-left pixel
lesson.check(np.array_equal(unpool.forward(pooled, corner), BedOfNails(2).forward(pooled)),
             "bed of nails = max-unpooling with every index at the top-left corner")

fig, axes = plt.subplots(2, 4, figsize=(14, 7.2), gridspec_kw={"width_ratios": [3, 6, 6, 6]})
draw_matrix(axes[0, 0], x[0, 0], "input 3x3", fmt="{:.0f}", cmap="Blues", vmin=0, vmax=10)
for ax, name in zip(axes[0, 1:], ("nearest", "bilinear", "bed of nails")):
    draw_matrix(ax, results[name][0, 0], f"{name} x2: 6x6", fmt="{:.2g}", cmap="Blues", vmin=0, vmax=10, fontsize=8)
axes[1, 0].axis("off")
draw_matrix(axes[1, 1], before[0, 0], "before max-pooling 4x4\n(window maxima in bold)", fmt="{:.0f}", cmap="Greens",
            vmin=-3, vmax=18)
for (i, j), v in np.ndenumerate(is_max[0, 0]):
    if v:
        axes[1, 1].texts[i * 4 + j].set_fontweight("bold")
draw_matrix(axes[1, 2], pooled[0, 0], "MaxPool2d(2): 2x2\n+ indices " + str(indices[0, 0].ravel().tolist()),
            fmt="{:.0f}", cmap="Greens", vmin=-3, vmax=18)
draw_matrix(axes[1, 3], unpooled[0, 0], "max-unpooling x2: 4x4\n(each max back at its index)", fmt="{:.0f}",
            cmap="Greens", vmin=-3, vmax=18)
for ax in axes[0, 1:]:
    ax.set_aspect("equal")
for ax in (axes[1, 1], axes[1, 3]):  # the four 2x2 pooling windows
    ax.axhline(1.5, color="black", lw=2), ax.axvline(1.5, color="black", lw=2)
fig.tight_layout()
fig.suptitle("Fixed upsampling methods: nearest, bilinear, bed of nails, max-unpooling (values in the cells)",
             fontsize=12, y=1.02)
lesson.save(fig, "methods")

# Animated: pooling records, window by window, the max and where it was (the engine's `indices`);
# unpooling then puts each max back at its index. The frames show the engine's pooled, indices and unpooled.
windows = before[0, 0].reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(4, 4)  # row t: window t's 4 pixels
lesson.check(np.array_equal(before.ravel()[indices.ravel()], windows.max(axis=1)),
             "each index the animation marks holds its window's maximum")
blank2, blank4 = np.full((2, 2), np.nan), np.full((4, 4), np.nan)
fig, axes, caption = animation_panels([4, 2, 2, 4], (9.6, 3.7))
draw_matrix(axes[0], before[0, 0], "x: before max-pooling", fmt="{:.0f}", cmap="Greens", vmin=-3, vmax=18)
pooled_im = draw_matrix(axes[1], blank2, "MaxPool2d(2)", fmt="{:.0f}", cmap="Greens", vmin=-3, vmax=18)
index_im = draw_matrix(axes[2], blank2, "indices\n(flat h*4 + w)", fmt="{:.0f}", cmap="Greys", vmin=0, vmax=60)
unpooled_im = draw_matrix(axes[3], blank4, "MaxUnpool2d(2)", fmt="{:.0f}", cmap="Greens", vmin=-3, vmax=18)
for ax, n in zip(axes, (4, 2, 2, 4)):
    cell_lines(ax, (n, n))
window_boxes = [cell_box(axes[0], 0, 0, 2, 2), cell_box(axes[3], 0, 0, 2, 2)]
winner_boxes = [cell_box(ax, 0, 0, color="gold", lw=3.5, inset=0.1) for ax in (axes[0], axes[3])]
small_boxes = [cell_box(axes[1], 0, 0), cell_box(axes[2], 0, 0)]


def unpool_frame(f):
    """Frames 0-3 pool window t, frames 4-7 unpool it, frame 8 shows the result."""
    phase, t = divmod(f, 4)
    i, j = divmod(t, 2)
    done_pool = np.arange(4).reshape(2, 2) <= (3 if phase else t)
    set_matrix(pooled_im, np.where(done_pool, pooled[0, 0], np.nan))
    set_matrix(index_im, np.where(done_pool, indices[0, 0], np.nan))
    done_unpool = np.kron(np.arange(4).reshape(2, 2) <= (t if phase == 1 else 3 if phase == 2 else -1),
                          np.ones((2, 2), bool))
    set_matrix(unpooled_im, np.where(done_unpool, unpooled[0, 0], np.nan))
    for box in window_boxes + winner_boxes + small_boxes:
        box.set_visible(phase < 2)
    if phase == 2:
        caption.set_text("unpooled = MaxUnpool2d(2)(pooled, indices): each max at its index, 0 elsewhere")
        return
    r, c = divmod(int(indices[0, 0, i, j]), 4)
    for box in window_boxes:
        place_box(box, 2 * i, 2 * j)
    for box in winner_boxes:
        place_box(box, r, c)
    for box in small_boxes:
        place_box(box, i, j)
    window_boxes[phase].set_visible(True), window_boxes[1 - phase].set_visible(False)
    winner_boxes[1 - phase].set_visible(phase == 1)
    v = f"{pooled[0, 0, i, j]:.0f}"
    caption.set_text(f"pool window ({i},{j}): max {v} at row {r}, column {c}: flat index {r}*4 + {c} = {4 * r + c}"
                     if phase == 0 else f"unpool: {v} goes back to index {4 * r + c} = (row {r}, column {c});"
                                        " the window's 3 other cells get 0")


lesson.save_animation(fig, unpool_frame, 9, "maxpool_unpool", fps=1.5)

# %%
lesson.step("All four are linear maps; each backward pass is the transpose: <up(x), g> == <x, up_backward(g)>")
z = rng.standard_normal((2, 3, 4, 6))
pool4 = MaxPool2d(2, return_indices=True)
zp, zi = pool4.forward(rng.standard_normal((2, 3, 8, 12)))
cases = {"nearest": (NearestUpsample(2), (z,)), "bilinear": (BilinearUpsample(3, 2), (z,)),
         "bed of nails": (BedOfNails(2), (z,)), "max-unpooling": (MaxUnpool2d(2), (zp, zi))}
for name, (layer, args) in cases.items():
    out = layer.forward(*args)
    g = rng.standard_normal(out.shape)
    lhs, rhs = np.sum(out * g), np.sum(args[0] * layer.backward(g))
    print(f"{name:14s} <up(x), g> = {lhs:+.10f}   <x, backward(g)> = {rhs:+.10f}")
    lesson.close(lhs, rhs, f"{name}: the backward pass is the adjoint of the forward", rtol=1e-12)
# No parameters to learn in any of them: a fixed rule. FCN's ConvTranspose2d starts as the bilinear
# rule and then learns its kernel by the same backward pass (lesson 05, lesson 08).

# %%
lesson.step("The checkerboard: k = 3, s = 2 overlaps unevenly; k = 4 = 2s overlaps evenly")
const = np.ones((1, 1, 5, 5))  # a constant input: any pattern in the output comes from the layer itself
ones3, ones4 = np.ones((1, 1, 3, 3)), np.ones((1, 1, 4, 4))  # kernels of ones: output = number of overlapping stamps
y3, _ = conv_transpose2d_forward(const, ones3, stride=2, padding=1, output_padding=1)  # 5x5 -> 10x10
y4, _ = conv_transpose2d_forward(const, ones4, stride=2, padding=1)  # 5x5 -> 10x10
yb, _ = conv_transpose2d_forward(const, bilinear_weight(1, 1, 4, np.float64), stride=2, padding=1)
print("k=3, s=2, kernel of ones, constant input, one row:", y3[0, 0, 4])
print("k=4, s=2, kernel of ones, constant input, one row:", y4[0, 0, 4])
inner3, inner4, innerb = y3[0, 0, 1:-1, 1:-1], y4[0, 0, 1:-1, 1:-1], yb[0, 0, 1:-1, 1:-1]
lesson.check(set(np.unique(inner3)) == {1.0, 2.0, 4.0},
             "k=3, s=2: output pixels get 1 or 2 stamps per axis (3 = 2+1): the interior alternates 1, 2, 4")
lesson.check(np.all(inner4 == 4.0), "k=4, s=2: every interior pixel gets exactly 2 stamps per axis: constant 4")
lesson.close(innerb, np.ones_like(innerb), "the bilinear k=4, s=2 kernel: constant 1 in, constant 1 out inside")
# Why: output pixel o receives kernel taps t with t = o + p (mod s), one per input pixel: k/s taps when
# s divides k, else ceil or floor of k/s depending on o's phase. With k = 2s every phase gets 2 taps
# per axis; whether their *weights* also sum alike is up to the kernel -- the bilinear taps do:
t4 = bilinear_taps(4)
lesson.close([t4[0] + t4[2], t4[1] + t4[3]], [1.0, 1.0],
             "bilinear k=4 taps per phase: 1/4 + 3/4 = 3/4 + 1/4 = 1 (a learned kernel may drift from this)")

fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
draw_matrix(axes[0], y3[0, 0], "k=3, s=2, kernel of ones:\nuneven overlap -> checkerboard", fmt="{:.0f}",
            cmap="magma", vmin=0, vmax=4.5, fontsize=8)
draw_matrix(axes[1], y4[0, 0], "k=4 = 2s, kernel of ones:\neven overlap -> constant inside", fmt="{:.0f}",
            cmap="magma", vmin=0, vmax=4.5, fontsize=8)
draw_matrix(axes[2], yb[0, 0], "k=4, s=2, p=1, bilinear kernel\n(FCN's x2 init): constant 1 inside", fmt="{:.2g}",
            cmap="magma", vmin=0, vmax=1.1, fontsize=8)
fig.tight_layout()
fig.suptitle("Transposed convolution of a constant 5x5 input (all ones): the pattern is the layer's own",
             fontsize=12, y=1.08)
lesson.save(fig, "checkerboard")

# Animated: a constant 3x3 input, each pixel stamping a kernel of ones, through the same two layers;
# every output cell counts the stamps that cover it. The frames are the engine's outputs for the input
# with only its first t pixels on (the layer is linear), so the last frame is the layer's output.
order = np.arange(9).reshape(1, 1, 3, 3)
counts3 = [conv_transpose2d_forward((order < t).astype(float), ones3, stride=2, padding=1, output_padding=1)[0][0, 0]
           for t in range(10)]
counts4 = [conv_transpose2d_forward((order < t).astype(float), ones4, stride=2, padding=1)[0][0, 0] for t in range(10)]
lesson.check(all(np.all(np.diff(c, axis=0) >= 0) for c in (counts3, counts4)),
             "the counts only grow, frame by frame: stamps add up")
lesson.check(set(np.unique(counts3[9][1:-1, 1:-1])) == {1.0, 2.0, 4.0} and np.all(counts4[9][1:-1, 1:-1] == 4),
             "the last frame: k=3 interior 1, 2, 4 (checkerboard), k=4 interior constant 4")
fig, axes, caption = animation_panels([3, 6, 6], (9.6, 4.3))
draw_matrix(axes[0], np.ones((3, 3)), "constant input 3x3", fmt="{:.0f}", cmap="Blues", vmin=0, vmax=3)
count_ims = [draw_matrix(ax, np.full((6, 6), np.nan), title, fmt="{:.0f}", cmap="magma", vmin=0, vmax=4.5)
             for ax, title in zip(axes[1:], ("k=3, s=2, p=1, output_padding=1:\nstamps overlap unevenly",
                                             "k=4 = 2s, s=2, p=1:\nstamps overlap evenly"))]
for ax, n in zip(axes, (3, 6, 6)):
    cell_lines(ax, (n, n))
pixel_box = cell_box(axes[0], 0, 0)
stamp_boxes = [cell_box(ax, 0, 0, k, k, color="tab:cyan", lw=3, clip_on=True) for ax, k in zip(axes[1:], (3, 4))]


def checkerboard_frame(t):
    """Frame t < 9: input pixel t has stamped; frame 9: the whole output."""
    for im, counts in zip(count_ims, (counts3, counts4)):
        set_matrix(im, np.where(counts[min(t + 1, 9)] > 0, counts[min(t + 1, 9)], np.nan))
    for box in [pixel_box, *stamp_boxes]:
        box.set_visible(t < 9)
    if t == 9:
        caption.set_text("interior: 1, 2, 4 for k=3 (a checkerboard); 4 everywhere for k=4")
        return
    i, j = divmod(t, 3)
    pixel_box.set_xy((j - 0.5, i - 0.5))
    for box in stamp_boxes:  # the stamp starts at 2i - p; cut at the output's edge (that is what p does)
        place_box(box, 2 * i - 1, 2 * j - 1)
    caption.set_text(f"input pixel ({i},{j}) stamps a kernel of ones, top-left at output ({2 * i - 1},{2 * j - 1})"
                     f" = 2*({i},{j}) - padding 1; each cell counts its stamps")


lesson.save_animation(fig, checkerboard_frame, 10, "checkerboard_overlap", fps=1.5)

# %%
lesson.step("Shift and stitch: the other way to a dense map -- s^2 shifted passes, interleaved")
# Four ways lead from a coarse map to a dense one: interpolation, deconvolution, unpooling, and
# shift and stitch. The last one upsamples nothing: run the stride-s network on the input shifted by every
# (a, b) in {0..s-1}^2 and interleave the s^2 coarse outputs. The FCN paper tried it and chose learned
# upsampling instead: s^2 = 1024 passes for stride 32. Here with one stride-2 layer:
img = rng.standard_normal((1, 1, 9, 9))
kernel = rng.standard_normal((1, 1, 3, 3))
dense, _ = conv2d_forward(img, kernel)  # stride 1: 7x7, what we want
stitched = np.empty_like(dense)
for a in range(2):
    for b in range(2):
        coarse, _ = conv2d_forward(img[:, :, a:, b:], kernel, stride=2)  # the input shifted by (a, b)
        print(f"shift ({a}, {b}): stride-2 output {coarse.shape[2:]} -> rows {a}::2, columns {b}::2")
        stitched[:, :, a::2, b::2] = coarse
lesson.close(stitched, dense, "the 4 interleaved stride-2 outputs are exactly the stride-1 (dense) output")

# %%
lesson.done(summary=[
    "Nearest copies s x s blocks, bed of nails keeps one pixel per block, and max-unpooling puts each maximum"
        " back at its index.",
    "The bilinear kernel follows f = ceil(k/2); a transposed conv carrying it is bilinear upsampling, exact "
        "on ramps inside the map.",
    "A fresh FCN-8s starts its upsamplers as bilinear interpolation.",
    "Each fixed upsampler's backward pass is its adjoint (dot-product test).",
    "k = 3, s = 2 overlaps unevenly (a checkerboard); k = 2s overlaps evenly.",
    "Shift and stitch: s^2 shifted stride-s passes interleave into the dense output.",
], exercises=["bilinear_kernel"])

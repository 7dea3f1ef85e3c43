# %% [markdown]
# # Lesson 07: per-pixel softmax cross-entropy
#
# Segmentation is classification at every pixel: the network outputs logits
# `(N, C, H, W)`, one score per class per pixel, and the loss is the ordinary
# softmax cross-entropy applied at each pixel, then averaged. This lesson shows
#
# 1. the per-pixel softmax and loss `-log p[label]`,
# 2. why the engine subtracts each pixel's largest logit first (naive `exp` overflows),
# 3. `ignore_index = 255`: PASCAL VOC's "void" pixels give neither loss nor gradient,
# 4. the **normalisation** choices (mean over valid pixels, mean over all
#    pixels, plain sum), what the engine does and why,
# 5. the gradient `(softmax - onehot) / V`, checked by finite differences.
#
# Sources: the FCN paper (Long, Shelhamer & Darrell, arXiv:1411.4038), section 3 (the loss
# is a sum over the spatial dimensions of per-pixel losses) and section 4.1 (a per-pixel
# multinomial logistic loss); its released Caffe solvers (unnormalised loss, base_lr 1e-10,
# momentum 0.99, batch 1); PASCAL VOC's void label 255 (Everingham et al., "The PASCAL
# Visual Object Classes (VOC) Challenge", IJCV 2010); PyTorch's
# `CrossEntropyLoss(ignore_index=...)`, whose mean also divides by the non-ignored count.
# Run: `python lessons/07_softmax_cross_entropy.py [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import Lesson  # first: puts the repo on sys.path, picks a headless backend

import matplotlib.pyplot as plt
import numpy as np

from fcn_scratch import gradcheck
from fcn_scratch.functional import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from fcn_scratch.layers import SoftmaxCrossEntropy
from fcn_scratch.naive import softmax_cross_entropy_grad_naive, softmax_cross_entropy_naive

lesson = Lesson("07_softmax_cross_entropy", "Per-pixel softmax cross-entropy: stability, ignore_index, normalisation")
rng = np.random.default_rng(7)


def probabilities(logits, labels):
    """The engine keeps softmax(logits) in the forward cache for the backward pass; fetch it."""
    _, cache = softmax_cross_entropy_forward(logits, labels)
    return cache[0]


def per_pixel_loss(logits, labels):
    """-log softmax(logits)[label] at every pixel (N, H, W), by log-sum-exp in plain NumPy: not the engine's code.

    Void pixels (255) get the loss of class 0; callers select the valid ones.
    """
    top = logits.max(axis=1)
    lse = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
    return lse - np.take_along_axis(logits, np.where(labels == 255, 0, labels)[:, None], axis=1)[:, 0]


# %%
lesson.step("Softmax at every pixel: C logits -> C probabilities that sum to 1")
logits = rng.standard_normal((1, 3, 2, 3)) * 2  # N=1, C=3 classes, a 2x3 image
labels = np.array([[[0, 1, 2], [2, 2, 1]]])  # (N, H, W): the true class of each pixel
p = probabilities(logits, labels)
print("logits at pixel (0, 0):", logits[0, :, 0, 0], " -> probabilities", p[0, :, 0, 0])
print("p[label] per pixel:\n", np.take_along_axis(p, labels[:, None], axis=1)[0, 0])
lesson.check(p.shape == logits.shape and np.allclose(p.sum(axis=1), 1) and (p > 0).all(),
             "p has the logits' shape (N, C, H, W); over the class axis each pixel's p sums to 1")
lesson.close(p[0, :, 0, 0], np.exp(logits[0, :, 0, 0]) / np.exp(logits[0, :, 0, 0]).sum(),
             "p = exp(z) / sum exp(z) at a pixel")
per_pixel = -np.log(np.take_along_axis(p, labels[:, None], axis=1)[:, 0])  # (N, H, W)
loss = SoftmaxCrossEntropy()(logits, labels)
print("per-pixel loss -log p[label]:\n", per_pixel[0], f"\nmean = {per_pixel.mean():.6f}, engine loss = {loss:.6f}")
lesson.close(loss, per_pixel.mean(), "the loss is the mean over pixels of -log p[label]")
lesson.close(loss, softmax_cross_entropy_naive(logits, labels), "and matches the one-pixel-at-a-time naive loop")

# %%
lesson.step("Stability: subtract the max logit first, or exp overflows")
z = np.array([1000.0, 1001.0, 1002.0])
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(z) / np.exp(z).sum()  # inf / inf
stable = np.exp(z - z.max()) / np.exp(z - z.max()).sum()  # exp of [-2, -1, 0]: no overflow
print("logits", z, "\nnaive  exp(z)/sum exp(z):", naive, " (exp(1000) = inf, inf/inf = nan)"
      "\nstable, z - max(z) first:", stable)
big = z.reshape(1, 3, 1, 1)
label2 = np.array([[[2]]])
p_big = probabilities(big, label2)[0, :, 0, 0]
print("the engine's softmax:    ", p_big)
lesson.close(p_big, stable, "the engine's softmax of [1000, 1001, 1002] is finite and exact where the naive one is nan")
loss_big = SoftmaxCrossEntropy()(big, label2)
print(f"engine loss for label 2: {loss_big:.6f} = -log({stable[2]:.6f})")
lesson.close(loss_big, -np.log(stable[2]), "the engine's loss is finite and exact")
lesson.close(loss_big, SoftmaxCrossEntropy()(big - 1000, label2),
             "softmax is shift-invariant: z and z - 1000 give the same loss")
with np.errstate(over="ignore"):
    f32_overflow = np.exp(np.float32(89.0))
print("in float32, the engine's default dtype, exp overflows already at 89:", f32_overflow)
z32 = np.array([100.0, 100.5, 101.0], dtype=np.float32).reshape(1, 3, 1, 1)  # naive exp: inf, inf, inf
loss32 = SoftmaxCrossEntropy()(z32, label2)
exact = float(np.log1p(np.exp(-1.0) + np.exp(-0.5)))  # -log p[2] = log(e^-1 + e^-0.5 + e^0), in float64
print(f"float32 logits [100, 100.5, 101], label 2: engine loss {loss32:.7f}, exact (float64) {exact:.7f}")
lesson.close(loss32, exact, "float32 logits of ~100 (past exp's overflow at 89): the engine's loss is still exact",
             rtol=1e-6)
# The other end: a very wrong prediction. p = exp(-1000) underflows to 0 and -log(0) = inf,
# but log-sum-exp keeps the loss exact: log(e^-1000 + e^0) - (-1000) = 1000.
wrong = np.array([-1000.0, 0.0]).reshape(1, 2, 1, 1)
with np.errstate(divide="ignore"):
    naive_loss = -np.log(np.exp(-1000.0) / (np.exp(-1000.0) + 1.0))
loss_wrong = SoftmaxCrossEntropy()(wrong, np.array([[[0]]]))
print(f"logits [-1000, 0], label 0: naive -log p = {naive_loss}, engine = {loss_wrong}")
lesson.check(loss_wrong == 1000.0, "log-sum-exp gives the exact loss 1000 (the naive form gives inf)")

# %%
lesson.step("ignore_index = 255: void pixels give neither loss nor gradient")
# A toy 16x22 scene, 3 classes: background 0, a disc (1), a square (2). As in PASCAL VOC,
# the 1-pixel boundaries of the objects are labelled 255, "void": nobody could label them reliably.
yy, xx = np.mgrid[:16, :22]
radius = np.hypot(yy - 7.5, xx - 6.5)
labels = np.zeros((1, 16, 22), dtype=np.int64)
labels[0][radius <= 5.5] = 1
labels[0, 3:13, 13:20] = 2
void_free = labels.copy()  # the same scene before any pixel is voided (step 4 starts from it)
labels[0][(radius > 4.5) & (radius <= 5.5)] = 255  # the disc's rim
labels[0, 3:13, 13:20][[0, -1], :] = 255  # the square's outline
labels[0, 3:13, 13:20][:, [0, -1]] = 255
logits = 2.0 * np.eye(3)[np.where(labels == 255, 0, labels)].transpose(0, 3, 1, 2) + rng.standard_normal((1, 3, 16, 22))
valid = labels != 255
V = int(valid.sum())
layer = SoftmaxCrossEntropy(ignore_index=255)
loss = layer(logits, labels)
dlogits = layer.backward()
p = probabilities(logits, labels)
per_pixel = per_pixel_loss(logits, labels)
print(f"{labels.size} pixels, {labels.size - V} labelled 255, V = {V} valid; loss = {loss:.6f}")
lesson.close(loss, per_pixel[valid].mean(), "the loss is the mean of -log p[label] over the V valid pixels only")
scrambled = logits.copy()
scrambled[:, :, ~valid[0]] = rng.standard_normal((3, labels.size - V)) * 50
lesson.check(layer(scrambled, labels) == loss,
             "changing the logits of void pixels (even wildly) leaves the loss unchanged")
lesson.check(not dlogits[:, :, ~valid[0]].any(), "the gradient at void pixels is exactly 0")
try:
    layer(logits, np.where(labels == 255, 7, labels))
    rejected = False
except ValueError as err:
    print("a label 7 with 3 classes:", err)
    rejected = True
lesson.check(rejected, "255 is ignored, but any other label outside [0, C) is an error, not silently skipped")

fig, axes = plt.subplots(1, 3, figsize=(15, 4.0), layout="constrained")
shown = np.where(valid[0], labels[0], np.nan)
cmap = plt.get_cmap("tab10", 3).copy()
cmap.set_bad("lightgray")
im = axes[0].imshow(shown, cmap=cmap, vmin=-0.5, vmax=2.5)
fig.colorbar(im, ax=axes[0], ticks=[0, 1, 2], shrink=0.8, label="class")
axes[0].set_title("labels (gray = 255, ignored)", fontsize=10)
lossmap = np.where(valid[0], per_pixel[0], np.nan)
cm2 = plt.get_cmap("magma").copy()
cm2.set_bad("lightgray")
im = axes[1].imshow(lossmap, cmap=cm2)
fig.colorbar(im, ax=axes[1], shrink=0.8)
axes[1].set_title(f"per-pixel loss -log p[label]\nmean over V={V} valid pixels = {loss:.3f}", fontsize=10)
g_true = np.take_along_axis(dlogits, np.where(valid, labels, 0)[:, None], axis=1)[0, 0]
lim = np.abs(g_true).max()
cm3 = plt.get_cmap("Blues_r").copy()
cm3.set_bad("lightgray")
im = axes[2].imshow(np.where(valid[0], g_true, np.nan), cmap=cm3, vmin=-lim, vmax=0)
fig.colorbar(im, ax=axes[2], shrink=0.8)
axes[2].set_title("gradient on the true class: (p[label]-1)/V\ngray: exactly 0 on ignored pixels", fontsize=10)
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
lesson.save(fig, "ignore_index")

# %%
lesson.step("Normalisation: mean over valid pixels (the engine), mean over all pixels, or sum")
# All three have the same gradient DIRECTION; they differ in scale, and the scale is the step size.
print(f"mean over valid pixels:  {loss:.5f}   (engine: divide by V = {V})")
print(f"mean over all pixels:    {loss * V / labels.size:.5f}   (divide by N*H*W = {labels.size}, void included)")
print(f"sum over valid pixels:   {loss * V:.5f}   (no division; the authors' Caffe FCN, 'normalize: false')")
lesson.close(loss * V, per_pixel[valid].sum(), "sum = V * mean-over-valid")
# Start from the scene before any pixel was voided (no 255 at all), then hide a growing random fraction.
fractions, curves = [0.0, 0.2, 0.4, 0.6, 0.8], {"mean over valid (engine)": [], "mean over all pixels": [], "sum": []}
base = np.tile(void_free, (1, 4, 4))  # a 64x88 scene, every pixel labelled
base_logits = np.tile(logits, (1, 1, 4, 4))
base_loss = per_pixel_loss(base_logits, base)  # independent per-pixel losses
independent = []  # mean over all pixels, from the independent per-pixel losses
for f in fractions:
    lab = base.copy()
    lab[rng.random(lab.shape) < f] = 255  # hide a fraction f of the pixels
    m = SoftmaxCrossEntropy()(base_logits, lab)
    v = int((lab != 255).sum())
    for key, value in zip(curves, [m, m * v / lab.size, m * v]):
        curves[key].append(value)
    independent.append(base_loss[lab != 255].sum() / lab.size)
    if f == 0.0:
        print(f"fraction 0.0: {lab.size - v} of {lab.size} pixels void (the void-free scene)")
print("fraction ignored:      ", fractions)
for key, vals in curves.items():
    print(f"{key:24s}", np.round(vals, 3))
mv, ma = np.array(curves["mean over valid (engine)"]), np.array(curves["mean over all pixels"])
lesson.close(ma, independent, "engine mean x V / (N*H*W) == the independent per-pixel losses summed over valid "
             "pixels / N*H*W: the engine divides by the valid count V")
lesson.check(np.ptp(mv) / mv.mean() < 0.1, "mean over valid pixels barely moves as more pixels are ignored")
lesson.check(ma[-1] < 0.35 * ma[0], "mean over all pixels shrinks with the valid fraction: void pixels dilute the step")
sizes, size_curves = [1, 2, 3, 4], {"mean": [], "sum": []}
for t in sizes:  # the same scene tiled t x t: t^2 times the pixels
    m = SoftmaxCrossEntropy()(np.tile(logits, (1, 1, t, t)), np.tile(labels, (1, t, t)))
    size_curves["mean"].append(m)
    size_curves["sum"].append(m * V * t * t)
lesson.close(size_curves["mean"], [loss] * 4, "the mean does not depend on the image size")
lesson.close(size_curves["sum"], [t * t * per_pixel[valid].sum() for t in sizes],
             "the sum (engine mean x valid count) grows with the pixels: t^2 x the independent sum")
lesson.check(SoftmaxCrossEntropy()(logits, np.full_like(labels, 255)) == 0.0,
             "no valid pixel at all: loss 0 (not 0/0 = nan)")
print("Why the engine takes the mean over valid pixels: the learning rate then means the same thing for any\n"
      "image size, batch size and amount of void. The authors' Caffe FCN summed instead and compensated with a\n"
      "tiny learning rate (base_lr 1e-10 'for unnormalized softmax', batch size 1, momentum 0.99).")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for key, style in [("mean over valid (engine)", "o-"), ("mean over all pixels", "s--")]:
    axes[0].plot(fractions, curves[key], style, label=key)
axes[0].set_ylim(0, None)
axes[0].set_xlabel("fraction of pixels labelled 255 (the same predictions)")
axes[0].set_ylabel("loss")
axes[0].set_title("void pixels: only the valid-pixel mean stays put", fontsize=10)
axes[0].legend(fontsize=8)
axes[1].plot(np.square(sizes) * labels.size, size_curves["mean"], "o-", label="mean over valid (engine)")
axes[1].plot(np.square(sizes) * labels.size, size_curves["sum"], "^:", label="sum")
axes[1].set_yscale("log")
axes[1].set_xlabel("pixels in the image (same scene, tiled)")
axes[1].set_ylabel("loss")
axes[1].set_title("image size: the sum grows, the mean does not", fontsize=10)
axes[1].legend(fontsize=8)
fig.tight_layout()
lesson.save(fig, "normalisation")

# %%
lesson.step("The gradient: dL/dz = (softmax - onehot(label)) / V on valid pixels, 0 on void ones")
onehot = np.eye(3)[np.where(valid, labels, 0)].transpose(0, 3, 1, 2)
expected = (p - onehot) * valid[:, None] / V
lesson.close(dlogits, expected, "backward() == (p - onehot) / V, masked")
lesson.close(dlogits, softmax_cross_entropy_grad_naive(logits, labels), "== the naive per-pixel loop")
lesson.close(dlogits.sum(axis=1), 0,
             "at every pixel the gradient sums to 0 over the classes (softmax is shift-invariant)", atol=1e-15)
_, cache = softmax_cross_entropy_forward(logits, labels)
lesson.close(softmax_cross_entropy_backward(cache, 2.5), 2.5 * dlogits, "an upstream dloss scales it: the chain rule")
# Finite differences: the loss is a scalar, so the 'random upstream gradient' is a random scalar g.
errors = gradcheck.check(lambda: layer.forward(logits, labels), lambda g: {"logits": layer.backward(float(g))},
                         {"logits": logits}, seed=7)
print(f"finite differences (h = 1e-6, random upstream scalar) vs backward: rel error {errors['logits']:.1e}")
lesson.check(errors["logits"] < gradcheck.TOL_SMOOTH,
             f"the gradient check passes (< TOL_SMOOTH = {gradcheck.TOL_SMOOTH:g})")

# %%
lesson.done(summary=[
    "The loss is the mean of -log softmax[label] over the valid pixels, equal to the naive loop.",
    "Subtracting the max keeps softmax and loss exact for logits of 1000, and of 100 in float32.",
    "Pixels labelled 255 give neither loss nor gradient; other labels outside [0, C) are errors.",
    "Dividing by the valid count keeps the loss steady as void and image size grow; the mean over all pixels "
        "and the sum do not.",
    "The gradient is (softmax - onehot)/V on valid pixels, and passes finite differences.",
], exercises=["softmax_cross_entropy"])

# %% [markdown]
# # Lesson 09: training a tiny FCN on toy shapes, and measuring it
#
# Everything so far was one forward and one backward. Training repeats them:
# forward, per-pixel cross-entropy (lesson 07), backward, an optimiser step --
# `fcn_scratch.train.fit`. Measuring needs segmentation metrics, all read off
# one **confusion matrix** (`fcn_scratch.metrics`). This lesson
#
# 1. makes the toy data (`fcn_scratch.data.toy_shapes`): discs, rectangles,
#    triangles and thin rings on textured backgrounds, with their masks,
# 2. computes **pixel accuracy** and **mean IoU** of a small example by hand,
#    next to the engine's numbers, and shows why mean IoU is the headline metric,
# 3. trains **FCN-32s, FCN-16s and FCN-8s** on the same data, with the same
#    initial backbone and budget,
# 4. evaluates them with one confusion matrix over the validation set,
# 5. shows their predictions side by side: the finer the skips, the finer the masks,
# 6. proves why the images are 64x64: at 32x32 FCN-32s could not place anything.
#
# The budget here is small (64x64 images, a slim network with one conv per
# block, ~15 s of training) so that the lesson runs in about 20 s; the full
# comparison (480 images, the 'tiny' preset, 14 epochs: minutes) is
# `fcn-scratch compare`. Why 64x64 and not smaller: at 32x32, FCN-32s's score
# map is 1x1 -- one score vector for the whole image, upsampled -- so it can
# only paint one class or a smooth blur (step 6 proves it); at 64x64 it has
# 2x2 cells to place its blobs in, FCN-16s 4x4, FCN-8s 8x8.
# Sources: the FCN paper (Long, Shelhamer & Darrell, arXiv:1411.4038), section 4.2
# (skips: FCN-32s -> 16s -> 8s, "refining fully convolutional nets by fusing
# information from layers with different strides improves segmentation detail",
# its figure 4) and section 5 (pixel accuracy, mean accuracy, mean IU, frequency
# weighted IU, from one confusion matrix); the study notes' evaluation metrics
# (pixel accuracy, mean IoU = intersection over union).
# Run: `python lessons/09_training_and_metrics.py [--step] [--no-figures] [--figures DIR]`.

# %%
import os

# One BLAS thread, unless you choose otherwise: this slim network's matrix products are too small to gain
# from a second thread, and on a busy machine that thread costs a scheduler time slice at every product
# (measured here on 2 shared cores: ~0.23 s per training step with two threads, ~0.025 s with one).
# It must be set before NumPy loads OpenBLAS; in a notebook NumPy is already loaded and this does nothing.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from _common import Lesson, draw_matrix  # noqa: E402  (puts the repo on sys.path, picks a headless backend)

import time  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402

from fcn_scratch import kernels  # noqa: E402
from fcn_scratch.data import CLASS_NAMES, IGNORE_INDEX, to_hwc, toy_shapes  # noqa: E402
from fcn_scratch.metrics import confusion_matrix, scores  # noqa: E402
from fcn_scratch.models import FCN8s, FCN16s, FCN32s, pooled_sizes  # noqa: E402
from fcn_scratch.train import evaluate, fit, predict  # noqa: E402
from fcn_scratch.viz import colorize, comparison_figure  # noqa: E402

lesson = Lesson("09_training_and_metrics", "Training FCN-32s/16s/8s on toy shapes; pixel accuracy and mean IoU")
print(f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']} (set it yourself to override)")
if numba.config.DISABLE_JIT and kernels.get_backend() == "numba":
    # NUMBA_DISABLE_JIT=1 turns the Numba kernels into plain Python loops: hours for this training.
    kernels.set_backend("numpy")
    print("NUMBA_DISABLE_JIT=1: training on the NumPy twins of the kernels instead (same numbers, lesson 10)")
K = len(CLASS_NAMES)
SIZE, N_TRAIN, N_VAL = 64, 128, 48  # 64: FCN-32s gets a 2x2 score map (at 32 it is 1x1, see step 6)
EPOCHS, BATCH, LR = 12, 8, 5e-3
SLIM = dict(widths=(8, 16, 32, 64, 64), convs_per_block=(1, 1, 1, 1, 1), fc_channels=64, dropout=0.0)
THREADS = 1  # fit()'s data-parallel threads, fixed so that the numbers repeat on any machine

# %%
lesson.step("The toy data: shapes on textured backgrounds, and a mask with one class id per pixel")
images, masks = toy_shapes(N_TRAIN, SIZE, seed=0)
val_images, val_masks = toy_shapes(N_VAL, SIZE, seed=1000)  # another seed: images the models never train on
print(f"train: images {images.shape} {images.dtype}, masks {masks.shape} {masks.dtype};  val: {val_images.shape}")
print("classes:", dict(enumerate(CLASS_NAMES)))
freq = np.bincount(masks.ravel(), minlength=K) / masks.size
print("pixel share per class:", {name: f"{100 * f:.1f}%" for name, f in zip(CLASS_NAMES, freq)})
lesson.check(images.shape == (N_TRAIN, 3, SIZE, SIZE) and masks.shape == (N_TRAIN, SIZE, SIZE),
             "images (N, 3, H, W) float32, masks (N, H, W) int")
lesson.check(set(np.unique(masks)) <= set(range(K)) and freq[0] > 0.5,
             "every pixel has a class in [0, 5); background is most of the image")
lesson.check(np.array_equal(toy_shapes(3, SIZE, seed=0)[1], masks[:3]),
             "deterministic: image i depends only on (seed, i)")

fig, axes = plt.subplots(2, 6, figsize=(12, 4.4))
for j in range(6):
    axes[0, j].imshow(to_hwc(images[j]), interpolation="nearest")
    axes[1, j].imshow(colorize(masks[j], K), interpolation="nearest")
    axes[0, j].set_title(f"image {j}", fontsize=9)
    axes[1, j].set_xlabel(", ".join(CLASS_NAMES[k] for k in np.unique(masks[j]) if k), fontsize=8)
for ax in axes.ravel():
    ax.set_xticks([]), ax.set_yticks([])
axes[0, 0].set_ylabel("input"), axes[1, 0].set_ylabel("mask")
fig.suptitle(f"Toy shapes, {SIZE}x{SIZE}: mask colours 1 circle, 2 rectangle, 3 triangle, 4 ring (VOC palette)",
             fontsize=10)
fig.tight_layout()
lesson.save(fig, "toy_data")

# %%
lesson.step("Pixel accuracy and mean IoU by hand, from the confusion matrix (rows = truth, columns = prediction)")
truth = np.array([[0, 0, 0, 0, 0, 0],
                  [0, 1, 1, 0, 0, 0],
                  [0, 1, 1, 0, 2, 2],
                  [0, 0, 0, 0, 2, 2],
                  [0, 0, 0, 0, 2, 2],
                  [0, 0, 0, 0, 255, 255]])  # 255: ignored pixels (e.g. an ambiguous border)
pred = np.array([[0, 0, 0, 0, 0, 0],
                 [0, 1, 1, 1, 0, 0],
                 [0, 1, 0, 0, 2, 2],
                 [0, 0, 0, 0, 2, 0],
                 [0, 0, 0, 2, 2, 0],
                 [0, 0, 0, 0, 1, 1]])
cm = confusion_matrix(truth, pred, 3, ignore_index=IGNORE_INDEX)
print("confusion matrix cm[i, j] = pixels of true class i predicted as j:\n", cm)
n_valid = int((truth != IGNORE_INDEX).sum())
lesson.check(cm.sum() == n_valid == 34, "it counts the 34 non-ignored pixels; the 2 ignored ones count nowhere")
diag, rows, cols = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
pixel_acc = diag.sum() / cm.sum()
iou = diag / (rows + cols - diag)  # intersection / union: |truth_i and pred_i| / |truth_i or pred_i|
print(f"pixel accuracy = trace / total = {diag.sum()} / {cm.sum()} = {pixel_acc:.4f}")
for i in range(3):
    print(f"IoU class {i} = n_ii / (row_i + col_i - n_ii) = {diag[i]} / ({rows[i]} + {cols[i]} - {diag[i]}) "
          f"= {iou[i]:.4f}")
print(f"mean IoU = mean of the 3 = {iou.mean():.4f}")
engine = scores(cm)
lesson.close(engine["pixel_accuracy"], pixel_acc, f"the engine's pixel accuracy {engine['pixel_accuracy']:.4f}")
lesson.close(engine["per_class_iou"], iou, "the engine's per-class IoU")
lesson.close(engine["mean_iou"], iou.mean(), f"the engine's mean IoU {engine['mean_iou']:.4f}")
# Why mean IoU and not pixel accuracy: a 'model' that always answers background scores well on pixels.
lazy = scores(confusion_matrix(truth, np.zeros_like(pred), 3))
print(f"always 'background': pixel accuracy {lazy['pixel_accuracy']:.3f}, mean IoU {lazy['mean_iou']:.3f}")
lesson.check(lazy["pixel_accuracy"] > 0.7 and lazy["mean_iou"] < 0.3,
             f"predicting background everywhere keeps {100 * lazy['pixel_accuracy']:.0f}% pixel accuracy but scores 0 "
             f"IoU on both objects")

fig, axes = plt.subplots(1, 3, figsize=(12, 4))
draw_matrix(axes[0], np.where(truth == 255, -1, truth), "truth (-1 = ignored 255)", fmt="{:.0f}", cmap="Pastel1",
            vmin=-1, vmax=8)
draw_matrix(axes[1], pred, "prediction", fmt="{:.0f}", cmap="Pastel1", vmin=-1, vmax=8)
draw_matrix(axes[2], cm, f"confusion matrix (rows truth, cols prediction)\npixel acc {pixel_acc:.3f}, "
            f"IoU {np.round(iou, 3).tolist()}, mIoU {iou.mean():.3f}", fmt="{:.0f}", cmap="Blues")
axes[2].set_xticks(range(3)), axes[2].set_yticks(range(3))
axes[2].set_xlabel("predicted class"), axes[2].set_ylabel("true class")
fig.tight_layout()
lesson.save(fig, "confusion_matrix")

# %%
lesson.step("Train FCN-32s, FCN-16s, FCN-8s on the same data: same initial backbone, same budget")
print(f"{N_TRAIN} images {SIZE}x{SIZE}, {EPOCHS} epochs, batch {BATCH}, Adam lr {LR} (poly decay); widths "
      f"{SLIM['widths']}, fc {SLIM['fc_channels']}. At {SIZE}x{SIZE} the score map (1/32) is "
      f"{pooled_sizes(SIZE, SIZE)[4]}, pool4 (1/16) {pooled_sizes(SIZE, SIZE)[3]}, pool3 (1/8) "
      f"{pooled_sizes(SIZE, SIZE)[2]}; one 3x3 conv per block keeps the lesson to seconds.")
models, histories, seconds = {}, {}, {}
for name, cls in (("FCN-32s", FCN32s), ("FCN-16s", FCN16s), ("FCN-8s", FCN8s)):
    model = cls(K, **SLIM, seed=0)  # seed 0 for all three: identical backbone weights to start from
    t0 = time.perf_counter()
    histories[name] = fit(model, images, masks, epochs=EPOCHS, batch_size=BATCH, lr=LR, seed=0, optimizer="adam",
                          val_images=val_images, val_masks=val_masks, progress=False, threads=THREADS)
    seconds[name], models[name] = time.perf_counter() - t0, model
    h = histories[name]
    print(f"    {name}: loss {h['loss'][0]:.3f} -> {h['loss'][-1]:.3f}, validation mean IoU "
          f"{h['val_mean_iou'][0]:.3f} -> {h['val_mean_iou'][-1]:.3f}  ({seconds[name]:.1f} s)")
lesson.check(all(h["stopped"] is None and h["loss"][-1] < 0.7 * h["loss"][0] for h in histories.values()),
             "all three trained without diverging, and their training loss fell by more than 30%")
lesson.check(np.array_equal(FCN8s(K, **SLIM, seed=0).conv1_1.weight, FCN32s(K, **SLIM, seed=0).conv1_1.weight),
             "the three started from the same backbone weights (only the decoders differ)")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for name, h in histories.items():
    axes[0].plot(h["epoch"], h["loss"], marker="o", ms=3, label=name)
    axes[1].plot(h["epoch"], h["val_mean_iou"], marker="o", ms=3, label=name)
axes[0].set_ylabel("training loss (cross-entropy)"), axes[1].set_ylabel("validation mean IoU")
for ax in axes:
    ax.set_xlabel("epoch"), ax.grid(alpha=0.3), ax.legend()
fig.tight_layout()
lesson.save(fig, "training_curves")

# %%
lesson.step("Evaluate: one confusion matrix over the whole validation set, then every metric from it")
results = {name: evaluate(model, val_images, val_masks) for name, model in models.items()}
print(f"{'':9s}{'pixel acc':>10s}{'mean acc':>10s}{'mean IoU':>10s}{'fw IoU':>8s}   IoU per class "
      + " ".join(f"{c[:6]:>6s}" for c in CLASS_NAMES))
for name, r in results.items():
    print(f"{name:9s}{r['pixel_accuracy']:10.3f}{r['mean_accuracy']:10.3f}{r['mean_iou']:10.3f}{r['fw_iou']:8.3f}"
          f"                 " + " ".join(f"{v:6.2f}" for v in r["per_class_iou"]))
cm8 = results["FCN-8s"]["confusion_matrix"]
print("FCN-8s confusion matrix (rows truth, columns prediction):\n", cm8)
lesson.check(cm8.sum() == val_masks.size, f"it counts every validation pixel once ({val_masks.size})")
d8 = np.diag(cm8)
lesson.close(results["FCN-8s"]["pixel_accuracy"], d8.sum() / cm8.sum(), "pixel accuracy = trace / total, by hand")
lesson.close(results["FCN-8s"]["mean_iou"], np.mean(d8 / (cm8.sum(0) + cm8.sum(1) - d8)),
             "mean IoU = mean of n_ii / (row_i + col_i - n_ii), by hand")
lesson.check(results["FCN-8s"]["mean_iou"] > results["FCN-32s"]["mean_iou"] + 0.1,
             f"FCN-8s beats FCN-32s in mean IoU by more than 0.1 "
             f"({results['FCN-8s']['mean_iou']:.3f} vs {results['FCN-32s']['mean_iou']:.3f})")
mious = {name: r["mean_iou"] for name, r in results.items()}
lesson.check(mious["FCN-32s"] < mious["FCN-16s"] < mious["FCN-8s"],
             "the finer the skips, the higher the mean IoU: FCN-32s < FCN-16s < FCN-8s "
             f"({mious['FCN-32s']:.3f} < {mious['FCN-16s']:.3f} < {mious['FCN-8s']:.3f})")
# With a 2x2 score map (64/32), FCN-32s can only paint a few smooth blobs; the pool4 and pool3 skips bring
# 4x4 and 8x8 grids of local evidence. The paper saw the same order on PASCAL VOC (mean IU 59.4, 62.4,
# 62.7, its table 2), with a far smaller gap: its images are 500 px, not 64.

# %%
lesson.step("Predictions side by side: image, truth, FCN-32s, FCN-16s, FCN-8s")
show = 5
preds = {name: predict(model, val_images[:show]) for name, model in models.items()}
for name, p in preds.items():
    right = np.mean(p == val_masks[:show])
    print(f"    {name}: {100 * right:.1f}% of the pixels of these {show} images right, classes used "
          f"{sorted(set(np.unique(p).tolist()))}")
lesson.check(all(p.shape == (show, SIZE, SIZE) for p in preds.values()),
             "predict() gives one class id per pixel, (N, H, W), in eval mode")
lesson.check(np.mean(preds["FCN-8s"] == val_masks[:show]) > np.mean(preds["FCN-32s"] == val_masks[:show]),
             "on these images too, FCN-8s gets more pixels right than FCN-32s")
lesson.check((preds["FCN-32s"] > 0).any(), "FCN-32s does place objects (blobs), not background everywhere")
print("Look at the figure: FCN-32s paints a few small blobs and misses many objects (2x2 score cells, each\n"
      "spread by a 64-pixel bilinear hat); FCN-16s one rounded blob per object (4x4 cells); FCN-8s follows\n"
      "corners and separates touching shapes (8x8 cells, one per 8 pixels).")
fig = comparison_figure(val_images[:show], val_masks[:show], preds, CLASS_NAMES, scores=mious)
top = fig.subplotpars.top  # comparison_figure keeps its top margin for the column titles: put ours above them
fig.subplots_adjust(top=top - 0.04)
fig.suptitle(f"Validation images (never trained on); {EPOCHS} epochs on {N_TRAIN} images of {SIZE}x{SIZE}",
             fontsize=10, y=0.995, va="top")
lesson.save(fig, "fcn32_16_8_side_by_side")
print("""The full comparison (64x64 images, 480 of them, the 'tiny' preset, 14 epochs of Adam; minutes, not
seconds), with the paper's table columns (pixel acc., mean acc., mean IU, f.w. IU) and this figure:
    fcn-scratch compare            (or: python -m fcn_scratch compare --epochs 30 --out runs/compare)""")

# %%
lesson.step("Why not 32x32: there FCN-32s's score map is 1x1 -- one score vector for the whole image")
# On a 32x32 input, pool5 and score_fr are 1x1: ONE vector s of K class scores for the whole image. upscore32
# (k64 s32 p16) stamps its kernel once, scaled by s, and keeps rows/columns 16..47 of the stamp:
#     logits[o, y, x] = sum_c s[c] * W[c, o, 16 + y, 16 + x] + b[o].
# The image decides only the K numbers s; WHERE each class wins is fixed by the kernel, the same for every
# image. With the bilinear kernel (FCN's initialisation: W[c, c] = one positive hat, 0 off the diagonal,
# b = 0) every pixel is s times a positive number, so one class wins everywhere; a learned kernel can at
# most add a smooth blur, in the same place for every image. Nothing in the image can be placed.
fcn32 = models["FCN-32s"].eval()
small = np.ascontiguousarray(val_images[:show, :, :32, :32])  # the top-left 32x32 of each validation image
h = small
for b in range(1, 6):
    h = fcn32._block_forward(b, h)
score = fcn32._head_forward(h)  # (N, K, 1, 1)
logits = fcn32.forward(small)
W, bias = fcn32.upscore32.weight, fcn32.upscore32.bias  # (K, K, 64, 64), (K,)
stamped = np.einsum("nc,cokl->nokl", score[:, :, 0, 0], W[:, :, 16:48, 16:48]) + bias[:, None, None]
print(f"32x32 input: pool5 {h.shape[2:]}, score map {score.shape[2:]}, logits {logits.shape}")
lesson.check(score.shape[2:] == (1, 1) and pooled_sizes(32, 32)[4] == (1, 1),
             "at 32x32 the score map is 1x1: one score vector per image")
lesson.close(logits, stamped, "the logits are sum_c s[c] W[c] + b: the image enters only through its K scores",
             rtol=1e-4, atol=1e-4 * float(np.abs(logits).max()))
bilinear32 = FCN32s(K, **SLIM, seed=0).eval()  # the same trained weights, upscore32 back at its bilinear init
bilinear32.load_state_dict({k: v for k, v in fcn32.state_dict().items() if not k.startswith("upscore32")} |
                           {k: v for k, v in bilinear32.state_dict().items() if k.startswith("upscore32")})
painted = predict(bilinear32, small)
print("classes painted on each 32x32 image, bilinear upscore32:", [np.unique(p).tolist() for p in painted])
print("classes painted on each 32x32 image, learned upscore32: ",
      [np.unique(p).tolist() for p in predict(fcn32, small)])
lesson.check(all(np.unique(p).size == 1 for p in painted),
             "with the bilinear upsampler, FCN-32s on a 32x32 image paints ONE class over every pixel")
print("So at 32x32 FCN-32s can only answer 'which class dominates this image' (and, trained on mostly-background\n"
      "images, that is background). At 64x64 its 2x2 score cells let it put a blob in each quadrant (step 5).")

# %%
lesson.done(summary=[
    "Pixel accuracy and mean IoU from the engine's confusion matrix equal the hand computation.",
    "Predicting background everywhere keeps a high pixel accuracy but a low mean IoU.",
    "Trained from the same backbone on the same budget at 64x64, mean IoU rises with every skip: FCN-32s < "
        "FCN-16s < FCN-8s.",
    "At 32x32, FCN-32s's logits are one score vector stamped through the upsampler's kernel: it cannot place "
        "anything.",
], exercises=["mean_iou"])

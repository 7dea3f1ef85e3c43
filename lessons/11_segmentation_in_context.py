# %% [markdown]
# # Lesson 11: segmentation in context -- detection, instances, and the rest of the seeds
#
# The seed notes place FCN among its neighbours: classification with
# localization, object detection (sliding windows, non-max suppression, mAP,
# YOLO), semantic and instance segmentation (Mask R-CNN); they mention
# depthwise, 1-D and 3-D convolutions, encoder-decoder networks and
# super-resolution, torchvision's `FCNHead`, and a list of hyper-parameters to
# explore. Detection is not part of this engine, so the few lines it needs
# (box IoU, NMS, AP) are written here, in the lesson; everything that is a
# layer comes from `fcn_scratch`. This lesson
#
# 1. separates **semantic** from **instance** segmentation on a toy mask: two
#    touching discs are one semantic region and two instances (Mask R-CNN's
#    per-object class, box and mask),
# 2. writes a **bounding box as 4 numbers** (classification & localization),
# 3. shows that **box IoU** is the segmentation IoU of the two rasterised boxes
#    (`fcn_scratch.metrics`), and why IoU, not MSE, judges a box,
# 4. runs the seed's flower detector (5 class probabilities, an **objectness**
#    score, 4 box numbers) as one FCN pass over a 448 image: 8x8 cells,
# 5. removes duplicate detections with **non-max suppression** (threshold, IoU > 0.6),
# 6. computes **precision/recall**, **AP**, **mAP@0.5** and COCO's **mAP@[0.5:0.05:0.95]**,
# 7. builds **YOLO**'s output grid with a 1x1 `Conv2d`: 5 boxes per cell, cell-relative
#    coordinates, **anchor boxes** from k-means, several input scales,
# 8. expresses **depthwise convolution** (`tf.nn.depthwise_conv2d`) with the engine's
#    `Conv2d` and counts what it saves,
# 9. runs **Conv1D** and **Conv3D** with the engine's 2-D convolution,
# 10. measures **receptive fields** (why VGG pools and stacks 3x3 convolutions),
# 11. reads FCN as an **encoder-decoder**, and U-Net's concatenation as a
#     generalisation of FCN's sum,
# 12. does **super-resolution** (초해상도) with nearest, bilinear and a trained transposed conv,
# 13. traces torchvision's **FCNHead** (3x3 conv, BatchNorm, ReLU, Dropout(0.1), 1x1 conv),
# 14. sorts parameters from **hyper-parameters** and maps the seed's list to the engine.
#
# Seed notes: `004_*.txt` ("Classification & localization", "IoU", "Object
# detection", non-max suppression, the flower example, "YOLO", "mAP", "Semantic
# segmentation", "encoder-decoder network", super-resolution, Conv1D/Conv3D,
# `tf.nn.depthwise_conv2d`, "Instance segmentation", Mask R-CNN), `000_*.txt`
# (FCNHead; "하이퍼 파라미터"; "사용할 하이퍼파라미터/손 대볼곳"; image vs instance
# segmentation), `001_*.txt` ("U-Net(FCN)"; shallow = local, deep = global),
# `002_*.txt` (pooling and the receptive field), `003_*.txt` (detection vs
# segmentation; VGG's stacked 3x3 convs; encoder & decoder, receptive field).
# Run: `python lessons/11_segmentation_in_context.py [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import Lesson  # first: puts the repo on sys.path, picks a headless backend

import matplotlib.pyplot as plt
import numba
import numpy as np
from matplotlib.patches import Rectangle
from scipy import ndimage, signal

from fcn_scratch import kernels
from fcn_scratch.convolutionalize import Linear, dense_to_conv
from fcn_scratch.data import CLASS_NAMES, denormalize, to_hwc, toy_shapes
from fcn_scratch.functional import conv2d_forward
from fcn_scratch.init import bilinear_weight
from fcn_scratch.layers import Conv2d, ConvTranspose2d, Dropout2d, ReLU
from fcn_scratch.metrics import confusion_matrix, scores
from fcn_scratch.models import TINY, UPSAMPLERS, VGG16_CONVS, VGG16_WIDTHS, FCN8s, FCN16s, FCN32s, pooled_sizes
from fcn_scratch.optim import Adam
from fcn_scratch.train import fit
from fcn_scratch.upsample import BilinearUpsample, NearestUpsample
from fcn_scratch.viz import colorize

lesson = Lesson("11_segmentation_in_context",
                "Segmentation in context: detection, instances, and the rest of the seeds")
if numba.config.DISABLE_JIT and kernels.get_backend() == "numba":
    # NUMBA_DISABLE_JIT=1 turns the Numba kernels into plain Python loops: minutes for step 13's big layer.
    kernels.set_backend("numpy")
    print("NUMBA_DISABLE_JIT=1: running on the NumPy twins of the kernels instead (same numbers, lesson 10)")
rng = np.random.default_rng(11)
f64 = dict(dtype=np.float64)


def box_of(region):
    """Bounding box ``(y0, x0, y1, x1)`` of a boolean mask, in pixel edges: rows y0..y1-1, columns x0..x1-1."""
    ys, xs = np.nonzero(region)
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


def area(box):
    return (box[2] - box[0]) * (box[3] - box[1])


def box_iou(a, b):
    """IoU of two boxes ``(y0, x0, y1, x1)``: intersection area / union area (교집합/합집합)."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / (area(a) + area(b) - inter)


def to_centre(box):
    """``(y0, x0, y1, x1)`` -> the seed's 4 numbers ``(x, y, h, w)``: centre column, centre row, height, width."""
    y0, x0, y1, x1 = box
    return (x0 + x1) / 2, (y0 + y1) / 2, y1 - y0, x1 - x0


def to_corners(x, y, h, w):
    return y - h / 2, x - w / 2, y + h / 2, x + w / 2


def draw_box(ax, box, color, lw=2, **kw):
    """Outline a box on an ``imshow`` picture (pixel centres at integers, so edges at -0.5)."""
    y0, x0, y1, x1 = box
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=color, lw=lw, **kw))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def bare(ax):
    ax.set_xticks([]), ax.set_yticks([])


def paint(ids):
    """Object ids ``(H, W)`` -> RGB: 0 light grey, id k the k-th colour of matplotlib's tab10 (from orange on)."""
    colours = np.array([(0.92, 0.92, 0.92)] + [plt.cm.tab10(k)[:3] for k in range(1, 10)])
    return colours[ids]


# %%
lesson.step("Semantic vs instance segmentation (시맨틱 분할 vs 인스턴스 분할): touching discs are one region")
# One toy image holding a single disc, with room on its right: we copy the disc twice, once touching it.
images, masks = toy_shapes(40, (64, 128), seed=11, max_shapes=1)
pick = next(i for i, m in enumerate(masks) if set(np.unique(m)) == {0, 1} and box_of(m == 1)[3] <= 50)
image, mask = to_hwc(images[pick]), masks[pick]
disc = mask == 1
y0, x0, y1, x1 = box_of(disc)
w = x1 - x0
scene, semantic = image.copy(), mask.copy()
instances = disc.astype(np.int64)  # instance id per pixel: 0 background, 1, 2, 3 the discs
for k, dx in ((2, w), (3, 124 - x1)):  # disc 2 starts where disc 1 ends (they touch); disc 3 far right
    moved = np.zeros_like(disc)
    moved[:, x0 + dx : x1 + dx] = disc[:, x0:x1]
    scene[moved] = image[disc]  # same rows, same order: the disc's own pixels, pasted
    semantic[moved], instances[moved] = 1, k
print(f"scene {semantic.shape}: semantic mask holds classes {np.unique(semantic).tolist()} "
      f"({', '.join(CLASS_NAMES[c] for c in np.unique(semantic))}); instance map holds ids "
      f"{np.unique(instances).tolist()}")
lesson.check(np.array_equal(semantic, np.where(instances > 0, 1, 0)),
             "the semantic mask is the instance map with the ids forgotten: every disc pixel just says 'circle'")
components, n_components = ndimage.label(semantic == 1)  # 4-connected regions of the class
print(f"connected regions of class 'circle' (scipy.ndimage.label): {n_components};  instances: {instances.max()}")
lesson.check(n_components == 2 and instances.max() == 3,
             "3 discs but 2 connected regions: the touching pair is one blob (the seed's bicycles)")
lesson.check(np.array_equal(components == components[instances == 3][0], instances == 3),
             "the disc that touches nothing is recovered exactly as one region; only touching instances are "
             "lost in the semantic mask")
# Mask R-CNN's output: for every object a class, a bounding box, and a pixel mask inside that box.
objects = []
for k in range(1, instances.max() + 1):
    b = box_of(instances == k)
    objects.append((1, b, (instances == k)[b[0] : b[2], b[1] : b[3]]))
    print(f"  instance {k}: class {CLASS_NAMES[1]!r}, box (y0, x0, y1, x1) = {b}, mask {objects[-1][2].shape}")
rebuilt = np.zeros_like(semantic)
for cls, b, m in objects:
    rebuilt[b[0] : b[2], b[1] : b[3]][m] = cls
lesson.check(np.array_equal(rebuilt, semantic),
             "pasting each (class, box, mask) back gives the semantic mask: instance -> semantic loses the ids")
print("The five tasks, by output: classification 1 label per image; classification + localization 1 label + "
      "4 box numbers;\nobject detection (class, box, score) per object; semantic segmentation a class per pixel "
      "(H, W);\ninstance segmentation an object per pixel: here (class, box, mask) per object, as Mask R-CNN.")

fig, axes = plt.subplots(2, 3, figsize=(13, 4.6))
axes[0, 0].imshow(image)
draw_box(axes[0, 0], box_of(disc), "white")
axes[0, 0].set_title("classification: 'circle'\n+ localization: one box (4 numbers)", fontsize=9)
axes[0, 1].imshow(scene)
for _, b, _ in objects:
    draw_box(axes[0, 1], b, "white")
axes[0, 1].set_title("object detection: a box and a class per object", fontsize=9)
axes[0, 2].imshow(colorize(semantic, len(CLASS_NAMES)))
axes[0, 2].set_title("semantic segmentation: a class per pixel\n(all three discs are 'circle')", fontsize=9)
axes[1, 0].imshow(paint(instances), interpolation="nearest")
axes[1, 0].set_title("instance segmentation: an object id per pixel (3)", fontsize=9)
axes[1, 1].imshow(paint(components), interpolation="nearest")
axes[1, 1].set_title(f"connected regions of the semantic mask: {n_components}\n(the touching pair merges)",
                     fontsize=9)
strip = np.concatenate([np.pad(m.astype(float), 2, constant_values=0.5) for _, _, m in objects], axis=1)
axes[1, 2].imshow(strip, cmap="Greys_r", vmin=0, vmax=1, interpolation="nearest")
axes[1, 2].set_title("Mask R-CNN style: per object a class, a box,\nand a mask inside the box (3 crops)", fontsize=9)
for ax in axes.ravel():
    bare(ax)
fig.tight_layout()
lesson.save(fig, "tasks")

# %%
lesson.step("Classification & localization (분류 & 위치추정): a bounding box is 4 numbers (x, y, h, w)")
box = box_of(disc)
x, y, h, w = to_centre(box)
print(f"the disc's box: corners (y0, x0, y1, x1) = {box}  ->  centre x = {x}, centre y = {y}, height {h}, width {w}")
lesson.check(to_corners(x, y, h, w) == box, "corners and (centre x, centre y, height, width) carry the same 4 numbers")
# Move the object: the class label stays, the box moves with it, the mask moves with it.
dy, dx = -6, 30
moved_mask = np.roll(mask, (dy, dx), axis=(0, 1))
lesson.check(set(np.unique(moved_mask)) == set(np.unique(mask)) and (moved_mask == 1).sum() == disc.sum(),
             "the classification answer is translation-invariant: the moved disc is still one 'circle' "
             "(003's 'transition invarience')")
lesson.check(to_centre(box_of(moved_mask == 1)) == (x + dx, y + dy, h, w),
             f"the localization and segmentation answers move with it: the box centre by ({dx}, {dy}), "
             f"its size stays")
# The seed's localization model: features, global average pooling, a dense layer with 4 units, MSE loss.
features = ReLU().forward(Conv2d(3, 16, 3, stride=2, **f64, seed=2).forward(images[pick : pick + 1].astype(np.float64)))
pooled = features.mean(axis=(2, 3))  # global average pooling: (N, C, H, W) -> (N, C)
regressor = Linear(16, 4, **f64, seed=3)
pred = regressor.forward(pooled)
target = np.array([[x, y, h, w]])
mse = float(((pred - target) ** 2).mean())
print(f"features {features.shape} -> global average pool {pooled.shape} -> Linear(16, 4) -> {pred.shape}; "
      f"untrained MSE to the target box: {mse:.1f}")
lesson.check(pred.shape == (1, 4) and pooled.shape == (1, 16),
             "global average pooling + Linear(16, 4): the 4 box numbers, a regression to train with the MSE loss")
print("The hard part, says the seed, is the labels: someone must draw a box around every object of thousands of "
      "images.")

# %%
lesson.step("Box IoU is the segmentation IoU of the two rasterised boxes; IoU, not MSE, judges a box")


def raster(b, shape=(64, 128)):
    m = np.zeros(shape, dtype=np.int64)
    m[b[0] : b[2], b[1] : b[3]] = 1
    return m


truth_box, pred_box = box, (box[0] + 4, box[1] - 6, box[2] + 7, box[3] - 3)
iou_coords = box_iou(truth_box, pred_box)
cm = confusion_matrix(raster(truth_box), raster(pred_box), 2, ignore_index=None)
iou_pixels = scores(cm)["per_class_iou"][1]
print(f"truth {truth_box}, prediction {pred_box}")
print(f"from coordinates: intersection / union = {iou_coords:.4f}")
print(f"confusion matrix of the two box masks (rows truth, cols prediction):\n{cm}\n"
      f"segmentation IoU of class 1 = cm[1,1] / (cm[1,1] + cm[1,0] + cm[0,1]) = {iou_pixels:.4f}")
lesson.close(iou_pixels, iou_coords, "box IoU from 4 coordinates = IoU of the two box masks "
                                     "(fcn_scratch.metrics, the segmentation metric)")


def random_box():
    (ya, yb), (xa, xb) = np.sort(rng.integers(0, 64, 2)), np.sort(rng.integers(0, 128, 2))
    return int(ya), int(xa), int(yb) + 1, int(xb) + 1


pairs = []
for _ in range(50):
    a, b = random_box(), random_box()
    pairs.append((box_iou(a, b), scores(confusion_matrix(raster(a), raster(b), 2, ignore_index=None))
                  ["per_class_iou"][1]))
pairs = np.array(pairs)
lesson.close(pairs[:, 0], pairs[:, 1], f"the same on 50 random box pairs ({int((pairs[:, 0] > 0).sum())} overlap, "
                                       f"the others give 0 both ways)")
# Why not MSE on the 4 numbers: the same 4-pixel error is a near miss for a big box, a disaster for a small one.
small, big = (20, 20, 28, 28), (20, 20, 60, 60)
small_pred, big_pred = (20, 24, 28, 32), (20, 24, 60, 64)  # both moved 4 pixels right
mse_small = np.mean((np.array(to_centre(small_pred)) - to_centre(small)) ** 2)
mse_big = np.mean((np.array(to_centre(big_pred)) - to_centre(big)) ** 2)
iou_small, iou_big = box_iou(small, small_pred), box_iou(big, big_pred)
print(f"8x8 box moved 4 px: MSE {mse_small}, IoU {iou_small:.3f};  40x40 box moved 4 px: MSE {mse_big}, "
      f"IoU {iou_big:.3f}")
lesson.check(mse_small == mse_big and iou_small < 0.4 < 0.8 < iou_big,
             "equal MSE, very different overlap: IoU measures what a box is for (the seed: 'a better metric')")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), gridspec_kw={"width_ratios": [1.45, 1, 1]})
overlap = raster(truth_box) + 2 * raster(pred_box)  # 1 truth only, 2 prediction only, 3 both
axes[0].imshow(overlap, cmap=plt.matplotlib.colors.ListedColormap(["white", "tab:blue", "tab:orange", "tab:green"]),
               vmin=-0.5, vmax=3.5, interpolation="nearest")
axes[0].set_xlim(5.5, 75.5), axes[0].set_ylim(63.5, 15.5)  # the part of the 64x128 canvas with the boxes
axes[0].set_title(f"truth only (blue), prediction only (orange), both (green)\nIoU = green / all coloured = "
                  f"{cm[1, 1]} / {cm[1, 1] + cm[1, 0] + cm[0, 1]} = {iou_coords:.3f}", fontsize=9)
for ax, (t, p, iou, name) in zip(axes[1:], ((small, small_pred, iou_small, "8x8"), (big, big_pred, iou_big, "40x40"))):
    ax.imshow(np.zeros((80, 80)), cmap="Greys", vmin=0, vmax=1)
    draw_box(ax, t, "tab:blue")
    draw_box(ax, p, "tab:orange", ls="--")
    ax.set_title(f"{name} box, prediction 4 px right\nMSE {mse_small:.0f}, IoU {iou:.2f}", fontsize=9)
for ax in axes:
    bare(ax)
fig.tight_layout()
lesson.save(fig, "box_iou")

# %%
lesson.step("The seed's flower detector as one FCN pass: 10 numbers per cell, a 448 image gives 8x8 cells")
# 004: a classifier-localizer outputs 10 numbers: 0-4 class probabilities (softmax), 5 objectness (logistic),
# 6-9 the box. Its dense layer over the 7x7 bottleneck map becomes a 7x7 conv (lesson 01), so a 448 image
# (a 14x14 map) gives an 8x8 grid of such 10-vectors in one pass.
C = 32  # channels of the bottleneck map (a stand-in for a real backbone's)
dense = Linear(C * 7 * 7, 10, **f64, seed=4)
detector = dense_to_conv(dense.weight, dense.bias, (C, 7, 7))
map224, map448 = rng.standard_normal((1, C, 7, 7)), rng.standard_normal((1, C, 14, 14))
out224, out448 = detector.forward(map224), detector.forward(map448)
print(f"224 image: map {map224.shape} -> {out224.shape};   448 image: map {map448.shape} -> {out448.shape}")
lesson.close(out224[:, :, 0, 0], dense.forward(map224.reshape(1, -1)), "on a 224 image it is the dense layer")
lesson.close(out448[:, :, 3, 5], dense.forward(map448[:, :, 3:10, 5:12].reshape(1, -1)),
             "on a 448 image cell (3, 5) is the dense layer on window (3, 5): 64 windows, one pass")


def decode_flower(out):
    """(1, 10, S, S) raw outputs -> class probabilities (S, S, 5), objectness (S, S), box numbers (S, S, 4)."""
    z = out[0].transpose(1, 2, 0)
    e = np.exp(z[..., :5] - z[..., :5].max(axis=-1, keepdims=True))  # softmax, max subtracted (lesson 07)
    return e / e.sum(axis=-1, keepdims=True), sigmoid(z[..., 5]), z[..., 6:]


probs, objectness, boxes = decode_flower(out448)
print(f"decoded: class probabilities {probs.shape}, objectness {objectness.shape}, box numbers {boxes.shape}")
lesson.check(np.allclose(probs.sum(axis=-1), 1) and ((objectness > 0) & (objectness < 1)).all(),
             "every cell: 5 class probabilities summing to 1, an objectness score in (0, 1), 4 raw box numbers")
# The objectness output is trained as a binary classifier: sigmoid + binary cross-entropy, gradient sigmoid(z) - t.
z0, t0, eps = rng.standard_normal(5), np.array([1.0, 0.0, 1.0, 1.0, 0.0]), 1e-6


def bce(z):
    p = sigmoid(z)
    return -(t0 * np.log(p) + (1 - t0) * np.log(1 - p))


lesson.close((bce(z0 + eps) - bce(z0 - eps)) / (2 * eps), sigmoid(z0) - t0,
             "objectness: binary cross-entropy of sigmoid(z) has gradient sigmoid(z) - target (central "
             "differences)", rtol=1e-7, atol=1e-9)
n_runs = sum((14 - p + 1) ** 2 for p in range(7, 15))
print(f"The old way (004): run the CNN on every p x p window of the 14x14 grid, then p+1 x p+1, ...: "
      f"{n_runs} runs for p = 7..14; the FCN does all {(14 - 7 + 1) ** 2} windows of one size in a single pass.")

# %%
lesson.step("Non-max suppression: drop low objectness, keep the best box, remove boxes with IoU > 0.6, repeat")


def nms(boxes, score, score_threshold=0.5, iou_threshold=0.6):
    """Indices of the boxes kept by greedy non-max suppression (004's three steps), best first."""
    order = [i for i in np.argsort(-score, kind="stable") if score[i] >= score_threshold]  # 1. objectness
    keep = []
    while order:  # 3. until no box is left
        best = order.pop(0)  # 2. the highest objectness ...
        keep.append(best)
        order = [i for i in order if box_iou(boxes[best], boxes[i]) <= iou_threshold]  # ... removes its overlaps
    return keep


truths = [b for _, b, _ in objects]  # the three discs of step 1
cands, cand_score, cand_owner = [], [], []
for k, t in enumerate(truths):  # a sliding-window detector fires several times on each object
    for _ in range(5):
        cands.append(tuple(int(v) for v in np.array(t) + rng.integers(-1, 2, 4)))
        cand_score.append(rng.uniform(0.6, 0.95))
        cand_owner.append(k)
for _ in range(4):  # and a few windows on background, with low objectness
    y_, x_ = int(rng.integers(0, 40)), int(rng.integers(0, 100))
    cands.append((y_, x_, y_ + 20, x_ + 20))
    cand_score.append(rng.uniform(0.05, 0.3))
    cand_owner.append(-1)
cand_score, cand_owner = np.array(cand_score), np.array(cand_owner)
kept = nms(cands, cand_score)
print(f"{len(cands)} candidate boxes -> NMS (objectness >= 0.5, suppress IoU > 0.6) -> {len(kept)} kept: "
      f"{[cands[i] for i in kept]}")
same = [box_iou(cands[i], cands[j]) for i in range(len(cands)) for j in range(i)
        if cand_owner[i] == cand_owner[j] >= 0]
print(f"IoU between two boxes on the same disc: {min(same):.2f} .. {max(same):.2f}")
lesson.check(sorted(cand_owner[kept].tolist()) == [0, 1, 2],
             "one box per disc survives, and no background box (their objectness is below the threshold)")
lesson.check(all(box_iou(cands[i], cands[j]) <= 0.6 for i in kept for j in kept if i != j),
             "no two kept boxes overlap by more than IoU 0.6 -- not even the touching pair's")
lesson.check(all(cand_score[i] < 0.5 or any(box_iou(cands[i], cands[j]) > 0.6 and cand_score[j] > cand_score[i]
                                            for j in kept) for i in range(len(cands)) if i not in kept),
             "every removed box was either below the threshold or overlapped a better kept box by IoU > 0.6")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
for ax, which, title in ((axes[0], range(len(cands)), f"{len(cands)} candidates (line width ~ objectness)"),
                         (axes[1], kept, f"after non-max suppression: {len(kept)} boxes")):
    ax.imshow(scene)
    for i in which:
        draw_box(ax, cands[i], "white" if cand_owner[i] >= 0 else "tab:cyan", lw=0.5 + 2.5 * cand_score[i])
        if ax is axes[1] or cand_owner[i] < 0:
            ax.text(cands[i][1], cands[i][0] - 1.5, f"{cand_score[i]:.2f}", color="white", fontsize=8)
    ax.set_title(title, fontsize=10)
    bare(ax)
fig.tight_layout()
lesson.save(fig, "nms")

# %%
lesson.step("Precision/recall, AP (the seed's 11 recall points), mAP@0.5, and COCO's mAP@[0.5:0.05:0.95]")


def average_precision(detections, truth_boxes, iou_threshold):
    """AP of one class. detections: [(score, image, box)]; truth_boxes: {image: [box, ...]}.

    Best score first, a detection is a true positive if its best-overlapping truth box (same image) has
    IoU >= iou_threshold and was not matched before; otherwise a false positive. AP = the mean over recall
    r = 0, 0.1, ..., 1 of the highest precision reached at a recall >= r (0 if none).
    """
    used = {img: [False] * len(b) for img, b in truth_boxes.items()}
    hits = []
    for _, img, b in sorted(detections, key=lambda d: -d[0]):
        ious = [box_iou(b, t) for t in truth_boxes.get(img, [])]
        j = int(np.argmax(ious)) if ious else -1
        hit = j >= 0 and ious[j] >= iou_threshold and not used[img][j]
        if hit:
            used[img][j] = True
        hits.append(hit)
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    recall = tp / sum(len(b) for b in truth_boxes.values())
    ap = np.mean([precision[recall >= r].max() if (recall >= r).any() else 0.0 for r in np.linspace(0, 1, 11)])
    return ap, precision, recall, hits


def shifted(t, d):
    """Truth box t moved d pixels right: for a box w wide, IoU = (w - d) / (w + d)."""
    return (t[0], t[1] + d, t[2], t[3] + d)


g = [(10, 10, 30, 30), (10, 50, 30, 70), (40, 10, 60, 30), (40, 50, 60, 70)]  # 20x20 truth boxes
truth_circle = {0: g[:2], 1: g[2:]}  # class 'circle': 4 objects in 2 images
det_circle = [(0.95, 0, shifted(g[0], 0)),  # IoU 1
              (0.90, 0, shifted(g[0], 2)),  # a duplicate of the same object: false positive
              (0.80, 0, shifted(g[1], 4)),  # IoU 16/24 = 0.67
              (0.70, 1, shifted(g[2], 2)),  # IoU 18/22 = 0.82
              (0.60, 1, shifted(g[3], 12))]  # IoU 8/32 = 0.25: the wrong place; object 4 is never found
truth_rect = {0: [(5, 5, 45, 25)]}
det_rect = [(0.85, 0, (5, 6, 45, 26))]  # IoU 19/21 = 0.90
ap, precision, recall, hits = average_precision(det_circle, truth_circle, 0.5)
print("class 'circle' at IoU >= 0.5, detections by score:")
for (sc, _, _), hit, p, r in zip(sorted(det_circle, key=lambda d: -d[0]), hits, precision, recall):
    print(f"    score {sc:.2f}: {'TP' if hit else 'FP'}   precision {p:.3f}   recall {r:.2f}")
lesson.check(hits == [True, False, True, True, False], "TP, FP (duplicate), TP, TP, FP (IoU 0.25)")
lesson.check(precision[2] > precision[1] and recall[2] > recall[1],
             "precision can rise while recall rises (1/2 -> 2/3 -> 3/4): the seed's reason to take the best "
             "precision at recall >= r")
# By hand: best precision at recall >= 0, 0.1, 0.2 is 1; at 0.3 .. 0.7 it is 3/4; at 0.8 .. 1.0 there is none.
lesson.close(ap, (3 * 1 + 5 * 0.75 + 3 * 0) / 11, f"AP('circle') = (3 x 1 + 5 x 3/4 + 3 x 0) / 11 = {ap:.4f}")
ap_rect = average_precision(det_rect, truth_rect, 0.5)[0]
map50 = (ap + ap_rect) / 2
lesson.close(map50, (6.75 / 11 + 1) / 2, f"mAP@0.5 = mean over the 2 classes of AP = ({ap:.4f} + {ap_rect:.0f}) / 2 = "
                                         f"{map50:.4f} (PASCAL VOC)")
thresholds = np.round(np.arange(0.5, 0.951, 0.05), 2)
ap_by_t = np.array([[average_precision(d, t, th)[0] for th in thresholds]
                    for d, t in ((det_circle, truth_circle), (det_rect, truth_rect))])
print("AP per IoU threshold", thresholds.tolist(), "\n    circle:", np.round(ap_by_t[0], 4).tolist(),
      "\n    rectangle:", ap_by_t[1].tolist())
coco = float(ap_by_t.mean())
lesson.check(len(thresholds) == 10 and ap_by_t[0, 0] == ap, "COCO's thresholds 0.5, 0.55, ..., 0.95: ten of them")
# By hand: from 0.7 the 0.67 box is a miss (AP 4.5/11), from 0.85 the 0.82 one too (3/11); the rectangle's 0.90
# box fails only at 0.95.
lesson.close(coco, ((4 * 6.75 + 3 * 4.5 + 3 * 3) / 110 + 9 / 10) / 2,
             f"COCO's mAP = mean over classes of the mean AP over the ten thresholds = {coco:.4f}")
lesson.check(coco < map50, f"mAP@[0.5:0.05:0.95] = {coco:.4f} < mAP@0.5 = {map50:.4f}: strict thresholds turn "
                           f"loosely placed boxes into false positives")
# The seed's other summary, the area under the precision/recall curve (AUC): taken under the envelope of best
# precisions it is the 'all points' AP of later PASCAL VOC rounds (COCO samples 101 recall points instead).
envelope_area = sum((recall[i] - (recall[i - 1] if i else 0.0)) * precision[i:].max() for i in range(len(recall)))
print(f"area under the envelope of best precisions (all-points AP): {envelope_area:.4f};  11-point AP: {ap:.4f}")
lesson.close(envelope_area, 0.25 * 1 + 0.25 * 0.75 + 0.25 * 0.75, "area under the curve, by hand: recall steps of "
                                                                     "0.25 at precision 1, 3/4, 3/4 = 0.625")

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(recall, precision, "o-", color="tab:blue", label="precision, recall after each detection")
levels = np.linspace(0, 1, 11)
interp = [precision[recall >= r].max() if (recall >= r).any() else 0.0 for r in levels]
ax.step(levels, interp, where="mid", color="tab:orange", label="best precision at recall >= r (11 points)")
ax.plot(levels, interp, "s", color="tab:orange")
ax.set_xlabel("recall"), ax.set_ylabel("precision"), ax.set_ylim(-0.05, 1.05)
ax.set_title(f"class 'circle', IoU >= 0.5: AP = mean of the 11 orange points = {ap:.3f}", fontsize=10)
ax.legend(fontsize=8, loc="lower left")
ax.grid(alpha=0.3)
lesson.save(fig, "pr_curve")

# %%
lesson.step("YOLO's output grid is an FCN: a 1x1 conv gives S x S x (5 boxes x 5 + 20 classes) = 45 per cell")
# YOLO (2015) -> YOLOv2 (2016) -> YOLOv3 (2018) -> YOLOv4, YOLOv5 (2020): 'You Only Look Once', one FCN pass.
# A 416 image through a stride-32 backbone is a 13x13 map; a 1x1 conv predicts every cell's numbers at once.
grid = pooled_sizes(416, 416)[-1]
feat = rng.standard_normal((1, 64, *grid))
B, K_VOC = 5, 20  # boxes per cell, PASCAL VOC's classes
yolo_head = Conv2d(64, B * 5 + K_VOC, 1, **f64, seed=7)
out = yolo_head.forward(feat)
print(f"416 image -> backbone map {feat.shape} -> 1x1 conv -> {out.shape}: 5 x (x, y, w, h, objectness) + 20 "
      f"class scores per cell")
lesson.check(grid == (13, 13) and out.shape == (1, 45, 13, 13) and 45 == K_VOC + B * 4 + B,
             "45 numbers per cell = 20 class probabilities + 5 boxes x 4 coordinates + 5 objectness scores")
# Coordinates relative to the cell: centre = (cell index + sigmoid(t)) * stride, so it cannot leave its cell.
t = out[0, : B * 5].reshape(B, 5, *grid)  # (box, [tx, ty, tw, th, to], row, column)
rows, cols = np.mgrid[0 : grid[0], 0 : grid[1]]
cx, cy = (cols + sigmoid(t[:, 0])) * 32, (rows + sigmoid(t[:, 1])) * 32
lesson.check(np.array_equal(np.floor(cx / 32), np.broadcast_to(cols, cx.shape)) and
             np.array_equal(np.floor(cy / 32), np.broadcast_to(rows, cy.shape)),
             "every decoded box centre lies inside its own cell: (0, 0) = the cell's top-left, (1, 1) its "
             "bottom-right")
# Anchor boxes: the network predicts log scale factors of a prior box. The seed's example:
anchor_h, anchor_w, th, tw = 100, 50, np.log(1.5), np.log(0.9)
print(f"anchor {anchor_h} x {anchor_w}, predicted log-scales ({th:.3f}, {tw:.3f}) -> box "
      f"{anchor_h * np.exp(th):.0f} x {anchor_w * np.exp(tw):.0f}")
lesson.close((anchor_h * np.exp(th), anchor_w * np.exp(tw)), (150, 45),
             "a 100 x 50 anchor scaled 1.5 vertically and 0.9 horizontally is a 150 x 45 box")
# The anchors themselves: k-means (k = 5) on the heights and widths of the training boxes.
img64, train_masks = toy_shapes(300, 64, seed=5, max_shapes=1)  # one shape per image: its box is the object's
hw = np.array([[b[2] - b[0], b[3] - b[1]] for b in (box_of(m > 0) for m in train_masks)], dtype=np.float64)
centres = hw[rng.choice(len(hw), B, replace=False)]
costs = []
for _ in range(100):
    d2 = ((hw[:, None, :] - centres[None]) ** 2).sum(axis=-1)
    assign = d2.argmin(axis=1)
    costs.append(d2[np.arange(len(hw)), assign].sum())
    new = np.array([hw[assign == k].mean(axis=0) if (assign == k).any() else centres[k] for k in range(B)])
    if np.array_equal(new, centres):
        break
    centres = new
by_area = np.argsort(centres.prod(axis=1))
anchors, cluster = centres[by_area], np.argsort(by_area)[assign]  # anchors smallest first; cluster = sorted ids
print(f"k-means on {len(hw)} toy boxes converged after {len(costs)} rounds; anchors (h, w):",
      np.round(anchors, 1).tolist())
lesson.check(all(a >= b - 1e-9 for a, b in zip(costs, costs[1:])), "k-means never increases its squared distance")
lesson.close(centres, [hw[assign == k].mean(axis=0) for k in range(B)],
             "at convergence every anchor is the mean height and width of the boxes it represents")
# Several scales: the same head on any input size -- only the grid changes.
print("input  grid     boxes   head parameters")
head_params = yolo_head.weight.size + yolo_head.bias.size
for size in (320, 416, 608):
    g_ = pooled_sizes(size, size)[-1]
    o = yolo_head.forward(rng.standard_normal((1, 64, *g_)))
    print(f"{size:5d}  {g_[0]:2d}x{g_[1]:<2d}  {B * g_[0] * g_[1]:6d}   {head_params}")
    lesson.check(o.shape == (1, 45, size // 32, size // 32), f"{size}: a {size // 32}x{size // 32} grid, "
                                                             f"same {head_params} head parameters")
print("Multi-scale training changes the image size every few batches (YOLOv2: multiples of 32 from 320 to 608, "
      "every 10 batches).\nThe head's work grows with the cells (100, 169, 361): a small scale is cheaper, and, "
      "the seed adds, less accurate.")

fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
j = next(i for i, m in enumerate(train_masks) if (m == 3).any())  # a triangle
ax = axes[0]
ax.imshow(to_hwc(img64[j]))
b = box_of(train_masks[j] > 0)
bx, by, bh, bw = to_centre(b)
S = 16  # a 4x4 grid on this 64x64 image, for the picture
for v in range(0, 65, S):
    ax.axhline(v - 0.5, color="white", lw=0.8), ax.axvline(v - 0.5, color="white", lw=0.8)
ci, cj = int(by // S), int(bx // S)
ax.add_patch(Rectangle((cj * S - 0.5, ci * S - 0.5), S, S, fill=False, hatch="///", ec="white", lw=2))
draw_box(ax, b, "black", lw=2.5)
ax.plot(bx - 0.5, by - 0.5, "o", color="black")
for (ah, aw), c in zip(anchors, plt.cm.tab10(np.arange(B))):
    draw_box(ax, to_corners(bx, by, ah, aw), c, lw=1.5, ls="--")
ax.set_title(f"4x4 grid: the hatched cell holds the box centre (dot) and predicts the box\ncentre offset in "
             f"the cell (x, y) = ({(bx - cj * S) / S:.2f}, {(by - ci * S) / S:.2f}); dashed: the 5 anchors",
             fontsize=9)
bare(ax)
ax = axes[1]
for k in range(B):
    ax.scatter(hw[cluster == k, 1], hw[cluster == k, 0], s=10, alpha=0.6, color=plt.cm.tab10(k))
ax.scatter(anchors[:, 1], anchors[:, 0], marker="*", s=250, color="black", label="anchors (cluster means)")
ax.set_xlabel("box width (px)"), ax.set_ylabel("box height (px)")
ax.set_title(f"k-means on the heights and widths of {len(hw)} toy boxes (k = 5)", fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()
lesson.save(fig, "yolo")

# %%
lesson.step("Depthwise convolution (tf.nn.depthwise_conv2d): every filter applied to each input channel separately")
Cin, mult = 3, 2  # 3 input channels, 2 filters per channel ("channel multiplier")
xd = rng.standard_normal((2, Cin, 12, 12))
per_channel = [Conv2d(1, mult, 3, **f64, seed=20 + c) for c in range(Cin)]  # channel c has its own 2 filters
y_loop = np.concatenate([per_channel[c].forward(xd[:, c : c + 1]) for c in range(Cin)], axis=1)
# The same as ONE Conv2d whose weight is block-diagonal: output map c*mult + j reads input channel c only.
block = Conv2d(Cin, Cin * mult, 3, **f64, seed=0)
block.params["weight"][...] = 0
for c in range(Cin):
    block.params["weight"][c * mult : (c + 1) * mult, c] = per_channel[c].weight[:, 0]
block.params["bias"][...] = np.concatenate([pc.bias for pc in per_channel])
y_block = block.forward(xd)
print(f"input {xd.shape}, {mult} filters per channel -> {y_block.shape}; block-diagonal weight {block.weight.shape}, "
      f"{100 * (block.weight == 0).mean():.0f}% zeros")
lesson.check(y_block.shape[1] == Cin * mult, f"{mult} filters x {Cin} channels = {Cin * mult} output maps (the "
                                             f"seed: f_n filters and f_n' channels give f_n * f_n' maps)")
lesson.close(y_block, y_loop, "Conv2d(1, 2, 3) on each channel separately = one Conv2d(3, 6, 3) with a "
                              "block-diagonal weight")
c, j_ = 1, 1  # an independent check of one map: output c*mult + j is input channel c correlated with its filter
lesson.close(y_block[0, c * mult + j_], signal.correlate2d(xd[0, c], per_channel[c].weight[j_, 0], mode="valid")
             + per_channel[c].bias[j_], "output map 3 = channel 1 correlated with its 2nd filter (scipy), nothing else")
# What it saves, as a depthwise-separable block: depthwise 3x3 (one filter per channel) + pointwise 1x1 conv.
Cs = 256
full = Conv2d(Cs, Cs, 3, bias=False)
depthwise = [Conv2d(1, 1, 3, bias=False) for _ in range(Cs)]
pointwise = Conv2d(Cs, Cs, 1, bias=False)
n_full, n_sep = full.weight.size, sum(d.weight.size for d in depthwise) + pointwise.weight.size
print(f"{Cs} -> {Cs} channels, 3x3: full conv {n_full:,} weights; depthwise {Cs * 9:,} + pointwise 1x1 "
      f"{pointwise.weight.size:,} = {n_sep:,} ({n_full / n_sep:.1f}x fewer)")
lesson.close(n_sep / n_full, 1 / Cs + 1 / 9, "depthwise + 1x1 over a full conv = 1/C_out + 1/k^2; each weight is one "
                                             "multiply-add per output pixel, so the FLOPs shrink the same")
print("This engine's Conv2d has no `groups` argument: the block-diagonal weight above multiplies its zeros too, "
      "so it shows\nthe arithmetic of a depthwise conv, not its speed.")

# %%
lesson.step("Conv1D and Conv3D (keras.layers): the same sliding dot product in one and in three dimensions")
seq = rng.standard_normal((2, 3, 50))  # (N, C, L): a 3-channel time series or a sequence of word vectors
w1 = rng.standard_normal((4, 3, 5))  # 4 filters, 3 channels, width 5
y1 = conv2d_forward(seq[:, :, None, :], w1[:, :, None, :])[0][:, :, 0, :]  # a 1 x L image, a 1 x 5 kernel
ref1 = np.array([[sum(np.correlate(seq[n, c], w1[o, c], mode="valid") for c in range(3)) for o in range(4)]
                 for n in range(2)])
print(f"Conv1D: {seq.shape} * {w1.shape} -> {y1.shape} (the engine's conv2d on height 1)")
lesson.close(y1, ref1, "Conv1D = the engine's 2-D convolution with height 1 (checked against np.correlate)")
vol = rng.standard_normal((1, 2, 6, 9, 9))  # (N, C, D, H, W): a 2-channel volume, e.g. a PET scan
w3 = rng.standard_normal((3, 2, 3, 3, 3))  # 3 filters, 3x3x3
# A 3-D conv is a sum of 2-D convs: output slice d adds kernel slice kd applied to input slice d + kd.
y3 = np.stack([sum(conv2d_forward(vol[:, :, d + kd], w3[:, :, kd])[0] for kd in range(3)) for d in range(6 - 2)],
              axis=2)
ref3 = np.array([[sum(signal.correlate(vol[0, c], w3[o, c], mode="valid") for c in range(2)) for o in range(3)]])
print(f"Conv3D: {vol.shape} * {w3.shape} -> {y3.shape} (three 2-D convs per output slice, summed)")
lesson.close(y3, ref3, "Conv3D = for each output slice, the sum over kernel depth of 2-D convs "
                       "(scipy.signal.correlate)")

# %%
lesson.step("Receptive field: VGG16's pools widen it to 6, 16, 44, 100, 212 px; stacked 3x3 convs are cheap")


def receptive_field(layers):
    """(size, jump) after layers [(kernel, stride, dilation), ...]: r += (k-1) d j, then j *= s."""
    r, jump = 1, 1
    for k_, s_, d_ in layers:
        r, jump = r + (k_ - 1) * d_ * jump, jump * s_
    return r, jump


vgg_layers, stage_end, rf = [], [], []
for n in VGG16_CONVS:
    vgg_layers += [(3, 1, 1)] * n + [(2, 2, 1)]  # n 3x3 convs (padding 1), then the 2x2 stride-2 pool
    stage_end.append(len(vgg_layers))
    rf.append(receptive_field(vgg_layers))
print("after pool1..pool5: receptive field", [r for r, _ in rf], "px, jump (pixels per step)", [j for _, j in rf])
lesson.check([r for r, _ in rf] == [6, 16, 44, 100, 212], "one pool5 cell sees 212x212 pixels of the image: "
                                                          "shallow layers are local, deep ones nearly global (001)")
lesson.check(rf[-1][1] == 2 * 2 * 2 * 2 * 2 == 32 != 2 + 2 + 2 + 2 + 2,
             "the total stride is the PRODUCT of the strides, 2^5 = 32 (004 says 'added'; that would give 10)")
# Measured with the engine: one channel, every weight positive (no cancellation), so the gradient of one output
# pixel is nonzero exactly on its receptive field. Pools become 2x2 stride-2 averaging convs: the same window,
# and unlike max-pooling their backward reaches every pixel of it.
chain = []
for n in VGG16_CONVS:
    chain += [Conv2d(1, 1, 3, padding=1, bias=False, **f64) for _ in range(n)]
    chain.append(Conv2d(1, 1, 2, stride=2, bias=False, **f64))
for layer in chain:
    layer.params["weight"][...] = 1.0 / layer.weight.size
h_ = np.ones((1, 1, 224, 224))
sizes_out = []
for layer in chain:
    h_ = layer.forward(h_)
    sizes_out.append(h_.shape[-1])
measured, grads_by_stage = [], []
for end in stage_end:
    n_ = sizes_out[end - 1]
    d_ = np.zeros((1, 1, n_, n_))
    d_[0, 0, n_ // 2, n_ // 2] = 1.0  # the centre cell of this stage
    for layer in reversed(chain[:end]):
        d_ = layer.backward(d_)
    rows_ = np.nonzero(d_[0, 0].any(axis=1))[0]
    measured.append(int(rows_.max() - rows_.min() + 1))
    grads_by_stage.append(d_[0, 0])
print("measured from the engine's backward pass:", measured)
lesson.check(measured == [r for r, _ in rf], "the gradient of one cell reaches exactly its receptive field")
g5 = grads_by_stage[-1]
lesson.check(g5.max() > 1e6 * g5[g5 > 0].min(), "but not evenly: with these averaging weights the centre pixel "
                                                 "counts over a million times more than the field's corners")


def support(layers, n=40):
    """Width of the input region the centre output of a chain of Conv2d(1, 1, ...) layers depends on."""
    for layer in layers:
        layer.params["weight"][...] = 1.0
    x_ = np.ones((1, 1, n, n))
    for layer in layers:
        x_ = layer.forward(x_)
    d_ = np.zeros_like(x_)
    d_[0, 0, x_.shape[2] // 2, x_.shape[3] // 2] = 1.0
    for layer in reversed(layers):
        d_ = layer.backward(d_)
    return int(np.ptp(np.nonzero(d_[0, 0].any(axis=1))[0]) + 1)


print("receptive field and weights (64 -> 64 channels) of:")
cases = {"one 5x5 conv": [(5, 1)], "two 3x3 convs": [(3, 1)] * 2, "one 7x7 conv": [(7, 1)],
         "three 3x3 convs": [(3, 1)] * 3, "one 3x3 conv, dilation 2": [(3, 2)],
         "13 3x3 convs, no pooling": [(3, 1)] * 13}  # (kernel, dilation) of each conv
found, weights = {}, {}
for name, spec in cases.items():
    found[name] = support([Conv2d(1, 1, k_, dilation=d_, **f64) for k_, d_ in spec])
    weights[name] = sum(Conv2d(64, 64, k_, dilation=d_, bias=False).weight.size for k_, d_ in spec)
    print(f"    {name:26s} {found[name]:3d} px   {weights[name]:>9,} weights")
lesson.check(found["two 3x3 convs"] == found["one 5x5 conv"] == 5 and found["three 3x3 convs"] == found["one 7x7 conv"]
             == 7 and weights["two 3x3 convs"] / weights["one 5x5 conv"] == 18 / 25 and
             weights["three 3x3 convs"] / weights["one 7x7 conv"] == 27 / 49,
             "two 3x3 convs see 5x5 with 18C^2 weights instead of 25C^2, three see 7x7 with 27C^2 instead of 49C^2 "
             "(003: VGG stacks 3x3 convs deep)")
lesson.check(found["one 3x3 conv, dilation 2"] == 5 and weights["one 3x3 conv, dilation 2"] == 9 * 64 * 64,
             "dilation widens the field without extra weights (atrous, lesson 03)")
macs = lambda sizes: sum(9 * cin * cout * s * s for cin, cout, s in sizes)  # noqa: E731
convs, cin = [], 3
for b_, (n, width) in enumerate(zip(VGG16_CONVS, VGG16_WIDTHS)):
    for _ in range(n):
        convs.append((cin, width, 224 // 2**b_))
        cin = width
pooled_macs, flat_macs = macs(convs), macs([(ci, co, 224) for ci, co, _ in convs])
print(f"VGG16's 13 convs on a 224 image: {pooled_macs / 1e9:.1f} G multiply-adds with pooling, "
      f"{flat_macs / 1e9:.0f} G without (every layer at 224x224)")
lesson.check(found["13 3x3 convs, no pooling"] == 27 and flat_macs > 40 * pooled_macs,
             "without pooling the 13 convs see only 27x27 px (context lost, 002) and cost over 40x more")
fc6_pooled = 512 * int(np.prod(pooled_sizes(224, 224)[-1])) * 4096  # dense fc6 on pool5's 7x7x512
lesson.check(512 * 224 * 224 * 4096 == 32 * 32 * fc6_pooled,
             "and a dense fc6 over the unpooled 224x224 map would need 32^2 = 1024x more weights: pooling is what "
             "keeps the classifier's parameters in check (conv weights do not depend on the map size)")

fig, axes = plt.subplots(1, 2, figsize=(11, 5))
ax = axes[0]
ax.imshow(np.zeros((224, 224)), cmap="Greys", vmin=0, vmax=1)
ax.set_xlabel("image column"), ax.set_ylabel("image row")
for b_, (g_, r_) in enumerate(zip(grads_by_stage, measured)):
    rows_, cols_ = np.nonzero(g_.any(axis=1))[0], np.nonzero(g_.any(axis=0))[0]
    ax.add_patch(Rectangle((cols_.min() - 0.5, rows_.min() - 0.5), r_, r_, fill=False, lw=2,
                           ec=plt.cm.viridis(b_ / 4.5), label=f"pool{b_ + 1}: {r_}x{r_}"))
ax.set_title("Receptive field of the centre cell after each pool\n(measured with the engine, 224x224 image)",
             fontsize=9)
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
ax.set_xlim(-0.5, 223.5), ax.set_ylim(223.5, -0.5)
ax = axes[1]
im = ax.imshow(np.log10(np.where(grads_by_stage[-1] > 0, grads_by_stage[-1], np.nan)), cmap="magma")
fig.colorbar(im, ax=ax, shrink=0.8, label="log10 of the gradient")
ax.set_title("pool5 cell's gradient on the image (these averaging weights):\nthe centre counts far more than the "
             "edges", fontsize=9)
ax.set_xlabel("image column"), ax.set_ylabel("image row")
fig.tight_layout()
lesson.save(fig, "receptive_field")

# %%
lesson.step("FCN is an encoder-decoder network (인코더-디코더); U-Net concatenates where FCN adds")
model8 = FCN8s.tiny(5, **f64, seed=0)
sd = model8.state_dict()
encoder = [k for k in sd if k.startswith(("conv", "fc6", "fc7"))]  # the downsampling network (the classifier)
decoder = [k for k in sd if k not in encoder]  # score layers and upsamplers
n_enc, n_dec = sum(sd[k].size for k in encoder), sum(sd[k].size for k in decoder)
x64 = rng.standard_normal((1, 3, 64, 64))
h_ = x64
for b_ in range(1, 6):
    h_ = model8._block_forward(b_, h_)
print(f"encoder: image {x64.shape} -> pool5 {h_.shape} (an abstract representation, 1/32 of the size), "
      f"{n_enc:,} parameters")
print(f"decoder: score maps at 1/32, 1/16, 1/8 -> upsampled to {model8.forward(x64).shape}, {n_dec:,} parameters "
      f"({', '.join(sorted({k.split('.')[0] for k in decoder}))})")
lesson.check(n_dec < 0.02 * n_enc, f"FCN's decoder is light: {100 * n_dec / n_enc:.1f}% of the encoder's parameters")


def n_params(variant, K, widths, convs, fc):
    """Parameter count of FCN-`variant` from its layer shapes (each weight plus its bias)."""
    n, cin = 0, 3
    for w_, c_ in zip(widths, convs):
        for _ in range(c_):
            n, cin = n + 9 * cin * w_ + w_, w_
    n += (cin * fc + fc) + (fc * fc + fc) + (fc * K + K)  # fc6, fc7, score_fr (1x1 convs)
    n += {"32s": 0, "16s": widths[3] * K + K, "8s": widths[3] * K + K + widths[2] * K + K}[variant]  # skips
    return n + sum(K * K * k_ * k_ + K for _, k_, _, _ in UPSAMPLERS[variant])  # upsamplers


counts = {v: sum(p.size for _, p, _ in cls.tiny(5, seed=0).named_parameters())
          for v, cls in (("32s", FCN32s), ("16s", FCN16s), ("8s", FCN8s))}
lesson.check(all(counts[v] == n_params(v, 5, TINY["widths"], TINY["convs_per_block"], TINY["fc_channels"])
                 for v in counts), "the count from the layer shapes matches the engine's three tiny models")
vgg = {v: n_params(v, 21, VGG16_WIDTHS, VGG16_CONVS, 4096) for v in ("32s", "16s", "8s")}
print("VGG16 widths, 21 classes (PASCAL VOC):", {f"FCN-{v}": f"{n:,}" for v, n in vgg.items()})
lesson.check(abs(vgg["8s"] - vgg["32s"]) < 0.05 * vgg["32s"] and vgg["8s"] < vgg["32s"],
             "the skips cost no real parameters (000): FCN-8s even has fewer than FCN-32s, whose single x32 "
             "upsampler (21x21x64x64) outweighs two 1x1 score layers and three small upsamplers")
# U-Net: the decoder concatenates the skip's features with the upsampled ones, then convolves. With a 1x1
# conv after the concatenation this is exactly FCN's 'score each, then add':
deep, skip = rng.standard_normal((1, 6, 5, 7)), rng.standard_normal((1, 4, 5, 7))
fuse = Conv2d(10, 3, 1, **f64, seed=9)  # on the concatenation [deep, skip]
score_deep, score_skip = Conv2d(6, 3, 1, **f64), Conv2d(4, 3, 1, bias=False, **f64)
score_deep.params["weight"][...], score_deep.params["bias"][...] = fuse.weight[:, :6], fuse.bias
score_skip.params["weight"][...] = fuse.weight[:, 6:]
lesson.close(fuse.forward(np.concatenate([deep, skip], axis=1)), score_deep.forward(deep) + score_skip.forward(skip),
             "1x1 conv of the concatenation = sum of 1x1 convs of the parts: FCN's sum is U-Net's concatenation "
             "with a 1x1 fusion")
print("U-Net then runs 3x3 convs on the concatenation, which a sum of per-branch scores cannot express. "
      "The seed's other\nencoder-decoder point (004): a network kept at full size ('same' padding, no pooling) costs "
      f"far more -- step 10: {flat_macs / pooled_macs:.0f}x for VGG16's convs.")

# %%
lesson.step("Super-resolution (초해상도): an image upsampled x2 -- nearest, bilinear, a trained transposed conv")
# High-resolution toy images (grey, without the pixel noise no upsampler could restore), their x2-smaller
# versions (2x2 averages); upsample those back and compare with the originals.
hr = denormalize(toy_shapes(40, 32, seed=21, noise=0.0)[0]).mean(axis=1, keepdims=True).astype(np.float64)
lr_img = hr.reshape(40, 1, 16, 2, 16, 2).mean(axis=(3, 5))
train_hr, test_hr, train_lr, test_lr = hr[:32], hr[32:], lr_img[:32], lr_img[32:]


def upscale(module, small):
    """x2 with the edge pixel repeated once around (so the borders are not darkened), then cut back."""
    return module.forward(np.pad(small, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge"))[:, :, 2:-2, 2:-2]


def mse(a, b):
    return float(((a - b) ** 2).mean())


learned = ConvTranspose2d(1, 1, 4, stride=2, padding=1, **f64, seed=0)  # FCN's x2 upsampler: k4 s2 p1
learned.params["weight"][...] = bilinear_weight(1, 1, 4, np.float64)  # starts as bilinear (lesson 06)
learned.params["bias"][...] = 0
methods = {"nearest": NearestUpsample(2), "bilinear": BilinearUpsample(1, 2)}
before = {name: mse(upscale(m, test_lr), test_hr) for name, m in methods.items()}
lesson.close(upscale(learned, test_lr), upscale(methods["bilinear"], test_lr), "the transposed conv starts as the "
                                                                               "bilinear upsampler")
opt = Adam(learned, lr=3e-3)
train_curve = []
for it in range(200):  # full-batch gradient descent on the mean squared error
    full = learned.forward(np.pad(train_lr, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge"))
    err = full[:, :, 2:-2, 2:-2] - train_hr
    train_curve.append(float((err**2).mean()))
    grad = np.zeros_like(full)
    grad[:, :, 2:-2, 2:-2] = 2 * err / err.size
    learned.backward(grad)
    opt.step()
after = {"learned": mse(upscale(learned, test_lr), test_hr)}
# The transposed conv is also a 'fractionally strided' conv (004: 부분 stride): stride 1/2 = a stride-1 conv on
# the input with a zero between its pixels (lesson 05); the engine computes it both ways.
as_zero_insert = ConvTranspose2d(1, 1, 4, stride=2, padding=1, method="zero_insert", **f64)
as_zero_insert.load_state_dict(learned.state_dict())
lesson.close(upscale(as_zero_insert, test_lr), upscale(learned, test_lr),
             "the trained upsampler as zero insertion + stride-1 conv ('stride 1/2') = as col2im")
results_sr = {**before, **after}
print("test MSE (8 images never trained on):", {k: f"{v:.6f} ({10 * np.log10(1 / v):.2f} dB PSNR)"
                                                for k, v in results_sr.items()})
print(f"training MSE of the transposed conv: {train_curve[0]:.5f} (bilinear start) -> {train_curve[-1]:.5f}; "
      f"learned 4x4 kernel:\n{learned.weight[0, 0]}")
lesson.check(before["bilinear"] < before["nearest"], "bilinear beats nearest: it does not paint 2x2 blocks")
lesson.check(train_curve[-1] < train_curve[0] and after["learned"] < before["bilinear"],
             "trained on 32 images, the transposed conv beats bilinear on 8 others: its weights are learned "
             "(002: 'a learnable parameter, updated by backpropagation')")

fig, axes = plt.subplots(1, 5, figsize=(13, 3))
pics = [("low resolution 16x16", test_lr[0, 0]), *[(f"{n}: {10 * np.log10(1 / results_sr[n]):.2f} dB",
                                                   upscale(m, test_lr[:1])[0, 0])
                                                for n, m in (*methods.items(), ("learned", learned))],
        ("high resolution 32x32", test_hr[0, 0])]
for ax, (title, pic) in zip(axes, pics):
    ax.imshow(pic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    bare(ax)
fig.suptitle("x2 super-resolution of a test image (PSNR = 10 log10(1 / MSE) over the 8 test images; higher is "
             "better)", fontsize=10, y=1.02)
lesson.save(fig, "super_resolution")

# %%
lesson.step("torchvision's FCNHead (seed 000): 3x3 conv, BatchNorm, ReLU, Dropout(0.1), 1x1 conv, traced")
# torchvision's FCN(backbone, classifier, aux_classifier): fcn_resnet50 puts classifier = FCNHead(2048, 21) on
# ResNet-50's last stage, run at 1/8 of the image size (dilated), and resizes the 21 score maps to the image with
# bilinear interpolation; the optional aux_classifier, FCNHead(1024, 21) on the stage before, adds a second loss
# during training only (the seed's docstring: "auxiliary classifier used during training").
in_ch, n_cls = 2048, 21
inter = in_ch // 4
feat = rng.standard_normal((1, in_ch, 8, 8)).astype(np.float32)  # a 64x64 image at stride 8
conv_a = Conv2d(in_ch, inter, 3, padding=1, bias=False, seed=1)
gamma, beta = rng.uniform(0.5, 1.5, inter), rng.normal(0, 0.1, inter)
run_mean, run_var, bn_eps = rng.normal(0, 0.1, inter), rng.uniform(0.5, 2.0, inter), 1e-5


def batchnorm_eval(h):
    """BatchNorm2d at inference: per channel (h - running mean) / sqrt(running var + eps) * gamma + beta."""
    c_ = lambda v: v[None, :, None, None]  # noqa: E731
    return ((h - c_(run_mean)) / np.sqrt(c_(run_var) + bn_eps) * c_(gamma) + c_(beta)).astype(h.dtype)


relu_h, drop_h = ReLU(), Dropout2d(0.1, seed=3)
conv_b = Conv2d(inter, n_cls, 1, seed=2)
stages = [("features (ResNet-50 layer4)", feat)]
stages.append((f"Conv2d({in_ch}, {inter}, 3, padding=1, bias=False)", conv_a.forward(stages[-1][1])))
stages.append(("BatchNorm2d (eval: per-channel affine)", batchnorm_eval(stages[-1][1])))
stages.append(("ReLU", relu_h.forward(stages[-1][1])))
drop_h.eval()
stages.append(("Dropout (eval: identity)", drop_h.forward(stages[-1][1])))
stages.append((f"Conv2d({inter}, {n_cls}, 1)", conv_b.forward(stages[-1][1])))
stages.append(("bilinear x8 to the image", BilinearUpsample(n_cls, 8).forward(stages[-1][1])))
for name, a in stages:
    print(f"    {name:42s} {a.shape}")
lesson.check(inter == 512 and stages[-2][1].shape == (1, 21, 8, 8) and stages[-1][1].shape == (1, 21, 64, 64),
             "in_channels -> in_channels // 4 (3x3) -> classes (1x1) -> upsampled: the seed's comment")
n_head = conv_a.weight.size + 2 * inter + conv_b.weight.size + conv_b.bias.size
print(f"parameters: {conv_a.weight.size:,} (3x3 conv) + {2 * inter:,} (BatchNorm gamma, beta) + "
      f"{conv_b.weight.size + conv_b.bias.size:,} (1x1 conv) = {n_head:,}")
lesson.check(n_head == 2048 * 512 * 9 + 2 * 512 + 512 * 21 + 21, "9,448,981 parameters, nearly all in the 3x3 conv")
lesson.check(np.array_equal(stages[4][1], stages[3][1]), "at inference dropout is the identity")
drop_h.train()
dropped = drop_h.forward(stages[3][1])
per_channel_kept = [(np.allclose(dropped[0, c_], 0) or np.allclose(dropped[0, c_], stages[3][1][0, c_] / 0.9))
                    for c_ in range(inter)]
lesson.check(all(per_channel_kept), "the engine has Dropout2d, which drops whole channels (torchvision's FCNHead uses "
                                    "nn.Dropout, single values); both rescale the kept ones by 1/(1-p)")
# The engine has no BatchNorm layer. At inference it is a per-channel affine map, so it folds into the conv
# before it -- which is why that conv has bias=False: BatchNorm's beta is the bias.
small_conv = Conv2d(64, 16, 3, padding=1, bias=False, **f64, seed=4)
gamma, beta = rng.uniform(0.5, 1.5, 16), rng.normal(0, 0.1, 16)
run_mean, run_var = rng.normal(0, 0.1, 16), rng.uniform(0.5, 2.0, 16)
scale = gamma / np.sqrt(run_var + bn_eps)
folded = Conv2d(64, 16, 3, padding=1, **f64)
folded.params["weight"][...] = small_conv.weight * scale[:, None, None, None]
folded.params["bias"][...] = beta - scale * run_mean
xs = rng.standard_normal((2, 64, 6, 6))
lesson.close(folded.forward(xs), batchnorm_eval(small_conv.forward(xs)),
             "eval-mode BatchNorm after a bias-free conv = one conv with weight * gamma/sigma and bias "
             "beta - gamma*mean/sigma")
# torchvision resizes with interpolate(mode="bilinear", align_corners=False); scipy's zoom(order=1,
# grid_mode=True, mode="nearest") computes the same. The engine's BilinearUpsample is FCN's bilinear
# transposed conv: equal inside, different in the outer s/2 rows and columns (zeros beyond the edge).
score = stages[-2][1].astype(np.float64)
ours = BilinearUpsample(n_cls, 8).forward(score)[0]
theirs = np.stack([ndimage.zoom(score[0, c_], 8, order=1, grid_mode=True, mode="nearest") for c_ in range(n_cls)])
lesson.close(ours[:, 4:-4, 4:-4], theirs[:, 4:-4, 4:-4], "BilinearUpsample = align_corners=False interpolation "
                                                         "away from the 4-pixel border", rtol=1e-9, atol=1e-9)
lesson.check(not np.allclose(ours[:, :4], theirs[:, :4]), "and differs on the border, where the transposed conv "
                                                          "sees zero padding")
try:
    import torch

    tt = torch.nn.functional.interpolate(torch.from_numpy(score), scale_factor=8, mode="bilinear",
                                         align_corners=False)[0].numpy()
    lesson.close(theirs, tt, "torch is installed: its interpolate agrees with scipy's zoom", rtol=1e-9, atol=1e-9)
except ImportError:
    print("    (torch not installed: the scipy stand-in is not compared with torch's interpolate)")

# %%
lesson.step("Hyper-parameters (하이퍼 파라미터): what you set; parameters: what training sets")
model = FCN8s(5, widths=(8, 16, 32, 32, 32), convs_per_block=(1, 1, 1, 1, 1), fc_channels=32, **f64, seed=0)
config, params_before = model.config(), model.state_dict()
imgs, msks = toy_shapes(8, 32, seed=3)
fit(model, imgs, msks, epochs=2, batch_size=4, lr=1e-2, seed=0, progress=False)
params_after = model.state_dict()
changed = [k for k in params_before if not np.array_equal(params_before[k], params_after[k])]
print(f"hyper-parameters (model.config()): {config}")
print(f"fit(..., epochs=2, batch_size=4, lr=0.01, ...) changed {len(changed)} of {len(params_before)} parameter "
      f"tensors (state_dict()), e.g. {changed[:3]}")
lesson.check(model.config() == config and "score_fr.weight" in changed,
             "training changed the parameters (the zero score layers are no longer zero) and no hyper-parameter")
k7 = FCN8s(7, widths=(8, 16, 32, 32, 32), convs_per_block=(1, 1, 1, 1, 1), fc_channels=32, **f64, seed=0).state_dict()
diff_shape = sorted({k.split(".")[0] for k in k7 if k7[k].shape != params_before[k].shape})
print("number of classes 5 -> 7 changes the shapes of:", diff_shape)
lesson.check(k7.keys() == params_before.keys() and set(diff_shape) == {"score_fr", "score_pool4_fr", "score_pool3_fr",
                                                                       "upscore2", "upscore2_pool4", "upscore8"},
             "the number of classes touches only the score layers and upsamplers: the encoder can be reused")
out_a, out_b = model.forward(imgs[:1].astype(np.float64)), model.forward(np.zeros((1, 3, 40, 56)))
lesson.check(out_a.shape == (1, 5, 32, 32) and out_b.shape == (1, 5, 40, 56),
             "the input size is free: the same parameters serve 32x32 and 40x56 images")
keys32 = set(FCN32s(5, widths=(8, 16, 32, 32, 32), convs_per_block=(1, 1, 1, 1, 1), fc_channels=32).state_dict())
lesson.check(set(params_before) - keys32 == {f"{n}.{p}" for n in ("score_pool4_fr", "score_pool3_fr", "upscore2",
                                                                   "upscore2_pool4", "upscore8") for p in ("weight",
                                                                                                          "bias")},
             "the skip architecture (32s / 16s / 8s) adds the score_pool* layers and swaps the upsamplers")
table = [
    ("encoder & decoder: how complex", "widths, convs_per_block, fc_channels of FCN32s/16s/8s", "08, 11"),
    ("up-sampling method", "ConvTranspose2d (learned, bilinear init); BilinearUpsample, NearestUpsample, "
                           "BedOfNails, MaxUnpool2d", "05, 06"),
    ("which CNN backbone (+ its parameters)", "VGG16-style only (VGG16_WIDTHS, VGG16_CONVS, or the 'tiny' preset); "
                                              "no AlexNet/GoogLeNet/ResNet, no pretrained weights", "08"),
    ("skip architecture", "FCN32s, FCN16s, FCN8s; transfer_weights / fit_staged", "08, 09"),
    ("data augmentation", "not in the engine: fit() takes arrays -- flip or crop image and mask together first", "-"),
    ("number of classes", "num_classes", "11"),
    ("input image size", "any H, W >= 1 (toy_shapes(size=...))", "04, 08"),
    ("batch normalization", "not in the engine (VGG16 and the FCN paper use none); FCNHead's, folded", "11"),
    ("image crop", "Crop (skip alignment, lesson 08); random crops = augmentation", "08"),
    ("training (not in the seed's list)", "fit(lr, epochs, batch_size, optimizer, momentum, weight_decay, schedule), "
                                          "dropout", "09"),
]
print("\nThe seed's list (000: '사용할 하이퍼파라미터/손 대볼곳') and where each lives here (lessons):")
for what, where, lessons_ in table:
    print(f"  * {what} [{lessons_}]\n      {where}")
print("No value is best for all problems: they are set by rules of thumb and experiment (000), e.g. with "
      "`fcn-scratch compare`.")

# %%
lesson.done()

# %% [markdown]
# # Lesson 11: detection and instances -- where semantic segmentation sits among the vision tasks
#
# Segmentation is one of several answers to "what is in this image, and
# where?". This lesson builds its neighbours far enough to compare them:
# classification with localization, object detection (sliding windows,
# non-max suppression, mAP, YOLO) and instance segmentation (Mask R-CNN).
# Detection is not part of this engine, so the few lines it needs (box IoU,
# NMS, AP, YOLO's box coding, k-means anchors) are written here, in the
# lesson, and box IoU is checked against the engine's segmentation metric;
# every layer comes from `fcn_scratch`. This lesson
#
# 1. separates **semantic** from **instance** segmentation on a toy mask: two
#    touching discs are one semantic region and two instances (Mask R-CNN's
#    per-object class, box and mask),
# 2. writes a **bounding box as 4 numbers** (classification & localization),
# 3. shows that **box IoU** is the segmentation IoU of the two rasterised boxes
#    (`fcn_scratch.metrics`), and why IoU, not MSE, judges a box,
# 4. runs a flower detector (5 class probabilities, an **objectness** score,
#    4 box numbers) as one FCN pass over a 448 image: 8x8 cells,
# 5. removes duplicate detections with **non-max suppression** (threshold, IoU > 0.6),
# 6. computes **precision/recall**, **AP**, **mAP@0.5** and COCO's **mAP@[0.5:0.05:0.95]**,
# 7. builds **YOLO**'s output grid with a 1x1 `Conv2d` and reads it three ways:
#    YOLOv1's 7x7x30, YOLOv2's 13x13x125 on PASCAL VOC, and the 45 numbers per
#    cell of a common textbook simplification; cell-relative box coding; several input scales,
# 8. finds **anchor boxes** by k-means with YOLOv2's distance d = 1 - IoU, and
#    shows what the Euclidean distance would get wrong.
#
# Primary sources: Long, Shelhamer & Darrell (FCN), arXiv:1411.4038, Section 3.1
# (a convolutionalized classifier computes a whole map of outputs in one pass)
# and Section 5 (IU); Sermanet et al. (OverFeat), arXiv:1312.6229, Section 3.5
# (sliding windows are cheap in a ConvNet); He et al. (Mask R-CNN),
# arXiv:1703.06870, Section 3 (a class, a box and a mask per object); Redmon et
# al. (YOLO), arXiv:1506.02640, Section 2 (an S x S x (B*5 + C) tensor: 7x7x30
# on VOC); Redmon & Farhadi (YOLOv2, "YOLO9000"), arXiv:1612.08242, Section 2
# ("Convolutional With Anchor Boxes", "Dimension Clusters": k-means with
# d(box, centroid) = 1 - IOU(box, centroid) and its Table 1, "Direct location
# prediction", "Multi-Scale Training") and Section 3 ("Training for detection":
# 5 boxes x (5 + 20) = 125 outputs per cell on VOC); Redmon & Farhadi (YOLOv3),
# arXiv:1804.02767, Section 2.3 (3 boxes per scale: 3 x (4 + 1 + 80) = 255 on
# COCO); Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge",
# IJCV 88 (2010), Section 4 (11-point interpolated AP, overlap threshold 0.5);
# Lin et al. (COCO), arXiv:1405.0312 (AP averaged over IoU 0.5:0.05:0.95 in its
# evaluation).
# Run: `python lessons/11_detection_and_instances.py [--step] [--no-figures] [--figures DIR]`.

# %% [markdown]
# # 레슨 11: 탐지와 인스턴스 -- 여러 비전 과제 사이에서 의미적 분할이 서 있는 자리
#
# 분할(segmentation)은 "이 이미지에 무엇이 어디에 있는가?"라는 질문에 대한 여러 답 가운데 하나입니다.
# 이 레슨은 그 이웃들을 비교할 수 있을 만큼만 직접 만들어 봅니다: 분류(classification)와 위치
# 추정(localization), 객체 탐지(object detection: 슬라이딩 윈도우(sliding window), 비최대 억제(non-max
# suppression), mAP, YOLO), 그리고 인스턴스 분할(instance segmentation: Mask R-CNN). 탐지는 이 엔진에 들어
# 있지 않으므로 필요한 몇 줄(박스 IoU, NMS, AP, YOLO의 박스 부호화, k-means 앵커(anchor))은 레슨 안에 직접
# 쓰고, 박스 IoU는 엔진의 분할 지표와 맞춰 검사합니다. 층은 모두 `fcn_scratch`의 것을 씁니다. 이 레슨에서는
#
# 1. 토이 마스크로 **의미적 분할(semantic segmentation)**과 **인스턴스 분할**을 구별합니다. 맞닿은 두
#    원판은 의미적 분할에서는 한 영역이고 인스턴스로는 둘입니다(Mask R-CNN은 객체마다 클래스(class), 박스, 마스크를 냅니다).
# 2. **바운딩 박스(bounding box)를 숫자 4개로** 나타냅니다(분류와 위치 추정).
# 3. **박스 IoU**가 픽셀로 칠한 두 박스의 분할 IoU(`fcn_scratch.metrics`)와 같음을 보이고, 박스를 평가하는
#    것이 MSE가 아니라 IoU인 이유를 보여 줍니다.
# 4. 꽃 탐지기(클래스 확률 5개, **객체성 점수(objectness)** 1개, 박스 숫자 4개)를 448 이미지 위에서 FCN
#    한 번으로 돌립니다: 셀 8x8개.
# 5. **비최대 억제(non-max suppression)**로 중복 탐지를 지웁니다(임계값, IoU > 0.6).
# 6. **정밀도/재현율(precision/recall)**, **AP**, **mAP@0.5**, COCO의 **mAP@[0.5:0.05:0.95]**를 계산합니다.
# 7. 1x1 `Conv2d`로 **YOLO**의 출력 격자를 만들고 세 가지 방식으로 읽습니다: YOLOv1의 7x7x30, PASCAL VOC에서
#    YOLOv2의 13x13x125, 흔한 교과서식 단순화의 셀당 숫자 45개. 셀 기준 박스 부호화와 여러 입력 크기도 다룹니다.
# 8. YOLOv2의 거리 d = 1 - IoU로 k-means를 돌려 **앵커 박스(anchor box)**를 찾고, 유클리드 거리였다면
#    무엇이 틀어지는지 보여 줍니다.
#
# 1차 출처: Long, Shelhamer & Darrell (FCN), arXiv:1411.4038, 3.1절 (합성곱화(convolutionalization)한 분류기는 출력 맵 전체를 한
# 번에 계산한다)과 5절 (IU); Sermanet et al. (OverFeat), arXiv:1312.6229, 3.5절 (ConvNet에서는 슬라이딩 윈도우가
# 싸다); He et al. (Mask R-CNN), arXiv:1703.06870, 3절 (객체마다 클래스, 박스, 마스크); Redmon et al. (YOLO),
# arXiv:1506.02640, 2절 (S x S x (B*5 + C) 텐서: VOC에서 7x7x30); Redmon & Farhadi (YOLOv2, "YOLO9000"),
# arXiv:1612.08242, 2절 ("Convolutional With Anchor Boxes", "Dimension Clusters": d(box, centroid) = 1 -
# IOU(box, centroid)를 쓰는 k-means와 그 표 1, "Direct location prediction", "Multi-Scale Training")과 3절
# ("Training for detection": VOC에서 셀당 5 boxes x (5 + 20) = 125개 출력); Redmon & Farhadi (YOLOv3),
# arXiv:1804.02767, 2.3절 (스케일마다 박스 3개: COCO에서 3 x (4 + 1 + 80) = 255); Everingham et al., "The PASCAL
# Visual Object Classes (VOC) Challenge", IJCV 88 (2010), 4절 (11점 보간(interpolation) AP, 겹침 임계값 0.5); Lin et al. (COCO),
# arXiv:1405.0312 (평가에서 IoU 0.5:0.05:0.95에 걸쳐 평균한 AP).
# 실행: `python lessons/11_detection_and_instances.py --lang ko [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import Lesson, pad  # first: puts the repo on sys.path, picks a headless backend

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle
from scipy import ndimage

from fcn_scratch.convolutionalize import Linear, dense_to_conv
from fcn_scratch.data import CLASS_NAMES, to_hwc, toy_shapes
from fcn_scratch.functional import softmax_cross_entropy_forward
from fcn_scratch.layers import Conv2d, ReLU
from fcn_scratch.metrics import confusion_matrix, scores
from fcn_scratch.models import pooled_sizes
from fcn_scratch.viz import colorize

lesson = Lesson("11_detection_and_instances",
                "Detection and instances: where semantic segmentation sits among the vision tasks",
                ko="탐지와 인스턴스: 여러 비전 과제 사이에서 의미적 분할이 서 있는 자리")
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
    """``(y0, x0, y1, x1)`` -> the 4 numbers ``(x, y, h, w)``: centre column, centre row, height, width."""
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
lesson.step("Semantic vs instance segmentation (시맨틱 분할 vs 인스턴스 분할): touching discs are one region",
            ko="의미적 분할(semantic segmentation) 대 인스턴스 분할(instance segmentation): 맞닿은 원판은 한 영역이 된다")
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
lesson.say(f"scene {semantic.shape}: semantic mask holds classes {np.unique(semantic).tolist()} "
           f"({', '.join(CLASS_NAMES[c] for c in np.unique(semantic))}); instance map holds ids "
           f"{np.unique(instances).tolist()}",
           ko=f"장면 {semantic.shape}: 의미적 분할 마스크의 클래스(class)는 {np.unique(semantic).tolist()} "
              f"({', '.join(CLASS_NAMES[c] for c in np.unique(semantic))}); 인스턴스 맵의 id는 "
              f"{np.unique(instances).tolist()}")
# The semantic mask is the instance map with the ids forgotten: every disc pixel just says 'circle'.
components, n_components = ndimage.label(semantic == 1)  # 4-connected regions of the class
lesson.say(f"connected regions of class 'circle' (scipy.ndimage.label): {n_components};  instances: {instances.max()}",
           ko=f"클래스 'circle'의 연결된 영역 (scipy.ndimage.label): {n_components}개;  인스턴스: {instances.max()}개")
lesson.check(n_components == 2 and instances.max() == 3,
             "3 discs but 2 connected regions: the touching pair is one blob (as two touching bicycles would be)",
             ko="원판은 3개인데 연결된 영역은 2개다: 맞닿은 한 쌍은 한 덩어리가 된다 (맞닿은 자전거 두 대도 그럴 것이다)")
lesson.check(np.array_equal(components == components[instances == 3][0], instances == 3),
             "the disc that touches nothing is recovered exactly as one region; only touching instances are "
             "lost in the semantic mask",
             ko="아무것과도 닿지 않은 원판은 정확히 한 영역으로 되살아난다. 의미적 분할 마스크에서 사라지는 것은 "
                "맞닿은 인스턴스뿐이다")
# Mask R-CNN's output: for every object a class, a bounding box, and a pixel mask inside that box.
objects = []
for k in range(1, instances.max() + 1):
    b = box_of(instances == k)
    objects.append((1, b, (instances == k)[b[0] : b[2], b[1] : b[3]]))
    lesson.say(f"  instance {k}: class {CLASS_NAMES[1]!r}, box (y0, x0, y1, x1) = {b}, mask {objects[-1][2].shape}",
               ko=f"  인스턴스 {k}: 클래스 {CLASS_NAMES[1]!r}, 박스 (y0, x0, y1, x1) = {b}, 마스크 {objects[-1][2].shape}")
rebuilt = np.zeros_like(semantic)
for cls, b, m in objects:
    rebuilt[b[0] : b[2], b[1] : b[3]][m] = cls
lesson.check(np.array_equal(rebuilt, semantic),
             "pasting each (class, box, mask) back gives the semantic mask: instance -> semantic loses the ids",
             ko="(클래스, 박스, 마스크)를 하나씩 제자리에 붙이면 의미적 분할 마스크가 된다: 인스턴스 -> 의미적 분할에서 "
                "id가 사라진다")
lesson.say("The five tasks, by output: classification 1 label per image; classification + localization 1 label + "
           "4 box numbers;\nobject detection (class, box, score) per object; semantic segmentation a class per pixel "
           "(H, W);\ninstance segmentation an object per pixel: here (class, box, mask) per object, as Mask R-CNN.",
           ko="출력으로 본 다섯 과제: 분류(classification)는 이미지당 레이블(label) 1개; 분류 + 위치 추정(localization)은 "
              "레이블 1개 + 박스 숫자 4개;\n객체 탐지(object detection)는 객체마다 (클래스, 박스, 점수); 의미적 분할은 "
              "픽셀(pixel)마다 클래스 하나 (H, W);\n인스턴스 분할은 픽셀마다 객체 하나: 여기서는 Mask R-CNN처럼 "
              "객체마다 (클래스, 박스, 마스크)입니다.")

fig, axes = plt.subplots(2, 3, figsize=(13, 4.6))
axes[0, 0].imshow(image)
draw_box(axes[0, 0], box_of(disc), "white")
axes[0, 0].set_title(lesson.label("classification: 'circle'\n+ localization: one box (4 numbers)",
                                  ko="분류: 'circle'\n+ 위치 추정: 박스 하나 (숫자 4개)"), fontsize=9)
axes[0, 1].imshow(scene)
for _, b, _ in objects:
    draw_box(axes[0, 1], b, "white")
axes[0, 1].set_title(lesson.label("object detection: a box and a class per object",
                                  ko="객체 탐지: 객체마다 박스와 클래스"), fontsize=9)
axes[0, 2].imshow(colorize(semantic, len(CLASS_NAMES)))
axes[0, 2].set_title(lesson.label("semantic segmentation: a class per pixel\n(all three discs are 'circle')",
                                  ko="의미적 분할: 픽셀마다 클래스\n(원판 셋 모두 'circle')"), fontsize=9)
axes[1, 0].imshow(paint(instances), interpolation="nearest")
axes[1, 0].set_title(lesson.label("instance segmentation: an object id per pixel (3)",
                                  ko="인스턴스 분할: 픽셀마다 객체 id (3개)"), fontsize=9)
axes[1, 1].imshow(paint(components), interpolation="nearest")
axes[1, 1].set_title(lesson.label(f"connected regions of the semantic mask: {n_components}\n(the touching pair merges)",
                                  ko=f"의미적 분할 마스크의 연결된 영역: {n_components}개\n(맞닿은 쌍은 합쳐짐)"),
                     fontsize=9)
strip = np.concatenate([np.pad(m.astype(float), 2, constant_values=0.5) for _, _, m in objects], axis=1)
axes[1, 2].imshow(strip, cmap="Greys_r", vmin=0, vmax=1, interpolation="nearest")
axes[1, 2].set_title(lesson.label("Mask R-CNN style: per object a class, a box,\nand a mask inside the box (3 crops)",
                                  ko="Mask R-CNN 방식: 객체마다 클래스, 박스,\n박스 안의 마스크 (크롭 3개)"), fontsize=9)
for ax in axes.ravel():
    bare(ax)
fig.tight_layout()
lesson.save(fig, "tasks")

# %%
lesson.step("Classification & localization (분류 & 위치추정): a bounding box is 4 numbers (x, y, h, w)",
            ko="분류와 위치 추정: 바운딩 박스(bounding box)는 숫자 4개 (x, y, h, w)이다")
box = box_of(disc)
x, y, h, w = to_centre(box)
lesson.say(f"the disc's box: corners (y0, x0, y1, x1) = {box}  ->  centre x = {x}, centre y = {y}, height {h}, width {w}",
           ko=f"원판의 박스: 모서리 (y0, x0, y1, x1) = {box}  ->  중심 x = {x}, 중심 y = {y}, 높이 {h}, 너비 {w}")
lesson.check(to_corners(x, y, h, w) == box, "corners and (centre x, centre y, height, width) carry the same 4 numbers",
             ko="모서리와 (중심 x, 중심 y, 높이, 너비)는 같은 숫자 4개를 담는다")
# Move the object: the class label stays, the box moves with it, the mask moves with it.
dy, dx = -6, 30
moved_mask = np.roll(mask, (dy, dx), axis=(0, 1))
# What a classifier's features do: a conv's output moves with its input (stride 2 here: by dy/2, dx/2). Compared
# away from the rows and columns np.roll wrapped around and from the zero padding (feature rows 1-28, cols 16-63).
loc_conv = Conv2d(3, 16, 3, stride=2, padding=1, **f64, seed=2)
image_nchw = images[pick : pick + 1].astype(np.float64)
feat_here = loc_conv.forward(image_nchw)
feat_moved = loc_conv.forward(np.roll(image_nchw, (dy, dx), axis=(2, 3)))
inside = (slice(None), slice(None), slice(1, 29), slice(16, 64))
lesson.close(feat_moved[inside], np.roll(feat_here, (dy // 2, dx // 2), axis=(2, 3))[inside],
             f"the engine's conv features move with the content (by ({dx // 2}, {dy // 2}) cells at stride 2), so "
             f"their average over the image, what a classifier pools, barely changes: its answer stays 'circle'",
             ko=f"엔진의 합성곱(convolution) 특성은 내용을 따라 움직인다 (스트라이드(stride) 2에서 ({dx // 2}, {dy // 2}) 셀). 그래서 "
                f"분류기가 풀링(pooling)하는 이미지 전체 평균은 거의 변하지 않는다: 분류기의 답은 그대로 'circle'이다")
lesson.say(f"global average of the features, moved vs not: largest difference "
           f"{np.abs(feat_moved.mean(axis=(2, 3)) - feat_here.mean(axis=(2, 3))).max():.4f} "
           f"(of values up to {np.abs(feat_here.mean(axis=(2, 3))).max():.3f}; only the borders differ)",
           ko=f"특성의 전역 평균, 옮긴 것과 원래 것: 최대 차이 "
              f"{np.abs(feat_moved.mean(axis=(2, 3)) - feat_here.mean(axis=(2, 3))).max():.4f} "
              f"(값은 최대 {np.abs(feat_here.mean(axis=(2, 3))).max():.3f}; 가장자리만 다릅니다)")
lesson.check(to_centre(box_of(moved_mask == 1)) == (x + dx, y + dy, h, w),
             f"the localization and segmentation answers move with it: the box centre by ({dx}, {dy}), "
             f"its size stays",
             ko=f"위치 추정과 분할의 답은 함께 움직인다: 박스 중심은 ({dx}, {dy})만큼 옮겨 가고, 크기는 그대로다")
# A localization model: features, global average pooling, a dense layer with 4 units, MSE loss.
features = ReLU().forward(feat_here)
pooled = features.mean(axis=(2, 3))  # global average pooling: (N, C, H, W) -> (N, C)
regressor = Linear(16, 4, **f64, seed=3)
pred = regressor.forward(pooled)
target = np.array([[x, y, h, w]])
mse = float(((pred - target) ** 2).mean())
lesson.say(f"features {features.shape} -> global average pool {pooled.shape} -> Linear(16, 4) -> {pred.shape}; "
           f"untrained MSE to the target box: {mse:.1f}",
           ko=f"특성 {features.shape} -> 전역 평균 풀링(global average pooling) {pooled.shape} -> Linear(16, 4) -> {pred.shape}; "
              f"학습(training) 전 목표 박스와의 MSE: {mse:.1f}")
lesson.check(pred.shape == (1, 4) and pooled.shape == (1, 16),
             "global average pooling + Linear(16, 4): the 4 box numbers, a regression to train with the MSE loss",
             ko="전역 평균 풀링 + Linear(16, 4): 박스 숫자 4개, MSE 손실(loss)로 학습할 회귀이다")
lesson.say("The hard part is the labels: someone must draw a box around every object of thousands of "
           "images.",
           ko="어려운 것은 레이블입니다: 누군가가 수천 장의 이미지에서 객체마다 박스를 그려야 합니다.")

# %%
lesson.step("Box IoU is the segmentation IoU of the two rasterised boxes; IoU, not MSE, judges a box",
            ko="박스 IoU는 픽셀로 칠한 두 박스의 분할 IoU이고, 박스를 평가하는 것은 MSE가 아니라 IoU다")


def raster(b, shape=(64, 128)):
    m = np.zeros(shape, dtype=np.int64)
    m[b[0] : b[2], b[1] : b[3]] = 1
    return m


truth_box, pred_box = box, (box[0] + 4, box[1] - 6, box[2] + 7, box[3] - 3)
iou_coords = box_iou(truth_box, pred_box)
cm = confusion_matrix(raster(truth_box), raster(pred_box), 2, ignore_index=None)
iou_pixels = scores(cm)["per_class_iou"][1]
lesson.say(f"truth {truth_box}, prediction {pred_box}", ko=f"정답 {truth_box}, 예측 {pred_box}")
lesson.say(f"from coordinates: intersection / union = {iou_coords:.4f}",
           ko=f"좌표로 계산: 교집합 / 합집합 (IoU, intersection over union) = {iou_coords:.4f}")
lesson.say(f"confusion matrix of the two box masks (rows truth, cols prediction):\n{cm}\n"
           f"segmentation IoU of class 1 = cm[1,1] / (cm[1,1] + cm[1,0] + cm[0,1]) = {iou_pixels:.4f}",
           ko=f"두 박스 마스크의 혼동 행렬(confusion matrix) (행은 정답, 열은 예측):\n{cm}\n"
              f"클래스 1의 분할 IoU = cm[1,1] / (cm[1,1] + cm[1,0] + cm[0,1]) = {iou_pixels:.4f}")
lesson.close(iou_pixels, iou_coords, "box IoU from 4 coordinates = IoU of the two box masks "
                                     "(fcn_scratch.metrics, the segmentation metric)",
             ko="좌표 4개로 구한 박스 IoU = 두 박스 마스크의 IoU (fcn_scratch.metrics, 분할 지표)")


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
                                       f"the others give 0 both ways)",
             ko=f"무작위 박스 쌍 50개에서도 같다 ({int((pairs[:, 0] > 0).sum())}쌍은 겹치고, "
                f"나머지는 두 방법 모두 0이다)")
# Why not MSE on the 4 numbers: the same 4-pixel error is a near miss for a big box, a disaster for a small one.
small, big = (20, 20, 28, 28), (20, 20, 60, 60)
small_pred, big_pred = (20, 24, 28, 32), (20, 24, 60, 64)  # both moved 4 pixels right
mse_small = np.mean((np.array(to_centre(small_pred)) - to_centre(small)) ** 2)
mse_big = np.mean((np.array(to_centre(big_pred)) - to_centre(big)) ** 2)
iou_small, iou_big = (scores(confusion_matrix(raster(t, (80, 80)), raster(p_, (80, 80)), 2, ignore_index=None))
                      ["per_class_iou"][1] for t, p_ in ((small, small_pred), (big, big_pred)))  # the engine's IoU
lesson.say(f"8x8 box moved 4 px: MSE {mse_small}, IoU {iou_small:.3f};  40x40 box moved 4 px: MSE {mse_big}, "
           f"IoU {iou_big:.3f}",
           ko=f"8x8 박스를 4 px 옮기면: MSE {mse_small}, IoU {iou_small:.3f};  40x40 박스를 4 px 옮기면: MSE {mse_big}, "
              f"IoU {iou_big:.3f}")
lesson.check(mse_small == mse_big and iou_small < 0.4 < 0.8 < iou_big,
             "equal MSE, very different overlap (the engine's IoU of the box masks): IoU measures what a box is for "
             "(a better metric than MSE)",
             ko="MSE는 같은데 겹침은 전혀 다르다 (박스 마스크에 대한 엔진의 IoU): IoU는 박스가 해야 할 일을 잰다 "
                "(MSE보다 나은 지표이다)")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), gridspec_kw={"width_ratios": [1.45, 1, 1]})
overlap = raster(truth_box) + 2 * raster(pred_box)  # 1 truth only, 2 prediction only, 3 both
axes[0].imshow(overlap, cmap=plt.matplotlib.colors.ListedColormap(["white", "tab:blue", "tab:orange", "tab:green"]),
               vmin=-0.5, vmax=3.5, interpolation="nearest")
axes[0].set_xlim(5.5, 75.5), axes[0].set_ylim(63.5, 15.5)  # the part of the 64x128 canvas with the boxes
axes[0].set_title(lesson.label(f"truth only (blue), prediction only (orange), both (green)\nIoU = green / all coloured = "
                               f"{cm[1, 1]} / {cm[1, 1] + cm[1, 0] + cm[0, 1]} = {iou_coords:.3f}",
                               ko=f"정답만 (파랑), 예측만 (주황), 둘 다 (초록)\nIoU = 초록 / 색칠된 전부 = "
                                  f"{cm[1, 1]} / {cm[1, 1] + cm[1, 0] + cm[0, 1]} = {iou_coords:.3f}"), fontsize=9)
for ax, (t, p, iou, name) in zip(axes[1:], ((small, small_pred, iou_small, "8x8"), (big, big_pred, iou_big, "40x40"))):
    ax.imshow(np.zeros((80, 80)), cmap="Greys", vmin=0, vmax=1)
    draw_box(ax, t, "tab:blue")
    draw_box(ax, p, "tab:orange", ls="--")
    ax.set_title(lesson.label(f"{name} box, prediction 4 px right\nMSE {mse_small:.0f}, IoU {iou:.2f}",
                              ko=f"{name} 박스, 예측은 오른쪽으로 4 px\nMSE {mse_small:.0f}, IoU {iou:.2f}"), fontsize=9)
for ax in axes:
    bare(ax)
fig.tight_layout()
lesson.save(fig, "box_iou")

# %%
lesson.step("A flower detector as one FCN pass: 10 numbers per cell, a 448 image gives 8x8 cells",
            ko="FCN 한 번으로 도는 꽃 탐지기: 셀마다 숫자 10개, 448 이미지는 셀 8x8개가 된다")
# A classifier-localizer for 5 flower classes outputs 10 numbers: 0-4 class probabilities (softmax),
# 5 objectness (logistic), 6-9 the box. Its dense layer over the 7x7 bottleneck map becomes a 7x7 conv
# (lesson 01; FCN paper, Section 3.1), so a 448 image (a 14x14 map) gives an 8x8 grid of such 10-vectors in one pass.
C = 32  # channels of the bottleneck map (a stand-in for a real backbone's)
dense = Linear(C * 7 * 7, 10, **f64, seed=4)
detector = dense_to_conv(dense.weight, dense.bias, (C, 7, 7))
map224, map448 = rng.standard_normal((1, C, 7, 7)), rng.standard_normal((1, C, 14, 14))
out224, out448 = detector.forward(map224), detector.forward(map448)
lesson.say(f"224 image: map {map224.shape} -> {out224.shape};   448 image: map {map448.shape} -> {out448.shape}",
           ko=f"224 이미지: 맵 {map224.shape} -> {out224.shape};   448 이미지: 맵 {map448.shape} -> {out448.shape}")
lesson.close(out224[:, :, 0, 0], dense.forward(map224.reshape(1, -1)), "on a 224 image it is the dense layer",
             ko="224 이미지에서는 완전 연결 층(dense layer) 그 자체이다")
lesson.close(out448[:, :, 3, 5], dense.forward(map448[:, :, 3:10, 5:12].reshape(1, -1)),
             "on a 448 image cell (3, 5) is the dense layer on window (3, 5): 64 windows, one pass",
             ko="448 이미지에서 셀 (3, 5)는 윈도우 (3, 5)에 적용한 완전 연결 층이다: 윈도우 64개를 한 번에 계산한다")


def decode_flower(out):
    """(1, 10, S, S) raw outputs -> class probabilities (S, S, 5), objectness (S, S), box numbers (S, S, 4)."""
    z = out[0].transpose(1, 2, 0)
    e = np.exp(z[..., :5] - z[..., :5].max(axis=-1, keepdims=True))  # softmax, max subtracted (lesson 07)
    return e / e.sum(axis=-1, keepdims=True), sigmoid(z[..., 5]), z[..., 6:]


probs, objectness, boxes = decode_flower(out448)
lesson.say(f"decoded: class probabilities {probs.shape}, objectness {objectness.shape} in "
           f"[{objectness.min():.3f}, {objectness.max():.3f}], box numbers {boxes.shape}",
           ko=f"디코딩 결과: 클래스 확률 {probs.shape}, 객체성 점수(objectness) {objectness.shape}, 범위 "
              f"[{objectness.min():.3f}, {objectness.max():.3f}], 박스 숫자 {boxes.shape}")
cell_labels = rng.integers(0, 5, (1, 8, 8))  # a flower class for every cell
engine_loss, _ = softmax_cross_entropy_forward(out448[:, :5], cell_labels)
lesson.close(-np.log(probs[np.arange(8)[:, None], np.arange(8)[None, :], cell_labels[0]]).mean(), engine_loss,
             "the decoded class probabilities are the engine's per-pixel softmax: their mean -log p(label) over the "
             "64 cells is softmax_cross_entropy_forward of the first 5 channels",
             ko="디코딩한 클래스 확률은 엔진의 픽셀별 소프트맥스(softmax)이다: 64개 셀에 걸친 정답 레이블의 "
                "-log p(label) 평균은 처음 5개 채널(channel)의 softmax_cross_entropy_forward와 같다")
# The objectness output is trained as a binary classifier: sigmoid + binary cross-entropy, gradient sigmoid(z) - t.
z0, t0, eps = rng.standard_normal(5), np.array([1.0, 0.0, 1.0, 1.0, 0.0]), 1e-6


def bce(z):
    p = sigmoid(z)
    return -(t0 * np.log(p) + (1 - t0) * np.log(1 - p))


lesson.close((bce(z0 + eps) - bce(z0 - eps)) / (2 * eps), sigmoid(z0) - t0,
             "objectness: binary cross-entropy of sigmoid(z) has gradient sigmoid(z) - target (central "
             "differences)", rtol=1e-7, atol=1e-9,
             ko="객체성 점수: sigmoid(z)의 이진 교차 엔트로피(binary cross-entropy)는 기울기(gradient)가 "
                "sigmoid(z) - 목표값이다 (중앙 차분으로 확인)")
n_runs = sum((14 - p + 1) ** 2 for p in range(7, 15))
lesson.say(f"The old way: run the CNN on every p x p window of the 14x14 grid, then p+1 x p+1, ...: "
           f"{n_runs} runs for p = 7..14; the FCN does all {(14 - 7 + 1) ** 2} windows of one size in a single pass.",
           ko=f"예전 방식: 14x14 격자의 모든 p x p 윈도우에 CNN을 돌리고, 이어서 p+1 x p+1, ...: "
              f"p = 7..14이면 {n_runs}번 실행합니다. FCN은 한 크기의 윈도우 {(14 - 7 + 1) ** 2}개를 모두 한 번에 처리합니다.")

# %%
lesson.step("Non-max suppression: drop low objectness, keep the best box, remove boxes with IoU > 0.6, repeat",
            ko="비최대 억제(non-max suppression): 객체성 점수가 낮은 박스를 버리고, 최고 박스를 남기고, "
               "IoU > 0.6인 박스를 지우고, 반복한다")


def nms(boxes, score, score_threshold=0.5, iou_threshold=0.6):
    """Indices of the boxes kept by greedy non-max suppression (three steps), best first."""
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
lesson.say(f"{len(cands)} candidate boxes -> NMS (objectness >= 0.5, suppress IoU > 0.6) -> {len(kept)} kept: "
           f"{[cands[i] for i in kept]}",
           ko=f"후보 박스 {len(cands)}개 -> NMS (객체성 점수 >= 0.5, IoU > 0.6이면 억제) -> {len(kept)}개 남음: "
              f"{[cands[i] for i in kept]}")
same = [box_iou(cands[i], cands[j]) for i in range(len(cands)) for j in range(i)
        if cand_owner[i] == cand_owner[j] >= 0]
lesson.say(f"IoU between two boxes on the same disc: {min(same):.2f} .. {max(same):.2f}",
           ko=f"같은 원판 위 두 박스의 IoU: {min(same):.2f} .. {max(same):.2f}")
lesson.check(sorted(cand_owner[kept].tolist()) == [0, 1, 2],
             "one box per disc survives, and no background box (their objectness is below the threshold)",
             ko="원판마다 박스 하나가 살아남고, 배경 박스는 하나도 남지 않는다 (객체성 점수가 임계값보다 낮다)")
lesson.check(all(box_iou(cands[i], cands[j]) <= 0.6 for i in kept for j in kept if i != j),
             "no two kept boxes overlap by more than IoU 0.6 -- not even the touching pair's",
             ko="남은 박스 어느 두 개도 IoU 0.6보다 많이 겹치지 않는다 -- 맞닿은 쌍의 박스도 마찬가지다")
lesson.check(all(cand_score[i] < 0.5 or any(box_iou(cands[i], cands[j]) > 0.6 and cand_score[j] > cand_score[i]
                                            for j in kept) for i in range(len(cands)) if i not in kept),
             "every removed box was either below the threshold or overlapped a better kept box by IoU > 0.6",
             ko="지워진 박스는 모두 임계값보다 낮았거나, 남은 더 좋은 박스와 IoU > 0.6으로 겹쳤다")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
for ax, which, title in ((axes[0], range(len(cands)),
                          lesson.label(f"{len(cands)} candidates (line width ~ objectness)",
                                       ko=f"후보 {len(cands)}개 (선 굵기 ~ 객체성 점수)")),
                         (axes[1], kept, lesson.label(f"after non-max suppression: {len(kept)} boxes",
                                                      ko=f"비최대 억제 후: 박스 {len(kept)}개"))):
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
lesson.step("Precision/recall, AP (PASCAL's 11 recall points), mAP@0.5, and COCO's mAP@[0.5:0.05:0.95]",
            ko="정밀도(precision)/재현율(recall), AP (PASCAL의 재현율 11개 지점), mAP@0.5, 그리고 COCO의 "
               "mAP@[0.5:0.05:0.95]")


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
lesson.say("class 'circle' at IoU >= 0.5, detections by score:",
           ko="클래스 'circle', IoU >= 0.5 기준, 점수 순으로 본 탐지 결과:")
for (sc, _, _), hit, p, r in zip(sorted(det_circle, key=lambda d: -d[0]), hits, precision, recall):
    lesson.say(f"    score {sc:.2f}: {'TP' if hit else 'FP'}   precision {p:.3f}   recall {r:.2f}",
               ko=f"    점수 {sc:.2f}: {'TP' if hit else 'FP'}   정밀도 {p:.3f}   재현율 {r:.2f}")
lesson.check(hits == [True, False, True, True, False], "TP, FP (duplicate), TP, TP, FP (IoU 0.25)",
             ko="TP(참 양성), FP(거짓 양성: 중복), TP, TP, FP (IoU 0.25)")
lesson.check(precision[2] > precision[1] and recall[2] > recall[1],
             "precision can rise while recall rises (1/2 -> 2/3 -> 3/4): the reason to take the best "
             "precision at recall >= r",
             ko="재현율이 오르는 동안 정밀도도 오를 수 있다 (1/2 -> 2/3 -> 3/4): 그래서 재현율 >= r에서 "
                "가장 높은 정밀도를 취한다")
# By hand: best precision at recall >= 0, 0.1, 0.2 is 1; at 0.3 .. 0.7 it is 3/4; at 0.8 .. 1.0 there is none.
lesson.close(ap, (3 * 1 + 5 * 0.75 + 3 * 0) / 11, f"AP('circle') = (3 x 1 + 5 x 3/4 + 3 x 0) / 11 = {ap:.4f}",
             ko=f"평균 정밀도 AP('circle') = (3 x 1 + 5 x 3/4 + 3 x 0) / 11 = {ap:.4f}이다")
ap_rect = average_precision(det_rect, truth_rect, 0.5)[0]
map50 = (ap + ap_rect) / 2
lesson.close(map50, (6.75 / 11 + 1) / 2, f"mAP@0.5 = mean over the 2 classes of AP = ({ap:.4f} + {ap_rect:.0f}) / 2 = "
                                         f"{map50:.4f} (PASCAL VOC)",
             ko=f"mAP@0.5 = 클래스 2개의 AP 평균 = ({ap:.4f} + {ap_rect:.0f}) / 2 = {map50:.4f} (PASCAL VOC)")
thresholds = np.round(np.arange(0.5, 0.951, 0.05), 2)
ap_by_t = np.array([[average_precision(d, t, th)[0] for th in thresholds]
                    for d, t in ((det_circle, truth_circle), (det_rect, truth_rect))])
print(lesson.tr("AP per IoU threshold", ko="IoU 임계값별 AP"), thresholds.tolist(),
      lesson.tr("\n    circle:", ko="\n    클래스 circle:"), np.round(ap_by_t[0], 4).tolist(),
      lesson.tr("\n    rectangle:", ko="\n    클래스 rectangle:"), ap_by_t[1].tolist())
coco = float(ap_by_t.mean())
lesson.check(ap_by_t[0, 0] == ap and (np.diff(ap_by_t, axis=1) <= 0).all(),
             f"over COCO's {len(thresholds)} thresholds the AP at 0.5 is the one above, and a stricter threshold "
             f"never raises an AP",
             ko=f"COCO의 임계값 {len(thresholds)}개 가운데 0.5에서의 AP는 위의 값과 같고, 임계값이 엄격해져도 "
                f"AP가 오르는 일은 없다")
# By hand: from 0.7 the 0.67 box is a miss (AP 4.5/11), from 0.85 the 0.82 one too (3/11); the rectangle's 0.90
# box fails only at 0.95.
lesson.close(coco, ((4 * 6.75 + 3 * 4.5 + 3 * 3) / 110 + 9 / 10) / 2,
             f"COCO's mAP = mean over classes of the mean AP over the ten thresholds = {coco:.4f}",
             ko=f"COCO의 mAP = 임계값 열 개에 걸친 AP 평균을 다시 클래스들에 걸쳐 평균한 값 = {coco:.4f}이다")
lesson.check(coco < map50, f"mAP@[0.5:0.05:0.95] = {coco:.4f} < mAP@0.5 = {map50:.4f}: strict thresholds turn "
                           f"loosely placed boxes into false positives",
             ko=f"mAP@[0.5:0.05:0.95] = {coco:.4f} < mAP@0.5 = {map50:.4f}: 엄격한 임계값은 대충 놓인 박스를 "
                f"거짓 양성으로 만든다")
# The other summary, the area under the precision/recall curve (AUC): taken under the envelope of best
# precisions it is the 'all points' AP of later PASCAL VOC rounds (COCO samples 101 recall points instead).
envelope_area = sum((recall[i] - (recall[i - 1] if i else 0.0)) * precision[i:].max() for i in range(len(recall)))
lesson.say(f"area under the envelope of best precisions (all-points AP): {envelope_area:.4f};  11-point AP: {ap:.4f}",
           ko=f"최고 정밀도 포락선 아래의 넓이 (모든 점 AP): {envelope_area:.4f};  11점 AP: {ap:.4f}")
lesson.close(envelope_area, 0.25 * 1 + 0.25 * 0.75 + 0.25 * 0.75, "area under the curve, by hand: recall steps of "
                                                                     "0.25 at precision 1, 3/4, 3/4 = 0.625",
             ko="곡선 아래 넓이를 손으로 계산: 재현율 0.25씩의 계단이 정밀도 1, 3/4, 3/4에 있으므로 = 0.625")

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(recall, precision, "o-", color="tab:blue",
        label=lesson.label("precision, recall after each detection", ko="탐지 하나마다의 정밀도, 재현율"))
levels = np.linspace(0, 1, 11)
interp = [precision[recall >= r].max() if (recall >= r).any() else 0.0 for r in levels]
ax.step(levels, interp, where="mid", color="tab:orange",
        label=lesson.label("best precision at recall >= r (11 points)", ko="재현율 >= r에서의 최고 정밀도 (11점)"))
ax.plot(levels, interp, "s", color="tab:orange")
ax.set_xlabel(lesson.label("recall", ko="재현율")), ax.set_ylabel(lesson.label("precision", ko="정밀도"))
ax.set_ylim(-0.05, 1.05)
ax.set_title(lesson.label(f"class 'circle', IoU >= 0.5: AP = mean of the 11 orange points = {ap:.3f}",
                          ko=f"클래스 'circle', IoU >= 0.5: AP = 주황 점 11개의 평균 = {ap:.3f}"), fontsize=10)
ax.legend(fontsize=8, loc="lower left")
ax.grid(alpha=0.3)
lesson.save(fig, "pr_curve")

# %%
# %%
lesson.step("YOLO's output grid is an FCN: a 1x1 conv gives S x S x (numbers per cell): 30 in v1, 125 in v2",
            ko="YOLO의 출력 격자는 FCN이다: 1x1 합성곱이 S x S x (셀당 숫자 수)를 낸다: v1은 30, v2는 125")
# YOLO (2015) -> YOLOv2 (2016) -> YOLOv3 (2018) -> YOLOv4, YOLOv5 (2020): 'You Only Look Once', one pass over the
# image. Every cell of an S x S grid predicts B boxes; how many numbers per cell that takes depends on the version:
#  * YOLOv1 (Section 2): per box (x, y, w, h, confidence), plus C class probabilities for the whole cell:
#    B*5 + C. On PASCAL VOC S = 7, B = 2, C = 20: a 7x7x30 tensor (v1 computes it with two fully connected
#    layers; lesson 01 showed a conv computes the same numbers).
#  * YOLOv2 (Sections 2-3): no fully connected layers -- a 1x1 conv on the 13x13 map of a 416 image -- 5 anchor
#    boxes, and every box gets its own class scores: 5 x (5 + 20) = 125 numbers per cell on VOC.
#  * 45 = 20 class probabilities + 5 boxes x 4 coordinates + 5 objectness scores: v1's layout (one set of class
#    probabilities per cell) with v2's five boxes. It is a textbook simplification, not the head of any of the
#    papers (YOLOv3, Section 2.3: 3 boxes per cell at each of 3 scales, 3 x (4 + 1 + 80) = 255 numbers on COCO).
v2_grid = pooled_sizes(416, 416)[-1]  # YOLOv2's map: the engine's five stride-2 pools on a 416 image
LAYOUTS = {  # name: (grid S, boxes per cell B, classes C, class scores per box?)
    "YOLOv1, VOC": (7, 2, 20, False),  # v1: a 448 image, 7x7 cells of 64 px
    "YOLOv2, VOC": (v2_grid[0], 5, 20, True),
    "45 per cell": (v2_grid[0], 5, 20, False),
}


def numbers_per_cell(B, C, per_box):
    return B * (5 + C) if per_box else B * 5 + C


def read_cells(out, B, C, per_box):
    """Head output ``(1, D, S, S)`` -> boxes ``(S, S, B, 4)``, objectness ``(S, S, B)``, classes ``(S, S, [B,] C)``."""
    z = out[0].transpose(1, 2, 0)  # (S, S, D): one vector of D numbers per cell
    S1, S2, _ = z.shape
    if per_box:  # YOLOv2: [tx, ty, tw, th, to, p_1 .. p_C] for each anchor in turn
        per = z[..., : B * (5 + C)].reshape(S1, S2, B, 5 + C)
        return per[..., :4], per[..., 4], per[..., 5:]
    per = z[..., : B * 5].reshape(S1, S2, B, 5)  # v1: [x, y, w, h, confidence] per box, then the cell's C classes
    return per[..., :4], per[..., 4], z[..., B * 5 : B * 5 + C]


def pack_cells(boxes, objectness, classes, per_box):
    """The inverse of read_cells: the parts back into one vector per cell, ``(S, S, D)``."""
    per = np.concatenate([boxes, objectness[..., None]] + ([classes] if per_box else []), axis=-1)
    flat = per.reshape(*per.shape[:2], -1)
    return flat if per_box else np.concatenate([flat, classes], axis=-1)


layout_names = {"YOLOv1, VOC": "YOLOv1, VOC", "YOLOv2, VOC": "YOLOv2, VOC",
                "45 per cell": lesson.tr("45 per cell", ko="셀당 45개")}
heads, outs = {}, {}
lesson.say("layout           grid    boxes/cell  classes  numbers per cell  head output",
           ko="레이아웃         격자    셀당 박스   클래스   셀당 숫자 수      헤드 출력")
for name, (S, B_, K_, per_box) in LAYOUTS.items():
    D = numbers_per_cell(B_, K_, per_box)
    heads[name] = Conv2d(64, D, 1, **f64, seed=7)
    outs[name] = heads[name].forward(rng.standard_normal((1, 64, S, S)))
    parts = read_cells(outs[name], B_, K_, per_box)
    print(f"{pad(layout_names[name], 15)} {S:3d}x{S:<3d}  {B_:6d}     {K_:6d}   {D:9d} = "
          f"{'%d x (5 + %d)' % (B_, K_) if per_box else '%d x 5 + %d' % (B_, K_):12s}  {outs[name].shape}")
    lesson.check(np.array_equal(pack_cells(*parts, per_box), outs[name][0].transpose(1, 2, 0)) and
                 sum(p[0, 0].size for p in parts) == outs[name].shape[1],
                 f"{name}: the {outs[name].shape[1]} numbers of every cell are {B_} boxes x 4 coordinates, {B_} "
                 f"objectness scores and {K_ * (B_ if per_box else 1)} class scores, each read exactly once",
                 ko=f"{layout_names[name]}: 셀마다 숫자 {outs[name].shape[1]}개는 박스 {B_}개 x 좌표 4개, 객체성 점수 "
                    f"{B_}개, 클래스 점수 {K_ * (B_ if per_box else 1)}개이며, 각 숫자는 정확히 한 번씩 읽힌다")
lesson.check(outs["YOLOv2, VOC"].shape == (1, 125, 13, 13),
             "YOLOv2 on VOC: a 416 image, stride 32 -> a 13x13 grid of 125 numbers (its paper's 125 filters)",
             ko="VOC에서의 YOLOv2: 416 이미지, 스트라이드 32 -> 숫자 125개짜리 13x13 격자 (논문의 필터 125개)")
# Coordinates relative to the cell (YOLOv2, "Direct location prediction"): centre = (cell + sigmoid(t)) * stride, so
# a box cannot leave its cell; size = anchor * exp(t), so the network predicts log scale factors of its anchor.


def encode(box, anchor, stride):
    """Box ``(cy, cx, h, w)`` in pixels -> its cell ``(i, j)`` and the targets ``(ty, tx, th, tw)`` for one anchor."""
    cy, cx, h, w = box
    i, j = int(cy // stride), int(cx // stride)
    fy, fx = cy / stride - i, cx / stride - j  # position inside the cell, in [0, 1)
    return (i, j), (np.log(fy / (1 - fy)), np.log(fx / (1 - fx)), np.log(h / anchor[0]), np.log(w / anchor[1]))


def decode(cell, t, anchor, stride):
    (i, j), (ty, tx, th, tw) = cell, t
    return (i + sigmoid(ty)) * stride, (j + sigmoid(tx)) * stride, anchor[0] * np.exp(th), anchor[1] * np.exp(tw)


example_cell, example_t = encode((200.0, 130.0, 150.0, 45.0), (100.0, 50.0), 32)
lesson.say(f"a 150 x 45 box centred at (200, 130) with a 100 x 50 anchor: cell {example_cell}, t = "
           f"{np.round(example_t, 4).tolist()}; log 1.5 = {np.log(1.5):.4f}, log 0.9 = {np.log(0.9):.4f}",
           ko=f"중심이 (200, 130)인 150 x 45 박스, 100 x 50 앵커(anchor): 셀 {example_cell}, t = "
              f"{np.round(example_t, 4).tolist()}; log 1.5 = {np.log(1.5):.4f}, log 0.9 = {np.log(0.9):.4f}")
lesson.say(f"decoded back: {np.round(decode(example_cell, example_t, (100.0, 50.0), 32), 6).tolist()} -- the anchor "
           f"scaled 1.5 vertically and 0.9 horizontally",
           ko=f"다시 디코딩하면: {np.round(decode(example_cell, example_t, (100.0, 50.0), 32), 6).tolist()} -- 앵커를 "
              f"세로로 1.5배, 가로로 0.9배 한 것입니다")
trial = [(rng.uniform(1, 415), rng.uniform(1, 415), rng.uniform(5, 300), rng.uniform(5, 300)) for _ in range(20)]
lesson.close([decode(*encode(b, a, 32), a, 32) for b, a in zip(trial + [(200.0, 130.0, 150.0, 45.0)],
                                                                [(120.0, 80.0)] * 20 + [(100.0, 50.0)])],
             trial + [(200.0, 130.0, 150.0, 45.0)],
             "decode(encode(box)) is the box, for 20 random boxes and the 150 x 45 example: the cell, the sigmoid "
             "offsets and the log scales carry it all", rtol=1e-9, atol=1e-9,
             ko="무작위 박스 20개와 150 x 45 예에서 decode(encode(box))는 원래 박스이다: 셀, 시그모이드 오프셋, "
                "로그 배율이 모든 정보를 담는다")
# Several scales (YOLOv2, "Multi-Scale Training"): every 10 batches a new size from {320, 352, ..., 608}; the same head
# runs on any size -- only the grid changes.
lesson.say("input  grid     boxes   head parameters (the YOLOv2 head)",
           ko="입력   격자     박스    헤드 파라미터(parameter) (YOLOv2 헤드)")
v2 = heads["YOLOv2, VOC"]
head_params = v2.weight.size + v2.bias.size
for size in (320, 416, 608):
    g_ = pooled_sizes(size, size)[-1]
    o = v2.forward(rng.standard_normal((1, 64, *g_)))
    print(f"{size:5d}  {g_[0]:2d}x{g_[1]:<2d}  {5 * g_[0] * g_[1]:6d}   {head_params}")
    lesson.check(o.shape == (1, 125, size // 32, size // 32), f"{size}: a {size // 32}x{size // 32} grid, "
                                                              f"same {head_params} head parameters",
                 ko=f"{size}: {size // 32}x{size // 32} 격자, 헤드 파라미터는 똑같이 {head_params}개다")
lesson.say("The head's work grows with the cells (100, 169, 361): a small scale is cheaper and less accurate.",
           ko="헤드의 계산량은 셀 수(100, 169, 361)에 따라 늘어납니다: 작은 크기는 더 싸고 덜 정확합니다.")

fig, axes = plt.subplots(1, 2, figsize=(13, 4.4), gridspec_kw={"width_ratios": [1, 1.6]})
img64, toy_masks = toy_shapes(60, 64, seed=5, max_shapes=1)
j = next(i for i, m in enumerate(toy_masks) if (m == 3).any())  # a triangle
ax = axes[0]
ax.imshow(to_hwc(img64[j]))
b = box_of(toy_masks[j] > 0)
bx, by, bh, bw = to_centre(b)
S = 16  # a 4x4 grid on this 64x64 image, for the picture
(ci, cj), t_fig = encode((by, bx, bh, bw), (bh, bw), S)
for v in range(0, 65, S):
    ax.axhline(v - 0.5, color="white", lw=0.8), ax.axvline(v - 0.5, color="white", lw=0.8)
ax.add_patch(Rectangle((cj * S - 0.5, ci * S - 0.5), S, S, fill=False, hatch="///", ec="white", lw=2))
draw_box(ax, b, "black", lw=2.5)
ax.plot(bx - 0.5, by - 0.5, "o", color="black")
ax.set_title(lesson.label(f"4x4 grid: the hatched cell holds the box centre (dot) and predicts\nits offset in the cell "
                          f"(x, y) = sigmoid(t) = ({sigmoid(t_fig[1]):.2f}, {sigmoid(t_fig[0]):.2f})",
                          ko=f"4x4 격자: 빗금 친 셀에 박스 중심(점)이 있고, 이 셀이\n셀 안의 오프셋 "
                             f"(x, y) = sigmoid(t) = ({sigmoid(t_fig[1]):.2f}, {sigmoid(t_fig[0]):.2f})를 예측"),
             fontsize=9)
bare(ax)
ax = axes[1]
kinds = plt.matplotlib.colors.ListedColormap(["tab:blue", "tab:orange", "tab:green"])
for row, (name, (S_, B_, K_, per_box)) in enumerate(LAYOUTS.items()):
    if per_box:
        kind = np.tile([0] * 4 + [1] + [2] * K_, B_)
    else:
        kind = np.concatenate([np.tile([0] * 4 + [1], B_), [2] * K_])
    ax.imshow(kind[None], cmap=kinds, vmin=0, vmax=2, extent=(0, len(kind), 2.6 - row - 0.35, 2.6 - row + 0.35),
              aspect="auto", interpolation="nearest")
    ax.text(len(kind) + 1.5, 2.6 - row, lesson.label(f"{name}: {len(kind)} numbers",
                                                     ko=f"{layout_names[name]}: 숫자 {len(kind)}개"),
            va="center", fontsize=9)
ax.set_xlim(0, 180), ax.set_ylim(0, 3.2)
ax.set_yticks([])
ax.set_xlabel(lesson.label("position in one cell's vector of numbers", ko="셀 하나의 숫자 벡터 안의 위치"))
ax.set_title(lesson.label("one cell's numbers: box coordinates (blue), objectness (orange), class scores (green)",
                          ko="셀 하나의 숫자: 박스 좌표 (파랑), 객체성 점수 (주황), 클래스 점수 (초록)"), fontsize=9)
fig.tight_layout()
lesson.save(fig, "yolo_grid")

# %%
lesson.step("Anchor boxes: k-means on box shapes with d = 1 - IoU (YOLOv2's dimension clusters), not Euclidean",
            ko="앵커 박스: 박스 모양에 유클리드 거리가 아닌 d = 1 - IoU로 k-means를 돌린다 (YOLOv2의 차원 클러스터)")
# YOLOv2 (Section 2, "Dimension Clusters") picks its 5 anchors by k-means on the heights and widths of the training
# boxes. With the Euclidean distance on (h, w), big boxes produce big distances and pull the centroids their way;
# the paper uses d(box, centroid) = 1 - IoU(box, centroid) instead, which is scale-free (only the shapes matter,
# so both boxes sit on one centre). Its Table 1 on VOC 2007: 5 IoU centroids reach an average IoU of 61.0, 5
# Euclidean (sum of squared errors) centroids 58.7. The same here, on made-up training boxes of 12 to 320 px in a
# 416 image, tall and wide (toy_shapes' boxes are all about square and one size: no difference to see there).
box_rng = np.random.default_rng(8)
side = np.exp(box_rng.uniform(np.log(12), np.log(320), 400))  # sqrt(area), spread evenly on a log scale
aspect = np.exp(box_rng.normal(0.0, 0.6, 400))  # height / width
hw = np.round(np.stack([side * np.sqrt(aspect), side / np.sqrt(aspect)], axis=1))
B = 5


def shape_iou(hw, anchors):
    """IoU of boxes ``(n, 2)`` and anchors ``(k, 2)`` (heights, widths) placed on one centre: ``(n, k)``."""
    inter = np.minimum(hw[:, None, 0], anchors[None, :, 0]) * np.minimum(hw[:, None, 1], anchors[None, :, 1])
    return inter / (hw.prod(axis=1)[:, None] + anchors.prod(axis=1)[None] - inter)


def kmeans(hw, init, distance, max_rounds=200):
    """Lloyd's k-means with any distance: assign each box to its nearest centroid, move it to their mean, repeat."""
    centres = init.copy()
    for rounds in range(1, max_rounds + 1):
        assign = distance(hw, centres).argmin(axis=1)
        new = np.array([hw[assign == k].mean(axis=0) if (assign == k).any() else centres[k]
                        for k in range(len(centres))])
        if np.array_equal(new, centres):
            break
        centres = new
    return centres, assign, rounds


distances = {"1 - IoU": lambda hw, c: 1 - shape_iou(hw, c),
             "Euclidean": lambda hw, c: ((hw[:, None, :] - c[None]) ** 2).sum(axis=-1)}
init = hw[box_rng.choice(len(hw), B, replace=False)]  # both start from the same 5 boxes
clusters = {name: kmeans(hw, init, d) for name, d in distances.items()}
anchors = {name: c[np.argsort(c.prod(axis=1))] for name, (c, _, _) in clusters.items()}  # smallest first
small = hw.prod(axis=1) < np.median(hw.prod(axis=1))
avg_iou = {name: shape_iou(hw, a).max(axis=1).mean() for name, a in anchors.items()}
avg_small = {name: shape_iou(hw[small], a).max(axis=1).mean() for name, a in anchors.items()}
distance_names = {"1 - IoU": "1 - IoU", "Euclidean": lesson.tr("Euclidean", ko="유클리드")}
for name, (c, assign, rounds) in clusters.items():
    lesson.say(f"k-means, d = {name:9s}: {rounds:3d} rounds; anchors (h, w) {np.round(anchors[name]).astype(int).tolist()}; "
               f"average best IoU {avg_iou[name]:.3f} (smaller half of the boxes {avg_small[name]:.3f})",
               ko=f"k-means, d = {pad(distance_names[name], 9)}: {rounds:3d}회 반복; 앵커 (h, w) "
                  f"{np.round(anchors[name]).astype(int).tolist()}; 최고 IoU 평균 {avg_iou[name]:.3f} "
                  f"(작은 쪽 절반의 박스 {avg_small[name]:.3f})")
centres, assign, rounds = clusters["1 - IoU"]
# The IoU of two centred shapes is the box IoU of step 3 (itself the engine's segmentation IoU) of the two boxes.
lesson.close(shape_iou(hw[:40], centres),
             [[box_iou(to_corners(0, 0, *h_w), to_corners(0, 0, *c)) for c in centres] for h_w in hw[:40]],
             "the k-means distance is 1 - IoU, with the box IoU of step 3 (boxes centred on one point)",
             ko="k-means의 거리는 3단계의 박스 IoU로 잰 1 - IoU이다 (두 박스를 한 점에 중심을 맞춰 놓고)")
best = np.array([max(range(B), key=lambda k: box_iou(to_corners(0, 0, *h_w), to_corners(0, 0, *centres[k])))
                 for h_w in hw])
lesson.check(rounds < 200 and np.array_equal(assign, best) and
             np.allclose(centres, [hw[assign == k].mean(axis=0) for k in range(B)]),
             "at convergence every box belongs to the anchor it overlaps most (the highest IoU), and every anchor is "
             "the mean height and width of its boxes",
             ko="수렴하면 모든 박스는 가장 많이 겹치는(IoU가 가장 높은) 앵커에 속하고, 모든 앵커는 자기 박스들의 "
                "평균 높이와 너비이다")
moved = int((distances["Euclidean"](hw, centres).argmin(axis=1) != assign).sum())
lesson.say(f"with these anchors, the Euclidean distance would put {moved} of the {len(hw)} boxes with another anchor",
           ko=f"이 앵커들에서 유클리드 거리를 쓰면 박스 {len(hw)}개 가운데 {moved}개가 다른 앵커로 갑니다")
lesson.check(avg_iou["1 - IoU"] > avg_iou["Euclidean"] and
             avg_small["1 - IoU"] - avg_small["Euclidean"] > avg_iou["1 - IoU"] - avg_iou["Euclidean"] > 0,
             f"the distance matters: 1 - IoU anchors fit the boxes better (average IoU {avg_iou['1 - IoU']:.3f} vs "
             f"{avg_iou['Euclidean']:.3f}), most of all the small ones, which Euclidean k-means neglects",
             ko=f"거리가 중요하다: 1 - IoU 앵커가 박스에 더 잘 맞고 (평균 IoU {avg_iou['1 - IoU']:.3f} 대 "
                f"{avg_iou['Euclidean']:.3f}), 특히 유클리드 k-means가 소홀히 하는 작은 박스에서 그렇다")

fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
ax = axes[0]
for k in range(B):
    ax.scatter(hw[assign == k, 1], hw[assign == k, 0], s=9, alpha=0.5, color=plt.cm.tab10(k))
ax.scatter(anchors["1 - IoU"][:, 1], anchors["1 - IoU"][:, 0], marker="*", s=260, color="black",
           label=lesson.label("anchors, d = 1 - IoU", ko="앵커, d = 1 - IoU"))
ax.scatter(anchors["Euclidean"][:, 1], anchors["Euclidean"][:, 0], marker="X", s=120, color="tab:red",
           label=lesson.label("anchors, Euclidean d", ko="앵커, 유클리드 d"))
ax.set_xscale("log"), ax.set_yscale("log")
ax.set_xlabel(lesson.label("box width (px, log scale)", ko="박스 너비 (px, 로그 척도)"))
ax.set_ylabel(lesson.label("box height (px, log scale)", ko="박스 높이 (px, 로그 척도)"))
ax.set_title(lesson.label(f"k-means (k = 5) on {len(hw)} box shapes; colours: the 1 - IoU clusters",
                          ko=f"박스 모양 {len(hw)}개에 k-means (k = 5); 색: 1 - IoU 클러스터"), fontsize=9)
ax.legend(fontsize=8, loc="upper left")
ax = axes[1]
ax.set_xlim(-210, 210), ax.set_ylim(210, -210), ax.set_aspect("equal")
for name, color, ls in (("1 - IoU", "black", "-"), ("Euclidean", "tab:red", "--")):
    for h_, w_ in anchors[name]:
        ax.add_patch(Rectangle((-w_ / 2, -h_ / 2), w_, h_, fill=False, ec=color, ls=ls, lw=1.5))
    ax.plot([], [], color=color, ls=ls, label=lesson.label(f"d = {name}: average best IoU {avg_iou[name]:.3f}",
                                                           ko=f"d = {distance_names[name]}: 최고 IoU 평균 "
                                                              f"{avg_iou[name]:.3f}"))
ax.set_title(lesson.label("the two anchor sets, centred (px): Euclidean k-means spends\nits anchors on the big boxes",
                          ko="중심을 맞춘 두 앵커 집합 (px): 유클리드 k-means는\n앵커를 큰 박스에 써 버림"), fontsize=9)
ax.legend(fontsize=8, loc="lower center")
fig.tight_layout()
lesson.save(fig, "anchors")

# %%
lesson.done(summary=[
    ("A semantic mask is an instance map with the ids forgotten: touching objects merge into one region.",
     "의미적 분할 마스크는 id를 잊어버린 인스턴스 맵이다: 맞닿은 객체는 한 영역으로 합쳐진다."),
    ("Box IoU from 4 coordinates equals the engine's segmentation IoU of the two rasterised boxes; equal MSE can "
     "hide very different overlaps.",
     "좌표 4개로 구한 박스 IoU는 픽셀로 칠한 두 박스에 대한 엔진의 분할 IoU와 같다. MSE가 같아도 겹침은 전혀 "
     "다를 수 있다."),
    ("A dense detector head run as a conv is the sliding window in one pass; NMS keeps one box per object.",
     "완전 연결 층으로 된 탐지기 헤드를 합성곱으로 돌리면 슬라이딩 윈도우를 한 번에 계산한다. NMS는 객체마다 박스 "
     "하나를 남긴다."),
    ("AP, mAP@0.5 and COCO's mAP@[0.5:0.05:0.95] agree with their values worked out by hand.",
     "AP, mAP@0.5, COCO의 mAP@[0.5:0.05:0.95]는 손으로 계산한 값과 일치한다."),
    ("YOLO's numbers per cell are read exactly once: 30 in v1 (7x7, B=2), 125 in v2 (13x13, 5 x (5 + 20)), 45 in "
     "the simplified layout; its box coding round-trips.",
     "YOLO의 셀당 숫자는 정확히 한 번씩 읽힌다: v1은 30개 (7x7, B=2), v2는 125개 (13x13, 5 x (5 + 20)), 단순화한 "
     "레이아웃은 45개다. 박스 부호화는 디코딩하면 원래대로 돌아온다."),
    ("k-means with d = 1 - IoU gives anchors that fit the boxes better than Euclidean k-means, most of all the small "
     "ones.",
     "d = 1 - IoU로 돌린 k-means는 유클리드 k-means보다 박스에 더 잘 맞는 앵커를 주며, 특히 작은 박스에서 그렇다."),
], exercises=[])

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

# %% [markdown]
# # 레슨 09: 토이 도형으로 작은 FCN을 학습하고 성능 측정하기
#
# 지금까지는 순전파(forward pass) 한 번과 역전파(backward pass) 한 번이 전부였습니다. 학습(training)은
# 이것을 되풀이합니다: 순전파, 픽셀별 교차 엔트로피(cross-entropy, 레슨 07), 역전파, 옵티마이저 한 스텝 --
# 곧 `fcn_scratch.train.fit`입니다. 성능을 재려면 분할(segmentation) 지표가 필요한데, 모두
# **혼동 행렬(confusion matrix)** 하나에서 읽어 냅니다(`fcn_scratch.metrics`). 이 레슨에서는
#
# 1. 토이 데이터(`fcn_scratch.data.toy_shapes`)를 만듭니다: 질감 있는 배경 위의 원판, 직사각형,
#    삼각형, 가는 고리와 그 마스크입니다.
# 2. 작은 예제의 **픽셀 정확도(pixel accuracy)**와 **평균 IoU(mean IoU)**를 손으로 계산해 엔진의 값과
#    나란히 놓고, 평균 IoU가 대표 지표인 이유를 보여 줍니다.
# 3. **FCN-32s, FCN-16s, FCN-8s**를 같은 데이터로, 같은 초기 백본(backbone)과 같은 예산으로 학습합니다.
# 4. 검증(validation) 세트 전체에 대한 혼동 행렬 하나로 세 모델을 평가합니다.
# 5. 세 모델의 예측을 나란히 보여 줍니다: 스킵 연결(skip connection)이 세밀할수록 마스크도 세밀합니다.
# 6. 이미지가 왜 64x64인지 증명합니다: 32x32에서는 FCN-32s가 아무것도 제자리에 놓지 못합니다.
#
# 여기서는 예산이 작습니다(64x64 이미지, 블록마다 합성곱(convolution)이 하나뿐인 가는 신경망, 약 15초의
# 학습). 그래서 레슨이 약 20초면 끝납니다. 제대로 된 비교(이미지 480장, 'tiny' 프리셋, 14 에포크(epoch):
# 몇 분)는 `fcn-scratch compare`가 합니다. 더 작게 하지 않고 64x64인 이유: 32x32에서는 FCN-32s의
# 점수 맵(score map)이 1x1입니다 -- 이미지 전체에 점수 벡터 하나를 업샘플링(upsampling)할 뿐이므로 --
# 한 클래스(class)만 칠하거나 매끈하게 번진 얼룩밖에 그릴 수 없습니다(6단계에서 증명합니다). 64x64에서는
# FCN-32s에게 덩어리를 놓을 셀이 2x2개 있고, FCN-16s에게는 4x4개, FCN-8s에게는 8x8개 있습니다.
# 출처: FCN 논문(Long, Shelhamer & Darrell, arXiv:1411.4038)의 4.2절(스킵 연결: FCN-32s -> 16s -> 8s,
# "refining fully convolutional nets by fusing information from layers with different strides improves
# segmentation detail", 곧 스트라이드(stride)가 다른 층들의 정보를 융합해 완전 합성곱(fully convolutional)
# 신경망을 다듬으면 분할의 세부가 좋아진다는 것, 그림 4)과 5절(픽셀 정확도, 평균 정확도, 평균 IU, 빈도 가중 IU를
# 모두 혼동 행렬 하나에서 계산); 학습 노트의 평가 지표(픽셀 정확도, 평균 IoU = 교집합/합집합(intersection over union)).
# 실행: `python lessons/09_training_and_metrics.py --lang ko [--step] [--no-figures] [--figures DIR]`.

# %%
import os

# One BLAS thread, unless you choose otherwise: this slim network's matrix products are too small to gain
# from a second thread, and on a busy machine that thread costs a scheduler time slice at every product
# (measured here on 2 shared cores: ~0.23 s per training step with two threads, ~0.025 s with one).
# It must be set before NumPy loads OpenBLAS; in a notebook NumPy is already loaded and this does nothing.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from _common import Lesson, draw_matrix, text_width  # noqa: E402  (puts the repo on sys.path, picks a headless backend)

import time  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fcn_scratch.data import CLASS_NAMES, IGNORE_INDEX, to_hwc, toy_shapes  # noqa: E402
from fcn_scratch.metrics import confusion_matrix, scores  # noqa: E402
from fcn_scratch.models import FCN8s, FCN16s, FCN32s, pooled_sizes  # noqa: E402
from fcn_scratch.train import evaluate, fit, predict  # noqa: E402
from fcn_scratch.viz import colorize, comparison_figure  # noqa: E402

lesson = Lesson("09_training_and_metrics", "Training FCN-32s/16s/8s on toy shapes; pixel accuracy and mean IoU",
                ko="토이 도형으로 FCN-32s/16s/8s 학습하기, 픽셀 정확도와 평균 IoU")
lesson.say(f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']} (set it yourself to override)",
           ko=f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']} (바꾸려면 직접 설정하세요)")
lesson.avoid_interpreted_kernels()  # under NUMBA_DISABLE_JIT=1 this training would take hours in plain Python
K = len(CLASS_NAMES)
SIZE, N_TRAIN, N_VAL = 64, 128, 48  # 64: FCN-32s gets a 2x2 score map (at 32 it is 1x1, see step 6)
EPOCHS, BATCH, LR = 12, 8, 5e-3
SLIM = dict(widths=(8, 16, 32, 64, 64), convs_per_block=(1, 1, 1, 1, 1), fc_channels=64, dropout=0.0)
THREADS = 1  # fit()'s data-parallel threads, fixed so that the numbers repeat on any machine
# The class names as figures show them (CLASS_NAMES are the engine's identifiers: printed as they are).
KO_CLASS_NAMES = {"background": "배경", "circle": "원", "rectangle": "직사각형", "triangle": "삼각형", "ring": "고리"}
CLASS_LABELS = [lesson.label(name, ko=KO_CLASS_NAMES[name]) for name in CLASS_NAMES]


def right_columns(text, width):
    """``text`` cut and right-aligned to ``width`` terminal columns (a Hangul syllable takes two), like
    f"{text[:width]:>{width}s}"."""
    kept, used = "", 0
    for c in text:
        w = text_width(c)
        if used + w > width:
            break
        kept, used = kept + c, used + w
    return " " * (width - used) + kept

# %%
lesson.step("The toy data: shapes on textured backgrounds, and a mask with one class id per pixel",
            ko="토이 데이터: 질감 있는 배경 위의 도형, 그리고 픽셀(pixel)마다 클래스(class) id 하나를 담은 마스크")
images, masks = toy_shapes(N_TRAIN, SIZE, seed=0)
val_images, val_masks = toy_shapes(N_VAL, SIZE, seed=1000)  # another seed: images the models never train on
lesson.say(f"train: images {images.shape} {images.dtype}, masks {masks.shape} {masks.dtype};  val: {val_images.shape}",
           ko=f"학습(training): 이미지 {images.shape} {images.dtype}, 마스크 {masks.shape} {masks.dtype};  "
              f"검증(validation): {val_images.shape}")
print(lesson.tr("classes:", ko="클래스:"), dict(enumerate(CLASS_NAMES)))
freq = np.bincount(masks.ravel(), minlength=K) / masks.size
print(lesson.tr("pixel share per class:", ko="클래스별 픽셀 비율:"),
      {name: f"{100 * f:.1f}%" for name, f in zip(CLASS_NAMES, freq)})
lesson.check(images.shape == (N_TRAIN, 3, SIZE, SIZE) and masks.shape == (N_TRAIN, SIZE, SIZE),
             "images (N, 3, H, W) float32, masks (N, H, W) int",
             ko="이미지는 (N, 3, H, W) float32, 마스크는 (N, H, W) 정수다")
lesson.check(set(np.unique(masks)) <= set(range(K)) and freq[0] > 0.5,
             "every pixel has a class in [0, 5); background is most of the image",
             ko="모든 픽셀의 클래스가 [0, 5)에 있고, 이미지의 대부분은 배경이다")
lesson.check(np.array_equal(toy_shapes(3, SIZE, seed=0)[1], masks[:3]),
             "deterministic: image i depends only on (seed, i)",
             ko="결정론적이다: 이미지 i는 (seed, i)에만 달려 있다")

fig, axes = plt.subplots(2, 6, figsize=(12, 4.4))
for j in range(6):
    axes[0, j].imshow(to_hwc(images[j]), interpolation="nearest")
    axes[1, j].imshow(colorize(masks[j], K), interpolation="nearest")
    axes[0, j].set_title(lesson.label(f"image {j}", ko=f"이미지 {j}"), fontsize=9)
    axes[1, j].set_xlabel(", ".join(CLASS_LABELS[k] for k in np.unique(masks[j]) if k), fontsize=8)
for ax in axes.ravel():
    ax.set_xticks([]), ax.set_yticks([])
axes[0, 0].set_ylabel(lesson.label("input", ko="입력")), axes[1, 0].set_ylabel(lesson.label("mask", ko="마스크"))
fig.suptitle(lesson.label(f"Toy shapes, {SIZE}x{SIZE}: mask colours 1 circle, 2 rectangle, 3 triangle, 4 ring "
                          f"(VOC palette)",
                          ko=f"토이 도형, {SIZE}x{SIZE}: 마스크 색 1 원, 2 직사각형, 3 삼각형, 4 고리 (VOC 팔레트)"),
             fontsize=10)
fig.tight_layout()
lesson.save(fig, "toy_data")

# %%
lesson.step("Pixel accuracy and mean IoU by hand, from the confusion matrix (rows = truth, columns = prediction)",
            ko="혼동 행렬(confusion matrix)로 손수 구하는 픽셀 정확도(pixel accuracy)와 평균 IoU(mean IoU) "
               "(행 = 정답, 열 = 예측)")
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
print(lesson.tr("confusion matrix cm[i, j] = pixels of true class i predicted as j:\n",
                ko="혼동 행렬 cm[i, j] = 정답 클래스가 i인데 j로 예측된 픽셀 수:\n"), cm)
n_valid = int((truth != IGNORE_INDEX).sum())
lesson.check(cm.sum() == n_valid == 34, "it counts the 34 non-ignored pixels; the 2 ignored ones count nowhere",
             ko="무시하지 않는 픽셀 34개를 센다. 무시하는 픽셀 2개는 어디에도 세지 않는다")
diag, rows, cols = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
pixel_acc = diag.sum() / cm.sum()
iou = diag / (rows + cols - diag)  # intersection / union: |truth_i and pred_i| / |truth_i or pred_i|
lesson.say(f"pixel accuracy = trace / total = {diag.sum()} / {cm.sum()} = {pixel_acc:.4f}",
           ko=f"픽셀 정확도 = 대각합(trace) / 전체 = {diag.sum()} / {cm.sum()} = {pixel_acc:.4f}")
for i in range(3):
    lesson.say(f"IoU class {i} = n_ii / (row_i + col_i - n_ii) = {diag[i]} / ({rows[i]} + {cols[i]} - {diag[i]}) "
               f"= {iou[i]:.4f}",
               ko=f"클래스 {i}의 IoU = n_ii / (row_i + col_i - n_ii) = {diag[i]} / ({rows[i]} + {cols[i]} - {diag[i]}) "
                  f"= {iou[i]:.4f}")
lesson.say(f"mean IoU = mean of the 3 = {iou.mean():.4f}", ko=f"평균 IoU = 세 값의 평균 = {iou.mean():.4f}")
engine = scores(cm)
lesson.close(engine["pixel_accuracy"], pixel_acc, f"the engine's pixel accuracy {engine['pixel_accuracy']:.4f}",
             ko=f"엔진이 계산한 픽셀 정확도 {engine['pixel_accuracy']:.4f}")
lesson.close(engine["per_class_iou"], iou, "the engine's per-class IoU", ko="엔진이 계산한 클래스별 IoU")
lesson.close(engine["mean_iou"], iou.mean(), f"the engine's mean IoU {engine['mean_iou']:.4f}",
             ko=f"엔진이 계산한 평균 IoU {engine['mean_iou']:.4f}")
# Why mean IoU and not pixel accuracy: a 'model' that always answers background scores well on pixels.
lazy = scores(confusion_matrix(truth, np.zeros_like(pred), 3))
lesson.say(f"always 'background': pixel accuracy {lazy['pixel_accuracy']:.3f}, mean IoU {lazy['mean_iou']:.3f}",
           ko=f"어디서나 'background'(배경)만 답하면: 픽셀 정확도 {lazy['pixel_accuracy']:.3f}, "
              f"평균 IoU {lazy['mean_iou']:.3f}")
lesson.check(lazy["pixel_accuracy"] > 0.7 and lazy["mean_iou"] < 0.3,
             f"predicting background everywhere keeps {100 * lazy['pixel_accuracy']:.0f}% pixel accuracy but scores 0 "
             f"IoU on both objects",
             ko=f"어디서나 배경이라고 예측해도 픽셀 정확도는 {100 * lazy['pixel_accuracy']:.0f}%나 되지만, "
                f"두 객체의 IoU는 모두 0이다")

fig, axes = plt.subplots(1, 3, figsize=(12, 4))
draw_matrix(axes[0], np.where(truth == 255, -1, truth),
            lesson.label("truth (-1 = ignored 255)", ko="정답 (-1 = 무시하는 255)"), fmt="{:.0f}", cmap="Pastel1",
            vmin=-1, vmax=8)
draw_matrix(axes[1], pred, lesson.label("prediction", ko="예측"), fmt="{:.0f}", cmap="Pastel1", vmin=-1, vmax=8)
draw_matrix(axes[2], cm, lesson.label(f"confusion matrix (rows truth, cols prediction)\npixel acc {pixel_acc:.3f}, "
                                      f"IoU {np.round(iou, 3).tolist()}, mIoU {iou.mean():.3f}",
                                      ko=f"혼동 행렬 (행 정답, 열 예측)\n픽셀 정확도 {pixel_acc:.3f}, "
                                         f"IoU {np.round(iou, 3).tolist()}, mIoU {iou.mean():.3f}"),
            fmt="{:.0f}", cmap="Blues")
axes[2].set_xticks(range(3)), axes[2].set_yticks(range(3))
axes[2].set_xlabel(lesson.label("predicted class", ko="예측 클래스"))
axes[2].set_ylabel(lesson.label("true class", ko="정답 클래스"))
fig.tight_layout()
lesson.save(fig, "confusion_matrix")

# %%
lesson.step("Train FCN-32s, FCN-16s, FCN-8s on the same data: same initial backbone, same budget",
            ko="같은 데이터로 FCN-32s, FCN-16s, FCN-8s 학습: 같은 초기 백본(backbone), 같은 예산")
lesson.say(f"{N_TRAIN} images {SIZE}x{SIZE}, {EPOCHS} epochs, batch {BATCH}, Adam lr {LR} (poly decay); widths "
           f"{SLIM['widths']}, fc {SLIM['fc_channels']}. At {SIZE}x{SIZE} the score map (1/32) is "
           f"{pooled_sizes(SIZE, SIZE)[4]}, pool4 (1/16) {pooled_sizes(SIZE, SIZE)[3]}, pool3 (1/8) "
           f"{pooled_sizes(SIZE, SIZE)[2]}; one 3x3 conv per block keeps the lesson to seconds.",
           ko=f"{SIZE}x{SIZE} 이미지 {N_TRAIN}장, {EPOCHS} 에포크(epoch), 배치(batch) {BATCH}, Adam 학습률(learning rate) "
              f"{LR} (poly 감쇠); 채널(channel) 수 {SLIM['widths']}, fc {SLIM['fc_channels']}. {SIZE}x{SIZE}에서 "
              f"점수 맵(score map)(1/32)은 {pooled_sizes(SIZE, SIZE)[4]}, pool4(1/16)는 {pooled_sizes(SIZE, SIZE)[3]}, "
              f"pool3(1/8)은 {pooled_sizes(SIZE, SIZE)[2]}입니다. 블록마다 3x3 합성곱을 하나만 두어 레슨이 몇 초 만에 끝납니다.")
models, histories, seconds = {}, {}, {}
for name, cls in (("FCN-32s", FCN32s), ("FCN-16s", FCN16s), ("FCN-8s", FCN8s)):
    model = cls(K, **SLIM, seed=0)  # seed 0 for all three: identical backbone weights to start from
    t0 = time.perf_counter()
    histories[name] = fit(model, images, masks, epochs=EPOCHS, batch_size=BATCH, lr=LR, seed=0, optimizer="adam",
                          val_images=val_images, val_masks=val_masks, progress=False, threads=THREADS)
    seconds[name], models[name] = time.perf_counter() - t0, model
    h = histories[name]
    lesson.say(f"    {name}: loss {h['loss'][0]:.3f} -> {h['loss'][-1]:.3f}, validation mean IoU "
               f"{h['val_mean_iou'][0]:.3f} -> {h['val_mean_iou'][-1]:.3f}  ({seconds[name]:.1f} s)",
               ko=f"    {name}: 손실 {h['loss'][0]:.3f} -> {h['loss'][-1]:.3f}, 검증 평균 IoU "
                  f"{h['val_mean_iou'][0]:.3f} -> {h['val_mean_iou'][-1]:.3f}  ({seconds[name]:.1f}초)")
lesson.check(all(h["stopped"] is None and h["loss"][-1] < 0.7 * h["loss"][0] for h in histories.values()),
             "all three trained without diverging, and their training loss fell by more than 30%",
             ko="세 모델 모두 발산 없이 학습되었고, 학습 손실(training loss)이 30% 넘게 줄었다")
lesson.check(np.array_equal(FCN8s(K, **SLIM, seed=0).conv1_1.weight, FCN32s(K, **SLIM, seed=0).conv1_1.weight),
             "the three started from the same backbone weights (only the decoders differ)",
             ko="세 모델은 같은 백본 가중치(weight)에서 출발했다 (디코더(decoder)만 다르다)")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for name, h in histories.items():
    axes[0].plot(h["epoch"], h["loss"], marker="o", ms=3, label=name)
    axes[1].plot(h["epoch"], h["val_mean_iou"], marker="o", ms=3, label=name)
axes[0].set_ylabel(lesson.label("training loss (cross-entropy)", ko="학습 손실 (교차 엔트로피)"))
axes[1].set_ylabel(lesson.label("validation mean IoU", ko="검증 평균 IoU"))
for ax in axes:
    ax.set_xlabel(lesson.label("epoch", ko="에포크")), ax.grid(alpha=0.3), ax.legend()
fig.tight_layout()
lesson.save(fig, "training_curves")

# %%
lesson.step("Evaluate: one confusion matrix over the whole validation set, then every metric from it",
            ko="평가: 검증(validation) 세트 전체에 대한 혼동 행렬 하나, 그리고 거기서 나오는 모든 지표")
results = {name: evaluate(model, val_images, val_masks) for name, model in models.items()}
print(lesson.tr(f"{'':9s}{'pixel acc':>10s}{'mean acc':>10s}{'mean IoU':>10s}{'fw IoU':>8s}   IoU per class ",
                ko=f"열: pixel acc = 픽셀 정확도, mean acc = 평균 정확도, mean IoU = 평균 IoU, fw IoU = 빈도 가중 IoU\n"
                   f"{'':9s}{'pixel acc':>10s}{'mean acc':>10s}{'mean IoU':>10s}{'fw IoU':>8s}   클래스별 IoU  ")
      + " ".join(right_columns(lesson.tr(c, ko=KO_CLASS_NAMES[c]), 6) for c in CLASS_NAMES))
for name, r in results.items():
    print(f"{name:9s}{r['pixel_accuracy']:10.3f}{r['mean_accuracy']:10.3f}{r['mean_iou']:10.3f}{r['fw_iou']:8.3f}"
          f"                 " + " ".join(f"{v:6.2f}" for v in r["per_class_iou"]))
cm8 = results["FCN-8s"]["confusion_matrix"]
print(lesson.tr("FCN-8s confusion matrix (rows truth, columns prediction):\n",
                ko="FCN-8s의 혼동 행렬 (행 정답, 열 예측):\n"), cm8)
lesson.check(cm8.sum() == val_masks.size, f"it counts every validation pixel once ({val_masks.size})",
             ko=f"검증 픽셀을 모두 한 번씩 센다 ({val_masks.size})")
d8 = np.diag(cm8)
lesson.close(results["FCN-8s"]["pixel_accuracy"], d8.sum() / cm8.sum(), "pixel accuracy = trace / total, by hand",
             ko="픽셀 정확도 = 대각합 / 전체, 손 계산과 같다")
lesson.close(results["FCN-8s"]["mean_iou"], np.mean(d8 / (cm8.sum(0) + cm8.sum(1) - d8)),
             "mean IoU = mean of n_ii / (row_i + col_i - n_ii), by hand",
             ko="평균 IoU = n_ii / (row_i + col_i - n_ii)의 평균, 손 계산과 같다")
lesson.check(results["FCN-8s"]["mean_iou"] > results["FCN-32s"]["mean_iou"] + 0.1,
             f"FCN-8s beats FCN-32s in mean IoU by more than 0.1 "
             f"({results['FCN-8s']['mean_iou']:.3f} vs {results['FCN-32s']['mean_iou']:.3f})",
             ko=f"FCN-8s는 평균 IoU에서 FCN-32s를 0.1 넘게 앞선다 "
                f"({results['FCN-8s']['mean_iou']:.3f} 대 {results['FCN-32s']['mean_iou']:.3f})")
mious = {name: r["mean_iou"] for name, r in results.items()}
lesson.check(mious["FCN-32s"] < mious["FCN-16s"] < mious["FCN-8s"],
             "the finer the skips, the higher the mean IoU: FCN-32s < FCN-16s < FCN-8s "
             f"({mious['FCN-32s']:.3f} < {mious['FCN-16s']:.3f} < {mious['FCN-8s']:.3f})",
             ko="스킵 연결(skip connection)이 세밀할수록 평균 IoU가 높다: FCN-32s < FCN-16s < FCN-8s "
                f"({mious['FCN-32s']:.3f} < {mious['FCN-16s']:.3f} < {mious['FCN-8s']:.3f})")
# With a 2x2 score map (64/32), FCN-32s can only paint a few smooth blobs; the pool4 and pool3 skips bring
# 4x4 and 8x8 grids of local evidence. The paper saw the same order on PASCAL VOC (mean IU 59.4, 62.4,
# 62.7, its table 2), with a far smaller gap: its images are 500 px, not 64.

# %%
lesson.step("Predictions side by side: image, truth, FCN-32s, FCN-16s, FCN-8s",
            ko="예측 나란히 보기: 이미지, 정답, FCN-32s, FCN-16s, FCN-8s")
show = 5
preds = {name: predict(model, val_images[:show]) for name, model in models.items()}
for name, p in preds.items():
    right = np.mean(p == val_masks[:show])
    lesson.say(f"    {name}: {100 * right:.1f}% of the pixels of these {show} images right, classes used "
               f"{sorted(set(np.unique(p).tolist()))}",
               ko=f"    {name}: 이 이미지 {show}장의 픽셀 중 {100 * right:.1f}%를 맞혔고, 사용한 클래스는 "
                  f"{sorted(set(np.unique(p).tolist()))}입니다")
lesson.check(all(p.shape == (show, SIZE, SIZE) for p in preds.values()),
             "predict() gives one class id per pixel, (N, H, W), in eval mode",
             ko="predict()는 평가 모드에서 픽셀마다 클래스 id 하나를 (N, H, W)로 준다")
lesson.check(np.mean(preds["FCN-8s"] == val_masks[:show]) > np.mean(preds["FCN-32s"] == val_masks[:show]),
             "on these images too, FCN-8s gets more pixels right than FCN-32s",
             ko="이 이미지들에서도 FCN-8s가 FCN-32s보다 더 많은 픽셀을 맞힌다")
lesson.check((preds["FCN-32s"] > 0).any(), "FCN-32s does place objects (blobs), not background everywhere",
             ko="FCN-32s도 객체(덩어리)를 놓기는 한다: 어디서나 배경으로 칠하지는 않는다")
lesson.say("Look at the figure: FCN-32s paints a few small blobs and misses many objects (2x2 score cells, each\n"
           "spread by a 64-pixel bilinear hat); FCN-16s one rounded blob per object (4x4 cells); FCN-8s follows\n"
           "corners and separates touching shapes (8x8 cells, one per 8 pixels).",
           ko="그림을 보세요: FCN-32s는 작은 덩어리 몇 개만 칠하고 많은 객체를 놓칩니다 (2x2 점수 셀 하나하나가\n"
              "64픽셀 너비의 쌍선형(bilinear) 모자로 퍼집니다). FCN-16s는 객체마다 둥근 덩어리를 하나씩 그립니다 (4x4 셀).\n"
              "FCN-8s는 모서리를 따라가고 맞닿은 도형을 갈라놓습니다 (8x8 셀, 8픽셀마다 하나).")
fig = comparison_figure(val_images[:show], val_masks[:show], preds, CLASS_LABELS, scores=mious,
                        words=(lesson.label("image", ko="이미지"), lesson.label("ground truth", ko="정답"),
                               lesson.label("ignored (255)", ko="무시 (255)")))
top = fig.subplotpars.top  # comparison_figure keeps its top margin for the column titles: put ours above them
fig.subplots_adjust(top=top - 0.04)
fig.suptitle(lesson.label(f"Validation images (never trained on); {EPOCHS} epochs on {N_TRAIN} images of {SIZE}x{SIZE}",
                          ko=f"검증 이미지 (학습에 쓰지 않음); {SIZE}x{SIZE} 이미지 {N_TRAIN}장으로 {EPOCHS} 에포크 학습"),
             fontsize=10, y=0.995, va="top")
lesson.save(fig, "fcn32_16_8_side_by_side")
lesson.say("""The full comparison (64x64 images, 480 of them, the 'tiny' preset, 14 epochs of Adam; minutes, not
seconds), with the paper's table columns (pixel acc., mean acc., mean IU, f.w. IU) and this figure:
    fcn-scratch compare            (or: python -m fcn_scratch compare --epochs 30 --out runs/compare)""",
           ko="""제대로 된 비교(64x64 이미지 480장, 'tiny' 프리셋, Adam으로 14 에포크. 몇 초가 아니라 몇 분이 걸립니다)는
논문 표의 열(픽셀 정확도, 평균 정확도, 평균 IU, 빈도 가중 IU)과 이 그림을 함께 보여 줍니다:
    fcn-scratch compare            (또는: python -m fcn_scratch compare --epochs 30 --out runs/compare)""")

# %%
lesson.step("Why not 32x32: there FCN-32s's score map is 1x1 -- one score vector for the whole image",
            ko="왜 32x32가 아닌가: 거기서는 FCN-32s의 점수 맵이 1x1 -- 이미지 전체에 점수 벡터 하나뿐이다")
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
lesson.say(f"32x32 input: pool5 {h.shape[2:]}, score map {score.shape[2:]}, logits {logits.shape}",
           ko=f"32x32 입력: pool5 {h.shape[2:]}, 점수 맵 {score.shape[2:]}, 로짓(logit) {logits.shape}")
lesson.check(score.shape[2:] == (1, 1) and pooled_sizes(32, 32)[4] == (1, 1),
             "at 32x32 the score map is 1x1: one score vector per image",
             ko="32x32에서는 점수 맵이 1x1이다: 이미지마다 점수 벡터가 하나뿐이다")
lesson.close(logits, stamped, "the logits are sum_c s[c] W[c] + b: the image enters only through its K scores",
             rtol=1e-4, atol=1e-4 * float(np.abs(logits).max()),
             ko="로짓은 sum_c s[c] W[c] + b이다: 이미지는 K개의 점수를 통해서만 들어온다")
bilinear32 = FCN32s(K, **SLIM, seed=0).eval()  # the same trained weights, upscore32 back at its bilinear init
bilinear32.load_state_dict({k: v for k, v in fcn32.state_dict().items() if not k.startswith("upscore32")} |
                           {k: v for k, v in bilinear32.state_dict().items() if k.startswith("upscore32")})
painted = predict(bilinear32, small)
print(lesson.tr("classes painted on each 32x32 image, bilinear upscore32:",
                ko="32x32 이미지마다 칠한 클래스, 쌍선형 upscore32:"), [np.unique(p).tolist() for p in painted])
print(lesson.tr("classes painted on each 32x32 image, learned upscore32: ",
                ko="32x32 이미지마다 칠한 클래스, 학습한 upscore32:"),
      [np.unique(p).tolist() for p in predict(fcn32, small)])
lesson.check(all(np.unique(p).size == 1 for p in painted),
             "with the bilinear upsampler, FCN-32s on a 32x32 image paints ONE class over every pixel",
             ko="쌍선형 업샘플링 층을 쓰면 FCN-32s는 32x32 이미지의 모든 픽셀을 단 하나의 클래스로 칠한다")
lesson.say("So at 32x32 FCN-32s can only answer 'which class dominates this image' (and, trained on mostly-background\n"
           "images, that is background). At 64x64 its 2x2 score cells let it put a blob in each quadrant (step 5).",
           ko="그래서 32x32에서 FCN-32s가 답할 수 있는 것은 '이 이미지에서 어느 클래스가 우세한가'뿐입니다 (대부분이\n"
              "배경인 이미지로 학습했으니 답은 배경입니다). 64x64에서는 2x2 점수 셀 덕분에 사분면마다 덩어리를 하나씩 "
              "놓을 수 있습니다 (5단계).")

# %%
lesson.done(summary=[
    ("Pixel accuracy and mean IoU from the engine's confusion matrix equal the hand computation.",
     "엔진의 혼동 행렬로 구한 픽셀 정확도와 평균 IoU는 손 계산과 같다."),
    ("Predicting background everywhere keeps a high pixel accuracy but a low mean IoU.",
     "어디서나 배경이라고 예측해도 픽셀 정확도는 높지만 평균 IoU는 낮다."),
    ("Trained from the same backbone on the same budget at 64x64, mean IoU rises with every skip: FCN-32s < "
        "FCN-16s < FCN-8s.",
     "64x64에서 같은 백본, 같은 예산으로 학습하면 스킵 연결이 하나 늘 때마다 평균 IoU가 오른다: FCN-32s < "
        "FCN-16s < FCN-8s."),
    ("At 32x32, FCN-32s's logits are one score vector stamped through the upsampler's kernel: it cannot place "
        "anything.",
     "32x32에서 FCN-32s의 로짓은 점수 벡터 하나를 업샘플링 층의 커널로 찍어 낸 것이다: 아무것도 제자리에 놓을 수 없다."),
], exercises=["mean_iou"])

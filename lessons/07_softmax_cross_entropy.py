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

# %% [markdown]
# # 레슨 07: 픽셀별 소프트맥스 교차 엔트로피
#
# 분할(segmentation)은 모든 픽셀(pixel)에서 하는 분류(classification)입니다. 신경망은 로짓(logit)
# `(N, C, H, W)`, 곧 픽셀마다 클래스(class)마다 점수 하나를 내놓고, 손실(loss)은 흔히 쓰는
# 소프트맥스(softmax) 교차 엔트로피(cross-entropy)를 픽셀마다 구해 평균한 값입니다. 이 레슨에서 살펴볼
# 내용은 다음과 같습니다.
#
# 1. 픽셀별 소프트맥스와 손실 `-log p[label]`(label은 그 픽셀의 정답 레이블(label))
# 2. 엔진이 픽셀마다 가장 큰 로짓을 먼저 빼는 이유(그냥 `exp`를 계산하면 오버플로가 납니다)
# 3. `ignore_index = 255`, 곧 무시 인덱스(ignore index): 손실도 기울기(gradient)도 만들지 않는
#    PASCAL VOC의 "void" 픽셀
# 4. **정규화** 방식의 선택지(유효 픽셀에 대한 평균, 전체 픽셀에 대한 평균, 그냥 합)와 엔진이 고른
#    방식, 그리고 그 이유
# 5. 기울기 `(softmax - onehot) / V`와 이를 유한 차분(finite difference)으로 확인하는 방법
#
# 출처: FCN 논문(Long, Shelhamer & Darrell, arXiv:1411.4038)의 3절(손실은 픽셀별 손실을 공간 차원에
# 걸쳐 더한 합)과 4.1절(픽셀별 다항 로지스틱 손실); 저자들이 공개한 Caffe solver 설정(정규화하지 않은
# 손실, base_lr 1e-10, 모멘텀(momentum) 0.99, 배치(batch) 1); PASCAL VOC의 void 레이블 255 (Everingham et al.,
# "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 2010); PyTorch의
# `CrossEntropyLoss(ignore_index=...)`(그 평균도 무시하지 않은 픽셀 수로 나눕니다).
# 실행: `python lessons/07_softmax_cross_entropy.py --lang ko [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import Lesson, pad  # first: puts the repo on sys.path, picks a headless backend


import matplotlib.pyplot as plt
import numpy as np

from fcn_scratch import gradcheck
from fcn_scratch.functional import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from fcn_scratch.layers import SoftmaxCrossEntropy
from fcn_scratch.naive import softmax_cross_entropy_grad_naive, softmax_cross_entropy_naive

lesson = Lesson("07_softmax_cross_entropy", "Per-pixel softmax cross-entropy: stability, ignore_index, normalisation",
                ko="픽셀(pixel)별 소프트맥스(softmax) 교차 엔트로피(cross-entropy): 수치 안정성, ignore_index, 정규화")
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
lesson.step("Softmax at every pixel: C logits -> C probabilities that sum to 1",
            ko="모든 픽셀에서의 소프트맥스: 로짓(logit) C개 -> 합이 1인 확률 C개")
logits = rng.standard_normal((1, 3, 2, 3)) * 2  # N=1, C=3 classes, a 2x3 image
labels = np.array([[[0, 1, 2], [2, 2, 1]]])  # (N, H, W): the true class of each pixel
p = probabilities(logits, labels)
print(lesson.tr("logits at pixel (0, 0):", ko="픽셀 (0, 0)의 로짓:"), logits[0, :, 0, 0],
      lesson.tr(" -> probabilities", ko=" -> 확률"), p[0, :, 0, 0])
print(lesson.tr("p[label] per pixel:\n", ko="픽셀마다 정답 레이블(label)의 확률 p[label]:\n"),
      np.take_along_axis(p, labels[:, None], axis=1)[0, 0])
lesson.check(p.shape == logits.shape and np.allclose(p.sum(axis=1), 1) and (p > 0).all(),
             "p has the logits' shape (N, C, H, W); over the class axis each pixel's p sums to 1",
             ko="p는 로짓과 같은 모양 (N, C, H, W)이고, 클래스(class) 축을 따라 더하면 픽셀마다 p의 합이 1이다")
lesson.close(p[0, :, 0, 0], np.exp(logits[0, :, 0, 0]) / np.exp(logits[0, :, 0, 0]).sum(),
             "p = exp(z) / sum exp(z) at a pixel", ko="한 픽셀에서 p = exp(z) / sum exp(z)이다")
per_pixel = -np.log(np.take_along_axis(p, labels[:, None], axis=1)[:, 0])  # (N, H, W)
loss = SoftmaxCrossEntropy()(logits, labels)
print(lesson.tr("per-pixel loss -log p[label]:\n", ko="픽셀별 손실(loss) -log p[label], 곧 레이블 확률의 음의 로그:\n"),
      per_pixel[0], lesson.tr(f"\nmean = {per_pixel.mean():.6f}, engine loss = {loss:.6f}",
                              ko=f"\n평균 = {per_pixel.mean():.6f}, 엔진의 손실 = {loss:.6f}"))
lesson.close(loss, per_pixel.mean(), "the loss is the mean over pixels of -log p[label]",
             ko="손실은 레이블 확률의 음의 로그 -log p[label]을 픽셀에 대해 평균한 값이다")
lesson.close(loss, softmax_cross_entropy_naive(logits, labels), "and matches the one-pixel-at-a-time naive loop",
             ko="그리고 픽셀을 하나씩 도는 단순 루프와 일치한다")

# %%
lesson.step("Stability: subtract the max logit first, or exp overflows",
            ko="수치 안정성: 최대 로짓을 먼저 빼지 않으면 exp가 오버플로된다")
z = np.array([1000.0, 1001.0, 1002.0])
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(z) / np.exp(z).sum()  # inf / inf
stable = np.exp(z - z.max()) / np.exp(z - z.max()).sum()  # exp of [-2, -1, 0]: no overflow
print(lesson.tr("logits", ko="로짓"), z, lesson.tr("\nnaive  exp(z)/sum exp(z):", ko="\n단순 계산 exp(z)/sum exp(z):  "), naive,
      lesson.tr(" (exp(1000) = inf, inf/inf = nan)" "\nstable, z - max(z) first:",
                ko=" (exp(1000) = inf, inf/inf = nan)" "\n안정된 계산 (z - max(z) 먼저):"), stable)
big = z.reshape(1, 3, 1, 1)
label2 = np.array([[[2]]])
p_big = probabilities(big, label2)[0, :, 0, 0]
print(lesson.tr("the engine's softmax:    ", ko="엔진의 소프트맥스:            "), p_big)
lesson.close(p_big, stable, "the engine's softmax of [1000, 1001, 1002] is finite and exact where the naive one is nan",
             ko="단순 계산이 nan을 내는 [1000, 1001, 1002]에서도 엔진의 소프트맥스는 유한하고 정확하다")
loss_big = SoftmaxCrossEntropy()(big, label2)
lesson.say(f"engine loss for label 2: {loss_big:.6f} = -log({stable[2]:.6f})",
           ko=f"레이블 2에 대한 엔진의 손실: {loss_big:.6f} = -log({stable[2]:.6f})")
lesson.close(loss_big, -np.log(stable[2]), "the engine's loss is finite and exact", ko="엔진의 손실은 유한하고 정확하다")
lesson.close(loss_big, SoftmaxCrossEntropy()(big - 1000, label2),
             "softmax is shift-invariant: z and z - 1000 give the same loss",
             ko="소프트맥스는 이동 불변(shift-invariant)이다: z와 z - 1000은 같은 손실을 낸다")
with np.errstate(over="ignore"):
    f32_overflow = np.exp(np.float32(89.0))
print(lesson.tr("in float32, the engine's default dtype, exp overflows already at 89:",
                ko="엔진의 기본 dtype인 float32에서는 exp가 89에서 벌써 오버플로됩니다:"), f32_overflow)
z32 = np.array([100.0, 100.5, 101.0], dtype=np.float32).reshape(1, 3, 1, 1)  # naive exp: inf, inf, inf
loss32 = SoftmaxCrossEntropy()(z32, label2)
exact = float(np.log1p(np.exp(-1.0) + np.exp(-0.5)))  # -log p[2] = log(e^-1 + e^-0.5 + e^0), in float64
lesson.say(f"float32 logits [100, 100.5, 101], label 2: engine loss {loss32:.7f}, exact (float64) {exact:.7f}",
           ko=f"float32 로짓 [100, 100.5, 101], 레이블 2: 엔진의 손실 {loss32:.7f}, 정확한 값 (float64) {exact:.7f}")
lesson.close(loss32, exact, "float32 logits of ~100 (past exp's overflow at 89): the engine's loss is still exact",
             rtol=1e-6, ko="float32 로짓이 ~100이어도 (exp가 오버플로되는 89를 넘어도) 엔진의 손실은 여전히 정확하다")
# The other end: a very wrong prediction. p = exp(-1000) underflows to 0 and -log(0) = inf,
# but log-sum-exp keeps the loss exact: log(e^-1000 + e^0) - (-1000) = 1000.
wrong = np.array([-1000.0, 0.0]).reshape(1, 2, 1, 1)
with np.errstate(divide="ignore"):
    naive_loss = -np.log(np.exp(-1000.0) / (np.exp(-1000.0) + 1.0))
loss_wrong = SoftmaxCrossEntropy()(wrong, np.array([[[0]]]))
lesson.say(f"logits [-1000, 0], label 0: naive -log p = {naive_loss}, engine = {loss_wrong}",
           ko=f"로짓 [-1000, 0], 레이블 0: 단순 계산 -log p = {naive_loss}, 엔진 = {loss_wrong}")
lesson.check(loss_wrong == 1000.0, "log-sum-exp gives the exact loss 1000 (the naive form gives inf)",
             ko="log-sum-exp는 정확한 손실 1000을 준다 (단순 계산은 inf를 낸다)")

# %%
lesson.step("ignore_index = 255: void pixels give neither loss nor gradient",
            ko="무시 인덱스(ignore index) ignore_index = 255: void 픽셀은 손실도 기울기(gradient)도 만들지 않는다")
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
lesson.say(f"{labels.size} pixels, {labels.size - V} labelled 255, V = {V} valid; loss = {loss:.6f}",
           ko=f"픽셀 {labels.size}개 중 {labels.size - V}개는 레이블이 255, 유효한 픽셀은 V = {V}개; 손실 = {loss:.6f}")
lesson.close(loss, per_pixel[valid].mean(), "the loss is the mean of -log p[label] over the V valid pixels only",
             ko="손실은 유효 픽셀 V개에서만 -log p[label](레이블 확률의 음의 로그)를 평균한 값이다")
scrambled = logits.copy()
scrambled[:, :, ~valid[0]] = rng.standard_normal((3, labels.size - V)) * 50
lesson.check(layer(scrambled, labels) == loss,
             "changing the logits of void pixels (even wildly) leaves the loss unchanged",
             ko="void 픽셀의 로짓을 (아무리 크게) 바꿔도 손실은 그대로다")
lesson.check(not dlogits[:, :, ~valid[0]].any(), "the gradient at void pixels is exactly 0",
             ko="void 픽셀에서 기울기는 정확히 0이다")
try:
    layer(logits, np.where(labels == 255, 7, labels))
    rejected = False
except ValueError as err:
    print(lesson.tr("a label 7 with 3 classes:", ko="클래스가 3개인데 레이블이 7이면:"), err)
    rejected = True
lesson.check(rejected, "255 is ignored, but any other label outside [0, C) is an error, not silently skipped",
             ko="255는 무시하지만, [0, C) 밖의 다른 레이블은 조용히 건너뛰지 않고 오류로 처리한다")

fig, axes = plt.subplots(1, 3, figsize=(15, 4.0), layout="constrained")
shown = np.where(valid[0], labels[0], np.nan)
cmap = plt.get_cmap("tab10", 3).copy()
cmap.set_bad("lightgray")
im = axes[0].imshow(shown, cmap=cmap, vmin=-0.5, vmax=2.5)
fig.colorbar(im, ax=axes[0], ticks=[0, 1, 2], shrink=0.8, label=lesson.label("class", ko="클래스"))
axes[0].set_title(lesson.label("labels (gray = 255, ignored)", ko="레이블 (회색 = 255, 무시)"), fontsize=10)
lossmap = np.where(valid[0], per_pixel[0], np.nan)
cm2 = plt.get_cmap("magma").copy()
cm2.set_bad("lightgray")
im = axes[1].imshow(lossmap, cmap=cm2)
fig.colorbar(im, ax=axes[1], shrink=0.8)
axes[1].set_title(lesson.label(f"per-pixel loss -log p[label]\nmean over V={V} valid pixels = {loss:.3f}",
                               ko=f"정답 레이블의 픽셀별 손실 -log p[label]\n유효 픽셀 V={V}개의 평균 = {loss:.3f}"),
                  fontsize=10)
g_true = np.take_along_axis(dlogits, np.where(valid, labels, 0)[:, None], axis=1)[0, 0]
lim = np.abs(g_true).max()
cm3 = plt.get_cmap("Blues_r").copy()
cm3.set_bad("lightgray")
im = axes[2].imshow(np.where(valid[0], g_true, np.nan), cmap=cm3, vmin=-lim, vmax=0)
fig.colorbar(im, ax=axes[2], shrink=0.8)
axes[2].set_title(lesson.label("gradient on the true class: (p[label]-1)/V\ngray: exactly 0 on ignored pixels",
                               ko="레이블 클래스의 기울기: (p[label]-1)/V\n회색: 무시한 픽셀에서는 정확히 0"), fontsize=10)
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
lesson.save(fig, "ignore_index")

# %%
lesson.step("Normalisation: mean over valid pixels (the engine), mean over all pixels, or sum",
            ko="정규화: 유효 픽셀에 대한 평균(엔진), 전체 픽셀에 대한 평균, 또는 합")
# All three have the same gradient DIRECTION; they differ in scale, and the scale is the step size.
lesson.say(f"mean over valid pixels:  {loss:.5f}   (engine: divide by V = {V})",
           ko=f"유효 픽셀 평균:  {loss:.5f}   (엔진: V = {V}로 나눔)")
lesson.say(f"mean over all pixels:    {loss * V / labels.size:.5f}   (divide by N*H*W = {labels.size}, void included)",
           ko=f"전체 픽셀 평균:  {loss * V / labels.size:.5f}   (N*H*W = {labels.size}로 나눔, void 포함)")
lesson.say(f"sum over valid pixels:   {loss * V:.5f}   (no division; the authors' Caffe FCN, 'normalize: false')",
           ko=f"유효 픽셀 합:    {loss * V:.5f}   (나누지 않음; 저자들의 Caffe FCN, 'normalize: false')")
lesson.close(loss * V, per_pixel[valid].sum(), "sum = V * mean-over-valid", ko="합 = V * 유효 픽셀 평균")
# Start from the scene before any pixel was voided (no 255 at all), then hide a growing random fraction.
fractions, curves = [0.0, 0.2, 0.4, 0.6, 0.8], {"mean over valid (engine)": [], "mean over all pixels": [], "sum": []}
curve_ko = {"mean over valid (engine)": "유효 픽셀 평균 (엔진)", "mean over all pixels": "전체 픽셀 평균", "sum": "합"}
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
        lesson.say(f"fraction 0.0: {lab.size - v} of {lab.size} pixels void (the void-free scene)",
                   ko=f"비율 0.0: 픽셀 {lab.size}개 중 void는 {lab.size - v}개 (void가 없는 장면)")
print(lesson.tr("fraction ignored:      ", ko="무시한 비율:           "), fractions)
for key, vals in curves.items():
    print(pad(lesson.tr(key, ko=curve_ko[key]), 24), np.round(vals, 3))
mv, ma = np.array(curves["mean over valid (engine)"]), np.array(curves["mean over all pixels"])
lesson.close(ma, independent, "engine mean x V / (N*H*W) == the independent per-pixel losses summed over valid "
             "pixels / N*H*W: the engine divides by the valid count V",
             ko="엔진 평균 x V / (N*H*W) == 따로 구한 픽셀별 손실을 유효 픽셀에 대해 더해 N*H*W로 나눈 값: "
                "엔진은 유효 픽셀 수 V로 나눈다")
lesson.check(np.ptp(mv) / mv.mean() < 0.1, "mean over valid pixels barely moves as more pixels are ignored",
             ko="무시하는 픽셀이 늘어도 유효 픽셀 평균은 거의 변하지 않는다")
lesson.check(ma[-1] < 0.35 * ma[0], "mean over all pixels shrinks with the valid fraction: void pixels dilute the step",
             ko="전체 픽셀 평균은 유효 픽셀의 비율에 따라 줄어든다: void 픽셀이 갱신 폭을 희석한다")
sizes, size_curves = [1, 2, 3, 4], {"mean": [], "sum": []}
for t in sizes:  # the same scene tiled t x t: t^2 times the pixels
    m = SoftmaxCrossEntropy()(np.tile(logits, (1, 1, t, t)), np.tile(labels, (1, t, t)))
    size_curves["mean"].append(m)
    size_curves["sum"].append(m * V * t * t)
lesson.close(size_curves["mean"], [loss] * 4, "the mean does not depend on the image size",
             ko="평균은 이미지 크기에 따라 달라지지 않는다")
lesson.close(size_curves["sum"], [t * t * per_pixel[valid].sum() for t in sizes],
             "the sum (engine mean x valid count) grows with the pixels: t^2 x the independent sum",
             ko="합 (엔진 평균 x 유효 픽셀 수)은 픽셀 수와 함께 커진다: 따로 구한 합의 t^2배")
lesson.check(SoftmaxCrossEntropy()(logits, np.full_like(labels, 255)) == 0.0,
             "no valid pixel at all: loss 0 (not 0/0 = nan)",
             ko="유효 픽셀이 하나도 없으면 손실은 0이다 (0/0 = nan이 아니다)")
lesson.say("Why the engine takes the mean over valid pixels: the learning rate then means the same thing for any\n"
           "image size, batch size and amount of void. The authors' Caffe FCN summed instead and compensated with a\n"
           "tiny learning rate (base_lr 1e-10 'for unnormalized softmax', batch size 1, momentum 0.99).",
           ko="엔진이 유효 픽셀 평균을 쓰는 이유: 그래야 학습률(learning rate)이 이미지 크기, 배치(batch) 크기, void의\n"
              "양과 상관없이 같은 의미를 가집니다. 저자들의 Caffe FCN은 평균 대신 합을 쓰고, 아주 작은 학습률로 이를\n"
              "보정했습니다 (base_lr 1e-10, 설정 파일의 주석대로 'for unnormalized softmax', 곧 정규화하지 않은\n"
              "소프트맥스용; 배치 크기 1, 모멘텀(momentum) 0.99).")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for key, style in zip(curves, ("o-", "s--")):  # the two means (not the sum)
    axes[0].plot(fractions, curves[key], style, label=lesson.label(key, ko=curve_ko[key]))
axes[0].set_ylim(0, None)
axes[0].set_xlabel(lesson.label("fraction of pixels labelled 255 (the same predictions)",
                                ko="레이블이 255인 픽셀의 비율 (예측은 그대로)"))
axes[0].set_ylabel(lesson.label("loss", ko="손실"))
axes[0].set_title(lesson.label("void pixels: only the valid-pixel mean stays put",
                               ko="void 픽셀: 유효 픽셀 평균만 제자리"), fontsize=10)
axes[0].legend(fontsize=8)
axes[1].plot(np.square(sizes) * labels.size, size_curves["mean"], "o-",
             label=lesson.label("mean over valid (engine)", ko="유효 픽셀 평균 (엔진)"))
axes[1].plot(np.square(sizes) * labels.size, size_curves["sum"], "^:", label=lesson.label("sum", ko="합"))
axes[1].set_yscale("log")
axes[1].set_xlabel(lesson.label("pixels in the image (same scene, tiled)", ko="이미지의 픽셀 수 (같은 장면을 타일로 반복)"))
axes[1].set_ylabel(lesson.label("loss", ko="손실"))
axes[1].set_title(lesson.label("image size: the sum grows, the mean does not", ko="이미지 크기: 합은 커지고 평균은 그대로"),
                  fontsize=10)
axes[1].legend(fontsize=8)
fig.tight_layout()
lesson.save(fig, "normalisation")

# %%
lesson.step("The gradient: dL/dz = (softmax - onehot(label)) / V on valid pixels, 0 on void ones",
            ko="기울기: 유효 픽셀에서는 dL/dz = (softmax - onehot(label)) / V, 곧 (소프트맥스 - 레이블의 원-핫) / V이고, "
               "void 픽셀에서는 0")
onehot = np.eye(3)[np.where(valid, labels, 0)].transpose(0, 3, 1, 2)
expected = (p - onehot) * valid[:, None] / V
lesson.close(dlogits, expected, "backward() == (p - onehot) / V, masked",
             ko="backward() == void를 마스킹한 (p - onehot) / V")
lesson.close(dlogits, softmax_cross_entropy_grad_naive(logits, labels), "== the naive per-pixel loop",
             ko="== 픽셀별 단순 루프")
lesson.close(dlogits.sum(axis=1), 0,
             "at every pixel the gradient sums to 0 over the classes (softmax is shift-invariant)", atol=1e-15,
             ko="모든 픽셀에서 기울기를 클래스에 대해 더하면 0이다 (소프트맥스는 이동 불변이다)")
_, cache = softmax_cross_entropy_forward(logits, labels)
lesson.close(softmax_cross_entropy_backward(cache, 2.5), 2.5 * dlogits, "an upstream dloss scales it: the chain rule",
             ko="상류(upstream)에서 온 dloss가 기울기에 그대로 곱해진다: 연쇄 법칙(chain rule)")
# Finite differences: the loss is a scalar, so the 'random upstream gradient' is a random scalar g.
errors = gradcheck.check(lambda: layer.forward(logits, labels), lambda g: {"logits": layer.backward(float(g))},
                         {"logits": logits}, seed=7)
lesson.say(f"finite differences (h = 1e-6, random upstream scalar) vs backward: rel error {errors['logits']:.1e}",
           ko=f"유한 차분(finite difference) (h = 1e-6, 무작위 상류 스칼라) 대 backward: 상대 오차 {errors['logits']:.1e}")
lesson.check(errors["logits"] < gradcheck.TOL_SMOOTH,
             f"the gradient check passes (< TOL_SMOOTH = {gradcheck.TOL_SMOOTH:g})",
             ko=f"기울기 검사(gradient check)를 통과한다 (< TOL_SMOOTH = {gradcheck.TOL_SMOOTH:g})")

# %%
lesson.done(summary=[
    ("The loss is the mean of -log softmax[label] over the valid pixels, equal to the naive loop.",
     "손실은 유효 픽셀에 대한 -log softmax[label], 곧 레이블의 소프트맥스 확률에 음의 로그를 취한 값의 평균이며, "
        "단순 루프와 같다."),
    ("Subtracting the max keeps softmax and loss exact for logits of 1000, and of 100 in float32.",
     "최댓값을 먼저 빼면 로짓이 1000일 때도, float32에서 100일 때도 소프트맥스와 손실이 정확하다."),
    ("Pixels labelled 255 give neither loss nor gradient; other labels outside [0, C) are errors.",
     "레이블이 255인 픽셀은 손실도 기울기도 만들지 않고, [0, C) 밖의 다른 레이블은 오류다."),
    ("Dividing by the valid count keeps the loss steady as void and image size grow; the mean over all pixels "
        "and the sum do not.",
     "유효 픽셀 수로 나누면 void와 이미지 크기가 커져도 손실이 일정하다. 전체 픽셀 평균과 합은 그렇지 않다."),
    ("The gradient is (softmax - onehot)/V on valid pixels, and passes finite differences.",
     "기울기는 유효 픽셀에서 (softmax - onehot)/V, 곧 소프트맥스에서 원-핫을 빼고 V로 나눈 값이며, 유한 차분 검사를 "
        "통과한다."),
], exercises=["softmax_cross_entropy"])

# %% [markdown]
# # Lesson 08: FCN-32s, FCN-16s, FCN-8s
#
# The three networks of the paper, as a PyTorch port writes them
# and `fcn_scratch.models` implements them (forward *and* backward by hand):
# a VGG16 backbone with ceil-mode pooling, fc6/fc7 as 1x1 convolutions,
# a 1x1 `score_fr`, and transposed convolutions back to the input size --
# in one x32 step (32s), or in steps that add finer predictions from pool4
# (16s) and pool3 (8s): the **skip architecture**. This lesson
#
# 1. traces the shapes at every stage for a 224x224 input and for an odd 37x53 one,
# 2. shows the skips: 1x1 `score_pool4_fr` / `score_pool3_fr`, **zero** initialised,
#    **summed** -- a fresh FCN-8s outputs zeros and its skips start as no-ops,
# 3. the **crop/alignment rule** (`crop_plan`, `pooled_sizes`): top-left, offset 0,
# 4. the original paper's **100-pixel padding** of conv1_1 and its crop offsets
#    (19; 5, 27; 5, 9, 31), derived, and why this engine needs neither,
# 5. proves the PyTorch port's upsampler settings (k64 s32 p16, k4 s2 p1, k32 s16 p8,
#    k16 s8 p4) give exactly x32, x2, x16, x8 by the output-size formula,
# 6. Dropout2d in fc6/fc7,
# 7. gradient-checks a whole tiny FCN-8s in float64.
#
# Sources: the FCN paper (Long, Shelhamer & Darrell, arXiv:1411.4038), section 4.1 (VGG16
# convolutionalized, a 1x1 class-score layer, upsampling initialised bilinear) and section
# 4.2 "Combining what and where" (skips from pool4 and pool3 through zero-initialised 1x1
# score layers, fused by summation, trained in stages 32s -> 16s -> 8s); its released Caffe
# models (conv1_1 padded by 100, unpadded deconvolutions, Crop layers with offsets); the
# PyTorch port this engine mirrors (the study notes' FCN32s/16s/8s classes: ceil-mode pooling,
# 1x1 fc6/fc7, Dropout2d, k64 s32 p16, k4 s2 p1, k32 s16 p8, k16 s8 p4); VGG16: Simonyan &
# Zisserman, arXiv:1409.1556.
# Run: `python lessons/08_fcn_architectures.py [--step] [--no-figures] [--figures DIR]`.

# %% [markdown]
# # 레슨 08: FCN-32s, FCN-16s, FCN-8s
#
# 논문의 세 신경망을 PyTorch 포팅이 쓰는 모습 그대로, `fcn_scratch.models`가 구현한 대로
# 살펴봅니다(순전파(forward pass)뿐 아니라 *역전파(backward pass)까지* 손으로 썼습니다).
# 구성은 올림 모드(ceil mode) 풀링(pooling)을 쓰는 VGG16 백본(backbone), 1x1 합성곱(convolution)이 된
# fc6/fc7, 클래스마다 점수 맵(score map)을 하나씩 내는 1x1 `score_fr`, 그리고 입력 크기로 되돌리는 전치
# 합성곱(transposed convolution)입니다. 한 번에 x32로 키우거나(32s), 여러 번에 나눠 키우면서 pool4(16s)와
# pool3(8s)의 더 세밀한 예측을 더합니다. 이것이 **스킵 구조(skip architecture)**입니다. 이 레슨에서는
#
# 1. 224x224 입력과 홀수 크기인 37x53 입력에 대해 모든 단계의 모양을 따라가 봅니다.
# 2. 스킵 연결(skip connection)을 살펴봅니다. 1x1 `score_pool4_fr` / `score_pool3_fr`는 **0으로**
#    초기화되고 **더해집니다**. 그래서 갓 만든 FCN-8s는 0을 출력하고, 스킵 연결은 처음에 아무 일도 하지 않습니다.
# 3. **크롭(crop)/정렬 규칙**(`crop_plan`, `pooled_sizes`)을 봅니다: 왼쪽 위 기준, 오프셋 0.
# 4. 원 논문이 conv1_1에 준 **100픽셀 패딩(padding)**과 그에 따른 크롭 오프셋(19; 5, 27; 5, 9, 31)을
#    유도하고, 이 엔진에는 둘 다 필요 없는 이유를 설명합니다.
# 5. PyTorch 포팅의 업샘플링(upsampling) 설정(k64 s32 p16, k4 s2 p1, k32 s16 p8, k16 s8 p4)이 출력
#    크기 공식에 따라 정확히 x32, x2, x16, x8이 됨을 증명합니다.
# 6. fc6/fc7의 Dropout2d를 봅니다.
# 7. 작은 FCN-8s 전체를 float64로 기울기 검사(gradient check)합니다.
#
# 출처: FCN 논문(Long, Shelhamer & Darrell, arXiv:1411.4038)의 4.1절(합성곱화(convolutionalization)한
# VGG16, 1x1 클래스 점수 층, 쌍선형(bilinear)으로 초기화한 업샘플링)과 4.2절 "Combining what and where"
# (0으로 초기화한 1x1 점수 층을 거치는 pool4와 pool3의 스킵 연결, 합으로 융합, 32s -> 16s -> 8s 순서의
# 단계적 미세 조정(fine-tuning)); 저자들이 공개한 Caffe 모델(conv1_1의 패딩 100, 패딩 없는 역합성곱(deconvolution),
# 오프셋을 쓰는 Crop 층); 이 엔진이 따르는 PyTorch 포팅(학습 노트의 FCN32s/16s/8s 클래스: 올림 모드 풀링,
# 1x1 fc6/fc7, Dropout2d, k64 s32 p16, k4 s2 p1, k32 s16 p8, k16 s8 p4); VGG16: Simonyan &
# Zisserman, arXiv:1409.1556.
# 실행: `python lessons/08_fcn_architectures.py --lang ko [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import Lesson, pad  # first: puts the repo on sys.path, picks a headless backend

from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from fcn_scratch import gradcheck
from fcn_scratch.functional import (conv2d_forward, conv_output_size, conv_transpose2d_forward,
                                    conv_transpose_output_size, crop_forward, pool_output_size)
from fcn_scratch.init import bilinear_weight
from fcn_scratch.models import (FCN8s, FCN32s, UPSAMPLERS, VGG16_CONVS, VGG16_WIDTHS, crop_plan,
                                pooled_sizes, transfer_weights)
from fcn_scratch.upsample import BilinearUpsample

lesson = Lesson("08_fcn_architectures", "FCN-32s, FCN-16s, FCN-8s: shapes, skips, crops, gradient check",
                ko="FCN-32s, FCN-16s, FCN-8s: 모양, 스킵 연결, 크롭, 기울기 검사")
lesson.avoid_interpreted_kernels()  # under NUMBA_DISABLE_JIT=1 the 224x224 passes would take minutes in plain Python
rng = np.random.default_rng(8)
K = 5  # classes of the toy task (background + 4 shapes)



def trace_fcn8s(model, x):
    """Run FCN-8s stage by stage through its own layers; return [(stage, shape)] and the logits."""
    rows = [(lesson.tr("input", ko="입력"), x.shape)]
    h = x
    for b in range(1, 6):
        h = model._block_forward(b, h)  # (3x3 conv + ReLU) x n, then 2x2 max-pool, ceil mode
        rows.append((lesson.tr(f"pool{b}  (1/{2 ** b})", ko=f"pool{b}  (1/{2 ** b} 크기)"), h.shape))
        if b == 3:
            score_pool3 = model.score_pool3_fr.forward(h)
            rows.append(("  score_pool3_fr (1x1)", score_pool3.shape))
        if b == 4:
            score_pool4 = model.score_pool4_fr.forward(h)
            rows.append(("  score_pool4_fr (1x1)", score_pool4.shape))
    h = model.drop6.forward(model.relu6.forward(model.fc6.forward(h)))
    rows.append((lesson.tr("fc6 (1x1) + ReLU + drop", ko="fc6 (1x1) + ReLU + 드롭아웃"), h.shape))
    h = model.drop7.forward(model.relu7.forward(model.fc7.forward(h)))
    rows.append((lesson.tr("fc7 (1x1) + ReLU + drop", ko="fc7 (1x1) + ReLU + 드롭아웃"), h.shape))
    score = model.score_fr.forward(h)
    rows.append(("score_fr (1x1)", score.shape))
    up = model.upscore2.forward(score)
    rows.append(("upscore2 (x2)", up.shape))
    h = model.add_pool4.forward(model.crop_pool4.forward(up, score_pool4.shape[2:]), score_pool4)
    rows.append((lesson.tr("crop + score_pool4", ko="크롭 + score_pool4"), h.shape))
    up = model.upscore2_pool4.forward(h)
    rows.append(("upscore2_pool4 (x2)", up.shape))
    h = model.add_pool3.forward(model.crop_pool3.forward(up, score_pool3.shape[2:]), score_pool3)
    rows.append((lesson.tr("crop + score_pool3", ko="크롭 + score_pool3"), h.shape))
    up = model.upscore8.forward(h)
    rows.append(("upscore8 (x8)", up.shape))
    logits = model.crop_out.forward(up, x.shape[2:])
    rows.append((lesson.tr("crop -> logits", ko="크롭 -> 로짓"), logits.shape))
    return rows, logits


# %%
lesson.step("The shapes at every stage of FCN-8s, for a 224x224 and a 37x53 input",
            ko="FCN-8s의 단계별 모양: 224x224 입력과 37x53 입력")
model = FCN8s.tiny(K, dtype=np.float64, seed=0).eval()  # eval: dropout off
for p in (model.score_fr, model.score_pool4_fr, model.score_pool3_fr):  # nonzero, so the trace shows real values
    p.params["weight"][...] = 0.1 * rng.standard_normal(p.weight.shape)
traces = {}
for hw in ((224, 224), (37, 53)):
    x = rng.standard_normal((1, 3, *hw))
    traces[hw], logits = trace_fcn8s(model, x)
    lesson.close(logits, model.forward(x), f"{hw[0]}x{hw[1]}: the stage-by-stage trace is exactly model.forward",
                 ko=f"{hw[0]}x{hw[1]}: 단계별로 따라간 결과는 model.forward와 정확히 같다")
lesson.say(f"{'stage':26s} {'224x224 input':>20s} {'37x53 input':>20s}",
           ko="단계                               224x224 입력           37x53 입력")
for (stage, s224), (_, s37) in zip(traces[224, 224], traces[37, 53]):
    print(f"{pad(stage, 26)} {str(s224):>20s} {str(s37):>20s}")
print(lesson.tr("channels: the 'tiny' preset (16, 32, 64, 128, 128; fc 256) of the toy task. VGG16's widths are",
                ko="채널(channel) 수는 토이 과제용 'tiny' 프리셋의 (16, 32, 64, 128, 128; fc 256)입니다. VGG16의 채널 수:"),
      VGG16_WIDTHS, lesson.tr("with", ko="/ 블록당 합성곱 수:"), VGG16_CONVS,
      lesson.tr("convs per block and fc 4096 -- the same spatial sizes.", ko="/ fc 4096 -- 공간 크기는 똑같습니다."))
pools = [s for name, s in traces[37, 53] if name.startswith("pool")]
lesson.check([p[2:] for p in pools] == pooled_sizes(37, 53) == [(19, 27), (10, 14), (5, 7), (3, 4), (2, 2)],
             "37x53: ceil-mode pooling gives ceil(37/2^b) x ceil(53/2^b) = 19x27, 10x14, 5x7, 3x4, 2x2",
             ko="37x53: 올림 모드(ceil mode) 풀링(pooling)은 ceil(37/2^b) x ceil(53/2^b) = 19x27, 10x14, 5x7, 3x4, 2x2를 만든다")
lesson.check([p[2:] for p in [s for n, s in traces[224, 224] if n.startswith("pool")]] ==
             [(112, 112), (56, 56), (28, 28), (14, 14), (7, 7)], "224x224: 112, 56, 28, 14, 7 -- VGG16's sizes",
             ko="224x224: 112, 56, 28, 14, 7 -- VGG16과 같은 크기다")
lesson.check(traces[224, 224][-1][1] == (1, K, 224, 224) and traces[37, 53][-1][1] == (1, K, 37, 53),
             "both end as logits (N, num_classes, H, W): one score vector per input pixel",
             ko="둘 다 (N, num_classes, H, W) 모양의 로짓(logit)으로 끝난다: 입력 픽셀(pixel)마다 점수 벡터가 하나씩이다")

# %%
lesson.step("The skip architecture: 1x1 score layers on pool4 and pool3, zero-initialised, summed",
            ko="스킵 구조(skip architecture): pool4와 pool3에 붙인 1x1 점수 층, 0으로 초기화, 합산")
fresh = FCN8s.tiny(K, dtype=np.float64, seed=1).eval()
for name in ("score_fr", "score_pool4_fr", "score_pool3_fr"):
    layer = getattr(fresh, name)
    lesson.say(f"{name:15s} weight {layer.weight.shape}: all zero = {not layer.weight.any() and not layer.bias.any()}",
               ko=f"{name:15s} 가중치 {layer.weight.shape}: 모두 0 = {not layer.weight.any() and not layer.bias.any()}")
x = rng.standard_normal((2, 3, 37, 53))
logits = fresh.forward(x)
lesson.check(not logits.any(), "a fresh FCN-8s outputs exactly zero logits (every score layer starts at 0)",
             ko="갓 만든 FCN-8s는 정확히 0인 로짓을 출력한다 (점수 층이 모두 0에서 시작한다)")
d = fresh.backward(rng.standard_normal(logits.shape))
grads = fresh.grad_dict()
print(lesson.tr("after one backward: |grad| of conv1_1.weight =",
                ko="역전파(backward pass)를 한 번 한 뒤: conv1_1.weight의 |grad| ="),
      np.abs(grads["conv1_1.weight"]).max(),
      lesson.tr(" of score_fr.weight =", ko="/ score_fr.weight의 |grad| ="),
      round(float(np.abs(grads["score_fr.weight"]).max()), 4))
lesson.check(not grads["conv1_1.weight"].any() and grads["score_fr.weight"].any(),
             "so the first step trains only the score layers; the backbone gets gradient once they are nonzero",
             ko="그래서 첫 갱신은 점수 층만 학습시킨다. 백본(backbone)은 점수 층이 0에서 벗어난 뒤에야 기울기(gradient)를 받는다")
# Skips start as no-ops: give FCN-32s trained-looking weights, copy them into an FCN-8s (transfer_weights,
# the paper's staged training). Its new skip layers are zero, so it computes FCN-32s's score map upsampled
# by the bilinear x2, x2, x8 chain -- nothing from pool4 or pool3.
fcn32 = FCN32s.tiny(K, dtype=np.float64, seed=2).eval()
fcn32.score_fr.params["weight"][...] = 0.1 * rng.standard_normal(fcn32.score_fr.weight.shape)
fcn8 = FCN8s.tiny(K, dtype=np.float64, seed=3).eval()
copied = transfer_weights(fcn32, fcn8)
lesson.say(f"transfer_weights(FCN-32s -> FCN-8s): {len(copied)} tensors copied (backbone, fc6, fc7, score_fr); "
           f"new: score_pool4_fr, score_pool3_fr (zero) and the x2, x2, x8 upsamplers (bilinear)",
           ko=f"transfer_weights(FCN-32s -> FCN-8s): 미세 조정(fine-tuning)의 출발점으로 텐서 {len(copied)}개를 "
              f"복사합니다 (백본, fc6, fc7, score_fr). 새로 생기는 것은 score_pool4_fr, score_pool3_fr (0), "
              f"그리고 x2, x2, x8 업샘플링 층(쌍선형)입니다")
score = fcn32._head_forward(fcn32._block_forward(5, fcn32._block_forward(4, fcn32._block_forward(
    3, fcn32._block_forward(2, fcn32._block_forward(1, x))))))
sizes = pooled_sizes(37, 53)
chain = crop_forward(BilinearUpsample(K, 2).forward(score), sizes[3])[0]  # to pool4's 3x4
chain = crop_forward(BilinearUpsample(K, 2).forward(chain), sizes[2])[0]  # to pool3's 5x7
chain = crop_forward(BilinearUpsample(K, 8).forward(chain), (37, 53))[0]
lesson.close(fcn8.forward(x), chain, "the FCN-8s = FCN-32s's scores through bilinear x2, x2, x8: skips add exactly 0",
             ko="이 FCN-8s = FCN-32s의 점수를 쌍선형(bilinear) x2, x2, x8로 키운 것이다: 스킵 연결(skip connection)은 정확히 0을 더한다")
fcn8.score_pool3_fr.params["weight"][...] = 0.1 * rng.standard_normal(fcn8.score_pool3_fr.weight.shape)
lesson.check(not np.allclose(fcn8.forward(x), chain), "once score_pool3_fr learns something, the pool3 detail shows",
             ko="score_pool3_fr 층이 무언가를 배우면 pool3의 세부 정보가 드러난다")

# %%
lesson.step("The crop rule: each upsampled map is cut to the skip's size, keeping the top-left (offset 0)",
            ko="크롭(crop) 규칙: 업샘플링(upsampling)한 맵을 스킵 연결의 크기로 자르고 왼쪽 위를 남긴다 (오프셋 0)")
fits = []
for H, W in ((224, 224), (37, 53)):
    lesson.say(f"{H}x{W}: pooled sizes {pooled_sizes(H, W)}", ko=f"{H}x{W}: 풀링한 크기 {pooled_sizes(H, W)}")
    for variant in ("32s", "16s", "8s"):
        plan = crop_plan(H, W, variant)
        net_name = f"FCN-{variant}"  # a name, the same in both languages
        print(f"    {net_name:7s} " + ";  ".join(f"{n} {p[0]}x{p[1]} -> {k[0]}x{k[1]}" for n, p, k in plan))
        fits += [k[0] <= p[0] < k[0] + s and k[1] <= p[1] < k[1] + s
                 for (_, p, k), (_, _, s, _) in zip(plan, UPSAMPLERS[variant])]
lesson.check(all(fits), "each upsampled map (x s) covers what it is cut to, with fewer than s rows/columns to spare",
             ko="업샘플링한 맵(x s)은 잘라 낼 크기를 모두 덮고, 남는 행/열은 s개보다 적다")
lesson.check(all(p == k for v in ("32s", "16s", "8s") for _, p, k in crop_plan(224, 224, v)),
             "224 = 7 * 32: every upsampled map already has the skip's size, nothing is cut (the PyTorch port at 224)",
             ko="224 = 7 * 32: 업샘플링한 맵이 모두 이미 스킵 연결의 크기라서 잘라 낼 것이 없다 (224에서의 PyTorch 포팅)")
lesson.check(crop_plan(37, 53, "8s") == [("upscore2", (4, 4), (3, 4)), ("upscore2_pool4", (6, 8), (5, 7)),
                                         ("upscore8", (40, 56), (37, 53))],
             "37x53: upscore2 makes 4x4 and pool4 is 3x4; ... upscore8 makes 40x56 for 37x53: cut at the bottom/right",
             ko="37x53: upscore2는 4x4를 만들고 pool4는 3x4다. ... upscore8은 37x53 자리에 40x56을 만든다: 아래/오른쪽을 잘라 낸다")
# Why the top-left: pool row i at stride 2^b covers input rows [2^b i, 2^b (i+1)), centred on 2^b i + (2^b-1)/2.
# The upsampler k=2s, s, p=s/2 puts the hat of its input row i at output s i + (s-1)/2: the same place.
s, n = 8, 5
hats = np.zeros((n, 40))
for i in range(n):
    delta = np.zeros((1, 1, 1, n))
    delta[..., i] = 1
    hats[i] = conv_transpose2d_forward(delta, bilinear_weight(1, 1, (1, 16), np.float64), stride=(1, 8),
                                       padding=(0, 4))[0][0, 0, 0]
centres = (hats * np.arange(40)).sum(axis=1) / hats.sum(axis=1)
lesson.close(centres[1:-1], s * np.arange(1, n - 1) + (s - 1) / 2,
             "upscore8's hat for pool3 cell i is centred on pixel 8i + 3.5, the centre of the cell's window",
             ko="upscore8이 pool3 셀 i에 그리는 모자(hat)의 중심은 픽셀 8i + 3.5, 곧 그 셀이 덮는 윈도우(window)의 중심이다")

fig, axes = plt.subplots(1, 2, figsize=(15, 4.6), gridspec_kw={"width_ratios": [1.3, 1]})
ax = axes[0]
ax.add_patch(Rectangle((0, 0), 53, 37, color="tab:blue", alpha=0.25,
                       label=lesson.label("the 37x53 input", ko="37x53 입력")))
for stride, color, lw in ((32, "black", 2.2), (8, "tab:orange", 0.9)):
    h, w = -(-37 // stride), -(-53 // stride)
    for r in range(h + 1):
        ax.plot([0, w * stride], [r * stride] * 2, color=color, lw=lw)
    for c in range(w + 1):
        ax.plot([c * stride] * 2, [0, h * stride], color=color, lw=lw)
ax.plot([], [], color="black", lw=2.2, label=lesson.label("pool5 cells (1/32): 2x2, cover 64x64",
                                                          ko="pool5 셀 (1/32): 2x2, 64x64를 덮음"))
ax.plot([], [], color="tab:orange", lw=0.9, label=lesson.label("pool3 cells (1/8): 5x7, cover 40x56",
                                                               ko="pool3 셀 (1/8): 5x7, 40x56을 덮음"))
ax.add_patch(Rectangle((53, 0), 11, 64, fill=False, hatch="//", ec="0.5", lw=0))
ax.add_patch(Rectangle((0, 37), 53, 27, fill=False, hatch="//", ec="0.5", lw=0,
                       label=lesson.label("overhang: cropped away", ko="넘친 부분: 크롭으로 잘림")))
ax.set_xlim(-1, 66), ax.set_ylim(66, -1), ax.set_aspect("equal")
ax.set_xlabel(lesson.label("column", ko="열")), ax.set_ylabel(lesson.label("row", ko="행"))
ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
ax.set_title(lesson.label("Ceil-mode cells start at the top-left; the last\npartial cell overhangs the bottom/right",
                          ko="올림 모드의 셀은 왼쪽 위에서 시작하고,\n마지막 부분 셀은 아래/오른쪽으로 넘침"))
ax = axes[1]
for i in range(n):
    ax.plot(np.arange(40), hats[i], "-o", ms=3)
    ax.axvspan(8 * i - 0.5, 8 * i + 7.5, color="C%d" % i, alpha=0.08)
    ax.axvline(8 * i + 3.5, color="C%d" % i, ls="--", lw=1)
ax.set_xlabel(lesson.label("output pixel (row or column)", ko="출력 픽셀 (행 또는 열)"))
ax.set_ylabel(lesson.label("bilinear weight", ko="쌍선형 가중치"))
ax.set_title(lesson.label("upscore8 of pool3 cells 0..4: each hat is centred (dashed)\n"
                          "on the 8 pixels its cell pooled (shaded): offset 0",
                          ko="pool3 셀 0..4의 upscore8: 모자마다 중심(점선)이\n"
                             "그 셀이 풀링한 8픽셀(음영)의 중심에 있음: 오프셋 0"))
fig.tight_layout()
lesson.save(fig, "crop_alignment")

# %%
lesson.step("The paper's 100-pixel padding and its crops (19; 5, 27; 5, 9, 31) -- and why this engine needs none",
            ko="논문의 100픽셀 패딩(padding)과 그 크롭 (19; 5, 27; 5, 9, 31) -- 이 엔진에 둘 다 필요 없는 이유")
# Each layer maps an index y of its output to the image coordinate it is centred on:
# conv or pool (k, s, p): input = s*y + (k-1)/2 - p;  transposed conv: the inverse of that.
# Composing them along a path gives image = a*y + b; two maps align when they share b.


def conv(k, s=1, p=0):
    return ("conv", k, s, p)


def deconv(k, s, p=0):
    return ("deconv", k, s, p)


def image_coordinate(path):
    """(a, b) with image coordinate = a * y + b for index y of the path's last map (exact fractions)."""
    a, b = Fraction(1), Fraction(0)
    for kind, k, s, p in path:
        if kind == "conv":
            a, b = a * s, b + a * (Fraction(k - 1, 2) - p)
        else:
            a, b = a / s, b + a * (p - Fraction(k - 1, 2)) / s
    return a, b


def vgg(pad_first):
    """VGG16's 13 convs (3x3, padding 1; the very first padded by `pad_first`) and 5 pools (2x2, stride 2)."""
    path = []
    for b, n in enumerate(VGG16_CONVS, 1):
        path += [conv(3, 1, pad_first if (b, i) == (1, 0) else 1) for i in range(n)] + [conv(2, 2)]
    return path


def crop_offsets(backbone, fc6, decoder):
    """Offsets where each skip is cut to the upsampled map, and where the output is cut to the image."""
    pools = [i for i, layer in enumerate(backbone) if layer[1] == 2]
    main = backbone + [fc6, conv(1), conv(1)]  # fc6, fc7, score_fr
    offsets = []
    for upsampler, skip in decoder:  # skip = the pool (3 or 4) fused after this upsampler, or None
        main = main + [upsampler]
        a, b = image_coordinate(main)
        if skip is None:
            offsets.append(-b)  # output index o sits on image pixel o + b: cut at -b
        else:
            a_s, b_s = image_coordinate(backbone[: pools[skip - 1] + 1] + [conv(1)])
            offsets.append((b - b_s) / a)  # skip index v = o + offset lands on the same image pixel
    return [int(o) if o.denominator == 1 else o for o in offsets]


skips = {"32s": (None,), "16s": (4, None), "8s": (4, 3, None)}  # the pool fused after each upsampler
caffe = {"32s": [deconv(64, 32)], "16s": [deconv(4, 2), deconv(32, 16)],
         "8s": [deconv(4, 2), deconv(4, 2), deconv(16, 8)]}  # the paper's deconvolutions: no padding
ours = {v: [deconv(k, s, p) for _, k, s, p in UPSAMPLERS[v]] for v in UPSAMPLERS}  # k = 2s, p = s/2
results = {}
for v in ("32s", "16s", "8s"):
    results["caffe", v] = crop_offsets(vgg(100), conv(7), list(zip(caffe[v], skips[v])))
    results["ours", v] = crop_offsets(vgg(1), conv(1), list(zip(ours[v], skips[v])))
    lesson.say(f"FCN-{v:3s}  paper (pad 100, 7x7 fc6, unpadded deconvs): crop offsets {results['caffe', v]};"
               f"   this engine: {results['ours', v]}",
               ko=f"FCN-{v:3s}  논문 (패딩 100, 7x7 fc6, 패딩 없는 역합성곱(deconvolution)): 크롭 오프셋 "
                  f"{results['caffe', v]};   이 엔진: {results['ours', v]}")
lesson.check(results["caffe", "32s"] == [19] and results["caffe", "16s"] == [5, 27]
             and results["caffe", "8s"] == [5, 9, 31],
             "the composition reproduces the original Caffe FCN's crop offsets 19; 5, 27; 5, 9, 31",
             ko="층마다의 좌표 변환을 합성하면 원래 Caffe FCN의 크롭 오프셋 19; 5, 27; 5, 9, 31이 그대로 나온다")
lesson.check(all(results["ours", v] == [0] * len(UPSAMPLERS[v]) for v in UPSAMPLERS),
             "the same rule gives offset 0 everywhere for the PyTorch port's network: the top-left crop",
             ko="같은 규칙을 PyTorch 포팅의 신경망에 적용하면 오프셋은 어디서나 0이다: 왼쪽 위 크롭")


def caffe_sizes(H):
    """Map sizes of the paper's FCN-32s on an H-pixel side: conv1_1 padded by 100, ceil pools, 7x7 fc6."""
    h = conv_output_size(H, 3, 1, 100)  # conv1_1: H + 198
    sizes = [h]
    for _ in range(5):
        h = pool_output_size(h, 2, 2, ceil_mode=True)
        sizes.append(h)
    fc6 = conv_output_size(h, 7)
    return sizes, fc6, conv_transpose_output_size(fc6, 64, 32, 0)


for H in (224, 37):
    sizes, fc6, up = caffe_sizes(H)
    lesson.say(f"paper, H={H}: conv1_1 {sizes[0]}, pools {sizes[1:]}, fc6 {fc6}, upscore {up} -> crop [19, 19 + {H})",
               ko=f"논문, H={H}: conv1_1 {sizes[0]}, 풀링 {sizes[1:]}, fc6 {fc6}, upscore {up} -> 크롭 [19, 19 + {H})")
    lesson.check(up >= 19 + H, f"H={H}: the padded net's output ({up}) covers the crop window [19, {19 + H})",
                 ko=f"H={H}: 패딩한 신경망의 출력({up})은 크롭 윈도우 [19, {19 + H})을 덮는다")
unpadded_out = conv_transpose_output_size(1, 64, 32, 0)
lesson.say("without the padding, a 7x7 fc6 needs pool5 >= 7, i.e. an image of at least 193 pixels; and at 224 its 1x1"
           f"\noutput becomes only (1-1)*32 + 64 = {unpadded_out} pixels: too few to cover 224.",
           ko="패딩이 없으면 7x7 fc6은 pool5 >= 7, 즉 적어도 193픽셀인 이미지가 필요합니다. 게다가 224에서는 1x1 출력이"
              f"\n(1-1)*32 + 64 = {unpadded_out}픽셀밖에 되지 않아 224를 덮기에 모자랍니다.")
try:
    conv2d_forward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 7, 7)))  # pool5 of a 37x53 image is 2x2
    refused = False
except ValueError:
    refused = True
lesson.check(refused and conv_transpose_output_size(1, 64, 32, 0) < 224,
             "unpadded, a 7x7 fc6 dies on small images and leaves big ones uncovered: hence the 100 pixels",
             ko="패딩이 없으면 7x7 fc6은 작은 이미지에서는 계산조차 못 하고 큰 이미지는 다 덮지 못한다: 그래서 100픽셀을 덧댄다")
for H, W in ((1, 1), (5, 7), (37, 53), (64, 33)):
    out = FCN8s.tiny(K, seed=0).forward(rng.standard_normal((1, 3, H, W)).astype(np.float32))
    lesson.check(out.shape == (1, K, H, W), f"this engine (ceil-mode pools, 1x1 fc6, top-left crop): {H}x{W} -> "
                                            f"{H}x{W} logits, no padding trick",
                 ko=f"이 엔진 (올림 모드 풀링, 1x1 fc6, 왼쪽 위 크롭): {H}x{W} -> {H}x{W} 로짓, 패딩 트릭이 필요 없다")

# %%
lesson.step("The PyTorch port's upsamplers: (n-1)s - 2p + k = s n exactly when k = 2s and p = s/2",
            ko="PyTorch 포팅의 업샘플링 층: k = 2s, p = s/2일 때 (n-1)s - 2p + k = s n이 정확히 성립한다")
lesson.say("variant  layer             k   s   p   (n-1)s - 2p + k",
           ko="모델     층                k   s   p   (n-1)s - 2p + k")
for variant, layers in UPSAMPLERS.items():
    for name, k, s, p in layers:
        net_name = f"FCN-{variant}"  # a name, the same in both languages
        print(f"{net_name:8s} {name:15s} {k:3d} {s:3d} {p:3d}   (n-1)*{s} - {2 * p} + {k} = {s}n")
        lesson.check(all(conv_transpose_output_size(n, k, s, p) == s * n for n in range(1, 200)),
                     f"{name} (k{k} s{s} p{p}) turns n into exactly {s}n, for every n from 1 to 199",
                     ko=f"{name} (k{k} s{s} p{p}): 1부터 199까지 모든 n에 대해 n을 정확히 {s}n으로 만든다")
z = rng.standard_normal((1, K, 3, 5))
lesson.check(fcn32.upscore32.forward(z).shape[2:] == (96, 160) and model.upscore8.forward(z).shape[2:] == (24, 40),
             "the models' own layers: upscore32 takes 3x5 to 96x160, upscore8 takes 3x5 to 24x40",
             ko="모델의 실제 층에서도: upscore32는 3x5를 96x160으로, upscore8은 3x5를 24x40으로 만든다")

# %%
lesson.step("Dropout2d in fc6/fc7: drop whole feature maps (p = 0.5) while training, nothing at inference",
            ko="fc6/fc7의 Dropout2d: 학습(training) 중에는 특성 맵(feature map)을 통째로 버리고(p = 0.5), "
               "추론(inference) 때는 아무것도 하지 않는다")
drop = FCN8s.tiny(K, seed=0).drop6  # the seed's nn.Dropout2d(), default p = 0.5
a = np.ones((4, 1000, 3, 3), dtype=np.float32)
train_out = drop.train().forward(a)
per_channel = train_out.reshape(4, 1000, 9)
lesson.say(f"drop6: p = {drop.p}; train mode, a map of ones -> each channel all 0 or all "
           f"{1 / (1 - drop.p):g}; fraction dropped {np.mean(per_channel[:, :, 0] == 0):.3f}",
           ko=f"drop6: p = {drop.p}. 학습 모드에서 1로 채운 맵을 넣으면 -> 채널마다 모두 0이거나 모두 "
              f"{1 / (1 - drop.p):g}입니다. 버려진 비율 {np.mean(per_channel[:, :, 0] == 0):.3f}")
lesson.check(np.all((per_channel == 0).all(axis=2) | (per_channel == 2).all(axis=2)),
             "whole channels are dropped, the kept ones scaled by 1/(1-p) = 2 (inverted dropout: same mean)",
             ko="채널이 통째로 버려지고, 남은 채널은 1/(1-p) = 2배가 된다 (인버티드 드롭아웃(inverted dropout): 평균이 같다)")
lesson.check(abs(np.mean(per_channel[:, :, 0] == 0) - 0.5) < 0.05, "about half of the 4000 channels are dropped",
             ko="채널 4000개 가운데 약 절반이 버려진다")
lesson.check(np.array_equal(drop.eval().forward(a), a), "eval mode: identity (evaluate and predict call eval())",
             ko="평가 모드(eval)에서는 항등 함수다 (evaluate와 predict가 eval()을 부른다)")

# %%
lesson.step("Gradient check of a whole tiny FCN-8s (float64, every parameter tensor, 37x45 input)",
            ko="작은 FCN-8s 전체의 기울기 검사(gradient check) (float64, 모든 파라미터(parameter) 텐서, 37x45 입력)")
# Widths (2, 3, 4, 5, 6), one conv per block, fc 8: small enough to probe. Eval mode: a dropout mask redrawn on
# every call would make the finite differences meaningless. All parameters redrawn at random: at the paper's
# init the zero score layers make every backbone gradient exactly 0, and 0 == 0 checks nothing (step 2).
net = FCN8s(3, widths=(2, 3, 4, 5, 6), convs_per_block=(1, 1, 1, 1, 1), fc_channels=8, dtype=np.float64,
            seed=0).eval()
for name, p, _ in net.named_parameters():
    p[...] = rng.standard_normal(p.shape) * (np.sqrt(2.0 / p[0].size) if p.ndim == 4 else 0.1)
x = rng.standard_normal((2, 3, 37, 45))  # 37x45: every crop of the rule above is active
errors = gradcheck.check_module(net, x, samples=4)
worst = max(errors, key=errors.get)
lesson.say(f"{len(errors) - 1} parameter tensors + the input, 4 random entries each, random upstream gradient:",
           ko=f"파라미터 텐서 {len(errors) - 1}개 + 입력, 각각 무작위 원소 4개, 무작위 상류 기울기(upstream gradient):")
for name in ("x", "conv1_1.weight", "score_pool3_fr.weight", "score_pool4_fr.weight", "upscore2.weight",
             "upscore8.bias"):
    lesson.say(f"    {name:24s} rel error {errors[name]:.1e}", ko=f"    {name:24s} 상대 오차 {errors[name]:.1e}")
lesson.say(f"    worst: {worst} {errors[worst]:.1e}", ko=f"    최대 오차: {worst} {errors[worst]:.1e}")
lesson.check(max(errors.values()) < gradcheck.TOL_MODEL,
             f"every tensor below TOL_MODEL = {gradcheck.TOL_MODEL:g}: the hand-written backward of the whole net "
             f"(skip forks summed, crops undone) is right",
             ko=f"모든 텐서가 TOL_MODEL = {gradcheck.TOL_MODEL:g} 미만이다: 손으로 쓴 신경망 전체의 역전파"
                f"(스킵 연결의 갈래는 합산, 크롭은 되돌림)가 옳다")

# %%
lesson.done(summary=[
    ("The stage-by-stage trace of FCN-8s equals model.forward, for 224x224 and 37x53.",
     "FCN-8s를 단계별로 따라간 결과는 224x224와 37x53 모두에서 model.forward와 같다."),
    ("Score layers start at zero: a fresh FCN-8s outputs zeros, and one built from FCN-32s computes FCN-32s's "
        "scores through bilinear x2, x2, x8.",
     "점수 층은 0에서 시작한다: 갓 만든 FCN-8s는 0을 출력하고, FCN-32s로 만든 FCN-8s는 FCN-32s의 점수를 "
        "쌍선형 x2, x2, x8로 키운 값을 계산한다."),
    ("Upsampled maps are cut top-left (offset 0), which centres each bilinear hat on its cell.",
     "업샘플링한 맵은 왼쪽 위를 기준으로 잘린다(오프셋 0). 그래야 쌍선형 모자가 저마다 자기 셀의 중심에 놓인다."),
    ("Composing each layer's offsets reproduces the paper's Caffe crop offsets 19; 5, 27; 5, 9, 31.",
     "층마다의 오프셋을 합성하면 논문의 Caffe 크롭 오프셋 19; 5, 27; 5, 9, 31이 그대로 나온다."),
    ("k = 2s, p = s/2 turns n into exactly s n; Dropout2d drops whole channels, in training only.",
     "k = 2s, p = s/2는 n을 정확히 s n으로 만든다. Dropout2d는 학습 중에만 채널을 통째로 버린다."),
    ("The hand-written backward of a whole tiny FCN-8s passes the gradient check.",
     "작은 FCN-8s 전체에 대해 손으로 쓴 역전파가 기울기 검사를 통과한다."),
], exercises=["fcn8s_skip_fusion"])

# %% [markdown]
# # Lesson 12: receptive fields and architecture choices -- what a convolution sees, and the designs built on it
#
# The previous lessons built FCN layer by layer. This one steps back and asks
# what a stack of such layers *sees*, and how the architectures around FCN
# spend their parameters and their arithmetic. Every layer comes from
# `fcn_scratch`; where the engine lacks a layer (a grouped convolution,
# BatchNorm), the lesson builds the same computation from the engine's `Conv2d`
# and says so. This lesson
#
# 1. computes and **measures receptive fields** (VGG16's pools widen them to
#    6, 16, 44, 100, 212 px; the total stride is a product), and why VGG stacks
#    3x3 convolutions and pools,
# 2. expresses **depthwise convolution** with the engine's `Conv2d` and counts
#    what a depthwise-separable block saves,
# 3. runs **Conv1D** and **Conv3D** with the engine's 2-D convolution,
# 4. reads FCN as an **encoder-decoder**, and U-Net's concatenation as a
#    generalisation of FCN's sum,
# 5. does **super-resolution** (초해상도) with nearest, bilinear and a trained transposed conv,
# 6. traces torchvision's **FCNHead** (3x3 conv, BatchNorm, ReLU, Dropout(0.1), 1x1 conv)
#    and folds its BatchNorm into the conv,
# 7. sorts parameters from **hyper-parameters** and maps a list of FCN knobs to the engine.
#
# Primary sources: Long, Shelhamer & Darrell, *Fully Convolutional Networks
# for Semantic Segmentation*, arXiv:1411.4038 -- Section 3 (receptive fields,
# "path-connected" locations), 3.3 (upsampling is backwards strided
# convolution, learned), 4.2 (combining what and where: the skips), 4.3 (the
# experimental framework: optimiser, dropout, augmentation); Simonyan &
# Zisserman (VGG), arXiv:1409.1556, Section 2.3 (a stack of 3x3 convs: the
# field of a 7x7 with 27C^2 instead of 49C^2 weights); Yu & Koltun,
# arXiv:1511.07122, Section 2 (dilated convolutions); Luo et al.,
# arXiv:1701.04128 (the effective receptive field is concentrated at the
# centre); Howard et al. (MobileNets), arXiv:1704.04861, Section 3.1
# (depthwise-separable cost 1/N + 1/D_K^2); Ronneberger et al. (U-Net),
# arXiv:1505.04597, Section 2 (concatenating skips); Dong, Loy & Tang (FSRCNN),
# arXiv:1608.00367, Section 3 (a learned deconvolution does the upsampling);
# Dumoulin & Visin, arXiv:1603.07285, Section 4 (transposed = fractionally
# strided convolution); Ioffe & Szegedy (BatchNorm), arXiv:1502.03167,
# Section 3.1 (at inference a per-channel affine map); Tompson et al.,
# arXiv:1411.4280 (SpatialDropout, which drops whole channels).
# Run: `python lessons/12_receptive_fields_and_architectures.py [--step] [--no-figures] [--figures DIR]`.

# %% [markdown]
# # 레슨 12: 수용 영역과 구조 선택 -- 합성곱이 보는 범위, 그리고 그 위에 세운 설계
#
# 지금까지의 레슨에서는 FCN을 층 하나하나 쌓아 올렸습니다. 이번 레슨에서는 한 걸음 물러서서, 그런 층을 쌓은
# 신경망이 무엇을 *보는지*, 그리고 FCN 주변의 여러 구조가 파라미터(parameter)와 연산량을 어디에 쓰는지
# 살펴봅니다. 모든 층은 `fcn_scratch`에서 가져옵니다. 엔진에 없는 층(그룹 합성곱, BatchNorm)은 엔진의
# `Conv2d`로 같은 계산을 만들고, 그렇게 했다고 밝힙니다. 이 레슨에서는
#
# 1. **수용 영역(receptive field)을 계산하고 측정**합니다. VGG16의 풀링(pooling)은 수용 영역을 6, 16, 44, 100,
#    212 px로 넓히고, 전체 스트라이드(stride)는 각 스트라이드의 곱입니다. VGG가 왜 3x3 합성곱(convolution)과
#    풀링을 쌓는지도 봅니다.
# 2. **깊이별 합성곱(depthwise convolution)**을 엔진의 `Conv2d`로 표현하고, 깊이별 분리(depthwise-separable)
#    블록이 얼마나 아끼는지 셉니다.
# 3. **Conv1D**와 **Conv3D**를 엔진의 2차원 합성곱으로 계산합니다.
# 4. FCN을 **인코더-디코더(encoder-decoder)**로 읽고, U-Net의 이어 붙이기(concatenation)를 FCN의 덧셈을 일반화한
#    것으로 봅니다.
# 5. 최근접 이웃(nearest neighbour), 쌍선형(bilinear), 학습(training)한 전치 합성곱(transposed convolution)으로
#    **초해상도(super-resolution)**를 해 봅니다.
# 6. torchvision의 **FCNHead**(3x3 합성곱, BatchNorm, ReLU, Dropout(0.1), 1x1 합성곱)를 한 단계씩 따라가고,
#    BatchNorm을 합성곱에 접어 넣습니다(folding).
# 7. 파라미터와 **하이퍼파라미터(hyper-parameter)**를 구분하고, FCN에서 조정해 볼 항목들이 엔진의 어디에 있는지
#    짚어 봅니다.
#
# 1차 출처: Long, Shelhamer & Darrell, *Fully Convolutional Networks for Semantic Segmentation*,
# arXiv:1411.4038 -- 3절(수용 영역, "경로로 연결된(path-connected)" 위치), 3.3절(업샘플링(upsampling)은
# 거꾸로 가는 스트라이드 합성곱이고, 학습된다), 4.2절(무엇과 어디를 결합하기: 스킵), 4.3절(실험 설정:
# 옵티마이저, 드롭아웃(dropout), 데이터 증강); Simonyan & Zisserman (VGG), arXiv:1409.1556, 2.3절(3x3
# 합성곱을 쌓으면 49C^2 대신 27C^2개의 가중치(weight)로 7x7의 수용 영역을 얻는다); Yu & Koltun,
# arXiv:1511.07122, 2절(팽창 합성곱(dilated convolution)); Luo et al., arXiv:1701.04128(유효 수용 영역은
# 가운데에 몰려 있다); Howard et al. (MobileNets), arXiv:1704.04861, 3.1절(깊이별 분리 합성곱의 비용
# 1/N + 1/D_K^2); Ronneberger et al. (U-Net), arXiv:1505.04597, 2절(이어 붙이는 스킵); Dong, Loy & Tang
# (FSRCNN), arXiv:1608.00367, 3절(학습된 역합성곱(deconvolution)이 업샘플링을 맡는다); Dumoulin & Visin,
# arXiv:1603.07285, 4절(전치 합성곱 = 분수 스트라이드 합성곱); Ioffe & Szegedy (BatchNorm),
# arXiv:1502.03167, 3.1절(추론(inference) 때는 채널별 아핀 변환); Tompson et al., arXiv:1411.4280(채널을
# 통째로 버리는 SpatialDropout).
# 실행: `python lessons/12_receptive_fields_and_architectures.py --lang ko [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import Lesson, pad, text_width  # first: puts the repo on sys.path, picks a headless backend


import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle
from scipy import ndimage, signal

from fcn_scratch.data import denormalize, toy_shapes
from fcn_scratch.functional import conv2d_forward
from fcn_scratch.init import bilinear_weight
from fcn_scratch.layers import Conv2d, ConvTranspose2d, Dropout2d, ReLU
from fcn_scratch.models import TINY, UPSAMPLERS, VGG16_CONVS, VGG16_WIDTHS, FCN8s, FCN16s, FCN32s, pooled_sizes
from fcn_scratch.optim import Adam
from fcn_scratch.train import fit
from fcn_scratch.upsample import BilinearUpsample, NearestUpsample

lesson = Lesson("12_receptive_fields_and_architectures",
                "Receptive fields and architecture choices: what a convolution sees, and the designs built on it",
                ko="수용 영역과 구조 선택: 합성곱이 보는 범위, 그리고 그 위에 세운 설계")
lesson.avoid_interpreted_kernels()  # under NUMBA_DISABLE_JIT=1 step 6's big layer would take minutes in plain Python
rng = np.random.default_rng(12)
f64 = dict(dtype=np.float64)


def bare(ax):
    ax.set_xticks([]), ax.set_yticks([])


# %%
lesson.step("Receptive field: VGG16's pools widen it to 6, 16, 44, 100, 212 px; stacked 3x3 convs are cheap",
            ko="수용 영역(receptive field): VGG16의 풀링(pooling)으로 6, 16, 44, 100, 212 px까지 넓어지고, "
               "3x3 합성곱(convolution)을 쌓는 편이 싸다")
# The receptive field of a unit is the input region it is path-connected to (FCN paper, Section 3). Each layer
# widens it by (k-1) d times the current jump (the input pixels between neighbouring units), then multiplies the
# jump by its stride.


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
print(lesson.tr("after pool1..pool5: receptive field", ko="pool1..pool5 뒤의 수용 영역"), [r for r, _ in rf],
      lesson.tr("px, jump (pixels per step)", ko="px, 점프(jump: 이웃한 두 셀 사이의 입력 픽셀(pixel) 수)"),
      [j for _, j in rf])
lesson.check([r for r, _ in rf] == [6, 16, 44, 100, 212], "the formula: one pool5 cell sees 212x212 pixels "
                                                          "(VGG16's commonly cited field); shallow layers are local, "
                                                          "deep ones nearly global",
             ko="공식: pool5의 한 셀은 212x212 픽셀을 본다(흔히 인용되는 VGG16의 수용 영역). 얕은 층은 국소적이고, "
                "깊은 층은 거의 전체를 본다")
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
sizes_in, sizes_out = [], []  # the map size each layer of the chain receives and returns
for layer in chain:
    sizes_in.append(h_.shape[-1])
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
print(lesson.tr("measured from the engine's backward pass:", ko="엔진의 역전파(backward pass)로 측정한 값:"), measured)
lesson.check(measured == [r for r, _ in rf], "the gradient of one cell reaches exactly its receptive field",
             ko="한 셀의 기울기(gradient)는 정확히 그 수용 영역까지 닿는다")
# The jump, measured the same way: the pool5 cell one to the right of the centre one.
n5 = sizes_out[-1]
d_ = np.zeros((1, 1, n5, n5))
d_[0, 0, n5 // 2, n5 // 2 + 1] = 1.0
for layer in reversed(chain):
    d_ = layer.backward(d_)
shift = int(np.nonzero(d_[0, 0].any(axis=0))[0].min() - np.nonzero(grads_by_stage[-1].any(axis=0))[0].min())
strides = [s_ for _, s_, _ in vgg_layers if s_ > 1]
lesson.say(f"two neighbouring pool5 cells: their fields start {shift} px apart; the five pool strides {strides} "
           f"multiply to {int(np.prod(strides))} and add up to {sum(strides)}",
           ko=f"이웃한 두 pool5 셀의 수용 영역은 {shift} px 떨어져서 시작합니다. 풀링 다섯 개의 스트라이드(stride) "
              f"{strides}는 곱하면 {int(np.prod(strides))}, 더하면 {sum(strides)}입니다.")
lesson.check(shift == int(np.prod(strides)) != sum(strides),
             f"neighbouring pool5 cells look {shift} px apart (measured): the total stride is the PRODUCT of the "
             f"strides, 2^5 = 32, not their sum (10)",
             ko=f"이웃한 pool5 셀은 {shift} px 떨어진 곳을 본다(측정값): 전체 스트라이드는 스트라이드들의 합(10)이 "
                f"아니라 곱, 2^5 = 32이다")
g5 = grads_by_stage[-1]
lesson.check(g5.max() > 1e6 * g5[g5 > 0].min(), "but not evenly: with these averaging weights the centre pixel "
                                                 "counts over a million times more than the field's corners "
                                                 "(the 'effective' receptive field, Luo et al.)",
             ko="하지만 고르게 보지는 않는다: 이 평균 가중치(weight)에서는 가운데 픽셀이 수용 영역 모서리보다 "
                "백만 배 넘게 크게 반영된다('유효' 수용 영역, Luo et al.)")


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


lesson.say("receptive field and weights (64 -> 64 channels) of:",
           ko="각 경우의 수용 영역과 가중치 수(채널(channel) 64 -> 64):")
cases = {"one 5x5 conv": [(5, 1)], "two 3x3 convs": [(3, 1)] * 2, "one 7x7 conv": [(7, 1)],
         "three 3x3 convs": [(3, 1)] * 3, "one 3x3 conv, dilation 2": [(3, 2)],
         "13 3x3 convs, no pooling": [(3, 1)] * 13}  # (kernel, dilation) of each conv
shown = {"one 5x5 conv": lesson.tr("one 5x5 conv", ko="5x5 합성곱 1개"),
         "two 3x3 convs": lesson.tr("two 3x3 convs", ko="3x3 합성곱 2개"),
         "one 7x7 conv": lesson.tr("one 7x7 conv", ko="7x7 합성곱 1개"),
         "three 3x3 convs": lesson.tr("three 3x3 convs", ko="3x3 합성곱 3개"),
         "one 3x3 conv, dilation 2": lesson.tr("one 3x3 conv, dilation 2", ko="3x3 합성곱 1개, 팽창 2"),
         "13 3x3 convs, no pooling": lesson.tr("13 3x3 convs, no pooling", ko="3x3 합성곱 13개, 풀링 없음")}
found, weights = {}, {}
for name, spec in cases.items():
    found[name] = support([Conv2d(1, 1, k_, dilation=d_, **f64) for k_, d_ in spec])
    weights[name] = sum(Conv2d(64, 64, k_, dilation=d_, bias=False).weight.size for k_, d_ in spec)
    lesson.say(f"    {pad(shown[name], 26)} {found[name]:3d} px   {weights[name]:>9,} weights",
               ko=f"    {pad(shown[name], 26)} {found[name]:3d} px   가중치 {weights[name]:>9,}개")
lesson.check(found["two 3x3 convs"] == found["one 5x5 conv"] == 5 and found["three 3x3 convs"] == found["one 7x7 conv"]
             == 7 and weights["two 3x3 convs"] / weights["one 5x5 conv"] == 18 / 25 and
             weights["three 3x3 convs"] / weights["one 7x7 conv"] == 27 / 49,
             "two 3x3 convs see 5x5 with 18C^2 weights instead of 25C^2, three see 7x7 with 27C^2 instead of 49C^2 "
             "(VGG, Section 2.3: why it stacks 3x3 convs deep)",
             ko="3x3 합성곱 두 개는 25C^2 대신 18C^2개의 가중치로 5x5를, 세 개는 49C^2 대신 27C^2개로 7x7을 본다"
                "(VGG 2.3절: VGG가 3x3 합성곱을 깊이 쌓는 이유)")
lesson.check(found["one 3x3 conv, dilation 2"] == 5 and weights["one 3x3 conv, dilation 2"] == 9 * 64 * 64,
             "dilation widens the field without extra weights (atrous, lesson 03)",
             ko="팽창(dilation)은 가중치를 늘리지 않고 수용 영역을 넓힌다(아트러스(atrous), 레슨 03)")
macs = lambda sizes: sum(9 * cin * cout * s * s for cin, cout, s in sizes)  # noqa: E731
# The map size each of VGG16's 13 convs works on, as the chain above measured it (the 3x3 layers of the chain).
conv_sizes = [s_ for layer, s_ in zip(chain, sizes_in) if layer.weight.shape[-1] == 3]
convs, cin = [], 3
for width in np.repeat(VGG16_WIDTHS, VGG16_CONVS):
    convs.append((cin, int(width), conv_sizes[len(convs)]))
    cin = int(width)
pooled_macs, flat_macs = macs(convs), macs([(ci, co, 224) for ci, co, _ in convs])
lesson.say(f"VGG16's 13 convs on a 224 image: maps {sorted(set(conv_sizes), reverse=True)} px, "
           f"{pooled_macs / 1e9:.1f} G multiply-adds with pooling, {flat_macs / 1e9:.0f} G without (every layer at "
           f"224x224)",
           ko=f"224 이미지에서 VGG16의 합성곱 13개: 맵 크기 {sorted(set(conv_sizes), reverse=True)} px, 곱셈-덧셈"
              f"(multiply-add)이 풀링이 있으면 {pooled_macs / 1e9:.1f} G번, 없으면(모든 층이 224x224) "
              f"{flat_macs / 1e9:.0f} G번입니다.")
lesson.check(found["13 3x3 convs, no pooling"] == 27 and flat_macs > 40 * pooled_macs,
             "without pooling the 13 convs see only 27x27 px (context lost) and cost over 40x more",
             ko="풀링이 없으면 합성곱 13개는 27x27 px만 보고(문맥을 잃는다) 비용은 40배 넘게 든다")
fc6_pooled = 512 * int(np.prod(pooled_sizes(224, 224)[-1])) * 4096  # dense fc6 on pool5's 7x7x512
lesson.say(f"A dense fc6 on pool5's 7x7x512 map has {fc6_pooled / 1e6:.1f} M weights; on an unpooled 224x224x512 map "
           f"it would need {512 * 224 * 224 * 4096 / 1e9:.0f} G ({224 * 224 // 49}x): pooling keeps the classifier's "
           f"parameters in check (a conv's weights do not depend on the map size).",
           ko=f"pool5의 7x7x512 맵 위에 놓인 완전 연결 층(fully connected layer) fc6은 가중치가 "
              f"{fc6_pooled / 1e6:.1f} M개입니다. 풀링하지 않은 224x224x512 맵이라면 "
              f"{512 * 224 * 224 * 4096 / 1e9:.0f} G개({224 * 224 // 49}배)가 필요합니다: 풀링 덕분에 분류기의 "
              f"파라미터(parameter) 수가 감당할 만한 수준에 머뭅니다(합성곱의 가중치 수는 맵 크기와 상관없습니다).")

fig, axes = plt.subplots(1, 2, figsize=(11, 5))
ax = axes[0]
ax.imshow(np.zeros((224, 224)), cmap="Greys", vmin=0, vmax=1)
ax.set_xlabel(lesson.label("image column", ko="이미지 열")), ax.set_ylabel(lesson.label("image row", ko="이미지 행"))
for b_, (g_, r_) in enumerate(zip(grads_by_stage, measured)):
    rows_, cols_ = np.nonzero(g_.any(axis=1))[0], np.nonzero(g_.any(axis=0))[0]
    ax.add_patch(Rectangle((cols_.min() - 0.5, rows_.min() - 0.5), r_, r_, fill=False, lw=2,
                           ec=plt.cm.viridis(b_ / 4.5),
                           label=lesson.label(f"pool{b_ + 1}: {r_}x{r_}", ko=f"pool{b_ + 1} 뒤: {r_}x{r_}")))
ax.set_title(lesson.label("Receptive field of the centre cell after each pool\n(measured with the engine, 224x224 "
                          "image)", ko="풀링마다 가운데 셀의 수용 영역\n(엔진으로 측정, 224x224 이미지)"),
             fontsize=9)
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
ax.set_xlim(-0.5, 223.5), ax.set_ylim(223.5, -0.5)
ax = axes[1]
im = ax.imshow(np.log10(np.where(grads_by_stage[-1] > 0, grads_by_stage[-1], np.nan)), cmap="magma")
fig.colorbar(im, ax=ax, shrink=0.8, label=lesson.label("log10 of the gradient", ko="기울기의 log10"))
ax.set_title(lesson.label("pool5 cell's gradient on the image (these averaging weights):\nthe centre counts far more "
                          "than the edges",
                          ko="이미지 위의 pool5 한 셀의 기울기(이 평균 가중치에서):\n가운데가 가장자리보다 훨씬 크게 "
                             "반영됨"), fontsize=9)
ax.set_xlabel(lesson.label("image column", ko="이미지 열")), ax.set_ylabel(lesson.label("image row", ko="이미지 행"))
fig.tight_layout()
lesson.save(fig, "receptive_field")

# %%
lesson.step("Depthwise convolution (tf.nn.depthwise_conv2d): every filter applied to each input channel separately",
            ko="깊이별 합성곱(depthwise convolution, tf.nn.depthwise_conv2d): 필터를 입력 채널마다 따로 적용한다")
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
lesson.say(f"input {xd.shape}, {mult} filters per channel -> {y_block.shape}; block-diagonal weight "
           f"{block.weight.shape}, {100 * (block.weight == 0).mean():.0f}% zeros",
           ko=f"입력 {xd.shape}, 채널마다 필터 {mult}개 -> {y_block.shape}; 블록 대각 가중치 {block.weight.shape}, "
              f"{100 * (block.weight == 0).mean():.0f}%가 0")
# Change input channel 0 only: a depthwise conv must change output maps 0 and 1 (its two filters) and no other.
nudged = xd.copy()
nudged[:, 0] += rng.standard_normal(nudged[:, 0].shape)
changed_maps = np.nonzero(np.abs(block.forward(nudged) - y_block).max(axis=(0, 2, 3)) > 0)[0].tolist()
lesson.say(f"input channel 0 changed -> output maps {changed_maps} changed "
           f"({mult} filters x {Cin} channels = {Cin * mult} maps in all)",
           ko=f"입력 채널 0을 바꾸면 -> 바뀌는 출력 맵: {changed_maps} "
              f"(필터 {mult}개 x 채널 {Cin}개 = 맵 모두 {Cin * mult}개)")
lesson.check(changed_maps == list(range(mult)), f"each input channel feeds only its own {mult} output maps: "
                                                "f_n filters on each of f_n' channels give f_n * f_n' maps",
             ko=f"입력 채널 하나는 자기 몫의 출력 맵 {mult}개에만 들어간다: 채널 f_n'개 각각에 필터 f_n개를 쓰면 "
                "맵은 f_n * f_n'개다")
lesson.close(y_block, y_loop, "Conv2d(1, 2, 3) on each channel separately = one Conv2d(3, 6, 3) with a "
                              "block-diagonal weight",
             ko="채널마다 따로 적용한 Conv2d(1, 2, 3)은 블록 대각 가중치를 가진 Conv2d(3, 6, 3) 하나와 같다")
c, j_ = 1, 1  # an independent check of one map: output c*mult + j is input channel c correlated with its filter
lesson.close(y_block[0, c * mult + j_], signal.correlate2d(xd[0, c], per_channel[c].weight[j_, 0], mode="valid")
             + per_channel[c].bias[j_], "output map 3 = channel 1 correlated with its 2nd filter (scipy), nothing else",
             ko="출력 맵 3은 채널 1과 그 채널의 두 번째 필터의 상관(scipy)이고, 다른 것은 섞이지 않는다")
# What it saves, as a depthwise-separable block: depthwise 3x3 (one filter per channel) + pointwise 1x1 conv.
Cs = 256
full = Conv2d(Cs, Cs, 3, bias=False)
depthwise = [Conv2d(1, 1, 3, bias=False) for _ in range(Cs)]
pointwise = Conv2d(Cs, Cs, 1, bias=False)
n_full, n_sep = full.weight.size, sum(d.weight.size for d in depthwise) + pointwise.weight.size
lesson.say(f"{Cs} -> {Cs} channels, 3x3: full conv {n_full:,} weights; depthwise {Cs * 9:,} + pointwise 1x1 "
           f"{pointwise.weight.size:,} = {n_sep:,} ({n_full / n_sep:.1f}x fewer)",
           ko=f"채널 {Cs} -> {Cs}, 3x3: 일반 합성곱은 가중치 {n_full:,}개, 깊이별 {Cs * 9:,} + 점별(pointwise) 1x1 "
              f"{pointwise.weight.size:,} = {n_sep:,}개 ({n_full / n_sep:.1f}배 적음)")
lesson.close(n_sep / n_full, 1 / Cs + 1 / 9, "depthwise + 1x1 over a full conv = 1/C_out + 1/k^2 (MobileNets, "
                                             "Section 3.1); each weight is one multiply-add per output pixel, so the "
                                             "FLOPs shrink the same",
             ko="깊이별 + 1x1 합성곱과 일반 합성곱의 비는 1/C_out + 1/k^2이다(MobileNets 3.1절). 가중치 하나는 "
                "출력 픽셀마다 곱셈-덧셈 한 번이므로 FLOPs도 같은 비율로 준다")
lesson.say("This engine's Conv2d has no `groups` argument: the block-diagonal weight above multiplies its zeros too, "
           "so it shows\nthe arithmetic of a depthwise conv, not its speed.",
           ko="이 엔진의 Conv2d에는 `groups` 인자가 없습니다. 위의 블록 대각 가중치는 0까지 곱하므로, 깊이별 "
              "합성곱의\n속도가 아니라 연산량만 보여 줍니다.")

# %%
lesson.step("Conv1D and Conv3D (keras.layers): the same sliding dot product in one and in three dimensions",
            ko="Conv1D와 Conv3D(keras.layers): 1차원과 3차원에서 미끄러지며 계산하는 같은 내적")
seq = rng.standard_normal((2, 3, 50))  # (N, C, L): a 3-channel time series or a sequence of word vectors
w1 = rng.standard_normal((4, 3, 5))  # 4 filters, 3 channels, width 5
y1 = conv2d_forward(seq[:, :, None, :], w1[:, :, None, :])[0][:, :, 0, :]  # a 1 x L image, a 1 x 5 kernel
ref1 = np.array([[sum(np.correlate(seq[n, c], w1[o, c], mode="valid") for c in range(3)) for o in range(4)]
                 for n in range(2)])
lesson.say(f"Conv1D: {seq.shape} * {w1.shape} -> {y1.shape} (the engine's conv2d on height 1)",
           ko=f"Conv1D: {seq.shape} * {w1.shape} -> {y1.shape} (높이 1에서 돌린 엔진의 conv2d)")
lesson.close(y1, ref1, "Conv1D = the engine's 2-D convolution with height 1 (checked against np.correlate)",
             ko="Conv1D는 높이가 1인 엔진의 2차원 합성곱이다(np.correlate로 확인)")
vol = rng.standard_normal((1, 2, 6, 9, 9))  # (N, C, D, H, W): a 2-channel volume, e.g. a PET scan
w3 = rng.standard_normal((3, 2, 3, 3, 3))  # 3 filters, 3x3x3
# A 3-D conv is a sum of 2-D convs: output slice d adds kernel slice kd applied to input slice d + kd.
y3 = np.stack([sum(conv2d_forward(vol[:, :, d + kd], w3[:, :, kd])[0] for kd in range(3)) for d in range(6 - 2)],
              axis=2)
ref3 = np.array([[sum(signal.correlate(vol[0, c], w3[o, c], mode="valid") for c in range(2)) for o in range(3)]])
lesson.say(f"Conv3D: {vol.shape} * {w3.shape} -> {y3.shape} (three 2-D convs per output slice, summed)",
           ko=f"Conv3D: {vol.shape} * {w3.shape} -> {y3.shape} (출력 슬라이스마다 2차원 합성곱 세 개를 더함)")
lesson.close(y3, ref3, "Conv3D = for each output slice, the sum over kernel depth of 2-D convs "
                       "(scipy.signal.correlate)",
             ko="Conv3D는 출력 슬라이스마다 커널 깊이를 따라 2차원 합성곱을 더한 것이다(scipy.signal.correlate)")

# %%
lesson.step("FCN is an encoder-decoder network (인코더-디코더); U-Net concatenates where FCN adds",
            ko="FCN은 인코더-디코더(encoder-decoder) 신경망이고, U-Net은 FCN이 더하는 곳에서 이어 붙인다")
model8 = FCN8s.tiny(5, **f64, seed=0)
sd = model8.state_dict()
encoder = [k for k in sd if k.startswith(("conv", "fc6", "fc7"))]  # the downsampling network (the classifier)
decoder = [k for k in sd if k not in encoder]  # score layers and upsamplers
n_enc, n_dec = sum(sd[k].size for k in encoder), sum(sd[k].size for k in decoder)
x64 = rng.standard_normal((1, 3, 64, 64))
h_ = x64
for b_ in range(1, 6):
    h_ = model8._block_forward(b_, h_)
lesson.say(f"encoder: image {x64.shape} -> pool5 {h_.shape} (an abstract representation, 1/32 of the size), "
           f"{n_enc:,} parameters",
           ko=f"인코더: 이미지 {x64.shape} -> pool5 {h_.shape} (크기가 1/32인 추상적 표현), 파라미터 {n_enc:,}개")
decoder_layers = ", ".join(sorted({k.split(".")[0] for k in decoder}))
lesson.say(f"decoder: score maps at 1/32, 1/16, 1/8 -> upsampled to {model8.forward(x64).shape}, {n_dec:,} parameters "
           f"({decoder_layers})",
           ko=f"디코더: 1/32, 1/16, 1/8 크기의 점수 맵(score map) -> {model8.forward(x64).shape}로 업샘플링"
              f"(upsampling), 파라미터 {n_dec:,}개 ({decoder_layers})")
lesson.check(n_dec < 0.02 * n_enc, f"FCN's decoder is light: {100 * n_dec / n_enc:.1f}% of the encoder's parameters",
             ko=f"FCN의 디코더는 가볍다: 파라미터가 인코더의 {100 * n_dec / n_enc:.1f}%다")


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
                 for v in counts), "the count from the layer shapes matches the engine's three tiny models",
             ko="층 모양으로 센 파라미터 수는 엔진의 tiny 모델 세 개와 일치한다")
vgg = {v: n_params(v, 21, VGG16_WIDTHS, VGG16_CONVS, 4096) for v in ("32s", "16s", "8s")}
vgg_counts = {f"FCN-{v}": f"{n:,}" for v, n in vgg.items()}
print(lesson.tr("VGG16 widths, 21 classes (PASCAL VOC):", ko="VGG16의 채널 수, 클래스(class) 21개(PASCAL VOC):"), vgg_counts)
# The engine's own FCN-32s and FCN-8s at VGG16's widths and 21 classes. The variants share the encoder, so one
# conv per block and fc_channels 64 (a 16 MB model, not VGG16's 0.5 GB) change their difference in nothing.
slim = dict(widths=VGG16_WIDTHS, convs_per_block=(1, 1, 1, 1, 1), fc_channels=64, seed=0)
engine_counts = {v: sum(p.size for _, p, _ in cls(21, **slim).named_parameters())
                 for v, cls in (("32s", FCN32s), ("8s", FCN8s))}
extra = engine_counts["8s"] - engine_counts["32s"]
lesson.say(f"the engine's FCN-8s minus FCN-32s at VGG16 widths: {extra:+,} parameters "
           f"({100 * extra / vgg['32s']:+.2f}% of the full VGG16 FCN-32s)",
           ko=f"VGG16의 채널 수에서 엔진의 FCN-8s 빼기 FCN-32s: 파라미터 {extra:+,}개 "
              f"(VGG16 전체 크기 FCN-32s의 {100 * extra / vgg['32s']:+.2f}%)")
lesson.check(extra == vgg["8s"] - vgg["32s"] < 0,
             "the skips cost no real parameters: FCN-8s even has fewer than FCN-32s (the engine's models say so, "
             "as the shape count does), because FCN-32s's single x32 upsampler (21x21x64x64) outweighs two 1x1 "
             "score layers and three small upsamplers",
             ko="스킵에는 파라미터가 사실상 들지 않는다: FCN-8s는 오히려 FCN-32s보다 적다(모양으로 센 값처럼 엔진의 "
                "모델도 그렇다). FCN-32s의 x32 업샘플링 층 하나(21x21x64x64)가 1x1 점수 층 두 개와 작은 업샘플링 층 세 "
                "개를 합친 것보다 무겁기 때문이다")
# U-Net: the decoder concatenates the skip's features with the upsampled ones, then convolves. With a 1x1
# conv after the concatenation this is exactly FCN's 'score each, then add':
deep, skip = rng.standard_normal((1, 6, 5, 7)), rng.standard_normal((1, 4, 5, 7))
fuse = Conv2d(10, 3, 1, **f64, seed=9)  # on the concatenation [deep, skip]
score_deep, score_skip = Conv2d(6, 3, 1, **f64), Conv2d(4, 3, 1, bias=False, **f64)
score_deep.params["weight"][...], score_deep.params["bias"][...] = fuse.weight[:, :6], fuse.bias
score_skip.params["weight"][...] = fuse.weight[:, 6:]
lesson.close(fuse.forward(np.concatenate([deep, skip], axis=1)), score_deep.forward(deep) + score_skip.forward(skip),
             "1x1 conv of the concatenation = sum of 1x1 convs of the parts: FCN's sum is U-Net's concatenation "
             "with a 1x1 fusion",
             ko="이어 붙이기(concatenation)한 것에 1x1 합성곱을 하면 각 부분에 1x1 합성곱을 해서 더한 것과 같다: FCN의 "
                "덧셈은 1x1 융합을 붙인 U-Net의 이어 붙이기이다")
lesson.say("U-Net then runs 3x3 convs on the concatenation, which a sum of per-branch scores cannot express. "
           "Why an encoder-\ndecoder at all: a network kept at full size ('same' padding, no pooling) costs far "
           f"more -- step 1: {flat_macs / pooled_macs:.0f}x for VGG16's convs.",
           ko="U-Net은 이어 붙이기의 결과에 3x3 합성곱을 돌리는데, 이것은 가지별 점수의 합으로는 표현할 수 없습니다.\n"
              "애초에 왜 인코더-디코더를 쓸까요? 전체 크기를 유지하는 신경망('same' 패딩(padding), 풀링 없음)은 "
              f"훨씬 비쌉니다 -- 1단계에서 VGG16의 합성곱은 {flat_macs / pooled_macs:.0f}배였습니다.")

# %%
lesson.step("Super-resolution (초해상도): an image upsampled x2 -- nearest, bilinear, a trained transposed conv",
            ko="초해상도(super-resolution): 이미지를 x2로 업샘플링한다 -- 최근접 이웃(nearest neighbour), "
               "쌍선형(bilinear), 학습(training)한 전치 합성곱(transposed convolution)")
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
                                                                               "bilinear upsampler",
             ko="전치 합성곱은 쌍선형 업샘플링 층으로 시작한다")
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
# The transposed conv is also a 'fractionally strided' conv (부분 stride; Dumoulin & Visin, Section 4): stride 1/2
# = a stride-1 conv on the input with a zero between its pixels (lesson 05); the engine computes it both ways.
as_zero_insert = ConvTranspose2d(1, 1, 4, stride=2, padding=1, method="zero_insert", **f64)
as_zero_insert.load_state_dict(learned.state_dict())
lesson.close(upscale(as_zero_insert, test_lr), upscale(learned, test_lr),
             "the trained upsampler as zero insertion + stride-1 conv ('stride 1/2') = as col2im",
             ko="학습한 업샘플링 층을 0 삽입(zero insertion) + 스트라이드 1 합성곱('스트라이드 1/2')으로 계산해도 "
                "col2im으로 계산한 것과 같다")
results_sr = {**before, **after}
psnr_shown = {k: f"{v:.6f} ({10 * np.log10(1 / v):.2f} dB PSNR)" for k, v in results_sr.items()}
print(lesson.tr("test MSE (8 images never trained on):", ko="테스트 MSE (학습에 쓰지 않은 이미지 8장):"), psnr_shown)
lesson.say(f"training MSE of the transposed conv: {train_curve[0]:.5f} (bilinear start) -> {train_curve[-1]:.5f}; "
           f"learned 4x4 kernel:\n{learned.weight[0, 0]}",
           ko=f"전치 합성곱의 학습 MSE: {train_curve[0]:.5f} (쌍선형으로 시작) -> {train_curve[-1]:.5f}; "
              f"학습된 4x4 커널:\n{learned.weight[0, 0]}")
lesson.check(before["bilinear"] < before["nearest"], "bilinear beats nearest: it does not paint 2x2 blocks",
             ko="쌍선형이 최근접 이웃보다 낫다: 2x2 블록으로 칠하지 않는다")
lesson.check(train_curve[-1] < train_curve[0] and after["learned"] < before["bilinear"],
             "trained on 32 images, the transposed conv beats bilinear on 8 others: its weights are learned "
             "by backpropagation (FCN paper, Section 3.3: the upsampling filter need not be fixed)",
             ko="이미지 32장으로 학습한 전치 합성곱은 다른 8장에서 쌍선형보다 낫다: 그 가중치는 역전파로 학습된다"
                "(FCN 논문 3.3절: 업샘플링 필터를 고정할 필요가 없다)")

fig, axes = plt.subplots(1, 5, figsize=(13, 3))
method_names = {"nearest": lesson.label("nearest", ko="최근접 이웃"), "bilinear": lesson.label("bilinear", ko="쌍선형"),
                "learned": lesson.label("learned", ko="학습한 전치 합성곱")}
pics = [(lesson.label("low resolution 16x16", ko="저해상도 16x16"), test_lr[0, 0]),
        *[(f"{method_names[n]}: {10 * np.log10(1 / results_sr[n]):.2f} dB", upscale(m, test_lr[:1])[0, 0])
          for n, m in (*methods.items(), ("learned", learned))],
        (lesson.label("high resolution 32x32", ko="고해상도 32x32"), test_hr[0, 0])]
for ax, (title, pic) in zip(axes, pics):
    ax.imshow(pic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    bare(ax)
fig.suptitle(lesson.label("x2 super-resolution of a test image (PSNR = 10 log10(1 / MSE) over the 8 test images; "
                          "higher is better)",
                          ko="테스트 이미지 한 장의 x2 초해상도 (PSNR = 테스트 이미지 8장에 대한 10 log10(1 / MSE), "
                             "높을수록 좋다)"), fontsize=10, y=1.02)
lesson.save(fig, "super_resolution")

# %%
lesson.step("torchvision's FCNHead: 3x3 conv, BatchNorm, ReLU, Dropout(0.1), 1x1 conv, traced",
            ko="torchvision의 FCNHead를 따라가 본다: 3x3 합성곱, BatchNorm, ReLU, Dropout(0.1), 1x1 합성곱")
# torchvision's FCN(backbone, classifier, aux_classifier): fcn_resnet50 puts classifier = FCNHead(2048, 21) on
# ResNet-50's last stage, run at 1/8 of the image size (dilated), and resizes the 21 score maps to the image with
# bilinear interpolation; the optional aux_classifier, FCNHead(1024, 21) on the stage before, adds a second loss
# during training only (torchvision's docstring: "auxiliary classifier used during training").
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
stages = [(lesson.tr("features (ResNet-50 layer4)", ko="ResNet-50 layer4의 특성 맵"), feat)]
stages.append((lesson.tr(f"Conv2d({in_ch}, {inter}, 3, padding=1, bias=False)",
                         ko=f"3x3 합성곱 Conv2d({in_ch}, {inter}, 3, padding=1, bias=False)"),
               conv_a.forward(stages[-1][1])))
stages.append((lesson.tr("BatchNorm2d (eval: per-channel affine)", ko="BatchNorm2d (eval: 채널별 아핀 변환)"),
               batchnorm_eval(stages[-1][1])))
stages.append(("ReLU", relu_h.forward(stages[-1][1])))
drop_h.eval()
stages.append((lesson.tr("Dropout (eval: identity)", ko="드롭아웃(dropout) (eval: 항등 함수)"),
               drop_h.forward(stages[-1][1])))
stages.append((f"Conv2d({inter}, {n_cls}, 1)", conv_b.forward(stages[-1][1])))
stages.append((lesson.tr("bilinear x8 to the image", ko="쌍선형 x8, 이미지 크기로"),
               BilinearUpsample(n_cls, 8).forward(stages[-1][1])))
head_bn = (gamma, beta, run_mean, run_var)  # kept for the torch comparison at the end of the step
# English keeps its 42 columns (the long Conv2d name overflows them); the Korean names are wider.
width = 42 if lesson.lang == "en" else max(text_width(name) for name, _ in stages) + 1
for name, a in stages:
    print(f"    {pad(name, width)} {a.shape}")
lesson.check(stages[-1][1].shape == (1, n_cls, 64, 64),
             "in_channels -> in_channels // 4 (3x3) -> classes (1x1) -> upsampled x8 back to the 64x64 image",
             ko="in_channels -> in_channels // 4 (3x3) -> 클래스 수 (1x1) -> x8 업샘플링으로 64x64 이미지 크기로 "
                "돌아간다")
n_conv = {name: sum(v.size for v in m.state_dict().values()) for name, m in (("3x3", conv_a), ("1x1", conv_b))}
lesson.say(f"parameters: {n_conv['3x3']:,} (3x3 conv) + {gamma.size + beta.size:,} (BatchNorm gamma, beta) + "
           f"{n_conv['1x1']:,} (1x1 conv) = {n_conv['3x3'] + gamma.size + beta.size + n_conv['1x1']:,}, nearly all in "
           f"the 3x3 conv",
           ko=f"파라미터: {n_conv['3x3']:,} (3x3 합성곱) + {gamma.size + beta.size:,} (BatchNorm gamma, beta) + "
              f"{n_conv['1x1']:,} (1x1 합성곱) = {n_conv['3x3'] + gamma.size + beta.size + n_conv['1x1']:,}개, "
              f"거의 전부가 3x3 합성곱에 있습니다")
lesson.check(np.array_equal(stages[4][1], stages[3][1]), "at inference dropout is the identity",
             ko="추론(inference) 때 드롭아웃은 항등 함수다")
drop_h.train()
dropped = drop_h.forward(stages[3][1])
per_channel_kept = [(np.allclose(dropped[0, c_], 0) or np.allclose(dropped[0, c_], stages[3][1][0, c_] / 0.9))
                    for c_ in range(inter)]
lesson.check(all(per_channel_kept), "the engine has Dropout2d, which drops whole channels (torchvision's FCNHead uses "
                                    "nn.Dropout, single values); both rescale the kept ones by 1/(1-p)",
             ko="엔진에는 채널을 통째로 버리는 Dropout2d가 있다(torchvision의 FCNHead는 값을 하나씩 버리는 "
                "nn.Dropout을 쓴다). 둘 다 남은 값에 1/(1-p)를 곱한다")
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
             "beta - gamma*mean/sigma",
             ko="편향(bias) 없는 합성곱 뒤의 평가 모드(eval) BatchNorm은 가중치가 weight * gamma/sigma이고 편향이 "
                "beta - gamma*mean/sigma인 합성곱 하나와 같다")
# torchvision resizes with interpolate(mode="bilinear", align_corners=False); scipy's zoom(order=1,
# grid_mode=True, mode="nearest") computes the same. The engine's BilinearUpsample is FCN's bilinear
# transposed conv: equal inside, different in the outer s/2 rows and columns (zeros beyond the edge).
score = stages[-2][1].astype(np.float64)
ours = BilinearUpsample(n_cls, 8).forward(score)[0]
theirs = np.stack([ndimage.zoom(score[0, c_], 8, order=1, grid_mode=True, mode="nearest") for c_ in range(n_cls)])
lesson.close(ours[:, 4:-4, 4:-4], theirs[:, 4:-4, 4:-4], "BilinearUpsample = align_corners=False interpolation "
                                                         "away from the 4-pixel border", rtol=1e-9, atol=1e-9,
             ko="4픽셀 테두리를 빼면 BilinearUpsample은 align_corners=False 보간(interpolation)과 같다")
lesson.check(not np.allclose(ours[:, :4], theirs[:, :4]), "and differs on the border, where the transposed conv "
                                                          "sees zero padding",
             ko="테두리에서는 다르다: 거기서 전치 합성곱은 0 패딩을 본다")
try:
    import torch
except ImportError:
    torch = None
    lesson.say("    (torch not installed: the head and the scipy stand-in are not compared with torch)",
               ko="    (torch가 설치되어 있지 않아, 헤드와 그 대신 쓴 scipy 계산을 torch와 비교하지 않습니다)")
if torch is not None:
    tt = torch.nn.functional.interpolate(torch.from_numpy(score), scale_factor=8, mode="bilinear",
                                         align_corners=False)[0].numpy()
    lesson.close(theirs, tt, "torch is installed: its interpolate agrees with scipy's zoom", rtol=1e-9, atol=1e-9,
                 ko="torch가 설치되어 있다: torch의 interpolate는 scipy의 zoom과 일치한다")
    # FCNHead as torchvision builds it, with the engine's weights and these BatchNorm statistics, in eval mode.
    head = torch.nn.Sequential(torch.nn.Conv2d(in_ch, inter, 3, padding=1, bias=False), torch.nn.BatchNorm2d(inter),
                               torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Conv2d(inter, n_cls, 1)).eval()
    with torch.no_grad():
        head[0].weight.copy_(torch.from_numpy(conv_a.weight))
        for name, v in (("weight", head_bn[0]), ("bias", head_bn[1]), ("running_mean", head_bn[2]),
                        ("running_var", head_bn[3])):
            getattr(head[1], name).copy_(torch.from_numpy(v.astype(np.float32)))
        head[4].weight.copy_(torch.from_numpy(conv_b.weight)), head[4].bias.copy_(torch.from_numpy(conv_b.bias))
        torch_scores = head(torch.from_numpy(feat)).numpy()
    n_torch = sum(p.numel() for p in head.parameters())
    lesson.say(f"    torch's head: {n_torch:,} parameters", ko=f"    torch의 헤드: 파라미터 {n_torch:,}개")
    lesson.close(stages[-2][1], torch_scores, "torch's FCNHead (eval) computes the traced scores (float32)",
                 rtol=1e-4, atol=1e-4 * float(np.abs(torch_scores).max()),
                 ko="torch의 FCNHead(eval)도 위에서 단계별로 계산한 점수와 같은 값을 낸다(float32)")

# %%
lesson.step("Hyper-parameters (하이퍼 파라미터): what you set; parameters: what training sets",
            ko="하이퍼파라미터(hyper-parameter)는 사람이 정하고, 파라미터는 학습(training)이 정한다")
model = FCN8s(5, widths=(8, 16, 32, 32, 32), convs_per_block=(1, 1, 1, 1, 1), fc_channels=32, **f64, seed=0)
config, params_before = model.config(), model.state_dict()
imgs, msks = toy_shapes(8, 32, seed=3)
fit(model, imgs, msks, epochs=2, batch_size=4, lr=1e-2, seed=0, progress=False)
params_after = model.state_dict()
changed = [k for k in params_before if not np.array_equal(params_before[k], params_after[k])]
lesson.say(f"hyper-parameters (model.config()): {config}", ko=f"하이퍼파라미터 (model.config()): {config}")
lesson.say(f"fit(..., epochs=2, batch_size=4, lr=0.01, ...) changed {len(changed)} of {len(params_before)} parameter "
           f"tensors (state_dict()), e.g. {changed[:3]}",
           ko=f"fit(..., epochs=2, batch_size=4, lr=0.01, ...)은 파라미터 텐서(state_dict()) {len(params_before)}개 중 "
              f"{len(changed)}개를 바꿨습니다. 예: {changed[:3]}")
lesson.check(model.config() == config and "score_fr.weight" in changed,
             "training changed the parameters (the zero score layers are no longer zero) and no hyper-parameter",
             ko="학습은 파라미터를 바꿨고(0이던 점수 층이 더는 0이 아니다) 하이퍼파라미터는 하나도 바꾸지 않았다")
k7 = FCN8s(7, widths=(8, 16, 32, 32, 32), convs_per_block=(1, 1, 1, 1, 1), fc_channels=32, **f64, seed=0).state_dict()
diff_shape = sorted({k.split(".")[0] for k in k7 if k7[k].shape != params_before[k].shape})
print(lesson.tr("number of classes 5 -> 7 changes the shapes of:", ko="클래스 수를 5 -> 7로 바꾸면 모양이 바뀌는 층:"),
      diff_shape)
lesson.check(k7.keys() == params_before.keys() and set(diff_shape) == {"score_fr", "score_pool4_fr", "score_pool3_fr",
                                                                       "upscore2", "upscore2_pool4", "upscore8"},
             "the number of classes touches only the score layers and upsamplers: the encoder can be reused",
             ko="클래스 수는 점수 층과 업샘플링 층만 건드린다: 인코더는 그대로 다시 쓸 수 있다")
out_a, out_b = model.forward(imgs[:1].astype(np.float64)), model.forward(np.zeros((1, 3, 40, 56)))
lesson.check(out_a.shape == (1, 5, 32, 32) and out_b.shape == (1, 5, 40, 56),
             "the input size is free: the same parameters serve 32x32 and 40x56 images",
             ko="입력 크기는 자유롭다: 같은 파라미터가 32x32 이미지에도 40x56 이미지에도 쓰인다")
keys32 = set(FCN32s(5, widths=(8, 16, 32, 32, 32), convs_per_block=(1, 1, 1, 1, 1), fc_channels=32).state_dict())
lesson.check(set(params_before) - keys32 == {f"{n}.{p}" for n in ("score_pool4_fr", "score_pool3_fr", "upscore2",
                                                                   "upscore2_pool4", "upscore8") for p in ("weight",
                                                                                                          "bias")},
             "the skip architecture (32s / 16s / 8s) adds the score_pool* layers and swaps the upsamplers",
             ko="스킵 구조(skip architecture, 32s / 16s / 8s)는 score_pool* 층을 더하고 업샘플링 층을 바꾼다")
tr = lesson.tr
table = [
    (tr("encoder & decoder: how complex", ko="인코더와 디코더: 얼마나 복잡하게"),
     tr("widths, convs_per_block, fc_channels of FCN32s/16s/8s", ko="FCN32s/16s/8s의 widths, convs_per_block, "
                                                                    "fc_channels"), "08, 12"),
    (tr("up-sampling method", ko="업샘플링 방법"),
     tr("ConvTranspose2d (learned, bilinear init); BilinearUpsample, NearestUpsample, BedOfNails, MaxUnpool2d",
        ko="ConvTranspose2d (학습됨, 쌍선형 초기화); BilinearUpsample, NearestUpsample, BedOfNails(bed of nails), "
           "MaxUnpool2d"),
     "05, 06"),
    (tr("which CNN backbone (+ its parameters)", ko="어떤 CNN 백본(backbone)을 쓸지 (+ 그 파라미터)"),
     tr("VGG16-style only (VGG16_WIDTHS, VGG16_CONVS, or the 'tiny' preset); no AlexNet/GoogLeNet/ResNet, "
        "no pretrained weights",
        ko="VGG16 방식만 (VGG16_WIDTHS, VGG16_CONVS, 또는 'tiny' 프리셋); AlexNet/GoogLeNet/ResNet 없음, 사전 학습된 "
           "가중치 없음"), "08"),
    (tr("skip architecture", ko="스킵 구조"), "FCN32s, FCN16s, FCN8s; transfer_weights / fit_staged", "08, 09"),
    (tr("data augmentation", ko="데이터 증강"),
     tr("not in the engine: fit() takes arrays -- flip or crop image and mask together first "
        "(the FCN paper, Section 4.3, saw no gain from mirroring and jittering)",
        ko="엔진에는 없음: fit()은 배열을 받으니, 이미지와 마스크를 먼저 함께 뒤집거나 크롭(crop)할 것 "
           "(FCN 논문 4.3절에서는 좌우 반전과 지터링으로 얻은 이득이 없었다)"), "-"),
    (tr("number of classes", ko="클래스 수"), "num_classes", "12"),
    (tr("input image size", ko="입력 이미지 크기"),
     tr("any H, W >= 1 (toy_shapes(size=...))", ko="H, W >= 1이면 무엇이든 (toy_shapes(size=...))"), "04, 08"),
    (tr("batch normalization", ko="배치(batch) 정규화"),
     tr("not in the engine (VGG16 and the FCN paper use none); FCNHead's, folded",
        ko="엔진에는 없음 (VGG16과 FCN 논문은 쓰지 않는다); FCNHead의 것은 합성곱에 접어 넣음"), "12"),
    (tr("image crop", ko="이미지 크롭"),
     tr("Crop (skip alignment, lesson 08); random crops = augmentation",
        ko="Crop (스킵 정렬, 레슨 08); 무작위 크롭 = 데이터 증강"), "08"),
    (tr("training", ko="학습"),
     tr("fit(lr, epochs, batch_size, optimizer, momentum, weight_decay, schedule), dropout "
        "(the FCN paper's choices: Section 4.3)",
        ko="fit(lr, epochs, batch_size, optimizer, momentum, weight_decay, schedule)의 학습률(learning rate), 에포크(epoch), "
           "배치 크기, 옵티마이저, 모멘텀(momentum), 가중치 감쇠, 스케줄, 그리고 드롭아웃 (FCN 논문의 선택: 4.3절)"),
     "09"),
]
lesson.say("\nHyper-parameters to explore in an FCN (사용할 하이퍼파라미터/손 대볼곳) and where each lives here (lessons):",
           ko="\nFCN에서 조정해 볼 하이퍼파라미터와, 이 엔진에서 각각이 있는 곳 (레슨):")
for what, where, lessons_ in table:
    print(f"  * {what} [{lessons_}]\n      {where}")
lesson.say("No value is best for all problems: they are set by rules of thumb and experiment, e.g. with "
           "`fcn-scratch compare`.",
           ko="모든 문제에 가장 좋은 값은 없습니다. 경험칙과 실험으로 정하며, `fcn-scratch compare`가 그런 실험의 "
              "한 예입니다.")

# %%
lesson.done(summary=[
    ("The engine's backward pass measures VGG16's receptive fields (6, 16, 44, 100, 212 px) and a total stride of 32, "
     "the product of the strides.",
     "엔진의 역전파로 VGG16의 수용 영역(6, 16, 44, 100, 212 px)과 전체 스트라이드 32를 잰다. 전체 스트라이드는 "
     "각 스트라이드의 곱이다."),
    ("Stacked 3x3 convs see as far as one big kernel with fewer weights; without pooling VGG16 sees 27 px at over 40x "
     "the cost.",
     "3x3 합성곱을 쌓으면 더 적은 가중치로 큰 커널 하나만큼 멀리 본다. 풀링이 없으면 VGG16은 40배 넘는 비용을 "
     "들이고도 27 px만 본다."),
    ("Depthwise, 1-D and 3-D convolutions are the engine's Conv2d in disguise, checked against scipy and NumPy.",
     "깊이별 합성곱, 1차원 합성곱, 3차원 합성곱은 모두 모습만 바꾼 엔진의 Conv2d이며, scipy와 NumPy로 확인했다."),
    ("U-Net's concatenation followed by a 1x1 conv is FCN's sum of scores; FCN-8s has fewer parameters than FCN-32s.",
     "U-Net의 이어 붙이기 뒤에 1x1 합성곱을 붙이면 FCN의 점수 합이 된다. FCN-8s는 FCN-32s보다 파라미터가 적다."),
    ("A transposed conv trained from its bilinear start beats bilinear upsampling on unseen images.",
     "쌍선형에서 시작해 학습한 전치 합성곱은 처음 보는 이미지에서 쌍선형 업샘플링보다 낫다."),
    ("FCNHead's eval-mode BatchNorm folds into the conv before it; training changes parameters, never "
     "hyper-parameters.",
     "FCNHead의 평가 모드 BatchNorm은 앞의 합성곱에 접혀 들어간다. 학습은 파라미터를 바꾸고, 하이퍼파라미터는 "
     "결코 바꾸지 않는다."),
], exercises=[])

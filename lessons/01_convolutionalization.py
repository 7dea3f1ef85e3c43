# %% [markdown]
# # Lesson 01: from classification to segmentation -- convolutionalization
#
# A classifier answers one question per image ("what is in it?"); a
# segmenter answers one per pixel ("what is here?"). FCN turns the first into
# the second without new ideas, only by rewriting the classifier's **fully
# connected (dense) layers as convolutions** -- *convolutionalization*. This lesson
#
# 1. compares the output shapes of classification and segmentation,
# 2. shows why a fully connected layer **loses position** and **fixes the input size**,
# 3. rewrites the study notes' dense layer (200 units over a 100x7x7 map) as a 7x7
#    convolution with 200 filters -- the same numbers, `[batch, 200]` vs `[batch, 200, 1, 1]`,
# 4. feeds it a 448 image (a 14x14 map) and gets an **8x8 map of predictions**:
#    every cell is the dense layer applied to one 7x7 window (the **sliding-window** view),
# 5. turns the following dense layers into **1x1 convolutions**,
# 6. proves that one pass of a convolutionalized classifier over a big image
#    equals running the classifier on every window, at a fraction of the work,
# 7. counts VGG16's **fc6 as a 7x7x512 -> 4096 convolution** (parameters kept) and
#    says why this engine's FCN, like the PyTorch FCN port it mirrors, uses a 1x1 fc6.
#
# Sources: the FCN paper (Long, Shelhamer & Darrell, "Fully Convolutional Networks for
# Semantic Segmentation", arXiv:1411.4038), section 3.1 "Adapting classifiers for dense
# prediction" (fully connected layers are convolutions whose kernels cover their whole
# input; the map they give equals the classifier on every patch, the work of overlapping
# patches shared) and section 4.1 (VGG16 convolutionalized); VGG16 itself: Simonyan &
# Zisserman, arXiv:1409.1556 (fc6 = 4096 units over pool5's 7x7x512). The study notes'
# examples: a dense layer of 200 units over a 100x7x7 map, and a 448 image whose 14x14 map
# gives 8x8 predictions; the PyTorch port's 1x1 fc6 "for convenience".
# Run: `python lessons/01_convolutionalization.py [--step] [--no-figures] [--figures DIR]`.

# %% [markdown]
# # 레슨 01: 분류에서 분할로 -- 합성곱화
#
# 분류기는 이미지 한 장마다 질문 하나("이 안에 무엇이 있는가?")에 답하고, 분할기는 픽셀(pixel)마다
# 질문 하나("여기에는 무엇이 있는가?")에 답합니다. FCN, 곧 완전 합성곱(fully convolutional) 신경망은
# 새로운 아이디어 없이 앞의 것을 뒤의 것으로 바꿉니다. 분류기의 **완전 연결 층(fully connected layer,
# 밀집 층)을 합성곱(convolution)으로 다시 쓰는 것**, 곧 *합성곱화(convolutionalization)*만으로 충분합니다.
# 이렇게 이미지의 픽셀마다 클래스(class)를 정하는 일이 의미적 분할(semantic segmentation)입니다. 이 레슨은
# 다음 순서로 진행합니다.
#
# 1. 분류(classification)와 분할(segmentation)의 출력 모양을 비교합니다.
# 2. 완전 연결 층이 왜 **위치를 잃고** **입력 크기를 고정하는지** 보입니다.
# 3. 학습 노트의 완전 연결 층(100x7x7 맵 위의 유닛 200개)을 필터 200개짜리 7x7 합성곱으로 다시 씁니다.
#    숫자는 똑같고 모양만 `[batch, 200]`과 `[batch, 200, 1, 1]`로 다릅니다.
# 4. 448 이미지(14x14 맵)를 넣어 **8x8 예측 맵**을 얻습니다. 각 칸은 7x7 윈도우(window) 하나에 완전 연결 층을
#    적용한 값입니다(**슬라이딩 윈도우(sliding window)** 관점).
# 5. 뒤따르는 완전 연결 층을 **1x1 합성곱**으로 바꿉니다.
# 6. 합성곱화한 분류기를 큰 이미지에 한 번 통과시키면 모든 윈도우에 분류기를 따로 돌린 것과 같은 결과가
#    훨씬 적은 계산으로 나온다는 것을 증명합니다.
# 7. VGG16의 **fc6를 7x7x512 -> 4096 합성곱**으로 보고 파라미터(parameter) 수를 셉니다(파라미터는 그대로
#    유지됩니다). 그리고 이 엔진의 FCN이 본뜬 PyTorch FCN 포팅처럼 1x1 fc6를 쓰는 이유를 설명합니다.
#
# 출처: FCN 논문(Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic Segmentation",
# arXiv:1411.4038)의 3.1절 "Adapting classifiers for dense prediction"(완전 연결 층은 커널이 입력 전체를
# 덮는 합성곱이고, 그 합성곱이 내는 맵은 모든 패치에 분류기를 적용한 결과와 같으며, 겹치는 패치의 계산은
# 공유된다)과 4.1절(VGG16의 합성곱화). VGG16 자체는 Simonyan & Zisserman, arXiv:1409.1556(fc6 = pool5의
# 7x7x512 위의 유닛 4096개). 학습 노트의 예: 100x7x7 맵 위의 유닛 200개짜리 완전 연결 층, 그리고 14x14 맵에서
# 8x8 예측을 내는 448 이미지. PyTorch 포팅의 1x1 fc6는 "편의상(for convenience)"입니다.
# 실행: `python lessons/01_convolutionalization.py --lang ko [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import Lesson, draw_matrix  # first: puts the repo on sys.path, picks a headless backend

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from fcn_scratch.convolutionalize import Dense, dense_to_conv, dense_to_conv1x1
from fcn_scratch.functional import conv2d_forward, conv_output_size
from fcn_scratch.layers import Conv2d, MaxPool2d, ReLU
from fcn_scratch.models import FCN32s

lesson = Lesson("01_convolutionalization", "Classification to segmentation: convolutionalization",
                ko="분류에서 분할로: 합성곱화(convolutionalization)")
rng = np.random.default_rng(1)
f64 = dict(dtype=np.float64)

# A toy classifier built from the engine's layers, VGG in miniature: two (3x3 conv, ReLU, 2x2 max-pool)
# blocks, then two dense layers. Its convolutions use no padding ('valid'), so a feature depends only
# on the pixels under it -- which makes step 7's comparison with cropped windows exact.
conv1, conv2 = Conv2d(3, 6, 3, **f64, seed=1), Conv2d(6, 8, 3, **f64, seed=2)
relu1, relu2, relu3 = ReLU(), ReLU(), ReLU()
pool1, pool2 = MaxPool2d(2), MaxPool2d(2)
fc1, fc2 = Dense(8 * 7 * 7, 10, **f64, seed=3), Dense(10, 4, **f64, seed=4)  # 8x7x7 features -> 10 -> 4 classes


def features(x):
    """(N, 3, H, W) -> (N, 8, ((H-2)/2-2)/2, ...): a 34x34 image gives the 7x7 map, as 224 does in VGG16."""
    return pool2.forward(relu2.forward(conv2.forward(pool1.forward(relu1.forward(conv1.forward(x))))))


def classify(x):
    """The classifier: features, flatten, dense, ReLU, dense -> (N, 4) class scores."""
    f = features(x)
    return fc2.forward(relu3.forward(fc1.forward(f.reshape(len(f), -1))))


# %%
lesson.step("Classification: one answer per image. Segmentation: one answer per pixel",
            ko="분류(classification)는 이미지마다 답 하나, 분할(segmentation)은 픽셀(pixel)마다 답 하나")
x = rng.standard_normal((2, 3, 34, 34))
scores = classify(x)
lesson.say(f"classifier:  image {x.shape} -> features {features(x).shape} -> flatten -> scores {scores.shape}",
           ko=f"분류기:  이미지 {x.shape} -> 특성 {features(x).shape} -> 펼치기(flatten) -> 점수 {scores.shape}")
lesson.check(scores.shape == (2, 4), "a classifier outputs (N, classes): one label per image",
             ko="분류기의 출력은 (N, 클래스 수)이다: 이미지마다 레이블(label) 하나")
fcn = FCN32s.tiny(4, **f64, seed=0)
logits = fcn.forward(x)
lesson.say(f"FCN-32s:     image {x.shape} -> logits {logits.shape} -> argmax over classes -> "
           f"label map {logits.argmax(axis=1).shape}",
           ko=f"FCN-32s:     이미지 {x.shape} -> 로짓(logit) {logits.shape} -> 클래스(class) 축에서 argmax -> "
              f"레이블 맵 {logits.argmax(axis=1).shape}")
lesson.check(logits.shape == (2, 4, 34, 34), "a segmenter outputs (N, classes, H, W): one label per pixel",
             ko="분할기의 출력은 (N, 클래스 수, H, W)이다: 픽셀마다 레이블 하나")

# %%
lesson.step("Why a fully connected layer loses position", ko="완전 연결 층(fully connected layer)이 위치를 잃는 이유")
# One scene, seen through two 34x34 windows 4 pixels apart (4 = the two pools' total stride).
scene = rng.standard_normal((1, 3, 34, 38))
left, right = scene[..., :34], scene[..., 4:]
f_left, f_right = features(left), features(right)
lesson.say(f"features of the left view {f_left.shape}, of the right view {f_right.shape}",
           ko=f"왼쪽 시야의 특성 {f_left.shape}, 오른쪽 시야의 특성 {f_right.shape}")
lesson.close(f_right[..., :-1], f_left[..., 1:],
             "conv features move with the content: the right view's map is the left one shifted by one cell",
             ko="합성곱(convolution) 특성은 내용을 따라 움직인다: 오른쪽 시야의 맵은 왼쪽 맵을 한 칸 민 것이다")
s_left, s_right = classify(left), classify(right)
print(lesson.tr("dense scores, left view: ", ko="완전 연결 층 점수, 왼쪽 시야:  "), s_left[0],
      lesson.tr("\ndense scores, right view:", ko="\n완전 연결 층 점수, 오른쪽 시야:"), s_right[0])
lesson.check(s_left.ndim == 2 and not np.allclose(s_left, s_right),
             "the dense scores (N, 4) just change: no axis is left on which a shift could show",
             ko="완전 연결 층의 점수 (N, 4)는 그저 달라질 뿐이다: 이동이 드러날 축이 남아 있지 않다")
# Flattening makes every pixel an unrelated input column; the dense weights alone know which column was where.

# %%
lesson.step("Why a fully connected layer fixes the input size", ko="완전 연결 층이 입력 크기를 고정하는 이유")
big = rng.standard_normal((1, 3, 62, 62))
f_big = features(big)
lesson.say(f"the convolutions take any size: 34x34 -> {f_left.shape[2:]},  62x62 -> {f_big.shape[2:]}",
           ko=f"합성곱은 어떤 크기든 받습니다: 34x34 -> {f_left.shape[2:]},  62x62 -> {f_big.shape[2:]}")
try:
    fc1.forward(f_big.reshape(1, -1))
    refused = None
except ValueError as err:
    refused = str(err)
print(lesson.tr("fc1 on the flattened 8x14x14 map:", ko="펼친 8x14x14 맵에 fc1을 적용하면:"), refused)
lesson.check(refused is not None and str(fc1.in_features) in refused,
             f"fc1 has exactly {fc1.in_features} = 8*7*7 weights per unit, so it refuses 8*14*14 = "
             f"{8 * 14 * 14} inputs",
             ko=f"fc1은 유닛마다 가중치(weight)가 정확히 {fc1.in_features} = 8*7*7개여서 8*14*14 = "
                f"{8 * 14 * 14}개의 입력을 거부한다")
lesson.check(f_big.shape[1:] == (8, 14, 14), "while the convolutions handled the 62x62 image without complaint",
             ko="반면 합성곱은 62x62 이미지를 문제없이 처리했다")

# %%
lesson.step("Convolutionalization: the dense layer 100x7x7 -> 200 is a 7x7 conv with 200 filters",
            ko="합성곱화(convolutionalization): 완전 연결 층 100x7x7 -> 200은 필터 200개의 7x7 합성곱이다")
dense = Dense(100 * 7 * 7, 200, **f64, seed=5)  # 200 units, each a weighted sum of 100*7*7 = 4900 activations
conv = dense_to_conv(dense.weight, dense.bias, (100, 7, 7))  # weight (200, 4900) -> (200, 100, 7, 7)
fmap = rng.standard_normal((2, 100, 7, 7))
y_dense = dense.forward(fmap.reshape(2, -1))  # flatten C-major, as torch's x.view(N, -1)
y_conv = conv.forward(fmap)
lesson.say(f"dense: weight {dense.weight.shape}, output {y_dense.shape}   (Keras writes [batch size, 200])",
           ko=f"완전 연결 층: 가중치 {dense.weight.shape}, 출력 {y_dense.shape}   (Keras 표기로는 [배치(batch) 크기, 200])")
lesson.say(f"conv:  weight {conv.weight.shape}, output {y_conv.shape}   (Keras: [batch size, 1, 1, 200] in"
           f" TensorFlow's NHWC; NCHW here)",
           ko=f"합성곱:       가중치 {conv.weight.shape}, 출력 {y_conv.shape}   (Keras: TensorFlow의 NHWC로"
              f" [배치 크기, 1, 1, 200], 여기서는 NCHW)")
print(lesson.tr("first 5 outputs of image 0, dense:", ko="이미지 0의 처음 출력 5개, 완전 연결 층:"), y_dense[0, :5],
      lesson.tr("\n                            conv: ", ko="\n                               합성곱: "),
      y_conv[0, :5, 0, 0])
lesson.close(y_conv[:, :, 0, 0], y_dense, "the conv computes exactly the dense layer's 200 numbers",
             ko="합성곱은 완전 연결 층이 내는 숫자 200개를 정확히 그대로 계산한다")
lesson.check(conv.kernel_size == (7, 7) and conv.stride == (1, 1) and conv.padding == (0, 0),
             "recipe: as many filters as units, kernel = the input map's size, 'valid' padding, stride 1",
             ko="만드는 법: 필터는 유닛 수만큼, 커널(kernel) = 입력 맵의 크기, 'valid' 패딩(padding), "
                "스트라이드(stride) 1")
n_dense = dense.weight.size + dense.bias.size
n_conv = conv.weight.size + conv.bias.size
lesson.check(n_dense == n_conv == 4900 * 200 + 200, f"same parameters: {n_conv:,} (the weights are only reshaped)",
             ko=f"파라미터(parameter) 수가 같다: {n_conv:,}개 (가중치는 모양만 바뀐다)")

# %%
lesson.step("A 448 image: the 14x14 map gives an 8x8 map of predictions, one per 7x7 window",
            ko="448 이미지: 14x14 맵에서 7x7 윈도우(window)마다 하나씩, 8x8 예측 맵이 나온다")
fmap14 = rng.standard_normal((2, 100, 14, 14))  # what the backbone gives for a 448x448 image (448/32 = 14)
y14 = conv.forward(fmap14)
lesson.say(f"14x14 map -> conv output {y14.shape}: 14 - 7 + 1 = {conv_output_size(14, 7)} positions per axis",
           ko=f"14x14 맵 -> 합성곱 출력 {y14.shape}: 축마다 위치가 14 - 7 + 1 = {conv_output_size(14, 7)}개입니다")
lesson.check(y14.shape == (2, 200, 8, 8), "the same layer, unchanged, now gives 8x8 = 64 predictions",
             ko="손대지 않은 같은 층이 이제 8x8 = 64개의 예측을 낸다")
by_window = np.empty_like(y14)
for i in range(8):
    for j in range(8):
        by_window[:, :, i, j] = dense.forward(fmap14[:, :, i : i + 7, j : j + 7].reshape(2, -1))
lesson.close(y14, by_window, "each of the 64 cells equals the dense layer applied to its 7x7 window of the map",
             ko="64칸 각각은 맵에서 자기 7x7 윈도우에 완전 연결 층을 적용한 값과 같다")
lesson.say("One map cell stands for 32x32 image pixels, so the window slides 32 pixels per step: "
           "cell (i, j) is\nthe classifier looking at the 224x224 crop that starts at pixel (32i, 32j) -- "
           "8 positions down, 8 across\n(exactly so when the convolutions are unpadded; step 7 proves it on a small net).",
           ko="맵의 한 칸은 이미지의 32x32 픽셀을 대표하므로 윈도우는 한 번에 32픽셀씩 미끄러집니다. 칸 (i, j)는\n"
              "픽셀 (32i, 32j)에서 시작하는 224x224 크롭(crop)을 보는 분류기입니다. 세로로 8곳, 가로로 8곳입니다\n"
              "(합성곱에 패딩이 없으면 정확히 그렇습니다. 7단계에서 작은 신경망으로 증명합니다).")
crops = range(0, 448 - 224 + 1, 32)  # top rows of the 224-pixel crops that fit in 448, 32 apart: 0, 32, ..., 224
lesson.check(len(crops) == y14.shape[2] == y14.shape[3],
             f"{len(crops)} crop positions per axis (0, 32, ..., 224) = the {y14.shape[2]}x{y14.shape[3]} map the "
             f"conv returned",
             ko=f"축마다 크롭 위치 {len(crops)}곳 (0, 32, ..., 224) = 합성곱이 돌려준 "
                f"{y14.shape[2]}x{y14.shape[3]} 맵")

fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [14, 8]})
axes[0].imshow(np.zeros((14, 14)), cmap="Greys", vmin=0, vmax=1)
axes[1].imshow(np.zeros((8, 8)), cmap="Greys", vmin=0, vmax=1)
for ax, n in ((axes[0], 14), (axes[1], 8)):
    ax.set_xticks(np.arange(-0.5, n, 1), minor=True), ax.set_yticks(np.arange(-0.5, n, 1), minor=True)
    ax.grid(which="minor", color="0.75", lw=0.6)
    ax.set_xticks(range(0, n, 2)), ax.set_yticks(range(0, n, 2))
for (i, j), color in [((0, 0), "tab:blue"), ((3, 5), "tab:orange"), ((7, 7), "tab:green")]:
    axes[0].add_patch(Rectangle((j - 0.5, i - 0.5), 7, 7, fill=False, ec=color, lw=2.5))
    axes[0].plot(j, i, "s", color=color, ms=7)
    axes[1].add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, color=color))
    axes[1].text(j, i, f"{i},{j}", ha="center", va="center", fontsize=7, color="white")
axes[0].set_title(lesson.label("14x14x100 feature map of a 448 image\nthree of the 64 possible 7x7 windows",
                               ko="448 이미지의 14x14x100 특성 맵(feature map)\n가능한 7x7 윈도우 64개 중 3개"))
axes[1].set_title(lesson.label("8x8x200 conv output\ncell (i, j) = dense layer on window (i, j)",
                               ko="8x8x200 합성곱 출력\n칸 (i, j) = 윈도우 (i, j)에 적용한 완전 연결 층"))
fig.suptitle(lesson.label("Convolutionalization = the dense layer slid over every 7x7 window in one pass",
                          ko="합성곱화 = 완전 연결 층을 한 번에 모든 7x7 윈도우 위로 밀며 적용하기"), fontsize=11, y=1.04)
lesson.save(fig, "sliding_window")

# %%
lesson.step("The following dense layers become 1x1 convolutions", ko="뒤따르는 완전 연결 층은 1x1 합성곱이 된다")
dense2 = Dense(200, 10, **f64, seed=6)  # the next layer: 10 units on the 200 numbers
conv2_1x1 = dense_to_conv1x1(dense2.weight, dense2.bias)
z = conv2_1x1.forward(y14)  # (2, 200, 8, 8) -> (2, 10, 8, 8)
per_pixel = dense2.forward(y14.transpose(0, 2, 3, 1).reshape(-1, 200))  # every pixel's 200-vector, as a batch
lesson.say(f"1x1 conv: weight {conv2_1x1.weight.shape}, on {y14.shape} -> {z.shape}",
           ko=f"1x1 합성곱: 가중치 {conv2_1x1.weight.shape}, {y14.shape}에 적용 -> {z.shape}")
lesson.close(z.transpose(0, 2, 3, 1).reshape(-1, 10), per_pixel,
             "a 1x1 conv is the dense layer applied to the channel vector at every pixel",
             ko="1x1 합성곱은 픽셀마다 그 채널(channel) 벡터에 완전 연결 층을 적용한 것이다")
lesson.close(conv2_1x1.forward(y_conv)[:, :, 0, 0], dense2.forward(y_dense),
             "on the 1x1 map of a 224 image it is exactly the old dense layer",
             ko="224 이미지의 1x1 맵에서는 원래의 완전 연결 층과 정확히 같다")

# %%
lesson.step("One pass over a big image = the classifier on every window, at a fraction of the work",
            ko="큰 이미지를 한 번 통과 = 모든 윈도우에 분류기 적용, 계산은 훨씬 적게")
head1 = dense_to_conv(fc1.weight, fc1.bias, (8, 7, 7))  # the toy classifier's fc1 -> 7x7 conv
head2 = dense_to_conv1x1(fc2.weight, fc2.bias)  # fc2 -> 1x1 conv
dense_map = head2.forward(relu3.forward(head1.forward(features(big))))  # one pass over the 62x62 image
lesson.say(f"convolutionalized classifier on a 62x62 image -> {dense_map.shape}: an 8x8 map of 4 class scores",
           ko=f"합성곱화한 분류기를 62x62 이미지에 적용 -> {dense_map.shape}: 클래스 4개의 점수를 담은 8x8 맵입니다")
stride = 4  # two 2x2 pools: one feature cell = 4 pixels
windows = np.empty_like(dense_map)
for i in range(8):
    for j in range(8):
        windows[:, :, i, j] = classify(big[:, :, stride * i : stride * i + 34, stride * j : stride * j + 34])
lesson.close(dense_map, windows, "cell (i, j) = the original classifier on the 34x34 crop at pixel (4i, 4j)",
             ko="칸 (i, j) = 픽셀 (4i, 4j)에서 시작하는 34x34 크롭에 원래 분류기를 적용한 값")


def conv_flops(x):
    """FLOPs (2 per multiply-add) of the two 3x3 convolutions `features` runs on x, read off the engine's outputs."""
    y1 = conv1.forward(x)  # each output entry is one 3x3xC_in dot product
    y2 = conv2.forward(pool1.forward(relu1.forward(y1)))
    return 2 * 9 * (y1.size * conv1.in_channels + y2.size * conv2.in_channels)


once, per_window = conv_flops(big), conv_flops(big[:, :, :34, :34])
lesson.say(f"backbone FLOPs: one pass over 62x62 {once:,};  64 separate 34x34 windows {64 * per_window:,}"
           f"  ({64 * per_window / once:.1f}x more)",
           ko=f"백본(backbone) FLOPs: 62x62를 한 번 통과 {once:,};  34x34 윈도우 64개를 따로 {64 * per_window:,}"
              f"  ({64 * per_window / once:.1f}배 더 많음)")
lesson.check(64 * per_window > 10 * once,
             "overlapping windows share their features: one pass does over 10x less backbone work",
             ko="겹치는 윈도우는 특성을 공유한다: 한 번 통과하면 백본 계산이 10배 넘게 줄어든다")

fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.6))
axes[0].imshow(big[0].mean(axis=0), cmap="Greys")
heat = dense_map[0, 0]
draw_matrix(axes[1], heat, "", fmt="{:.2f}", cmap="viridis", fontsize=7)
for (i, j), color in [((0, 0), "tab:blue"), ((2, 5), "tab:orange"), ((7, 7), "tab:red")]:
    axes[0].add_patch(Rectangle((stride * j - 0.5, stride * i - 0.5), 34, 34, fill=False, ec=color, lw=2.5))
    axes[1].add_patch(Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, ec=color, lw=3))
axes[0].set_title(lesson.label(
    "random 62x62 input: three of the 64 crops\n(34x34, 4 px apart) the classifier would see",
    ko="무작위 62x62 입력: 분류기가 볼 크롭 64개 중\n3개 (34x34, 4 px 간격)"))
axes[1].set_title(lesson.label("one pass of the convolutionalized net:\nscore of class 0 for every crop (a heat map)",
                               ko="합성곱화한 신경망을 한 번 통과:\n모든 크롭의 클래스 0 점수 (히트맵)"))
fig.suptitle(lesson.label("Toy classifier: the 8x8 map equals 64 separate classifications of overlapping crops",
                          ko="토이 분류기: 8x8 맵은 겹치는 크롭 64개를 따로 분류한 결과와 같다"), fontsize=11,
             y=1.04)
lesson.save(fig, "whole_network_windows")

# %%
lesson.step("VGG16's fc6 as a 7x7x512 -> 4096 conv keeps its parameters; this engine's fc6 is 1x1",
            ko="VGG16의 fc6는 7x7x512 -> 4096 합성곱이 되어도 파라미터가 그대로고, 이 엔진의 fc6는 1x1이다")
fc6_dense = 512 * 7 * 7 * 4096 + 4096  # Linear(25088, 4096): pool5 of a 224 image flattened
fc6_conv7 = int(np.prod((4096, 512, 7, 7))) + 4096  # the convolutionalized fc6
fc6_conv1 = int(np.prod((4096, 512, 1, 1))) + 4096  # fc6 of the PyTorch FCN port: nn.Conv2d(512, 4096, 1)
lesson.say(f"fc6 as a dense layer 25088 -> 4096:   {fc6_dense:>12,} parameters",
           ko=f"완전 연결 층 fc6, 25088 -> 4096:  파라미터 {fc6_dense:>12,}개")
lesson.say(f"fc6 as a 7x7 conv, 512 -> 4096:       {fc6_conv7:>12,} parameters (the same weights, reshaped)",
           ko=f"7x7 합성곱 fc6, 512 -> 4096:      파라미터 {fc6_conv7:>12,}개 (같은 가중치, 모양만 바꿈)")
lesson.say(f"fc6 as a 1x1 conv, 512 -> 4096:       {fc6_conv1:>12,} parameters (the PyTorch port and this engine)",
           ko=f"1x1 합성곱 fc6, 512 -> 4096:      파라미터 {fc6_conv1:>12,}개 (PyTorch 포팅과 이 엔진)")
# (step 4 proved on real arrays that dense_to_conv keeps every parameter; VGG16's fc6 is too big to build here)
engine_fc6 = FCN32s.state_shapes(21)  # the engine's full-size FCN-32s (VGG16 widths, fc 4096), shapes only
n_fc6 = int(np.prod(engine_fc6["fc6.weight"])) + int(np.prod(engine_fc6["fc6.bias"]))
lesson.say(f"the engine's full-size FCN-32s: fc6.weight {engine_fc6['fc6.weight']}, {n_fc6:,} parameters",
           ko=f"이 엔진의 전체 크기 FCN-32s: fc6.weight {engine_fc6['fc6.weight']}, 파라미터 {n_fc6:,}개")
lesson.check(engine_fc6["fc6.weight"] == (4096, 512, 1, 1) and n_fc6 == fc6_conv1,
             f"the engine's fc6 is the 1x1 one: {n_fc6:,} parameters, about 1/49 of VGG16's 7x7 fc6",
             ko=f"이 엔진의 fc6는 1x1이다: 파라미터 {n_fc6:,}개로 VGG16의 7x7 fc6의 약 1/49이다")
lesson.say(f"on a 224 image's 7x7 pool5 map: a 7x7 fc6 gives {conv_output_size(7, 7)}x{conv_output_size(7, 7)}, "
           f"a 1x1 fc6 gives {conv_output_size(7, 1)}x{conv_output_size(7, 1)} score cells",
           ko=f"224 이미지의 7x7 pool5 맵에서 7x7 fc6는 {conv_output_size(7, 7)}x{conv_output_size(7, 7)}, "
              f"1x1 fc6는 {conv_output_size(7, 1)}x{conv_output_size(7, 1)} 점수 칸을 냅니다")
lesson.check(conv_output_size(7, 7) == 1 and conv_output_size(7, 1) == 7,
             "a 7x7 fc6 shrinks the map by 6 in each direction; a 1x1 fc6 keeps its size",
             ko="7x7 fc6는 맵을 방향마다 6씩 줄이고, 1x1 fc6는 크기를 유지한다")
# An image smaller than 224 has pool5 smaller than 7x7, and a 7x7 fc6 cannot run at all:
pool5_small = rng.standard_normal((1, 8, 2, 2))  # e.g. a 37x53 image: ceil(37/32) x ceil(53/32) = 2x2
try:
    conv2d_forward(pool5_small, rng.standard_normal((4, 8, 7, 7)))
    refused = None
except ValueError as err:
    refused = str(err)
print(lesson.tr("7x7 fc6 on a 2x2 pool5:", ko="2x2 pool5에 7x7 fc6를 적용하면:"), refused)
lesson.check(refused is not None, "a 7x7 fc6 refuses a pool5 smaller than 7x7 (the paper pads the input by 100 "
                                  "pixels instead; lesson 08)",
             ko="7x7 fc6는 7x7보다 작은 pool5를 거부한다 (논문은 그 대신 입력 둘레에 100픽셀 패딩을 넣는다; 레슨 08)")
tiny = FCN32s.tiny(4, **f64, seed=0)
lesson.say(
    f"this engine's FCN-32s (tiny preset): fc6 weight {tiny.fc6.weight.shape}, fc7 weight {tiny.fc7.weight.shape}",
    ko=f"이 엔진의 FCN-32s (tiny 프리셋): fc6 가중치 {tiny.fc6.weight.shape}, fc7 가중치 {tiny.fc7.weight.shape}")
out = tiny.forward(rng.standard_normal((1, 3, 37, 53)))
lesson.check(tiny.fc6.kernel_size == (1, 1) and out.shape == (1, 4, 37, 53),
             "with a 1x1 fc6 (as the PyTorch port, 'for convenience') a 37x53 image works and keeps its size",
             ko="(PyTorch 포팅처럼 '편의상') 1x1 fc6를 쓰면 37x53 이미지도 돌아가고 크기도 유지된다")
# The price: VGG's trained 7x7 fc6 weights do not fit a 1x1 fc6, so fc6 starts from scratch. This engine
# trains its backbone from scratch anyway (no pretrained VGG offline), so it pays nothing.

# %%
lesson.done(summary=[
    ("A classifier outputs (N, classes); an FCN outputs (N, classes, H, W): a label per pixel.",
     "분류기의 출력은 (N, 클래스 수), FCN의 출력은 (N, 클래스 수, H, W)이다: 픽셀마다 레이블이 하나다."),
    ("Conv features move with the content; a dense layer keeps no position and refuses any other input size.",
     "합성곱 특성은 내용을 따라 움직인다. 완전 연결 층은 위치를 남기지 않고, 다른 크기의 입력은 거부한다."),
    ("A dense layer over a 100x7x7 map is exactly a 7x7 conv with 200 filters; on a 14x14 map it gives 8x8 "
        "predictions, each the dense layer on its window. Later dense layers are exactly 1x1 convs.",
     "100x7x7 맵 위의 완전 연결 층은 필터 200개의 7x7 합성곱과 정확히 같다. 14x14 맵에서는 8x8 예측을 내며, "
        "각 예측은 자기 윈도우에 완전 연결 층을 적용한 값이다. 뒤따르는 완전 연결 층은 정확히 1x1 합성곱이다."),
    ("One pass of the convolutionalized classifier equals the classifier on all 64 crops, with over 10x less "
        "backbone work.",
     "합성곱화한 분류기를 한 번 통과시킨 결과는 크롭 64개 모두에 분류기를 적용한 결과와 같고, 백본 계산은 "
        "10배 넘게 적다."),
    ("The engine's fc6 is 1x1 (2.1 M parameters, not VGG16's 7x7 with 102.8 M), so any input size works.",
     "이 엔진의 fc6는 1x1이어서(파라미터 2.1 M, VGG16의 7x7 fc6는 102.8 M) 어떤 입력 크기도 받는다."),
], exercises=[])

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

# %% [markdown]
# # 레슨 06: 업샘플링 -- 최근접 이웃, 쌍선형, bed of nails, 최대 언풀링, 그리고 체커보드
#
# FCN의 점수 맵(score map)은 이미지보다 32배 작고, 업샘플링(upsampling)이 이를 원래 크기로
# 되돌립니다. 학습 노트에는 맵을 키우는 고정된 방법 네 가지가 나오는데, 학습으로 익히는 FCN 자신의
# 방법(레슨 05의 전치 합성곱(transposed convolution))도 그중 하나에서 출발합니다.
# 이 레슨에서는 `fcn_scratch.upsample`의 방법을 하나씩 실행합니다.
#
# 1. **최근접 이웃**(nearest neighbour): 각 픽셀(pixel)을 s x s 블록에 그대로 복사합니다.
# 2. **쌍선형 커널**(bilinear kernel, `fcn_scratch.init.bilinear_kernel`): `f = ceil(k/2)`,
#    `c = f - 1`(k가 홀수일 때) 또는 `f - 1/2`(k가 짝수일 때), `w[i, j] = (1 - |i-c|/f)(1 - |j-c|/f)`입니다.
#    k = 4이면 탭(tap)은 1/4, 3/4, 3/4, 1/4입니다.
# 3. **쌍선형** 업샘플링은 바로 그 커널을 담은 전치 합성곱*입니다*. FCN은 이렇게 `upscore` 층을
#    초기화합니다.
# 4. **bed of nails**: 각 픽셀을 블록의 모서리에 두고 나머지는 0으로 채웁니다.
# 5. **최대 언풀링**(max-unpooling): `MaxPool2d(return_indices=True)`가 돌려주는 인덱스로, 각 픽셀을
#    최대 풀링(max-pooling)이 최댓값을 찾았던 자리로 되돌립니다.
# 6. 이 방법들이 모두 선형이고, 각각의 역전파(backward pass)가 그 연산의 전치임을 보입니다.
# 7. 커널 크기가 스트라이드(stride)의 배수가 아닌 전치 합성곱(k = 3, s = 2: 고르지 않은 겹침)이 만드는
#    **체커보드**(checkerboard) 아티팩트와, k = 2s이면 이를 피하는 이유(상수를 넣으면 안쪽에서 상수가
#    나옵니다)를 봅니다.
# 8. **이동 후 이어 붙이기**(shift and stitch): FCN 논문이 다룬, 거친 맵에서 조밀한 맵으로 가는 또 다른
#    길입니다.
#
# 출처: Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts" (Distill,
# 2016, doi:10.23915/distill.00003): 커널 크기가 스트라이드로 나누어떨어지지 않을 때의 고르지 않은 겹침;
# FCN 논문(Long, Shelhamer & Darrell, arXiv:1411.4038)의 3.3절(역방향 합성곱(backwards convolution)으로서의
# 업샘플링, 쌍선형 보간(bilinear interpolation)으로 초기화)과 3.2절(shift-and-stitch); 풀링 스위치(switches)를
# 쓰는 최대 언풀링: Zeiler & Fergus (arXiv:1311.2901), SegNet (Badrinarayanan et al., arXiv:1511.00561);
# 학습 노트의 업샘플링 방법 목록(최근접 이웃, 쌍선형, bed of nails, 최대 언풀링).
# 실행: `python lessons/06_upsampling.py --lang ko [--step] [--no-figures] [--figures DIR]`.

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

lesson = Lesson("06_upsampling", "Upsampling: nearest, bilinear, bed of nails, max-unpooling, checkerboard",
                ko="업샘플링(upsampling): 최근접 이웃(nearest neighbour), 쌍선형(bilinear), bed of nails, "
                   "최대 언풀링(max-unpooling), 체커보드(checkerboard)")
rng = np.random.default_rng(6)

x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # the small map every method enlarges x2 below
results = {}

# %%
lesson.step("Nearest neighbour: y[i, j] = x[i // s, j // s], each pixel copied into an s x s block",
            ko="최근접 이웃: y[i, j] = x[i // s, j // s], 각 픽셀(pixel)을 s x s 블록으로 복사한다")
nearest = NearestUpsample(2)
results["nearest"] = y = nearest.forward(x)
print("x:\n", x[0, 0], f"\nNearestUpsample(2): {x.shape} -> {y.shape}\n", y[0, 0])
lesson.check(np.array_equal(y[0, 0], np.kron(x[0, 0], np.ones((2, 2)))), "every pixel becomes a 2x2 block",
             ko="모든 픽셀이 2x2 블록이 된다")
lesson.check(NearestUpsample((2, 3)).forward(x).shape == (1, 1, 6, 9), "the factors may differ per axis: (2, 3)",
             ko="배율은 축마다 달라도 된다: (2, 3)")

# %%
lesson.step("The bilinear kernel: f = ceil(k/2), c = f-1 (k odd) or f-1/2 (k even), w = (1-|i-c|/f)(1-|j-c|/f)",
            ko="쌍선형 커널(kernel): f = ceil(k/2), c = f-1 (k가 홀수) 또는 f-1/2 (k가 짝수), "
               "w = (1-|i-c|/f)(1-|j-c|/f)")
for k in (4, 3, 16):
    f = math.ceil(k / 2)
    c = f - 1 if k % 2 else f - 0.5
    by_hand = np.array([1 - abs(i - c) / f for i in range(k)])
    lesson.say(f"k={k:2d}: f={f}, c={c}, taps = {np.round(bilinear_taps(k), 4)}",
               ko=f"k={k:2d}: f={f}, c={c}, 탭 = {np.round(bilinear_taps(k), 4)}")
    lesson.close(bilinear_taps(k), by_hand, f"k={k}: bilinear_taps follows the formula",
                 ko=f"k={k}: bilinear_taps는 공식을 따른다")
    lesson.close(bilinear_kernel(k), np.outer(by_hand, by_hand), f"k={k}: the kernel is the outer product of the taps",
                 ko=f"k={k}: 커널은 탭과 탭의 외적(outer product)이다")
lesson.close(bilinear_taps(4), [1 / 4, 3 / 4, 3 / 4, 1 / 4], "k=4 (FCN's x2 layers): taps 1/4, 3/4, 3/4, 1/4",
             ko="k=4 (FCN의 x2 층): 탭은 1/4, 3/4, 3/4, 1/4이다")
print("bilinear_kernel(4):\n", bilinear_kernel(4))
w = bilinear_weight(3, 3, 4)  # a ConvTranspose2d weight (C_in, C_out, k, k)
off_diagonal = w[~np.eye(3, dtype=bool)]
lesson.check(all(np.array_equal(w[c, c], bilinear_kernel(4, np.float32)) for c in range(3)) and not off_diagonal.any(),
             "bilinear_weight(3, 3, 4): the kernel on the channel diagonal, zeros elsewhere (class c stays class c)",
             ko="bilinear_weight(3, 3, 4): 채널(channel) 대각선에는 커널이, 나머지에는 0이 있다 "
                "(클래스(class) c는 클래스 c로 남는다)")

# %%
lesson.step("Bilinear upsampling is a transposed convolution with the bilinear kernel (k = 2s, p = s/2)",
            ko="쌍선형 업샘플링은 쌍선형 커널을 담은 전치 합성곱(transposed convolution)이다 (k = 2s, p = s/2)")
bilinear = BilinearUpsample(1, 2)
results["bilinear"] = y = bilinear.forward(x)
print(lesson.tr(f"BilinearUpsample(1, 2): kernel {bilinear.kernel_size}, padding {bilinear.padding}\n",
                ko=f"BilinearUpsample(1, 2): 커널 {bilinear.kernel_size}, 패딩(padding) {bilinear.padding}\n"), y[0, 0])
y_convt, _ = conv_transpose2d_forward(x, bilinear_weight(1, 1, 4, np.float64), stride=2, padding=1)
lesson.close(y, y_convt, "= ConvTranspose2d(k=4, stride=2, padding=1) carrying the bilinear kernel",
             ko="쌍선형 커널을 담은 ConvTranspose2d(k=4, stride=2, padding=1)과 같다")
# Output pixel o sits at source coordinate (o + 1/2)/s - 1/2 (pixel centres): bilinear interpolation
# reproduces any linear function there, so a ramp stays an exact ramp inside the map.
ramp = (np.arange(5.0)[:, None] + 10 * np.arange(6.0)[None, :])[None, None]  # x[i, j] = i + 10 j
src_r, src_c = (np.arange(10) + 0.5) / 2 - 0.5, (np.arange(12) + 0.5) / 2 - 0.5
up = bilinear.forward(ramp)[0, 0]
lesson.close(up[1:-1, 1:-1], (src_r[:, None] + 10 * src_c[None, :])[1:-1, 1:-1],
             "inside the map it interpolates exactly: the ramp i + 10j becomes the ramp at the source coordinates",
             ko="맵 안쪽에서는 보간(interpolation)이 정확하다: 램프(ramp) i + 10j는 원본 좌표에서의 램프 값이 된다")
edge = BilinearUpsample(1, 2).forward(np.ones((1, 1, 3, 3)))[0, 0, 2]
print(lesson.tr("ones(3, 3) upsampled x2, a middle row:", ko="ones(3, 3)을 x2 업샘플링한 결과의 가운데 행 하나:"), edge)
lesson.close(edge, [0.75, 1, 1, 1, 1, 0.75], "at the border it blends with the zeros beyond the edge (3/4)",
             ko="경계에서는 가장자리 너머의 0과 섞인다 (3/4)")
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
                 f"x{s}: ConvTranspose2d(k={k}, s={s}, p={p}) with bilinear weights = BilinearUpsample(2, {s})",
                 ko=f"x{s}: 쌍선형 가중치를 담은 ConvTranspose2d(k={k}, s={s}, p={p}) = BilinearUpsample(2, {s})")
fresh = FCN8s.tiny(3, seed=0)
lesson.check(all(np.array_equal(getattr(fresh, n).weight, bilinear_weight(3, 3, k)) for n, k in
                 (("upscore2", 4), ("upscore2_pool4", 4), ("upscore8", 16))),
             "a fresh FCN-8s: upscore2, upscore2_pool4, upscore8 all start as bilinear interpolation",
             ko="갓 만든 FCN-8s의 upscore2, upscore2_pool4, upscore8은 모두 쌍선형 보간(bilinear interpolation)으로 시작한다")

# %%
lesson.step("Bed of nails: each pixel at the top-left of its s x s block, zeros elsewhere",
            ko="bed of nails: 각 픽셀은 s x s 블록의 왼쪽 위에, 나머지는 0")
results["bed of nails"] = y = BedOfNails(2).forward(x)
print(y[0, 0])
lesson.check(np.array_equal(y[0, 0, ::2, ::2], x[0, 0]) and y[0, 0].sum() == x.sum(),
             "the nails hold the input, every other pixel is 0",
             ko="못(nail) 자리에는 입력 값이 있고, 나머지 픽셀은 모두 0이다")

# %%
lesson.step("Max-unpooling: put each value back where MaxPool2d(return_indices=True) found it",
            ko="최대 언풀링: 각 값을 MaxPool2d(return_indices=True)가 찾은 자리로 되돌린다")
before = rng.permutation(16).astype(float).reshape(1, 1, 4, 4)  # distinct values: no ties
pool = MaxPool2d(2, return_indices=True)
pooled, indices = pool.forward(before)
print(lesson.tr("before pooling:\n", ko="풀링 전:\n"), before[0, 0], lesson.tr("\npooled:\n", ko="\n풀링 후:\n"),
      pooled[0, 0], lesson.tr("\nindices (flat h*W + w):\n", ko="\n인덱스 (평탄화한 위치 h*W + w):\n"), indices[0, 0])
unpool = MaxUnpool2d(2)
results["max-unpooling"] = unpooled = unpool.forward(pooled, indices)
print(lesson.tr("unpooled:\n", ko="언풀링 후:\n"), unpooled[0, 0])
is_max = before == np.kron(pooled, np.ones((2, 2)))  # the winner of each 2x2 window
lesson.check(np.array_equal(unpooled, np.where(is_max, before, 0)),
             "each maximum returns to its own pixel; the other 3 of each window become 0",
             ko="각 최댓값은 원래 픽셀로 돌아가고, 윈도우(window)마다 나머지 3칸은 0이 된다")
lesson.check(np.array_equal(pool.forward(unpooled)[0], pooled), "pooling the unpooled map gives the pooled map back",
             ko="언풀링한 맵을 다시 풀링하면 풀링한 맵이 그대로 나온다")
corner = np.array([[0, 2], [8, 10]]).reshape(1, 1, 2, 2)  # indices of every block's top-left pixel
lesson.check(np.array_equal(unpool.forward(pooled, corner), BedOfNails(2).forward(pooled)),
             "bed of nails = max-unpooling with every index at the top-left corner",
             ko="bed of nails는 모든 인덱스가 왼쪽 위 모서리를 가리키는 최대 언풀링과 같다")

fig, axes = plt.subplots(2, 4, figsize=(14, 7.2), gridspec_kw={"width_ratios": [3, 6, 6, 6]})
draw_matrix(axes[0, 0], x[0, 0], lesson.label("input 3x3", ko="입력 3x3"), fmt="{:.0f}", cmap="Blues", vmin=0, vmax=10)
tops = [(results["nearest"], lesson.label("nearest x2: 6x6", ko="최근접 이웃 x2: 6x6")),
        (results["bilinear"], lesson.label("bilinear x2: 6x6", ko="쌍선형 x2: 6x6")),
        (results["bed of nails"], lesson.label("bed of nails x2: 6x6", ko="bed of nails 방식 x2: 6x6"))]
for ax, (y_up, title) in zip(axes[0, 1:], tops):
    draw_matrix(ax, y_up[0, 0], title, fmt="{:.2g}", cmap="Blues", vmin=0, vmax=10, fontsize=8)
axes[1, 0].axis("off")
draw_matrix(axes[1, 1], before[0, 0], lesson.label("before max-pooling 4x4\n(window maxima in bold)",
                                                   ko="최대 풀링 전 4x4\n(윈도우 최댓값은 굵게)"),
            fmt="{:.0f}", cmap="Greens", vmin=-3, vmax=18)
for (i, j), v in np.ndenumerate(is_max[0, 0]):
    if v:
        axes[1, 1].texts[i * 4 + j].set_fontweight("bold")
draw_matrix(axes[1, 2], pooled[0, 0], lesson.label("MaxPool2d(2): 2x2\n+ indices ", ko="MaxPool2d(2): 2x2\n+ 인덱스 ")
            + str(indices[0, 0].ravel().tolist()), fmt="{:.0f}", cmap="Greens", vmin=-3, vmax=18)
draw_matrix(axes[1, 3], unpooled[0, 0], lesson.label("max-unpooling x2: 4x4\n(each max back at its index)",
                                                     ko="최대 언풀링 x2: 4x4\n(최댓값마다 제 인덱스로)"),
            fmt="{:.0f}", cmap="Greens", vmin=-3, vmax=18)
for ax in axes[0, 1:]:
    ax.set_aspect("equal")
for ax in (axes[1, 1], axes[1, 3]):  # the four 2x2 pooling windows
    ax.axhline(1.5, color="black", lw=2), ax.axvline(1.5, color="black", lw=2)
fig.tight_layout()
fig.suptitle(lesson.label("Fixed upsampling methods: nearest, bilinear, bed of nails, max-unpooling (values in the cells)",
                          ko="고정된 업샘플링 방법: 최근접 이웃, 쌍선형, bed of nails, 최대 언풀링 (칸 안의 수는 값)"),
             fontsize=12, y=1.02)
lesson.save(fig, "methods")

# Animated: pooling records, window by window, the max and where it was (the engine's `indices`);
# unpooling then puts each max back at its index. The frames show the engine's pooled, indices and unpooled.
windows = before[0, 0].reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(4, 4)  # row t: window t's 4 pixels
lesson.check(np.array_equal(before.ravel()[indices.ravel()], windows.max(axis=1)),
             "each index the animation marks holds its window's maximum",
             ko="애니메이션이 표시하는 인덱스마다 그 윈도우의 최댓값이 있다")
blank2, blank4 = np.full((2, 2), np.nan), np.full((4, 4), np.nan)
fig, axes, caption = animation_panels([4, 2, 2, 4], (9.6, 3.7))
draw_matrix(axes[0], before[0, 0], lesson.label("x: before max-pooling", ko="x: 최대 풀링 전"), fmt="{:.0f}",
            cmap="Greens", vmin=-3, vmax=18)
pooled_im = draw_matrix(axes[1], blank2, "MaxPool2d(2)", fmt="{:.0f}", cmap="Greens", vmin=-3, vmax=18)
index_im = draw_matrix(axes[2], blank2, lesson.label("indices\n(flat h*4 + w)", ko="인덱스\n(평탄화 h*4 + w)"),
                       fmt="{:.0f}", cmap="Greys", vmin=0, vmax=60)
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
        caption.set_text(lesson.label("unpooled = MaxUnpool2d(2)(pooled, indices): each max at its index, 0 elsewhere",
                                      ko="unpooled = MaxUnpool2d(2)(pooled, indices): 최댓값은 제 인덱스에, 나머지는 0"))
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
    caption.set_text(lesson.label(f"pool window ({i},{j}): max {v} at row {r}, column {c}: flat index {r}*4 + {c} = "
                                  f"{4 * r + c}",
                                  ko=f"풀링 윈도우 ({i},{j}): 최댓값 {v}, 위치 {r}행 {c}열, 평탄화 인덱스 {r}*4 + {c} = "
                                     f"{4 * r + c}")
                     if phase == 0 else
                     lesson.label(f"unpool: {v} goes back to index {4 * r + c} = (row {r}, column {c});"
                                  " the window's 3 other cells get 0",
                                  ko=f"언풀링: {v} -> 인덱스 {4 * r + c} = ({r}행, {c}열),"
                                     " 윈도우의 나머지 3칸은 0"))


lesson.save_animation(fig, unpool_frame, 9, "maxpool_unpool", fps=1.5)

# %%
lesson.step("All four are linear maps; each backward pass is the transpose: <up(x), g> == <x, up_backward(g)>",
            ko="넷 모두 선형 변환이고, 각각의 역전파(backward pass)는 그 전치, 곧 수반(adjoint)이다: "
               "<up(x), g> == <x, up_backward(g)>")
z = rng.standard_normal((2, 3, 4, 6))
pool4 = MaxPool2d(2, return_indices=True)
zp, zi = pool4.forward(rng.standard_normal((2, 3, 8, 12)))
cases = {"nearest": (NearestUpsample(2), (z,)), "bilinear": (BilinearUpsample(3, 2), (z,)),
         "bed of nails": (BedOfNails(2), (z,)), "max-unpooling": (MaxUnpool2d(2), (zp, zi))}
shown = {"nearest": lesson.tr("nearest", ko="최근접 이웃"), "bilinear": lesson.tr("bilinear", ko="쌍선형"),
         "bed of nails": lesson.tr("bed of nails", ko="bed of nails 방식"),
         "max-unpooling": lesson.tr("max-unpooling", ko="최대 언풀링")}
for name, (layer, args) in cases.items():
    out = layer.forward(*args)
    g = rng.standard_normal(out.shape)
    lhs, rhs = np.sum(out * g), np.sum(args[0] * layer.backward(g))
    lesson.say(f"{name:14s} <up(x), g> = {lhs:+.10f}   <x, backward(g)> = {rhs:+.10f}",
               ko=f"내적 <up(x), g> = {lhs:+.10f}   <x, backward(g)> = {rhs:+.10f}   ({shown[name]})")
    lesson.close(lhs, rhs, f"{name}: the backward pass is the adjoint of the forward", rtol=1e-12,
                 ko=f"{shown[name]}: 역전파는 순전파의 수반이다")
# No parameters to learn in any of them: a fixed rule. FCN's ConvTranspose2d starts as the bilinear
# rule and then learns its kernel by the same backward pass (lesson 05, lesson 08).

# %%
lesson.step("The checkerboard: k = 3, s = 2 overlaps unevenly; k = 4 = 2s overlaps evenly",
            ko="체커보드: k = 3, s = 2는 고르지 않게 겹치고, k = 4 = 2s는 고르게 겹친다")
const = np.ones((1, 1, 5, 5))  # a constant input: any pattern in the output comes from the layer itself
ones3, ones4 = np.ones((1, 1, 3, 3)), np.ones((1, 1, 4, 4))  # kernels of ones: output = number of overlapping stamps
y3, _ = conv_transpose2d_forward(const, ones3, stride=2, padding=1, output_padding=1)  # 5x5 -> 10x10
y4, _ = conv_transpose2d_forward(const, ones4, stride=2, padding=1)  # 5x5 -> 10x10
yb, _ = conv_transpose2d_forward(const, bilinear_weight(1, 1, 4, np.float64), stride=2, padding=1)
print(lesson.tr("k=3, s=2, kernel of ones, constant input, one row:", ko="k=3, s=2, 1로 채운 커널, 상수 입력, 한 행:"),
      y3[0, 0, 4])
print(lesson.tr("k=4, s=2, kernel of ones, constant input, one row:", ko="k=4, s=2, 1로 채운 커널, 상수 입력, 한 행:"),
      y4[0, 0, 4])
inner3, inner4, innerb = y3[0, 0, 1:-1, 1:-1], y4[0, 0, 1:-1, 1:-1], yb[0, 0, 1:-1, 1:-1]
lesson.check(set(np.unique(inner3)) == {1.0, 2.0, 4.0},
             "k=3, s=2: output pixels get 1 or 2 stamps per axis (3 = 2+1): the interior alternates 1, 2, 4",
             ko="k=3, s=2: 출력 픽셀은 축마다 커널 도장(stamp)을 1번 또는 2번 받는다 (3 = 2+1): "
                "안쪽에는 1, 2, 4가 번갈아 나온다")
lesson.check(np.all(inner4 == 4.0), "k=4, s=2: every interior pixel gets exactly 2 stamps per axis: constant 4",
             ko="k=4, s=2: 안쪽 픽셀은 모두 축마다 정확히 도장 2번을 받는다: 상수 4")
lesson.close(innerb, np.ones_like(innerb), "the bilinear k=4, s=2 kernel: constant 1 in, constant 1 out inside",
             ko="쌍선형 k=4, s=2 커널: 상수 1을 넣으면 안쪽에서 상수 1이 나온다")
# Why: output pixel o receives kernel taps t with t = o + p (mod s), one per input pixel: k/s taps when
# s divides k, else ceil or floor of k/s depending on o's phase. With k = 2s every phase gets 2 taps
# per axis; whether their *weights* also sum alike is up to the kernel -- the bilinear taps do:
t4 = bilinear_taps(4)
lesson.close([t4[0] + t4[2], t4[1] + t4[3]], [1.0, 1.0],
             "bilinear k=4 taps per phase: 1/4 + 3/4 = 3/4 + 1/4 = 1 (a learned kernel may drift from this)",
             ko="쌍선형 k=4 탭의 위상(phase)별 합: 1/4 + 3/4 = 3/4 + 1/4 = 1 (학습된 커널은 여기서 벗어날 수 있다)")

fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
draw_matrix(axes[0], y3[0, 0], lesson.label("k=3, s=2, kernel of ones:\nuneven overlap -> checkerboard",
                                            ko="k=3, s=2, 1로 채운 커널:\n고르지 않은 겹침 -> 체커보드"),
            fmt="{:.0f}", cmap="magma", vmin=0, vmax=4.5, fontsize=8)
draw_matrix(axes[1], y4[0, 0], lesson.label("k=4 = 2s, kernel of ones:\neven overlap -> constant inside",
                                            ko="k=4 = 2s, 1로 채운 커널:\n고른 겹침 -> 안쪽은 상수"),
            fmt="{:.0f}", cmap="magma", vmin=0, vmax=4.5, fontsize=8)
draw_matrix(axes[2], yb[0, 0], lesson.label("k=4, s=2, p=1, bilinear kernel\n(FCN's x2 init): constant 1 inside",
                                            ko="k=4, s=2, p=1, 쌍선형 커널\n(FCN의 x2 초기값): 안쪽은 상수 1"),
            fmt="{:.2g}", cmap="magma", vmin=0, vmax=1.1, fontsize=8)
fig.tight_layout()
fig.suptitle(lesson.label("Transposed convolution of a constant 5x5 input (all ones): the pattern is the layer's own",
                          ko="상수 5x5 입력(모두 1)의 전치 합성곱: 무늬는 층 자신이 만든 것"),
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
             "the counts only grow, frame by frame: stamps add up",
             ko="개수는 프레임마다 늘기만 한다: 도장이 쌓인다")
lesson.check(set(np.unique(counts3[9][1:-1, 1:-1])) == {1.0, 2.0, 4.0} and np.all(counts4[9][1:-1, 1:-1] == 4),
             "the last frame: k=3 interior 1, 2, 4 (checkerboard), k=4 interior constant 4",
             ko="마지막 프레임: k=3의 안쪽은 1, 2, 4 (체커보드), k=4의 안쪽은 상수 4이다")
fig, axes, caption = animation_panels([3, 6, 6], (9.6, 4.3))
draw_matrix(axes[0], np.ones((3, 3)), lesson.label("constant input 3x3", ko="상수 입력 3x3"), fmt="{:.0f}", cmap="Blues",
            vmin=0, vmax=3)
count_ims = [draw_matrix(ax, np.full((6, 6), np.nan), title, fmt="{:.0f}", cmap="magma", vmin=0, vmax=4.5)
             for ax, title in zip(axes[1:], (lesson.label("k=3, s=2, p=1, output_padding=1:\nstamps overlap unevenly",
                                                          ko="k=3, s=2, p=1, output_padding=1:\n도장이 고르지 않게 겹침"),
                                             lesson.label("k=4 = 2s, s=2, p=1:\nstamps overlap evenly",
                                                          ko="k=4 = 2s, s=2, p=1:\n도장이 고르게 겹침")))]
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
        caption.set_text(lesson.label("interior: 1, 2, 4 for k=3 (a checkerboard); 4 everywhere for k=4",
                                      ko="안쪽: k=3은 1, 2, 4 (체커보드), k=4는 어디나 4"))
        return
    i, j = divmod(t, 3)
    pixel_box.set_xy((j - 0.5, i - 0.5))
    for box in stamp_boxes:  # the stamp starts at 2i - p; cut at the output's edge (that is what p does)
        place_box(box, 2 * i - 1, 2 * j - 1)
    caption.set_text(lesson.label(f"input pixel ({i},{j}) stamps a kernel of ones, top-left at output "
                                  f"({2 * i - 1},{2 * j - 1}) = 2*({i},{j}) - padding 1; each cell counts its stamps",
                                  ko=f"입력 픽셀 ({i},{j})의 도장(1로 채운 커널): 왼쪽 위는 출력 ({2 * i - 1},{2 * j - 1})"
                                     f" = 2*({i},{j}) - 패딩 1; 칸의 수는 받은 도장 수"))


lesson.save_animation(fig, checkerboard_frame, 10, "checkerboard_overlap", fps=1.5)

# %%
lesson.step("Shift and stitch: the other way to a dense map -- s^2 shifted passes, interleaved",
            ko="이동 후 이어 붙이기(shift and stitch): 조밀한 맵으로 가는 다른 길 -- 입력을 s^2가지로 이동해 "
               "계산하고 엇갈려 끼운다")
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
        lesson.say(f"shift ({a}, {b}): stride-2 output {coarse.shape[2:]} -> rows {a}::2, columns {b}::2",
                   ko=f"이동 ({a}, {b}): 스트라이드 2 출력 {coarse.shape[2:]} -> 행 {a}::2, 열 {b}::2")
        stitched[:, :, a::2, b::2] = coarse
lesson.close(stitched, dense, "the 4 interleaved stride-2 outputs are exactly the stride-1 (dense) output",
             ko="엇갈려 끼운 스트라이드(stride) 2 출력 4개는 스트라이드 1 (조밀한) 출력과 정확히 같다")

# %%
lesson.done(summary=[
    ("Nearest copies s x s blocks, bed of nails keeps one pixel per block, and max-unpooling puts each maximum"
        " back at its index.",
     "최근접 이웃은 s x s 블록으로 복사하고, bed of nails는 블록마다 픽셀 하나만 남기며, 최대 언풀링은 각 최댓값을"
        " 제 인덱스로 되돌린다."),
    ("The bilinear kernel follows f = ceil(k/2); a transposed conv carrying it is bilinear upsampling, exact "
        "on ramps inside the map.",
     "쌍선형 커널은 f = ceil(k/2)를 따르고, 이 커널을 담은 전치 합성곱이 곧 쌍선형 업샘플링이며, 맵 안쪽에서는 "
        "램프를 정확히 재현한다."),
    ("A fresh FCN-8s starts its upsamplers as bilinear interpolation.",
     "갓 만든 FCN-8s의 업샘플링 층은 쌍선형 보간으로 시작한다."),
    ("Each fixed upsampler's backward pass is its adjoint (dot-product test).",
     "고정된 업샘플링 방법마다 역전파는 그 연산의 수반이다 (내적 검사)."),
    ("k = 3, s = 2 overlaps unevenly (a checkerboard); k = 2s overlaps evenly.",
     "k = 3, s = 2는 고르지 않게 겹치고 (체커보드), k = 2s는 고르게 겹친다."),
    ("Shift and stitch: s^2 shifted stride-s passes interleave into the dense output.",
     "이동 후 이어 붙이기: 입력을 이동해 계산한 스트라이드 s 출력 s^2개를 엇갈려 끼우면 조밀한 출력이 된다."),
], exercises=["bilinear_kernel"])

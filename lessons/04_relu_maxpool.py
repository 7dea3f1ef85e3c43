# %% [markdown]
# # Lesson 04: ReLU and max-pooling
#
# Two layers without parameters, whose gradients are *routings*: ReLU lets
# the gradient through where the input was positive, max-pooling sends it to
# the pixel that won each window. This lesson shows
#
# 1. ReLU, its gradient, and why a finite-difference check must keep inputs
#    away from the kink at 0,
# 2. max-pooling forward with the winners' indices,
# 3. **ceil mode**, and why the PyTorch FCN port uses `MaxPool2d(2, stride=2, ceil_mode=True)`:
#    odd sizes keep their last row/column, and any input size survives five pools,
# 4. **-inf padding** (a zero pad would beat negative activations),
# 5. routing the gradient to the **argmax**, and what happens at **ties**.
#
# Sources: the PyTorch FCN port this engine mirrors (the study notes' FCN32s/16s/8s classes:
# `nn.ReLU`, `nn.MaxPool2d(2, stride=2, ceil_mode=True)`) and, behind it, the original Caffe
# FCN, whose pooling layer rounds its output size up; PyTorch's `MaxPool2d` documentation
# (ceil mode, implicit -inf padding); Dumoulin & Visin (arXiv:1603.07285) chapter 3 (pooling
# arithmetic); the pooling "switches" max-unpooling reuses: Zeiler & Fergus (arXiv:1311.2901).
# Run: `python lessons/04_relu_maxpool.py [--step] [--no-figures] [--figures DIR]`.

# %% [markdown]
# # 레슨 04: ReLU와 최대 풀링
#
# 파라미터(parameter)가 없는 두 층입니다. 두 층의 기울기(gradient)는 *라우팅(routing)*, 곧 기울기를 어디로
# 보낼지 고르는 일입니다. ReLU는 입력이 양수였던 곳으로만 기울기를 통과시키고, 최대 풀링(max-pooling)은
# 각 윈도우(window)에서 이긴 픽셀(pixel)로 기울기를 보냅니다. 이 레슨에서 살펴볼 내용은 다음과 같습니다.
#
# 1. ReLU와 그 기울기, 그리고 유한 차분(finite difference) 검사에서 입력을 0의 꺾인 점(kink)에서
#    멀리 떨어뜨려야 하는 이유
# 2. 최대 풀링의 순전파(forward pass)와 이긴 픽셀들의 인덱스
# 3. **올림 모드(ceil mode)**, 그리고 PyTorch FCN 포팅이 `MaxPool2d(2, stride=2, ceil_mode=True)`를
#    쓰는 이유: 홀수 크기도 마지막 행과 열을 지키고, 어떤 입력 크기도 풀링 다섯 번을 견딥니다.
# 4. **-inf 패딩(padding)** (0으로 패딩하면 음수 활성화(activation)를 이겨 버립니다)
# 5. 기울기를 **argmax**로 보내는 방법과 **동점(tie)**일 때 일어나는 일
#
# 출처: 이 엔진이 본뜬 PyTorch FCN 포팅(학습 노트의 FCN32s/16s/8s 클래스(class): `nn.ReLU`,
# `nn.MaxPool2d(2, stride=2, ceil_mode=True)`)과 그 바탕이 된 원래의 Caffe FCN(풀링 층이 출력 크기를
# 올림합니다), PyTorch의 `MaxPool2d` 문서(올림 모드, 암묵적인 -inf 패딩), Dumoulin & Visin
# (arXiv:1603.07285) 3장(풀링의 크기 계산), 최대 언풀링(max-unpooling)이 다시 쓰는 풀링 "스위치(switches)":
# Zeiler & Fergus (arXiv:1311.2901).
# 실행: `python lessons/04_relu_maxpool.py --lang ko [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import Lesson, draw_matrix  # first: puts the repo on sys.path, picks a headless backend

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from fcn_scratch import gradcheck, kernels
from fcn_scratch.functional import (maxpool2d_backward, maxpool2d_forward, pool_output_size, relu_backward,
                                    relu_forward)
from fcn_scratch.layers import MaxPool2d, ReLU
from fcn_scratch.naive import maxpool2d_naive, relu_naive

lesson = Lesson("04_relu_maxpool", "ReLU and max-pooling: ceil mode, -inf padding, argmax routing, ties",
                ko="ReLU와 최대 풀링(max-pooling): 올림 모드(ceil mode), -inf 패딩(padding), argmax로 가는 기울기, "
                   "동점(tie)")
rng = np.random.default_rng(4)

# %%
lesson.step("ReLU: y = max(x, 0), dx = dy * [x > 0]", ko="ReLU: 출력 y = max(x, 0), 기울기(gradient) dx = dy * [x > 0]")
x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
y, mask = relu_forward(x)
dy = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
dx = relu_backward(dy, mask)
print("x        ", x, "\ny        ", y, "\ndy       ", dy, "\ndx       ", dx)
lesson.check(np.array_equal(y, relu_naive(x)), "forward matches relu_naive", ko="순전파(forward pass) 결과가 relu_naive와 같다")
lesson.check(np.array_equal(dx, [0, 0, 0, 40, 50]), "the gradient passes where x > 0 only (0 at x = 0, as PyTorch)",
             ko="기울기는 x > 0인 곳으로만 흐른다 (PyTorch처럼 x = 0에서는 0이다)")
errors = gradcheck.check_module(ReLU(), gradcheck.away_from_kinks((2, 3, 5, 7), rng))
lesson.say(f"gradcheck of ReLU on inputs with |x| >= 0.1: rel error {errors['x']:.1e}",
           ko=f"|x| >= 0.1인 입력으로 ReLU를 gradcheck하면 상대 오차는 {errors['x']:.1e}입니다")
lesson.check(errors["x"] < gradcheck.TOL_KINK, f"ReLU passes the gradient check (< TOL_KINK = {gradcheck.TOL_KINK:g})",
             ko=f"ReLU는 기울기 검사(gradient check)를 통과한다 (< TOL_KINK = {gradcheck.TOL_KINK:g})")

# %%
lesson.step("Why the check keeps inputs away from the kink at 0", ko="기울기 검사가 입력을 0의 꺾인 점(kink)에서 떼어 놓는 이유")
h = 1e-6
lesson.say("   x        numeric (f(x+h)-f(x-h))/2h   analytic", ko="   x      수치 미분 (f(x+h)-f(x-h))/2h     해석적")
for x0, expected in [(0.0, 0.5), (3e-7, 0.65), (0.1, 1.0)]:
    f_plus, f_minus = relu_forward(np.array([x0 + h]))[0][0], relu_forward(np.array([x0 - h]))[0][0]
    numeric = (f_plus - f_minus) / (2 * h)  # central difference of the engine's own ReLU
    analytic = relu_backward(np.ones(1), relu_forward(np.array([x0]))[1])[0]
    print(f"  {x0:<8g} {numeric:27.4f}   {analytic:8.1f}")
    lesson.check(np.isclose(numeric, expected) and analytic == (1.0 if x0 > 0 else 0.0),
                 f"x = {x0:g}: the engine's central difference gives {expected}, its backward {float(x0 > 0):g}",
                 ko=f"x = {x0:g}: 엔진의 중앙 차분은 {expected}, 역전파는 {float(x0 > 0):g}이다")
lesson.say("within h of 0 the difference straddles the kink and matches neither slope, so checks avoid it:",
           ko="x가 0에서 h 이내이면 차분 구간이 꺾인 점에 걸쳐 어느 쪽 기울기와도 맞지 않습니다. 그래서 검사는 이 구간을 "
              "피합니다:")
lesson.check(np.abs(gradcheck.away_from_kinks((1000,), rng)).min() >= 0.1 > h,
             "gradcheck.away_from_kinks draws |x| >= 0.1, far more than h = 1e-6 from the kink",
             ko="gradcheck.away_from_kinks는 |x| >= 0.1만 뽑으므로 꺾인 점에서 h = 1e-6보다 훨씬 멀다")

# %%
lesson.step("Max-pooling 2x2, stride 2: the max of each window, and where it was",
            ko="2x2 최대 풀링, 스트라이드(stride) 2: 윈도우(window)마다 최댓값과 그 위치")
x = gradcheck.distinct_values((1, 1, 4, 4), rng, spacing=1.0)
y, cache = maxpool2d_forward(x, 2, 2)
indices = cache[1]
print("x:\n", x[0, 0], "\ny = maxpool(x):\n", y[0, 0])
print(lesson.tr("indices (flat h*W + w of each winner):\n", ko="indices (이긴 픽셀(pixel)마다 평탄화한 위치 h*W + w):\n"),
      indices[0, 0])
lesson.check(np.array_equal(x[0, 0].ravel()[indices[0, 0]], y[0, 0]),
             "x.flat[indices] == y: indices point at the maxima", ko="x.flat[indices] == y: indices는 최댓값을 가리킨다")
for backend in kernels.BACKENDS:
    with kernels.use_backend(backend):
        yb, (_, ib) = maxpool2d_forward(x, 2, 2)
    yn, inn = maxpool2d_naive(x, 2, 2)
    lesson.check(np.array_equal(yb, yn) and np.array_equal(ib, inn),
                 f"{backend} kernel == maxpool2d_naive (values and indices)",
                 ko=f"{backend} 커널 == maxpool2d_naive (값과 인덱스 모두)")

# %%
lesson.step("Ceil mode: an odd size keeps its last row and column", ko="올림 모드: 홀수 크기도 마지막 행과 열을 지킨다")
x = rng.standard_normal((1, 1, 7, 7))
y_floor, c_floor = maxpool2d_forward(x, 2, 2, ceil_mode=False)
y_ceil, c_ceil = maxpool2d_forward(x, 2, 2, ceil_mode=True)
lesson.say(f"7x7 input, 2x2 windows, stride 2: floor mode -> {y_floor.shape[2:]}, ceil mode -> {y_ceil.shape[2:]}",
           ko=f"7x7 입력, 2x2 윈도우, 스트라이드 2: 내림 모드(floor mode) -> {y_floor.shape[2:]}, "
              f"올림 모드 -> {y_ceil.shape[2:]}")
lesson.check(y_floor.shape[2:] == (3, 3) and y_ceil.shape[2:] == (4, 4), "floor((7-2)/2)+1 = 3, ceil((7-2)/2)+1 = 4",
             ko="내림: floor((7-2)/2)+1 = 3, 올림: ceil((7-2)/2)+1 = 4")
dx_floor = maxpool2d_backward(np.ones(y_floor.shape), c_floor)
dx_ceil = maxpool2d_backward(np.ones(y_ceil.shape), c_ceil)
lesson.check(not dx_floor[0, 0, 6, :].any() and not dx_floor[0, 0, :, 6].any(),
             "floor mode: row 6 and column 6 get no gradient, they never reach the output",
             ko="내림 모드: 6행과 6열은 출력에 전혀 닿지 않으므로 기울기를 받지 못한다")
lesson.check(y_ceil[0, 0, 3, 3] == x[0, 0, 6, 6], "ceil mode: the last window is the lone pixel (6, 6)",
             ko="올림 모드: 마지막 윈도우에는 픽셀 (6, 6) 하나만 들어 있다")
lesson.check(dx_ceil.sum() == y_ceil.size and dx_ceil[0, 0, 6].sum() > 0,
             "ceil mode: every window, the partial ones too, routes its gradient",
             ko="올림 모드: 가장자리에 걸친 부분 윈도우까지 모든 윈도우가 기울기를 전달한다")
# The one exception: a window that would START in the right padding is dropped.
print(lesson.tr("pool_output_size(5, k=2, s=2, p=1, ceil): ceil((5+2-2)/2)+1 = 4, but window 4 would start at 6 >= 5+1,"
                " in the padding ->",
                ko="pool_output_size(5, k=2, s=2, p=1, ceil): ceil((5+2-2)/2)+1 = 4이지만, 네 번째 윈도우는 "
                   "6 >= 5+1, 곧 패딩 안에서 시작하게 됩니다 ->"), pool_output_size(5, 2, 2, 1, ceil_mode=True))
naive_rows = maxpool2d_naive(np.zeros((1, 1, 5, 5)), 2, 2, 1, ceil_mode=True)[0].shape[2]
lesson.check(pool_output_size(5, 2, 2, 1, ceil_mode=True) == 3 == naive_rows,
             "a last window starting inside the right padding is dropped (PyTorch's rule)",
             ko="오른쪽 패딩 안에서 시작하는 마지막 윈도우는 버려진다 (PyTorch의 규칙)")

# %%
lesson.step("Why FCN pools in ceil mode: every size survives five pools",
            ko="FCN이 올림 모드로 풀링하는 이유: 어떤 크기도 풀링 다섯 번을 견딘다")
lesson.say("   H   after pool1..pool5 (floor)   after pool1..pool5 (ceil)   ceil(H/32)",
           ko="   H   pool1..pool5 후 (내림)       pool1..pool5 후 (올림)      ceil(H/32)")
for H in [224, 100, 37, 20]:
    sizes = {}
    for ceil in (False, True):
        size, chain = H, []
        for _ in range(5):
            size = pool_output_size(size, 2, 2, ceil_mode=ceil)
            chain.append(size)
        sizes[ceil] = chain
    print(f"  {H:3d}   {str(sizes[False]):28s} {str(sizes[True]):27s} {-(-H // 32):4d}")
    lesson.check(sizes[True][-1] == -(-H // 32),
                 f"H={H}: ceil mode gives ceil(H/32) = {-(-H // 32)} at pool5, covering every pixel",
                 ko=f"H={H}: 올림 모드에서 pool5의 크기는 ceil(H/32) = {-(-H // 32)}이고 모든 픽셀을 덮는다")
try:
    x = rng.standard_normal((1, 1, 20, 20))
    for _ in range(5):
        x, _ = maxpool2d_forward(x, 2, 2, ceil_mode=False)
    failed = False
except ValueError as err:
    print(lesson.tr("floor mode on a 20x20 input, at pool5:", ko="내림 모드, 20x20 입력, pool5에서 난 오류:"), err)
    failed = True
lesson.check(failed, "in floor mode a 20x20 input dies at pool5 (1x1 cannot hold a 2x2 window); ceil mode gives 1x1",
             ko="내림 모드에서는 20x20 입력이 pool5에서 실패한다 (1x1에는 2x2 윈도우가 들어가지 않는다). "
                "올림 모드에서는 1x1이 된다")

fig, axes = plt.subplots(1, 2, figsize=(10, 5))
x7 = np.arange(49.0).reshape(7, 7)
for ax, ceil in zip(axes, (False, True)):
    n = pool_output_size(7, 2, 2, ceil_mode=ceil)
    draw_matrix(ax, x7, "", fmt="{:.0f}", cmap="Greys", vmin=-60, vmax=60)
    for i in range(n):
        for j in range(n):
            partial = 2 * i + 2 > 7 or 2 * j + 2 > 7  # a ceil-mode window hanging over the edge
            ax.add_patch(Rectangle((2 * j - 0.45, 2 * i - 0.45), min(2, 7 - 2 * j) - 0.1, min(2, 7 - 2 * i) - 0.1,
                                   fill=False, lw=2.5, ec="tab:orange" if partial else "tab:blue"))
    if not ceil:
        ax.add_patch(Rectangle((-0.5, 5.5), 7, 1, color="tab:red", alpha=0.35))
        ax.add_patch(Rectangle((5.5, -0.5), 1, 6, color="tab:red", alpha=0.35))
    note = (lesson.label("orange: partial windows keep the edge", ko="주황: 가장자리를 지키는 부분 윈도우") if ceil
            else lesson.label("red: never pooled, lost", ko="빨강: 풀링되지 않아 잃는 행과 열"))
    mode = lesson.label("ceil", ko="올림") if ceil else lesson.label("floor", ko="내림")
    ax.set_title(lesson.label(f"{mode} mode: {n}x{n} windows\n{note}", ko=f"{mode} 모드: {n}x{n} 윈도우\n{note}"),
                 fontsize=10)
fig.suptitle(lesson.label("MaxPool2d(2, stride=2) on a 7x7 input", ko="7x7 입력에 MaxPool2d(2, stride=2) 적용"),
             fontsize=11)
lesson.save(fig, "ceil_mode")

# %%
lesson.step("Padding is -inf, not 0: a zero pad would beat negative activations",
            ko="패딩은 0이 아니라 -inf이다: 0으로 채우면 음수 활성화(activation)를 이겨 버린다")
x = -np.arange(1.0, 17.0).reshape(1, 1, 4, 4)  # every value negative
y_inf, _ = maxpool2d_forward(x, 3, 2, padding=1)  # the engine pads with -inf
x_zero_padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))  # what a zero pad would do
y_zero, _ = maxpool2d_forward(x_zero_padded, 3, 2)
print(lesson.tr("x (all negative):\n", ko="x (모두 음수):\n"), x[0, 0])
print(lesson.tr("engine, padding 1 (-inf):\n", ko="엔진, 패딩 1 (-inf):\n"), y_inf[0, 0],
      lesson.tr("\nif the pad were zeros:\n", ko="\n0으로 패딩했다면:\n"), y_zero[0, 0])
lesson.check(np.isin(y_inf, x).all(), "-inf padding: every output is a real input value",
             ko="-inf 패딩: 모든 출력이 실제 입력 값이다")
lesson.check((y_zero == 0).sum() == 3, "zero padding: 3 of 4 windows report 0, a value the input never had",
             ko="0 패딩: 윈도우 4개 중 3개가 입력에 없던 값 0을 내놓는다")
lesson.check(np.array_equal(y_inf, maxpool2d_naive(x, 3, 2, 1)[0]), "the engine agrees with maxpool2d_naive",
             ko="엔진이 maxpool2d_naive와 일치한다")

fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), gridspec_kw={"width_ratios": [4, 2, 2]})
draw_matrix(axes[0], x[0, 0], lesson.label("x: all negative", ko="x: 모두 음수"), fmt="{:.0f}", cmap="Blues_r", vmin=-17,
            vmax=1)
draw_matrix(axes[1], y_inf[0, 0], lesson.label("3x3 pool, s=2, p=1\n-inf padding (engine)",
                                               ko="3x3 풀링, s=2, p=1\n-inf 패딩 (엔진)"),
            fmt="{:.0f}", cmap="Blues_r", vmin=-17, vmax=1)
draw_matrix(axes[2], y_zero[0, 0], lesson.label("the same with a\nzero pad: wrong 0s", ko="같은 풀링, 0 패딩:\n잘못된 0"),
            fmt="{:.0f}", cmap="Blues_r", vmin=-17, vmax=1)
lesson.save(fig, "padding")

# %%
lesson.step("Backward: each window's gradient goes to its winner; a pixel that wins twice gets the sum",
            ko="역전파(backward pass): 윈도우마다 기울기는 이긴 픽셀로 가고, 두 번 이긴 픽셀은 합을 받는다")
x = gradcheck.distinct_values((1, 1, 7, 7), rng, spacing=0.1)
x[0, 0, 3, 3] = 10.0  # in the overlap of four 3x3 windows (stride 2): it wins all four
y, cache = maxpool2d_forward(x, 3, 2, padding=1)
dy = np.arange(1.0, y.size + 1).reshape(y.shape)  # easy to trace: window k sends k
dx = maxpool2d_backward(dy, cache)
print("dy (4x4):\n", dy[0, 0], "\ndx (7x7):\n", dx[0, 0])
expected = np.zeros(49)
np.add.at(expected, maxpool2d_naive(x, 3, 2, 1)[1].ravel(), dy.ravel())  # scatter-add at the naive winners
lesson.close(dx.ravel(), expected, "dx = scatter-add of dy at the winners' indices",
             ko="dx는 이긴 픽셀들의 인덱스에 dy를 흩뿌려 더한(흩뿌리기, scatter-add) 결과이다")
lesson.check(dx[0, 0, 3, 3] == dy[0, 0, 1:3, 1:3].sum() == 6 + 7 + 10 + 11,
             "pixel (3, 3) won 4 windows: 6+7+10+11 = 34", ko="픽셀 (3, 3)은 윈도우 4개에서 이겼다: 6+7+10+11 = 34")
lesson.check(np.isclose(dx.sum(), dy.sum()) and (dx != 0).sum() <= y.size, "nothing is lost, only winners are non-zero",
             ko="잃는 기울기가 없고, 0이 아닌 값은 이긴 픽셀에만 있다")
errors = gradcheck.check_module(MaxPool2d(3, 2, 1, ceil_mode=True), gradcheck.distinct_values((2, 3, 8, 9), rng))
lesson.say(f"gradcheck of MaxPool2d(3, 2, 1, ceil_mode=True) on tie-free inputs: rel error {errors['x']:.1e}",
           ko=f"동점이 없는 입력으로 MaxPool2d(3, 2, 1, ceil_mode=True)를 gradcheck하면 상대 오차는 {errors['x']:.1e}입니다")
lesson.check(errors["x"] < gradcheck.TOL_KINK, "max-pool passes the gradient check", ko="최대 풀링은 기울기 검사를 통과한다")

fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), gridspec_kw={"width_ratios": [7, 4, 7]})
draw_matrix(axes[0], x[0, 0], lesson.label("x (winners outlined)", ko="x (이긴 픽셀에 테두리)"), fmt="{:.1f}", cmap="Greys",
            vmin=-4, vmax=12, fontsize=8)
for idx in np.unique(cache[1]):
    axes[0].add_patch(Rectangle((idx % 7 - 0.5, idx // 7 - 0.5), 1, 1, fill=False, lw=2.5, ec="tab:red"))
draw_matrix(axes[1], dy[0, 0], lesson.label("dy (one per window)", ko="dy (윈도우마다 하나)"), fmt="{:.0f}", cmap="Oranges")
draw_matrix(axes[2], dx[0, 0], lesson.label("dx = dy routed to the winners\n(3,3) won 4 windows: 6+7+10+11",
                                            ko="dx = 이긴 픽셀로 보낸 dy\n(3,3)은 윈도우 4개에서 이김: 6+7+10+11"),
            fmt=lambda v: f"{v:.0f}" if v else "", cmap="Oranges", fontsize=8)
fig.suptitle(lesson.label("MaxPool2d(3, stride=2, padding=1): the gradient follows the argmax",
                          ko="MaxPool2d(3, stride=2, padding=1): argmax를 따라가는 기울기"), fontsize=11, y=1.06)
lesson.save(fig, "argmax_routing")

# %%
lesson.step("Ties: the first maximum wins (row-major), and finite differences break down",
            ko="동점: 행 우선(row-major) 순서로 첫 번째 최댓값이 이기고, 유한 차분(finite difference)은 통하지 않는다")
x = np.array([[[[5.0, 5.0], [5.0, 5.0]]]])  # one window, four equal values
y, cache = maxpool2d_forward(x, 2)
dx = maxpool2d_backward(np.ones(y.shape), cache)
print("x:\n", x[0, 0], lesson.tr("\nwinner index:", ko="\n이긴 픽셀의 인덱스:"), cache[1].ravel()[0],
      lesson.tr("\nanalytic dx:\n", ko="\n해석적 dx:\n"), dx[0, 0])
lesson.check(cache[1].ravel()[0] == 0 and np.array_equal(dx[0, 0], [[1, 0], [0, 0]]),
             "the first maximum (row-major) takes the whole gradient; it is not split",
             ko="행 우선 순서로 첫 번째 최댓값이 기울기를 나누지 않고 모두 받는다")
numeric = gradcheck.numerical_gradient(lambda: float(maxpool2d_forward(x, 2)[0].sum()), x)
print(lesson.tr("numeric dx (central differences):\n", ko="수치 dx (중앙 차분):\n"), numeric[0, 0])
lesson.close(numeric, np.full_like(x, 0.5), "at a tie every entry gets 0.5 (+h wins, -h loses): no single slope exists",
             rtol=1e-6, ko="동점에서는 모든 원소가 0.5를 받는다 (+h면 이기고 -h면 진다): 기울기가 하나로 정해지지 않는다")
x = gradcheck.distinct_values((2, 3, 8, 9), rng)
lesson.check(np.unique(x).size == x.size and np.diff(np.sort(x.ravel())).min() > 2 * h,
             "so gradient checks draw tie-free inputs: gradcheck.distinct_values, all >> h apart",
             ko="그래서 기울기 검사는 동점이 없는 입력을 쓴다: gradcheck.distinct_values, 모든 값의 간격이 h보다 훨씬 크다")

# %%
lesson.done(summary=[
    ("ReLU passes the gradient where x > 0; within h of the kink finite differences match neither slope.",
     "ReLU는 x > 0인 곳에서만 기울기를 통과시킨다. 꺾인 점에서 h 이내에서는 유한 차분이 어느 쪽 기울기와도 맞지 않는다."),
    ("Max-pool indices point at the window maxima; both kernels equal the plain loops.",
     "최대 풀링의 인덱스는 윈도우의 최댓값을 가리킨다. 두 커널 모두 단순 루프와 같다."),
    ("Ceil mode keeps odd edges and leaves ceil(H/32) after five pools; floor mode drops rows or fails.",
     "올림 모드는 홀수 크기의 가장자리를 지키고, 풀링 다섯 번 뒤의 크기는 ceil(H/32)이다. 내림 모드는 행을 버리거나 "
     "실패한다."),
    ("Padding is -inf: every pooled value is a real input value.",
     "패딩은 -inf이다: 풀링한 값은 모두 실제 입력 값이다."),
    ("The gradient goes to each window's winner (summed over repeat wins); at a tie the first maximum takes it"
        " all.",
     "기울기는 각 윈도우에서 이긴 픽셀로 가고(여러 번 이기면 더해진다), 동점이면 첫 번째 최댓값이 모두 가져간다."),
], exercises=["relu", "maxpool_forward", "maxpool_backward"])

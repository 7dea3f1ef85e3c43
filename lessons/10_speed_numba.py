# %% [markdown]
# # Lesson 10: speed -- Numba kernels, their NumPy twins, and why the GEMM dominates
#
# Everything so far was about being right. A learner who waits five minutes
# per epoch stops learning, so the engine is also fast: the loops that NumPy
# cannot express as whole-array operations (im2col, col2im, max-pool forward
# and backward) are written as plain Python and compiled by **Numba**, and
# each has a vectorised **NumPy twin** computing the same numbers. This lesson
#
# 1. switches between the two backends and proves they agree,
# 2. times the same im2col source run by the Python interpreter, its `njit` build and
#    the NumPy twin (timings printed, never asserted: they depend on the machine and its load),
# 3. explains what `njit` and `prange` do, and the project's finding that the
#    kernels run best *serial* next to a multi-threaded BLAS, whose idle threads
#    keep spinning after each GEMM -- measured as CPU time burnt while Python sleeps
#    (`FCN_SCRATCH_PARALLEL=1` compiles the kernels parallel, to see the difference),
# 4. shows the **unsigned-index** trick of the row helpers and the vector
#    instructions it lets LLVM emit,
# 5. counts FLOPs and bytes of one convolution layer and times each piece:
#    im2col moves bytes, the GEMM does the arithmetic -- and takes the time,
# 6. splits a training batch across two threads (`fcn_scratch.parallel.DataParallel`):
#    one model replica per thread sharing one set of weights, each shard's loss
#    weighted by its share of the valid pixels V_s/V, the gradients summed -- the
#    single-thread numbers, proved; then one training step timed with 1 and 2 threads,
# 7. shows that inference needs no column matrix: `conv2d_inference` unfolds a
#    band of output rows (~4 MiB of columns) at a time and runs that band's GEMM
#    while it is still in the cache -- the same output for a fraction of the memory.
#
# `fcn-scratch bench` prints the full table (every kernel, layer, the FCN-8s
# training step, beside PyTorch when it is installed).
# Speed is this engine's addition, not part of the FCN paper (Long, Shelhamer &
# Darrell, arXiv:1411.4038): the kernels serve its convolutions, pools and
# backward passes (Sections 3-4). Sources: Chellapilla, Puri & Simard, "High
# Performance Convolutional Neural Networks for Document Processing" (IWFHR
# 2006: a convolution unrolled into one matrix product, im2col);
# Lam, Pitrou & Seibert, "Numba: a LLVM-based Python JIT compiler" (LLVM-HPC
# 2015); Goto & van de Geijn, "Anatomy of High-Performance Matrix
# Multiplication" (ACM TOMS 34(3), 2008) for why a GEMM runs near the peak;
# Williams, Waterman & Patterson, "Roofline" (CACM 52(4), 2009) for FLOPs per
# byte; Goyal et al., arXiv:1706.02677, Section 3 (data-parallel SGD: normalise
# each worker's loss by the whole batch, not by its own share).
# Run: `python lessons/10_speed_numba.py [--step] [--no-figures] [--figures DIR]`;
# `FCN_SCRATCH_PARALLEL=1 python lessons/10_speed_numba.py` for parallel kernels (compiled first: ~20 s more).
# Training splits its batches across threads as step 6 shows: `fit(..., threads=N)`, `fcn-scratch train --threads N`.

# %% [markdown]
# # 레슨 10: 속도 -- Numba 커널과 NumPy 쌍둥이, 그리고 GEMM이 시간을 차지하는 이유
#
# 지금까지는 모두 올바른 답을 내는 이야기였습니다. 그런데 에포크(epoch) 하나에 5분씩
# 기다려야 한다면 학습자는 배우기를 그만둡니다. 그래서 이 엔진은 빠르기도 합니다. NumPy가 배열
# 전체 연산으로 표현하지 못하는 루프(im2col, col2im, 최대 풀링(max-pooling)의 순전파(forward pass)와 역전파(backward pass))는
# 평범한 Python으로 작성해 **Numba**로 컴파일하고, 각 루프에는 같은 숫자를 계산하는 벡터화된
# **NumPy 쌍둥이(twin)**가 있습니다. 이 레슨에서는
#
# 1. 두 백엔드를 바꿔 가며 둘이 같은 결과를 낸다는 것을 증명합니다.
# 2. 같은 im2col 소스를 Python 인터프리터로, `njit` 빌드로 실행하고 NumPy 쌍둥이와 함께 시간을 잽니다
#    (시간은 출력만 하고 검사하지 않습니다. 기계와 그때의 부하에 따라 달라지기 때문입니다).
# 3. `njit`와 `prange`가 하는 일을 설명하고, 커널(kernel)은 멀티스레드 BLAS 옆에서 *직렬*로 돌 때
#    가장 빠르다는 이 프로젝트의 발견을 설명합니다. BLAS의 쉬는 스레드는 GEMM이 끝난 뒤에도 한동안
#    스핀(spin)하며 기다리는데, 이를 Python이 잠든 동안 소모된 CPU 시간으로 측정합니다
#    (`FCN_SCRATCH_PARALLEL=1`로 커널을 병렬로 컴파일하면 차이를 볼 수 있습니다).
# 4. 행 복사 도우미 함수의 **부호 없는 인덱스(unsigned index)** 기법과, 그 덕분에 LLVM이 만들어 내는
#    벡터 명령어를 보여 줍니다.
# 5. 합성곱(convolution) 층 하나의 FLOP과 바이트를 세고 조각마다 시간을 잽니다.
#    im2col은 바이트를 옮기고, 산술은 GEMM이 합니다 -- 그리고 시간도 GEMM이 차지합니다.
# 6. 학습(training) 배치(batch)를 두 스레드에 나눕니다(`fcn_scratch.parallel.DataParallel`).
#    스레드마다 모델 복제본(replica)이 하나씩 있고 가중치(weight)는 한 벌을 함께 쓰며, 각 샤드(shard)의
#    손실(loss)에는 그 샤드가 가진 유효 픽셀(pixel)의 비율 V_s/V를 가중치로 곱하고, 기울기(gradient)는
#    더합니다. 단일 스레드와 같은 숫자가 나옴을 증명한 뒤, 학습 한 스텝을 스레드 1개와 2개로 시간을 잽니다.
# 7. 추론(inference)에는 열 행렬이 필요 없음을 보여 줍니다. `conv2d_inference`는 출력 행의 띠(band)
#    하나(열 약 4 MiB)씩 펼치고, 그 띠가 아직 캐시에 있을 때 그 띠의 GEMM을 실행합니다. 출력은 같고
#    메모리는 몇 분의 일만 씁니다.
#
# `fcn-scratch bench`는 전체 표(모든 커널과 층, FCN-8s 학습 스텝, PyTorch가 설치되어 있으면 그 옆에
# PyTorch)를 출력합니다.
# 속도는 이 엔진이 더한 것이고 FCN 논문(Long, Shelhamer & Darrell, arXiv:1411.4038)의 내용은 아닙니다.
# 커널은 논문의 합성곱, 풀링, 역전파(3-4절)를 위해 일합니다. 출처: Chellapilla, Puri & Simard, "High
# Performance Convolutional Neural Networks for Document Processing" (IWFHR 2006: 합성곱을 펼쳐 행렬 곱
# 하나로 만드는 im2col); Lam, Pitrou & Seibert, "Numba: a LLVM-based Python JIT compiler" (LLVM-HPC
# 2015); Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication" (ACM TOMS 34(3), 2008):
# GEMM이 최대 성능 가까이 도는 이유; Williams, Waterman & Patterson, "Roofline" (CACM 52(4), 2009):
# 바이트당 FLOP; Goyal et al., arXiv:1706.02677, 3절 (데이터 병렬 SGD: 각 워커의 손실을 자기 몫이 아니라
# 배치 전체로 정규화한다).
# 실행: `python lessons/10_speed_numba.py --lang ko [--step] [--no-figures] [--figures DIR]`;
# 병렬 커널은 `FCN_SCRATCH_PARALLEL=1 python lessons/10_speed_numba.py --lang ko` (먼저 컴파일하느라 약 20초 더 걸립니다).
# 학습은 6단계처럼 배치를 여러 스레드에 나눕니다: `fit(..., threads=N)`, `fcn-scratch train --threads N`.

# %%
from _common import Lesson, pad  # first: puts the repo on sys.path, picks a headless backend

import math
import os
import re
import time
import tracemalloc
import types

import matplotlib.pyplot as plt
import numba
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from fcn_scratch import kernels
from fcn_scratch.bench import TINY_CLASSES, TINY_NET, interleaved
from fcn_scratch.functional import INFERENCE_BAND_BYTES, conv2d_backward, conv2d_forward, conv2d_inference
from fcn_scratch.kernels import numba_kernels, numpy_kernels
from fcn_scratch.layers import SoftmaxCrossEntropy, no_grad
from fcn_scratch.models import FCN8s
from fcn_scratch.naive import im2col_naive
from fcn_scratch.parallel import DataParallel, shard_bounds, usable_cpus

lesson = Lesson("10_speed_numba", "Speed: Numba kernels beside their NumPy twins, and why the GEMM dominates",
                ko="속도: Numba 커널과 NumPy 쌍둥이, 그리고 GEMM이 시간을 차지하는 이유")
rng = np.random.default_rng(10)
JIT = not numba.config.DISABLE_JIT  # NUMBA_DISABLE_JIT=1 runs every kernel as plain Python (slow, smaller sizes)
N = 4 if JIT else 1
lesson.say(f"Numba JIT {'on' if JIT else 'OFF (NUMBA_DISABLE_JIT=1): plain Python everywhere, sizes reduced'}; "
           f"default backend {kernels.get_backend()!r}; "
           f"kernels compiled {'parallel' if numba_kernels.PARALLEL else 'serial'}",
           ko=f"Numba JIT {'켜짐' if JIT else '꺼짐 (NUMBA_DISABLE_JIT=1): 모든 곳이 순수 Python이라 크기를 줄였습니다'}; "
              f"기본 백엔드 {kernels.get_backend()!r}; "
              f"커널(kernel)은 {'병렬' if numba_kernels.PARALLEL else '직렬'}로 컴파일되었습니다")


def ms(seconds):
    return f"{seconds * 1e3:9.3f} ms"


# A layer of the tiny FCN's third block: 64 -> 128 channels, 3x3, padding 1, on 32x32 maps, float32
# (a quarter of that without the JIT, where every kernel is a plain Python loop).
C, F, H = (64, 128, 32) if JIT else (16, 32, 16)
x = rng.standard_normal((N, C, H, H)).astype(np.float32)
conv_args = (3, 3, 1, 1, 1, 1, 1, 1, H, H)  # kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo
pool_args = (2, 2, 2, 2, 0, 0, 1, 1, H // 2, H // 2)

# %%
lesson.step("Two backends, one switch: the Numba kernels and their NumPy twins compute the same numbers",
            ko="백엔드 둘, 스위치 하나: Numba 커널과 NumPy 쌍둥이는 같은 숫자를 계산한다")
out = {}
for backend in ("numba", "numpy"):
    with kernels.use_backend(backend):  # or kernels.set_backend(...), or FCN_SCRATCH_BACKEND=numpy
        cols = kernels.im2col(x, *conv_args)
        pooled, argmax = kernels.maxpool_forward(x, *pool_args)
        out[backend] = dict(im2col=cols, col2im=kernels.col2im(cols, N, C, H, H, *conv_args),
                            maxpool_forward=pooled, argmax=argmax,
                            maxpool_backward=kernels.maxpool_backward(pooled, argmax, H, H))
lesson.say(f"x {x.shape} float32 -> im2col {out['numba']['im2col'].shape}, max-pool {out['numba']['maxpool_forward'].shape}",
           ko=f"x {x.shape} float32 -> im2col {out['numba']['im2col'].shape}, 최대 풀링(max-pool) "
              f"{out['numba']['maxpool_forward'].shape}")
for name in ("im2col", "maxpool_forward", "argmax", "maxpool_backward"):
    lesson.check(np.array_equal(out["numba"][name], out["numpy"][name]), f"{name}: numba == numpy, bit for bit",
                 ko=f"{name}: numba == numpy, 비트 하나까지 같다")
# col2im sums up to 9 overlapping taps per pixel; the two backends add them in different orders.
lesson.close(out["numba"]["col2im"], out["numpy"]["col2im"], "col2im: numba == numpy up to float32 rounding",
             rtol=1e-5, atol=1e-5, ko="col2im: float32 반올림 오차 안에서 numba == numpy이다")
w = (rng.standard_normal((F, C, 3, 3)) * 0.05).astype(np.float32)
grads = {}
for backend in ("numba", "numpy"):
    with kernels.use_backend(backend):
        y, cache = conv2d_forward(x, w, padding=1)
        grads[backend] = (y, *conv2d_backward(np.ones_like(y), cache)[:2])
lesson.check(all(np.allclose(a, b, rtol=1e-5, atol=1e-4) for a, b in zip(grads["numba"], grads["numpy"])),
             "a whole Conv2d forward and backward agree on both backends",
             ko="Conv2d 전체의 순전파(forward pass)와 역전파(backward pass)가 두 백엔드에서 일치한다")

# %%
lesson.step("Plain Python, njit, NumPy twin: the same im2col, timed (best of a few runs; printed, not asserted)",
            ko="순수 Python, njit, NumPy 쌍둥이: 같은 im2col의 실행 시간 (몇 번 중 최고 기록, 출력만 하고 검사하지 않음)")
# numba_kernels.im2col is njit(im2col_py): the same source, compiled. To time that source as plain Python we run
# its bytecode with plain-Python globals: every compiled helper it calls replaced by its own Python source too
# (exactly what NUMBA_DISABLE_JIT=1 does for the whole process), and prange by range.
plain_globals = dict(vars(numba_kernels), prange=range)
for name, value in vars(numba_kernels).items():
    if hasattr(value, "py_func"):  # a Numba dispatcher: rebuild its Python function on the plain globals
        plain_globals[name] = types.FunctionType(value.py_func.__code__, plain_globals, name)
im2col_plain = types.FunctionType(numba_kernels.im2col_py.__code__, plain_globals, "im2col_plain")
xs = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)  # small: the interpreted kernel is slow
small = (3, 3, 1, 1, 1, 1, 1, 1, 16, 16)
contenders = {"plain Python (interpreted)": lambda: im2col_plain(xs, *small),
              "Numba njit (im2col)": lambda: numba_kernels.im2col(xs, *small),
              "NumPy twin (as_strided)": lambda: numpy_kernels.im2col(xs, *small)}
shown = {"plain Python (interpreted)": lesson.tr("plain Python (interpreted)", ko="순수 Python (인터프리터)"),
         "Numba njit (im2col)": lesson.tr("Numba njit (im2col)", ko="Numba njit (컴파일된 im2col)"),
         "NumPy twin (as_strided)": lesson.tr("NumPy twin (as_strided)", ko="NumPy 쌍둥이 (as_strided)")}
times_small = interleaved(contenders, repeats=3, number=1, warmup=1)  # best of 3: the least disturbed run
for name, t in times_small.items():
    print(f"    {pad(shown[name], 27)} {ms(t)}")
gap = times_small["plain Python (interpreted)"] / times_small["Numba njit (im2col)"]
lesson.say(f"    on this run the interpreted kernel took {gap:,.0f}x the compiled one"
           f"{' (JIT disabled: both are the interpreter, so about 1x)' if not JIT else ''}; each is the best of 3 runs,\n"
           f"    timed side by side, so a busy machine slows both -- the ratio, not the milliseconds, is the point",
           ko=f"    이번 실행에서 인터프리터로 돈 커널은 컴파일된 커널보다 {gap:,.0f}배 오래 걸렸습니다"
              f"{' (JIT가 꺼져 있어 둘 다 인터프리터이므로 약 1배)' if not JIT else ''}. 각각 3번 중 최고 기록이고\n"
              f"    나란히 번갈아 쟀으므로 기계가 바쁘면 둘 다 느려집니다 -- 중요한 것은 밀리초가 아니라 비율입니다")
reference = im2col_naive(xs, 3, padding=1)  # fcn_scratch.naive: six nested loops, written independently
results = {name: fn() for name, fn in contenders.items()}
for name, cols_ in results.items():
    lesson.check(np.array_equal(cols_, reference), f"{name}: the same columns as the naive six-loop reference",
                 ko=f"{shown[name]}: 6중 루프로 따로 짠 단순한 기준 구현과 같은 열을 낸다")
print(lesson.tr("every kernel, numba vs numpy twin, on x", ko="모든 커널, numba 대 numpy 쌍둥이, 입력 x"), x.shape,
      lesson.tr("(best of 3 side by side; printed, not asserted)", ko="(나란히 3번 중 최고 기록, 출력만 하고 검사하지 않음)"))
kernel_times = {}
for name, args in {"im2col": (x, *conv_args), "col2im": (out["numba"]["im2col"], N, C, H, H, *conv_args),
                   "maxpool_forward": (x, *pool_args),
                   "maxpool_backward": (out["numba"]["maxpool_forward"], out["numba"]["argmax"], H, H)}.items():
    fast, twin = getattr(numba_kernels, name), getattr(numpy_kernels, name)
    kernel_times[name] = t = interleaved({"numba": lambda: fast(*args), "numpy": lambda: twin(*args)},
                                         repeats=3, number=2, warmup=1)
    lesson.say(f"    {name:17s} numba {ms(t['numba'])}   numpy {ms(t['numpy'])}   "
               f"numpy/numba {t['numpy'] / t['numba']:5.1f}x",
               ko=f"    {name:17s} numba {ms(t['numba'])}   numpy {ms(t['numpy'])}   "
                  f"numpy/numba {t['numpy'] / t['numba']:5.1f}배")

# %%
lesson.step("What njit and prange do -- and why the kernels are compiled serial by default",
            ko="njit와 prange가 하는 일, 그리고 커널을 기본으로 직렬 컴파일하는 이유")
lesson.say("""njit compiles a Python function to machine code (LLVM) the first time it is called with new argument
types, one specialisation per signature; cache=True keeps it on disk for the next process. prange is a
range whose iterations may run on several threads when the function is compiled with parallel=True; the
kernels use it only over independent (n, c) planes, so no two threads ever write the same element.""",
           ko="""njit는 Python 함수가 새로운 인자 타입으로 처음 호출될 때 그 함수를 기계어(LLVM)로 컴파일하며,
시그니처마다 특수화(specialisation)를 하나씩 만듭니다. cache=True이면 결과를 디스크에 두어 다음 프로세스가
그대로 씁니다. prange는 함수를 parallel=True로 컴파일했을 때 반복을 여러 스레드에 나눠 돌릴 수 있는
range입니다. 커널은 서로 독립인 (n, c) 평면에 대해서만 prange를 쓰므로, 두 스레드가 같은 원소에 쓰는 일은 없습니다.""")
if JIT:
    before = list(numba_kernels.im2col.signatures)
    x64 = x.astype(np.float64)
    t0 = time.perf_counter()
    numba_kernels.im2col(x64, *conv_args)
    first = time.perf_counter() - t0
    after = list(numba_kernels.im2col.signatures)
    lesson.say(f"first float64 call: {first:.3f} s (compile, or load from the on-disk cache); signatures now "
               f"{[str(s[0].dtype) for s in after]}",
               ko=f"float64로 처음 호출: {first:.3f} s (컴파일, 또는 디스크 캐시에서 불러오기); 이제 시그니처는 "
                  f"{[str(s[0].dtype) for s in after]}")
    lesson.check(len(after) >= len(before) and any(s[0].dtype == numba.float64 for s in after),
                 "a float64 call adds a float64 specialisation beside the float32 one",
                 ko="float64 호출은 float32 특수화 옆에 float64 특수화를 하나 더한다")
    wanted = os.environ.get("FCN_SCRATCH_PARALLEL", "0").strip() not in ("", "0", "false", "no")
    lesson.check(numba_kernels.im2col.targetoptions.get("parallel", False) == wanted,
                 f"the kernels were compiled with parallel={wanted}, as FCN_SCRATCH_PARALLEL="
                 f"{os.environ.get('FCN_SCRATCH_PARALLEL', 'unset')} asks",
                 ko=f"커널은 FCN_SCRATCH_PARALLEL={os.environ.get('FCN_SCRATCH_PARALLEL', 'unset')}에 "
                    f"따라 parallel={wanted}로 컴파일되었다")
else:
    lesson.check(numba_kernels.im2col is numba_kernels.im2col_py,
                 "with NUMBA_DISABLE_JIT=1, njit returns the Python function itself (and prange is range)",
                 ko="NUMBA_DISABLE_JIT=1이면 njit는 Python 함수 자체를 돌려준다 (prange는 range이다)")
lesson.say("""The project's finding (the note at the bottom of fcn_scratch/kernels/numba_kernels.py): the GEMMs between
kernels run on OpenBLAS's thread pool, whose workers spin-wait for a while after each call (about 0.1 s) instead
of sleeping at once. A parallel kernel launched right after a GEMM must fight them for the two cores and stalls
for a scheduler time slice (the project measured ~4 ms instead of ~0.5 ms). A serial kernel leaves the other core
to the spinning worker.""",
           ko="""이 프로젝트가 알아낸 것(fcn_scratch/kernels/numba_kernels.py 맨 아래의 메모): 커널 사이의 GEMM은
OpenBLAS의 스레드 풀에서 도는데, 그 워커(worker)들은 호출이 끝나도 곧바로 잠들지 않고 한동안(약 0.1 s)
스핀 대기(spin-wait)를 합니다. GEMM 바로 뒤에 시작한 병렬 커널은 두 코어를 두고 이 워커들과 다투다가
스케줄러 타임 슬라이스 하나만큼 멈춥니다(프로젝트 측정값: ~0.5 ms 대신 ~4 ms). 직렬 커널은 나머지 코어를
스핀 중인 워커에게 내줍니다.""")
# The spinning is visible without any race: sleep 20 ms right after a GEMM and count the CPU time the process
# (all its threads) burnt meanwhile; then the same after the pool has been idle for 0.2 s. Ratios of CPU time to
# wall time, measured side by side, so a busy machine shifts both.
gemm_w = w.reshape(F, -1)
cols_one = out["numba"]["im2col"][0]  # one image's columns: the per-image GEMM of this layer
blas_threads = max([p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] or [1])


def cpu_while_sleeping(after_gemm, nap=0.02):
    if after_gemm:
        np.matmul(gemm_w, cols_one)
    else:
        time.sleep(0.2)  # longer than OpenBLAS's spin (~0.1 s): its workers are asleep now
    cpu0, wall0 = time.process_time(), time.perf_counter()
    time.sleep(nap)
    return (time.process_time() - cpu0) / (time.perf_counter() - wall0)


busy = {after_gemm: max(cpu_while_sleeping(after_gemm) for _ in range(3)) for after_gemm in (True, False)}
when = {True: lesson.tr("after a GEMM", ko="GEMM 직후"), False: lesson.tr("after 0.2 s idle", ko="0.2 s 쉰 뒤")}
lesson.say(f"    BLAS threads: {blas_threads}; CPU time burnt while the main thread sleeps 20 ms (most of 3, in cores):",
           ko=f"    BLAS 스레드: {blas_threads}개; 메인 스레드가 20 ms 자는 동안 쓰인 CPU 시간 (3번 중 최대, 코어 단위):")
for after_gemm, cores in busy.items():
    lesson.say(f"        {pad(when[after_gemm], 17)} {cores:5.2f} cores busy",
               ko=f"        {pad(when[after_gemm], 17)} 바쁜 코어 {cores:5.2f}개")
if blas_threads > 1 and busy[True] > 5 * busy[False] + 0.05:
    lesson.say("    -> on this run the BLAS workers kept a core busy after the GEMM returned: that is the spin-wait.",
               ko="    -> 이번 실행에서는 GEMM이 끝난 뒤에도 BLAS 워커가 코어 하나를 계속 붙잡았습니다: 이것이 스핀 대기입니다.")
else:
    lesson.say(f"    -> on this run the spin did not show ({blas_threads} BLAS thread(s); on a busy machine, or with "
               "OPENBLAS_NUM_THREADS=1, it may not).",
               ko=f"    -> 이번 실행에서는 스핀이 보이지 않았습니다 (BLAS 스레드 {blas_threads}개; 기계가 바쁘거나 "
                  "OPENBLAS_NUM_THREADS=1이면 보이지 않을 수 있습니다).")
lesson.say(f"    (kernels {'parallel' if numba_kernels.PARALLEL else 'serial'} now; rerun with FCN_SCRATCH_PARALLEL="
           f"{0 if numba_kernels.PARALLEL else 1} to compare the whole lesson's timings)",
           ko=f"    (지금 커널은 {'병렬' if numba_kernels.PARALLEL else '직렬'}입니다; FCN_SCRATCH_PARALLEL="
              f"{0 if numba_kernels.PARALLEL else 1}로 다시 실행해 레슨 전체의 시간을 비교해 보세요)")

# %%
lesson.step("The unsigned-index trick: uintp indices let LLVM vectorise the row loops",
            ko="부호 없는 인덱스 기법: uintp 인덱스 덕분에 LLVM이 행 루프를 벡터화한다")
# The engine's row helper (numba_kernels._copy_row) indexes with uintp(...). With a signed index, Numba must
# handle a negative index the Python way (a[-1] is the last element): every access gets a wraparound test,
# and LLVM can only vectorise the loop with gathers/scatters instead of plain contiguous vector loads.


def copy_row_signed(dst, start, src, src_start, n, step):
    """The same loop as numba_kernels._copy_row, with ordinary (signed) indices."""
    for t in range(n):
        dst[start + t] = src[src_start + t * step]


unsigned_copy = numba.njit(getattr(numba_kernels._copy_row, "py_func", numba_kernels._copy_row))  # uncached build
signed_copy = numba.njit(copy_row_signed)
n = 1_000_000 if JIT else 1000
src, dst_u, dst_s = rng.standard_normal(n), np.empty(n), np.empty(n)
unsigned_copy(dst_u, 0, src, 0, n, 1)
signed_copy(dst_s, 0, src, 0, n, 1)
lesson.check(np.array_equal(dst_u, src) and np.array_equal(dst_s, src), "both copy the row exactly",
             ko="두 함수 모두 행을 정확히 복사한다")
t = interleaved({"signed": lambda: signed_copy(dst_s, 0, src, 0, n, 1),
                 "unsigned": lambda: unsigned_copy(dst_u, 0, src, 0, n, 1)}, repeats=3, number=3, warmup=1)
lesson.say(f"    on this run, copy {n:,} float64: signed indices {ms(t['signed'])}, uintp indices {ms(t['unsigned'])}"
           f"  ({t['signed'] / t['unsigned']:.1f}x)",
           ko=f"    이번 실행에서 float64 {n:,}개 복사: 부호 있는 인덱스 {ms(t['signed'])}, uintp 인덱스 "
              f"{ms(t['unsigned'])}  ({t['signed'] / t['unsigned']:.1f}배)")
if JIT:
    counts = {}
    index_kind = {"signed": lesson.tr("signed", ko="부호 있음"), "unsigned": lesson.tr("unsigned", ko="부호 없음")}
    for name, fn in (("signed", signed_copy), ("unsigned", unsigned_copy)):
        ir = fn.inspect_llvm(fn.signatures[0])
        counts[name] = (len(re.findall(r"load <\d+ x double>", ir)), ir.count("masked.gather"))
        lesson.say(f"    {index_kind[name]:8s} LLVM IR: {counts[name][0]} contiguous vector loads (load <n x double>), "
                   f"{counts[name][1]} masked gathers",
                   ko=f"    {index_kind[name]:8s} LLVM IR: 연속 벡터 로드(load <n x double>) {counts[name][0]}개, "
                      f"마스크 gather(masked gather) {counts[name][1]}개")
    lesson.check(counts["unsigned"][0] > 0 and counts["signed"][0] < counts["unsigned"][0],
                 "with uintp indices LLVM emits contiguous vector loads; with signed ones it cannot",
                 ko="uintp 인덱스이면 LLVM이 연속 벡터 로드를 내보내고, 부호 있는 인덱스이면 그러지 못한다")
else:
    lesson.say("    (JIT disabled: no machine code to inspect; run without NUMBA_DISABLE_JIT to see the IR)",
               ko="    (JIT가 꺼져 있어 들여다볼 기계어가 없습니다; IR을 보려면 NUMBA_DISABLE_JIT 없이 실행하세요)")

# %%
lesson.step("Why the GEMM dominates: count FLOPs and bytes of one conv layer, then time each piece",
            ko="GEMM이 시간을 차지하는 이유: 합성곱 층 하나의 FLOP과 바이트를 세고 조각마다 시간을 잰다")
Ho = Wo = H
K_rows, P = C * 9, Ho * Wo  # rows of the patch matrix (C*kh*kw) and its columns (output pixels)
flops_gemm = 2 * N * F * K_rows * P  # one multiply and one add per (image, filter, tap, pixel)
bytes_cols = N * K_rows * P * 4  # the float32 patch matrix im2col writes (and the GEMM then reads)
bytes_x = x.nbytes
lesson.say(f"conv {C}->{F}, 3x3, padding 1, on {N}x{C}x{H}x{H} float32:",
           ko=f"합성곱(convolution) {C}->{F}, 3x3, 패딩(padding) 1, 입력 {N}x{C}x{H}x{H} float32:")
lesson.say(f"    im2col : reads x ({bytes_x / 1e6:.1f} MB), writes cols {N}x{K_rows}x{P} ({bytes_cols / 1e6:.1f} MB), "
           f"0 FLOPs: pure data movement",
           ko=f"    im2col : x ({bytes_x / 1e6:.1f} MB)를 읽고 cols {N}x{K_rows}x{P} ({bytes_cols / 1e6:.1f} MB)를 씀, "
              f"0 FLOP: 순수한 데이터 이동")
lesson.say(f"    GEMM   : W ({F}x{K_rows}) @ cols -> {flops_gemm / 1e9:.2f} GFLOP on the same {bytes_cols / 1e6:.1f} MB: "
           f"{flops_gemm / bytes_cols:.0f} FLOPs per byte (each column entry meets all {F} filters)",
           ko=f"    GEMM   : W ({F}x{K_rows}) @ cols -> 같은 {bytes_cols / 1e6:.1f} MB로 {flops_gemm / 1e9:.2f} GFLOP: "
              f"바이트당 {flops_gemm / bytes_cols:.0f} FLOP (열의 원소 하나가 필터 {F}개 모두와 만남)")
with kernels.use_backend("numba"):
    y, cache = conv2d_forward(x, w, padding=1)
    cols = cache[3]
lesson.check(cols.shape == (N, K_rows, P) and cols.dtype == np.float32,
             f"the engine's column matrix (cached by conv2d_forward) is N x (C*kh*kw) x (Ho*Wo) = {N} x {K_rows} x "
             f"{P} float32: the GEMM's inner and outer sizes, so FLOPs = 2 x F x (C*kh*kw) x (Ho*Wo) x N",
             ko=f"엔진의 열 행렬(conv2d_forward가 캐시에 둔 것)은 N x (C*kh*kw) x (Ho*Wo) = {N} x {K_rows} x {P} "
                f"float32이다: GEMM의 안쪽과 바깥쪽 크기이므로 FLOP = 2 x F x (C*kh*kw) x (Ho*Wo) x N")
dy = rng.standard_normal(y.shape).astype(np.float32)
dy2 = dy.reshape(N, F, P)
piece_names = {"im2col (fwd)": lesson.tr("im2col (fwd)", ko="im2col (순전파)"),
               "GEMM W @ cols (fwd)": lesson.tr("GEMM W @ cols (fwd)", ko="GEMM W @ cols (순전파)"),
               "GEMM dW = cols dY^T (bwd)": lesson.tr("GEMM dW = cols dY^T (bwd)", ko="GEMM dW = cols dY^T (역전파)"),
               "GEMM W^T dY (bwd)": lesson.tr("GEMM W^T dY (bwd)", ko="GEMM W^T dY (역전파)"),
               "col2im (bwd)": lesson.tr("col2im (bwd)", ko="col2im (역전파)")}
pieces = {  # the engine's own operations for this layer (functional.conv2d_forward / conv2d_backward)
    "im2col (fwd)": lambda: numba_kernels.im2col(x, *conv_args),
    "GEMM W @ cols (fwd)": lambda: np.matmul(gemm_w, cols),
    "GEMM dW = cols dY^T (bwd)": lambda: np.matmul(cols, dy2.transpose(0, 2, 1)).sum(axis=0),
    "GEMM W^T dY (bwd)": lambda: np.matmul(gemm_w.T, dy2),
    "col2im (bwd)": lambda: numba_kernels.col2im(cols, N, C, H, H, *conv_args),
}
times = interleaved(pieces, repeats=3, number=1, warmup=1)
total = sum(times.values())
gemm_share = sum(v for k, v in times.items() if "GEMM" in k) / total
for name, t in times.items():
    rate = f"{flops_gemm / t / 1e9:6.1f} GFLOP/s" if "GEMM" in name else f"{bytes_cols / t / 1e9:6.1f} GB/s  "
    lesson.say(f"    {name:27s} {ms(t)}   {rate}   {100 * t / total:4.1f}% of the layer",
               ko=f"    {pad(piece_names[name], 27)} {ms(t)}   {rate}   층 전체의 {100 * t / total:4.1f}%")
lesson.say(f"    the three GEMMs take {100 * gemm_share:.1f}% of this layer's forward + backward time "
           f"(on this machine, now); `fcn-scratch bench` times every layer",
           ko=f"    GEMM 세 개가 이 층의 순전파 + 역전파 시간 중 {100 * gemm_share:.1f}%를 차지합니다 "
              f"(이 기계에서, 지금); `fcn-scratch bench`는 모든 층의 시간을 잽니다")
if not JIT:
    lesson.say("    (JIT disabled: the kernels run as plain Python loops here, so THEY dominate -- which is exactly why\n"
               "     the engine compiles them; run without NUMBA_DISABLE_JIT to see the GEMM take over)",
               ko="    (JIT가 꺼져 있어 여기서는 커널이 순수 Python 루프로 돌므로 시간을 차지하는 것은 '커널'입니다 -- 바로 그래서\n"
                  "     엔진이 커널을 컴파일합니다; GEMM이 주도권을 가져가는 것을 보려면 NUMBA_DISABLE_JIT 없이 실행하세요)")
with kernels.use_backend("numba"):
    lesson.close(np.matmul(gemm_w, cols).reshape(y.shape), y, "the timed GEMM is exactly what conv2d_forward computes",
                 rtol=1e-6, atol=1e-6, ko="시간을 잰 GEMM은 conv2d_forward가 계산하는 것과 정확히 같다")
# The kernels move each byte once; the GEMM reuses each byte F times, so it is bound by arithmetic and
# runs near the BLAS peak. Making im2col faster barely moves the total: the FLOPs are in the GEMM.

fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [1, 1.5]})
names = list(times_small)
bars = axes[0].bar(range(3), [times_small[k] * 1e3 for k in names], color=["tab:gray", "tab:green", "tab:blue"])
axes[0].bar_label(bars, labels=[f"{times_small[k] * 1e3:.3g} ms" for k in names], fontsize=8)
axes[0].set_yscale("log")
axes[0].set_xticks(range(3), [lesson.label("plain Python\n(interpreted)", ko="순수 Python\n(인터프리터)"),
                              lesson.label("Numba njit\nim2col", ko="Numba njit\n(컴파일된 im2col)"),
                              lesson.label("NumPy twin\nim2col", ko="NumPy 쌍둥이\nim2col")])
axes[0].set_ylabel(lesson.label("time per call (ms, log scale)", ko="호출당 시간 (ms, 로그 척도)"))
axes[0].set_title(lesson.label(f"im2col of a {'x'.join(map(str, xs.shape))} map{'' if JIT else ' (JIT disabled)'}",
                               ko=f"{'x'.join(map(str, xs.shape))} 맵의 im2col{'' if JIT else ' (JIT 꺼짐)'}"))
labels = list(times)
colors = ["tab:orange" if "GEMM" in k else "tab:gray" for k in labels]
bars = axes[1].barh(range(len(labels)), [times[k] * 1e3 for k in labels], color=colors)
axes[1].bar_label(bars, labels=[f"{times[k] * 1e3:.3g} ms ({100 * times[k] / total:.1f}%)" for k in labels],
                  fontsize=8, padding=3)
axes[1].set_xlim(0, 1.2 * max(times.values()) * 1e3)
axes[1].set_yticks(range(len(labels)), [lesson.label(k, ko=piece_names[k]) for k in labels], fontsize=9)
axes[1].invert_yaxis()
axes[1].set_xlabel(lesson.label("time per call (ms)", ko="호출당 시간 (ms)"))
axes[1].set_title(lesson.label(f"conv {C}->{F} 3x3 on {N}x{C}x{H}x{H}: forward + backward pieces\n"
                               f"orange = GEMM ({flops_gemm / 1e9:.2f} GFLOP each), grey = data movement",
                               ko=f"합성곱 {C}->{F} 3x3, 입력 {N}x{C}x{H}x{H}: 순전파 + 역전파의 조각들\n"
                                  f"주황 = GEMM (각 {flops_gemm / 1e9:.2f} GFLOP), 회색 = 데이터 이동"))
fig.tight_layout()
fig.suptitle(lesson.label("Timings on this machine at this moment (printed, never asserted)",
                          ko="이 기계에서 지금 잰 시간 (출력만 하고 검사하지 않음)"), fontsize=11, y=1.02)
lesson.save(fig, "timings")

# %%
lesson.step("Data parallelism: two threads, two replicas, one set of weights",
            ko="데이터 병렬: 스레드 둘, 복제본 둘, 가중치(weight)는 한 벌")
# A small float64 FCN-8s, so that "the same numbers" can be checked to 1e-10. eval(): dropout off (in training
# each shard draws its own dropout masks, so the two ways would drop different channels).
model = FCN8s(3, widths=(4, 8, 8, 8, 8), convs_per_block=(1, 1, 1, 1, 1), fc_channels=16, dtype=np.float64,
              seed=0).eval()
for name, p, _ in model.named_parameters():
    if name.startswith("score"):  # score layers start at zero (lesson 08); random ones give every layer a gradient
        p[...] = rng.standard_normal(p.shape) * 0.3
S = 32 if JIT else 16
xb = rng.standard_normal((4, 3, S, S))
labels = rng.integers(0, 3, (4, S, S))
labels[0, : 5 * S // 8] = 255  # ignored pixels, unevenly spread: the shards get different numbers of valid ones
labels[3] = 255                # (image 3 counts for nothing at all)

# One thread: the textbook step -- the whole batch forward, the loss, the whole batch backward.
criterion = SoftmaxCrossEntropy(ignore_index=255)
loss_one = criterion.forward(model.forward(xb), labels)
model.backward(criterion.backward())
grads_one = model.grad_dict()  # copies: the parallel step below overwrites model.grads
lesson.check(all(g.any() for g in grads_one.values()),
             f"all {len(grads_one)} gradients are non-zero (so agreeing below is not 0 == 0)",
             ko=f"기울기(gradient) {len(grads_one)}개가 모두 0이 아니다 (그래서 아래의 일치는 0 == 0을 확인하는 것이 아니다)")

# The split. A layer keeps its forward cache on itself, so two threads cannot run one model object at once:
# each thread gets a replica (a deep copy) whose parameter arrays are re-pointed at the model's own arrays.
dp = DataParallel(model, threads=2, min_shard_pixels=1)  # split even this small batch
bounds = shard_bounds(len(xb), dp.threads)
valid = [int(np.count_nonzero(labels[a:b] != 255)) for a, b in bounds]
V = sum(valid)
with no_grad():  # each shard's own mean loss L_s, for the printout (a forward only)
    shard_losses = [SoftmaxCrossEntropy().forward(model.forward(xb[a:b]), labels[a:b]) for a, b in bounds]
lesson.say(f"batch of {len(xb)} images {S}x{S}, {V} valid pixels in all; {dp.threads} threads, contiguous shards:",
           ko=f"배치(batch): {S}x{S} 이미지 {len(xb)}장, 유효 픽셀(pixel)은 모두 {V}개; 스레드 {dp.threads}개, "
              f"연속된 샤드(shard):")
for s, ((a, b), v, ls) in enumerate(zip(bounds, valid, shard_losses)):
    lesson.say(f"    shard {s}: images [{a}, {b}), thread {s} (replica {s}{' = the model itself' if s == 0 else ''}): "
               f"V_s = {v:5d} valid pixels, weight V_s/V = {v / V:.4f}, its mean loss L_s = {ls:.6f}",
               ko=f"    샤드 {s}: 이미지 [{a}, {b}), 스레드 {s} (복제본 {s}{' = 모델 자신' if s == 0 else ''}): "
                  f"유효 픽셀 V_s = {v:5d}개, 가중치 V_s/V = {v / V:.4f}, 샤드의 평균 손실(loss) L_s = {ls:.6f}")
lesson.say("""The batch loss is the mean over ALL valid pixels, so a shard's mean must be weighted by its pixel count:
    L = (1/V) sum_p l_p = sum_s (V_s/V) * [(1/V_s) sum_(p in s) l_p] = sum_s (V_s/V) L_s,   hence dL/dL_s = V_s/V.
Each thread starts its backward from dloss = V_s/V (criterion.backward(V_s / V)); the weights are shared, so by
the chain rule dL/dW = sum_s (V_s/V) dL_s/dW: add the threads' gradients and nothing else.""",
           ko="""배치 손실은 '모든' 유효 픽셀에 대한 평균이므로, 샤드의 평균 손실은 그 샤드의 픽셀 수로 가중해야 합니다:
    L = (1/V) sum_p l_p = sum_s (V_s/V) * [(1/V_s) sum_(p in s) l_p] = sum_s (V_s/V) L_s,   따라서 dL/dL_s = V_s/V.
각 스레드는 dloss = V_s/V (criterion.backward(V_s / V))에서 역전파를 시작합니다. 가중치는 공유되므로
연쇄 법칙(chain rule)에 따라 dL/dW = sum_s (V_s/V) dL_s/dW입니다: 스레드들의 기울기를 더하기만 하면 됩니다.""")
weighted = sum(v / V * ls for v, ls in zip(valid, shard_losses))
naive = sum(shard_losses) / len(shard_losses)
lesson.say(f"    sum_s (V_s/V) L_s = {weighted:.10f}   one-thread loss = {loss_one:.10f}   "
           f"plain mean of the L_s = {naive:.10f} (wrong)",
           ko=f"    sum_s (V_s/V) L_s = {weighted:.10f}   단일 스레드 손실 = {loss_one:.10f}   "
              f"L_s의 단순 평균 = {naive:.10f} (틀림)")
lesson.close(weighted, loss_one, "weighting each shard's mean loss by V_s/V gives the batch loss",
             ko="샤드마다 평균 손실에 V_s/V를 곱해 더하면 배치 손실이 된다")
lesson.check(abs(naive - loss_one) > 1e-3,
             "averaging the shard losses with equal weights would not (the shards have different V_s)",
             ko="샤드 손실을 같은 가중치로 평균하면 그렇지 않다 (샤드마다 V_s가 다르다)")

loss_two = dp.loss_and_grads(xb, labels)  # both threads at once; leaves the summed gradients in model.grads
grads_two = model.grad_dict()
worst = max(grads_one, key=lambda k: np.abs(grads_two[k] - grads_one[k]).max() / np.abs(grads_one[k]).max())
lesson.say(f"    2 threads: loss {loss_two:.15f} vs one thread {loss_one:.15f}; largest relative gradient "
           f"difference {np.abs(grads_two[worst] - grads_one[worst]).max() / np.abs(grads_one[worst]).max():.1e} "
           f"({worst}): the summation order, nothing more",
           ko=f"    스레드 2개: 손실 {loss_two:.15f}, 스레드 1개: {loss_one:.15f}; 기울기의 최대 상대 차이 "
              f"{np.abs(grads_two[worst] - grads_one[worst]).max() / np.abs(grads_one[worst]).max():.1e} "
              f"({worst}): 더하는 순서 차이일 뿐입니다")
lesson.close(loss_two, loss_one, "DataParallel(threads=2) gives the single-thread loss", rtol=1e-12,
             ko="DataParallel(threads=2)는 단일 스레드와 같은 손실을 낸다")
lesson.close(np.concatenate([grads_two[k].ravel() for k in grads_one]),
             np.concatenate([g.ravel() for g in grads_one.values()]),
             f"... and all {len(grads_one)} gradients (summed over the shards) to rtol 1e-10", rtol=1e-10, atol=1e-13,
             ko=f"... 그리고 (샤드들에 걸쳐 더한) 기울기 {len(grads_one)}개도 모두 rtol 1e-10 안에서 같다")

replica = dp.replicas[1]
own = [p for _, p, _ in model.named_parameters()]
theirs = [p for _, p, _ in replica.named_parameters()]
lesson.say(f"    replica 1 is a different object (it has its own caches and its own grads: "
           f"{replica.conv1_1.grads['weight'] is not model.conv1_1.grads['weight']}), but its "
           f"{len(theirs)} parameter arrays are the model's: an optimiser step on the model updates every replica",
           ko=f"    복제본 1은 다른 객체이지만 (캐시와 grads를 따로 가집니다: "
              f"{replica.conv1_1.grads['weight'] is not model.conv1_1.grads['weight']}), 파라미터(parameter) 배열 "
              f"{len(theirs)}개는 모델의 것입니다: 모델에 옵티마이저 스텝을 한 번 실행하면 모든 복제본이 갱신됩니다")
lesson.check(replica is not model and all(a is b for a, b in zip(own, theirs)),
             "replica.params[...] IS model.params[...] (the same arrays, not copies): one set of weights",
             ko="replica.params[...]는 model.params[...] 그 자체이다 (복사본이 아니라 같은 배열): 가중치는 한 벌이다")
dp.close()

# Timing: the tiny float32 FCN-8s of `fcn-scratch train`. Three ways to run one training step:
#  * threads=1: the calling thread does everything; only the GEMMs use both cores (OpenBLAS's own threads);
#    the Numba kernels, the loss and the Python between the layers run on one core.
#  * the same with BLAS held to one thread: truly one core -- the work the two threads divide between them.
#  * threads=2: each core runs half the batch through every layer, kernels included. BLAS is held to one
#    thread per call (two threads each with a 2-thread BLAS would put four busy threads on two cores), and
#    the Numba kernels are compiled nogil=True: inside a kernel (or a GEMM) a thread has let go of Python's GIL,
#    so the other thread runs at the same time instead of waiting for its turn.
B, T = (8, 32) if JIT else (2, 8)  # without the JIT every kernel is a Python loop: a tiny step
tiny = FCN8s(TINY_CLASSES, **TINY_NET, seed=0).eval()  # dropout off: all three compute the very same step
xt = rng.standard_normal((B, 3, T, T)).astype(np.float32)
lt = rng.integers(0, TINY_CLASSES, (B, T, T))
steppers = {1: DataParallel(tiny, threads=1), 2: DataParallel(tiny, threads=2)}


def one_core_step():
    with threadpool_limits(limits=1, user_api="blas"):
        steppers[1].loss_and_grads(xt, lt, input_grad=False)


step_times = interleaved({"threads=1": lambda: steppers[1].loss_and_grads(xt, lt, input_grad=False),
                          "threads=1, one BLAS thread": one_core_step,
                          "threads=2": lambda: steppers[2].loss_and_grads(xt, lt, input_grad=False)},
                         repeats=3 if JIT else 1, number=1, warmup=0)
lesson.say(f"one training step (forward, loss, backward) of the tiny FCN-8s on {B}x3x{T}x{T} float32, "
           f"{usable_cpus()} CPUs (printed, not asserted):",
           ko=f"작은 FCN-8s의 학습(training) 한 스텝 (순전파, 손실, 역전파), 입력 {B}x3x{T}x{T} float32, "
              f"CPU {usable_cpus()}개 (출력만 하고 검사하지 않음):")
step_names = {"threads=1": "threads=1", "threads=1, one BLAS thread": lesson.tr("threads=1, one BLAS thread",
                                                                                ko="threads=1, BLAS 스레드 1개"),
              "threads=2": "threads=2"}
for name, t in step_times.items():
    print(f"    {pad(step_names[name], 27)} {ms(t)}")
lesson.say(f"    on this run threads=2 vs threads=1: {step_times['threads=1'] / step_times['threads=2']:.2f}x; "
           f"vs one core: {step_times['threads=1, one BLAS thread'] / step_times['threads=2']:.2f}x (2.00x is the ceiling)",
           ko=f"    이번 실행에서 threads=2의 속도 향상: threads=1 대비 {step_times['threads=1'] / step_times['threads=2']:.2f}배, "
              f"코어 하나 대비 {step_times['threads=1, one BLAS thread'] / step_times['threads=2']:.2f}배 "
              f"(상한은 2.00배)")
lesson.say("""    Two threads win where threads=1 left a core idle (the kernels, the Python glue); inside the GEMMs
    threads=1 already had both cores, so expect less than 2x -- and on a machine busy with other jobs, perhaps
    nothing. The two threads also share one memory bus, and the gradients are summed after the step.""",
           ko="""    스레드 두 개가 이득을 보는 곳은 threads=1이 코어 하나를 놀리던 부분(커널, 층 사이의 Python 코드)입니다. GEMM 안에서는
    threads=1도 이미 두 코어를 다 썼으므로 2배보다 적게 빨라집니다 -- 다른 작업으로 바쁜 기계라면 전혀
    빨라지지 않을 수도 있습니다. 두 스레드는 메모리 버스 하나를 함께 쓰고, 스텝이 끝난 뒤 기울기를 더하는 일도 남습니다.""")
if not JIT:
    lesson.say("    (JIT disabled: the kernels are plain Python and hold the GIL, so the threads mostly take turns)",
               ko="    (JIT가 꺼져 있어 커널이 순수 Python이고 GIL을 쥐고 있으므로, 스레드들은 대부분 번갈아 실행됩니다)")
step_one = (steppers[1].loss_and_grads(xt, lt, input_grad=False), tiny.grad_dict())
step_two = (steppers[2].loss_and_grads(xt, lt, input_grad=False), tiny.grad_dict())
steppers[2].close()
lesson.close(np.concatenate([[step_two[0]], *(g.ravel() for g in step_two[1].values())]),
             np.concatenate([[step_one[0]], *(g.ravel() for g in step_one[1].values())]),
             "the timed steps compute the same loss and gradients (float32: up to rounding)",
             ko="시간을 잰 스텝들은 같은 손실과 기울기를 계산한다 (float32: 반올림 오차 안에서)",
             rtol=1e-4, atol=1e-5 * max(np.abs(g).max() for g in step_one[1].values()))

# %%
lesson.step("Inference needs no column matrix: unfold a band of rows at a time",
            ko="추론(inference)에는 열 행렬이 필요 없다: 행을 띠 하나씩 펼친다")
# conv2d_forward keeps every layer's column matrix for the backward pass (dW = cols dY^T); the Conv2d layer
# trains through fcn_scratch.fastconv instead, which keeps x and unfolds it again in backward, a chunk of
# images at a time, to save that memory. Inference has no backward,
# so Conv2d.forward under no_grad() calls conv2d_inference: per image, a band of output rows is unfolded into a
# small column block and its GEMM runs at once, while the block is still in the CPU cache: the bytes im2col just
# wrote are read back from the cache instead of from main memory. (~4 MiB: small enough to stay cached, big
# enough that each band's GEMM still runs at full speed.)
HB = 128 if JIT else 16  # a bigger map than x: this layer at 128x128, like an early VGG layer
band_bytes = INFERENCE_BAND_BYTES if JIT else 24 * 2**10  # (without the JIT: a small map, so smaller bands)
xi = rng.standard_normal((1, C, HB, HB)).astype(np.float32)
K_rows = C * 9
rows_per_band = max(1, band_bytes // (K_rows * HB * xi.itemsize))  # as conv2d_inference computes it
n_bands = math.ceil(HB / rows_per_band)
full_bytes = K_rows * HB * HB * xi.itemsize
lesson.say(f"conv {C}->{F} 3x3, padding 1, on 1x{C}x{HB}x{HB} float32:",
           ko=f"합성곱 {C}->{F} 3x3, 패딩 1, 입력 1x{C}x{HB}x{HB} float32:")
lesson.say(f"    whole column matrix: {K_rows} x {HB * HB} = {full_bytes / 1e6:.2f} MB "
           f"(9x the input's {xi.nbytes / 1e6:.2f} MB)",
           ko=f"    열 행렬 전체: {K_rows} x {HB * HB} = {full_bytes / 1e6:.2f} MB "
              f"(입력 {xi.nbytes / 1e6:.2f} MB의 9배)")
lesson.say(f"    band of {band_bytes / 2**20:.3g} MiB: {rows_per_band} output rows = {K_rows} x {rows_per_band * HB} "
           f"columns ({rows_per_band * HB * K_rows * xi.itemsize / 1e6:.2f} MB), so the layer is cut into {n_bands} bands",
           ko=f"    {band_bytes / 2**20:.3g} MiB짜리 띠: 출력 행 {rows_per_band}개 = {K_rows} x {rows_per_band * HB} "
              f"열 ({rows_per_band * HB * K_rows * xi.itemsize / 1e6:.2f} MB), 그래서 층을 띠 {n_bands}개로 자릅니다")
y_full = conv2d_forward(xi, w, padding=1)[0]
# Watch the engine at work: conv2d_inference calls kernels.im2col once per band; count the calls and their sizes.
band_shapes, engine_im2col = [], kernels.im2col


def counting_im2col(*args):
    cols_ = engine_im2col(*args)
    band_shapes.append(cols_.shape)
    return cols_


kernels.im2col = counting_im2col
try:
    y_band = conv2d_inference(xi, w, padding=1, band_bytes=band_bytes)
finally:
    kernels.im2col = engine_im2col
lesson.say(f"    conv2d_inference called im2col {len(band_shapes)} times, on column blocks "
           f"{sorted({s_[1:] for s_ in band_shapes})} (rows x columns)",
           ko=f"    conv2d_inference는 im2col을 {len(band_shapes)}번 불렀고, 열 블록은 "
              f"{sorted({s_[1:] for s_ in band_shapes})} (행 x 열)였습니다")
lesson.check(len(band_shapes) == n_bands > 1 and sum(s_[2] for s_ in band_shapes) == HB * HB and
             max(s_[1] * s_[2] for s_ in band_shapes) * xi.itemsize <= band_bytes,
             f"the engine unfolded the map in {n_bands} bands (not the whole-image fallback), each within "
             f"{band_bytes / 2**20:.3g} MiB, together covering all {HB}x{HB} output pixels once",
             ko=f"엔진은 맵을 띠 {n_bands}개로 펼쳤다 (이미지 전체를 한 번에 펼치는 대체 경로가 아니다). 띠마다 "
                f"{band_bytes / 2**20:.3g} MiB 이내이고, 모두 합쳐 {HB}x{HB} 출력 픽셀을 한 번씩 덮는다")
lesson.close(y_band, y_full, "conv2d_inference (band by band) == conv2d_forward(...)[0]", rtol=1e-5, atol=1e-5,
             ko="conv2d_inference (띠 하나씩) == conv2d_forward(...)[0]")
# Arrays allocated by NumPy (and by Numba kernels) are reported to tracemalloc: its peak is what each way held.
peaks = {}
for name, fn in (("conv2d_forward", lambda: conv2d_forward(xi, w, padding=1)),
                 ("conv2d_inference", lambda: conv2d_inference(xi, w, padding=1, band_bytes=band_bytes))):
    tracemalloc.start()
    fn()
    peaks[name] = tracemalloc.get_traced_memory()[1] - y_full.nbytes  # minus the output both must hold
    tracemalloc.stop()
inf_times = interleaved({"conv2d_forward": lambda: conv2d_forward(xi, w, padding=1),
                         "conv2d_inference": lambda: conv2d_inference(xi, w, padding=1, band_bytes=band_bytes)},
                        repeats=3 if JIT else 1, number=1, warmup=0)
for name in peaks:
    lesson.say(f"    {name:17s} {ms(inf_times[name])}   peak memory beside the output {peaks[name] / 1e6:6.2f} MB",
               ko=f"    {name:17s} {ms(inf_times[name])}   출력 외에 쓴 최대 메모리 {peaks[name] / 1e6:6.2f} MB")
lesson.say(f"    banded / whole: {inf_times['conv2d_inference'] / inf_times['conv2d_forward']:.2f}x the time (printed, "
           f"not asserted), {peaks['conv2d_inference'] / peaks['conv2d_forward']:.2f}x the memory",
           ko=f"    띠 단위 / 전체: 시간은 {inf_times['conv2d_inference'] / inf_times['conv2d_forward']:.2f}배 (출력만 하고 "
              f"검사하지 않음), 메모리는 {peaks['conv2d_inference'] / peaks['conv2d_forward']:.2f}배")
if not JIT:
    lesson.say("    (JIT disabled: the plain-Python im2col dominates both; the cache effect needs the compiled kernel)",
               ko="    (JIT가 꺼져 있어 순수 Python im2col이 양쪽 시간을 다 차지합니다; 캐시 효과를 보려면 컴파일된 커널이 "
                  "필요합니다)")
lesson.check(peaks["conv2d_inference"] < full_bytes / 2 <= peaks["conv2d_forward"],
             "the banded forward never holds even half the column matrix; conv2d_forward holds all of it",
             ko="띠 단위 순전파는 열 행렬의 절반도 한꺼번에 쥐지 않는다. conv2d_forward는 전부를 쥔다")

# %%
lesson.done(summary=[
    ("The Numba kernels and their NumPy twins compute the same numbers, and all three im2col builds (interpreted, "
     "njit, NumPy) match an independent six-loop reference.",
     "Numba 커널과 NumPy 쌍둥이는 같은 숫자를 계산하고, im2col의 세 빌드(인터프리터, njit, NumPy)는 모두 따로 짠 "
     "6중 루프 기준 구현과 일치한다."),
    ("A float64 call gives the compiled kernel a second specialisation; the parallel flag follows "
     "FCN_SCRATCH_PARALLEL.",
     "float64로 호출하면 컴파일된 커널에 두 번째 특수화가 생기고, parallel 플래그는 FCN_SCRATCH_PARALLEL을 따른다."),
    ("With uintp indices LLVM emits contiguous vector loads for the row copy; with signed ones it does not.",
     "uintp 인덱스이면 LLVM은 행 복사에 연속 벡터 로드를 내보내고, 부호 있는 인덱스이면 그러지 않는다."),
    ("The GEMM the lesson times is exactly conv2d_forward's product; its column matrix is N x C*kh*kw x Ho*Wo.",
     "레슨이 시간을 잰 GEMM은 conv2d_forward의 곱과 정확히 같고, 그 열 행렬은 N x C*kh*kw x Ho*Wo이다."),
    ("Splitting a batch over two threads with shard weights V_s/V gives the single-thread loss and gradients; the "
     "replicas share one set of weight arrays.",
     "배치를 두 스레드에 나누고 샤드 가중치 V_s/V를 곱하면 단일 스레드와 같은 손실과 기울기가 나오며, 복제본들은 "
     "가중치 배열 한 벌을 공유한다."),
    ("conv2d_inference unfolds the map in bands, gives conv2d_forward's output, and never holds half its column "
     "matrix.",
     "conv2d_inference는 맵을 띠 단위로 펼쳐 conv2d_forward와 같은 출력을 내며, 열 행렬의 절반도 한꺼번에 쥐지 "
     "않는다."),
], exercises=[])

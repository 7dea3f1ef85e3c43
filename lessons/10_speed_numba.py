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

# %%
from _common import Lesson  # first: puts the repo on sys.path, picks a headless backend

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

lesson = Lesson("10_speed_numba", "Speed: Numba kernels beside their NumPy twins, and why the GEMM dominates")
rng = np.random.default_rng(10)
JIT = not numba.config.DISABLE_JIT  # NUMBA_DISABLE_JIT=1 runs every kernel as plain Python (slow, smaller sizes)
N = 4 if JIT else 1
print(f"Numba JIT {'on' if JIT else 'OFF (NUMBA_DISABLE_JIT=1): plain Python everywhere, sizes reduced'}; "
      f"default backend {kernels.get_backend()!r}; "
      f"kernels compiled {'parallel' if numba_kernels.PARALLEL else 'serial'}")


def ms(seconds):
    return f"{seconds * 1e3:9.3f} ms"


# A layer of the tiny FCN's third block: 64 -> 128 channels, 3x3, padding 1, on 32x32 maps, float32
# (a quarter of that without the JIT, where every kernel is a plain Python loop).
C, F, H = (64, 128, 32) if JIT else (16, 32, 16)
x = rng.standard_normal((N, C, H, H)).astype(np.float32)
conv_args = (3, 3, 1, 1, 1, 1, 1, 1, H, H)  # kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo
pool_args = (2, 2, 2, 2, 0, 0, 1, 1, H // 2, H // 2)

# %%
lesson.step("Two backends, one switch: the Numba kernels and their NumPy twins compute the same numbers")
out = {}
for backend in ("numba", "numpy"):
    with kernels.use_backend(backend):  # or kernels.set_backend(...), or FCN_SCRATCH_BACKEND=numpy
        cols = kernels.im2col(x, *conv_args)
        pooled, argmax = kernels.maxpool_forward(x, *pool_args)
        out[backend] = dict(im2col=cols, col2im=kernels.col2im(cols, N, C, H, H, *conv_args),
                            maxpool_forward=pooled, argmax=argmax,
                            maxpool_backward=kernels.maxpool_backward(pooled, argmax, H, H))
print(f"x {x.shape} float32 -> im2col {out['numba']['im2col'].shape}, max-pool {out['numba']['maxpool_forward'].shape}")
for name in ("im2col", "maxpool_forward", "argmax", "maxpool_backward"):
    lesson.check(np.array_equal(out["numba"][name], out["numpy"][name]), f"{name}: numba == numpy, bit for bit")
# col2im sums up to 9 overlapping taps per pixel; the two backends add them in different orders.
lesson.close(out["numba"]["col2im"], out["numpy"]["col2im"], "col2im: numba == numpy up to float32 rounding",
             rtol=1e-5, atol=1e-5)
w = (rng.standard_normal((F, C, 3, 3)) * 0.05).astype(np.float32)
grads = {}
for backend in ("numba", "numpy"):
    with kernels.use_backend(backend):
        y, cache = conv2d_forward(x, w, padding=1)
        grads[backend] = (y, *conv2d_backward(np.ones_like(y), cache)[:2])
lesson.check(all(np.allclose(a, b, rtol=1e-5, atol=1e-4) for a, b in zip(grads["numba"], grads["numpy"])),
             "a whole Conv2d forward and backward agree on both backends")

# %%
lesson.step("Plain Python, njit, NumPy twin: the same im2col, timed (best of a few runs; printed, not asserted)")
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
times_small = interleaved(contenders, repeats=3, number=1, warmup=1)  # best of 3: the least disturbed run
for name, t in times_small.items():
    print(f"    {name:27s} {ms(t)}")
gap = times_small["plain Python (interpreted)"] / times_small["Numba njit (im2col)"]
print(f"    on this run the interpreted kernel took {gap:,.0f}x the compiled one"
      f"{' (JIT disabled: both are the interpreter, so about 1x)' if not JIT else ''}; each is the best of 3 runs,\n"
      f"    timed side by side, so a busy machine slows both -- the ratio, not the milliseconds, is the point")
reference = im2col_naive(xs, 3, padding=1)  # fcn_scratch.naive: six nested loops, written independently
results = {name: fn() for name, fn in contenders.items()}
for name, cols_ in results.items():
    lesson.check(np.array_equal(cols_, reference), f"{name}: the same columns as the naive six-loop reference")
print("every kernel, numba vs numpy twin, on x", x.shape, "(best of 3 side by side; printed, not asserted)")
kernel_times = {}
for name, args in {"im2col": (x, *conv_args), "col2im": (out["numba"]["im2col"], N, C, H, H, *conv_args),
                   "maxpool_forward": (x, *pool_args),
                   "maxpool_backward": (out["numba"]["maxpool_forward"], out["numba"]["argmax"], H, H)}.items():
    fast, twin = getattr(numba_kernels, name), getattr(numpy_kernels, name)
    kernel_times[name] = t = interleaved({"numba": lambda: fast(*args), "numpy": lambda: twin(*args)},
                                         repeats=3, number=2, warmup=1)
    print(f"    {name:17s} numba {ms(t['numba'])}   numpy {ms(t['numpy'])}   "
          f"numpy/numba {t['numpy'] / t['numba']:5.1f}x")

# %%
lesson.step("What njit and prange do -- and why the kernels are compiled serial by default")
print("""njit compiles a Python function to machine code (LLVM) the first time it is called with new argument
types, one specialisation per signature; cache=True keeps it on disk for the next process. prange is a
range whose iterations may run on several threads when the function is compiled with parallel=True; the
kernels use it only over independent (n, c) planes, so no two threads ever write the same element.""")
if JIT:
    before = list(numba_kernels.im2col.signatures)
    x64 = x.astype(np.float64)
    t0 = time.perf_counter()
    numba_kernels.im2col(x64, *conv_args)
    first = time.perf_counter() - t0
    after = list(numba_kernels.im2col.signatures)
    print(f"first float64 call: {first:.3f} s (compile, or load from the on-disk cache); signatures now "
          f"{[str(s[0].dtype) for s in after]}")
    lesson.check(len(after) >= len(before) and any(s[0].dtype == numba.float64 for s in after),
                 "a float64 call adds a float64 specialisation beside the float32 one")
    wanted = os.environ.get("FCN_SCRATCH_PARALLEL", "0").strip() not in ("", "0", "false", "no")
    lesson.check(numba_kernels.im2col.targetoptions.get("parallel", False) == wanted,
                 f"the kernels were compiled with parallel={wanted}, as FCN_SCRATCH_PARALLEL="
                 f"{os.environ.get('FCN_SCRATCH_PARALLEL', 'unset')} asks")
else:
    lesson.check(numba_kernels.im2col is numba_kernels.im2col_py,
                 "with NUMBA_DISABLE_JIT=1, njit returns the Python function itself (and prange is range)")
print("""The project's finding (the note at the bottom of fcn_scratch/kernels/numba_kernels.py): the GEMMs between
kernels run on OpenBLAS's thread pool, whose workers spin-wait for a while after each call (about 0.1 s) instead
of sleeping at once. A parallel kernel launched right after a GEMM must fight them for the two cores and stalls
for a scheduler time slice (the project measured ~4 ms instead of ~0.5 ms). A serial kernel leaves the other core
to the spinning worker.""")
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


busy = {label: max(cpu_while_sleeping(flag) for _ in range(3)) for label, flag in (("after a GEMM", True),
                                                                                  ("after 0.2 s idle", False))}
print(f"    BLAS threads: {blas_threads}; CPU time burnt while the main thread sleeps 20 ms (most of 3, in cores):")
for label, cores in busy.items():
    print(f"        {label:17s} {cores:5.2f} cores busy")
if blas_threads > 1 and busy["after a GEMM"] > 5 * busy["after 0.2 s idle"] + 0.05:
    print("    -> on this run the BLAS workers kept a core busy after the GEMM returned: that is the spin-wait.")
else:
    print(f"    -> on this run the spin did not show ({blas_threads} BLAS thread(s); on a busy machine, or with "
          "OPENBLAS_NUM_THREADS=1, it may not).")
print(f"    (kernels {'parallel' if numba_kernels.PARALLEL else 'serial'} now; rerun with FCN_SCRATCH_PARALLEL="
      f"{0 if numba_kernels.PARALLEL else 1} to compare the whole lesson's timings)")

# %%
lesson.step("The unsigned-index trick: uintp indices let LLVM vectorise the row loops")
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
lesson.check(np.array_equal(dst_u, src) and np.array_equal(dst_s, src), "both copy the row exactly")
t = interleaved({"signed": lambda: signed_copy(dst_s, 0, src, 0, n, 1),
                 "unsigned": lambda: unsigned_copy(dst_u, 0, src, 0, n, 1)}, repeats=3, number=3, warmup=1)
print(f"    on this run, copy {n:,} float64: signed indices {ms(t['signed'])}, uintp indices {ms(t['unsigned'])}"
      f"  ({t['signed'] / t['unsigned']:.1f}x)")
if JIT:
    counts = {}
    for name, fn in (("signed", signed_copy), ("unsigned", unsigned_copy)):
        ir = fn.inspect_llvm(fn.signatures[0])
        counts[name] = (len(re.findall(r"load <\d+ x double>", ir)), ir.count("masked.gather"))
        print(f"    {name:8s} LLVM IR: {counts[name][0]} contiguous vector loads (load <n x double>), "
              f"{counts[name][1]} masked gathers")
    lesson.check(counts["unsigned"][0] > 0 and counts["signed"][0] < counts["unsigned"][0],
                 "with uintp indices LLVM emits contiguous vector loads; with signed ones it cannot")
else:
    print("    (JIT disabled: no machine code to inspect; run without NUMBA_DISABLE_JIT to see the IR)")

# %%
lesson.step("Why the GEMM dominates: count FLOPs and bytes of one conv layer, then time each piece")
Ho = Wo = H
K_rows, P = C * 9, Ho * Wo  # rows of the patch matrix (C*kh*kw) and its columns (output pixels)
flops_gemm = 2 * N * F * K_rows * P  # one multiply and one add per (image, filter, tap, pixel)
bytes_cols = N * K_rows * P * 4  # the float32 patch matrix im2col writes (and the GEMM then reads)
bytes_x = x.nbytes
print(f"conv {C}->{F}, 3x3, padding 1, on {N}x{C}x{H}x{H} float32:")
print(f"    im2col : reads x ({bytes_x / 1e6:.1f} MB), writes cols {N}x{K_rows}x{P} ({bytes_cols / 1e6:.1f} MB), "
      f"0 FLOPs: pure data movement")
print(f"    GEMM   : W ({F}x{K_rows}) @ cols -> {flops_gemm / 1e9:.2f} GFLOP on the same {bytes_cols / 1e6:.1f} MB: "
      f"{flops_gemm / bytes_cols:.0f} FLOPs per byte (each column entry meets all {F} filters)")
with kernels.use_backend("numba"):
    y, cache = conv2d_forward(x, w, padding=1)
    cols = cache[3]
lesson.check(cols.shape == (N, K_rows, P) and cols.dtype == np.float32,
             f"the engine's column matrix (cached by conv2d_forward) is N x (C*kh*kw) x (Ho*Wo) = {N} x {K_rows} x "
             f"{P} float32: the GEMM's inner and outer sizes, so FLOPs = 2 x F x (C*kh*kw) x (Ho*Wo) x N")
dy = rng.standard_normal(y.shape).astype(np.float32)
dy2 = dy.reshape(N, F, P)
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
    print(f"    {name:27s} {ms(t)}   {rate}   {100 * t / total:4.1f}% of the layer")
print(f"    the three GEMMs take {100 * gemm_share:.1f}% of this layer's forward + backward time "
      f"(on this machine, now); `fcn-scratch bench` times every layer")
if not JIT:
    print("    (JIT disabled: the kernels run as plain Python loops here, so THEY dominate -- which is exactly why\n"
          "     the engine compiles them; run without NUMBA_DISABLE_JIT to see the GEMM take over)")
with kernels.use_backend("numba"):
    lesson.close(np.matmul(gemm_w, cols).reshape(y.shape), y, "the timed GEMM is exactly what conv2d_forward computes",
                 rtol=1e-6, atol=1e-6)
# The kernels move each byte once; the GEMM reuses each byte F times, so it is bound by arithmetic and
# runs near the BLAS peak. Making im2col faster barely moves the total: the FLOPs are in the GEMM.

fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [1, 1.5]})
names = list(times_small)
bars = axes[0].bar(range(3), [times_small[k] * 1e3 for k in names], color=["tab:gray", "tab:green", "tab:blue"])
axes[0].bar_label(bars, labels=[f"{times_small[k] * 1e3:.3g} ms" for k in names], fontsize=8)
axes[0].set_yscale("log")
axes[0].set_xticks(range(3), ["plain Python\n(interpreted)", "Numba njit\nim2col", "NumPy twin\nim2col"])
axes[0].set_ylabel("time per call (ms, log scale)")
axes[0].set_title(f"im2col of a {'x'.join(map(str, xs.shape))} map{'' if JIT else ' (JIT disabled)'}")
labels = list(times)
colors = ["tab:orange" if "GEMM" in k else "tab:gray" for k in labels]
bars = axes[1].barh(range(len(labels)), [times[k] * 1e3 for k in labels], color=colors)
axes[1].bar_label(bars, labels=[f"{times[k] * 1e3:.3g} ms ({100 * times[k] / total:.1f}%)" for k in labels],
                  fontsize=8, padding=3)
axes[1].set_xlim(0, 1.2 * max(times.values()) * 1e3)
axes[1].set_yticks(range(len(labels)), labels, fontsize=9)
axes[1].invert_yaxis()
axes[1].set_xlabel("time per call (ms)")
axes[1].set_title(f"conv {C}->{F} 3x3 on {N}x{C}x{H}x{H}: forward + backward pieces\n"
                  f"orange = GEMM ({flops_gemm / 1e9:.2f} GFLOP each), grey = data movement")
fig.tight_layout()
fig.suptitle("Timings on this machine at this moment (printed, never asserted)", fontsize=11, y=1.02)
lesson.save(fig, "timings")

# %%
lesson.step("Data parallelism: two threads, two replicas, one set of weights")
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
             f"all {len(grads_one)} gradients are non-zero (so agreeing below is not 0 == 0)")

# The split. A layer keeps its forward cache on itself, so two threads cannot run one model object at once:
# each thread gets a replica (a deep copy) whose parameter arrays are re-pointed at the model's own arrays.
dp = DataParallel(model, threads=2, min_shard_pixels=1)  # split even this small batch
bounds = shard_bounds(len(xb), dp.threads)
valid = [int(np.count_nonzero(labels[a:b] != 255)) for a, b in bounds]
V = sum(valid)
with no_grad():  # each shard's own mean loss L_s, for the printout (a forward only)
    shard_losses = [SoftmaxCrossEntropy().forward(model.forward(xb[a:b]), labels[a:b]) for a, b in bounds]
print(f"batch of {len(xb)} images {S}x{S}, {V} valid pixels in all; {dp.threads} threads, contiguous shards:")
for s, ((a, b), v, ls) in enumerate(zip(bounds, valid, shard_losses)):
    print(f"    shard {s}: images [{a}, {b}), thread {s} (replica {s}{' = the model itself' if s == 0 else ''}): "
          f"V_s = {v:5d} valid pixels, weight V_s/V = {v / V:.4f}, its mean loss L_s = {ls:.6f}")
print("""The batch loss is the mean over ALL valid pixels, so a shard's mean must be weighted by its pixel count:
    L = (1/V) sum_p l_p = sum_s (V_s/V) * [(1/V_s) sum_(p in s) l_p] = sum_s (V_s/V) L_s,   hence dL/dL_s = V_s/V.
Each thread starts its backward from dloss = V_s/V (criterion.backward(V_s / V)); the weights are shared, so by
the chain rule dL/dW = sum_s (V_s/V) dL_s/dW: add the threads' gradients and nothing else.""")
weighted = sum(v / V * ls for v, ls in zip(valid, shard_losses))
naive = sum(shard_losses) / len(shard_losses)
print(f"    sum_s (V_s/V) L_s = {weighted:.10f}   one-thread loss = {loss_one:.10f}   "
      f"plain mean of the L_s = {naive:.10f} (wrong)")
lesson.close(weighted, loss_one, "weighting each shard's mean loss by V_s/V gives the batch loss")
lesson.check(abs(naive - loss_one) > 1e-3,
             "averaging the shard losses with equal weights would not (the shards have different V_s)")

loss_two = dp.loss_and_grads(xb, labels)  # both threads at once; leaves the summed gradients in model.grads
grads_two = model.grad_dict()
worst = max(grads_one, key=lambda k: np.abs(grads_two[k] - grads_one[k]).max() / np.abs(grads_one[k]).max())
print(f"    2 threads: loss {loss_two:.15f} vs one thread {loss_one:.15f}; largest relative gradient "
      f"difference {np.abs(grads_two[worst] - grads_one[worst]).max() / np.abs(grads_one[worst]).max():.1e} "
      f"({worst}): the summation order, nothing more")
lesson.close(loss_two, loss_one, "DataParallel(threads=2) gives the single-thread loss", rtol=1e-12)
lesson.close(np.concatenate([grads_two[k].ravel() for k in grads_one]),
             np.concatenate([g.ravel() for g in grads_one.values()]),
             f"... and all {len(grads_one)} gradients (summed over the shards) to rtol 1e-10", rtol=1e-10, atol=1e-13)

replica = dp.replicas[1]
own = [p for _, p, _ in model.named_parameters()]
theirs = [p for _, p, _ in replica.named_parameters()]
print(f"    replica 1 is a different object (it has its own caches and its own grads: "
      f"{replica.conv1_1.grads['weight'] is not model.conv1_1.grads['weight']}), but its "
      f"{len(theirs)} parameter arrays are the model's: an optimiser step on the model updates every replica")
lesson.check(replica is not model and all(a is b for a, b in zip(own, theirs)),
             "replica.params[...] IS model.params[...] (the same arrays, not copies): one set of weights")
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
print(f"one training step (forward, loss, backward) of the tiny FCN-8s on {B}x3x{T}x{T} float32, "
      f"{usable_cpus()} CPUs (printed, not asserted):")
for name, t in step_times.items():
    print(f"    {name:27s} {ms(t)}")
print(f"    on this run threads=2 vs threads=1: {step_times['threads=1'] / step_times['threads=2']:.2f}x; "
      f"vs one core: {step_times['threads=1, one BLAS thread'] / step_times['threads=2']:.2f}x (2.00x is the ceiling)")
print("""    Two threads win where threads=1 left a core idle (the kernels, the Python glue); inside the GEMMs
    threads=1 already had both cores, so expect less than 2x -- and on a machine busy with other jobs, perhaps
    nothing. The two threads also share one memory bus, and the gradients are summed after the step.""")
if not JIT:
    print("    (JIT disabled: the kernels are plain Python and hold the GIL, so the threads mostly take turns)")
step_one = (steppers[1].loss_and_grads(xt, lt, input_grad=False), tiny.grad_dict())
step_two = (steppers[2].loss_and_grads(xt, lt, input_grad=False), tiny.grad_dict())
steppers[2].close()
lesson.close(np.concatenate([[step_two[0]], *(g.ravel() for g in step_two[1].values())]),
             np.concatenate([[step_one[0]], *(g.ravel() for g in step_one[1].values())]),
             "the timed steps compute the same loss and gradients (float32: up to rounding)",
             rtol=1e-4, atol=1e-5 * max(np.abs(g).max() for g in step_one[1].values()))

# %%
lesson.step("Inference needs no column matrix: unfold a band of rows at a time")
# Training keeps every layer's column matrix for the backward pass (dW = cols dY^T). Inference has no backward,
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
print(f"conv {C}->{F} 3x3, padding 1, on 1x{C}x{HB}x{HB} float32:")
print(f"    whole column matrix: {K_rows} x {HB * HB} = {full_bytes / 1e6:.2f} MB "
      f"(9x the input's {xi.nbytes / 1e6:.2f} MB)")
print(f"    band of {band_bytes / 2**20:.3g} MiB: {rows_per_band} output rows = {K_rows} x {rows_per_band * HB} "
      f"columns ({rows_per_band * HB * K_rows * xi.itemsize / 1e6:.2f} MB), so the layer is cut into {n_bands} bands")
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
print(f"    conv2d_inference called im2col {len(band_shapes)} times, on column blocks "
      f"{sorted({s_[1:] for s_ in band_shapes})} (rows x columns)")
lesson.check(len(band_shapes) == n_bands > 1 and sum(s_[2] for s_ in band_shapes) == HB * HB and
             max(s_[1] * s_[2] for s_ in band_shapes) * xi.itemsize <= band_bytes,
             f"the engine unfolded the map in {n_bands} bands (not the whole-image fallback), each within "
             f"{band_bytes / 2**20:.3g} MiB, together covering all {HB}x{HB} output pixels once")
lesson.close(y_band, y_full, "conv2d_inference (band by band) == conv2d_forward(...)[0]", rtol=1e-5, atol=1e-5)
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
    print(f"    {name:17s} {ms(inf_times[name])}   peak memory beside the output {peaks[name] / 1e6:6.2f} MB")
print(f"    banded / whole: {inf_times['conv2d_inference'] / inf_times['conv2d_forward']:.2f}x the time (printed, "
      f"not asserted), {peaks['conv2d_inference'] / peaks['conv2d_forward']:.2f}x the memory")
if not JIT:
    print("    (JIT disabled: the plain-Python im2col dominates both; the cache effect needs the compiled kernel)")
lesson.check(peaks["conv2d_inference"] < full_bytes / 2 <= peaks["conv2d_forward"],
             "the banded forward never holds even half the column matrix; conv2d_forward holds all of it")

# %%
lesson.done(summary=[
    "The Numba kernels and their NumPy twins compute the same numbers, and all three im2col builds (interpreted, "
    "njit, NumPy) match an independent six-loop reference.",
    "A float64 call gives the compiled kernel a second specialisation; the parallel flag follows "
    "FCN_SCRATCH_PARALLEL.",
    "With uintp indices LLVM emits contiguous vector loads for the row copy; with signed ones it does not.",
    "The GEMM the lesson times is exactly conv2d_forward's product; its column matrix is N x C*kh*kw x Ho*Wo.",
    "Splitting a batch over two threads with shard weights V_s/V gives the single-thread loss and gradients; the "
    "replicas share one set of weight arrays.",
    "conv2d_inference unfolds the map in bands, gives conv2d_forward's output, and never holds half its column "
    "matrix.",
], exercises=[])

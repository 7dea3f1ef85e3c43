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
# 2. times the plain-Python kernel, its `njit` build and the NumPy twin (timings
#    printed, never asserted: they depend on the machine and its load),
# 3. explains what `njit` and `prange` do, and the project's finding that the
#    kernels run best *serial* next to a multi-threaded BLAS (`FCN_SCRATCH_PARALLEL=1`
#    compiles them parallel, to see the difference),
# 4. shows the **unsigned-index** trick of the row helpers and the vector
#    instructions it lets LLVM emit,
# 5. counts FLOPs and bytes of one convolution layer and times each piece:
#    im2col moves bytes, the GEMM does the arithmetic -- and takes the time.
#
# `fcn-scratch bench` prints the full table (every kernel, layer, the FCN-8s
# training step, beside PyTorch when it is installed).
# Seed notes: none directly (speed is this engine's addition); the kernels
# serve the convolutions of `004_*.txt` and the FCN of `002_*.txt`.
# Run: `python lessons/10_speed_numba.py [--step] [--no-figures] [--figures DIR]`;
# `FCN_SCRATCH_PARALLEL=1 python lessons/10_speed_numba.py` for parallel kernels (compiled first: ~20 s more).

# %%
from _common import Lesson  # first: puts the repo on sys.path, picks a headless backend

import os
import re
import time

import matplotlib.pyplot as plt
import numba
import numpy as np

from fcn_scratch import kernels
from fcn_scratch.bench import interleaved
from fcn_scratch.functional import conv2d_backward, conv2d_forward
from fcn_scratch.kernels import numba_kernels, numpy_kernels

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
xs = rng.standard_normal((2, 8, 16, 16)).astype(np.float32)  # small: the plain-Python kernel is slow
small = (3, 3, 1, 1, 1, 1, 1, 1, 16, 16)
contenders = {"plain Python (im2col_py)": lambda: numba_kernels.im2col_py(xs, *small),
              "Numba njit (im2col)": lambda: numba_kernels.im2col(xs, *small),
              "NumPy twin (as_strided)": lambda: numpy_kernels.im2col(xs, *small)}
times_small = interleaved(contenders, repeats=3, number=2, warmup=1)
for name, t in times_small.items():
    print(f"    {name:26s} {ms(t)}")
print("    (im2col_py's outer loops are Python; the three tiny row helpers it calls are themselves compiled,\n"
      "     unless NUMBA_DISABLE_JIT=1 -- so the real plain-Python cost is higher still)")
lesson.check(np.array_equal(numba_kernels.im2col_py(xs, *small), numba_kernels.im2col(xs, *small)),
             "im2col_py and its njit build give identical columns")
lesson.check(getattr(numba_kernels.im2col, "py_func", numba_kernels.im2col) is numba_kernels.im2col_py,
             "the njit kernel is im2col_py compiled: numba_kernels.im2col.py_func is numba_kernels.im2col_py")
print("every kernel, numba vs numpy twin, on x", x.shape)
kernel_times = {}
for name, args in {"im2col": (x, *conv_args), "col2im": (out["numba"]["im2col"], N, C, H, H, *conv_args),
                   "maxpool_forward": (x, *pool_args),
                   "maxpool_backward": (out["numba"]["maxpool_forward"], out["numba"]["argmax"], H, H)}.items():
    fast, twin = getattr(numba_kernels, name), getattr(numpy_kernels, name)
    kernel_times[name] = t = interleaved({"numba": lambda: fast(*args), "numpy": lambda: twin(*args)},
                                         repeats=3, number=2, warmup=1)
    print(f"    {name:17s} numba {ms(t['numba'])}   numpy {ms(t['numpy'])}   "
          f"numpy/numba {t['numpy'] / t['numba']:5.1f}x")
lesson.check(len(kernel_times) == 4, "timed all four kernels on both backends (see `fcn-scratch bench` for more)")

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
    lesson.check(numba_kernels.im2col.targetoptions.get("parallel", False) == numba_kernels.PARALLEL,
                 f"the kernels are compiled with parallel={numba_kernels.PARALLEL} "
                 f"(FCN_SCRATCH_PARALLEL={os.environ.get('FCN_SCRATCH_PARALLEL', 'unset')})")
else:
    lesson.check(numba_kernels.im2col is numba_kernels.im2col_py,
                 "with NUMBA_DISABLE_JIT=1, njit returns the Python function itself (and prange is range)")
print("""The project's finding (the note at the bottom of fcn_scratch/kernels/numba_kernels.py): the GEMMs between
kernels run on OpenBLAS's thread pool, whose workers spin-wait for a while after each call. A parallel
kernel launched right after a GEMM must fight them for the two cores and stalls for a scheduler time
slice (the project measured ~4 ms instead of ~0.5 ms). A serial kernel leaves the other core to the
spinning worker. (On a machine shared with other jobs, every timing below also varies from run to run.)""")
gemm_w = w.reshape(F, -1)
x1, cols_one = x[:1], out["numba"]["im2col"][0]  # one image: the per-image GEMM, then the next layer's kernel
seq = interleaved({"GEMM": lambda: np.matmul(gemm_w, cols_one),
                   "im2col": lambda: numba_kernels.im2col(x1, *conv_args),
                   "GEMM, then im2col": lambda: (np.matmul(gemm_w, cols_one), numba_kernels.im2col(x1, *conv_args))},
                  repeats=3, number=3, warmup=1)
stall = seq["GEMM, then im2col"] - seq["GEMM"] - seq["im2col"]
print(f"    GEMM alone {ms(seq['GEMM'])}, im2col alone {ms(seq['im2col'])}, one after the other "
      f"{ms(seq['GEMM, then im2col'])}: extra {ms(stall)}")
print(f"    (kernels {'parallel' if numba_kernels.PARALLEL else 'serial'} now; rerun with FCN_SCRATCH_PARALLEL="
      f"{0 if numba_kernels.PARALLEL else 1} to compare)")
lesson.check(np.array_equal(numba_kernels.im2col(x1, *conv_args)[0], cols_one),
             "serial or parallel, the kernel computes the same columns (only the speed differs)")

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
print(f"    copy {n:,} float64: signed indices {ms(t['signed'])}, uintp indices {ms(t['unsigned'])}"
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
lesson.check(flops_gemm == 2 * np.prod(gemm_w.shape) * cols.shape[0] * cols.shape[2],
             "FLOPs = 2 x F x (C*kh*kw) x (Ho*Wo) x N: the GEMM's three dimensions, per image")
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
axes[0].set_xticks(range(3), ["plain Python\nim2col_py", "Numba njit\nim2col", "NumPy twin\nim2col"])
axes[0].set_ylabel("time per call (ms, log scale)")
axes[0].set_title(f"im2col of a 2x8x16x16 map{'' if JIT else ' (JIT disabled)'}")
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
lesson.done()

"""The hot loops, written as plain Python and compiled with Numba.

Each ``*_py`` function is the readable reference: plain loops over the batch,
channels, kernel taps and output pixels. The module-level name without the
suffix is the same function compiled with ``numba.njit(cache=True, nogil=True)``
(serial unless ``FCN_SCRATCH_PARALLEL=1``; see the note at the bottom; ``nogil`` lets
the threads of :mod:`fcn_scratch.parallel` run kernels side by side). With
``NUMBA_DISABLE_JIT=1`` the compiled names *are* the
plain functions (``prange`` becomes ``range``), so the whole test suite can run
uncompiled.

Layouts (all C-contiguous, callers guarantee it and validate sizes):

* ``x``    ``(N, C, H, W)``
* ``cols`` ``(N, C*kh*kw, Ho*Wo)``; row ``(c*kh + i)*kw + j`` holds input
  channel ``c`` seen through kernel tap ``(i, j)`` at every output pixel, so a
  convolution is one GEMM per image: ``W.reshape(F, -1) @ cols[n]``.

Tap ``(i, j)`` of output pixel ``(ho, wo)`` reads input pixel
``(ho*sh + i*dh - ph, wo*sw + j*dw - pw)``; reads outside the input see zero
padding (im2col) or are dropped (col2im). Every index is bounds-checked, so no
argument combination can touch memory outside the arrays.

Parallelism: ``prange`` runs over independent ``(n, c)`` planes only. In
col2im and max-pool backward the windows of one plane overlap and are summed
sequentially inside that plane, so no two threads ever write the same element.
No ``fastmath``: max-pool meets ``-inf``.
"""

from __future__ import annotations

import os

import numpy as np
import numba
from numba import njit, prange, uintp


def _valid_out_range(offset, stride, size, n_out):
    """Output indices ``o`` in ``[lo, hi)`` with ``0 <= o*stride + offset < size``."""
    lo = 0 if offset >= 0 else -(offset // stride)  # ceil(-offset / stride)
    if size - 1 - offset < 0:
        hi = 0
    else:
        hi = (size - 1 - offset) // stride + 1
    if hi > n_out:
        hi = n_out
    if lo > hi:
        lo = hi
    return lo, hi


# The row helpers index with unsigned ints (``uintp``): Numba then skips its
# negative-index wraparound test, and LLVM can vectorise the unit-stride loop
# (measured: im2col 2-3x faster than the same loop with signed indices).


def _zero_row(dst, start, n):
    """``dst[start : start+n] = 0`` on a flat array."""
    for t in range(n):
        dst[uintp(start + t)] = 0


def _copy_row(dst, start, src, src_start, n, step):
    """``dst[start + t] = src[src_start + t*step]`` for ``t < n``, flat arrays."""
    if step == 1:
        for t in range(n):
            dst[uintp(start + t)] = src[uintp(src_start + t)]
    else:
        for t in range(n):
            dst[uintp(start + t)] = src[uintp(src_start + t * step)]


def _add_row(dst, dst_start, src, start, n, step):
    """``dst[dst_start + t*step] += src[start + t]`` for ``t < n``, flat arrays."""
    if step == 1:
        for t in range(n):
            dst[uintp(dst_start + t)] += src[uintp(start + t)]
    else:
        for t in range(n):
            dst[uintp(dst_start + t * step)] += src[uintp(start + t)]


def im2col_py(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Unfold ``x (N, C, H, W)`` into patch columns ``(N, C*kh*kw, Ho*Wo)``.

    ``cols[n, (c*kh+i)*kw+j, ho*Wo+wo] = x_padded[n, c, ho*sh + i*dh, wo*sw + j*dw]``.
    Each (channel, tap, output row) is one run of ``Wo`` entries: zeros where the
    tap reads padding, a (strided) copy of an input row in between.
    """
    N, C, H, W = x.shape
    cols = np.empty((N, C * kh * kw, Ho * Wo), dtype=x.dtype)
    im2col_into(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    return cols


def im2col_into_py(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """:func:`im2col_py` writing into a given ``cols (N, C*kh*kw, Ho*Wo)`` (a reused workspace) instead of a new array."""
    N, C, H, W = x.shape
    xf, cf = x.reshape(-1), cols.reshape(-1)  # flat views, no copies
    if sh == 1 and sw == 1 and dh == 1 and dw == 1 and Wo == W:
        _im2col_same_width(xf, cf, N * C, H, W, kh, kw, ph, pw, Ho)
        return
    for nc in prange(N * C):
        for i in range(kh):
            for j in range(kw):
                row_start = ((nc * kh + i) * kw + j) * Ho * Wo  # (n, c) planes are consecutive rows
                woff = j * dw - pw
                lo, hi = _valid_out_range(woff, sw, W, Wo)
                for ho in range(Ho):
                    h = ho * sh + i * dh - ph
                    o = row_start + ho * Wo
                    if h < 0 or h >= H:
                        _zero_row(cf, o, Wo)
                    else:
                        _zero_row(cf, o, lo)
                        _copy_row(cf, o + lo, xf, (nc * H + h) * W + lo * sw + woff, hi - lo, sw)
                        _zero_row(cf, o + hi, Wo - hi)


def _im2col_same_width(xf, cf, planes, H, W, kh, kw, ph, pw, Ho):
    """im2col's fast path for stride 1, dilation 1 and ``Wo == W`` (a "same" width, e.g. 3x3 padding 1).

    Then the output rows of one (channel, tap) have the input's row length, so
    all the valid rows are *one* run of the input plane shifted by
    ``(i - ph) * W + (j - pw)``: a single long copy instead of one short copy
    per row (which costs more than the copying on small maps, 3-4x here on
    8x8 and 4x4). The entries that the shift wraps around from the
    neighbouring row, ``j - pw`` columns at the left or right edge of every
    row, are padding and zeroed afterwards; the copy is clamped to the plane,
    so it never reads outside the input.
    """
    plane_len = H * W
    for nc in prange(planes):
        plane = nc * plane_len
        for i in range(kh):
            ho_lo, ho_hi = _valid_out_range(i - ph, 1, H, Ho)  # output rows whose tap row is inside
            for j in range(kw):
                dst = ((nc * kh + i) * kw + j) * Ho * W
                shift = (ho_lo + i - ph) * W + j - pw  # plane offset read by output (ho_lo, 0)
                n = (ho_hi - ho_lo) * W
                t_lo = -shift if shift < 0 else 0  # clamp the run to [0, plane_len)
                t_hi = plane_len - shift if shift + n > plane_len else n
                if t_hi < t_lo:
                    t_hi = t_lo
                _zero_row(cf, dst, ho_lo * W + t_lo)
                _copy_row(cf, dst + ho_lo * W + t_lo, xf, plane + shift + t_lo, t_hi - t_lo, 1)
                _zero_row(cf, dst + ho_lo * W + t_hi, (Ho - ho_lo) * W - t_hi)
                # wrap > 0: the last `wrap` columns of each row read the next row; < 0: the first -wrap the
                # previous one. At most W of them (a kernel wider than the input sees only padding there).
                wrap = min(max(j - pw, -W), W)
                for ho in range(ho_lo, ho_hi):
                    o = dst + ho * W
                    if wrap > 0:
                        _zero_row(cf, o + W - wrap, wrap)
                    elif wrap < 0:
                        _zero_row(cf, o, -wrap)


def col2im_py(cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Fold patch columns back into ``(N, C, H, W)``, *summing* overlaps.

    The adjoint of :func:`im2col_py` (not its inverse): every column entry is
    added to the input pixel it was read from; reads from padding are dropped.
    """
    x = np.empty((N, C, H, W), dtype=cols.dtype)
    col2im_into(cols, x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    return x


def col2im_into_py(cols, x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """:func:`col2im_py` writing into a given ``x (N, C, H, W)`` (overwritten, not added to)."""
    N, C, H, W = x.shape
    xf, cf = x.reshape(-1), cols.reshape(-1)
    for nc in prange(N * C):
        _zero_row(xf, nc * H * W, H * W)  # each plane zeroed by the thread that sums into it
        for i in range(kh):
            for j in range(kw):
                row_start = ((nc * kh + i) * kw + j) * Ho * Wo
                woff = j * dw - pw
                lo, hi = _valid_out_range(woff, sw, W, Wo)
                for ho in range(Ho):
                    h = ho * sh + i * dh - ph
                    if 0 <= h < H:
                        _add_row(xf, (nc * H + h) * W + lo * sw + woff, cf, row_start + ho * Wo + lo, hi - lo, sw)


def _valid_taps(start, dilation, size, k):
    """Taps ``t`` in ``[lo, hi)`` of a window starting at ``start`` with ``0 <= start + t*dilation < size``."""
    return _valid_out_range(start, dilation, size, k)


def maxpool_forward_py(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Max over each window; padding counts as ``-inf``; ties go to the first max.

    Returns ``out (N, C, Ho, Wo)`` and ``argmax (N, C, Ho, Wo)`` int64, the flat
    index ``h*W + w`` of the winner inside its ``(H, W)`` plane (PyTorch's
    ``return_indices`` convention), or -1 for a window with no input pixel.
    Padding taps are skipped rather than compared: ``-inf`` can never win.
    """
    N, C, H, W = x.shape
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    argmax = np.empty((N, C, Ho, Wo), dtype=np.int64)
    xf, of, af = x.reshape(-1), out.reshape(-1), argmax.reshape(-1)
    # Which taps of each window row/column fall inside the input: the same for
    # every plane, so computed once (the divisions inside cost more than the max).
    i_range = np.empty((Ho, 2), dtype=np.int64)
    for ho in range(Ho):
        i_range[ho, 0], i_range[ho, 1] = _valid_taps(ho * sh - ph, dh, H, kh)
    j_range = np.empty((Wo, 2), dtype=np.int64)
    for wo in range(Wo):
        j_range[wo, 0], j_range[wo, 1] = _valid_taps(wo * sw - pw, dw, W, kw)
    for nc in prange(N * C):
        plane = nc * H * W
        for ho in range(Ho):
            h0 = ho * sh - ph
            i_lo, i_hi = i_range[ho, 0], i_range[ho, 1]
            for wo in range(Wo):
                w0 = wo * sw - pw
                j_lo, j_hi = j_range[wo, 0], j_range[wo, 1]
                best = -np.inf
                best_idx = -1
                if i_lo < i_hi and j_lo < j_hi:
                    best_idx = (h0 + i_lo * dh) * W + w0 + j_lo * dw  # the first tap inside the input
                    best = xf[uintp(plane + best_idx)]
                    for i in range(i_lo, i_hi):
                        for j in range(j_lo, j_hi):
                            idx = (h0 + i * dh) * W + w0 + j * dw
                            v = xf[uintp(plane + idx)]
                            if v > best:  # strict '>': the first max wins ties
                                best = v
                                best_idx = idx
                k = (nc * Ho + ho) * Wo + wo
                of[k] = best
                af[k] = best_idx
    return out, argmax


def maxpool2x2_forward_py(x, Ho, Wo):
    """:func:`maxpool_forward_py` for the FCN's pooling only: 2x2 windows, stride 2, no padding.

    Same results (ceil mode's last window may hang off the bottom/right edge;
    its first tap is always inside), with the four taps written out: 4-5x
    faster than the general loop, whose per-window bookkeeping costs more than
    four comparisons.
    """
    N, C, H, W = x.shape
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    argmax = np.empty((N, C, Ho, Wo), dtype=np.int64)
    xf, of, af = x.reshape(-1), out.reshape(-1), argmax.reshape(-1)
    for nc in prange(N * C):
        plane = nc * H * W
        for ho in range(Ho):
            two_rows = 2 * ho + 1 < H
            for wo in range(Wo):
                idx = 2 * ho * W + 2 * wo  # top-left tap, always inside
                two_cols = 2 * wo + 1 < W
                best, best_idx = xf[uintp(plane + idx)], idx
                # taps in row-major order with a strict '>': the first max wins ties
                if two_cols and xf[uintp(plane + idx + 1)] > best:
                    best, best_idx = xf[uintp(plane + idx + 1)], idx + 1
                if two_rows and xf[uintp(plane + idx + W)] > best:
                    best, best_idx = xf[uintp(plane + idx + W)], idx + W
                if two_rows and two_cols and xf[uintp(plane + idx + W + 1)] > best:
                    best, best_idx = xf[uintp(plane + idx + W + 1)], idx + W + 1
                k = (nc * Ho + ho) * Wo + wo
                of[uintp(k)] = best
                af[uintp(k)] = best_idx
    return out, argmax


def maxpool_backward_py(dout, argmax, H, W):
    """Route each output gradient to its window's argmax: ``dx (N, C, H, W)``."""
    N, C, Ho, Wo = dout.shape
    dx = np.zeros((N, C, H, W), dtype=dout.dtype)
    xf, gf, af = dx.reshape(-1), dout.reshape(-1), argmax.reshape(-1)
    for nc in prange(N * C):
        for k in range(nc * Ho * Wo, (nc + 1) * Ho * Wo):
            if af[k] >= 0:
                xf[uintp(nc * H * W + af[k])] += gf[k]
    return dx


def adam_update_py(param, grad, m, v, lr, beta1, one_minus_beta1, beta2, one_minus_beta2, c1, c2, eps):
    """One Adam step in place, element by element, on flat arrays of one dtype (scalars of that dtype too).

    ``m = b1 m + (1-b1) g``; ``v = b2 v + ((1-b2) g) g``;
    ``param -= lr (m / c1) / (sqrt(v / c2) + eps)`` with ``c1 = 1 - b1^t``, ``c2 = 1 - b2^t``.
    The operations and their order are the NumPy twin's, so float32 gives the same bits;
    one pass over the five arrays instead of about a dozen (and no temporaries).
    """
    for i in range(param.size):
        g = grad[i]
        mi = m[i] * beta1 + one_minus_beta1 * g
        vi = v[i] * beta2 + one_minus_beta2 * g * g
        m[i] = mi
        v[i] = vi
        param[i] -= lr * (mi / c1) / (np.sqrt(vi / c2) + eps)


# Serial by default. The GEMMs between these kernels run on OpenBLAS's thread
# pool, whose workers spin-wait for a while after each call; a parallel kernel
# on Numba's OpenMP threading layer launched then has to fight them for the
# cores and stalls for a scheduler time slice (measured here: ~4-12 ms per
# kernel instead of ~0.3-0.5 ms). Serial kernels leave the other core to the
# spinning BLAS worker and never wait.
# FCN_SCRATCH_PARALLEL=1 compiles the prange loops in parallel instead, on
# Numba's own "workqueue" threading layer, which measured no such stall
# (unless NUMBA_THREADING_LAYER chooses another layer).
PARALLEL = os.environ.get("FCN_SCRATCH_PARALLEL", "0").strip() not in ("", "0", "false", "no")
if PARALLEL and "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"
# Numba's on-disk cache is keyed by signature and bytecode, not by the `parallel` flag: a cached serial
# kernel would be loaded for a parallel request (and the reverse). So only the serial default is cached.
# nogil: a kernel releases the GIL, so the threads of fcn_scratch.parallel run kernels side by side.
_jit = njit(cache=not PARALLEL, parallel=PARALLEL, nogil=True)
_helper = njit(cache=True, inline="always")
_valid_out_range = _helper(_valid_out_range)
_zero_row = _helper(_zero_row)
_copy_row = _helper(_copy_row)
_add_row = _helper(_add_row)
_valid_taps = _helper(_valid_taps)
_im2col_same_width = _helper(_im2col_same_width)
im2col_into = _jit(im2col_into_py)
col2im_into = _jit(col2im_into_py)
im2col = _jit(im2col_py)
col2im = _jit(col2im_py)
maxpool_forward_any = _jit(maxpool_forward_py)
maxpool2x2_forward = _jit(maxpool2x2_forward_py)
maxpool_backward = _jit(maxpool_backward_py)
# error_model="numpy": division by zero gives inf/nan as in NumPy instead of Python's ZeroDivisionError check,
# a branch per division that kept LLVM from vectorising the loop (3.8 ms -> 1.0 ms on 0.7 M float32 values)
adam_update = njit(cache=True, nogil=True, error_model="numpy")(adam_update_py)


def maxpool_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Compiled max-pool forward: the unrolled 2x2/stride-2 kernel when it applies, else the general one."""
    if (kh, kw, sh, sw, ph, pw, dh, dw) == (2, 2, 2, 2, 0, 0, 1, 1):
        return maxpool2x2_forward(x, Ho, Wo)
    return maxpool_forward_any(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)

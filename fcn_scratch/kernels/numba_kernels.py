"""The hot loops, written as plain Python and compiled with Numba.

Each ``*_py`` function is the readable reference: plain loops over the batch,
channels, kernel taps and output pixels. The module-level name without the
suffix is the same function compiled with ``numba.njit(cache=True,
parallel=True)``. With ``NUMBA_DISABLE_JIT=1`` the compiled names *are* the
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

import numpy as np
from numba import njit, prange


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


def im2col_py(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Unfold ``x (N, C, H, W)`` into patch columns ``(N, C*kh*kw, Ho*Wo)``.

    ``cols[n, (c*kh+i)*kw+j, ho*Wo+wo] = x_padded[n, c, ho*sh + i*dh, wo*sw + j*dw]``.
    """
    N, C, H, W = x.shape
    cols = np.empty((N, C * kh * kw, Ho * Wo), dtype=x.dtype)
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                woff = j * dw - pw
                lo, hi = _valid_out_range(woff, sw, W, Wo)
                for ho in range(Ho):
                    h = ho * sh + i * dh - ph
                    base = ho * Wo
                    if h < 0 or h >= H:
                        for wo in range(Wo):
                            cols[n, row, base + wo] = 0
                    else:
                        for wo in range(lo):
                            cols[n, row, base + wo] = 0
                        for wo in range(lo, hi):
                            cols[n, row, base + wo] = x[n, c, h, wo * sw + woff]
                        for wo in range(hi, Wo):
                            cols[n, row, base + wo] = 0
    return cols


def col2im_py(cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Fold patch columns back into ``(N, C, H, W)``, *summing* overlaps.

    The adjoint of :func:`im2col_py` (not its inverse): every column entry is
    added to the input pixel it was read from; reads from padding are dropped.
    """
    x = np.zeros((N, C, H, W), dtype=cols.dtype)
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                woff = j * dw - pw
                lo, hi = _valid_out_range(woff, sw, W, Wo)
                for ho in range(Ho):
                    h = ho * sh + i * dh - ph
                    if h < 0 or h >= H:
                        continue
                    base = ho * Wo
                    for wo in range(lo, hi):
                        x[n, c, h, wo * sw + woff] += cols[n, row, base + wo]
    return x


def maxpool_forward_py(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Max over each window; padding counts as ``-inf``; ties go to the first max.

    Returns ``out (N, C, Ho, Wo)`` and ``argmax (N, C, Ho, Wo)`` int64, the flat
    index ``h*W + w`` of the winner inside its ``(H, W)`` plane (PyTorch's
    ``return_indices`` convention), or -1 for a window with no input pixel.
    """
    N, C, H, W = x.shape
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    argmax = np.empty((N, C, Ho, Wo), dtype=np.int64)
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        for ho in range(Ho):
            for wo in range(Wo):
                best = -np.inf
                best_idx = -1
                for i in range(kh):
                    h = ho * sh + i * dh - ph
                    if h < 0 or h >= H:
                        continue
                    for j in range(kw):
                        w = wo * sw + j * dw - pw
                        if w < 0 or w >= W:
                            continue
                        v = x[n, c, h, w]
                        if best_idx < 0 or v > best:  # strict '>': first max wins ties
                            best = v
                            best_idx = h * W + w
                out[n, c, ho, wo] = best
                argmax[n, c, ho, wo] = best_idx
    return out, argmax


def maxpool_backward_py(dout, argmax, H, W):
    """Route each output gradient to its window's argmax: ``dx (N, C, H, W)``."""
    N, C, Ho, Wo = dout.shape
    dx = np.zeros((N, C, H * W), dtype=dout.dtype)
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        for ho in range(Ho):
            for wo in range(Wo):
                k = argmax[n, c, ho, wo]
                if k >= 0:
                    dx[n, c, k] += dout[n, c, ho, wo]
    return dx.reshape((N, C, H, W))


_jit = njit(cache=True, parallel=True)
_valid_out_range = njit(cache=True, inline="always")(_valid_out_range)
im2col = _jit(im2col_py)
col2im = _jit(col2im_py)
maxpool_forward = _jit(maxpool_forward_py)
maxpool_backward = _jit(maxpool_backward_py)

"""Vectorised NumPy twins of the Numba kernels: same signatures, same results.

No Python loop runs over pixels here. im2col is a strided *view* of the padded
input copied once into the column layout; col2im and max-pool backward are
scatter-adds with ``np.add.at`` (which, unlike ``a[idx] += v``, sums repeated
indices, the overlap a stride smaller than the kernel creates).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def _pad_amounts(size, n_out, k, s, p, d):
    """Top/left pad ``p``; bottom/right pad enough for the last window to fit."""
    needed = (n_out - 1) * s + d * (k - 1) + 1  # extent of the padded input read
    return p, max(p, needed - size - p)


def _window_view(xp, kh, kw, sh, sw, dh, dw, Ho, Wo):
    """``(N, C, kh, kw, Ho, Wo)`` read-only view: ``v[n,c,i,j,ho,wo] = xp[n,c,ho*sh+i*dh, wo*sw+j*dw]``."""
    N, C = xp.shape[:2]
    s0, s1, s2, s3 = xp.strides
    return as_strided(
        xp,
        shape=(N, C, kh, kw, Ho, Wo),
        strides=(s0, s1, s2 * dh, s3 * dw, s2 * sh, s3 * sw),
        writeable=False,
    )


def _pad(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, value):
    H, W = x.shape[2:]
    top, bottom = _pad_amounts(H, Ho, kh, sh, ph, dh)
    left, right = _pad_amounts(W, Wo, kw, sw, pw, dw)
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """``(N, C, H, W) -> (N, C*kh*kw, Ho*Wo)``, zero padding; see the Numba twin."""
    N, C = x.shape[:2]
    xp = _pad(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, 0)
    return _window_view(xp, kh, kw, sh, sw, dh, dw, Ho, Wo).reshape(N, C * kh * kw, Ho * Wo)


def im2col_into(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """:func:`im2col` written into ``cols (N, C*kh*kw, Ho*Wo)``."""
    cols[...] = im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)


def _tap_indices(H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Input row/column of every (tap, output pixel) as ``(kh, 1, Ho, 1)`` and ``(1, kw, 1, Wo)`` grids."""
    h = (np.arange(Ho) * sh)[None, :] + (np.arange(kh) * dh)[:, None] - ph  # (kh, Ho)
    w = (np.arange(Wo) * sw)[None, :] + (np.arange(kw) * dw)[:, None] - pw  # (kw, Wo)
    return h[:, None, :, None], w[None, :, None, :]


def col2im(cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Sum patch columns back into ``(N, C, H, W)``; entries read from padding are dropped."""
    h, w = _tap_indices(H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    h, w = np.broadcast_arrays(h, w)  # (kh, kw, Ho, Wo)
    inside = (h >= 0) & (h < H) & (w >= 0) & (w < W)
    flat = (h * W + w)[inside]  # plane index of each kept (tap, pixel)
    vals = cols.reshape(N, C, kh, kw, Ho, Wo)[:, :, inside]  # (N, C, kept)
    x = np.zeros((N, C, H * W), dtype=cols.dtype)
    n_idx = np.arange(N)[:, None, None]
    c_idx = np.arange(C)[None, :, None]
    np.add.at(x, (n_idx, c_idx, flat[None, None, :]), vals)
    return x.reshape(N, C, H, W)


def col2im_into(cols, x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """:func:`col2im` written into ``x (N, C, H, W)`` (overwritten)."""
    N, C, H, W = x.shape
    x[...] = col2im(cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)


def maxpool_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Window max over ``-inf`` padding, first max on ties; flat ``h*W + w`` argmax.

    The winner is the first tap that is both maximal and inside the input, as in
    the Numba kernel (which never looks at padding), so the two agree even on a
    window whose real pixels are ``-inf`` too; a window of padding only gives -1.
    """
    N, C, H, W = x.shape
    xp = _pad(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, -np.inf)
    win = _window_view(xp, kh, kw, sh, sw, dh, dw, Ho, Wo).reshape(N, C, kh * kw, Ho, Wo)
    out = win.max(axis=2)
    h, w = _tap_indices(H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    h, w = (np.broadcast_to(a, (kh, kw, Ho, Wo)).reshape(kh * kw, Ho, Wo) for a in (h, w))
    inside = (h >= 0) & (h < H) & (w >= 0) & (w < W)  # (taps, Ho, Wo)
    winners = (win == out[:, :, None]) & inside
    tap = np.argmax(winners, axis=2)  # the first True
    flat = np.take_along_axis((h * W + w)[None, None], tap[:, :, None], axis=2)[:, :, 0]
    argmax = np.where(winners.any(axis=2), flat, -1)
    return out.astype(x.dtype, copy=False), argmax.astype(np.int64)


def maxpool_backward(dout, argmax, H, W):
    """Scatter-add each output gradient onto its argmax: ``dx (N, C, H, W)``."""
    N, C = dout.shape[:2]
    dx = np.zeros((N, C, H * W), dtype=dout.dtype)
    keep = argmax >= 0
    n_idx, c_idx = np.nonzero(keep)[:2]
    np.add.at(dx, (n_idx, c_idx, argmax[keep]), dout[keep])
    return dx.reshape(N, C, H, W)


def adam_update(param, grad, m, v, lr, beta1, one_minus_beta1, beta2, one_minus_beta2, c1, c2, eps):
    """One Adam step in place on flat arrays of one dtype: the whole-array form of the Numba kernel.

    ``m = b1 m + (1-b1) g``; ``v = b2 v + ((1-b2) g) g``;
    ``param -= lr (m / c1) / (sqrt(v / c2) + eps)``, with ``c1 = 1 - b1^t``, ``c2 = 1 - b2^t``.
    """
    m *= beta1
    m += one_minus_beta1 * grad
    v *= beta2
    v += one_minus_beta2 * grad * grad
    param -= lr * (m / c1) / (np.sqrt(v / c2) + eps)

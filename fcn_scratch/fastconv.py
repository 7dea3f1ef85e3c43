"""Conv2d for training, the fast way: one image at a time through a reused column workspace.

The readable pair :func:`fcn_scratch.functional.conv2d_forward` /
:func:`~fcn_scratch.functional.conv2d_backward` unfolds the whole batch into one
column matrix (``k*k`` times the input: 19 MB for the tiny FCN's ``conv1_2`` on a
batch of 8) and keeps it in the cache until ``backward``. That costs twice: the
columns of every layer are alive at once at the end of the forward pass (most of
a training step's peak memory), and each fresh multi-megabyte matrix is new
memory the kernel must fault in page by page, then streams through RAM, not cache.

Here the same arithmetic runs image by image, and the columns of one image
(``C*kh*kw x Ho*Wo``; 2.4 MB for ``conv1_2``) live in a buffer that each thread
allocates once and reuses for every layer and step (:func:`workspace`):

* forward, per image ``n``: ``cols = im2col(x[n])`` into the workspace, then
  ``y[n] = W @ cols + b`` while ``cols`` is still in cache. The cache keeps
  ``x`` itself (the previous layer's output, alive anyway), not the columns.
* backward, per image: ``cols = im2col(x[n])`` again (recomputing is cheaper
  than keeping: an unfolding costs about a quarter of one GEMM here), then
  ``dW^T += cols @ dY[n]^T``; ``db = sum dY``; and ``dx[n]`` either as the
  "full" convolution of ``dY[n]`` with the flipped kernel (stride 1: unfold
  ``dY[n]`` into the workspace, one GEMM) or as ``col2im(W^T @ dY[n])``.

Same numbers as the readable pair, up to float rounding (``dW`` sums the images
in another order); ``tests/test_fastconv.py`` compares the two on both kernel
backends. :class:`fcn_scratch.layers.Conv2d` uses this module while training
when :func:`enabled` (the default; ``FCN_SCRATCH_FASTCONV=0`` or
``set_enabled(False)`` picks the readable pair instead). A 1x1 convolution
needs no unfolding and goes to the readable pair either way, and so does a
layer whose whole batch of columns fits one chunk (:data:`CHUNK_BYTES`): there
the columns are small and the readable pair measured as fast (the tiny FCN's
layers from 64 channels on).

Like PyTorch, the cache keeps a reference to ``x``: do not write into ``x``
between ``forward`` and ``backward``.
"""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np

from . import functional as F
from . import kernels

_enabled = os.environ.get("FCN_SCRATCH_FASTCONV", "1").strip().lower() not in ("0", "false", "no", "off")


def enabled() -> bool:
    """Whether :class:`~fcn_scratch.layers.Conv2d` trains through this module (else the readable pair)."""
    return _enabled


def set_enabled(flag: bool) -> bool:
    """Switch the fast training path on or off; returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, bool(flag)
    return previous


@contextlib.contextmanager
def use_fastconv(flag: bool):
    """``with use_fastconv(False): ...`` trains the block through the readable pair."""
    previous = set_enabled(flag)
    try:
        yield
    finally:
        set_enabled(previous)


# --------------------------------------------------------------------------- the workspace

_local = threading.local()
# A thread keeps its workspace up to this size; a larger request (e.g. a full-size VGG trained at
# 224x224: 115 MB of columns per image for conv1_2) gets a fresh array that is freed after the call.
KEEP_BYTES = 64 * 2**20


def workspace(shape, dtype) -> np.ndarray:
    """A scratch array of ``shape`` and ``dtype`` from this thread's reused buffer (contents undefined).

    Valid until the same thread asks again: never return it or keep it in a cache.
    One buffer per thread, so the threads of :mod:`fcn_scratch.parallel` never share one.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buf = getattr(_local, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        if nbytes > KEEP_BYTES:
            return np.empty(shape, dtype)
        buf = _local.buf = np.empty(nbytes, dtype=np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


# Images per chunk: as many as keep a chunk's columns within CHUNK_BYTES (at least one), so that they
# are still in cache when the GEMM reads them; small maps go many at a time (fewer Python calls).
CHUNK_BYTES = 2 * 2**20


def _chunk(N, bytes_per_image):
    """Images per chunk: the fewest chunks within CHUNK_BYTES each, then the sizes evened out (8 -> 4+4, not 7+1)."""
    most = max(1, min(N, CHUNK_BYTES // max(1, bytes_per_image)))
    chunks = -(-N // most)
    return -(-N // chunks)


def _is_1x1(geom):
    kh, kw, sh, sw, ph, pw = geom[:6]
    return (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0)


# --------------------------------------------------------------------------- forward / backward


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """:func:`fcn_scratch.functional.conv2d_forward`, image by image; returns ``(y, cache)``.

    x ``(N, C, H, W)``, weight ``(F, C, kh, kw)``, bias ``(F,)`` or None -> y ``(N, F, Ho, Wo)``.
    The cache is for :func:`conv2d_backward` of this module only.
    """
    N, C, H, W, Fo, geom = F._conv2d_setup(x, weight, stride, padding, dilation)
    kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo = geom
    K, P = C * kh * kw, Ho * Wo
    g = _chunk(N, K * P * x.itemsize)
    if _is_1x1(geom) or g == N:  # no unfolding, or the whole batch's columns fit one chunk: nothing to gain
        y, cache = F.conv2d_forward(x, weight, bias, stride, padding, dilation)
        return y, ("functional", cache)
    x = np.ascontiguousarray(x)
    w2 = weight.reshape(Fo, K)
    y = np.empty((N, Fo, P), dtype=x.dtype)
    ws = workspace((g * K * P,), x.dtype)
    for a in range(0, N, g):
        b = min(N, a + g)
        cols = ws[: (b - a) * K * P].reshape(b - a, K, P)
        kernels.im2col_into(x[a:b], cols, *geom)
        np.matmul(w2, cols, out=y[a:b])
        if bias is not None:
            y[a:b] += bias[:, None]  # while y[a:b] is still in cache
    return y.reshape(N, Fo, Ho, Wo), ("fast", x, weight, bias is not None, geom)


def conv2d_backward(dy, cache, input_grad=True):
    """Gradients of :func:`conv2d_forward`: ``(dx, dweight, dbias)``, as the readable pair's.

    ``input_grad=False`` skips ``dx`` (None). ``dW^T = sum_n im2col(x[n]) @ dY[n]^T``,
    ``db = sum_{n,i,j} dY``; ``dx`` see the module docstring.
    """
    if cache[0] == "functional":
        return F.conv2d_backward(dy, cache[1], input_grad)
    _, x, weight, has_bias, geom = cache
    kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo = geom
    N, C, H, W = x.shape
    Fo = weight.shape[0]
    K, P = C * kh * kw, Ho * Wo
    dy2 = np.ascontiguousarray(dy).reshape(N, Fo, P)
    dbias = dy2.sum(axis=(0, 2)) if has_bias else None
    # dx as the full convolution of dY with the flipped kernel where the readable pair uses it, else
    # col2im(W^T @ dY); the same rule (functional._full_convolution_for_dx)
    full = F._full_convolution_for_dx(weight, C, geom[:8]) if input_grad else None
    dx = np.empty((N, C, H, W), dtype=x.dtype) if input_grad else None
    if full is not None:
        flipped, (fph, fpw) = full
        w_full = flipped.reshape(C, Fo * kh * kw)
        full_geom = (kh, kw, 1, 1, fph, fpw, dh, dw, H, W)
    w2 = weight.reshape(Fo, K)
    dwT = np.zeros((K, Fo), dtype=x.dtype)  # dW^T: (C*kh*kw, Ho*Wo) @ (Ho*Wo, F), BLAS's fast operand order
    per_image = max(K * P, Fo * kh * kw * H * W) if full is not None else K * P
    g = _chunk(N, per_image * x.itemsize)
    ws = workspace((g * per_image,), x.dtype)
    part = np.empty((g, K, Fo), dtype=x.dtype)
    for a in range(0, N, g):
        b = min(N, a + g)
        cols = ws[: (b - a) * K * P].reshape(b - a, K, P)
        kernels.im2col_into(x[a:b], cols, *geom)  # recomputed: cheaper than keeping
        np.matmul(cols, dy2[a:b].transpose(0, 2, 1), out=part[: b - a])
        dwT += part[0] if b - a == 1 else part[: b - a].sum(axis=0)
        if not input_grad:
            continue
        if full is not None:  # the workspace now holds the unfolded dY of these images
            dcols = ws[: (b - a) * Fo * kh * kw * H * W].reshape(b - a, Fo * kh * kw, H * W)
            kernels.im2col_into(dy2[a:b].reshape(b - a, Fo, Ho, Wo), dcols, *full_geom)
            np.matmul(w_full, dcols, out=dx[a:b].reshape(b - a, C, H * W))
        else:  # the workspace now holds W^T @ dY of these images
            dcols = ws[: (b - a) * K * P].reshape(b - a, K, P)
            np.matmul(w2.T, dy2[a:b], out=dcols)
            kernels.col2im_into(dcols, dx[a:b], *geom)
    return dx, np.ascontiguousarray(dwT.T).reshape(weight.shape), dbias


__all__ = ["conv2d_forward", "conv2d_backward", "enabled", "set_enabled", "use_fastconv", "workspace"]

"""The upsampling family of the seed notes, each a layer with forward and backward.

All take ``(N, C, H, W)`` and return ``(N, C, s_h H, s_w W)`` (max-unpooling: the
size the pooling came from). None of them has trainable parameters; the
trainable upsampler is :class:`fcn_scratch.layers.ConvTranspose2d`, which FCN
initialises to :class:`BilinearUpsample`'s kernel.

* :class:`NearestUpsample` -- copy each pixel into an ``s x s`` block.
* :class:`BilinearUpsample` -- fixed bilinear interpolation, *exactly* a
  transposed convolution with the bilinear kernel (what FCN's ``upscore``
  layers compute at initialisation).
* :class:`BedOfNails` -- each pixel at the top-left of its ``s x s`` block, zeros elsewhere.
* :class:`MaxUnpool2d` -- each pixel back where :class:`fcn_scratch.layers.MaxPool2d`
  found its maximum (``return_indices=True``), zeros elsewhere.

Each layer's backward is the adjoint (transpose) of its forward, a linear map:
nearest sums each block, bed of nails keeps the top-left of each block,
max-unpooling gathers at the saved indices, bilinear is a strided convolution.
The pure ``*_forward``/``*_backward`` pairs come first, the layers after.
"""

from __future__ import annotations

import numpy as np

from . import functional as F
from ._validate import check_array, check_grad, need_cache, pair, positive_int
from .init import bilinear_taps
from .layers import Module

# --------------------------------------------------------------------------- nearest neighbour


def nearest_upsample_forward(x, scale_factor):
    """``y[n, c, i, j] = x[n, c, i // sh, j // sw]``: ``(N, C, H, W) -> (N, C, sh H, sw W)``."""
    sh, sw = scale_factor
    N, C, H, W = x.shape
    y = np.broadcast_to(x[:, :, :, None, :, None], (N, C, H, sh, W, sw)).reshape(N, C, H * sh, W * sw)
    return y, (x.shape, sh, sw)


def nearest_upsample_backward(dy, cache):
    """Adjoint: each input pixel was copied into an ``sh x sw`` block, so it gets the block's sum."""
    (N, C, H, W), sh, sw = cache
    return dy.reshape(N, C, H, sh, W, sw).sum(axis=(3, 5))


# --------------------------------------------------------------------------- bed of nails


def bed_of_nails_forward(x, scale_factor):
    """``y[n, c, i*sh, j*sw] = x[n, c, i, j]``, zero elsewhere: ``(N, C, H, W) -> (N, C, sh H, sw W)``."""
    sh, sw = scale_factor
    N, C, H, W = x.shape
    y = np.zeros((N, C, H * sh, W * sw), dtype=x.dtype)
    y[:, :, ::sh, ::sw] = x
    return y, (sh, sw)


def bed_of_nails_backward(dy, cache):
    """Adjoint: only the nails (top-left of each block) came from the input."""
    sh, sw = cache
    return np.ascontiguousarray(dy[:, :, ::sh, ::sw])


# --------------------------------------------------------------------------- bilinear


def bilinear_geometry(scale_factor: int) -> tuple[int, int]:
    """Kernel size and padding of the transposed conv that upsamples bilinearly by ``s``: ``(k, p)``.

    ``k = 2s`` for even ``s`` and ``2s - 1`` for odd ``s``, ``p = s // 2``. Then the
    output has ``(H-1)s - 2p + k = s H`` rows, and output row ``o`` reads input
    rows ``i`` with weight ``max(0, 1 - |(o + 1/2)/s - 1/2 - i|)``: linear
    interpolation at the half-pixel-centre source coordinate (PyTorch's
    ``align_corners=False``). An odd ``s`` needs the odd kernel because
    ``k = 2s`` would need the half-integer padding ``s/2``.
    """
    s = positive_int(scale_factor, "scale_factor")
    return 2 * s - s % 2, s // 2


def bilinear_upsample_forward(x, kernel, stride, padding):
    """Each channel on its own through one transposed conv with the ``(kh, kw)`` bilinear ``kernel``.

    ``(N, C, H, W)`` is viewed as ``(N*C, 1, H, W)``: same numbers as a
    ``C -> C`` ConvTranspose2d with the kernel on the channel diagonal, ``C``
    times less work.
    """
    N, C, H, W = x.shape
    w = kernel.astype(x.dtype, copy=False)[None, None]
    y, cache = F.conv_transpose2d_forward(x.reshape(N * C, 1, H, W), w, None, stride, padding)
    return y.reshape(N, C, *y.shape[2:]), (x.shape, cache)


def bilinear_upsample_backward(dy, cache):
    """Adjoint: a strided convolution of ``dy`` with the same kernel (the transposed conv's backward)."""
    x_shape, conv_cache = cache
    N, C = x_shape[:2]
    dxr, _, _ = F.conv_transpose2d_backward(dy.reshape(N * C, 1, *dy.shape[2:]), conv_cache)
    return dxr.reshape(x_shape)


# --------------------------------------------------------------------------- max-unpooling


def unpool_output_size(size, kernel, stride, padding) -> int:
    """The size max-pooling came from, by default: ``(H-1)s - 2p + k`` (PyTorch's ``max_unpool2d``)."""
    return (size - 1) * stride - 2 * padding + kernel


def max_unpool_forward(x, indices, output_size):
    """``y[n, c].flat[indices[n, c, i, j]] = x[n, c, i, j]``, zero elsewhere.

    x and indices ``(N, C, H, W)`` (indices flat ``h*Wo + w`` into the output
    plane, as :class:`fcn_scratch.layers.MaxPool2d` saves them) ->
    y ``(N, C, Ho, Wo)`` with ``(Ho, Wo) = output_size``.
    """
    N, C, H, W = x.shape
    Ho, Wo = output_size
    y = np.zeros((N, C, Ho * Wo), dtype=x.dtype)
    idx = indices.reshape(N, C, H * W)
    np.put_along_axis(y, idx, x.reshape(N, C, H * W), axis=2)
    return y.reshape(N, C, Ho, Wo), (x.shape, idx)


def max_unpool_backward(dy, cache):
    """Adjoint: gather ``dy`` at the saved indices (``dx = dy.flat[indices]``), as PyTorch does."""
    x_shape, idx = cache
    N, C = x_shape[:2]
    return np.take_along_axis(dy.reshape(N, C, -1), idx, axis=2).reshape(x_shape)


# --------------------------------------------------------------------------- layers


class _Upsample(Module):
    """Common bookkeeping: keep the cache (not under ``no_grad()``) and the output shape and dtype."""

    def _done(self, y, cache):
        self._remember(cache)
        self._out_shape, self._dtype = y.shape, y.dtype
        return y

    def _dy(self, dy):
        cache = need_cache(self._cache, type(self).__name__)
        check_grad(dy, "dy", self._out_shape, self._dtype)
        return cache


class NearestUpsample(_Upsample):
    """Nearest-neighbour upsampling by an integer ``scale_factor`` (int or ``(sh, sw)``).

    ``forward(x (N, C, H, W)) -> (N, C, sh H, sw W)``, ``y[.., i, j] = x[.., i // sh, j // sw]``;
    ``backward(dy) -> dx (N, C, H, W)``, the sum of ``dy`` over each ``sh x sw`` block.
    """

    def __init__(self, scale_factor):
        super().__init__()
        self.scale_factor = pair(scale_factor, "scale_factor", minimum=1)

    def forward(self, x):
        check_array(x, "x", ndim=4)
        return self._done(*nearest_upsample_forward(x, self.scale_factor))

    def backward(self, dy):
        return nearest_upsample_backward(dy, self._dy(dy))

    def extra_repr(self):
        return f"scale_factor={self.scale_factor}"


class BedOfNails(_Upsample):
    """Bed-of-nails upsampling: each value at the top-left of its ``sh x sw`` block, zeros elsewhere.

    ``forward(x (N, C, H, W)) -> (N, C, sh H, sw W)``; ``backward(dy) = dy[:, :, ::sh, ::sw]``.
    The same as :class:`MaxUnpool2d` with every index at a block's top-left corner.
    """

    def __init__(self, scale_factor):
        super().__init__()
        self.scale_factor = pair(scale_factor, "scale_factor", minimum=1)

    def forward(self, x):
        check_array(x, "x", ndim=4)
        return self._done(*bed_of_nails_forward(x, self.scale_factor))

    def backward(self, dy):
        return bed_of_nails_backward(dy, self._dy(dy))

    def extra_repr(self):
        return f"scale_factor={self.scale_factor}"


class BilinearUpsample(_Upsample):
    """Fixed bilinear upsampling of ``channels`` maps by an integer ``scale_factor`` (int or pair).

    ``forward(x (N, channels, H, W)) -> (N, channels, sh H, sw W)``:

        ``y[n, c, o, q] = sum_{i, j} x[n, c, i, j] * t_h(o, i) * t_w(q, j)``,
        ``t(o, i) = max(0, 1 - |(o + 1/2)/s - 1/2 - i|)``

    which is exactly ``ConvTranspose2d(channels, channels, k, stride=s, padding=s // 2)``
    carrying :func:`fcn_scratch.init.bilinear_weight` (``k = 2s``, or ``2s - 1`` for
    odd ``s``; see :func:`bilinear_geometry`) and no bias -- FCN's upscore layer
    before training. Inside the map it equals PyTorch's
    ``interpolate(mode="bilinear", align_corners=False)``; in the outermost
    ``s // 2`` rows and columns the transposed conv sees zeros beyond the edge
    where ``interpolate`` repeats the edge pixel. ``backward(dy) -> dx (N, channels, H, W)``.
    No trainable parameters.
    """

    def __init__(self, channels, scale_factor):
        super().__init__()
        self.channels = positive_int(channels, "channels")
        self.scale_factor = pair(scale_factor, "scale_factor", minimum=1)
        (kh, ph), (kw, pw) = bilinear_geometry(self.scale_factor[0]), bilinear_geometry(self.scale_factor[1])
        self.kernel_size, self.padding = (kh, kw), (ph, pw)
        self.kernel = np.outer(bilinear_taps(kh), bilinear_taps(kw))  # (kh, kw), float64

    def forward(self, x):
        check_array(x, "x", ndim=4, channels=self.channels)
        return self._done(*bilinear_upsample_forward(x, self.kernel, self.scale_factor, self.padding))

    def backward(self, dy):
        return bilinear_upsample_backward(dy, self._dy(dy))

    def extra_repr(self):
        return (f"{self.channels}, scale_factor={self.scale_factor}, kernel_size={self.kernel_size}, "
                f"padding={self.padding}")


class MaxUnpool2d(_Upsample):
    """Max-unpooling: put each value back where max-pooling found it, zeros elsewhere.

    ``MaxUnpool2d(kernel_size, stride=None, padding=0)`` (the pooling's own
    hyper-parameters; ``stride`` defaults to ``kernel_size``).
    ``forward(x (N, C, H, W), indices (N, C, H, W), output_size=None) -> (N, C, Ho, Wo)``
    with ``indices`` the flat ``h*Wo + w`` positions from
    ``MaxPool2d(..., return_indices=True)`` and, by default,
    ``Ho = (H-1)s - 2p + k``; pass ``output_size=(Ho, Wo)`` (or the pooled
    input's full shape) to undo a pooling whose input size that formula does not
    recover (odd sizes, ceil mode). ``backward(dy) -> dx = dy.flat[indices]``.

    When windows overlap (stride < kernel) one pixel can win two windows: both
    indices name the same position and carry the same value, which is written
    once. The backward then gathers that position's gradient for both, as
    PyTorch does (the exact derivative when those values are tied, as they are
    for pooled maps).
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size", minimum=1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", minimum=1)
        self.padding = pair(padding, "padding", minimum=0)

    def _output_size(self, in_hw, output_size):
        default = tuple(unpool_output_size(n, k, s, p) for n, k, s, p in
                        zip(in_hw, self.kernel_size, self.stride, self.padding))
        if output_size is None:
            size = default
        else:
            if isinstance(output_size, (tuple, list)) and len(output_size) == 4:
                output_size = tuple(output_size[2:])  # a full (N, C, H, W) shape
            size = pair(tuple(output_size) if isinstance(output_size, list) else output_size,
                        "output_size", minimum=1)
            for n, d, s, axis in zip(size, default, self.stride, "hw"):
                if not d - s < n < d + s:  # PyTorch's rule: within one stride of the default
                    raise ValueError(f"output_size must be within one stride of the default {default} "
                                     f"(exclusive) along {axis}, got {size}")
        if min(size) < 1:
            raise ValueError(f"MaxUnpool2d: output size {size} for input {in_hw} is not positive; "
                             f"check kernel_size {self.kernel_size}, stride {self.stride}, padding {self.padding}")
        return size

    def forward(self, x, indices, output_size=None):
        check_array(x, "x", ndim=4)
        if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu":
            kind = indices.dtype if isinstance(indices, np.ndarray) else type(indices).__name__
            raise TypeError(f"indices must be an integer numpy.ndarray (from MaxPool2d(return_indices=True)), "
                            f"got {kind}")
        if indices.shape != x.shape:
            raise ValueError(f"indices must have the shape of x {x.shape} (N, C, H, W), got {indices.shape}")
        Ho, Wo = self._output_size(x.shape[2:], output_size)
        if indices.size and (indices.min() < 0 or indices.max() >= Ho * Wo):
            raise ValueError(f"indices must lie in [0, {Ho * Wo}) for an output of size {(Ho, Wo)}, "
                             f"got values in [{indices.min()}, {indices.max()}]")
        return self._done(*max_unpool_forward(x, indices.astype(np.intp, copy=False), (Ho, Wo)))

    def backward(self, dy):
        return max_unpool_backward(dy, self._dy(dy))

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


__all__ = ["NearestUpsample", "BilinearUpsample", "BedOfNails", "MaxUnpool2d", "bilinear_geometry",
           "unpool_output_size"]

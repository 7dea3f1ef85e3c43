"""Convolutionalization: a classifier's dense layers rewritten as convolutions, weights copied.

A dense layer over a ``C x h x w`` feature map computes, for each unit ``f``,

    ``y[f] = b[f] + sum_{c, u, v} W[f, c*h*w + u*w + v] * x[c, u, v]``

(``W`` is ``(out_features, C*h*w)`` as ``torch.nn.Linear``, the map flattened
C-major, i.e. ``x.reshape(N, -1)``). A convolution with ``out_features``
filters of size ``h x w``, no padding, stride 1, computes at output pixel
``(i, j)``

    ``z[f, i, j] = b[f] + sum_{c, u, v} K[f, c, u, v] * x[c, i + u, j + v]``

so with ``K = W.reshape(out_features, C, h, w)`` it is the *same* sum when the
map is exactly ``h x w`` (one output pixel), and on a bigger ``H x W`` map it
is the dense layer applied to every ``h x w`` window -- an
``(H-h+1) x (W-w+1)`` grid of predictions in one pass, sharing all the work of
overlapping windows. The seed's example: 200 units over 100x7x7 features
become a 7x7 conv with 200 filters giving 200 maps of 1x1; fed a 14x14 map
(a 448 instead of a 224 image) it gives 8x8 maps. Following dense layers see
one vector per pixel and become 1x1 convolutions (:func:`dense_to_conv1x1`).
That is how VGG16's fc6 (7x7x512 -> 4096), fc7 and fc8 became FCN's
convolutional head.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_array, check_grad, float_dtype, need_cache, positive_int
from .init import make_rng
from .layers import Conv2d, WeightBiasLayer


class Linear(WeightBiasLayer):
    """Dense (fully connected) layer: ``y = x W^T + b``, as ``torch.nn.Linear``.

    ``Linear(in_features, out_features, bias=True, *, dtype=np.float32, seed=None, rng=None)``.
    ``forward(x (N, in_features)) -> y (N, out_features)``; weight ``(out_features, in_features)``,
    bias ``(out_features,)``, PyTorch's default uniform init ``U(-1/sqrt(in), 1/sqrt(in))``.
    ``backward(dy (N, out)) -> dx = dy W``, with ``dW = dy^T x`` and ``db = sum_n dy``.
    """

    def __init__(self, in_features, out_features, bias=True, *, dtype=np.float32, seed=None, rng=None):
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.dtype = float_dtype(dtype)
        self._init_weight_bias((self.out_features, self.in_features), self.out_features, bias, make_rng(seed, rng))

    def forward(self, x):
        check_array(x, "x", ndim=2, dtype=self.dtype)
        if x.shape[1] != self.in_features:
            raise ValueError(f"x must have shape (N, {self.in_features}) (N, in_features), got {x.shape}; "
                             f"flatten a feature map with x.reshape(N, -1)")
        y = x @ self.weight.T
        if self.bias is not None:
            y += self.bias
        self._remember(x)
        self._out_shape = y.shape
        return y

    def backward(self, dy):
        x = need_cache(self._cache, type(self).__name__)
        check_grad(dy, "dy", self._out_shape, self.dtype)
        self.grads["weight"] = dy.T @ x
        if self.bias is not None:
            self.grads["bias"] = dy.sum(axis=0)
        return dy @ self.weight

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


Dense = Linear


def _dense_arrays(weight, bias, what):
    if not isinstance(weight, np.ndarray) or weight.ndim != 2:
        shape = weight.shape if isinstance(weight, np.ndarray) else type(weight).__name__
        raise ValueError(f"{what}: weight must be a 2-D array (out_features, in_features), got {shape}")
    if weight.dtype.kind != "f":
        raise TypeError(f"{what}: weight must be floating point, got dtype {weight.dtype}")
    if bias is not None:
        if not isinstance(bias, np.ndarray) or bias.shape != (weight.shape[0],):
            shape = bias.shape if isinstance(bias, np.ndarray) else type(bias).__name__
            raise ValueError(f"{what}: bias must have shape ({weight.shape[0]},) (out_features,), got {shape}")
    return weight, bias


def _conv_with(weight4, bias, dtype, kernel):
    out_features, C = weight4.shape[:2]
    # Conv2d draws a throwaway init from a fixed seed; we overwrite it with the copied weights.
    conv = Conv2d(C, out_features, kernel, bias=bias is not None, dtype=dtype, seed=0)
    conv.params["weight"][...] = weight4
    if bias is not None:
        conv.params["bias"][...] = bias
    return conv


def dense_to_conv(weight, bias, in_shape, dtype=None) -> Conv2d:
    """The ``Conv2d`` with an ``h x w`` kernel that computes the dense layer ``(weight, bias)``.

    ``weight (out_features, C*h*w)``, ``bias (out_features,)`` or None (a
    ``torch.nn.Linear`` or :class:`Linear` acting on a flattened ``C x h x w``
    map), ``in_shape = (C, h, w)``. Returns ``Conv2d(C, out_features, (h, w))``,
    stride 1, no padding, weight ``weight.reshape(out_features, C, h, w)``
    (copied). ``dtype`` defaults to the weight's.
    """
    weight, bias = _dense_arrays(weight, bias, "dense_to_conv")
    if not (isinstance(in_shape, (tuple, list)) and len(in_shape) == 3):
        raise ValueError(f"in_shape must be the feature map's (C, h, w), got {in_shape!r}")
    C, h, w = (positive_int(v, "in_shape") for v in in_shape)
    if weight.shape[1] != C * h * w:
        raise ValueError(f"weight has {weight.shape[1]} inputs per unit but in_shape {(C, h, w)} flattens to "
                         f"{C * h * w}; expected weight shape ({weight.shape[0]}, {C * h * w})")
    dtype = weight.dtype if dtype is None else float_dtype(dtype)
    return _conv_with(weight.reshape(weight.shape[0], C, h, w), bias, dtype, (h, w))


def dense_to_conv1x1(weight, bias, dtype=None) -> Conv2d:
    """A dense layer after the first, as a 1x1 ``Conv2d``: ``weight (out, in) -> (out, in, 1, 1)``.

    Applied to an ``(N, in, H, W)`` map it runs the dense layer on the vector at every pixel.
    """
    weight, bias = _dense_arrays(weight, bias, "dense_to_conv1x1")
    dtype = weight.dtype if dtype is None else float_dtype(dtype)
    return _conv_with(weight[:, :, None, None], bias, dtype, 1)


__all__ = ["Linear", "Dense", "dense_to_conv", "dense_to_conv1x1"]

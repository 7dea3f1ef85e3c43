"""Weight initialisation: PyTorch's default, He-normal, and the bilinear upsampling kernel.

FCN's recipe (Long et al. 2015, section 4.3): the backbone starts from random
He-normal weights here (there is no pretrained VGG to load offline), the
*score* layers start at zero, and every transposed convolution starts as
bilinear interpolation, so a fresh FCN-16s/8s computes the same as FCN-32s and
the skips only add what training teaches them.
"""

from __future__ import annotations

import math

import numpy as np

from ._validate import float_dtype, positive_int


def make_rng(seed=None, rng=None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from ``rng`` if given, else from ``seed``."""
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return rng
    return np.random.default_rng(seed)


def fan_in(shape, transposed: bool = False) -> int:
    """Inputs feeding one output: ``C_in * kh * kw`` for a conv weight ``(F, C_in, kh, kw)``.

    A transposed-conv weight ``(C_in, C_out, kh, kw)`` counts ``C_out * kh * kw``,
    as PyTorch does (it reads the fan-in off axis 1 for both).
    """
    return int(shape[1] * np.prod(shape[2:]))


def default_uniform(shape, rng, dtype=np.float32) -> np.ndarray:
    """PyTorch's default conv init: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
    bound = 1.0 / math.sqrt(max(1, fan_in(shape)))
    return rng.uniform(-bound, bound, size=shape).astype(float_dtype(dtype))


def he_normal(shape, rng, dtype=np.float32) -> np.ndarray:
    """He et al. 2015: ``N(0, 2 / fan_in)``, which keeps ReLU activations' variance steady."""
    std = math.sqrt(2.0 / max(1, fan_in(shape)))
    return (rng.standard_normal(size=shape) * std).astype(float_dtype(dtype))


def bilinear_taps(k: int) -> np.ndarray:
    """1-D bilinear taps: ``f = ceil(k/2)``, ``c = f-1`` (k odd) or ``f-0.5`` (k even), ``1 - |i-c|/f``."""
    k = positive_int(k, "k")
    f = math.ceil(k / 2)
    c = f - 1 if k % 2 == 1 else f - 0.5
    return 1 - np.abs(np.arange(k) - c) / f


def bilinear_kernel(k: int, dtype=np.float64) -> np.ndarray:
    """The ``k x k`` bilinear interpolation kernel ``w[i, j] = taps[i] * taps[j]``.

    k=4 has taps 1/4, 3/4, 3/4, 1/4 on each axis; k=3 has 1/2, 1, 1/2.
    Used with ``stride = s`` and ``k = 2s`` it interpolates between input pixels.
    """
    taps = bilinear_taps(k)
    return np.outer(taps, taps).astype(float_dtype(dtype))


def bilinear_weight(in_channels: int, out_channels: int, k, dtype=np.float32) -> np.ndarray:
    """A ConvTranspose2d weight ``(C_in, C_out, kh, kw)`` that upsamples each channel bilinearly.

    The kernel sits on the channel diagonal only (channel c feeds channel c);
    off-diagonal entries are zero. ``k`` may be an int or a pair ``(kh, kw)``.
    """
    kh, kw = (k, k) if isinstance(k, (int, np.integer)) else k
    weight = np.zeros((in_channels, out_channels, kh, kw), dtype=float_dtype(dtype))
    kernel = np.outer(bilinear_taps(kh), bilinear_taps(kw))
    for c in range(min(in_channels, out_channels)):
        weight[c, c] = kernel
    return weight

"""Exercise 09 (lesson 06): the bilinear upsampling kernel FCN starts its upsamplers from.

Write both functions, then grade them:

    fcn-scratch exercise check bilinear_kernel

You may use numpy and math. Do not import the engine's ``fcn_scratch.init``
(``bilinear_taps``, ``bilinear_kernel``, ``bilinear_weight``): those are the answers.
"""

import math

import numpy as np


def bilinear_kernel(k, dtype=np.float64):
    """The ``k x k`` bilinear interpolation kernel ``w[i, j] = t[i] * t[j]``.

    The 1-D taps, for ``i = 0 .. k-1``:

        f = ceil(k / 2)
        c = f - 1      if k is odd   (a tap sits exactly on the centre)
            f - 0.5    if k is even  (the centre falls between two taps)
        t[i] = 1 - |i - c| / f

    k = 4 gives taps 1/4, 3/4, 3/4, 1/4; k = 3 gives 1/2, 1, 1/2.
    Returns a ``(k, k)`` array of ``dtype``. Used as a transposed convolution
    with stride s and k = 2s, it interpolates linearly between input pixels.
    """
    raise NotImplementedError("write bilinear_kernel (exercise 09)")


def bilinear_weight(in_channels, out_channels, k, dtype=np.float32):
    """A ConvTranspose2d weight ``(in_channels, out_channels, kh, kw)`` that upsamples each channel bilinearly.

    ``k`` is an int or a pair ``(kh, kw)`` (then the kernel is the outer product
    of the kh-taps and the kw-taps). The kernel sits on the channel diagonal
    only, ``w[c, c] = kernel`` for ``c < min(in_channels, out_channels)``:
    channel c feeds channel c, every other entry is 0.
    """
    raise NotImplementedError("write bilinear_weight (exercise 09)")

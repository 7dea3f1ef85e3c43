"""Exercise 06 (lesson 04): max-pool forward, PyTorch's ``max_pool2d``.

Write ``maxpool2d_forward`` below, then grade it:

    fcn-scratch exercise check maxpool_forward

You may use numpy. Do not import the engine's ``fcn_scratch.functional.maxpool2d_forward``,
``fcn_scratch.kernels.maxpool_forward`` or ``fcn_scratch.layers.MaxPool2d``: those are the answers.
"""

import numpy as np


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over ``kh x kw`` windows: returns ``(y, cache)``.

    x ``(N, C, H, W)``; kernel_size, stride, padding, dilation: an int or a
    pair ``(h, w)``; ``stride=None`` means ``stride = kernel_size``. Returns
    y ``(N, C, Ho, Wo)`` (x's dtype) and a cache of your choice.

        y[n, c, i, j] = max over u < kh, v < kw of x_pad[n, c, i*sh + u*dh, j*sw + v*dw]

    Output size (per axis), PyTorch's rule:
      floor mode: ``Ho = (H + 2p - d(k-1) - 1) // s + 1``
      ceil mode:  ``Ho = ceil((H + 2p - d(k-1) - 1) / s) + 1``, then minus 1 if
                  ``(Ho - 1) * s >= H + p`` (the last window must start inside
                  the input or the left padding).

    Hints: pad with ``-np.inf``, not 0 (a zero pad would beat every negative
    activation at the border); in ceil mode the last window may hang over the
    bottom/right edge: pad enough -inf there for it to fit. A loop over the
    taps (u, v) with ``np.maximum`` over strided slices is enough.
    """
    raise NotImplementedError("write maxpool2d_forward (exercise 06)")

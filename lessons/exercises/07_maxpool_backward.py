"""Exercise 07 (lesson 04): max-pool backward, routing the gradient to the argmax.

This file holds BOTH functions: your forward (start from exercise 06) must keep
in its cache where each window's maximum was. Grade them:

    fcn-scratch exercise check maxpool_backward

You may use numpy. Do not import the engine's ``fcn_scratch.functional.maxpool2d_forward``
/ ``maxpool2d_backward``, ``fcn_scratch.kernels.maxpool_forward`` / ``maxpool_backward``
or ``fcn_scratch.layers.MaxPool2d``: those are the answers.
"""

import numpy as np


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """As exercise 06: x ``(N, C, H, W)`` -> ``(y (N, C, Ho, Wo), cache)``.

    The cache must say, for every output pixel, WHICH input pixel won its
    window (e.g. a flat index ``h*W + w`` per output, shape ``(N, C, Ho, Wo)``).
    On a tie the FIRST maximum in row-major window order (tap u, then v) wins.
    """
    raise NotImplementedError("write maxpool2d_forward with argmax indices (exercise 07)")


def maxpool2d_backward(dy, cache):
    """Gradient of :func:`maxpool2d_forward`: dx ``(N, C, H, W)`` from dy ``(N, C, Ho, Wo)``.

        dx[n, c, h, w] = sum of dy[n, c, i, j] over the windows (i, j) that (h, w) won

    Every other pixel gets 0. Hints: when the stride is smaller than the kernel
    one pixel can win several windows, and then it gets the SUM of their
    gradients: use ``np.add.at`` (or ``+=`` in a loop), not ``dx[idx] = dy``,
    which keeps only one of the repeated indices. Never write into dy.
    """
    raise NotImplementedError("write maxpool2d_backward (exercise 07)")

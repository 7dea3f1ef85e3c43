"""Exercise 03 (lesson 03): convolution forward pass by im2col + one GEMM.

Write ``conv2d_forward`` below, then grade it:

    fcn-scratch exercise check conv2d_forward

You may use numpy and the engine's unfolding, ``from fcn_scratch.kernels import
im2col`` (or paste your own from exercise 01). Do not import the engine's
``fcn_scratch.functional.conv2d_forward`` (nor ``fcn_scratch.layers.Conv2d``):
that is the answer the grader compares you with.
"""

import numpy as np


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """Cross-correlation, as PyTorch's ``conv2d``: returns ``(y, cache)``.

    x ``(N, C, H, W)``, weight ``(F, C, kh, kw)``, bias ``(F,)`` or None;
    stride, padding, dilation: an int or a pair ``(h, w)``. Returns
    y ``(N, F, Ho, Wo)`` with ``Ho = floor((H + 2p - d(k-1) - 1) / s) + 1``
    (per axis), and a ``cache`` of your choice (exercise 04's backward reads it).

        y[n, f, i, j] = b[f] + sum_{c,u,v} w[f, c, u, v] * x_pad[n, c, i*sh + u*dh, j*sw + v*dw]

    Hints: make every hyper-parameter a pair first
    (``sh, sw = (stride, stride) if isinstance(stride, int) else stride``);
    compute Ho, Wo; ``cols = im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)``
    is ``(N, C*kh*kw, Ho*Wo)``; then ``weight.reshape(F, -1) @ cols`` (matmul
    broadcasts over N) is ``(N, F, Ho*Wo)``; add ``bias[None, :, None]`` unless
    bias is None; reshape to ``(N, F, Ho, Wo)``. Keep x's shape, the weight,
    the cols and the geometry in the cache.
    """
    raise NotImplementedError("write conv2d_forward (exercise 03)")

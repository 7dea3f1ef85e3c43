"""Exercise 04 (lesson 03): convolution backward pass.

This file holds BOTH functions: your forward (paste it from exercise 03) makes
the cache your backward reads, so you choose what the cache holds. Grade them:

    fcn-scratch exercise check conv2d_backward

The grader compares dx, dweight, dbias with the engine's and runs float64
finite differences of your forward against a random upstream gradient.
You may use numpy and the engine's ``from fcn_scratch.kernels import im2col,
col2im`` (or your own from exercises 01-02). Do not import the engine's
``fcn_scratch.functional.conv2d_forward`` / ``conv2d_backward`` (nor
``fcn_scratch.layers.Conv2d``): those are the answers.
"""

import numpy as np


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """As exercise 03: x ``(N, C, H, W)``, weight ``(F, C, kh, kw)``, bias ``(F,)`` or None
    -> ``(y (N, F, Ho, Wo), cache)``. Keep what the backward needs in the cache."""
    raise NotImplementedError("paste your conv2d_forward from exercise 03")


def conv2d_backward(dy, cache, input_grad=True):
    """Gradients of :func:`conv2d_forward`: returns ``(dx, dweight, dbias)``.

    dy ``(N, F, Ho, Wo)`` is the upstream gradient dL/dy. Returns
    dx ``(N, C, H, W)`` (None when ``input_grad=False``), dweight
    ``(F, C, kh, kw)``, dbias ``(F,)`` (None when the forward had no bias).
    With ``cols`` the forward's im2col output and ``dY = dy.reshape(N, F, Ho*Wo)``:

        dweight = sum_n dY[n] @ cols[n].T          reshaped to (F, C, kh, kw)
        dbias   = dY summed over n and the pixels
        dx      = col2im(weight.reshape(F, -1).T @ dY, geometry of the forward)

    Hints: dx is a transposed convolution of dy; col2im sums the overlapping
    taps for you. If you write dx instead as a 'full' convolution of dy (stride
    1 only), the kernel must be flipped in both spatial axes and its in/out
    channels swapped. Never write into dy (a skip hands it to two branches).
    """
    raise NotImplementedError("write conv2d_backward (exercise 04)")

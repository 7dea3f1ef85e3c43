"""Exercise 05 (lesson 04): ReLU forward and backward.

Write both functions, then grade them:

    fcn-scratch exercise check relu

You may use numpy. Do not import the engine's ``fcn_scratch.functional.relu_forward``
/ ``relu_backward`` (nor ``fcn_scratch.layers.ReLU``): those are the answers.
"""

import numpy as np


def relu_forward(x):
    """``y = max(x, 0)`` elementwise: returns ``(y, cache)``.

    x any shape, e.g. ``(N, C, H, W)``; y the same shape and dtype. The cache
    is what the backward needs (the mask of positive inputs is enough).
    """
    raise NotImplementedError("write relu_forward (exercise 05)")


def relu_backward(dy, cache):
    """``dx = dy * [x > 0]``: the gradient passes where the input was positive.

    At exactly ``x = 0`` ReLU has a kink; its subgradient there is taken as 0
    (PyTorch's choice), so the test is ``x > 0``, not ``x >= 0``. Keep dy's
    dtype and never write into dy.
    """
    raise NotImplementedError("write relu_backward (exercise 05)")

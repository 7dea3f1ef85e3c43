"""Exercise 10 (lesson 07): per-pixel softmax cross-entropy with ignored pixels.

Write both functions, then grade them:

    fcn-scratch exercise check softmax_cross_entropy

You may use numpy. Do not import the engine's ``softmax_cross_entropy_forward`` /
``softmax_cross_entropy_backward`` (``fcn_scratch.functional``) or
``fcn_scratch.layers.SoftmaxCrossEntropy``: those are the answers.
"""

import numpy as np


def softmax_cross_entropy_forward(logits, labels, ignore_index=255):
    """Mean softmax cross-entropy over the non-ignored pixels: returns ``(loss, cache)``.

    logits ``(N, C, H, W)`` float; labels ``(N, H, W)`` ints in ``[0, C)`` or
    ``ignore_index``. With V the number of pixels whose label is not ignore_index:

        loss = (1/V) * sum over valid pixels of [ log sum_c exp(z_c) - z_label ]

    a Python float; V = 0 gives loss 0.0. The cache is what the backward needs.

    Hints: subtract each pixel's max logit first (``logits - logits.max(axis=1,
    keepdims=True)``): the loss is unchanged and exp cannot overflow. Pick the
    label's logit with ``np.take_along_axis(z, labels[:, None], axis=1)`` after
    replacing ignored labels by 0 (any valid class), then mask them out.
    """
    raise NotImplementedError("write softmax_cross_entropy_forward (exercise 10)")


def softmax_cross_entropy_backward(cache, dloss=1.0):
    """dlogits ``(N, C, H, W)``: the gradient of ``dloss * loss`` w.r.t. the logits.

        dlogits = dloss * (softmax(z) - onehot(label)) / V    on valid pixels
                = 0                                             on ignored pixels

    V = 0 gives all zeros. Keep the logits' dtype.
    """
    raise NotImplementedError("write softmax_cross_entropy_backward (exercise 10)")

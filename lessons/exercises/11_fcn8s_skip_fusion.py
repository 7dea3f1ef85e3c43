"""Exercise 11 (lesson 08): FCN-8s's skip fusion, crop at the top-left and add.

FCN-16s/8s upsample the coarse scores x2 (``upscore2``) and add the finer
scores of a skip (``score_pool4_fr``); on an input whose H, W are not
multiples of 32 the upsampled map is a row/column or so bigger than the skip,
and is cut at the TOP-LEFT corner first. Write the fusion and its backward:

    fcn-scratch exercise check fcn8s_skip_fusion

The last check runs a tiny FCN-8s on a 37x45 image with both of its fusions
done by your function. You may use numpy. Do not import the engine's
``fcn_scratch.functional.crop_add_forward`` / ``crop_add_backward`` (nor
``crop_forward``, ``add_forward``, ``layers.Crop``, ``layers.Add``): those are the answers.
"""

import numpy as np


def crop_add_forward(up, skip):
    """``y = up[:, :, :h, :w] + skip``: returns ``(y, cache)``.

    up ``(N, C, Hu, Wu)`` the upsampled scores, skip ``(N, C, h, w)`` the skip's
    scores, with ``Hu >= h`` and ``Wu >= w`` -> y ``(N, C, h, w)``.

    Why the top-left (offset 0) and not the centre: pool output row i covers
    input rows 2i and 2i+1, and the bilinear upsampler (k = 2s, p = s/2) puts
    row i's peak back on the same place, so both grids already line up at the
    top-left; the surplus rows/columns come from ceil-mode pooling's last,
    partial window, at the bottom/right, and those are the ones dropped.
    """
    raise NotImplementedError("write crop_add_forward (exercise 11)")


def crop_add_backward(dy, cache):
    """Gradients of :func:`crop_add_forward`: ``(d_up, d_skip)``.

    dy ``(N, C, h, w)`` -> d_up ``(N, C, Hu, Wu)``: dy in the kept top-left
    window, 0 in the cropped-off rows and columns; d_skip ``(N, C, h, w)``: dy
    itself (return a copy: never hand out or write into dy).
    """
    raise NotImplementedError("write crop_add_backward (exercise 11)")

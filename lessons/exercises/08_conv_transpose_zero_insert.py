"""Exercise 08 (lesson 05): transposed convolution by zero insertion, and its backward.

This file holds BOTH functions (your forward's cache feeds your backward). Grade them:

    fcn-scratch exercise check conv_transpose_zero_insert

The signature is exactly the engine's ``conv_transpose2d_forward``, including
``method``: this exercise computes the zero-insertion route whatever ``method``
says (the grader passes ``method="zero_insert"``). You may use numpy and the
engine's convolution, ``from fcn_scratch.functional import conv2d_forward,
conv2d_backward`` (or your own from exercises 03-04). Do not import the engine's
``conv_transpose2d_forward`` / ``conv_transpose2d_backward``, ``zero_insert``,
``pad_or_crop`` or ``fcn_scratch.layers.ConvTranspose2d``: those are the answers.
"""

import numpy as np


def conv_transpose2d_forward(
    x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1, method="col2im"
):
    """Transposed convolution, as PyTorch's ``conv_transpose2d``: returns ``(y, cache)``.

    x ``(N, C_in, H, W)``, weight ``(C_in, C_out, kh, kw)`` (note: in before
    out, the transpose of a conv weight), bias ``(C_out,)`` or None; stride,
    padding, output_padding, dilation: an int or a pair ``(h, w)``. Returns
    y ``(N, C_out, Ho, Wo)`` with ``Ho = (H-1)s - 2p + d(k-1) + op + 1``.

    The recipe (per axis):
      1. insert ``s-1`` zeros between neighbouring input pixels:
         ``(H-1)s + 1`` rows, x at rows ``0, s, 2s, ...``;
      2. pad ``d(k-1) - p`` zeros on top/left and ``d(k-1) - p + op`` on the
         bottom/right (``k-p-1`` when d = 1); a NEGATIVE amount crops instead;
      3. a stride-1 convolution, dilation d, no padding, with the kernel
         flipped in both spatial axes and its in/out channels swapped:
         ``np.flip(weight, (2, 3)).transpose(1, 0, 2, 3)``, shape ``(C_out, C_in, kh, kw)``,
         plus the bias.

    FCN's upsamplers use k = 2s, p = s/2 (k4 s2 p1 doubles the size).
    """
    raise NotImplementedError("write conv_transpose2d_forward by zero insertion (exercise 08)")


def conv_transpose2d_backward(dy, cache):
    """Gradients of :func:`conv_transpose2d_forward`: ``(dx, dweight, dbias)``.

    dy ``(N, C_out, Ho, Wo)`` -> dx ``(N, C_in, H, W)``, dweight
    ``(C_in, C_out, kh, kw)``, dbias ``(C_out,)`` (None without bias).
    Go back through the three steps in reverse order:
      3. the stride-1 convolution: its backward gives d(padded input), the
         gradient of the flipped, swapped kernel, and dbias;
      2. the padding: cut the padded rows/columns off (where step 2 cropped,
         the cropped pixels get zeros);
      1. the zero insertion: keep every s-th pixel, ``dz[:, :, ::sh, ::sw]``.
    Then flip the kernel gradient back and swap its channels back to
    ``(C_in, C_out, kh, kw)``.
    """
    raise NotImplementedError("write conv_transpose2d_backward (exercise 08)")

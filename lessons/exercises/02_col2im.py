"""Exercise 02 (lesson 02): col2im, the adjoint of im2col.

Write ``col2im`` below, then grade it:

    fcn-scratch exercise check col2im

You may use numpy. Do not import the engine's ``fcn_scratch.kernels.col2im``
(the answer the grader compares you with). Calling the engine's im2col to
test your own work is fine, but col2im itself must not use it.
"""

import numpy as np


def col2im(cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Sum the patch columns back into an image: the adjoint of :func:`im2col`.

    cols ``(N, C*kh*kw, Ho*Wo)`` laid out as im2col's output (row
    ``(c*kh + i)*kw + j`` is tap (i, j) of channel c, column ``ho*Wo + wo`` is
    output pixel (ho, wo)); the other arguments are the geometry im2col used.
    Returns x ``(N, C, H, W)``, same dtype as cols, with

        x[n, c, h, w] = sum of cols[n, (c*kh + i)*kw + j, ho*Wo + wo]
                        over every (i, j, ho, wo) with ho*sh + i*dh - ph = h
                                                  and wo*sw + j*dw - pw = w

    Entries that im2col read from the zero padding have no pixel: drop them.

    Hints: windows overlap when the stride is smaller than the kernel, so a
    pixel collects several entries: ADD (``+=``), never assign. Scatter into a
    zero array of the padded size ``(N, C, H + 2ph, W + 2pw)`` with the same tap
    loops (and slices) as im2col, then cut the padding off. col2im is not
    the inverse of im2col: ``col2im(im2col(x))`` counts each pixel once per
    window that read it. It is the adjoint: ``<im2col(x), c> == <x, col2im(c)>``.
    """
    raise NotImplementedError("write col2im (exercise 02)")

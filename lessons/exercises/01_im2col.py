"""Exercise 01 (lesson 02): im2col, the patch matrix behind every convolution.

Write ``im2col`` below, then grade it:

    fcn-scratch exercise check im2col            # this file
    fcn-scratch exercise check im2col --file my_copy.py

You may use numpy (np.pad, loops, slicing). Do not import the engine's
``fcn_scratch.kernels.im2col`` (nor its twins): that is the answer the grader
compares you with.
"""

import numpy as np


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Unfold every ``kh x kw`` window of ``x`` into one column.

    x ``(N, C, H, W)``; kernel ``kh x kw``; stride ``(sh, sw)``; zero padding
    ``(ph, pw)`` on every side; dilation ``(dh, dw)``; ``Ho, Wo`` the output
    size (given: ``Ho = (H + 2ph - dh(kh-1) - 1) // sh + 1``).
    Returns cols ``(N, C*kh*kw, Ho*Wo)``, same dtype as x, with

        cols[n, (c*kh + i)*kw + j, ho*Wo + wo] = x_pad[n, c, ho*sh + i*dh, wo*sw + j*dw]

    where ``x_pad`` is x with ``ph`` zero rows above and below and ``pw`` zero
    columns left and right. Rows run over (channel, tap row, tap column) with
    the tap column fastest; columns over output pixels in row-major order.

    Hints: ``np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))``; two loops over the
    taps (i, j) are enough: ``x_pad[:, :, i*dh : i*dh + sh*(Ho-1) + 1 : sh, ...]``
    is the ``(N, C, Ho, Wo)`` block every output pixel reads at tap (i, j).
    Dilation spaces the taps; the stride moves the window.
    """
    raise NotImplementedError("write im2col (exercise 01)")

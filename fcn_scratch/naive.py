"""Plain-loop reference implementations: slow, short, obviously correct.

Every fast path in :mod:`fcn_scratch.kernels` and :mod:`fcn_scratch.functional`
is tested against one of these. They share no code with the fast paths (not
even the output-size formulas), so a bug would have to be made twice, the same
way, to slip through. They are also what the lessons show first: read the loop
here, then see how im2col + one GEMM computes the same numbers.

Conventions (the same as PyTorch's):

* images and feature maps ``(N, C, H, W)``; conv weight ``(F, C, kh, kw)``;
  transposed-conv weight ``(C_in, C_out, kh, kw)``; bias ``(F,)``;
* ``stride``, ``padding``, ``dilation``, ``kernel_size`` are an int or an
  ``(h, w)`` pair;
* the result keeps the input's dtype (float32 in, float32 out).

Nothing here validates its arguments; give them sensible sizes.
"""

from __future__ import annotations

import math

import numpy as np


def _pair(v):
    """``3 -> (3, 3)``; ``(3, 2)`` stays ``(3, 2)``."""
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _out_dtype(*arrays):
    return np.result_type(*[a for a in arrays if a is not None])


# --------------------------------------------------------------------------- convolution


def conv2d_naive(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """Cross-correlation, one output pixel at a time.

    ``y[n, f, i, j] = bias[f] + sum(window * weight[f])`` where ``window`` is the
    ``C x kh x kw`` patch of the zero-padded input whose top-left corner is at
    ``(i*sh, j*sw)``, taking every ``dh``-th row and ``dw``-th column.
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    N, C, H, W = x.shape
    F, _, kh, kw = weight.shape
    span_h = dh * (kh - 1) + 1  # how far the dilated kernel reaches
    span_w = dw * (kw - 1) + 1
    Ho = (H + 2 * ph - span_h) // sh + 1
    Wo = (W + 2 * pw - span_w) // sw + 1
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    xp[:, :, ph : ph + H, pw : pw + W] = x
    y = np.zeros((N, F, Ho, Wo), dtype=_out_dtype(x, weight, bias))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    top, left = i * sh, j * sw
                    window = xp[n, :, top : top + span_h : dh, left : left + span_w : dw]
                    y[n, f, i, j] = np.sum(window * weight[f])
                    if bias is not None:
                        y[n, f, i, j] += bias[f]
    return y


def conv_transpose2d_scatter(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1):
    """Transposed convolution as "each input pixel stamps a scaled copy of the kernel".

    Input pixel ``(h, w)`` of channel ``c`` adds ``x[n, c, h, w] * weight[c]``
    (a ``C_out x kh x kw`` stamp, spread out by the dilation) into a full-size
    buffer with its top-left corner at ``(h*sh, w*sw)``; overlapping stamps are
    summed. Then ``padding`` rows/columns are cut off each side. The buffer has
    ``output_padding`` extra rows/columns at the bottom/right, so the output is
    ``Ho = (H-1)s - 2p + d(k-1) + op + 1`` tall.
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    oph, opw = _pair(output_padding)
    dh, dw = _pair(dilation)
    N, Cin, H, W = x.shape
    _, Cout, kh, kw = weight.shape
    span_h = dh * (kh - 1) + 1
    span_w = dw * (kw - 1) + 1
    full = np.zeros((N, Cout, (H - 1) * sh + span_h + oph, (W - 1) * sw + span_w + opw), dtype=_out_dtype(x, weight, bias))
    for n in range(N):
        for c in range(Cin):
            for h in range(H):
                for w in range(W):
                    top, left = h * sh, w * sw
                    full[n, :, top : top + span_h : dh, left : left + span_w : dw] += x[n, c, h, w] * weight[c]
    Ho = full.shape[2] - 2 * ph
    Wo = full.shape[3] - 2 * pw
    y = full[:, :, ph : ph + Ho, pw : pw + Wo].copy()
    if bias is not None:
        for co in range(Cout):
            y[:, co] += bias[co]
    return y


def conv_matrix(in_hw, weight, stride=1, padding=0, dilation=1):
    """The convolution as one big matrix: ``conv2d(x)[0].ravel() == M @ x[0].ravel()``.

    For an input of spatial size ``in_hw = (H, W)`` and weight ``(F, C, kh, kw)``,
    ``M`` has shape ``(F*Ho*Wo, C*H*W)``: row ``(f, i, j)`` holds, in the column
    of every input pixel that output pixel ``(i, j)`` reads, the weight it is
    multiplied by (taps that fall on the zero padding have no column). No bias.
    """
    H, W = in_hw
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    F, C, kh, kw = weight.shape
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    M = np.zeros((F * Ho * Wo, C * H * W), dtype=weight.dtype)
    for f in range(F):
        for i in range(Ho):
            for j in range(Wo):
                row = (f * Ho + i) * Wo + j
                for c in range(C):
                    for u in range(kh):
                        for v in range(kw):
                            h = i * sh + u * dh - ph
                            w = j * sw + v * dw - pw
                            if 0 <= h < H and 0 <= w < W:
                                M[row, (c * H + h) * W + w] += weight[f, c, u, v]
    return M


def conv_transpose2d_matrix(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1):
    """Transposed convolution as ``M.T @ x``: literally the transpose of a convolution's matrix.

    A ConvTranspose2d weight ``(C_in, C_out, kh, kw)`` is exactly the weight
    ``(F=C_in, C=C_out, kh, kw)`` of the convolution it is the adjoint of: that
    convolution maps the transposed conv's *output* size back to its *input*
    size. Build that convolution's matrix ``M`` with :func:`conv_matrix` and
    apply ``M.T`` to each image. (With ``output_padding`` the convolution may
    produce an extra row/column; only the first ``H x W`` outputs are the
    adjoint's inputs, so only those rows of ``M`` are used.)
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    oph, opw = _pair(output_padding)
    dh, dw = _pair(dilation)
    N, Cin, H, W = x.shape
    _, Cout, kh, kw = weight.shape
    Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    Wo = (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    M = conv_matrix((Ho, Wo), weight, stride, padding, dilation)  # (Cin*Hc*Wc, Cout*Ho*Wo)
    Hc = (Ho + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wc = (Wo + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    M = M.reshape(Cin, Hc, Wc, Cout * Ho * Wo)[:, :H, :W].reshape(Cin * H * W, Cout * Ho * Wo)
    y = np.zeros((N, Cout, Ho, Wo), dtype=_out_dtype(x, weight, bias))
    for n in range(N):
        y[n] = (M.T @ x[n].ravel()).reshape(Cout, Ho, Wo)
        if bias is not None:
            y[n] += bias[:, None, None]
    return y


# --------------------------------------------------------------------------- im2col / col2im


def im2col_naive(x, kernel_size, stride=1, padding=0, dilation=1):
    """Unfold every patch into a column: ``(N, C, H, W) -> (N, C*kh*kw, Ho*Wo)``.

    ``cols[n, (c*kh + u)*kw + v, i*Wo + j]`` is the input pixel that kernel tap
    ``(u, v)`` of channel ``c`` sees at output pixel ``(i, j)``, 0 on the padding.
    """
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    N, C, H, W = x.shape
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = np.zeros((N, C * kh * kw, Ho * Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for u in range(kh):
                for v in range(kw):
                    for i in range(Ho):
                        for j in range(Wo):
                            h = i * sh + u * dh - ph
                            w = j * sw + v * dw - pw
                            if 0 <= h < H and 0 <= w < W:
                                cols[n, (c * kh + u) * kw + v, i * Wo + j] = x[n, c, h, w]
    return cols


def col2im_naive(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """Fold columns back, *adding* each entry to the pixel it came from: the adjoint of im2col.

    Not the inverse: a pixel seen by several overlapping windows receives the
    sum of all of them; entries that came from the padding are dropped.
    """
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    N, C, H, W = x_shape
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    x = np.zeros((N, C, H, W), dtype=cols.dtype)
    for n in range(N):
        for c in range(C):
            for u in range(kh):
                for v in range(kw):
                    for i in range(Ho):
                        for j in range(Wo):
                            h = i * sh + u * dh - ph
                            w = j * sw + v * dw - pw
                            if 0 <= h < H and 0 <= w < W:
                                x[n, c, h, w] += cols[n, (c * kh + u) * kw + v, i * Wo + j]
    return x


# --------------------------------------------------------------------------- max-pool


def _pool_out(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output length, spelled out with math.floor / math.ceil."""
    span = (size + 2 * p - d * (k - 1) - 1) / s
    out = (math.ceil(span) if ceil_mode else math.floor(span)) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # last window would start in the right padding
        out -= 1
    return out


def maxpool2d_naive(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over each window; returns ``(y, indices)``.

    Padding counts as ``-inf`` (never wins against a real value); taps that
    fall past the end of the input (ceil mode) are skipped the same way. Ties
    go to the first maximum in row-major window order. ``indices[n, c, i, j]``
    is the flat position ``h*W + w`` of the winner in its ``(H, W)`` plane
    (-1 if a window saw no input pixel at all).
    """
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(kernel_size if stride is None else stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    N, C, H, W = x.shape
    Ho = _pool_out(H, kh, sh, ph, dh, ceil_mode)
    Wo = _pool_out(W, kw, sw, pw, dw, ceil_mode)
    y = np.full((N, C, Ho, Wo), -np.inf, dtype=x.dtype)
    indices = np.full((N, C, Ho, Wo), -1, dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    for u in range(kh):
                        for v in range(kw):
                            h = i * sh + u * dh - ph
                            w = j * sw + v * dw - pw
                            if not (0 <= h < H and 0 <= w < W):
                                continue  # -inf padding: cannot win
                            if indices[n, c, i, j] < 0 or x[n, c, h, w] > y[n, c, i, j]:  # strict: first max wins
                                y[n, c, i, j] = x[n, c, h, w]
                                indices[n, c, i, j] = h * W + w
    return y, indices


# --------------------------------------------------------------------------- the rest


def relu_naive(x):
    """``max(x, 0)`` element by element."""
    y = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        y[idx] = x[idx] if x[idx] > 0 else 0
    return y


def dropout2d_naive(x, keep, p):
    """Channel dropout with a given ``keep`` mask ``(N, C)`` of booleans.

    Kept planes are multiplied by ``1/(1-p)`` (inverted scaling), dropped ones are zero.
    """
    N, C = x.shape[:2]
    y = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            if keep[n, c]:
                y[n, c] = x[n, c] / (1.0 - p)
    return y


def softmax_cross_entropy_naive(logits, labels, ignore_index=255):
    """Mean over non-ignored pixels of ``-log softmax(logits[n, :, h, w])[label]``, one pixel at a time.

    Each pixel's log-sum-exp subtracts that pixel's largest logit first, so
    ``exp`` never overflows. No valid pixel at all gives 0.
    """
    N, C, H, W = logits.shape
    total, count = 0.0, 0
    for n in range(N):
        for h in range(H):
            for w in range(W):
                label = int(labels[n, h, w])
                if label == ignore_index:
                    continue
                z = [float(logits[n, c, h, w]) for c in range(C)]
                m = max(z)
                log_sum_exp = m + math.log(sum(math.exp(zc - m) for zc in z))
                total += log_sum_exp - z[label]
                count += 1
    return total / count if count else 0.0


def softmax_cross_entropy_grad_naive(logits, labels, ignore_index=255):
    """``d loss / d logits``: ``(softmax - onehot) / count`` on valid pixels, 0 on ignored ones."""
    N, C, H, W = logits.shape
    grad = np.zeros(logits.shape, dtype=np.float64)
    count = sum(int(labels[idx]) != ignore_index for idx in np.ndindex(labels.shape))
    for n in range(N):
        for h in range(H):
            for w in range(W):
                label = int(labels[n, h, w])
                if label == ignore_index:
                    continue
                z = [float(logits[n, c, h, w]) for c in range(C)]
                m = max(z)
                e = [math.exp(zc - m) for zc in z]
                s = sum(e)
                for c in range(C):
                    grad[n, c, h, w] = (e[c] / s - (1.0 if c == label else 0.0)) / count
    return grad.astype(logits.dtype)


__all__ = [
    "conv2d_naive",
    "conv_transpose2d_scatter",
    "conv_matrix",
    "conv_transpose2d_matrix",
    "im2col_naive",
    "col2im_naive",
    "maxpool2d_naive",
    "relu_naive",
    "dropout2d_naive",
    "softmax_cross_entropy_naive",
    "softmax_cross_entropy_grad_naive",
]

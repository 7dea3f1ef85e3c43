"""The functional pairs against independent oracles.

* convolution against ``scipy.signal.correlate`` (valid mode on a padded input,
  dilation via a dilated kernel, stride by subsampling) and the plain-loop twin;
* transposed convolution: ``col2im`` vs ``zero_insert`` vs "each pixel stamps
  the kernel" vs "the transpose of the convolution matrix", and the worked
  example of the seed notes;
* dot-product (adjoint) tests ``<conv(x), g> == <conv_transpose(g), x>``;
* each of conv2d_backward's dx paths (1x1 GEMM, flipped-kernel convolution, col2im), reached on
  purpose, against the naive matrix transpose and float64 finite differences;
* the output-size formulas, PyTorch's ceil-mode edge cases included;
* max-pool, ReLU, dropout, crop/add and softmax cross-entropy against their naive twins,
  plus the numerical corner cases (huge logits, all pixels ignored, ties, -inf padding).
"""

import numpy as np
import pytest
from scipy import signal

from fcn_scratch import functional as F
from fcn_scratch import gradcheck, naive

# (N, C, F, H, W, kernel, stride, padding, dilation)
CONV_CONFIGS = [
    (2, 3, 4, 7, 9, 3, 1, 1, 1),
    (1, 2, 3, 9, 8, (3, 2), (2, 3), (1, 0), 1),
    (2, 2, 3, 11, 10, 3, 2, 2, 2),
    (1, 3, 2, 10, 9, (2, 3), 3, (0, 2), (3, 1)),
    (2, 4, 5, 5, 6, 1, 1, 0, 1),
    (1, 2, 2, 7, 7, 1, 2, 0, 1),
    (1, 3, 2, 4, 4, 4, 1, 0, 1),
    (1, 1, 2, 3, 3, 2, 3, 3, 1),
    (1, 2, 1, 1, 1, 1, 1, 0, 1),
    (2, 1, 2, 13, 12, (5, 3), 2, (2, 1), (1, 3)),
]

# (N, C_in, C_out, H, W, kernel, stride, padding, output_padding, dilation)
CONVT_CONFIGS = [
    (2, 3, 2, 4, 5, 4, 2, 1, 0, 1),  # FCN upscore2: k4 s2 p1 doubles the size
    (2, 2, 3, 3, 4, 3, 3, 1, 2, 1),  # output_padding 2 with stride 3
    (1, 2, 3, 3, 4, (3, 2), (2, 3), (0, 1), (1, 0), 2),
    (1, 2, 2, 4, 3, 2, 1, 0, 1, 2),  # output_padding 1 >= stride 1, allowed because dilation is 2
    (1, 2, 2, 2, 3, 16, 8, 4, 0, 1),  # FCN-8s upscore8
    (2, 1, 2, 5, 5, 3, 1, 1, 0, 1),  # stride 1 "same"
    (1, 2, 2, 3, 3, 1, 2, 0, 1, 1),  # 1x1 kernel, stride 2
    (1, 2, 2, 4, 4, 1, 2, 1, 1, 1),  # padding > d(k-1): the zero-insert recipe crops instead of padding
    (1, 1, 2, 5, 5, 3, 2, 3, 0, 1),  # padding 3 > k-1 = 2
    (1, 1, 1, 1, 1, 1, 1, 0, 0, 1),  # a single pixel
    (2, 2, 3, 5, 4, (2, 5), (3, 2), (2, 1), (2, 1), (1, 3)),
]

METHODS = F.TRANSPOSED_METHODS


def _conv_case(cfg, rng, dtype=np.float64, bias=True):
    N, C, Fo, H, W, k, s, p, d = cfg
    kh, kw = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((Fo, C, kh, kw)).astype(dtype)
    b = rng.standard_normal(Fo).astype(dtype) if bias else None
    return x, w, b, s, p, d


def _convt_case(cfg, rng, dtype=np.float64, bias=True):
    N, Ci, Co, H, W, k, s, p, op, d = cfg
    kh, kw = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal((N, Ci, H, W)).astype(dtype)
    w = rng.standard_normal((Ci, Co, kh, kw)).astype(dtype)
    b = rng.standard_normal(Co).astype(dtype) if bias else None
    return x, w, b, s, p, op, d


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d_scipy(x, w, b, stride, padding, dilation):
    """The oracle: valid-mode ``scipy.signal.correlate`` on the zero-padded input with a dilated kernel, subsampled."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    Fo, C, kh, kw = w.shape
    wd = np.zeros((Fo, C, dh * (kh - 1) + 1, dw * (kw - 1) + 1))
    wd[:, :, ::dh, ::dw] = w  # a dilated kernel is the kernel with d-1 zeros between taps
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = []
    for n in range(x.shape[0]):
        maps = []
        for f in range(Fo):
            full = sum(signal.correlate(xp[n, c], wd[f, c], mode="valid", method="direct") for c in range(C))
            maps.append(full[::sh, ::sw] + (0 if b is None else b[f]))
        out.append(maps)
    return np.array(out)


# --------------------------------------------------------------------------- convolution


@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=str)
def test_conv2d_matches_scipy_correlate(cfg, backend, rng):
    x, w, b, s, p, d = _conv_case(cfg, rng)
    y, _ = F.conv2d_forward(x, w, b, s, p, d)
    np.testing.assert_allclose(y, conv2d_scipy(x, w, b, s, p, d), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=str)
def test_conv2d_matches_naive(cfg, dtype, backend, rng):
    for bias in (True, False):
        x, w, b, s, p, d = _conv_case(cfg, rng, dtype, bias)
        y, _ = F.conv2d_forward(x, w, b, s, p, d)
        assert y.dtype == dtype
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(y, naive.conv2d_naive(x, w, b, s, p, d), rtol=tol, atol=tol)


@pytest.mark.parametrize("cfg", CONV_CONFIGS[:4], ids=str)
def test_conv_matrix_is_the_convolution(cfg, rng):
    """The naive matrix form agrees with the fast conv (and so with scipy): M @ x == conv(x)."""
    x, w, _, s, p, d = _conv_case(cfg, rng)
    M = naive.conv_matrix(x.shape[2:], w, s, p, d)
    y, _ = F.conv2d_forward(x[:1], w, None, s, p, d)
    np.testing.assert_allclose(M @ x[0].ravel(), y[0].ravel(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- transposed convolution


@pytest.mark.parametrize("cfg", CONVT_CONFIGS, ids=str)
def test_conv_transpose_four_ways(cfg, backend, rng):
    """col2im, zero_insert, the scatter loop and M.T @ x all compute the same thing."""
    x, w, b, s, p, op, d = _convt_case(cfg, rng)
    y_scatter = naive.conv_transpose2d_scatter(x, w, b, s, p, op, d)
    y_matrix = naive.conv_transpose2d_matrix(x, w, b, s, p, op, d)
    np.testing.assert_allclose(y_matrix, y_scatter, rtol=1e-12, atol=1e-12)
    ys = {m: F.conv_transpose2d_forward(x, w, b, s, p, op, d, method=m)[0] for m in METHODS}
    for m, y in ys.items():
        assert y.shape == y_scatter.shape, m
        np.testing.assert_allclose(y, y_scatter, rtol=1e-12, atol=1e-12, err_msg=m)
    np.testing.assert_allclose(ys["col2im"], ys["zero_insert"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("method", METHODS)
def test_conv_transpose_keeps_dtype(method, dtype, backend, rng):
    x, w, b, s, p, op, d = _convt_case(CONVT_CONFIGS[2], rng, dtype)
    y, cache = F.conv_transpose2d_forward(x, w, b, s, p, op, d, method=method)
    assert y.dtype == dtype
    dx, dw, db = F.conv_transpose2d_backward(rng.standard_normal(y.shape).astype(dtype), cache)
    assert dx.dtype == dw.dtype == db.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12  # float32: measured ~4e-7 on values up to ~5
    np.testing.assert_allclose(y, naive.conv_transpose2d_scatter(x, w, b, s, p, op, d), rtol=tol, atol=tol)


SEED_X = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
SEED_K = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
SEED_Y = np.array([[[[0.0, 0.0, 1.0], [0.0, 4.0, 6.0], [4.0, 12.0, 9.0]]]])


@pytest.mark.parametrize("method", METHODS)
def test_seed_worked_example(method, backend):
    """The 2x2 example of the study notes' transposed-convolution recipe: input [[0,1],[2,3]], kernel [[0,1],[2,3]] -> 3x3.

    The notes give ``o = (i-1)s + k - 2p``; a 3x3 output from i = 2, k = 2 needs
    s = 1, p = 0 (their text says ``z = 2-1 = 1`` zeros, but with s = 2 the output
    would be 4x4, see the next test). So: z = s-1 = 0 inserted zeros, p' = k-p-1 = 1
    of padding, and the centre is 0*3 + 1*2 + 2*1 + 3*0 = 4 ("0+2+2+0" in the notes).
    """
    y, _ = F.conv_transpose2d_forward(SEED_X, SEED_K, None, stride=1, padding=0, method=method)
    np.testing.assert_array_equal(y, SEED_Y)
    np.testing.assert_array_equal(naive.conv_transpose2d_scatter(SEED_X, SEED_K), SEED_Y)
    np.testing.assert_array_equal(naive.conv_transpose2d_matrix(SEED_X, SEED_K), SEED_Y)


def test_seed_recipe_by_hand():
    """The recipe itself, step by step: insert z = s-1 zeros, pad p' = k-p-1, stride-1 conv with the flipped kernel."""
    s, p, k = 1, 0, 2
    z = F.zero_insert(SEED_X, s)  # z = s - 1 = 0 zeros: unchanged
    np.testing.assert_array_equal(z, SEED_X)
    zp = np.pad(z, ((0, 0), (0, 0), (k - p - 1,) * 2, (k - p - 1,) * 2))  # p' = 1
    y, _ = F.conv2d_forward(zp, SEED_K[:, :, ::-1, ::-1].copy())
    np.testing.assert_array_equal(y, SEED_Y)
    # with stride 2 the same input and kernel give (2-1)*2 + 2 = 4 rows, no overlap, no 4 in the centre
    y2, _ = F.conv_transpose2d_forward(SEED_X, SEED_K, stride=2)
    assert y2.shape == (1, 1, 4, 4)
    np.testing.assert_array_equal(y2[0, 0], [[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]])


@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=str)
@pytest.mark.parametrize("method", METHODS)
def test_dot_product_conv_and_transpose(cfg, method, backend, rng):
    """``<conv(x), g> == <conv_transpose(g), x>``: same weight, same stride/padding/dilation.

    ``output_padding`` recovers the rows a strided conv never reached:
    ``op = (H + 2p - d(k-1) - 1) mod s``.
    """
    x, w, _, s, p, d = _conv_case(cfg, rng)
    (sh, sw), (ph, pw), (dh, dw) = _pair(s), _pair(p), _pair(d)
    kh, kw = w.shape[2:]
    H, W = x.shape[2:]
    op = ((H + 2 * ph - dh * (kh - 1) - 1) % sh, (W + 2 * pw - dw * (kw - 1) - 1) % sw)
    y, _ = F.conv2d_forward(x, w, None, s, p, d)
    g = rng.standard_normal(y.shape)
    xt, _ = F.conv_transpose2d_forward(g, w, None, s, p, op, d, method=method)
    assert xt.shape == x.shape
    assert np.vdot(y, g) == pytest.approx(np.vdot(xt, x), rel=1e-12)


@pytest.mark.parametrize("cfg", CONVT_CONFIGS, ids=str)
def test_dot_product_transpose_and_conv(cfg, backend, rng):
    """The other direction, from the transposed conv's side; with output_padding >= stride
    (allowed when dilation > stride) the convolution sees one more row, which the adjoint drops."""
    x, w, _, s, p, op, d = _convt_case(cfg, rng)
    y, _ = F.conv_transpose2d_forward(x, w, None, s, p, op, d)
    v = rng.standard_normal(y.shape)
    cv, _ = F.conv2d_forward(v, w, None, s, p, d)
    H, W = x.shape[2:]
    assert cv.shape[2] >= H and cv.shape[3] >= W
    assert np.vdot(y, v) == pytest.approx(np.vdot(x, cv[:, :, :H, :W]), rel=1e-12)


def _conv_grads_naive(x, w, dy, s, p, d):
    """Reference gradients of a convolution from the plain-loop twins only (no engine code).

    ``dx = M^T dy`` with ``M`` the convolution's own matrix (:func:`naive.conv_matrix`),
    ``dW = sum_n dY_n @ im2col_naive(x)_n^T``, ``db = sum of dy over n, i, j``.
    """
    N, C, H, W = x.shape
    M = naive.conv_matrix((H, W), w, s, p, d)  # (F*Ho*Wo, C*H*W)
    dx = np.stack([(M.T @ g.ravel()).reshape(C, H, W) for g in dy])
    cols = naive.im2col_naive(x, w.shape[2:], s, p, d)  # (N, C*kh*kw, Ho*Wo)
    dw = sum(g.reshape(w.shape[0], -1) @ c.T for g, c in zip(dy, cols)).reshape(w.shape)
    return dx, dw, dy.sum(axis=(0, 2, 3))


@pytest.mark.parametrize("hw", [(8, 8), (8, 9), (4, 4), (1, 1)])  # 64 output pixels and less: one GEMM for dW
def test_conv_weight_gradient_on_both_sides_of_the_batch_wide_gemm(hw, backend, rng):
    """``conv2d_backward`` computes dW with one GEMM over the batch for maps of at most 64 pixels,
    per image above; both against the naive loops, with three images so the batch really mixes."""
    x = rng.standard_normal((3, 4, *hw))
    w = rng.standard_normal((5, 4, 3, 3))
    y, cache = F.conv2d_forward(x, w, rng.standard_normal(5), 1, 1)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = F.conv2d_backward(dy, cache)
    for got, want in zip((dx, dw, db), _conv_grads_naive(x, w, dy, 1, 1, 1)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert dw.flags.c_contiguous and dw.shape == w.shape


@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=str)
def test_conv_backward_is_conv_transpose(cfg, backend, rng):
    """The input gradient of a convolution *is* a transposed convolution of dy with the same weight.

    Checked against references that share no code with ``conv2d_backward``: the
    transpose of the convolution's matrix, ``M^T dy``, and the naive "each pixel
    stamps the kernel" loop (``output_padding`` recovers the rows a strided conv
    never reached); dW and db against the naive im2col.
    """
    x, w, b, s, p, d = _conv_case(cfg, rng)
    y, cache = F.conv2d_forward(x, w, b, s, p, d)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = F.conv2d_backward(dy, cache)
    ref_dx, ref_dw, ref_db = _conv_grads_naive(x, w, dy, s, p, d)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, ref_db, rtol=1e-12, atol=1e-12)
    (sh, sw), (ph, pw), (dh, dw_) = _pair(s), _pair(p), _pair(d)
    kh, kw = w.shape[2:]
    H, W = x.shape[2:]
    op = ((H + 2 * ph - dh * (kh - 1) - 1) % sh, (W + 2 * pw - dw_ * (kw - 1) - 1) % sw)
    np.testing.assert_allclose(naive.conv_transpose2d_scatter(dy, w, None, s, p, op, d), dx, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- conv2d_backward's two dx paths

# conv2d_backward computes dx one of three ways (see its docstring): a plain GEMM for an
# unpadded stride-1 1x1 conv; a stride-1 "full" convolution of dy with the flipped kernel
# when stride is 1, F <= C, F < 64 and p <= d(k-1) on both axes; else GEMM + col2im.
# (N, C, F, H, W, kernel, padding, dilation): every one stride 1 and meant for the flipped path
FLIP_CONFIGS = [
    (2, 3, 2, 7, 9, 3, 1, 1),  # the everyday 3x3 "same", odd sizes
    (1, 4, 4, 6, 5, (3, 2), (0, 1), 1),  # F == C, non-square kernel, no padding on h
    (2, 3, 3, 9, 8, 3, 2, 2),  # dilation 2, padding 2
    (1, 5, 2, 11, 7, (5, 3), (4, 2), (1, 2)),  # padding exactly d(k-1) on h: the full pad is 0
    (1, 2, 1, 5, 9, (1, 3), (0, 1), (1, 3)),  # a one-row kernel (kh = 1 forces ph = 0), dilation 3
    (2, 2, 2, 4, 6, 2, 1, 1),  # even kernel, padding k-1
    (1, 3, 2, 2, 3, 3, 1, 1),  # input smaller than the kernel
    (1, 2, 2, 5, 7, (2, 4), (1, 0), (3, 2)),  # dilation 3 on h, no padding on w
    (1, 63, 63, 4, 3, 3, 1, 1),  # F = 63: the largest F that still takes this path
]

# the complement: the same stride-1 geometry but a condition fails, so dx goes through col2im
COL2IM_CONFIGS = [
    (2, 2, 3, 7, 9, 3, 1, 1),  # F > C
    (1, 64, 64, 4, 3, 3, 1, 1),  # F = 64: BLAS prefers col2im
    (1, 3, 2, 6, 7, 3, 3, 1),  # padding 3 > d(k-1) = 2 on both axes
    (1, 3, 2, 6, 7, (3, 3), (1, 3), 1),  # padding beyond d(k-1) on w only
    (2, 4, 3, 7, 6, (2, 3), (2, 1), 1),  # padding 2 > d(k-1) = 1 on h only
]


def _flip_path(C, Fo, k, p, d, stride=1):
    """The branch condition of conv2d_backward, spelled out independently."""
    (kh, kw), (ph, pw), (dh, dw), (sh, sw) = _pair(k), _pair(p), _pair(d), _pair(stride)
    one_by_one = (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0)
    return (not one_by_one and (sh, sw) == (1, 1) and Fo <= C and Fo < 64
            and ph <= dh * (kh - 1) and pw <= dw * (kw - 1))


def _count_col2im(monkeypatch):
    """Spy on the col2im kernel: returns the list each call appends to."""
    calls = []
    original = F.kernels.col2im

    def spy(*args):
        calls.append(args[1:5])
        return original(*args)

    monkeypatch.setattr(F.kernels, "col2im", spy)
    return calls


def _check_conv_backward_path(cfg, rng, monkeypatch, flipped):
    N, C, Fo, H, W, k, p, d = cfg
    assert _flip_path(C, Fo, k, p, d) is flipped, "the configuration does not select the intended path"
    x, w, b, s, p, d = _conv_case((N, C, Fo, H, W, k, 1, p, d), rng)
    y, cache = F.conv2d_forward(x, w, b, s, p, d)
    dy = rng.standard_normal(y.shape)  # random: all-ones would hide a missing flip on symmetric sums
    calls = _count_col2im(monkeypatch)
    dx, dw, db = F.conv2d_backward(dy, cache)
    monkeypatch.undo()
    assert (len(calls) == 0) is flipped, f"col2im calls: {calls}"
    ref_dx, ref_dw, ref_db = _conv_grads_naive(x, w, dy, s, p, d)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, ref_db, rtol=1e-12, atol=1e-12)
    # and finite differences (float64, random upstream gradient, DESIGN.md's smooth tolerance)
    params = {"x": x, "weight": w, "bias": b}

    def forward():
        return F.conv2d_forward(x, w, b, s, p, d)[0]

    def backward(g):
        return dict(zip(("x", "weight", "bias"), F.conv2d_backward(g, F.conv2d_forward(x, w, b, s, p, d)[1])))

    samples = None if x.size <= 400 else 150
    errors = gradcheck.check(forward, backward, params, seed=3, samples=samples)
    assert set(errors) == {"x", "weight", "bias"}
    for name, err in errors.items():
        assert err < gradcheck.TOL_SMOOTH, f"{name}: rel error {err:.2e}"


@pytest.mark.parametrize("cfg", FLIP_CONFIGS, ids=str)
def test_conv_backward_flipped_kernel_path(cfg, backend, rng, monkeypatch):
    """dx by the stride-1 convolution with the flipped kernel: naive twins and finite differences."""
    _check_conv_backward_path(cfg, rng, monkeypatch, flipped=True)


@pytest.mark.parametrize("cfg", COL2IM_CONFIGS, ids=str)
def test_conv_backward_col2im_path(cfg, backend, rng, monkeypatch):
    """The complementary stride-1 cases (F > C, F >= 64, padding beyond d(k-1)) go through col2im."""
    _check_conv_backward_path(cfg, rng, monkeypatch, flipped=False)


@pytest.mark.parametrize("cfg", CONVT_CONFIGS, ids=str)
def test_conv_transpose_backward_methods_agree(cfg, backend, rng):
    """Both methods' gradients against naive references: the transposed conv's dx is the plain
    convolution of dy (its first H x W outputs), dW sums x times the naive im2col of dy."""
    x, w, b, s, p, op, d = _convt_case(cfg, rng)
    N, Ci, H, W = x.shape
    kh, kw = w.shape[2:]
    for m in METHODS:
        y, cache = F.conv_transpose2d_forward(x, w, b, s, p, op, d, method=m)
        dy = np.random.default_rng(7).standard_normal(y.shape)
        dx, dw, db = F.conv_transpose2d_backward(dy, cache)
        conv_dy = naive.conv2d_naive(dy, w, None, s, p, d)  # (N, Cin, Hc, Wc), Hc >= H (output_padding)
        Hc, Wc = conv_dy.shape[2:]
        ref_dx = conv_dy[:, :, :H, :W]
        cols = naive.im2col_naive(dy, (kh, kw), s, p, d)  # (N, Cout*kh*kw, Hc*Wc)
        cols = cols.reshape(N, -1, Hc, Wc)[:, :, :H, :W].reshape(N, -1, H * W)
        ref_dw = sum(xn.reshape(Ci, H * W) @ c.T for xn, c in zip(x, cols)).reshape(w.shape)
        np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-12, err_msg=m)
        np.testing.assert_allclose(dw, ref_dw, rtol=1e-12, atol=1e-12, err_msg=m)
        np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12, err_msg=m)


def test_zero_insert_and_pad_or_crop_adjoints(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    z = F.zero_insert(x, (3, 2))
    assert z.shape == (2, 3, 10, 9)
    np.testing.assert_array_equal(z[:, :, ::3, ::2], x)
    assert np.count_nonzero(z) == x.size
    g = rng.standard_normal(z.shape)
    assert np.vdot(z, g) == pytest.approx(np.vdot(x, F.zero_insert_backward(g, (3, 2))), rel=1e-12)
    for pads in [((1, 2), (0, 3)), ((-1, 2), (2, -1)), ((-2, -1), (-1, -2))]:
        y = F.pad_or_crop(x, *pads)
        assert y.shape == (2, 3, 4 + sum(pads[0]), 5 + sum(pads[1]))
        g = rng.standard_normal(y.shape)
        assert np.vdot(y, g) == pytest.approx(np.vdot(x, F.pad_or_crop_backward(g, x.shape, *pads)), rel=1e-12)


# --------------------------------------------------------------------------- shape formulas


@pytest.mark.parametrize(
    "args, expected",
    [
        ((5, 3, 1, 1, 1), 5),  # "same" 3x3
        ((7, 3, 2, 1, 1), 4),
        ((224, 7, 2, 3, 1), 112),  # a ResNet stem
        ((11, 3, 2, 2, 2), 6),  # dilation 2: span 5
        ((4, 4, 1, 0, 1), 1),  # kernel = input
        ((3, 2, 3, 3, 1), 3),  # padding larger than the kernel
        ((6, 1, 2, 0, 1), 3),  # 1x1, stride 2: pixels 0, 2, 4
        ((7, 7, 1, 0, 1), 1),  # fc6 on a 7x7 map
    ],
)
def test_conv_output_size(args, expected):
    assert F.conv_output_size(*args) == expected


@pytest.mark.parametrize(
    "args, expected",
    [
        ((2, 2, 1, 0, 1, 0), 3),  # the seed's example
        ((2, 2, 2, 0, 1, 0), 4),  # (i-1)s + k - 2p with s = 2
        ((4, 4, 2, 1, 1, 0), 8),  # FCN upscore2 doubles
        ((3, 16, 8, 4, 1, 0), 24),  # FCN-8s upscore8: 8x
        ((2, 64, 32, 16, 1, 0), 64),  # FCN-32s upscore: 32x
        ((3, 3, 2, 1, 1, 1), 6),  # output_padding adds a row
        ((3, 3, 2, 1, 2, 1), 8),  # dilation 2 adds d(k-1) - (k-1) = 2 more
        ((4, 2, 1, 0, 2, 1), 7),  # output_padding 1 with stride 1, legal since dilation 2
    ],
)
def test_conv_transpose_output_size(args, expected):
    size, k, s, p, d, op = args
    assert F.conv_transpose_output_size(size, k, s, p, d, op) == expected


def test_conv_transpose_inverts_conv_size():
    """For op < s, conv(conv_transpose(size)) == size: the transposed conv restores the shape."""
    for size in range(1, 9):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, k):
                    for d in (1, 2):
                        for op in range(s):
                            out = F.conv_transpose_output_size(size, k, s, p, d, op)
                            if out >= 1:
                                assert F.conv_output_size(out, k, s, p, d) == size


@pytest.mark.parametrize(
    "args, expected",
    [
        ((6, 1, 2, 0, 1, True), 3),  # PyTorch's edge case: ceil((6-1)/2)+1 = 4 would start past the input
        ((6, 1, 2, 0, 1, False), 3),
        ((5, 2, 2, 0, 1, True), 3),  # last window hangs off the edge
        ((5, 2, 2, 0, 1, False), 2),
        ((7, 2, 2, 0, 1, True), 4),
        ((224, 2, 2, 0, 1, True), 112),
        ((6, 3, 4, 1, 1, True), 2),  # would start at 8 - 1 = 7 >= 6 + 1: dropped
        ((5, 3, 2, 1, 1, True), 3),
        ((9, 3, 2, 1, 2, True), 4),  # dilation 2
        ((1, 1, 2, 0, 1, True), 1),
        ((10, 3, 3, 1, 1, True), 4),
    ],
)
def test_pool_output_size(args, expected):
    size, k, s, p, d, ceil = args
    assert F.pool_output_size(size, k, s, p, d, ceil) == expected


def test_pool_output_size_agrees_with_the_naive_rule():
    """The floor-division formula of functional vs naive's math.ceil/math.floor, over a grid."""
    for size in range(1, 14):
        for k in range(1, 5):
            for s in range(1, 5):
                for d in (1, 2):
                    for p in range(0, (d * (k - 1) + 1) // 2 + 1):
                        for ceil in (False, True):
                            expected = naive._pool_out(size, k, s, p, d, ceil)
                            if expected >= 1:
                                assert F.pool_output_size(size, k, s, p, d, ceil) == expected, (size, k, s, p, d, ceil)
                                # every window starts inside the input or the left padding
                                assert (expected - 1) * s - p < size


# --------------------------------------------------------------------------- max-pool

# (N, C, H, W, kernel, stride, padding, dilation, ceil_mode)
POOL_CONFIGS = [
    (2, 3, 8, 8, 2, None, 0, 1, False),
    (2, 3, 7, 9, 2, 2, 0, 1, True),
    (1, 2, 8, 7, 3, 2, 1, 1, False),
    (1, 2, 10, 11, 3, 3, 1, 1, True),
    (1, 1, 6, 6, 1, 2, 0, 1, True),
    (2, 2, 9, 9, 3, 2, 1, 2, True),
    (1, 2, 5, 7, (3, 2), (2, 1), 1, 1, True),
    (1, 1, 5, 6, (2, 3), (3, 2), (1, 1), (2, 1), True),
]


@pytest.mark.parametrize("cfg", POOL_CONFIGS, ids=str)
def test_maxpool_matches_naive(cfg, backend, rng):
    N, C, H, W, k, s, p, d, ceil = cfg
    for x in (rng.standard_normal((N, C, H, W)), rng.integers(-2, 2, (N, C, H, W)).astype(float)):
        y, cache = F.maxpool2d_forward(x, k, s, p, d, ceil)
        ref_y, ref_idx = naive.maxpool2d_naive(x, k, s, p, d, ceil)
        np.testing.assert_array_equal(y, ref_y)
        np.testing.assert_array_equal(cache[1], ref_idx)
        dy = rng.standard_normal(y.shape)
        dx = F.maxpool2d_backward(dy, cache)
        ref_dx = np.zeros(N * C * H * W)
        np.add.at(ref_dx, (np.arange(N * C)[:, None] * H * W + ref_idx.reshape(N * C, -1)).ravel(), dy.ravel())
        np.testing.assert_allclose(dx, ref_dx.reshape(x.shape), rtol=1e-14, atol=1e-14)


def test_maxpool_ceil_windows_hanging_off_the_edge(backend):
    """7 wide, kernel 2, stride 2, ceil mode: the 4th window holds only pixel 6 (the rest is past the edge)."""
    x = -np.arange(1, 8, dtype=float).reshape(1, 1, 1, 7)  # all negative: padding must not win
    y, (_, idx) = F.maxpool2d_forward(x, (1, 2), (1, 2), 0, 1, True)
    np.testing.assert_array_equal(y[0, 0, 0], [-1, -3, -5, -7])
    np.testing.assert_array_equal(idx[0, 0, 0], [0, 2, 4, 6])
    y, _ = F.maxpool2d_forward(x, (1, 2), (1, 2), 0, 1, False)
    np.testing.assert_array_equal(y[0, 0, 0], [-1, -3, -5])


def test_maxpool_first_max_wins_ties(backend):
    x = np.zeros((1, 1, 4, 4))
    y, cache = F.maxpool2d_forward(x, 2, 2)
    np.testing.assert_array_equal(cache[1][0, 0], [[0, 2], [8, 10]])  # each window's top-left pixel
    dx = F.maxpool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)  # distinct: routing shows
    np.testing.assert_array_equal(dx[0, 0], [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]])
    # a tie between a later and an earlier pixel of the window: the earlier one (row-major) wins
    x = np.array([[[[1.0, 5.0, 2.0], [5.0, 5.0, 0.0], [3.0, 0.0, 5.0]]]])
    _, (_, idx) = F.maxpool2d_forward(x, 3, 1)
    assert idx[0, 0, 0, 0] == 1


def test_maxpool_overlapping_windows_sum_their_gradients(backend):
    """Stride 1 < kernel 2: one pixel can win several windows; its gradient is the sum."""
    x = np.array([[[[0.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 0.0]]]])
    y, cache = F.maxpool2d_forward(x, 2, 1)
    np.testing.assert_array_equal(y[0, 0], [[9, 9], [9, 9]])
    dx = F.maxpool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    assert dx[0, 0, 1, 1] == 10 and np.count_nonzero(dx) == 1


def test_maxpool_pads_with_minus_infinity(backend):
    """All-negative input with padding: a zero pad would win every border window."""
    x = -1 - np.arange(16, dtype=float).reshape(1, 1, 4, 4)
    y, (_, idx) = F.maxpool2d_forward(x, 3, 2, padding=1)
    assert (y < 0).all()
    np.testing.assert_array_equal(y[0, 0], [[-1, -2], [-5, -6]])
    assert (idx >= 0).all()
    np.testing.assert_array_equal(y, naive.maxpool2d_naive(x, 3, 2, 1)[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_maxpool_keeps_dtype(dtype, backend, rng):
    x = rng.standard_normal((1, 2, 5, 5)).astype(dtype)
    y, cache = F.maxpool2d_forward(x, 2, 2, 0, 1, True)
    assert y.dtype == dtype
    assert F.maxpool2d_backward(np.ones_like(y), cache).dtype == dtype


# --------------------------------------------------------------------------- relu, dropout, crop, add


def test_relu_matches_naive(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    x[0, 0, 0, :3] = [0.0, -0.0, 1e-300]
    y, cache = F.relu_forward(x)
    np.testing.assert_array_equal(y, naive.relu_naive(x))
    dy = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(F.relu_backward(dy, cache), np.where(x > 0, dy, 0.0))
    assert F.relu_backward(dy, cache)[0, 0, 0, 0] == 0  # the subgradient at exactly 0 is 0, as PyTorch


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
def test_dropout_matches_naive(p, rng):
    x = rng.standard_normal((4, 5, 3, 3))
    y, mask = F.dropout2d_forward(x, p, True, np.random.default_rng(11))
    if p == 0:
        np.testing.assert_array_equal(y, x)
        return
    keep = np.random.default_rng(11).random((4, 5)) >= p  # the same draw
    np.testing.assert_allclose(y, naive.dropout2d_naive(x, keep, p) if p < 1 else np.zeros_like(x), rtol=1e-15)
    dy = rng.standard_normal(x.shape)
    expected = keep[:, :, None, None] * dy / (1 - p) if p < 1 else np.zeros_like(dy)
    np.testing.assert_allclose(F.dropout2d_backward(dy, mask), expected, rtol=1e-15)


def test_crop_and_add(rng):
    x = rng.standard_normal((2, 3, 6, 7))
    y, cache = F.crop_forward(x, (4, 3), (1, 2))
    np.testing.assert_array_equal(y, x[:, :, 1:5, 2:5])
    g = rng.standard_normal(y.shape)
    assert np.vdot(y, g) == pytest.approx(np.vdot(x, F.crop_backward(g, cache)), rel=1e-12)
    a, b = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 4, 4))
    s, _ = F.add_forward(a, b)
    np.testing.assert_array_equal(s, a + b)
    da, db = F.add_backward(g)
    assert da is not db and not np.shares_memory(da, g)


# --------------------------------------------------------------------------- softmax cross-entropy


def _labels(rng, shape, C, ignore_frac=0.3, ignore_index=255):
    labels = rng.integers(0, C, shape)
    labels[rng.random(shape) < ignore_frac] = ignore_index
    return labels


@pytest.mark.parametrize("ignore_index", [255, -1])
def test_softmax_ce_matches_naive(ignore_index, rng):
    logits = rng.standard_normal((2, 5, 4, 3)) * 4
    labels = _labels(rng, (2, 4, 3), 5, ignore_index=ignore_index)
    loss, cache = F.softmax_cross_entropy_forward(logits, labels, ignore_index)
    assert isinstance(loss, float)
    assert loss == pytest.approx(naive.softmax_cross_entropy_naive(logits, labels, ignore_index), rel=1e-13)
    grad = F.softmax_cross_entropy_backward(cache)
    np.testing.assert_allclose(grad, naive.softmax_cross_entropy_grad_naive(logits, labels, ignore_index),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(F.softmax_cross_entropy_backward(cache, 2.5), 2.5 * grad, rtol=1e-14)
    assert (grad.transpose(0, 2, 3, 1)[labels == ignore_index] == 0).all()
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-15)  # softmax - onehot sums to 0 per pixel


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("ignore_index", [255, 0, -1])
def test_softmax_ce_one_hot_form_is_bit_exact_to_the_indexed_form(dtype, ignore_index, rng):
    """The engine picks ``z_label`` and subtracts the one-hot through a boolean one-hot array;
    reading and writing the label entries with ``take_along_axis``/``put_along_axis`` gives the same bits.
    (ignore_index 0 is also a class: its pixels must still be masked out.)"""
    for ignore_frac in (0.0, 0.3, 1.0):
        logits = (rng.standard_normal((3, 5, 7, 6)) * 6).astype(dtype)
        labels = _labels(rng, (3, 7, 6), 5, ignore_frac, ignore_index)
        loss, cache = F.softmax_cross_entropy_forward(logits, labels, ignore_index)
        grad = F.softmax_cross_entropy_backward(cache, 2.5)

        valid = labels != ignore_index
        count = int(valid.sum())
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1)
        safe = np.where(valid, labels, 0)[:, None]
        per_pixel = np.log(sum_exp) - np.take_along_axis(shifted, safe, axis=1)[:, 0]
        want_loss = float(per_pixel[valid].sum() / count) if count else 0.0
        probs = exp / sum_exp[:, None]
        want_grad = probs.copy()
        np.put_along_axis(want_grad, safe, np.take_along_axis(probs, safe, axis=1) - 1, axis=1)
        want_grad *= (valid[:, None] * (2.5 / max(count, 1))).astype(dtype)

        assert loss == want_loss
        assert grad.dtype == dtype
        np.testing.assert_array_equal(grad, want_grad)


def test_softmax_ce_mean_is_over_valid_pixels_only(rng):
    logits = rng.standard_normal((1, 3, 2, 2))
    labels = np.array([[[0, 255], [255, 255]]])
    loss, _ = F.softmax_cross_entropy_forward(logits, labels)
    z = logits[0, :, 0, 0]
    assert loss == pytest.approx(np.log(np.exp(z).sum()) - z[0], rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_softmax_ce_huge_logits_are_stable(dtype):
    """Logits of +-1e4 (float64) or +-1e30 (float32): exp would overflow without the max shift."""
    big = 1e30 if dtype == np.float32 else 1e4
    logits = np.zeros((1, 3, 1, 2), dtype=dtype)
    logits[0, :, 0, 0] = [big, 0, -big]
    logits[0, :, 0, 1] = [big, big, -big]
    labels = np.array([[[0, 2]]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, cache = F.softmax_cross_entropy_forward(logits, labels)
        grad = F.softmax_cross_entropy_backward(cache)
    # pixel 0: label is the winner -> 0; pixel 1: log(2 e^big) - (-big) = 2 big + log 2
    assert np.isfinite(loss)
    tol = 1e-6 if dtype == np.float32 else 1e-13  # float32: a few ulps; float64: exact up to rounding
    assert loss == pytest.approx((0 + 2 * float(big) + np.log(2)) / 2, rel=tol)
    assert grad.dtype == dtype and np.isfinite(grad).all()
    np.testing.assert_allclose(grad[0, :, 0, 1], [0.25, 0.25, -0.5], rtol=tol)
    np.testing.assert_allclose(grad[0, :, 0, 0], [0, 0, 0], atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_softmax_ce_all_ignored(dtype, rng):
    logits = rng.standard_normal((2, 4, 3, 3)).astype(dtype)
    labels = np.full((2, 3, 3), 255)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no 0/0 anywhere
        loss, cache = F.softmax_cross_entropy_forward(logits, labels)
        grad = F.softmax_cross_entropy_backward(cache)
    assert loss == 0.0
    assert grad.dtype == dtype and grad.shape == logits.shape
    assert not grad.any()
    assert naive.softmax_cross_entropy_naive(logits, labels) == 0.0


# --------------------------------------------------------------------------- purity


def test_functional_pairs_never_write_their_arguments(backend, rng):
    """Every pair runs on read-only arguments (a skip hands one array to two branches)."""

    def ro(a):
        a = np.array(a)
        a.setflags(write=False)
        return a

    x, w, b = ro(rng.standard_normal((1, 2, 6, 6))), ro(rng.standard_normal((3, 2, 3, 3))), ro(rng.standard_normal(3))
    y, cache = F.conv2d_forward(x, w, b, 2, 1)
    F.conv2d_backward(ro(y), cache)
    for m in METHODS:
        wt = ro(rng.standard_normal((2, 3, 4, 4)))
        y, cache = F.conv_transpose2d_forward(x, wt, b, 2, 1, method=m)
        F.conv_transpose2d_backward(ro(y), cache)
    y, cache = F.maxpool2d_forward(x, 2, 2, 0, 1, True)
    F.maxpool2d_backward(ro(y), cache)
    y, cache = F.relu_forward(x)
    F.relu_backward(ro(y), cache)
    y, cache = F.dropout2d_forward(x, 0.5, True, np.random.default_rng(0))
    F.dropout2d_backward(ro(y), cache)
    y, cache = F.crop_forward(x, 3)
    F.crop_backward(ro(y), cache)
    F.add_backward(ro(F.add_forward(x, x)[0]))
    logits, labels = ro(rng.standard_normal((1, 3, 2, 2))), ro(np.array([[[0, 1], [2, 255]]]))
    F.softmax_cross_entropy_backward(F.softmax_cross_entropy_forward(logits, labels)[1])

"""The kernels: Numba, their NumPy twins and the plain-Python ``*_py`` originals agree.

Three implementations of each kernel, plus the plain-loop references in
:mod:`fcn_scratch.naive`, are compared on hand-picked and hypothesis-generated
configurations, in float32 and float64. Kernels that only *select* values
(im2col, max-pool forward) must agree bit for bit; kernels that *sum*
(col2im, max-pool backward) may differ only by rounding, because the order in
which overlapping contributions are added is an implementation choice.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fcn_scratch
from fcn_scratch import kernels, naive
from fcn_scratch.kernels import numba_kernels, numpy_kernels
from fcn_scratch.functional import conv_output_size, pool_output_size
from fcn_scratch.kernels import numba_kernels as nbk
from fcn_scratch.kernels import numpy_kernels as npk

DTYPES = (np.float32, np.float64)

# (N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw)
CONV_CONFIGS = [
    (2, 3, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1),  # the everyday 3x3 "same" conv
    (1, 2, 8, 6, 3, 2, 2, 3, 1, 0, 1, 1),  # non-square kernel, stride, padding
    (2, 2, 11, 10, 3, 3, 2, 2, 2, 2, 2, 2),  # dilation 2
    (2, 2, 9, 5, 2, 3, 3, 1, 0, 2, 3, 1),  # dilation on one axis only, stride 3
    (1, 1, 5, 5, 1, 1, 1, 1, 0, 0, 1, 1),  # 1x1
    (2, 1, 6, 7, 1, 1, 2, 2, 0, 0, 1, 1),  # 1x1, stride 2 (skips pixels)
    (1, 3, 4, 4, 4, 4, 1, 1, 0, 0, 1, 1),  # kernel exactly the input size
    (1, 2, 3, 3, 2, 2, 3, 3, 3, 3, 1, 1),  # padding > kernel, stride > kernel: windows all in padding
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1),  # a single pixel
    (1, 2, 16, 2, 16, 1, 8, 1, 4, 0, 1, 1),  # FCN-8s upscore8 geometry (k16 s8 p4) on one axis
    (3, 2, 13, 12, 5, 3, 2, 2, 2, 1, 1, 3),  # odd sizes, larger kernel
    # stride 1, dilation 1, Wo == W: im2col's one-copy-per-tap path
    (2, 3, 5, 4, 5, 5, 1, 1, 2, 2, 1, 1),  # 5x5 "same"
    (2, 2, 1, 3, 3, 3, 1, 1, 1, 1, 1, 1),  # one row
    (1, 2, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1),  # one column: the shift wraps a whole row
    (1, 2, 3, 1, 5, 5, 1, 1, 2, 2, 1, 1),  # kernel wider than the input: columns of padding only
    (3, 2, 6, 5, 3, 1, 1, 1, 2, 0, 1, 1),  # Ho = H + 2, Wo == W
    (2, 2, 4, 6, 3, 5, 1, 1, 0, 2, 1, 1),  # no vertical padding
    (1, 1, 3, 3, 3, 3, 1, 1, 4, 1, 1, 1),  # rows of padding only above and below
]

# (N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode)
POOL_CONFIGS = [
    (2, 3, 8, 8, 2, 2, 2, 2, 0, 0, 1, 1, False),  # the FCN pool
    (2, 3, 7, 9, 2, 2, 2, 2, 0, 0, 1, 1, True),  # ceil mode: last windows hang off the edge
    (1, 2, 8, 7, 3, 3, 2, 2, 1, 1, 1, 1, False),  # padding
    (1, 2, 10, 11, 3, 3, 3, 3, 1, 1, 1, 1, True),  # padding + ceil
    (1, 1, 6, 6, 1, 1, 2, 2, 0, 0, 1, 1, True),  # PyTorch's edge case: kernel 1, stride 2, ceil -> 3
    (2, 2, 9, 9, 3, 3, 2, 2, 1, 1, 2, 2, True),  # dilation 2
    (1, 2, 5, 7, 3, 2, 2, 1, 1, 1, 1, 1, True),  # non-square kernel and stride
    (1, 1, 3, 3, 3, 3, 1, 1, 0, 0, 1, 1, False),  # one window covering everything
    (2, 2, 5, 5, 2, 2, 1, 1, 1, 1, 1, 1, False),  # overlapping windows (stride < kernel)
]


def _conv_hw(cfg):
    N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw = cfg
    return conv_output_size(H, kh, sh, ph, dh), conv_output_size(W, kw, sw, pw, dw)


def _pool_hw(cfg):
    N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, ceil = cfg
    return pool_output_size(H, kh, sh, ph, dh, ceil), pool_output_size(W, kw, sw, pw, dw, ceil)


def _assert_sum_equal(a, b):
    """Equal up to the rounding of a different summation order."""
    assert a.dtype == b.dtype and a.shape == b.shape
    tol = 1e-5 if a.dtype == np.float32 else 1e-13
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, float(np.abs(b).max(initial=0))))


# --------------------------------------------------------------------------- im2col / col2im


def _check_im2col(cfg, dtype, rng):
    N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw = cfg
    Ho, Wo = _conv_hw(cfg)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    args = (kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    ref = naive.im2col_naive(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    for impl in (nbk.im2col, npk.im2col, nbk.im2col_py):
        cols = impl(x, *args)
        assert cols.dtype == dtype
        assert cols.shape == (N, C * kh * kw, Ho * Wo)
        np.testing.assert_array_equal(cols, ref)


def _check_col2im(cfg, dtype, rng):
    N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw = cfg
    Ho, Wo = _conv_hw(cfg)
    cols = rng.standard_normal((N, C * kh * kw, Ho * Wo)).astype(dtype)
    args = (N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    ref = naive.col2im_naive(cols, (N, C, H, W), (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    out = {impl.__name__: impl(cols, *args) for impl in (nbk.col2im, npk.col2im, nbk.col2im_py)}
    for name, x in out.items():
        assert x.dtype == dtype, name
        assert x.shape == (N, C, H, W), name
        _assert_sum_equal(x, ref)
    _assert_sum_equal(out["col2im"], out["col2im_py"])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=str)
def test_im2col_three_ways_and_naive(cfg, dtype, rng):
    _check_im2col(cfg, dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=str)
def test_col2im_three_ways_and_naive(cfg, dtype, rng):
    _check_col2im(cfg, dtype, rng)


@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=str)
def test_im2col_col2im_adjoint(cfg, backend, rng):
    """Dot-product test: ``<im2col(x), c> == <x, col2im(c)>`` (col2im is the adjoint, not the inverse)."""
    N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw = cfg
    Ho, Wo = _conv_hw(cfg)
    x = rng.standard_normal((N, C, H, W))
    c = rng.standard_normal((N, C * kh * kw, Ho * Wo))
    lhs = np.vdot(kernels.im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo), c)
    rhs = np.vdot(x, kernels.col2im(c, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


def test_col2im_is_not_the_inverse(backend):
    """Overlapping windows: col2im(im2col(x)) multiplies each pixel by how many windows saw it."""
    x = np.ones((1, 1, 4, 4))
    cols = kernels.im2col(x, 3, 3, 1, 1, 1, 1, 1, 1, 4, 4)
    counts = kernels.col2im(cols, 1, 1, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4, 4)[0, 0]
    # corners are seen by 4 windows, edges by 6, the interior by 9
    expected = np.array([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]], dtype=float)
    np.testing.assert_array_equal(counts, expected)


def test_im2col_column_layout():
    """Row ``(c*kh + i)*kw + j``, column ``ho*Wo + wo``: the layout the GEMM relies on."""
    x = np.arange(2 * 3 * 4, dtype=np.float64).reshape(1, 2, 3, 4)
    cols = kernels.im2col(x, 2, 2, 1, 1, 0, 0, 1, 1, 2, 3)
    # channel 1, tap (1, 0), output pixel (1, 2) reads x[0, 1, 1 + 1, 2 + 0]
    assert cols[0, (1 * 2 + 1) * 2 + 0, 1 * 3 + 2] == x[0, 1, 2, 2]


# --------------------------------------------------------------------------- max-pool


def _check_pool(cfg, dtype, rng, x=None):
    N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, ceil = cfg
    Ho, Wo = _pool_hw(cfg)
    if x is None:
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
    args = (kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    ref_y, ref_idx = naive.maxpool2d_naive(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil)
    assert ref_y.shape == (N, C, Ho, Wo)
    dy = rng.standard_normal((N, C, Ho, Wo)).astype(dtype)
    ref_dx = np.zeros((N, C, H * W), dtype=dtype)
    for n, c, i, j in np.ndindex(ref_idx.shape):
        if ref_idx[n, c, i, j] >= 0:  # -1: the window saw only padding, its gradient goes nowhere
            ref_dx[n, c, ref_idx[n, c, i, j]] += dy[n, c, i, j]
    ref_dx = ref_dx.reshape(N, C, H, W)
    for fwd, bwd in ((nbk.maxpool_forward, nbk.maxpool_backward), (npk.maxpool_forward, npk.maxpool_backward),
                     (nbk.maxpool_forward_py, nbk.maxpool_backward_py)):
        y, idx = fwd(x, *args)
        assert y.dtype == dtype and idx.dtype == np.int64
        np.testing.assert_array_equal(y, ref_y)
        np.testing.assert_array_equal(idx, ref_idx)
        dx = bwd(dy, idx, H, W)
        assert dx.dtype == dtype and dx.shape == x.shape
        _assert_sum_equal(dx, ref_dx)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("cfg", POOL_CONFIGS, ids=str)
def test_maxpool_three_ways_and_naive(cfg, dtype, rng):
    _check_pool(cfg, dtype, rng)


# (H, W, kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode): every one pads, so border windows hold padding taps
NEGATIVE_BORDER_POOLS = [
    (5, 6, 3, 3, 1, 1, 1, 1, 1, 1, False),  # overlapping 3x3 "same" pooling
    (7, 7, 3, 3, 2, 2, 1, 1, 1, 1, True),  # 3/2/1 with ceil mode
    (6, 5, 2, 2, 2, 2, 1, 1, 1, 1, False),  # kernel 2, padding 1: every corner window is 3/4 padding
    (7, 9, 3, 5, 2, 3, 1, 2, 1, 1, True),  # non-square kernel, stride and padding
    (9, 8, 3, 3, 2, 2, 1, 1, 2, 2, False),  # dilation 2
    (8, 9, 4, 4, 3, 3, 2, 2, 1, 1, True),  # padding 2, last windows hang off the edge too
]


def _touches_padding(cfg, Ho, Wo):
    """``(Ho, Wo)`` mask: windows with at least one tap outside the input (padding or past the edge)."""
    H, W, kh, kw, sh, sw, ph, pw, dh, dw, _ = cfg
    rows = np.arange(Ho)[:, None] * sh - ph + np.arange(kh)[None, :] * dh  # (Ho, kh) input rows of the taps
    cols = np.arange(Wo)[:, None] * sw - pw + np.arange(kw)[None, :] * dw
    out_r = ((rows < 0) | (rows >= H)).any(axis=1)
    out_c = ((cols < 0) | (cols >= W)).any(axis=1)
    return out_r[:, None] | out_c[None, :]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("cfg", NEGATIVE_BORDER_POOLS, ids=str)
def test_maxpool_padding_never_wins_over_negative_values(cfg, dtype, backend):
    """All-negative inputs next to padding: a zero pad (or a padding tap read as 0) would win every border window.

    Forward values, indices and the backward routing of a random upstream gradient
    against :func:`naive.maxpool2d_naive`, on the backend picked by the fixture.
    """
    H, W, kh, kw, sh, sw, ph, pw, dh, dw, ceil = cfg
    rng = np.random.default_rng(H * 100 + W)
    N, C = 2, 3
    x = (-1.0 - 0.01 * rng.permutation(N * C * H * W)).reshape(N, C, H, W).astype(dtype)  # distinct, all <= -1
    Ho, Wo = pool_output_size(H, kh, sh, ph, dh, ceil), pool_output_size(W, kw, sw, pw, dw, ceil)
    border = _touches_padding(cfg, Ho, Wo)
    assert border.any() and not border.all(), "the configuration must have border and inner windows"
    y, idx = kernels.maxpool_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    ref_y, ref_idx = naive.maxpool2d_naive(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil)
    assert (ref_y <= -1).all()  # the reference never lets the padding win
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(idx, ref_idx)
    assert (y[:, :, border] <= -1).all() and (idx >= 0).all()
    dy = rng.standard_normal((N, C, Ho, Wo)).astype(dtype)
    ref_dx = np.zeros((N, C, H * W), dtype=dtype)
    for n, c, i, j in np.ndindex(ref_idx.shape):
        ref_dx[n, c, ref_idx[n, c, i, j]] += dy[n, c, i, j]
    _assert_sum_equal(kernels.maxpool_backward(dy, idx, H, W), ref_dx.reshape(N, C, H, W))


@pytest.mark.parametrize("cfg", NEGATIVE_BORDER_POOLS, ids=str)
def test_maxpool_padding_against_torch(cfg, backend):
    """The same all-negative border windows against PyTorch's max_pool2d (values, indices, gradient)."""
    torch = pytest.importorskip("torch")
    H, W, kh, kw, sh, sw, ph, pw, dh, dw, ceil = cfg
    rng = np.random.default_rng(H * 100 + W + 1)
    x = (-1.0 - 0.01 * rng.permutation(2 * 2 * H * W)).reshape(2, 2, H, W)
    Ho, Wo = pool_output_size(H, kh, sh, ph, dh, ceil), pool_output_size(W, kw, sw, pw, dw, ceil)
    y, idx = kernels.maxpool_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt, it = torch.nn.functional.max_pool2d(xt, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil, return_indices=True)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(idx, it.numpy())
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.from_numpy(dy))
    _assert_sum_equal(kernels.maxpool_backward(dy, idx, H, W), xt.grad.numpy())


def test_maxpool_window_with_no_input_pixel(backend):
    """A dilated window whose taps all land in the padding: value -inf, index -1, no gradient (as PyTorch)."""
    x = np.array([[[[0.5]]]])
    y, idx = kernels.maxpool_forward(x, 1, 2, 1, 1, 0, 1, 1, 2, 1, 1)  # taps at w = -1 and w = 1
    assert y[0, 0, 0, 0] == -np.inf and idx[0, 0, 0, 0] == -1
    np.testing.assert_array_equal(kernels.maxpool_backward(np.ones_like(y), idx, 1, 1), np.zeros_like(x))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_maxpool_ties_and_negative_inputs(dtype, rng):
    """Many exact ties (small integers) and all-negative inputs next to padding."""
    for cfg in POOL_CONFIGS:
        N, C, H, W = cfg[:4]
        ties = rng.integers(-2, 1, (N, C, H, W)).astype(dtype)  # values in {-2, -1, 0}
        _check_pool(cfg, dtype, rng, x=ties)
        _check_pool(cfg, dtype, rng, x=-np.abs(rng.standard_normal((N, C, H, W))).astype(dtype) - 1)


# --------------------------------------------------------------------------- hypothesis

_sizes = st.integers(1, 12)
_hyp_settings = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def conv_configs(draw):
    cfg = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(_sizes), draw(_sizes),
           draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 4)), draw(st.integers(1, 4)),
           draw(st.integers(0, 3)), draw(st.integers(0, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    Ho, Wo = _conv_hw(cfg)
    assume(Ho >= 1 and Wo >= 1)
    return cfg


@st.composite
def pool_configs(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph = draw(st.integers(0, (dh * (kh - 1) + 1) // 2))  # PyTorch: padding at most half the kernel
    pw = draw(st.integers(0, (dw * (kw - 1) + 1) // 2))
    cfg = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(_sizes), draw(_sizes), kh, kw,
           draw(st.integers(1, 4)), draw(st.integers(1, 4)), ph, pw, dh, dw, draw(st.booleans()))
    Ho, Wo = _pool_hw(cfg)
    assume(Ho >= 1 and Wo >= 1)
    return cfg


@_hyp_settings
@given(cfg=conv_configs(), dtype=st.sampled_from(DTYPES))
def test_im2col_col2im_hypothesis(cfg, dtype):
    rng = np.random.default_rng(0)
    _check_im2col(cfg, dtype, rng)
    _check_col2im(cfg, dtype, rng)


@_hyp_settings
@given(cfg=pool_configs(), dtype=st.sampled_from(DTYPES), integers=st.booleans())
def test_maxpool_hypothesis(cfg, dtype, integers):
    rng = np.random.default_rng(0)
    shape = cfg[:4]
    x = rng.integers(-3, 3, shape) if integers else rng.standard_normal(shape)  # integers: ties everywhere
    _check_pool(cfg, dtype, rng, x=x.astype(dtype))


# --------------------------------------------------------------------------- layout and dtype at the dispatch


def _non_contiguous_views(x):
    """The same values as ``x`` in three non-C-contiguous layouts."""
    big = np.zeros(x.shape[:2] + (2 * x.shape[2], 3 * x.shape[3]), dtype=x.dtype)
    big[:, :, ::2, ::3] = x
    swapped = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    return {"strided": big[:, :, ::2, ::3], "fortran": np.asfortranarray(x), "transposed": swapped}


def test_non_contiguous_inputs(backend, rng):
    N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw = cfg = (2, 3, 7, 6, 3, 2, 2, 1, 1, 1, 1, 2)
    Ho, Wo = _conv_hw(cfg)
    x = rng.standard_normal((N, C, H, W))
    cols = kernels.im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    back = kernels.col2im(cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    y, idx = kernels.maxpool_forward(x, 3, 2, 2, 1, 1, 1, 1, 1, 4, 6)
    dx = kernels.maxpool_backward(y, idx, H, W)
    for name, view in _non_contiguous_views(x).items():
        assert not view.flags.c_contiguous, name
        np.testing.assert_array_equal(kernels.im2col(view, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo), cols)
        y2, idx2 = kernels.maxpool_forward(view, 3, 2, 2, 1, 1, 1, 1, 1, 4, 6)
        np.testing.assert_array_equal(y2, y)
        np.testing.assert_array_equal(idx2, idx)
    cols_f = np.asfortranarray(cols)
    np.testing.assert_array_equal(kernels.col2im(cols_f, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo), back)
    np.testing.assert_array_equal(kernels.maxpool_backward(np.asfortranarray(y), idx[..., ::1], H, W), dx)


def test_read_only_inputs(backend, rng):
    """Kernels never write to their inputs: read-only arrays work."""
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    x.setflags(write=False)
    cols = kernels.im2col(x, 3, 3, 1, 1, 1, 1, 1, 1, 5, 5)
    cols.setflags(write=False)
    kernels.col2im(cols, 1, 2, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 5, 5)
    y, idx = kernels.maxpool_forward(x, 2, 2, 2, 2, 0, 0, 1, 1, 2, 2)
    y.setflags(write=False)
    idx.setflags(write=False)
    kernels.maxpool_backward(y, idx, 5, 5)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_dispatch_keeps_dtype(backend, dtype, rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(dtype)
    cols = kernels.im2col(x, 3, 3, 1, 1, 1, 1, 1, 1, 6, 6)
    assert cols.dtype == dtype
    assert kernels.col2im(cols, 1, 2, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6, 6).dtype == dtype
    y, idx = kernels.maxpool_forward(x, 2, 2, 2, 2, 0, 0, 1, 1, 3, 3)
    assert y.dtype == dtype and idx.dtype == np.int64
    assert kernels.maxpool_backward(y, idx, 6, 6).dtype == dtype


# --------------------------------------------------------------------------- the backend switch


def test_set_backend_returns_previous_and_switches():
    start = kernels.get_backend()
    try:
        previous = kernels.set_backend("numpy")
        assert previous == start
        assert kernels.get_backend() == "numpy"
        assert kernels.set_backend("numba") == "numpy"
        assert kernels.get_backend() == "numba"
    finally:
        kernels.set_backend(start)


def test_use_backend_restores_even_after_an_error():
    start = kernels.get_backend()
    other = "numpy" if start == "numba" else "numba"
    with kernels.use_backend(other):
        assert kernels.get_backend() == other
    assert kernels.get_backend() == start
    with pytest.raises(RuntimeError, match="boom"):
        with kernels.use_backend(other):
            raise RuntimeError("boom")
    assert kernels.get_backend() == start


@pytest.mark.parametrize("name", ["cuda", "Numba", "", "numpy "])
def test_bad_backend_name(name):
    start = kernels.get_backend()
    with pytest.raises(ValueError, match="backend must be one of"):
        kernels.set_backend(name)
    with pytest.raises(ValueError, match="backend must be one of"):
        with kernels.use_backend(name):
            pass
    assert kernels.get_backend() == start


@pytest.mark.parametrize("name", kernels.BACKENDS)
def test_switch_routes_every_kernel(name, monkeypatch):
    """The switch really decides which module runs: spy on every kernel of the chosen one."""
    module = {"numba": nbk, "numpy": npk}[name]
    called = []
    for fn in ("im2col", "col2im", "maxpool_forward", "maxpool_backward"):
        original = getattr(module, fn)

        def spy(*args, _original=original, _fn=fn):
            called.append(_fn)
            return _original(*args)

        monkeypatch.setattr(module, fn, spy)
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 4))
    with kernels.use_backend(name):
        cols = kernels.im2col(x, 2, 2, 2, 2, 0, 0, 1, 1, 2, 2)
        kernels.col2im(cols, 1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 1, 1, 2, 2)
        y, idx = kernels.maxpool_forward(x, 2, 2, 2, 2, 0, 0, 1, 1, 2, 2)
        kernels.maxpool_backward(y, idx, 4, 4)
    assert called == ["im2col", "col2im", "maxpool_forward", "maxpool_backward"]


def _backend_in_subprocess(value):
    env = {k: v for k, v in os.environ.items() if k != "FCN_SCRATCH_BACKEND"}
    if value is not None:
        env["FCN_SCRATCH_BACKEND"] = value
    root = os.path.dirname(os.path.dirname(os.path.abspath(fcn_scratch.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    code = "from fcn_scratch import kernels; print(kernels.get_backend())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("value, expected", [(None, "numba"), ("numpy", "numpy"), ("numba", "numba"), (" NumPy ", "numpy")])
def test_environment_variable_picks_the_backend(value, expected):
    result = _backend_in_subprocess(value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_environment_variable_bad_name():
    result = _backend_in_subprocess("tensorflow")
    assert result.returncode != 0
    assert "ValueError" in result.stderr and "backend must be one of" in result.stderr


def test_maxpool_all_minus_inf_windows_agree_across_backends():
    """Real pixels equal to -inf still beat padding: both backends pick the first tap inside the input."""
    x = np.full((1, 1, 3, 3), -np.inf)
    args = (x, 3, 3, 2, 2, 1, 1, 1, 1, 2, 2)
    out_nb, idx_nb = numba_kernels.maxpool_forward(*args)
    out_np, idx_np = numpy_kernels.maxpool_forward(*args)
    np.testing.assert_array_equal(idx_nb, idx_np)
    np.testing.assert_array_equal(idx_nb.ravel(), [0, 1, 3, 4])
    assert np.all(np.isneginf(out_nb)) and np.all(np.isneginf(out_np))


@pytest.mark.parametrize("hw", [(8, 8), (7, 9), (1, 1), (2, 5), (5, 2), (33, 31)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_2x2_fast_path_equals_the_general_kernel_and_the_twin(hw, dtype):
    """The unrolled 2x2/stride-2 path (ceil-mode edge windows, ties, -inf) matches both references."""
    rng = np.random.default_rng(hw[0] * 100 + hw[1])
    H, W = hw
    x = rng.integers(-3, 3, size=(2, 3, H, W)).astype(dtype)  # small integers: many ties
    x[0, 0, 0, 0] = -np.inf
    Ho, Wo = (H + 1) // 2, (W + 1) // 2  # ceil mode
    fast = numba_kernels.maxpool2x2_forward(x, Ho, Wo)
    plain = numba_kernels.maxpool2x2_forward_py(x, Ho, Wo)
    general = numba_kernels.maxpool_forward_any(x, 2, 2, 2, 2, 0, 0, 1, 1, Ho, Wo)
    twin = numpy_kernels.maxpool_forward(x, 2, 2, 2, 2, 0, 0, 1, 1, Ho, Wo)
    for got in (fast, plain, twin):
        np.testing.assert_array_equal(got[0], general[0])
        np.testing.assert_array_equal(got[1], general[1])
    assert fast[0].dtype == dtype
    dispatched = numba_kernels.maxpool_forward(x, 2, 2, 2, 2, 0, 0, 1, 1, Ho, Wo)
    np.testing.assert_array_equal(dispatched[1], general[1])

"""The upsampling family: nearest, bilinear (fixed), bed of nails, max-unpooling; and the bilinear kernel."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcn_scratch import gradcheck
from fcn_scratch.init import bilinear_kernel, bilinear_taps, bilinear_weight
from fcn_scratch.layers import ConvTranspose2d, MaxPool2d
from fcn_scratch.upsample import (
    BedOfNails,
    BilinearUpsample,
    MaxUnpool2d,
    NearestUpsample,
    bilinear_geometry,
    unpool_output_size,
)


class _WithIndices:
    """Adapter: MaxUnpool2d with its indices fixed, so gradcheck.check_module sees a one-input layer."""

    def __init__(self, layer, indices, output_size=None):
        self.layer, self.indices, self.output_size = layer, indices, output_size

    def forward(self, x):
        return self.layer.forward(x, self.indices, self.output_size)

    def backward(self, g):
        return self.layer.backward(g)

    def named_parameters(self):
        return iter(())


def interp_matrix(n, s):
    """Independent oracle: ``M[o, i] = max(0, 1 - |(o + 1/2)/s - 1/2 - i|)``, zero beyond the edge."""
    src = (np.arange(n * s) + 0.5) / s - 0.5
    return np.maximum(0.0, 1 - np.abs(src[:, None] - np.arange(n)[None, :]))


# --------------------------------------------------------------------------- the bilinear kernel


def test_bilinear_taps_values():
    np.testing.assert_array_equal(bilinear_taps(4), [0.25, 0.75, 0.75, 0.25])
    np.testing.assert_array_equal(bilinear_taps(3), [0.5, 1.0, 0.5])
    np.testing.assert_array_equal(bilinear_kernel(4), np.outer([0.25, 0.75, 0.75, 0.25], [0.25, 0.75, 0.75, 0.25]))
    np.testing.assert_allclose(bilinear_taps(16), 1 - np.abs(np.arange(16) - 7.5) / 8)


def test_bilinear_weight_sits_on_the_channel_diagonal():
    w = bilinear_weight(3, 3, 4, np.float64)
    assert w.shape == (3, 3, 4, 4)
    for i in range(3):
        for j in range(3):
            np.testing.assert_array_equal(w[i, j], bilinear_kernel(4) if i == j else 0)


@pytest.mark.parametrize("s", [2, 4, 8, 16, 32])
def test_bilinear_convtranspose_maps_constant_to_constant_interior(s, backend):
    """k = 2s, stride s, padding s/2 (FCN's upsamplers): a constant map stays constant inside;
    the outer s/2 rows and columns get less, since the transposed conv sees zeros beyond the edge."""
    H, W = 4, 3
    up = ConvTranspose2d(2, 2, 2 * s, stride=s, padding=s // 2, dtype=np.float64)
    up.params["weight"][...] = bilinear_weight(2, 2, 2 * s, np.float64)
    up.params["bias"][...] = 0
    y = up.forward(np.full((1, 2, H, W), 1.5))
    assert y.shape == (1, 2, s * H, s * W)
    inner = y[:, :, s // 2 : s * H - s // 2, s // 2 : s * W - s // 2]
    np.testing.assert_allclose(inner, 1.5, rtol=1e-14)
    assert y[:, :, 0, 0].max() < 1.5 and y[:, :, -1, -1].max() < 1.5


# --------------------------------------------------------------------------- BilinearUpsample


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(1, 6))
def test_bilinear_geometry_gives_s_times_h(s, H):
    k, p = bilinear_geometry(s)
    assert (H - 1) * s - 2 * p + k == s * H
    assert k == (2 * s if s % 2 == 0 else 2 * s - 1) and p == s // 2


@pytest.mark.parametrize("s", [1, 2, 3, 4, 5, (2, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bilinear_upsample_is_a_bilinear_convtranspose(s, dtype, backend):
    sh, sw = (s, s) if isinstance(s, int) else s
    (kh, ph), (kw, pw) = bilinear_geometry(sh), bilinear_geometry(sw)
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4)).astype(dtype)
    up = BilinearUpsample(3, s)
    y = up.forward(x)
    assert y.shape == (2, 3, 5 * sh, 4 * sw) and y.dtype == dtype
    conv = ConvTranspose2d(3, 3, (kh, kw), stride=(sh, sw), padding=(ph, pw), bias=False, dtype=dtype)
    w = np.zeros((3, 3, kh, kw), dtype=dtype)
    for c in range(3):
        w[c, c] = np.outer(bilinear_taps(kh), bilinear_taps(kw))
    if kh == kw:
        np.testing.assert_array_equal(w, bilinear_weight(3, 3, kh, dtype))
    conv.params["weight"][...] = w
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(y, conv.forward(x), rtol=tol, atol=tol)
    # and the independent interpolation-matrix oracle, everywhere including the borders
    oracle = np.einsum("oi,ncij,qj->ncoq", interp_matrix(5, sh), x.astype(np.float64), interp_matrix(4, sw))
    np.testing.assert_allclose(y, oracle, rtol=tol, atol=tol)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(up.backward(g), conv.backward(g), rtol=tol, atol=tol)


def test_bilinear_upsample_matches_torch_interpolate_inside():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 5))
    for s in (2, 3, 4, 8):
        ours = BilinearUpsample(3, s).forward(x)
        ref = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=s, mode="bilinear",
                                              align_corners=False).numpy()
        b = s // 2  # the outer s//2 rows/cols: ours sees zeros beyond the edge, interpolate clamps
        np.testing.assert_allclose(ours[..., b:-b or None, b:-b or None], ref[..., b:-b or None, b:-b or None],
                                   rtol=1e-12, atol=1e-12)
        if b:
            assert np.abs(ours[..., 0, :] - ref[..., 0, :]).max() > 1e-3


# --------------------------------------------------------------------------- nearest, bed of nails


def test_nearest_values_and_torch():
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    y = NearestUpsample((2, 3)).forward(x)
    np.testing.assert_array_equal(y[0, 0], np.kron(x[0, 0], np.ones((2, 3))))
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5))
    ref = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=3, mode="nearest").numpy()
    np.testing.assert_array_equal(NearestUpsample(3).forward(x), ref)


def test_bed_of_nails_values_and_equivalence_with_unpooling_at_top_left():
    x = np.random.default_rng(4).standard_normal((2, 3, 3, 4))
    y = BedOfNails(2).forward(x)
    assert y.shape == (2, 3, 6, 8)
    np.testing.assert_array_equal(y[:, :, ::2, ::2], x)
    assert np.count_nonzero(y) == x.size
    top_left = (2 * np.arange(3))[:, None] * 8 + 2 * np.arange(4)[None, :]
    idx = np.broadcast_to(top_left, x.shape).copy()
    np.testing.assert_array_equal(MaxUnpool2d(2).forward(x, idx), y)


# --------------------------------------------------------------------------- max-unpooling


def test_maxunpool_puts_maxima_back(backend):
    x = gradcheck.distinct_values((2, 3, 6, 8), np.random.default_rng(5)) + 10  # no maximum is 0
    y, idx = MaxPool2d(2, return_indices=True).forward(x)
    up = MaxUnpool2d(2).forward(y, idx)
    assert up.shape == x.shape
    kept = up != 0
    np.testing.assert_array_equal(up[kept], x[kept])  # the maxima, where they were
    assert kept.sum() == y.size
    np.testing.assert_array_equal(MaxPool2d(2).forward(up + np.where(kept, 0, -1e3)), y)


def test_maxunpool_odd_size_needs_output_size(backend):
    """A ceil-mode pool of 7x9 gives 4x5; the default unpooled size is 8x10, pass (7, 9) to undo it."""
    x = gradcheck.distinct_values((1, 2, 7, 9), np.random.default_rng(6))
    y, idx = MaxPool2d(2, ceil_mode=True, return_indices=True).forward(x)
    unpool = MaxUnpool2d(2)
    assert unpool.forward(y, idx).shape == (1, 2, 8, 10)
    up = unpool.forward(y, idx, output_size=x.shape)
    assert up.shape == x.shape
    np.testing.assert_array_equal(up[up != 0], x[up != 0])
    with pytest.raises(ValueError, match="within one stride"):
        unpool.forward(y, idx, output_size=(6, 9))


def test_maxunpool_matches_torch_including_overlapping_windows():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for k, s, p, hw in ((2, 2, 0, (6, 8)), (3, 2, 1, (7, 9)), (3, 3, 0, (9, 6))):
        x = np.random.default_rng(7).standard_normal((2, 3, *hw))
        ty, tidx = F.max_pool2d(torch.from_numpy(x), k, s, p, return_indices=True)
        y, idx = MaxPool2d(k, s, p, return_indices=True).forward(x)
        np.testing.assert_array_equal(idx, tidx.numpy())
        ref = F.max_unpool2d(ty, tidx, k, s, p, output_size=hw).numpy()
        np.testing.assert_array_equal(MaxUnpool2d(k, s, p).forward(y, idx, output_size=hw), ref)
    assert unpool_output_size(4, 3, 2, 1) == 7


def test_maxunpool_bad_input():
    unpool = MaxUnpool2d(2)
    x = np.ones((1, 1, 2, 2))
    with pytest.raises(TypeError, match="integer"):
        unpool.forward(x, np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"shape of x \(1, 1, 2, 2\)"):
        unpool.forward(x, np.zeros((1, 1, 2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        unpool.forward(x, np.full((1, 1, 2, 2), 16, dtype=np.int64))
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        unpool.forward(x, np.full((1, 1, 2, 2), -1, dtype=np.int64))
    with pytest.raises(ValueError, match="4 dimensions"):
        unpool.forward(np.ones((2, 2)), np.zeros((2, 2), dtype=np.int64))


# --------------------------------------------------------------------------- gradients of every layer


def _cases(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    pooled_from = gradcheck.distinct_values((2, 3, 7, 10), rng)
    y, idx = MaxPool2d(2, ceil_mode=True, return_indices=True).forward(pooled_from)
    return [
        ("nearest s=2", NearestUpsample(2), x),
        ("nearest s=(3, 2)", NearestUpsample((3, 2)), x),
        ("bilinear s=2", BilinearUpsample(3, 2), x),
        ("bilinear s=3", BilinearUpsample(3, 3), x),
        ("bilinear s=(4, 1)", BilinearUpsample(3, (4, 1)), x),
        ("bed of nails s=2", BedOfNails(2), x),
        ("bed of nails s=(1, 3)", BedOfNails((1, 3)), x),
        ("max-unpool 2x2, output (7, 10)", _WithIndices(MaxUnpool2d(2), idx, (7, 10)), rng.standard_normal(y.shape)),
    ]


@pytest.mark.parametrize("i", range(8))
def test_gradcheck_every_upsampler(i, backend):
    name, layer, x = _cases(np.random.default_rng(10 + i))[i]
    errors = gradcheck.check_module(layer, x, seed=i)
    assert errors["x"] < gradcheck.TOL_SMOOTH, f"{name}: {errors['x']:.2e}"


@pytest.mark.parametrize("i", range(8))
def test_backward_is_the_adjoint(i):
    """<up(x), g> == <x, up^T(g)> for the linear upsamplers (dot-product test)."""
    rng = np.random.default_rng(20 + i)
    name, layer, x = _cases(rng)[i]
    y = layer.forward(x)
    g = rng.standard_normal(y.shape)
    assert np.vdot(y, g) == pytest.approx(np.vdot(x, layer.backward(g)), rel=1e-12), name


# --------------------------------------------------------------------------- misuse


def test_no_grad_keeps_no_cache():
    from fcn_scratch.layers import no_grad

    x = np.ones((1, 3, 2, 2))
    idx = np.zeros((1, 3, 2, 2), dtype=np.int64) + np.array([0, 2])[None, None, None, :]
    for layer, args in ((NearestUpsample(2), ()), (BedOfNails(2), ()), (BilinearUpsample(3, 2), ()),
                        (MaxUnpool2d(2), (idx,))):
        with no_grad():
            y = layer.forward(x, *args)
        with pytest.raises(ValueError, match="no_grad"):
            layer.backward(np.ones_like(y))


def test_upsample_bad_input():
    with pytest.raises(ValueError, match="scale_factor"):
        NearestUpsample(0)
    with pytest.raises(TypeError, match="scale_factor"):
        BedOfNails(1.5)
    with pytest.raises(ValueError, match="x must have 3 channels"):
        BilinearUpsample(3, 2).forward(np.ones((1, 2, 4, 4)))
    with pytest.raises(ValueError, match="4 dimensions"):
        NearestUpsample(2).forward(np.ones((4, 4)))
    layer = BedOfNails(2)
    with pytest.raises(ValueError, match="before forward"):
        layer.backward(np.ones((1, 1, 4, 4)))
    layer.forward(np.ones((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"forward output's shape \(1, 1, 4, 4\)"):
        layer.backward(np.ones((1, 1, 4, 5)))

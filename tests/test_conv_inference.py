"""``functional.conv2d_inference``: the banded, cache-free forward gives the same ``y`` as ``conv2d_forward``."""

import numpy as np
import pytest

from fcn_scratch import functional as F
from fcn_scratch import layers as L

# (C, F, H, W, kernel, stride, padding, dilation)
CASES = [
    (3, 4, 9, 7, 3, 1, 1, 1),
    (2, 3, 11, 6, (3, 2), (2, 1), (1, 0), 1),
    (2, 2, 10, 10, 3, 1, 2, 2),       # dilation: a band reads rows two apart
    (3, 2, 8, 9, 3, 3, 0, 1),         # stride 3: bands start mid-image on a stride grid
    (1, 2, 4, 5, 3, 1, 4, 1),         # padding 4 > kernel: first and last bands see padding only
    (2, 3, 7, 5, 5, 2, 3, (1, 2)),
    (4, 2, 6, 6, 1, 2, 1, 1),         # a strided, padded 1x1 conv still unfolds
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("band_bytes", [1, 200, 10**9])  # one row per band, a few rows, whole images
def test_banded_inference_equals_the_full_forward(case, band_bytes, backend, rng):
    C, Fo, H, W, k, s, p, d = case
    x = rng.standard_normal((3, C, H, W))
    kh, kw = (k, k) if isinstance(k, int) else k
    w = rng.standard_normal((Fo, C, kh, kw))
    b = rng.standard_normal(Fo)
    for bias in (b, None):
        expected, _ = F.conv2d_forward(x, w, bias, s, p, d)
        got = F.conv2d_inference(x, w, bias, s, p, d, band_bytes=band_bytes)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("images", [1, 2, 4])  # whole images per band; 5 images leave a short last band
def test_small_images_go_a_few_whole_images_per_band(images, backend, monkeypatch, rng):
    C, Fo, H, W = 3, 4, 6, 5
    x = rng.standard_normal((5, C, H, W))
    w = rng.standard_normal((Fo, C, 3, 3))
    b = rng.standard_normal(Fo)
    one_image = C * 9 * H * W * x.itemsize  # the columns of one image
    unfolded = []
    real = F.kernels.im2col
    monkeypatch.setattr(F.kernels, "im2col", lambda x, *g: unfolded.append(len(x)) or real(x, *g))
    got = F.conv2d_inference(x, w, b, 1, 1, band_bytes=images * one_image)
    assert unfolded == [min(images, 5 - a) for a in range(0, 5, images)]  # never the whole batch at once
    np.testing.assert_allclose(got, F.conv2d_forward(x, w, b, 1, 1)[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("N", [1, 3])
def test_a_large_image_is_cut_into_bands_of_rows(N, backend, monkeypatch, rng):
    x = rng.standard_normal((N, 2, 12, 7))
    w = rng.standard_normal((3, 2, 3, 3))
    unfolded = []
    real = F.kernels.im2col
    monkeypatch.setattr(F.kernels, "im2col", lambda x, *g: unfolded.append(x.shape) or real(x, *g))
    row_bytes = 2 * 9 * 7 * x.itemsize  # the columns of one output row
    got = F.conv2d_inference(x, w, None, 1, 1, band_bytes=5 * row_bytes)  # 5 rows a band: 5 + 5 + 2
    assert len(unfolded) == 3 * N and all(shape[0] == 1 for shape in unfolded)
    np.testing.assert_allclose(got, F.conv2d_forward(x, w, None, 1, 1)[0], rtol=1e-12, atol=1e-12)


def test_banded_inference_float32_and_a_plain_1x1(rng):
    x = rng.standard_normal((2, 5, 12, 13)).astype(np.float32)
    for k, p in ((3, 1), (1, 0)):
        w = rng.standard_normal((6, 5, k, k)).astype(np.float32)
        expected, _ = F.conv2d_forward(x, w, None, 1, p)
        got = F.conv2d_inference(x, w, None, 1, p, band_bytes=1)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_banded_inference_checks_its_input_like_the_forward(rng):
    w = rng.standard_normal((2, 3, 3, 3))
    with pytest.raises(ValueError, match="channels"):
        F.conv2d_inference(rng.standard_normal((1, 4, 5, 5)), w)
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv2d_inference(rng.standard_normal((1, 3, 2, 2)), w)


def test_conv2d_layer_uses_the_banded_path_under_no_grad(monkeypatch, rng):
    conv = L.Conv2d(3, 4, 3, padding=1, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 3, 8, 8))
    expected = conv.forward(x)
    calls = []
    real = F.conv2d_inference
    monkeypatch.setattr(F, "conv2d_inference", lambda *a, **k: calls.append(1) or real(*a, band_bytes=1, **k))
    with L.no_grad():
        got = conv.forward(x)
    assert calls == [1]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="no_grad"):
        conv.backward(np.ones_like(got))

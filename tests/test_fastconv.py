"""The fast training path of Conv2d (:mod:`fcn_scratch.fastconv`) against the readable pair it replaces.

``fastconv`` unfolds image by image (in chunks) into a reused per-thread
workspace and caches ``x`` instead of the column matrix. Its outputs must equal
``functional.conv2d_forward`` bit for bit (the same GEMM per image) and its
gradients ``functional.conv2d_backward``'s up to summation order, on both kernel
backends, for every geometry; float64 finite differences check it on its own.
Also here: the ``*_into`` kernels it calls, the per-thread workspace, the
layers' ``free_after_backward`` and ReLU's cache of its output.
"""

import threading

import numpy as np
import pytest

from fcn_scratch import fastconv, kernels
from fcn_scratch import functional as F
from fcn_scratch import layers as L
from fcn_scratch.gradcheck import check, rel_error
from fcn_scratch.kernels import numba_kernels as nbk
from fcn_scratch.kernels import numpy_kernels as npk

# (N, C, F, H, W, kernel, stride, padding, dilation)
CONFIGS = [
    (3, 4, 4, 9, 8, 3, 1, 1, 1),  # the FCN's 3x3 "same" conv, F == C: dx as the full convolution
    (2, 3, 5, 7, 9, 3, 1, 1, 1),  # F > C: dx by col2im
    (2, 5, 2, 6, 7, 3, 1, 1, 1),  # F < C
    (2, 3, 4, 9, 8, 3, 2, 1, 1),  # stride 2: col2im
    (2, 2, 3, 11, 10, 3, 1, 2, 2),  # dilation 2, padding 2
    (1, 2, 2, 8, 6, (3, 2), (2, 3), (1, 0), 1),  # non-square everything
    (2, 3, 3, 6, 6, 3, 1, 0, 1),  # no padding: the full convolution pads k-1
    (2, 2, 2, 5, 5, 5, 1, 3, 1),  # padding > k-1: col2im, not the full convolution
    (2, 3, 4, 5, 6, 1, 1, 0, 1),  # 1x1: the readable pair either way
    (5, 3, 3, 4, 4, 3, 1, 1, 1),  # 5 images: chunks of unequal size when CHUNK_BYTES is small
]


def _operands(cfg, dtype, rng, bias=True):
    N, C, Fo, H, W, k, s, p, d = cfg
    kh, kw = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((Fo, C, kh, kw)).astype(dtype)
    b = rng.standard_normal(Fo).astype(dtype) if bias else None
    return x, w, b, dict(stride=s, padding=p, dilation=d)


@pytest.fixture(params=["default", "per image", "pairs"])
def chunking(request, monkeypatch):
    """Default chunks (these small batches fit one chunk: the readable pair runs), one image per
    chunk, and two images per chunk (the last one shorter for an odd batch)."""
    if request.param == "per image":
        monkeypatch.setattr(fastconv, "CHUNK_BYTES", 1)
    elif request.param == "pairs":
        monkeypatch.setattr(fastconv, "_chunk", lambda N, bytes_per_image: min(2, max(1, N - 1)))
    return request.param


@pytest.fixture
def per_image(monkeypatch):
    monkeypatch.setattr(fastconv, "CHUNK_BYTES", 1)


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_numbers_as_the_readable_pair(backend, chunking, cfg, dtype, rng):
    x, w, b, hyper = _operands(cfg, dtype, rng)
    y_ref, cache_ref = F.conv2d_forward(x, w, b, **hyper)
    y, cache = fastconv.conv2d_forward(x, w, b, **hyper)
    assert y.dtype == dtype and y.shape == y_ref.shape
    np.testing.assert_array_equal(y, y_ref)  # the same GEMM on the same columns
    dy = rng.standard_normal(y.shape).astype(dtype)
    dy_before = dy.copy()
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for input_grad in (True, False):
        want = F.conv2d_backward(dy, cache_ref, input_grad)
        got = fastconv.conv2d_backward(dy, cache, input_grad)
        assert (got[0] is None) == (not input_grad)
        for name, a, r in zip(("dx", "dweight", "dbias"), got, want):
            if r is None:
                continue
            assert a.dtype == dtype and a.shape == r.shape, name
            assert rel_error(a, r) < tol, name
    np.testing.assert_array_equal(dy, dy_before)  # backward never edits dy


def test_without_bias(backend, per_image, rng):
    x, w, _, hyper = _operands(CONFIGS[0], np.float64, rng, bias=False)
    y, cache = fastconv.conv2d_forward(x, w, None, **hyper)
    np.testing.assert_array_equal(y, F.conv2d_forward(x, w, None, **hyper)[0])
    assert fastconv.conv2d_backward(np.ones_like(y), cache)[2] is None


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[1], CONFIGS[3], CONFIGS[4]])
def test_finite_differences(backend, chunking, cfg, rng):
    x, w, b, hyper = _operands(cfg, np.float64, rng)
    state = {}

    def forward():
        y, state["cache"] = fastconv.conv2d_forward(x, w, b, **hyper)
        return y

    def backward(g):
        dx, dw, db = fastconv.conv2d_backward(g, state["cache"])
        return {"x": dx, "w": dw, "b": db}

    errors = check(forward, backward, {"x": x, "w": w, "b": b}, seed=3, samples=60)  # 60 random entries each
    assert max(errors.values()) < 1e-7, errors


def test_a_planted_bug_fails_the_comparison(monkeypatch, per_image, rng):
    """The parity test can fail: swap the full convolution's padding and dx goes wrong."""
    x, w, b, hyper = _operands(CONFIGS[0], np.float64, rng)
    y, cache = fastconv.conv2d_forward(x, w, b, **hyper)
    dy = rng.standard_normal(y.shape)
    want = F.conv2d_backward(dy, F.conv2d_forward(x, w, b, **hyper)[1])[0]
    real = kernels.im2col_into

    def shifted(x, cols, kh, kw, sh, sw, ph, pw, *rest):  # unfold dY with one pad too few on the left
        return real(x, cols, kh, kw, sh, sw, ph, max(0, pw - 1), *rest)

    monkeypatch.setattr(kernels, "im2col_into", shifted)
    got = fastconv.conv2d_backward(dy, cache)[0]
    assert rel_error(got, want) > 1e-3


def test_results_never_alias_the_workspace(per_image, rng):
    x, w, b, hyper = _operands(CONFIGS[0], np.float32, rng)
    y, cache = fastconv.conv2d_forward(x, w, b, **hyper)
    grads = fastconv.conv2d_backward(np.ones_like(y), cache)
    buf = fastconv.workspace((1,), np.float32).base
    for a in (y, *grads):
        assert not np.shares_memory(a, buf)


def test_workspace_is_per_thread_and_reused():
    a = fastconv.workspace((4, 5), np.float32)
    b = fastconv.workspace((3,), np.float64)
    assert a.shape == (4, 5) and a.dtype == np.float32 and b.shape == (3,) and b.dtype == np.float64
    assert np.shares_memory(a, b)  # the same thread's buffer, reused
    other = {}
    t = threading.Thread(target=lambda: other.setdefault("ws", fastconv.workspace((4, 5), np.float32)))
    t.start()
    t.join()
    assert not np.shares_memory(a, other["ws"])


def test_workspace_beyond_keep_bytes_is_a_fresh_array(monkeypatch):
    small = fastconv.workspace((8,), np.float32)
    more = fastconv._local.buf.nbytes // 4 + 10  # larger than this thread's buffer so far
    monkeypatch.setattr(fastconv, "KEEP_BYTES", 64)
    big = fastconv.workspace((more,), np.float32)
    assert big.shape == (more,) and not np.shares_memory(big, small)
    assert not np.shares_memory(fastconv.workspace((more,), np.float32), big)  # not kept: fresh each time


def test_chunks_are_even():
    assert fastconv._chunk(8, 1) == 8
    assert fastconv._chunk(8, fastconv.CHUNK_BYTES // 7) == 4  # 7 fit: two chunks of 4, not 7 + 1
    assert fastconv._chunk(8, fastconv.CHUNK_BYTES // 3) == 3  # 3 fit: chunks of 3, 3, 2
    assert fastconv._chunk(5, fastconv.CHUNK_BYTES) == 1
    assert fastconv._chunk(3, 10 * fastconv.CHUNK_BYTES) == 1  # at least one image


@pytest.mark.parametrize("chunk_bytes", [1, 2**20])  # per image; whole batch (the readable pair)
def test_conv2d_layer_trains_the_same_with_and_without_the_fast_path(backend, monkeypatch, chunk_bytes, rng):
    monkeypatch.setattr(fastconv, "CHUNK_BYTES", chunk_bytes)
    x = rng.standard_normal((3, 4, 10, 9))
    dy = rng.standard_normal((3, 6, 10, 9))
    out = {}
    for flag in (True, False):
        layer = L.Conv2d(4, 6, 3, padding=1, dtype=np.float64, seed=0)
        with fastconv.use_fastconv(flag):
            y = layer.forward(x)
            dx = layer.backward(dy)
        out[flag] = (y, dx, layer.grads["weight"], layer.grads["bias"])
    for a, b in zip(out[True], out[False]):
        assert rel_error(a, b) < 1e-12
    assert fastconv.enabled()  # the default, restored by the context manager


def test_conv2d_layer_under_no_grad_uses_neither(rng):
    layer = L.Conv2d(2, 3, 3, padding=1, dtype=np.float64, seed=0)
    with L.no_grad():
        layer.forward(rng.standard_normal((1, 2, 5, 5)))
    with pytest.raises(ValueError, match="before forward"):
        layer.backward(np.ones((1, 3, 5, 5)))


# --------------------------------------------------------------------------- the *_into kernels

INTO_CONFIGS = [  # (N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw)
    (2, 3, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1),
    (1, 2, 8, 6, 3, 2, 2, 3, 1, 0, 1, 1),
    (2, 2, 11, 10, 3, 3, 2, 2, 2, 2, 2, 2),
    (1, 2, 3, 1, 5, 5, 1, 1, 2, 2, 1, 1),
    (1, 2, 16, 2, 16, 1, 8, 1, 4, 0, 1, 1),
]


@pytest.mark.parametrize("cfg", INTO_CONFIGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_into_kernels_equal_the_allocating_ones(cfg, dtype, rng):
    N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw = cfg
    Ho = F.conv_output_size(H, kh, sh, ph, dh)
    Wo = F.conv_output_size(W, kw, sw, pw, dw)
    geom = (kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    cols = rng.standard_normal((N, C * kh * kw, Ho * Wo)).astype(dtype)
    for module in (nbk, npk):
        out = np.full((N, C * kh * kw, Ho * Wo), np.nan, dtype=dtype)  # every entry must be written
        module.im2col_into(x, out, *geom)
        np.testing.assert_array_equal(out, module.im2col(x, *geom))
        back = np.full((N, C, H, W), np.nan, dtype=dtype)  # overwritten, not added to
        module.col2im_into(cols, back, *geom)
        np.testing.assert_allclose(back, nbk.col2im(cols, N, C, H, W, *geom), rtol=1e-6, atol=1e-6)
    if nbk.im2col_into is not nbk.im2col_into_py:  # the plain-Python original too (it is the one under NUMBA_DISABLE_JIT)
        out = np.empty((N, C * kh * kw, Ho * Wo), dtype=dtype)
        nbk.im2col_into_py(x, out, *geom)
        np.testing.assert_array_equal(out, nbk.im2col(x, *geom))


def test_into_wrappers_refuse_a_wrong_destination(rng):
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    geom = (3, 3, 1, 1, 1, 1, 1, 1, 4, 4)
    with pytest.raises(ValueError, match="cols must have shape"):
        kernels.im2col_into(x, np.empty((1, 18, 15), np.float32), *geom)
    with pytest.raises(ValueError, match="dtype"):
        kernels.im2col_into(x, np.empty((1, 18, 16), np.float64), *geom)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.im2col_into(x, np.empty((1, 16, 18), np.float32).transpose(0, 2, 1), *geom)
    with pytest.raises(TypeError, match="cols must be a numpy.ndarray"):
        kernels.im2col_into(x, [0.0], *geom)
    cols = np.zeros((1, 18, 16), np.float32)
    with pytest.raises(ValueError, match="cols must have shape"):
        kernels.col2im_into(cols, np.empty((1, 3, 4, 4), np.float32), *geom)
    with pytest.raises(ValueError, match="x must have shape"):
        kernels.col2im_into(cols, np.empty((1, 2, 4, 4), np.float64), *geom)


# --------------------------------------------------------------------------- caches


def test_free_after_backward_drops_each_cache_once_used(per_image, rng):
    conv, relu = L.Conv2d(2, 3, 3, padding=1, dtype=np.float64, seed=0), L.ReLU()
    x = rng.standard_normal((2, 2, 5, 5))
    y = relu.forward(conv.forward(x))
    with L.free_after_backward():
        conv.backward(relu.backward(np.ones_like(y)))
        assert conv._cache is None and relu._cache is None
        with pytest.raises(ValueError, match="before forward"):
            relu.backward(np.ones_like(y))
    y = relu.forward(conv.forward(x))  # outside: a layer may backpropagate twice, as before
    first = conv.backward(relu.backward(np.ones_like(y)))
    np.testing.assert_array_equal(conv.backward(relu.backward(np.ones_like(y))), first)


def test_relu_keeps_its_output_and_backpropagates_as_the_pair(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # away from the kink
    relu = L.ReLU()
    y = relu.forward(x)
    assert relu._cache is y  # no separate mask
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(relu.backward(dy), F.relu_backward(dy, F.relu_forward(x)[1]))


def test_maxpool_keeps_indices_only_on_request(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    pool = L.MaxPool2d(2)
    pool.forward(x)
    assert pool.indices is None  # the cache holds them until backward; nothing else does
    pool.backward(np.ones((1, 2, 2, 2)))
    with_indices = L.MaxPool2d(2, return_indices=True)
    assert with_indices.forward(x)[1] is with_indices.indices


def test_relu_inplace_overwrites_its_input_and_backpropagates_the_same(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5
    y_ref, mask = F.relu_forward(x)
    dy = rng.standard_normal(x.shape)
    relu = L.ReLU(inplace=True)
    y = relu.forward(x)
    assert y is x  # no new array
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(relu.backward(dy), F.relu_backward(dy, mask))
    x2 = rng.standard_normal((2, 3))
    kept = x2.copy()
    L.ReLU().forward(x2)
    np.testing.assert_array_equal(x2, kept)  # the default leaves x alone


def test_models_relu_in_place_only_on_their_own_fresh_arrays(rng):
    from fcn_scratch.models import FCN8s

    model = FCN8s(3, widths=(2, 3, 4, 4, 5), convs_per_block=(2, 1, 1, 1, 1), fc_channels=6, dtype=np.float64,
                  seed=0)
    assert all(m.inplace for name, m in model.children().items() if name.startswith("relu"))
    x = rng.standard_normal((1, 3, 16, 16))
    kept = x.copy()
    model.forward(x)
    np.testing.assert_array_equal(x, kept)  # the model's input is never overwritten

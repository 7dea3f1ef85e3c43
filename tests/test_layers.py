"""The layer API contract (DESIGN.md) and finite-difference checks of every layer.

Contract: ``state_dict`` copies in PyTorch names/layouts, ``load_state_dict``
errors that name the key, ``grad_dict``, dtype kept, non-contiguous inputs
accepted, ``backward`` never writing into ``dy``, Dropout2d semantics,
MaxPool2d ``return_indices``.

Gradient checks: the configurations of ``fcn-scratch gradcheck`` run in
``test_gradcheck_report.py``; here are the others (odd sizes, stride 2-3,
padding, dilation 2-3, non-square kernels, ceil-mode windows hanging off the
edge, output_padding beyond the stride), for the input and every parameter,
on both backends.
"""

import numpy as np
import pytest

from fcn_scratch import gradcheck, naive
from fcn_scratch import layers as L
from fcn_scratch.gradcheck import TOL_KINK, TOL_SMOOTH, away_from_kinks, distinct_values

DTYPES = (np.float32, np.float64)
DTYPE_IDS = ("float32", "float64")


# --------------------------------------------------------------------------- helpers


class _Net(L.Module):
    """A tiny container: keys get the attribute name as a prefix."""

    def __init__(self, dtype=np.float32):
        super().__init__()
        self.conv1 = L.Conv2d(3, 4, 3, padding=1, dtype=dtype, seed=0)
        self.drop = L.Dropout2d(0.5, seed=0)
        self.up = L.ConvTranspose2d(4, 2, 4, stride=2, padding=1, bias=False, dtype=dtype, seed=1)


def _all_layers(dtype):
    """One instance of every layer with a matching input; (name, layer, forward args)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6)).astype(dtype)
    labels = rng.integers(0, 3, (2, 7, 6))
    labels[0, 0, 0] = 255
    return [
        ("Conv2d", L.Conv2d(3, 4, 3, 2, 1, dtype=dtype, seed=0), (x,)),
        ("ConvTranspose2d-col2im", L.ConvTranspose2d(3, 2, 3, 2, 1, 1, dtype=dtype, seed=0), (x,)),
        ("ConvTranspose2d-zero_insert",
         L.ConvTranspose2d(3, 2, 3, 2, 1, 1, method="zero_insert", dtype=dtype, seed=0), (x,)),
        ("MaxPool2d", L.MaxPool2d(2, ceil_mode=True), (x,)),
        ("MaxPool2d-indices", L.MaxPool2d(3, 2, 1, return_indices=True), (x,)),
        ("ReLU", L.ReLU(), (x,)),
        ("Dropout2d-train", L.Dropout2d(0.5, seed=0), (x,)),
        ("Dropout2d-eval", L.Dropout2d(0.5, seed=0).eval(), (x,)),
        ("Crop", L.Crop((1, 2)), (x, (4, 3))),
        ("Add", L.Add(), (x, 2 * x)),
        ("SoftmaxCrossEntropy", L.SoftmaxCrossEntropy(), (x, labels)),
    ]


LAYER_NAMES = [name for name, _, _ in _all_layers(np.float64)]


def _layer(name, dtype):
    return next((m, args) for n, m, args in _all_layers(dtype) if n == name)


def _forward(m, args):
    y = m.forward(*args)
    return y[0] if isinstance(y, tuple) else y


def _backward(m, dy):
    """``backward(dy)``; the loss takes a scalar ``dloss`` instead."""
    return m.backward(dy) if not isinstance(m, L.SoftmaxCrossEntropy) else m.backward(float(dy))


def _upstream(y, rng):
    return np.asarray(rng.standard_normal(np.shape(y))).astype(np.asarray(y).dtype) if np.ndim(y) else 1.7


def _as_tuple(g):
    return g if isinstance(g, tuple) else (g,)


# --------------------------------------------------------------------------- state_dict / load_state_dict / grad_dict


def test_state_dict_keys_and_pytorch_layouts():
    conv = L.Conv2d(3, 5, (3, 2), seed=0)
    sd = conv.state_dict()
    assert list(sd) == ["weight", "bias"]
    assert sd["weight"].shape == (5, 3, 3, 2)  # (out, in, kh, kw)
    assert sd["bias"].shape == (5,)
    convt = L.ConvTranspose2d(3, 5, (4, 2), stride=2, seed=0)
    sd = convt.state_dict()
    assert sd["weight"].shape == (3, 5, 4, 2)  # (in, out, kh, kw)
    assert sd["bias"].shape == (5,)
    assert list(L.Conv2d(3, 5, 1, bias=False).state_dict()) == ["weight"]
    for m in (L.MaxPool2d(2), L.ReLU(), L.Dropout2d(), L.SoftmaxCrossEntropy(), L.Crop(), L.Add()):
        assert m.state_dict() == {}


def test_state_dict_returns_copies():
    conv = L.Conv2d(2, 3, 3, seed=0)
    sd = conv.state_dict()
    before = conv.weight.copy()
    sd["weight"][...] = 123.0
    sd["bias"][...] = 123.0
    np.testing.assert_array_equal(conv.weight, before)
    assert not np.shares_memory(conv.state_dict()["weight"], conv.weight)


def test_container_keys_are_prefixed_and_modes_propagate():
    net = _Net()
    assert list(net.state_dict()) == ["conv1.weight", "conv1.bias", "up.weight"]
    assert net.eval() is net
    assert not net.drop.training and not net.conv1.training
    assert net.train() is net
    assert net.drop.training


def test_load_state_dict_round_trip():
    a, b = L.Conv2d(2, 3, 3, seed=0), L.Conv2d(2, 3, 3, seed=1)
    assert not np.array_equal(a.weight, b.weight)
    sd = a.state_dict()
    b.load_state_dict(sd)
    for key in sd:
        np.testing.assert_array_equal(b.state_dict()[key], sd[key])
    sd["weight"][...] = 0  # the layer copied the values in, it does not hold the caller's arrays
    assert b.weight.any()
    net, other = _Net(), _Net()
    other.conv1.params["weight"] += 1
    net.load_state_dict(other.state_dict())
    np.testing.assert_array_equal(net.conv1.weight, other.conv1.weight)


def _expect_untouched(m, before):
    for key, value in m.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=f"{key} was written by a failed load")


def test_load_state_dict_missing_key():
    m = L.Conv2d(2, 3, 3, seed=0)
    before = m.state_dict()
    bad = {"weight": np.zeros((3, 2, 3, 3), np.float32)}
    with pytest.raises(KeyError, match="missing key 'bias'"):
        m.load_state_dict(bad)
    _expect_untouched(m, before)
    with pytest.raises(KeyError, match="up.weight"):
        _Net().load_state_dict({k: v for k, v in _Net().state_dict().items() if k != "up.weight"})


def test_load_state_dict_unexpected_key():
    m = L.Conv2d(2, 3, 3, bias=False, seed=0)
    before = m.state_dict()
    bad = {"weight": np.zeros((3, 2, 3, 3), np.float32), "bias": np.zeros(3, np.float32)}
    with pytest.raises(KeyError, match="unexpected key 'bias'"):
        m.load_state_dict(bad)
    _expect_untouched(m, before)
    with pytest.raises(KeyError, match="unexpected key 'weight'"):
        L.ReLU().load_state_dict({"weight": np.zeros(1)})
    L.ReLU().load_state_dict({})  # nothing to load is fine


def test_load_state_dict_wrong_shape():
    m = L.Conv2d(2, 3, 3, seed=0)
    before = m.state_dict()
    bad = m.state_dict()
    bad["bias"] = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"state_dict\['bias'\] has shape \(4,\), expected \(3,\)"):
        m.load_state_dict(bad)
    _expect_untouched(m, before)  # the (valid) weight was not written either
    bad = m.state_dict()
    bad["weight"] = bad["weight"].transpose(1, 0, 2, 3)  # a ConvTranspose2d layout by mistake
    with pytest.raises(ValueError, match=r"'weight'.*\(2, 3, 3, 3\), expected \(3, 2, 3, 3\)"):
        m.load_state_dict(bad)


def test_load_state_dict_wrong_dtype():
    m = L.Conv2d(2, 3, 3, seed=0)  # float32
    before = m.state_dict()
    bad = {k: v.astype(np.float64) for k, v in m.state_dict().items()}
    with pytest.raises(ValueError, match=r"'weight'.*dtype float64, expected float32"):
        m.load_state_dict(bad)
    _expect_untouched(m, before)
    with pytest.raises(TypeError, match="state must be a dict"):
        m.load_state_dict([("weight", before["weight"])])


def test_grad_dict():
    m = L.Conv2d(2, 3, 3, padding=1, dtype=np.float64, seed=0)
    with pytest.raises(ValueError, match="grad_dict.*'weight'"):
        m.grad_dict()
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    y = m.forward(x)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    m.backward(dy)
    g = m.grad_dict()
    assert list(g) == list(m.state_dict())
    np.testing.assert_allclose(g["bias"], [dy[:, f].sum() for f in range(3)], rtol=1e-13)  # sum of dy over n, h, w
    g["weight"][...] = 0
    assert m.grads["weight"].any()  # a copy
    assert list(L.Conv2d(2, 3, 3, bias=False).state_dict()) == ["weight"]
    assert L.ReLU().grad_dict() == {}


def test_construction_is_seeded():
    a, b, c = L.Conv2d(3, 4, 3, seed=5), L.Conv2d(3, 4, 3, seed=5), L.Conv2d(3, 4, 3, seed=6)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.array_equal(a.weight, c.weight)
    d = L.ConvTranspose2d(3, 4, 3, rng=np.random.default_rng(5))
    assert d.weight.shape == (3, 4, 3, 3)
    assert L.Conv2d(3, 4, 3, dtype=np.float64).weight.dtype == np.float64
    assert L.Conv2d(3, 4, 3).bias.dtype == np.float32


def test_reprs():
    for _, m, _ in _all_layers(np.float32):
        assert type(m).__name__ in repr(m)


# --------------------------------------------------------------------------- dtype, layouts, purity


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", LAYER_NAMES)
def test_dtype_is_kept(name, dtype, backend):
    m, args = _layer(name, dtype)
    y = _forward(m, args)
    if isinstance(m, L.SoftmaxCrossEntropy):
        assert isinstance(y, float)
    else:
        assert y.dtype == dtype
    for g in _as_tuple(_backward(m, _upstream(y, np.random.default_rng(1)))):
        assert g.dtype == dtype
    for key, g in m.grad_dict().items():
        assert g.dtype == dtype, key
        assert m.params[key.split(".")[-1]].dtype == dtype


def _non_contiguous(a):
    """Same values, not C-contiguous: every other column of a wider array."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    wide[..., ::2] = a
    view = wide[..., ::2]
    assert not view.flags.c_contiguous
    return view


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_non_contiguous_inputs_and_gradients(name, backend):
    m, args = _layer(name, np.float64)
    y = _forward(m, args)
    dy = _upstream(y, np.random.default_rng(2))
    dx = _as_tuple(_backward(m, dy))
    grads = m.grad_dict()
    m2, _ = _layer(name, np.float64)
    nc_args = tuple(_non_contiguous(a) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args)
    nc_args = tuple(np.asfortranarray(a) if isinstance(a, np.ndarray) and a.dtype.kind == "i" else a for a in nc_args)
    y2 = _forward(m2, nc_args)
    np.testing.assert_array_equal(y2, y)
    dy2 = _non_contiguous(dy) if isinstance(dy, np.ndarray) else dy
    for a, b in zip(_as_tuple(_backward(m2, dy2)), dx):
        np.testing.assert_array_equal(a, b)
    for key, g in m2.grad_dict().items():
        np.testing.assert_array_equal(g, grads[key])


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_backward_never_edits_dy_and_forward_never_edits_x(name, backend):
    """A skip connection hands the same array to two branches: neither pass may write into it."""
    m, args = _layer(name, np.float64)
    frozen = []
    for a in args:
        if isinstance(a, np.ndarray):
            a = a.copy()
            a.setflags(write=False)  # any in-place write raises
        frozen.append(a)
    kept = [a.copy() if isinstance(a, np.ndarray) else a for a in frozen]
    y = _forward(m, frozen)
    for a, b in zip(frozen, kept):
        np.testing.assert_array_equal(a, b)
    dy = _upstream(y, np.random.default_rng(3))
    if isinstance(dy, np.ndarray):
        dy_copy = dy.copy()
        dy.setflags(write=False)
    outs = _as_tuple(_backward(m, dy))
    if isinstance(dy, np.ndarray):
        np.testing.assert_array_equal(dy, dy_copy)
        for g in outs:  # and the gradient handed back is a fresh array, not dy itself
            assert not np.shares_memory(g, dy)
    if len(outs) == 2:
        assert not np.shares_memory(outs[0], outs[1])


# --------------------------------------------------------------------------- Dropout2d


def test_dropout2d_zeroes_whole_channels_with_inverted_scaling():
    p = 0.3
    x = (np.random.default_rng(0).random((40, 50, 3, 4)) + 0.5).astype(np.float32)  # no zeros in x
    m = L.Dropout2d(p, seed=1)
    y = m.forward(x)
    assert y.dtype == np.float32
    dropped = (y == 0).all(axis=(2, 3))
    kept = (y != 0).all(axis=(2, 3))
    assert (dropped | kept).all(), "a channel was partly zeroed"
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)
    assert abs(dropped.mean() - p) < 0.05  # 2000 channels: within ~5 standard deviations
    assert abs(y.mean() / x.mean() - 1) < 0.05  # inverted scaling keeps the expectation
    dy = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    dx = m.backward(dy)
    np.testing.assert_allclose(dx, np.where(kept[:, :, None, None], dy / (1 - p), 0), rtol=1e-6)


def test_dropout2d_eval_is_identity():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    m = L.Dropout2d(0.9, seed=0).eval()
    y = m.forward(x)
    np.testing.assert_array_equal(y, x)
    assert y is not x
    dy = np.random.default_rng(1).standard_normal(x.shape)
    np.testing.assert_array_equal(m.backward(dy), dy)
    m.train()
    assert not np.array_equal(m.forward(x), x)


def test_dropout2d_p0_and_p1():
    x = np.random.default_rng(0).standard_normal((3, 4, 2, 2))
    dy = np.random.default_rng(1).standard_normal(x.shape)
    m0 = L.Dropout2d(0.0, seed=0)
    np.testing.assert_array_equal(m0.forward(x), x)
    np.testing.assert_array_equal(m0.backward(dy), dy)
    m1 = L.Dropout2d(1.0, seed=0)
    y = m1.forward(x)
    assert not y.any() and np.isfinite(y).all()
    assert not m1.backward(dy).any()


def test_dropout2d_seeded_determinism():
    x = np.ones((4, 16, 2, 2))
    a, b, c = L.Dropout2d(0.5, seed=7), L.Dropout2d(0.5, seed=7), L.Dropout2d(0.5, seed=8)
    ya1, ya2 = a.forward(x), a.forward(x)
    np.testing.assert_array_equal(b.forward(x), ya1)  # same seed, same first mask
    np.testing.assert_array_equal(b.forward(x), ya2)  # and the same sequence after it
    assert not np.array_equal(ya1, ya2)  # a new mask every call
    assert not np.array_equal(c.forward(x), ya1)
    r = L.Dropout2d(0.5, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(r.forward(x), ya1)


def test_dropout2d_backward_uses_the_forward_mask():
    x = np.random.default_rng(0).standard_normal((3, 8, 2, 2)) + 10
    m = L.Dropout2d(0.5, seed=3)
    y = m.forward(x)
    dy = np.random.default_rng(1).standard_normal(x.shape)
    np.testing.assert_allclose(m.backward(dy), dy * y / x, rtol=1e-13)  # y / x is the forward's mask


# --------------------------------------------------------------------------- MaxPool2d


def test_maxpool_return_indices(backend):
    x = distinct_values((2, 3, 7, 9), np.random.default_rng(0))
    m = L.MaxPool2d(3, 2, 1, ceil_mode=True, return_indices=True)
    out = m.forward(x)
    assert isinstance(out, tuple) and len(out) == 2
    y, idx = out
    ref_y, ref_idx = naive.maxpool2d_naive(x, 3, 2, 1, 1, True)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(idx, ref_idx)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(np.take_along_axis(x.reshape(2, 3, -1), idx.reshape(2, 3, -1), 2).reshape(y.shape), y)
    assert m.indices is idx
    dy = np.random.default_rng(1).standard_normal(y.shape)
    dx = m.backward(dy)
    ref_dx = np.zeros(x.shape)
    for n, c, i, j in np.ndindex(y.shape):  # each window's gradient lands on its winner, summed
        ref_dx[n, c].flat[ref_idx[n, c, i, j]] += dy[n, c, i, j]
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-14, atol=1e-14)
    plain = L.MaxPool2d(3, 2, 1, ceil_mode=True)
    assert isinstance(plain.forward(x), np.ndarray)
    assert L.MaxPool2d(3).stride == (3, 3)  # stride defaults to kernel_size


# --------------------------------------------------------------------------- SoftmaxCrossEntropy


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_softmax_ce_layer(dtype):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 4, 3, 5)).astype(dtype)
    labels = rng.integers(0, 4, (2, 3, 5))
    labels[1, 2] = 255
    m = L.SoftmaxCrossEntropy()
    loss = m.forward(logits, labels)
    assert isinstance(loss, float)
    assert loss == pytest.approx(naive.softmax_cross_entropy_naive(logits, labels), rel=1e-6 if dtype == np.float32 else 1e-13)
    g = m.backward()
    assert g.dtype == dtype
    ref = naive.softmax_cross_entropy_grad_naive(logits.astype(np.float64), labels)  # exact, in float64
    # float64: DESIGN.md's smooth-layer tolerance (measured ~1e-16); float32: a few ulps (measured ~4e-8)
    assert gradcheck.rel_error(g, ref) < (TOL_SMOOTH if dtype == np.float64 else 1e-6)
    if dtype == np.float64:
        np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-15)
    m.forward(logits, np.full_like(labels, 255))
    assert not m.backward().any()
    other = L.SoftmaxCrossEntropy(ignore_index=-1)
    other.forward(logits, np.where(labels == 255, -1, labels))
    np.testing.assert_allclose(other.backward(), g)


# --------------------------------------------------------------------------- finite differences


def _conv(cin, cout, k, s, p, d, bias, hw):
    def build(rng):
        m = L.Conv2d(cin, cout, k, s, p, d, bias, dtype=np.float64, rng=rng)
        return m, (rng.standard_normal((2, cin, *hw)),), TOL_SMOOTH
    return f"Conv2d {cin}->{cout} k={k} s={s} p={p} d={d} bias={bias} in={hw}", build


def _convt(cin, cout, k, s, p, op, d, bias, hw):
    def build(rng, method):
        m = L.ConvTranspose2d(cin, cout, k, s, p, op, d, bias, method=method, dtype=np.float64, rng=rng)
        return m, (rng.standard_normal((2, cin, *hw)),), TOL_SMOOTH
    return f"ConvTranspose2d {cin}->{cout} k={k} s={s} p={p} op={op} d={d} bias={bias} in={hw}", build


def _pool(k, s, p, d, ceil, hw):
    def build(rng):
        m = L.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil)
        return m, (distinct_values((2, 2, *hw), rng),), TOL_KINK
    return f"MaxPool2d k={k} s={s} p={p} d={d} ceil={ceil} in={hw}", build


CONV_CASES = [
    _conv(2, 3, 3, 3, 1, 1, True, (10, 11)),  # stride 3, odd sizes
    _conv(2, 2, (2, 3), (3, 2), (0, 2), (2, 1), True, (9, 10)),  # non-square everything
    _conv(1, 2, 3, 1, 2, 2, True, (5, 6)),  # dilation 2 "same"
    _conv(3, 2, (1, 3), 2, (0, 1), 1, False, (5, 7)),
    _conv(2, 2, 5, 2, 0, 1, True, (5, 5)),  # kernel = input: a dense layer
    _conv(1, 2, 1, 2, 0, 1, True, (7, 6)),  # 1x1 stride 2: skipped pixels get zero gradient
    _conv(2, 2, 3, 2, 3, 3, True, (7, 9)),  # dilation 3, padding 3
    # stride 1, out <= in channels, padding <= d(k-1): dx by the flipped-kernel convolution
    _conv(3, 2, 3, 1, 1, 1, True, (6, 7)),
    _conv(4, 4, (3, 2), 1, (2, 0), (1, 2), True, (5, 7)),  # padding = d(k-1) on h
    _conv(3, 3, 3, 1, 1, 2, False, (7, 6)),  # dilation 2, padding below d(k-1)
    _conv(2, 3, 3, 1, 1, 1, True, (5, 6)),  # the complement: out > in channels, col2im
]

CONVT_CASES = [
    _convt(2, 3, 3, 2, 1, 1, 1, True, (3, 4)),  # output_padding 1
    _convt(2, 2, (2, 3), (3, 2), (1, 0), (2, 1), (1, 2), True, (3, 3)),
    _convt(1, 2, 2, 1, 0, 1, 2, True, (4, 3)),  # output_padding >= stride (dilation 2)
    _convt(2, 2, 3, 3, 2, 0, 2, True, (3, 2)),  # stride 3, dilation 2
    _convt(2, 1, 4, 2, 1, 0, 1, False, (3, 3)),  # no bias
    _convt(1, 2, 1, 2, 1, 1, 1, True, (4, 4)),  # padding > d(k-1): zero_insert crops
]

POOL_CASES = [
    _pool(2, 2, 0, 1, True, (5, 5)),  # last window hangs off the edge
    _pool(1, 2, 0, 1, True, (6, 6)),  # PyTorch's kernel 1, stride 2, ceil case
    _pool(3, 2, 1, 2, True, (9, 8)),  # dilation 2
    _pool((3, 2), (2, 1), (1, 1), 1, True, (5, 7)),  # non-square
    _pool(2, 1, 1, 1, False, (4, 5)),  # overlapping windows: a pixel can win twice
    _pool(3, 3, 0, 1, True, (7, 8)),  # stride 3, ceil
]


def _assert_errors(errors, tol, what):
    assert errors, what
    for tensor, err in errors.items():
        assert err < tol, f"{what}: {tensor} rel error {err:.2e} >= {tol:.0e}"


@pytest.mark.parametrize("case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_gradcheck_conv2d(case, backend):
    what, build = case
    m, xs, tol = build(np.random.default_rng(0))
    errors = gradcheck.check_module(m, *xs)
    assert set(errors) == {"x"} | set(m.state_dict())
    _assert_errors(errors, tol, what)


@pytest.mark.parametrize("method", L.F.TRANSPOSED_METHODS)
@pytest.mark.parametrize("case", CONVT_CASES, ids=[c[0] for c in CONVT_CASES])
def test_gradcheck_conv_transpose2d(case, method, backend):
    what, build = case
    m, xs, tol = build(np.random.default_rng(0), method)
    errors = gradcheck.check_module(m, *xs)
    assert set(errors) == {"x"} | set(m.state_dict())
    _assert_errors(errors, tol, f"{method} {what}")


@pytest.mark.parametrize("case", POOL_CASES, ids=[c[0] for c in POOL_CASES])
def test_gradcheck_maxpool2d(case, backend):
    what, build = case
    m, xs, tol = build(np.random.default_rng(0))
    _assert_errors(gradcheck.check_module(m, *xs), tol, what)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 2, 4, 1), (5, 7)])
def test_gradcheck_relu(shape):
    x = away_from_kinks(shape, np.random.default_rng(0))
    _assert_errors(gradcheck.check_module(L.ReLU(), x), TOL_KINK, f"ReLU {shape}")


@pytest.mark.parametrize("p", [0.0, 0.25, 1.0])
def test_gradcheck_dropout2d(p):
    m = gradcheck._FixedDropout(p, seed=4)
    x = np.random.default_rng(0).standard_normal((3, 5, 2, 3))
    _assert_errors(gradcheck.check_module(m, x), TOL_SMOOTH, f"Dropout2d p={p}")


@pytest.mark.parametrize("C, ignore_index, shape", [(2, 255, (1, 3, 5)), (5, -1, (2, 3, 3)), (3, 0, (2, 2, 3))])
def test_gradcheck_softmax_ce(C, ignore_index, shape):
    rng = np.random.default_rng(C)
    logits = rng.standard_normal((shape[0], C, *shape[1:])) * 2
    labels = rng.integers(0, C, shape)
    labels[rng.random(shape) < 0.25] = ignore_index
    m = gradcheck._BoundLoss(L.SoftmaxCrossEntropy(ignore_index), labels)
    _assert_errors(gradcheck.check_module(m, logits, seed=5), TOL_SMOOTH, f"CE C={C}")


@pytest.mark.parametrize("size, offset", [((6, 7), (0, 0)), ((1, 1), (5, 6)), ((3, 7), (2, 0))])
def test_gradcheck_crop(size, offset):
    m = gradcheck._Bound(L.Crop(offset), size)
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 7))
    _assert_errors(gradcheck.check_module(m, x), TOL_SMOOTH, f"Crop {size} at {offset}")


def test_gradcheck_add_other_shape():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((1, 2, 3, 1)), rng.standard_normal((1, 2, 3, 1))
    _assert_errors(gradcheck.check_module(L.Add(), a, b), TOL_SMOOTH, "Add")

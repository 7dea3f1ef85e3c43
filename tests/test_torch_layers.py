"""Parity with ``torch.nn.functional`` in float64, forward and backward (skipped without torch).

Each layer gets PyTorch's own parameters through ``load_state_dict`` (same
keys, same layouts), the same input and the same random upstream gradient;
outputs and the input/weight/bias gradients must agree to ~1e-10 relative.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tF = torch.nn.functional

from fcn_scratch import functional as F  # noqa: E402
from fcn_scratch import layers as L  # noqa: E402

pytestmark = pytest.mark.torch

RTOL = 1e-10


def T(a, grad=False):
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.requires_grad_(grad)


def close(ours, theirs, what=""):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert np.shape(ours) == theirs.shape, what
    scale = max(1.0, float(np.abs(theirs).max(initial=0)))
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=RTOL * scale, err_msg=what)


def _torch_params(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------- conv2d

# (N, C, F, H, W, kernel, stride, padding, dilation, bias)
CONV = [
    (2, 3, 4, 7, 9, 3, 1, 1, 1, True),
    (1, 2, 3, 9, 8, (3, 2), (2, 3), (1, 0), 1, True),
    (2, 2, 3, 11, 10, 3, 2, 2, 2, False),
    (1, 3, 2, 10, 9, (2, 3), 3, (0, 2), (3, 1), True),
    (2, 4, 5, 5, 6, 1, 1, 0, 1, True),
    (1, 2, 2, 7, 7, 7, 1, 0, 1, True),  # fc6-style: kernel = input
    # stride 1, F <= C, padding <= d(k-1): conv2d_backward's flipped-kernel dx path
    (2, 4, 3, 6, 7, 3, 1, 1, 1, True),
    (1, 3, 3, 7, 6, (3, 2), 1, (2, 1), (1, 2), False),
]


def _same_as_torch(m, ref, x, rng, bias):
    """Load torch's weights into ``m``; forward, dx, dweight (and dbias) must match torch's."""
    m.load_state_dict(_torch_params(ref))
    xt = T(x, True)
    yt = ref(xt)
    y = m.forward(x)
    close(y, yt, "forward")
    g = rng.standard_normal(y.shape)
    yt.backward(T(g))
    close(m.backward(g), xt.grad, "dx")
    close(m.grads["weight"], ref.weight.grad, "dweight")
    if bias:
        close(m.grads["bias"], ref.bias.grad, "dbias")


@pytest.mark.parametrize("cfg", CONV, ids=str)
def test_conv2d(cfg, backend):
    N, C, Fo, H, W, k, s, p, d, bias = cfg
    rng = np.random.default_rng(0)
    ref = torch.nn.Conv2d(C, Fo, k, s, p, d, bias=bias).double()
    m = L.Conv2d(C, Fo, k, s, p, d, bias, dtype=np.float64)
    _same_as_torch(m, ref, rng.standard_normal((N, C, H, W)), rng, bias)


# --------------------------------------------------------------------------- conv_transpose2d

# (N, C_in, C_out, H, W, kernel, stride, padding, output_padding, dilation, bias)
CONVT = [
    (2, 3, 2, 4, 5, 4, 2, 1, 0, 1, True),  # FCN upscore2
    (2, 2, 3, 3, 4, 3, 3, 1, 2, 1, True),  # output_padding 2, stride 3
    (1, 2, 3, 3, 4, (3, 2), (2, 3), (0, 1), (1, 0), 2, True),  # output_padding and dilation
    (1, 2, 2, 4, 3, 2, 1, 0, 1, 2, False),  # output_padding 1 >= stride 1 (dilation 2)
    (1, 2, 2, 2, 3, 16, 8, 4, 0, 1, True),  # FCN-8s upscore8
    (2, 2, 3, 5, 4, (2, 5), (3, 2), (2, 1), (2, 1), (1, 3), True),
    (1, 2, 2, 4, 4, 1, 2, 1, 1, 1, True),  # padding > d(k-1)
]


@pytest.mark.parametrize("method", F.TRANSPOSED_METHODS)
@pytest.mark.parametrize("cfg", CONVT, ids=str)
def test_conv_transpose2d(cfg, method, backend):
    N, Ci, Co, H, W, k, s, p, op, d, bias = cfg
    rng = np.random.default_rng(1)
    ref = torch.nn.ConvTranspose2d(Ci, Co, k, s, p, op, bias=bias, dilation=d).double()
    m = L.ConvTranspose2d(Ci, Co, k, s, p, op, d, bias, method=method, dtype=np.float64)
    _same_as_torch(m, ref, rng.standard_normal((N, Ci, H, W)), rng, bias)


def test_state_dict_round_trip_through_torch():
    """Our state_dict loads into torch modules unchanged, and theirs into ours."""
    for ours, theirs in [
        (L.Conv2d(3, 4, (3, 2), seed=0, dtype=np.float64), torch.nn.Conv2d(3, 4, (3, 2)).double()),
        (L.ConvTranspose2d(4, 2, 4, 2, 1, seed=0, dtype=np.float64), torch.nn.ConvTranspose2d(4, 2, 4, 2, 1).double()),
    ]:
        theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
        for k, v in theirs.state_dict().items():
            np.testing.assert_array_equal(v.numpy(), ours.state_dict()[k])


# --------------------------------------------------------------------------- max-pool

# (N, C, H, W, kernel, stride, padding, dilation, ceil_mode)
POOL = [
    (2, 3, 8, 8, 2, None, 0, 1, False),
    (2, 3, 7, 9, 2, 2, 0, 1, True),
    (1, 2, 8, 7, 3, 2, 1, 1, False),
    (1, 2, 10, 11, 3, 3, 1, 1, True),
    (1, 1, 6, 6, 1, 2, 0, 1, True),  # kernel 1, stride 2, H 6, ceil -> 3
    (2, 2, 9, 9, 3, 2, 1, 2, True),
    (1, 2, 5, 7, (3, 2), (2, 1), 1, 1, True),
    (2, 2, 5, 5, 2, 1, 1, 1, False),  # overlapping windows
    (1, 1, 6, 6, 3, 4, 1, 1, True),  # ceil's last window would start in the right padding: dropped
]


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("cfg", POOL, ids=str)
def test_max_pool2d(cfg, ties, backend):
    N, C, H, W, k, s, p, d, ceil = cfg
    rng = np.random.default_rng(2)
    x = rng.integers(-2, 2, (N, C, H, W)).astype(np.float64) if ties else rng.standard_normal((N, C, H, W))
    x -= 5  # all negative: a zero pad would show
    m = L.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil, return_indices=True)
    y, idx = m.forward(x)
    xt = T(x, True)
    yt, it = tF.max_pool2d(xt, k, s, p, d, ceil_mode=ceil, return_indices=True)
    close(y, yt, "forward")
    np.testing.assert_array_equal(idx, it.numpy())
    g = rng.standard_normal(y.shape)
    yt.backward(T(g))
    close(m.backward(g), xt.grad, "dx")


def test_pool_output_size_matches_torch():
    """PyTorch's ceil-mode rule over a grid, including every 'last window starts in the padding' case."""
    x = torch.zeros(1, 1, 1, 1, device="meta")  # shapes only, no arithmetic
    for size in range(1, 12):
        for k in range(1, 5):
            for s in range(1, 5):
                for d in (1, 2):
                    for p in range(0, k // 2 + 1):  # torch: padding at most half the (undilated) kernel
                        for ceil in (False, True):
                            ours = F.pool_output_size(size, k, s, p, d, ceil)
                            try:
                                theirs = tF.max_pool2d(x.expand(1, 1, size, 1), (k, 1), (s, 1), (p, 0), (d, 1), ceil).shape[2]
                            except RuntimeError:  # torch: output size would be < 1
                                theirs = 0
                            assert max(ours, 0) == theirs, (size, k, s, p, d, ceil)


def test_conv_and_transpose_output_sizes_match_torch():
    for size in range(1, 8):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, 3):
                    for d in (1, 2):
                        x = torch.zeros(1, 1, size, 1, device="meta")  # shapes only
                        if F.conv_output_size(size, k, s, p, d) >= 1:
                            w = torch.zeros(1, 1, k, 1, device="meta")
                            assert F.conv_output_size(size, k, s, p, d) == tF.conv2d(x, w, None, (s, 1), (p, 0), (d, 1)).shape[2]
                        for op in range(max(s, d)):
                            out = F.conv_transpose_output_size(size, k, s, p, d, op)
                            if out >= 1:
                                w = torch.zeros(1, 1, k, 1, device="meta")
                                theirs = tF.conv_transpose2d(x, w, None, (s, 1), (p, 0), (op, 0), 1, (d, 1)).shape[2]
                                assert out == theirs, (size, k, s, p, d, op)


# --------------------------------------------------------------------------- relu, cross-entropy


def test_relu():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 5))
    x[0, 0, 0, :2] = 0.0  # the kink: both give gradient 0 there
    m = L.ReLU()
    xt = T(x, True)
    yt = tF.relu(xt)
    close(m.forward(x), yt)
    g = rng.standard_normal(x.shape)
    yt.backward(T(g))
    close(m.backward(g), xt.grad)


@pytest.mark.parametrize("ignore_index", [255, -100, 0])
@pytest.mark.parametrize("scale", [1.0, 30.0], ids=["plain", "large-logits"])
def test_cross_entropy(ignore_index, scale):
    rng = np.random.default_rng(4)
    N, C, H, W = 2, 5, 4, 3
    logits = rng.standard_normal((N, C, H, W)) * scale
    labels = rng.integers(0, C, (N, H, W))
    labels[rng.random(labels.shape) < 0.3] = ignore_index
    if ignore_index == 0:
        labels[0, 0, 0] = 3  # keep at least one valid pixel
    m = L.SoftmaxCrossEntropy(ignore_index=ignore_index)
    loss = m.forward(logits, labels)
    zt = T(logits, True)
    lt = tF.cross_entropy(zt, T(labels), ignore_index=ignore_index, reduction="mean")
    assert loss == pytest.approx(lt.item(), rel=RTOL)
    dloss = 0.7
    lt.backward(torch.tensor(dloss, dtype=torch.float64))
    close(m.backward(dloss), zt.grad)


def test_cross_entropy_all_ignored_is_where_we_differ_on_purpose():
    """PyTorch's mean over zero valid pixels is 0/0; ours is a defined 0 with a zero gradient."""
    logits = np.random.default_rng(5).standard_normal((1, 3, 2, 2))
    labels = np.full((1, 2, 2), 255)
    m = L.SoftmaxCrossEntropy()
    assert m.forward(logits, labels) == 0.0
    dlogits = m.backward()
    assert dlogits.shape == logits.shape and not dlogits.any()
    zt = T(logits, True)
    lt = tF.cross_entropy(zt, T(labels), ignore_index=255)
    assert np.isnan(lt.item())  # PyTorch: 0 / 0
    lt.backward()
    close(dlogits, zt.grad, "dlogits")  # the gradient, zero in both, is where we agree
    # the sum over the (zero) valid pixels is defined in both, and 0 in both
    assert tF.cross_entropy(T(logits), T(labels), ignore_index=255, reduction="sum").item() == 0.0

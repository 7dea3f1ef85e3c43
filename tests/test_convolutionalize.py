"""Convolutionalization: dense layers as convolutions with copied weights (the seed's 100x7x7 -> 200 example)."""

import numpy as np
import pytest

from fcn_scratch import gradcheck
from fcn_scratch.convolutionalize import Dense, Linear, dense_to_conv, dense_to_conv1x1
from fcn_scratch.layers import Conv2d, ReLU


def test_seed_example_dense_200_over_100x7x7_is_a_7x7_conv(backend):
    """200 units over 100x7x7 features -> 7x7 conv, 200 filters, 200 maps of 1x1: the same numbers."""
    rng = np.random.default_rng(0)
    dense = Linear(100 * 7 * 7, 200, dtype=np.float64, rng=rng)
    conv = dense_to_conv(dense.weight, dense.bias, in_shape=(100, 7, 7))
    assert isinstance(conv, Conv2d) and conv.weight.shape == (200, 100, 7, 7) and conv.padding == (0, 0)
    x = rng.standard_normal((3, 100, 7, 7))
    z = conv.forward(x)
    assert z.shape == (3, 200, 1, 1)
    np.testing.assert_allclose(z[:, :, 0, 0], dense.forward(x.reshape(3, -1)), rtol=1e-12, atol=1e-12)


def test_seed_example_448_image_gives_8x8_maps_of_window_predictions(backend):
    """On a 14x14 map (a 448 image instead of 224) the 7x7 conv gives 8x8 maps; each pixel is the
    dense layer applied to that 7x7 window -- 64 sliding-window predictions in one pass."""
    rng = np.random.default_rng(1)
    dense = Linear(100 * 7 * 7, 200, dtype=np.float64, rng=rng)
    conv = dense_to_conv(dense.weight, dense.bias, in_shape=(100, 7, 7))
    x = rng.standard_normal((2, 100, 14, 14))
    z = conv.forward(x)
    assert z.shape == (2, 200, 8, 8)
    windows = np.stack([x[:, :, i : i + 7, j : j + 7].reshape(2, -1) for i in range(8) for j in range(8)], axis=-1)
    per_window = np.einsum("fk,nkw->nfw", dense.weight, windows) + dense.bias[None, :, None]
    np.testing.assert_allclose(z.reshape(2, 200, 64), per_window, rtol=1e-12, atol=1e-12)


def test_dense_to_conv1x1_applies_the_dense_layer_at_every_pixel():
    rng = np.random.default_rng(2)
    dense = Linear(12, 5, dtype=np.float64, rng=rng)
    conv = dense_to_conv1x1(dense.weight, dense.bias)
    assert conv.weight.shape == (5, 12, 1, 1)
    x = rng.standard_normal((2, 12, 3, 4))
    per_pixel = dense.forward(x.transpose(0, 2, 3, 1).reshape(-1, 12)).reshape(2, 3, 4, 5).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(conv.forward(x), per_pixel, rtol=1e-12, atol=1e-12)


def test_a_whole_classifier_convolutionalized(backend):
    """flatten -> dense -> ReLU -> dense on 4x3x3 features becomes conv3x3 -> ReLU -> conv1x1; on a 6x5
    map it scores all 4x3 windows, and its gradient w.r.t. the copied weights is the sum of the
    per-window dense gradients (the same weights are shared by every window)."""
    rng = np.random.default_rng(3)
    fc1, fc2 = Linear(36, 7, dtype=np.float64, rng=rng), Linear(7, 3, dtype=np.float64, rng=rng)
    c1, relu, c2 = dense_to_conv(fc1.weight, fc1.bias, (4, 3, 3)), ReLU(), dense_to_conv1x1(fc2.weight, fc2.bias)
    x = rng.standard_normal((1, 4, 6, 5))
    z = c2.forward(relu.forward(c1.forward(x)))
    assert z.shape == (1, 3, 4, 3)
    g = rng.standard_normal(z.shape)
    c1.backward(relu.backward(c2.backward(g)))
    dw1 = np.zeros_like(fc1.weight)
    for i in range(4):
        for j in range(3):
            window = x[:, :, i : i + 3, j : j + 3].reshape(1, -1)
            a = ReLU()
            out = fc2.forward(a.forward(fc1.forward(window)))
            np.testing.assert_allclose(z[:, :, i, j], out, rtol=1e-12, atol=1e-12)
            fc1.backward(a.backward(fc2.backward(g[:, :, i, j])))
            dw1 += fc1.grads["weight"]
    np.testing.assert_allclose(c1.grads["weight"].reshape(7, 36), dw1, rtol=1e-10, atol=1e-12)


def test_weights_are_copied_and_dtype_follows():
    w = np.random.default_rng(4).standard_normal((5, 2 * 3 * 3)).astype(np.float32)
    b = np.zeros(5, dtype=np.float32)
    conv = dense_to_conv(w, b, (2, 3, 3))
    assert conv.weight.dtype == np.float32 and not np.shares_memory(conv.weight, w)
    w[...] = 0
    assert conv.weight.any()
    assert dense_to_conv(w, None, (2, 3, 3), dtype=np.float64).weight.dtype == np.float64
    assert dense_to_conv(w, None, (2, 3, 3)).bias is None
    assert dense_to_conv1x1(w, b, dtype=np.float64).bias.dtype == np.float64


def test_torch_linear_flattening_convention():
    """The dense weight layout is torch.nn.Linear's, the map flattened C-major like torch.flatten."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    lin = torch.nn.Linear(3 * 4 * 5, 6).double()
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    ref = lin(torch.flatten(x, 1)).detach().numpy()
    conv = dense_to_conv(lin.weight.detach().numpy(), lin.bias.detach().numpy(), (3, 4, 5))
    np.testing.assert_allclose(conv.forward(x.numpy())[:, :, 0, 0], ref, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- the Linear layer


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(bias):
    rng = np.random.default_rng(5)
    layer = Linear(7, 4, bias=bias, dtype=np.float64, rng=rng)
    errors = gradcheck.check_module(layer, rng.standard_normal((3, 7)))
    assert set(errors) == {"x", "weight"} | ({"bias"} if bias else set())
    assert max(errors.values()) < gradcheck.TOL_SMOOTH, errors


def test_linear_values_init_and_state():
    layer = Dense(5, 3, seed=0)
    assert Dense is Linear and layer.weight.shape == (3, 5) and layer.bias.shape == (3,)
    assert layer.weight.dtype == np.float32 and np.abs(layer.weight).max() <= 5**-0.5
    x = np.random.default_rng(6).standard_normal((4, 5)).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, x @ layer.weight.T + layer.bias, rtol=1e-6)
    assert list(layer.state_dict()) == ["weight", "bias"]


def test_convolutionalize_bad_input():
    w = np.zeros((5, 18))
    with pytest.raises(ValueError, match=r"expected weight shape \(5, 27\)"):
        dense_to_conv(w, None, (3, 3, 3))
    with pytest.raises(ValueError, match=r"in_shape must be the feature map's \(C, h, w\)"):
        dense_to_conv(w, None, (18,))
    with pytest.raises(ValueError, match=r"2-D array \(out_features, in_features\)"):
        dense_to_conv1x1(np.zeros(5), None)
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\)"):
        dense_to_conv1x1(w, np.zeros(4))
    with pytest.raises(TypeError, match="floating point"):
        dense_to_conv1x1(w.astype(np.int64), None)
    layer = Linear(4, 2)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        layer.forward(np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="2 dimensions"):
        layer.forward(np.zeros((3, 4, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="before forward"):
        layer.backward(np.zeros((3, 2), dtype=np.float32))

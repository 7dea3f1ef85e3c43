"""``layers.no_grad()``: inference without backward caches, same numbers, clear errors."""

import numpy as np
import pytest

from fcn_scratch import layers as L


def _layers(rng):
    return [
        (L.Conv2d(3, 4, 3, padding=1, dtype=np.float64, rng=rng), (rng.standard_normal((2, 3, 6, 5)),)),
        (L.ConvTranspose2d(3, 2, 4, 2, 1, dtype=np.float64, rng=rng), (rng.standard_normal((2, 3, 3, 4)),)),
        (L.MaxPool2d(2, ceil_mode=True), (rng.standard_normal((2, 3, 5, 5)),)),
        (L.ReLU(), (rng.standard_normal((2, 3, 4, 4)),)),
        (L.Dropout2d(0.5, seed=0), (rng.standard_normal((2, 3, 4, 4)),)),
        (L.Add(), (rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 4, 4)))),
    ]


@pytest.mark.parametrize("index", range(6))
def test_no_grad_same_output_no_cache_and_backward_refuses(index):
    rng = np.random.default_rng(0)
    layer, xs = _layers(rng)[index]
    layer.eval()  # dropout as identity, so both passes compute the same thing
    expected = layer.forward(*xs)
    assert L.is_grad_enabled()
    with L.no_grad():
        assert not L.is_grad_enabled()
        got = layer.forward(*xs)
    assert L.is_grad_enabled()
    np.testing.assert_array_equal(got, expected)
    assert layer._cache is None
    with pytest.raises(ValueError, match="no_grad"):
        layer.backward(np.ones_like(got))


def test_no_grad_restores_after_an_exception():
    with pytest.raises(RuntimeError):
        with L.no_grad():
            raise RuntimeError("boom")
    assert L.is_grad_enabled()


def test_grad_mode_forward_then_backward_still_works_after_no_grad():
    rng = np.random.default_rng(1)
    conv = L.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng)
    x = rng.standard_normal((1, 2, 4, 4))
    with L.no_grad():
        conv.forward(x)
    y = conv.forward(x)
    dx = conv.backward(np.ones_like(y))
    assert dx.shape == x.shape


def test_input_grad_false_skips_only_the_input_gradient():
    """Training skips conv1_1's dx; every parameter gradient stays identical."""
    from fcn_scratch.models import FCN8s

    rng = np.random.default_rng(2)
    model = FCN8s(3, widths=(2, 3, 4, 4, 5), convs_per_block=(2, 1, 1, 1, 1), fc_channels=6,
                  dtype=np.float64, seed=0).eval()
    for _, p, _ in model.named_parameters():
        p[...] = rng.standard_normal(p.shape) * 0.3
    x = rng.standard_normal((2, 3, 37, 45))
    g = rng.standard_normal((2, 3, 37, 45))
    model.forward(x)
    dx = model.backward(g)
    full = model.grad_dict()
    model.forward(x)
    assert model.backward(g, input_grad=False) is None
    assert dx.shape == x.shape
    skipped = model.grad_dict()
    assert skipped.keys() == full.keys()
    for key in full:
        np.testing.assert_array_equal(skipped[key], full[key])
    conv = L.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng)
    y = conv.forward(rng.standard_normal((1, 2, 5, 5)))
    assert conv.backward(np.ones_like(y), input_grad=False) is None
    assert conv.grads["weight"] is not None


def test_predict_keeps_no_cache():
    from fcn_scratch.models import FCN32s

    model = FCN32s(2, widths=(2, 2, 2, 2, 2), convs_per_block=(1, 1, 1, 1, 1), fc_channels=4, seed=0).eval()
    labels = model.predict(np.zeros((1, 3, 20, 24), dtype=np.float32))
    assert labels.shape == (1, 20, 24)
    assert model.conv1_1._cache is None

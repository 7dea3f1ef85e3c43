"""Optimiser steps against hand arithmetic."""

import numpy as np
import pytest

from fcn_scratch.layers import Conv2d, Module
from fcn_scratch.optim import SGD, Adam, make_optimizer, poly_lr


class Toy(Module):
    """Two float64 parameters with gradients we set by hand: a weight and a bias."""

    def __init__(self):
        super().__init__()
        self.params = {"weight": np.array([1.0, -2.0]), "bias": np.array([0.5])}
        self.grads = {"weight": None, "bias": None}

    def set_grads(self, gw, gb):
        # a layer's backward stores *fresh* arrays: the optimiser must read them at step time
        self.grads["weight"] = np.array(gw, dtype=np.float64)
        self.grads["bias"] = np.array(gb, dtype=np.float64)


def test_sgd_momentum_and_weight_decay_by_hand():
    m = Toy()
    w, b = m.params["weight"], m.params["bias"]
    opt = SGD(m, lr=0.1, momentum=0.9, weight_decay=0.01)

    m.set_grads([0.5, 1.0], [2.0])
    opt.step()
    # weight: g = grad + 0.01 * w = (0.5 + 0.01, 1.0 - 0.02) = (0.51, 0.98); v = g; w -= 0.1 v
    np.testing.assert_allclose(w, [1.0 - 0.051, -2.0 - 0.098], rtol=0, atol=1e-15)
    # bias: no decay; v = 2.0; b = 0.5 - 0.2
    np.testing.assert_allclose(b, [0.3], rtol=0, atol=1e-15)

    m.set_grads([0.0, -1.0], [1.0])
    opt.step()
    # weight: g = (0 + 0.01*0.949, -1 + 0.01*(-2.098)) = (0.00949, -1.02098)
    #         v = 0.9 * (0.51, 0.98) + g = (0.46849, -0.13898); w -= 0.1 v
    np.testing.assert_allclose(w, [0.949 - 0.046849, -2.098 + 0.013898], rtol=0, atol=1e-14)
    # bias: v = 0.9 * 2 + 1 = 2.8; b = 0.3 - 0.28
    np.testing.assert_allclose(b, [0.02], rtol=0, atol=1e-14)


def test_sgd_without_momentum_is_plain_gradient_descent():
    m = Toy()
    opt = SGD(m, lr=0.5, momentum=0.0)
    m.set_grads([1.0, 2.0], [-1.0])
    opt.step()
    m.set_grads([1.0, 2.0], [-1.0])
    opt.step()
    np.testing.assert_allclose(m.params["weight"], [0.0, -4.0])
    np.testing.assert_allclose(m.params["bias"], [1.5])


def test_adam_first_steps_by_hand():
    m = Toy()
    w, b = m.params["weight"], m.params["bias"]
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    opt = Adam(m, lr=lr, betas=(b1, b2), eps=eps)

    m.set_grads([0.5, -3.0], [0.2])
    opt.step()
    # step 1: m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps) ~ lr * sign(g)
    np.testing.assert_allclose(w, [1.0 - lr * 0.5 / (0.5 + eps), -2.0 + lr * 3.0 / (3.0 + eps)], rtol=1e-15)
    np.testing.assert_allclose(b, [0.5 - lr * 0.2 / (0.2 + eps)], rtol=1e-15)

    w1 = w.copy()
    m.set_grads([1.5, 1.0], [0.2])
    opt.step()
    g1, g2 = np.array([0.5, -3.0]), np.array([1.5, 1.0])
    mom = b1 * (1 - b1) * g1 + (1 - b1) * g2
    vel = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    m_hat, v_hat = mom / (1 - b1**2), vel / (1 - b2**2)
    np.testing.assert_allclose(w, w1 - lr * m_hat / (np.sqrt(v_hat) + eps), rtol=1e-14)
    # numbers written out for the first weight: m_hat = (0.045 + 0.15) / 0.19 = 1.0263...
    assert m_hat[0] == pytest.approx((0.9 * 0.1 * 0.5 + 0.1 * 1.5) / 0.19)


def test_adam_weight_decay_skips_bias():
    m = Toy()
    opt = Adam(m, lr=0.1, weight_decay=1.0)
    m.set_grads([0.0, 0.0], [0.0])
    opt.step()
    # zero gradient: the weights move only by decay (g = w, first step ~ lr * sign(w)); the bias stays
    np.testing.assert_allclose(m.params["weight"], [0.9, -1.9], rtol=1e-7)
    np.testing.assert_array_equal(m.params["bias"], [0.5])


def test_updates_in_place_keep_identity_and_dtype():
    conv = Conv2d(2, 3, 3, dtype=np.float32, seed=0)
    w_id = id(conv.weight)
    before = conv.weight.copy()
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)
    y = conv.forward(x)
    conv.backward(np.ones_like(y))
    opt = SGD(conv, lr=0.1, weight_decay=1e-3)
    grad = conv.grads["weight"].copy()
    opt.step()
    assert id(conv.weight) == w_id and conv.weight.dtype == np.float32
    np.testing.assert_allclose(conv.weight, before - 0.1 * (grad + 1e-3 * before), rtol=1e-6)
    np.testing.assert_array_equal(conv.grads["weight"], grad)  # the optimiser never edits a gradient


def test_poly_schedule():
    assert poly_lr(0.1, 0, 100) == 0.1
    assert poly_lr(0.1, 50, 100) == pytest.approx(0.1 * 0.5**0.9)
    assert poly_lr(0.1, 100, 100) == 0.0
    assert poly_lr(0.1, 150, 100) == 0.0
    lrs = [poly_lr(1.0, i, 10) for i in range(11)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_bad_arguments():
    m = Toy()
    with pytest.raises(ValueError, match="no gradient for parameter 'weight'"):
        SGD(m, lr=0.1).step()
    with pytest.raises(ValueError, match="momentum"):
        SGD(m, lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="lr"):
        SGD(m, lr=-1.0)
    with pytest.raises(TypeError, match="named_parameters"):
        SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer("rmsprop", m, 0.1)
    with pytest.raises(TypeError, match="betas"):
        Adam(m, betas=0.9)
    m.grads["weight"] = np.zeros(3)
    m.grads["bias"] = np.zeros(1)
    with pytest.raises(ValueError, match="shape"):
        SGD(m, lr=0.1).step()


def test_plain_sgd_saves_no_state_and_reloads_its_own():
    """momentum=0 keeps no velocity: state_dict() has no entries, and load_state_dict(state_dict()) works."""
    m = Toy()
    opt = SGD(m, lr=0.5, momentum=0.0, weight_decay=0.01)
    m.set_grads([1.0, 2.0], [-1.0])
    opt.step()
    state = opt.state_dict()
    assert state["state"] == {} and state["iterations"] == 1
    again = SGD(m, lr=0.5, momentum=0.0, weight_decay=0.01)
    again.load_state_dict(state)
    assert again.iterations == 1 and again.state == {}
    # the empty entries an older version saved for plain SGD are accepted (nothing to restore) ...
    legacy = dict(state, state={"weight": {}, "bias": {}})
    again.load_state_dict(legacy)
    assert again.state == {}
    # ... but not by an optimiser that keeps state, whose entries must hold their arrays
    heavy = SGD(m, lr=0.5, momentum=0.9)
    with pytest.raises(ValueError, match=r"optimizer state of 'weight' must hold \['velocity'\], got \[\]"):
        heavy.load_state_dict(dict(heavy.state_dict(), state={"weight": {}}))
    with pytest.raises(ValueError, match=r"must hold \['m', 't', 'v'\], got \[\]"):
        Adam(m, lr=0.1).load_state_dict(dict(Adam(m, lr=0.1).state_dict(), state={"weight": {}}))
    # a momentum state still refuses a plain SGD (the hyperparameters differ)
    heavy_state = heavy.state_dict()
    with pytest.raises(ValueError, match="hyperparameters"):
        SGD(m, lr=0.5, momentum=0.0).load_state_dict(heavy_state)

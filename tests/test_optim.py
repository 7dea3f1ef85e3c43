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


# --------------------------------------------------------------------------- the fused Adam kernel


def _adam_operands(dtype, rng, shape=(3, 4, 5)):
    scale = 10.0 ** rng.integers(-6, 4, shape)  # gradients from 1e-6 to 1e3, a few exact zeros
    grad = (rng.standard_normal(shape) * scale).astype(dtype)
    grad.flat[::7] = 0
    return rng.standard_normal(shape).astype(dtype), grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_kernel_numba_python_and_numpy_twin_agree_bit_for_bit(dtype, rng):
    from fcn_scratch.kernels import numba_kernels as nbk
    from fcn_scratch.kernels import numpy_kernels as npk

    param, _ = _adam_operands(dtype, rng)
    results = []
    for update in (nbk.adam_update, nbk.adam_update_py, npk.adam_update):
        p, m, v = param.copy(), np.zeros_like(param), np.zeros_like(param)
        for t in range(1, 5):
            g = _adam_operands(dtype, np.random.default_rng(t))[1]
            f = p.dtype.type
            update(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), f(0.003), f(0.9), f(1 - 0.9),
                   f(0.999), f(1 - 0.999), f(1 - 0.9**t), f(1 - 0.999**t), f(1e-8))
        results.append((p, m, v))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.dtype == dtype
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_step_gives_the_bits_of_the_whole_array_formula(backend, dtype, rng):
    """Adam.step on a layer against the textbook NumPy lines, run here in the parameter's dtype."""
    conv = Conv2d(2, 3, 3, dtype=dtype, seed=0)
    lr, b1, b2, eps = 0.003, 0.9, 0.999, 1e-8
    opt = Adam(conv, lr=lr, betas=(b1, b2), eps=eps)
    ref = {k: (p.copy(), np.zeros_like(p), np.zeros_like(p)) for k, p in conv.params.items()}
    for t in range(1, 4):
        for k, p in conv.params.items():
            conv.grads[k] = _adam_operands(dtype, rng, p.shape)[1]
        opt.step()
        for k, (p, m, v) in ref.items():
            g = conv.grads[k]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            m_hat = m / (1 - b1**t)
            v_hat = v / (1 - b2**t)
            p -= lr * m_hat / (np.sqrt(v_hat) + eps)
            np.testing.assert_array_equal(conv.params[k], p)
            np.testing.assert_array_equal(opt.state[k]["m"], m)
            np.testing.assert_array_equal(opt.state[k]["v"], v)


def test_adam_kernel_checks_its_arrays():
    from fcn_scratch import kernels

    p = np.zeros((2, 3), np.float32)
    ok = dict(param=p, grad=np.ones((2, 3)), m=np.zeros_like(p), v=np.zeros_like(p))
    kernels.adam_update(**ok, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, t=1)  # float64 grad: cast to param's dtype
    assert np.all(p < 0)
    for change, err, match in [
        (dict(m=np.zeros((3, 2), np.float32)), ValueError, "shape"),
        (dict(v=np.zeros((2, 3), np.float64)), ValueError, "dtype"),
        (dict(m=np.zeros((3, 2), np.float32).T), TypeError, "C-contiguous"),
        (dict(param=np.zeros((2, 3), np.int32)), TypeError, "float32 or float64"),
        (dict(grad=np.ones(6)), ValueError, "grad"),
    ]:
        with pytest.raises(err, match=match):
            kernels.adam_update(**{**ok, **change}, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, t=1)
    for t in (0, 1.0, True):
        with pytest.raises(ValueError, match="t must be"):
            kernels.adam_update(**ok, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, t=t)

"""FCN-32s / FCN-16s / FCN-8s: gradients, any input size and the crop rule, initialisation, persistence, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcn_scratch import gradcheck
from fcn_scratch.init import bilinear_weight
from fcn_scratch.models import (
    FCN8s,
    FCN16s,
    FCN32s,
    MODELS,
    TINY,
    UPSAMPLERS,
    crop_plan,
    pooled_sizes,
    transfer_weights,
)
from fcn_scratch.upsample import BilinearUpsample

CLASSES = (FCN32s, FCN16s, FCN8s)
MICRO = dict(widths=(2, 3, 4, 5, 6), convs_per_block=(1, 1, 1, 1, 1), fc_channels=8)


def micro(cls, num_classes=3, **kw):
    return cls(num_classes, **{**MICRO, "dtype": np.float64, **kw})


def randomize(model, rng):
    """Redraw every parameter (zero score layers would make every backbone gradient exactly 0)."""
    for _, p, _ in model.named_parameters():
        if p.ndim == 4:
            p[...] = rng.standard_normal(p.shape) * np.sqrt(2.0 / p[0].size)
        else:
            p[...] = 0.1 * rng.standard_normal(p.shape)
    return model


def expected_keys(cls, convs=(1, 1, 1, 1, 1)):
    """state_dict keys in the seed's attribute order (score_pool{b}_fr right after pool{b})."""
    keys = []
    for b in range(1, 6):
        keys += [f"conv{b}_{i}.{t}" for i in range(1, convs[b - 1] + 1) for t in ("weight", "bias")]
        if b in cls.skips:
            keys += [f"score_pool{b}_fr.weight", f"score_pool{b}_fr.bias"]
    for name in ["fc6", "fc7", "score_fr"] + [u[0] for u in UPSAMPLERS[cls.variant]]:
        keys += [f"{name}.weight", f"{name}.bias"]
    return keys


# --------------------------------------------------------------------------- whole-model gradient checks


@pytest.mark.parametrize("hw", [(32, 32), (37, 45), (1, 1)], ids=["32x32", "37x45", "1x1"])
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_whole_model_gradcheck(cls, hw, backend):
    """Finite differences vs backward, float64, random upstream gradient, every tensor sampled."""
    rng = np.random.default_rng(7)
    model = randomize(micro(cls, rng=rng), rng).eval()
    x = rng.standard_normal((2, 3, *hw))
    errors = gradcheck.check_module(model, x, seed=3, samples=4)
    assert set(errors) == {"x"} | set(model.state_dict()), "every parameter tensor must be checked"
    worst = max(errors, key=errors.get)
    assert errors[worst] < gradcheck.TOL_MODEL, f"{cls.__name__} {hw}: {worst} rel error {errors[worst]:.2e}"


def test_gradcheck_catches_a_missing_skip_gradient():
    """The whole-model check can fail: drop the pool3 fork's gradient sum and the backbone gradients go wrong."""

    class Broken(FCN8s):
        def backward(self, dlogits):
            saved = self.score_pool3_fr.backward
            self.score_pool3_fr.backward = lambda d: 0 * saved(d)  # forget the skip's share at the fork
            try:
                return super().backward(dlogits)
            finally:
                del self.score_pool3_fr.backward

    rng = np.random.default_rng(8)
    model = randomize(micro(Broken, rng=rng), rng).eval()
    errors = gradcheck.check_module(model, rng.standard_normal((1, 3, 32, 32)), samples=6)
    assert errors["conv1_1.weight"] > 1e-3 and errors["x"] > 1e-3
    assert errors["score_fr.weight"] < gradcheck.TOL_MODEL  # above the fork everything is still right


def test_model_rows_of_the_report_pass():
    rows = gradcheck._model_rows(samples=1)  # the CLI's rows; test_whole_model_gradcheck probes more entries
    assert [r.layer for r in rows] == ["FCN32s", "FCN32s", "FCN16s", "FCN16s", "FCN8s", "FCN8s"]
    assert all(r.passed for r in rows), [(r.layer, r.config, r.error) for r in rows if not r.passed]


# --------------------------------------------------------------------------- any input size, dtype


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("hw", [(1, 1), (37, 53), (64, 32), (5, 100)])
def test_any_size_forward_backward_keeps_dtype(cls, hw, backend):
    model = cls(4, **MICRO, seed=0)  # float32 by default
    x = np.random.default_rng(0).standard_normal((2, 3, *hw)).astype(np.float32)
    logits = model.forward(x)
    assert logits.shape == (2, 4, *hw) and logits.dtype == np.float32
    dx = model.backward(np.ones_like(logits))
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in model.grad_dict().values())
    assert model.predict(x).shape == (2, *hw)


def test_fcn8s_37x53_trains_through_every_layer(backend):
    """FCN-8s on 37x53: forward, backward, finite, and every parameter gets a gradient once scores are nonzero."""
    rng = np.random.default_rng(1)
    model = randomize(FCN8s.tiny(3, dtype=np.float64, rng=rng), rng)
    x = rng.standard_normal((2, 3, 37, 53))
    logits = model.forward(x)
    dx = model.backward(rng.standard_normal(logits.shape))
    assert logits.shape == (2, 3, 37, 53) and np.isfinite(logits).all() and np.isfinite(dx).all()
    for name, g in model.grad_dict().items():
        assert np.isfinite(g).all() and np.abs(g).max() > 0, name


def test_float64_model_is_float64_and_rejects_float32():
    model = micro(FCN16s)
    y = model.forward(np.zeros((1, 3, 40, 40)))
    assert y.dtype == np.float64 and all(p.dtype == np.float64 for p in model.state_dict().values())
    with pytest.raises(TypeError, match="float64"):
        model.forward(np.zeros((1, 3, 40, 40), dtype=np.float32))


def test_backends_agree_on_a_model():
    from fcn_scratch import kernels

    rng = np.random.default_rng(2)
    model = randomize(micro(FCN8s, rng=rng), rng).eval()
    x = rng.standard_normal((2, 3, 37, 45))
    g = rng.standard_normal((2, 3, 37, 45))
    out = {}
    for name in kernels.BACKENDS:
        with kernels.use_backend(name):
            out[name] = (model.forward(x), model.backward(g), model.grad_dict())
    (y1, dx1, g1), (y2, dx2, g2) = out.values()
    np.testing.assert_allclose(y1, y2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx1, dx2, rtol=1e-12, atol=1e-12)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-10, atol=1e-12, err_msg=k)


# --------------------------------------------------------------------------- the crop rule


def test_pooled_sizes_are_ceil_divisions():
    assert pooled_sizes(37, 53) == [(19, 27), (10, 14), (5, 7), (3, 4), (2, 2)]
    assert pooled_sizes(1, 1) == [(1, 1)] * 5
    assert pooled_sizes(224, 224)[-1] == (7, 7)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 700), st.integers(1, 700), st.sampled_from(sorted(UPSAMPLERS)))
def test_crop_plan_property(H, W, variant):
    """Each upsampled map covers the map it meets by less than one stride; no crop for multiples of 32."""
    plan = crop_plan(H, W, variant)
    assert [name for name, _, _ in plan] == [u[0] for u in UPSAMPLERS[variant]]
    assert plan[-1][2] == (H, W)
    for (name, k, s, p), (_, produced, kept) in zip(UPSAMPLERS[variant], plan):
        for n_out, n_keep in zip(produced, kept):
            assert n_keep <= n_out < n_keep + s, (name, produced, kept)
        if H % 32 == 0 and W % 32 == 0:
            assert produced == kept


def test_crop_plan_worked_example():
    assert crop_plan(37, 53, "8s") == [
        ("upscore2", (4, 4), (3, 4)),          # 2 * ceil(53/32) = 4 columns, pool4 has ceil(53/16) = 4
        ("upscore2_pool4", (6, 8), (5, 7)),
        ("upscore8", (40, 56), (37, 53)),
    ]
    assert crop_plan(37, 53, "32s") == [("upscore32", (64, 64), (37, 53))]
    with pytest.raises(ValueError, match="variant"):
        crop_plan(8, 8, "4s")


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("hw", [(37, 53), (64, 96), (1, 7)])
def test_model_crops_follow_the_plan(cls, hw):
    """The crop layers see exactly the sizes crop_plan predicts, and cut at offset (0, 0)."""
    model = micro(cls)
    model.forward(np.random.default_rng(0).standard_normal((1, 3, *hw)))
    crops = {"upscore2": "crop_pool4", "upscore2_pool4": "crop_pool3"}
    for name, produced, kept in crop_plan(*hw, cls.variant):
        crop = getattr(model, crops.get(name, "crop_out"))
        in_shape, oh, ow = crop._cache
        assert in_shape[2:] == produced and crop._out_shape[2:] == kept and (oh, ow) == (0, 0)


def test_crop_backward_puts_gradient_in_the_kept_window_only():
    model = micro(FCN32s)
    model.forward(np.random.default_rng(0).standard_normal((1, 3, 37, 45)))
    g = np.random.default_rng(1).standard_normal((1, 3, 37, 45))
    d = model.crop_out.backward(g)
    assert d.shape == (1, 3, 64, 64)
    np.testing.assert_array_equal(d[:, :, :37, :45], g)
    assert not d[:, :, 37:].any() and not d[:, :, :, 45:].any()


@pytest.mark.parametrize("name,k,s,p", [u for v in UPSAMPLERS.values() for u in v])
def test_upsampler_peak_sits_on_the_pooled_cell(name, k, s, p):
    """Why offset 0 aligns: feature cell i at stride s covers input rows [s i, s i + s); the upsampler's
    response to a one-hot at cell i peaks on, and is symmetric about, that block's centre s i + (s-1)/2."""
    model = micro(FCN8s if name in ("upscore2_pool4", "upscore8") else (FCN32s if s == 32 else FCN16s))
    up = getattr(model, name)
    x = np.zeros((1, 3, 5, 5))
    x[0, 1, 2, 3] = 1.0
    y = up.forward(x)[0, 1]
    assert y.shape == (5 * s, 5 * s)
    rows, cols = np.nonzero(y == y.max())
    assert set(rows) == {2 * s + (s - 1) // 2, 2 * s + s // 2} and set(cols) == {3 * s + (s - 1) // 2, 3 * s + s // 2}
    centre_r, centre_c = 2 * s + (s - 1) / 2, 3 * s + (s - 1) / 2
    r, c = np.nonzero(y)
    assert r.mean() == centre_r and c.mean() == centre_c  # the support is symmetric about the centre


# --------------------------------------------------------------------------- initialisation, fresh models


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_initialisation_follows_the_paper(cls):
    model = cls.tiny(5, seed=3)
    state = model.state_dict()
    for name, v in state.items():
        layer, kind = name.rsplit(".", 1)
        if kind == "bias" or layer.startswith("score"):
            assert not v.any(), f"{name} must start at zero"
        elif layer.startswith("upscore"):
            np.testing.assert_array_equal(v, bilinear_weight(5, 5, v.shape[-1], np.float32), err_msg=name)
        else:  # He-normal: std sqrt(2 / fan_in)
            fan_in = np.prod(v.shape[1:])
            assert abs(v.std() / np.sqrt(2 / fan_in) - 1) < 0.1 and abs(v.mean()) < 0.1 * v.std(), name
    # a fresh upscore layer is exactly the fixed bilinear upsampler
    up, s = (model.upscore32, 32) if cls is FCN32s else (model.upscore2, 2)
    x = np.random.default_rng(0).standard_normal((2, 5, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(up.forward(x), BilinearUpsample(5, s).forward(x), rtol=1e-6, atol=1e-6)


def test_same_seed_same_model_different_seed_different_model():
    a, b, c = FCN8s.tiny(3, seed=1), FCN8s.tiny(3, seed=1), FCN8s.tiny(3, seed=2)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
    assert not np.array_equal(a.conv1_1.weight, c.conv1_1.weight)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_fresh_model_outputs_exactly_zero(cls):
    """Zero score layers and zero biases: the logits are exactly 0, in train mode too."""
    model = cls(4, **MICRO, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 37, 45)).astype(np.float32)
    assert not model.forward(x).any()
    model.backward(np.random.default_rng(1).standard_normal((2, 4, 37, 45)).astype(np.float32))
    grads = model.grad_dict()
    # the zero score_fr blocks every gradient below it; the score layers themselves do learn
    assert not grads["conv1_1.weight"].any() and not grads["fc7.weight"].any()
    assert grads["score_fr.weight"].any()
    for b in cls.skips:
        assert grads[f"score_pool{b}_fr.weight"].any(), "a skip starts as a no-op but must be trainable"


@pytest.mark.parametrize("cls", [FCN16s, FCN8s], ids=lambda c: c.__name__)
def test_skips_start_as_no_ops(cls):
    """After 32s -> 16s/8s transfer the zero skip layers add nothing: the output is the
    bilinear decoder applied to score_fr's map alone, whatever pool3/pool4 hold."""
    rng = np.random.default_rng(4)
    src = randomize(micro(FCN32s, rng=rng), rng)
    model = micro(cls, rng=rng).eval()
    transfer_weights(src, model)
    x = rng.standard_normal((2, 3, 37, 45))
    logits = model.forward(x)

    h = x
    for b in range(1, 6):
        h = model._block_forward(b, h)
    score = model._head_forward(h)
    p4, p3 = pooled_sizes(37, 45)[3], pooled_sizes(37, 45)[2]
    h = model.upscore2.forward(score)[:, :, : p4[0], : p4[1]]
    if cls is FCN8s:
        h = model.upscore2_pool4.forward(h)[:, :, : p3[0], : p3[1]]
        by_hand = model.upscore8.forward(h)[:, :, :37, :45]
    else:
        by_hand = model.upscore16.forward(h)[:, :, :37, :45]
    np.testing.assert_allclose(logits, by_hand, rtol=1e-12, atol=1e-12)
    assert np.abs(logits).max() > 1e-3  # not trivially zero

    model.backward(rng.standard_normal(logits.shape))
    for b in cls.skips:
        assert np.abs(model.grad_dict()[f"score_pool{b}_fr.weight"]).max() > 0


def test_three_decoders_agree_on_linear_score_maps_inside_only():
    """What a fresh 16s/8s shares with 32s: bilinear steps reproduce a *linear* score map exactly,
    so in the interior all three output the same plane. They are not the same upsampler: on a
    generic map two bilinear steps (x2 then x16) are smoother than one x32 step, and at the border
    the transposed convolutions see zeros beyond the edge."""
    H = W = 256  # score map 8x8
    n = H // 32
    i = np.arange(n, dtype=np.float64)
    ramp = (0.3 * i[:, None] - 0.7 * i[None, :] + 2.0)[None, None] * np.array([1.0, -2.0])[None, :, None, None]
    bumpy = np.random.default_rng(5).standard_normal((1, 2, n, n))
    o = (np.arange(H) + 0.5) / 32 - 0.5  # input pixel centre in score-map coordinates
    plane = (0.3 * o[:, None] - 0.7 * o[None, :] + 2.0)[None, None] * np.array([1.0, -2.0])[None, :, None, None]
    inner = slice(28, 228)  # where every stage of every decoder interpolates between real samples
    x = np.random.default_rng(6).standard_normal((1, 3, H, W))
    outs = {}
    for score_name, score in (("ramp", ramp), ("bumpy", bumpy)):
        for cls in CLASSES:
            model = micro(cls, num_classes=2).eval()
            model._head_forward = lambda h, s=score: s  # feed the decoder a chosen score map
            outs[score_name, cls] = model.forward(x)
    for cls in CLASSES:
        out = outs["ramp", cls]
        np.testing.assert_allclose(out[..., inner, inner], plane[..., inner, inner], rtol=1e-12, atol=1e-12)
        assert np.abs(out[..., :4, :] - plane[..., :4, :]).max() > 0.1  # the border is not the plane
    assert np.abs(outs["bumpy", FCN16s] - outs["bumpy", FCN32s])[..., inner, inner].max() > 1e-2


# --------------------------------------------------------------------------- transfer, train/eval, persistence


def test_transfer_weights_staged_training():
    rng = np.random.default_rng(9)
    m32 = randomize(micro(FCN32s, rng=rng), rng)
    m16 = micro(FCN16s, rng=rng)
    copied = transfer_weights(m32, m16)
    assert copied == [k for k in m32.state_dict() if k in m16.state_dict()]
    assert "upscore32.weight" not in copied and "score_fr.weight" in copied and "fc7.bias" in copied
    assert not m16.score_pool4_fr.weight.any()  # the new skip stays at zero
    np.testing.assert_array_equal(m16.conv3_1.weight, m32.conv3_1.weight)

    randomize(m16, rng)
    m8 = FCN8s(3, **MICRO, dtype=np.float32)  # float64 -> float32: values are cast
    copied = transfer_weights(m16, m8)
    assert {"upscore2.weight", "score_pool4_fr.bias"} <= set(copied)
    assert "upscore16.weight" not in copied and not m8.score_pool3_fr.weight.any()
    assert m8.upscore2.weight.dtype == np.float32
    np.testing.assert_allclose(m8.upscore2.weight, m16.upscore2.weight, rtol=1e-6)


def test_transfer_weights_skips_other_shapes_and_checks_types():
    a = micro(FCN32s)
    b = FCN32s(3, widths=(2, 3, 4, 5, 7), convs_per_block=(1, 1, 1, 1, 1), fc_channels=8, dtype=np.float64)
    copied = transfer_weights(a, b)
    assert "conv5_1.weight" not in copied and "fc6.weight" not in copied and "conv4_1.weight" in copied
    with pytest.raises(TypeError, match="Modules"):
        transfer_weights(a.state_dict(), b)


def test_eval_mode_is_the_network_without_dropout():
    rng = np.random.default_rng(10)
    model = randomize(micro(FCN8s, rng=rng, dropout=0.5), rng)
    plain = micro(FCN8s, dropout=0.0)
    plain.load_state_dict(model.state_dict())
    x = rng.standard_normal((2, 3, 32, 32))
    assert not np.allclose(model.forward(x), model.forward(x))  # train: a new channel mask each call
    model.eval()
    np.testing.assert_array_equal(model.forward(x), model.forward(x))
    np.testing.assert_allclose(model.forward(x), plain.forward(x), rtol=1e-13, atol=1e-13)
    assert model.train() is model and model.drop6.training and model.conv1_1.training


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_state_dict_names_order_and_round_trip(cls):
    rng = np.random.default_rng(11)
    a = randomize(cls(3, convs_per_block=(2, 2, 3, 3, 3), widths=(2, 3, 4, 5, 6), fc_channels=8,
                      dtype=np.float64, rng=rng), rng).eval()
    state = a.state_dict()
    assert list(state) == expected_keys(cls, (2, 2, 3, 3, 3))
    b = cls(3, convs_per_block=(2, 2, 3, 3, 3), widths=(2, 3, 4, 5, 6), fc_channels=8, dtype=np.float64,
            seed=99).eval()
    b.load_state_dict(state)
    x = rng.standard_normal((1, 3, 37, 45))
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    state["conv1_1.weight"][...] = 0  # state_dict() hands out copies
    assert a.conv1_1.weight.any()
    a.backward(np.ones((1, 3, 37, 45)))
    grads = a.grad_dict()
    assert list(grads) == list(state) and all(grads[k].shape == state[k].shape for k in state)


def test_default_widths_are_vgg16():
    model = FCN8s(21, fc_channels=8)  # small fc keeps the test light; the backbone is full VGG16
    state = model.state_dict()
    assert list(state) == expected_keys(FCN8s, (2, 2, 3, 3, 3))
    assert state["conv1_1.weight"].shape == (64, 3, 3, 3) and state["conv5_3.weight"].shape == (512, 512, 3, 3)
    assert state["score_pool3_fr.weight"].shape == (21, 256, 1, 1)
    assert state["upscore8.weight"].shape == (21, 21, 16, 16) and state["upscore8.bias"].shape == (21,)
    assert model.conv1_1.weight.dtype == np.float32


def test_tiny_preset_and_overrides():
    model = FCN8s.tiny(4)
    assert (model.widths, model.convs_per_block, model.fc_channels) == (
        TINY["widths"], TINY["convs_per_block"], TINY["fc_channels"])
    assert model.fc7.weight.shape == (256, 256, 1, 1) and hasattr(model, "conv5_2") and not hasattr(model, "conv5_3")
    model = FCN16s.tiny(4, fc_channels=32, dtype=np.float64, in_channels=1)
    assert model.fc7.weight.shape == (32, 32, 1, 1) and model.conv1_1.weight.shape == (16, 1, 3, 3)
    cfg = model.config()
    again = MODELS["16s"](**{**cfg, "dtype": np.dtype(cfg["dtype"])})
    again.load_state_dict(model.state_dict())  # config() rebuilds the same architecture


# --------------------------------------------------------------------------- bad input


def test_bad_model_input():
    model = FCN8s.tiny(3, seed=0)
    x = np.zeros((1, 3, 32, 32), dtype=np.float32)
    with pytest.raises(ValueError, match=r"x must have 3 channels"):
        model.forward(np.zeros((1, 1, 32, 32), dtype=np.float32))
    with pytest.raises(ValueError, match=r"x must have 4 dimensions \(N, C, H, W\)"):
        model.forward(np.zeros((3, 32, 32), dtype=np.float32))
    with pytest.raises(TypeError, match="float32"):
        model.forward(x.astype(np.float64))
    with pytest.raises(TypeError, match="floating-point"):
        model.forward(x.astype(np.int64))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        model.forward(x.tolist())
    bad = x.copy()
    bad[0, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.forward(bad)
    with pytest.raises(ValueError, match="empty"):
        model.forward(np.zeros((0, 3, 32, 32), dtype=np.float32))


def test_backward_misuse():
    model = micro(FCN16s)
    with pytest.raises(ValueError, match="before forward"):
        model.backward(np.zeros((1, 3, 32, 32)))
    y = model.forward(np.zeros((1, 3, 32, 32)))
    with pytest.raises(ValueError, match=r"dlogits must have the forward output's shape \(1, 3, 32, 32\)"):
        model.backward(np.zeros((1, 3, 32, 31)))
    dy = np.random.default_rng(0).standard_normal(y.shape)
    keep = dy.copy()
    model.backward(dy)
    np.testing.assert_array_equal(dy, keep)  # backward never edits its argument


def test_no_grad_inference_same_logits_no_backward():
    from fcn_scratch.layers import no_grad

    rng = np.random.default_rng(12)
    model = randomize(micro(FCN8s, rng=rng), rng).eval()
    x = rng.standard_normal((1, 3, 37, 45))
    y = model.forward(x)
    with no_grad():
        np.testing.assert_array_equal(model.forward(x), y)
    assert model.conv1_1._cache is None and model.upscore8._cache is None  # nothing kept for backward
    with pytest.raises(ValueError, match="no_grad"):
        model.backward(np.ones_like(y))
    model.forward(x)
    assert model.backward(np.ones_like(y)).shape == x.shape


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_classes=0), "num_classes"),
    (dict(num_classes=3, widths=(4, 4, 4, 4)), "widths"),
    (dict(num_classes=3, convs_per_block=(1, 1, 0, 1, 1)), "convs_per_block"),
    (dict(num_classes=3, fc_channels=0), "fc_channels"),
    (dict(num_classes=3, dropout=1.5), "p"),
    (dict(num_classes=3, dtype=np.int32), "dtype"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        FCN8s(**{**MICRO, **kwargs})


def test_load_state_dict_errors_name_the_key():
    model = micro(FCN8s)
    state = model.state_dict()

    missing = dict(state)
    del missing["fc7.bias"]
    with pytest.raises(KeyError, match="fc7.bias"):
        model.load_state_dict(missing)

    wrong = dict(state, **{"upscore8.weight": np.zeros((3, 3, 8, 8))})
    with pytest.raises(ValueError, match=r"upscore8.weight.*\(3, 3, 8, 8\).*\(3, 3, 16, 16\)"):
        model.load_state_dict(wrong)

    with pytest.raises(ValueError, match=r"conv2_1.weight.*dtype float32"):
        model.load_state_dict(dict(state, **{"conv2_1.weight": state["conv2_1.weight"].astype(np.float32)}))

    # another architecture: FCN-32s weights lack the skip layers, FCN-8s weights have extra ones
    with pytest.raises(KeyError, match="missing key 'score_pool3_fr.weight'"):
        model.load_state_dict(micro(FCN32s).state_dict())
    with pytest.raises(KeyError, match="missing key 'upscore16.weight'"):
        micro(FCN16s).load_state_dict(state)
    sixteen = micro(FCN16s).state_dict()
    with pytest.raises(KeyError, match="unexpected key 'score_pool3_fr.weight'"):
        micro(FCN16s).load_state_dict({**sixteen, **{k: v for k, v in state.items() if k.startswith("score_pool3")}})
    # another size: more classes, or other widths
    with pytest.raises(ValueError, match="score_pool3_fr.weight"):
        model.load_state_dict(micro(FCN8s, num_classes=5).state_dict())
    with pytest.raises(ValueError, match="conv1_1.weight"):
        model.load_state_dict(micro(FCN8s, widths=(3, 3, 4, 5, 6)).state_dict())
    np.testing.assert_array_equal(model.conv1_1.weight, state["conv1_1.weight"])  # nothing was written


# --------------------------------------------------------------------------- NaN checks: once per model call


@pytest.mark.parametrize("cls", CLASSES)
def test_a_model_scans_its_input_once_and_its_layers_do_not_rescan(cls, monkeypatch):
    """The model checks x for NaN/inf; the activations between its layers are not scanned again."""
    import fcn_scratch._validate as validate
    from fcn_scratch import layers
    from fcn_scratch.layers import SoftmaxCrossEntropy

    model = micro(cls)
    x = np.random.default_rng(0).standard_normal((2, 3, 20, 20))
    scanned = []
    real = validate.check_array
    monkeypatch.setattr(layers, "check_array", lambda a, name, **kw: scanned.append(kw.get("finite", True)) or real(a, name, **kw))
    model.forward(x)
    assert scanned and not any(scanned)  # every layer checked shapes and dtypes, none re-scanned the values
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        model.forward(np.where(np.arange(20) == 3, np.nan, x))  # the model's own input: still scanned
    # a NaN weight (set behind load_state_dict's back) flows to the logits, where the loss stops it
    model.conv1_1.weight[0, 0, 0, 0] = np.nan
    logits = model.forward(x)
    assert np.isnan(logits).any()
    with pytest.raises(ValueError, match="logits contains NaN or inf"):
        SoftmaxCrossEntropy().forward(logits, np.zeros((2, 20, 20), dtype=np.int64))
    # outside a model's forward, a layer scans its input again, in this thread and in any other
    scanned.clear()
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        model.conv2_1.forward(np.full((1, model.conv2_1.in_channels, 4, 4), np.nan))
    assert scanned == [True]


def test_the_skip_is_per_thread_and_ends_with_the_block():
    import threading

    from fcn_scratch.layers import ReLU, input_checked

    bad = np.array([1.0, np.nan])
    seen = {}
    with input_checked():
        ReLU().forward(bad)  # skipped here
        t = threading.Thread(target=lambda: seen.setdefault("other", _raises(lambda: ReLU().forward(bad))))
        t.start()
        t.join()
    assert seen["other"]  # another thread still scans
    assert _raises(lambda: ReLU().forward(bad))  # and so does this one after the block


def _raises(fn):
    try:
        fn()
    except ValueError as exc:
        return "NaN or inf" in str(exc)
    return False

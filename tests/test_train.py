"""fit / evaluate / predict / fit_staged: learning, determinism, divergence handling, bad input."""

import io
import warnings

import numpy as np
import pytest

from fcn_scratch.data import toy_shapes
from fcn_scratch.layers import Conv2d, Dropout2d, Module, ReLU
from fcn_scratch.metrics import confusion_matrix, scores
from fcn_scratch.models import FCN8s, FCN16s, FCN32s
from fcn_scratch.train import evaluate, fit, fit_staged, predict

SMALL = dict(widths=(8, 8, 16, 16, 16), convs_per_block=(1, 1, 1, 1, 1), fc_channels=32)


class ThreeLayer(Module):
    """A network composed from the layers, not an FCN: fit must work for any module with the layer API.

    It has no ``num_classes`` attribute (fit infers K from the logits) and a dropout
    layer (fit must seed it for determinism).
    """

    def __init__(self, num_classes=5, seed=0, p=0.2, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.c1 = Conv2d(3, 8, 3, padding=1, rng=rng, dtype=dtype)
        self.r1 = ReLU()
        self.drop = Dropout2d(p, rng=rng)
        self.c2 = Conv2d(8, num_classes, 3, padding=1, rng=rng, dtype=dtype)

    def forward(self, x):
        return self.c2.forward(self.drop.forward(self.r1.forward(self.c1.forward(x))))

    def backward(self, dy):
        return self.c1.backward(self.r1.backward(self.drop.backward(self.c2.backward(dy))))


@pytest.fixture(scope="module")
def data():
    return toy_shapes(6, 24, seed=0)


def test_tiny_fcn_overfits_four_images(backend):
    x, m = toy_shapes(4, 32, seed=0)
    model = FCN8s(5, dropout=0.0, seed=0, **SMALL)
    before = evaluate(model, x, m)["pixel_accuracy"]
    history = fit(model, x, m, epochs=100, batch_size=4, lr=1e-2, seed=0, optimizer="adam", progress=False)
    after = evaluate(model, x, m)
    assert history["stopped"] is None
    assert history["loss"][-1] < 0.25 * history["loss"][0]
    assert after["pixel_accuracy"] >= 0.95, after
    assert after["pixel_accuracy"] > before


def test_any_module_learns_with_sgd(data):
    x, m = data
    model = ThreeLayer()
    history = fit(model, x, m, epochs=8, batch_size=3, lr=0.05, seed=1, progress=False,
                  val_images=x, val_masks=m)
    assert history["loss"][-1] < history["loss"][0]
    assert len(history["val_mean_iou"]) == 8 and history["iterations"] == 16
    assert not model.training  # fit leaves the model in eval mode


def test_deterministic_bit_for_bit(data):
    x, m = data

    def run(seed):
        model = ThreeLayer(seed=0)
        history = fit(model, x, m, epochs=3, batch_size=2, lr=0.05, seed=seed, progress=False)
        return model.state_dict(), history["loss"]

    a, loss_a = run(7)
    b, loss_b = run(7)
    c, _ = run(8)
    assert loss_a == loss_b
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)  # the seed matters (shuffling, dropout)


def test_determinism_of_an_fcn_with_dropout(backend):
    x, m = toy_shapes(4, 32, seed=3)
    states = []
    for _ in range(2):
        model = FCN16s(5, dropout=0.5, seed=0, **SMALL)
        fit(model, x, m, epochs=2, batch_size=2, lr=0.01, seed=0, progress=False)
        states.append(model.state_dict())
    for k in states[0]:
        np.testing.assert_array_equal(states[0][k], states[1][k])


class Recording(ThreeLayer):
    """Remembers the weights at every forward call and whether its logits were finite."""

    def __init__(self):
        super().__init__(p=0.0)
        self.log = []

    def forward(self, x):
        state = self.state_dict()
        with np.errstate(all="ignore"):
            y = super().forward(x)
        self.log.append((state, bool(np.isfinite(y).all())))
        return y


def test_divergence_stops_and_restores_the_last_good_weights(data):
    x, m = data
    model = Recording()
    start = model.state_dict()
    stream = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        history = fit(model, x, m, epochs=20, batch_size=2, lr=1e12, momentum=0.0, seed=0, stream=stream,
                      schedule="constant")
    assert history["stopped"] is not None and "restored the last good weights" in history["stopped"]
    assert any("training stopped" in str(w.message) for w in caught)
    assert "training stopped" in stream.getvalue()
    assert history["iterations"] < 60  # it stopped early
    assert history["diverged"]["epoch"] == 1 and history["diverged"]["restored_epoch"] == 0
    assert history["epoch"] == [] and history["loss"] == []  # no healthy epoch to report
    final = model.state_dict()
    for k in final:  # diverged inside epoch 1: the last healthy point is the start of the run
        np.testing.assert_array_equal(final[k], start[k])


def test_history_and_progress_output(data):
    x, m = data
    stream = io.StringIO()
    history = fit(ThreeLayer(), x, m, epochs=3, batch_size=4, lr=0.05, seed=0, stream=stream,
                  val_images=x[:2], val_masks=m[:2])
    text = stream.getvalue()
    assert "epoch 1/3" in text and "epoch 3/3" in text and "ETA" in text and "val mIoU" in text
    assert "\r" not in text  # not a terminal: one line per epoch, no redraws
    assert history["epoch"] == [1, 2, 3]
    assert len(history["loss"]) == len(history["lr"]) == len(history["time"]) == 3
    assert history["lr"][0] > history["lr"][1] > history["lr"][2]  # poly schedule
    for key in ("val_pixel_accuracy", "val_mean_accuracy", "val_mean_iou", "val_fw_iou"):
        assert len(history[key]) == 3 and all(0 <= v <= 1 for v in history[key])
    quiet = io.StringIO()
    fit(ThreeLayer(), x, m, epochs=1, batch_size=4, lr=0.05, seed=0, stream=quiet, progress=False)
    assert quiet.getvalue() == ""


def test_progress_bar_on_a_terminal(data):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    x, m = data
    stream = Terminal()
    steps = []
    fit(ThreeLayer(), x, m, epochs=2, batch_size=2, lr=0.05, seed=0, stream=stream,
        step_callback=lambda it, loss: steps.append((it, loss)))
    text = stream.getvalue()
    assert "\r" in text and "[" in text and "ETA" in text and "loss" in text
    assert "epoch 2/2" in text
    assert [it for it, _ in steps] == list(range(1, 7)) and all(np.isfinite(loss) for _, loss in steps)


def test_evaluate_matches_the_metrics_and_does_not_depend_on_batching(data):
    x, m = data
    model = ThreeLayer(p=0.5)
    model.train()
    m = m.copy()
    m[0, :3] = 255  # some ignored pixels
    r1 = evaluate(model, x, m, batch_size=1, num_classes=5)
    r4 = evaluate(model, x, m, batch_size=4)
    assert model.training  # the mode is restored
    pred = predict(model, x, batch_size=5)
    expected = scores(confusion_matrix(m, pred, 5))
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
        assert r1[key] == pytest.approx(expected[key]) and r4[key] == pytest.approx(expected[key])
    np.testing.assert_array_equal(r1["confusion_matrix"], confusion_matrix(m, pred, 5))
    assert len(r1["per_class_iou"]) == 5
    labels, probs = predict(model, x[:2], return_scores=True)
    assert labels.shape == (2, 24, 24) and probs.shape == (2, 5, 24, 24)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probs.argmax(axis=1), labels)


def test_float64_images_are_cast_to_the_model_dtype(data):
    x, m = data
    model = ThreeLayer()
    a = evaluate(model, x.astype(np.float64), m)
    b = evaluate(model, x, m)
    assert a["mean_iou"] == b["mean_iou"]


def test_staged_training_copies_weights_forward():
    x, m = toy_shapes(2, 32, seed=0)
    # lr 0 in the later stages: 16s and 8s must then hold exactly what the previous stage learned
    models, histories = fit_staged(x, m, num_classes=5, epochs=(2, 1, 1), batch_size=2, lr=(0.01, 0.0, 0.0),
                                   seed=0, preset=None, model_kwargs=dict(SMALL, dropout=0.0),
                                   optimizer="adam", progress=False)
    assert list(models) == ["fcn32s", "fcn16s", "fcn8s"] and list(histories) == list(models)
    assert isinstance(models["fcn32s"], FCN32s) and isinstance(models["fcn8s"], FCN8s)
    s32, s16, s8 = (models[k].state_dict() for k in ("fcn32s", "fcn16s", "fcn8s"))
    assert not np.array_equal(s32["score_fr.weight"], 0)  # stage 1 learned something
    for k in s32:
        if k != "upscore32.weight" and k != "upscore32.bias":
            np.testing.assert_array_equal(s16[k], s32[k])
    for k in s16:
        if not k.startswith("upscore16"):
            np.testing.assert_array_equal(s8[k], s16[k])
    assert not s16["score_pool4_fr.weight"].any() and not s8["score_pool3_fr.weight"].any()


# --------------------------------------------------------------------------- bad input

GOOD_X, GOOD_M = toy_shapes(2, 16, seed=0)


@pytest.mark.parametrize(
    "images, masks, exc, match",
    [
        (GOOD_X[:0], GOOD_M[:0], ValueError, "images is empty"),
        (np.where(np.arange(16) == 3, np.nan, GOOD_X).astype(np.float32), GOOD_M, ValueError,
         "images contains NaN or inf"),
        (GOOD_X, np.where(GOOD_M == 0, 7, GOOD_M), ValueError, r"masks contains 7, outside \[0, 5\)"),
        (GOOD_X, np.where(GOOD_M == 0, -1, GOOD_M), ValueError, "masks contains -1"),
        (GOOD_X, GOOD_M[:, :8], ValueError, r"masks must have shape \(N, H, W\) = \(2, 16, 16\)"),
        (GOOD_X, GOOD_M[:1], ValueError, "masks must have shape"),
        (GOOD_X[0], GOOD_M, ValueError, r"images must have 4 dimensions \(N, C, H, W\)"),
        (GOOD_X[:, :2], GOOD_M, ValueError, "images must have 3 channels"),
        ((GOOD_X * 50).astype(np.uint8), GOOD_M, TypeError, "images must be floating point"),
        (GOOD_X, GOOD_M.astype(np.float32), TypeError, "masks must hold integer class ids"),
        (GOOD_X.tolist(), GOOD_M, TypeError, "images must be a numpy.ndarray"),
    ],
)
def test_bad_input_to_fit_and_evaluate(images, masks, exc, match):
    model = FCN8s(5, seed=0, **SMALL)
    with pytest.raises(exc, match=match):
        fit(model, images, masks, epochs=1, batch_size=2, lr=0.01, seed=0, progress=False)
    with pytest.raises(exc, match=match):
        evaluate(model, images, masks)


def test_bad_training_arguments():
    model = ThreeLayer()
    x, m = GOOD_X, GOOD_M
    kw = dict(epochs=1, batch_size=2, lr=0.01, seed=0, progress=False)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        fit(model, x, m, **{**kw, "epochs": 0})
    with pytest.raises(ValueError, match="batch_size"):
        fit(model, x, m, **{**kw, "batch_size": 0})
    with pytest.raises(TypeError, match="seed"):
        fit(model, x, m, **{**kw, "seed": 1.5})
    with pytest.raises(ValueError, match="optimizer must be one of"):
        fit(model, x, m, **kw, optimizer="lbfgs")
    with pytest.raises(ValueError, match="val_images and val_masks"):
        fit(model, x, m, **kw, val_images=x)
    with pytest.raises(ValueError, match="val_masks contains 9"):
        fit(model, x, m, **kw, val_images=x, val_masks=np.full_like(m, 9))
    with pytest.raises(TypeError, match="layer API"):
        fit(object(), x, m, **kw)
    with pytest.raises(ValueError, match="epochs and lr"):
        fit_staged(x, m, num_classes=5, epochs=(1, 1), batch_size=2, lr=0.01, seed=0)

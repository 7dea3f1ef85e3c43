"""``functional.crop_add_forward`` / ``crop_add_backward``: FCN's skip fusion as one pair.

Against the two layers it replaces (``Crop`` at offset 0, then ``Add``), against
finite differences with a random upstream gradient, on the sizes the FCN models
really produce (``crop_plan``), and its argument checks.
"""

import numpy as np
import pytest

from fcn_scratch import functional as F
from fcn_scratch import gradcheck
from fcn_scratch.layers import Add, Crop
from fcn_scratch.models import crop_plan

SHAPES = [((2, 3, 4, 6), (2, 3, 4, 6)), ((2, 3, 6, 8), (2, 3, 5, 7)), ((1, 2, 10, 12), (1, 2, 7, 9)),
          ((1, 1, 1, 3), (1, 1, 1, 1))]


@pytest.mark.parametrize("up_shape,skip_shape", SHAPES)
def test_crop_add_equals_crop_then_add(up_shape, skip_shape, rng):
    up, skip = rng.standard_normal(up_shape), rng.standard_normal(skip_shape)
    g = rng.standard_normal(skip_shape)
    y, cache = F.crop_add_forward(up, skip)
    crop, add = Crop(), Add()
    y_ref = add.forward(crop.forward(up, skip_shape[2:]), skip)
    np.testing.assert_array_equal(y, y_ref)
    d_up, d_skip = F.crop_add_backward(g, cache)
    d_cropped, d_skip_ref = add.backward(g)
    np.testing.assert_array_equal(d_up, crop.backward(d_cropped))
    np.testing.assert_array_equal(d_skip, d_skip_ref)
    assert d_up.shape == up_shape and not np.shares_memory(d_skip, g) and not np.shares_memory(d_up, g)


@pytest.mark.parametrize("up_shape,skip_shape", SHAPES)
def test_crop_add_gradients_by_finite_differences(up_shape, skip_shape, rng):
    up, skip = rng.standard_normal(up_shape), rng.standard_normal(skip_shape)

    def backward(g):
        d_up, d_skip = F.crop_add_backward(g, F.crop_add_forward(up, skip)[1])
        return {"up": d_up, "skip": d_skip}

    errors = gradcheck.check(lambda: F.crop_add_forward(up, skip)[0], backward, {"up": up, "skip": skip}, seed=3)
    assert max(errors.values()) < gradcheck.TOL_SMOOTH, errors


def test_crop_add_keeps_the_top_left_corner():
    up = np.arange(2 * 3, dtype=np.float64).reshape(1, 1, 2, 3)
    y, _ = F.crop_add_forward(up, np.zeros((1, 1, 1, 2)))
    np.testing.assert_array_equal(y, [[[[0.0, 1.0]]]])
    d_up, _ = F.crop_add_backward(np.ones((1, 1, 1, 2)), (1, 1, 2, 3))
    np.testing.assert_array_equal(d_up, [[[[1, 1, 0], [0, 0, 0]]]])


@pytest.mark.parametrize("hw", [(37, 53), (64, 96), (1, 7)])
def test_crop_add_fits_every_skip_of_fcn8s(hw, rng):
    """The two skip crops ``crop_plan`` predicts for FCN-8s (produced >= kept) are what the pair accepts."""
    for name, produced, kept in crop_plan(*hw, "8s")[:2]:
        y, _ = F.crop_add_forward(rng.standard_normal((1, 2, *produced)), rng.standard_normal((1, 2, *kept)))
        assert y.shape == (1, 2, *kept), name


def test_crop_add_is_exported():
    assert {"crop_add_forward", "crop_add_backward"} <= set(F.__all__)


@pytest.mark.parametrize("up,skip,err,match", [
    (np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 4, 3)), ValueError, "at least as large"),
    (np.zeros((1, 2, 4, 4)), np.zeros((1, 3, 3, 3)), ValueError, "batch and channels"),
    (np.zeros((2, 4, 4)), np.zeros((1, 2, 3, 3)), ValueError, "up must be a 4-D array"),
    (np.zeros((1, 2, 4, 4)), [[1.0]], ValueError, "skip must be a 4-D array"),
    (np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 3, 3), np.float32), TypeError, "dtype"),
])
def test_crop_add_rejects_bad_input(up, skip, err, match):
    with pytest.raises(err, match=match):
        F.crop_add_forward(up, skip)

"""The toy-shapes generator and the batch iterator."""

import numpy as np
import pytest

from fcn_scratch.data import (
    CLASS_NAMES,
    IGNORE_INDEX,
    denormalize,
    ignore_borders,
    iterate_batches,
    normalize,
    toy_shapes,
)


def test_shapes_dtypes_and_ranges():
    x, m = toy_shapes(12, 40, seed=3)
    assert x.shape == (12, 3, 40, 40) and x.dtype == np.float32
    assert m.shape == (12, 40, 40) and m.dtype == np.int64
    assert set(np.unique(m)) <= set(range(len(CLASS_NAMES)))
    assert -2.0 <= x.min() and x.max() <= 2.0
    assert abs(float(x.mean())) < 0.3  # roughly zero-mean network input
    assert (m > 0).any(axis=(1, 2)).all()  # every image holds at least one shape


def test_every_class_appears_and_background_dominates():
    _, m = toy_shapes(60, 48, seed=0)
    counts = np.bincount(m.ravel(), minlength=len(CLASS_NAMES))
    assert (counts > 0).all()
    assert counts[0] > counts[1:].max()


def test_deterministic_and_independent_of_n():
    a, ma = toy_shapes(8, 32, seed=5)
    b, mb = toy_shapes(8, 32, seed=5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)
    c, mc = toy_shapes(3, 32, seed=5)  # image i depends only on (seed, i)
    np.testing.assert_array_equal(a[:3], c)
    np.testing.assert_array_equal(ma[:3], mc)
    d, _ = toy_shapes(8, 32, seed=6)
    assert not np.array_equal(a, d)


@pytest.mark.parametrize("size", [(17, 29), (8, 8), (64, 33)])
def test_any_size(size):
    x, m = toy_shapes(2, size, seed=1)
    assert x.shape == (2, 3, *size) and m.shape == (2, *size)


def test_ring_is_thin_and_hollow():
    # images holding a single, unclipped ring: its pixels lie in an annulus 5 px wide around a background hole
    _, m = toy_shapes(60, 64, seed=2, max_shapes=1)
    ring = CLASS_NAMES.index("ring")
    checked = 0
    for mask in m:
        ys, xs = np.nonzero(mask == ring)
        if len(ys) == 0 or ys.min() == 0 or xs.min() == 0 or ys.max() == 63 or xs.max() == 63:
            continue
        cy, cx = ys.mean() + 0.5, xs.mean() + 0.5  # pixel centres sit at +0.5
        r = np.hypot(ys + 0.5 - cy, xs + 0.5 - cx)
        assert r.max() - r.min() <= 5.12 + 1.5  # thickness max(2, 0.08 * 64) = 5.12 px, plus pixelation
        assert mask[int(cy), int(cx)] == 0  # hollow
        checked += 1
    assert checked >= 3


def test_ignore_band():
    _, m = toy_shapes(4, 32, seed=0)
    _, mi = toy_shapes(4, 32, seed=0, ignore_border=1)
    band = mi == IGNORE_INDEX
    assert band.any()
    np.testing.assert_array_equal(mi[~band], m[~band])  # elsewhere the labels are untouched
    # every ignored pixel touches (4-neighbourhood) a label change in the original mask
    pad = np.pad(m, ((0, 0), (1, 1), (1, 1)), mode="edge")
    centre = pad[:, 1:-1, 1:-1]
    changes = np.zeros_like(band)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        changes |= pad[:, dy : dy + 32, dx : dx + 32] != centre
    np.testing.assert_array_equal(band, changes)


def test_ignore_borders_by_hand():
    mask = np.zeros((5, 6), dtype=np.int64)
    mask[1:4, 2:5] = 1
    out = ignore_borders(mask, 1)
    expected = mask.copy()
    expected[1:4, 1:6] = 255
    expected[0, 2:5] = 255
    expected[4, 2:5] = 255
    expected[2, 3] = 1  # the only pixel of the square not next to the background
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(ignore_borders(mask, 0), mask)
    assert (ignore_borders(mask, 2)[1:4, 2:5] == 255).all()


def test_normalize_round_trip():
    rgb = np.random.default_rng(0).uniform(0, 1, (2, 3, 4, 5))
    np.testing.assert_allclose(denormalize(normalize(rgb)), rgb, atol=1e-6)


def test_batches_cover_the_data_once_and_shuffle_with_the_seed():
    x = np.arange(10, dtype=np.float32)[:, None, None, None] * np.ones((10, 1, 2, 2), np.float32)
    m = np.arange(10)[:, None, None] * np.ones((10, 2, 2), np.int64)
    batches = list(iterate_batches(x, m, 4, seed=0))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    order = np.concatenate([b[1][:, 0, 0] for b in batches])
    assert sorted(order.tolist()) == list(range(10)) and order.tolist() != list(range(10))
    for xb, mb in batches:  # images and masks stay paired
        np.testing.assert_array_equal(xb[:, 0, 0, 0], mb[:, 0, 0])
    again = np.concatenate([b[1][:, 0, 0] for b in iterate_batches(x, m, 4, seed=0)])
    np.testing.assert_array_equal(order, again)
    plain = np.concatenate([b[1][:, 0, 0] for b in iterate_batches(x, m, 4, shuffle=False)])
    assert plain.tolist() == list(range(10))
    assert [len(b[0]) for b in iterate_batches(x, m, 4, seed=0, drop_last=True)] == [4, 4]


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(n=0), ValueError, "n must be >= 1"),
        (dict(n=2, size=4), ValueError, "size must be >= 8"),
        (dict(n=2, size=(16, "a")), TypeError, "size"),
        (dict(n=2, seed=-1), TypeError, "seed"),
        (dict(n=2, noise=2.0), ValueError, "noise"),
        (dict(n=2, thickness=0), ValueError, "thickness"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        toy_shapes(**kwargs)


def test_batches_reject_mismatched_lengths():
    with pytest.raises(ValueError, match="same number of samples"):
        list(iterate_batches(np.zeros((3, 1, 2, 2)), np.zeros((2, 2, 2), int), 2))

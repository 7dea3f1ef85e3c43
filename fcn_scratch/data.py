"""Toy shapes: a seeded generator of RGB images and their segmentation masks.

Each image is a textured, noisy, greyish background with a few overlapping
shapes: a filled disc, an axis-aligned rectangle, a triangle, or a thin ring.
The ring is the "thin structure" of the FCN paper's story: a few pixels wide,
it is lost at stride 32 (FCN-32s paints a blob or nothing) and recovered by the
stride-8 skips of FCN-8s.

By default each class has its own *hue family* (circles reddish, rectangles
greenish, triangles yellowish, rings bluish -- the hues of the PASCAL VOC
palette that :mod:`fcn_scratch.viz` paints the masks with; hue jittered by +-20 degrees,
random saturation and brightness), so the tiny network of ``fcn-scratch train``
learns *what* is where within a minute on a laptop and the interesting part is
*how precisely*: the class boundaries and the thin rings, which is exactly what
separates FCN-32s, 16s and 8s. With ``colour_cue=False`` every shape gets a
random colour and only geometry tells the classes apart -- a much harder task
that needs far more training.

* :func:`toy_shapes` ``(n, size) -> images (N, 3, H, W) float32, masks (N, H, W) int64``
* :data:`CLASS_NAMES` ``("background", "circle", "rectangle", "triangle", "ring")``
* :func:`normalize` / :func:`denormalize` between display RGB in ``[0, 1]`` and
  the network's roughly zero-mean input ``(rgb - 0.5) / 0.25``
* :func:`iterate_batches` a seeded shuffling mini-batch iterator

Image ``i`` of a seed depends only on ``(seed, i)``, not on ``n``: the first
ten images of ``toy_shapes(100, seed=0)`` are ``toy_shapes(10, seed=0)``.
"""

from __future__ import annotations

import colorsys
import numbers

import numpy as np

from ._validate import pair, positive_int
from .init import make_rng

CLASS_NAMES = ("background", "circle", "rectangle", "triangle", "ring")
NUM_CLASSES = len(CLASS_NAMES)
IGNORE_INDEX = 255

# Display RGB in [0, 1] maps to network input (rgb - MEAN) / STD, roughly in [-2, 2].
MEAN = 0.5
STD = 0.25


def normalize(rgb) -> np.ndarray:
    """Display RGB ``(..., 3, H, W)`` in ``[0, 1]`` -> network input ``(rgb - 0.5) / 0.25`` (float32)."""
    return ((np.asarray(rgb, dtype=np.float32) - MEAN) / STD).astype(np.float32)


def denormalize(images) -> np.ndarray:
    """Inverse of :func:`normalize`, clipped to ``[0, 1]`` for display."""
    return np.clip(np.asarray(images, dtype=np.float32) * STD + MEAN, 0.0, 1.0)


def to_hwc(image) -> np.ndarray:
    """One network image ``(3, H, W)`` -> display RGB ``(H, W, 3)`` in ``[0, 1]``."""
    return denormalize(image).transpose(1, 2, 0)


# --------------------------------------------------------------------------- shapes
# Each painter returns a boolean (H, W) mask of the pixels whose centres fall inside
# the shape; yy, xx are the pixel-centre coordinates.


def _circle(yy, xx, cy, cx, r):
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _rectangle(yy, xx, cy, cx, hh, hw):
    return (np.abs(yy - cy) <= hh) & (np.abs(xx - cx) <= hw)


def _triangle(yy, xx, vertices):
    """Inside all three edges (edge functions of a counter-clockwise triangle)."""
    (y0, x0), (y1, x1), (y2, x2) = vertices
    if (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0) < 0:  # make the winding consistent
        (y1, x1), (y2, x2) = (y2, x2), (y1, x1)
    inside = np.ones(yy.shape, dtype=bool)
    for (ya, xa), (yb, xb) in (((y0, x0), (y1, x1)), ((y1, x1), (y2, x2)), ((y2, x2), (y0, x0))):
        inside &= (xb - xa) * (yy - ya) - (yb - ya) * (xx - xa) >= 0
    return inside


def _ring(yy, xx, cy, cx, r_out, thickness):
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    return (d2 <= r_out * r_out) & (d2 >= (r_out - thickness) ** 2)


def _smooth_noise(rng, H, W, cells):
    """Low-frequency texture: a coarse random grid, bilinearly upsampled to ``(H, W)``, in about [-1, 1]."""
    gh, gw = cells + 1, cells + 1
    grid = rng.uniform(-1, 1, size=(3, gh, gw))
    ys = np.linspace(0, gh - 1, H)
    xs = np.linspace(0, gw - 1, W)
    y0 = np.minimum(ys.astype(int), gh - 2)
    x0 = np.minimum(xs.astype(int), gw - 2)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    top = grid[:, y0][:, :, x0] * (1 - fx) + grid[:, y0][:, :, x0 + 1] * fx
    bottom = grid[:, y0 + 1][:, :, x0] * (1 - fx) + grid[:, y0 + 1][:, :, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


# Hue family (degrees) of each shape class when colour_cue is on: red, green, yellow, blue
# (the hues of the VOC palette colours of classes 1-4, so images and masks look alike).
CLASS_HUES = (None, 0.0, 120.0, 60.0, 240.0)


def _shape_colour(rng, background, kind, colour_cue):
    """The RGB colour of one shape, at least 0.35 (Euclidean) away from the background colour.

    With ``colour_cue``: hue ``CLASS_HUES[kind] +- 20`` degrees, saturation 0.6-1, value 0.55-1.
    Without: uniform over the RGB cube.
    """
    for _ in range(100):
        if colour_cue:
            hue = (CLASS_HUES[kind] + rng.uniform(-20.0, 20.0)) / 360.0 % 1.0
            colour = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.55, 1.0)))
        else:
            colour = rng.uniform(0.0, 1.0, size=3)
        if np.linalg.norm(colour - background) >= 0.35:
            return colour
    return 1.0 - background  # practically unreachable; the complement is always far enough


def ignore_borders(mask, width: int, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Set pixels within ``width`` (chessboard distance) of a label change to ``ignore_index``.

    Like PASCAL VOC's void band: boundary pixels are ambiguous, so neither the
    loss nor the metrics count them. ``mask (H, W)`` or ``(N, H, W)`` int; returns a copy.
    """
    mask = np.asarray(mask)
    width = int(width)
    if width < 0:
        raise ValueError(f"width must be >= 0, got {width}")
    out = mask.copy()
    if width == 0:
        return out
    edge = np.zeros(mask.shape, dtype=bool)
    # a pixel is on a border when its right or lower neighbour carries another label
    dy = mask[..., 1:, :] != mask[..., :-1, :]
    dx = mask[..., :, 1:] != mask[..., :, :-1]
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    band = edge.copy()
    for _ in range(width - 1):  # grow the band by one pixel per step (3x3 dilation)
        grown = band.copy()
        grown[..., 1:, :] |= band[..., :-1, :]
        grown[..., :-1, :] |= band[..., 1:, :]
        grown[..., :, 1:] |= band[..., :, :-1]
        grown[..., :, :-1] |= band[..., :, 1:]
        band = grown
    out[band] = ignore_index
    return out


def _one_image(rng, H, W, max_shapes, noise, thickness, colour_cue):
    """Paint one ``(3, H, W)`` RGB image in ``[0, 1]`` and its ``(H, W)`` mask."""
    S = min(H, W)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64) + 0.5
    # greyish background: a random grey level plus a slight random tint
    background = rng.uniform(0.25, 0.75) + rng.uniform(-0.08, 0.08, size=3)
    texture = _smooth_noise(rng, H, W, cells=int(rng.integers(2, 6)))
    rgb = background[:, None, None] + 0.12 * texture
    mask = np.zeros((H, W), dtype=np.int64)
    n_shapes = int(rng.integers(1, max_shapes + 1))
    for _ in range(n_shapes):
        kind = int(rng.integers(1, NUM_CLASSES))
        cy, cx = rng.uniform(0.15 * H, 0.85 * H), rng.uniform(0.15 * W, 0.85 * W)
        if kind == 1:  # filled disc
            inside = _circle(yy, xx, cy, cx, rng.uniform(0.09, 0.2) * S)
        elif kind == 2:  # axis-aligned rectangle
            inside = _rectangle(yy, xx, cy, cx, rng.uniform(0.07, 0.2) * S, rng.uniform(0.07, 0.2) * S)
        elif kind == 3:  # triangle: jittered equilateral, random rotation
            r = rng.uniform(0.13, 0.25) * S
            angles = rng.uniform(0, 2 * np.pi) + np.arange(3) * 2 * np.pi / 3 + rng.uniform(-0.25, 0.25, 3)
            inside = _triangle(yy, xx, [(cy + r * np.sin(a), cx + r * np.cos(a)) for a in angles])
        else:  # thin ring
            t = thickness if thickness is not None else max(2.0, 0.08 * S)
            inside = _ring(yy, xx, cy, cx, rng.uniform(0.18, 0.3) * S, t)
        rgb[:, inside] = _shape_colour(rng, background, kind, colour_cue)[:, None] + 0.06 * texture[:, inside]
        mask[inside] = kind  # painter's order: later shapes cover earlier ones
    rgb += rng.normal(0.0, noise, size=rgb.shape)
    return np.clip(rgb, 0.0, 1.0), mask


def toy_shapes(n, size=64, *, seed=0, max_shapes=4, noise=0.04, thickness=None, ignore_border=0,
               colour_cue=True):
    """Generate ``n`` toy images and masks, deterministically from ``seed``.

    Parameters
    ----------
    n : int >= 1
    size : int or (H, W), any ``H, W >= 8``.
    seed : int; image ``i`` depends only on ``(seed, i)``.
    max_shapes : each image holds 1 .. ``max_shapes`` shapes (kinds drawn uniformly), overlapping allowed.
    noise : std of the per-pixel Gaussian noise (display units, image range [0, 1]).
    thickness : ring width in pixels (default ``max(2, 0.08 * min(H, W))``, 5 px at 64 x 64: thinner
        than one cell of FCN-8s's stride-8 score map, far thinner than FCN-32s's 32).
    ignore_border : width of a 255 band on every label change (0 = none), see :func:`ignore_borders`.
    colour_cue : each class drawn in its own hue family (True) or in random colours (False).

    Returns
    -------
    images : ``(N, 3, H, W)`` float32, normalised as ``(rgb - 0.5) / 0.25`` (about [-2, 2]).
    masks : ``(N, H, W)`` int64, 0 = background, ``k`` = ``CLASS_NAMES[k]``, 255 = ignored border.
    """
    n = positive_int(n, "n")
    H, W = pair(size, "size", minimum=8)
    max_shapes = positive_int(max_shapes, "max_shapes")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(noise, numbers.Real) or not 0 <= noise <= 1:
        raise ValueError(f"noise must be a number in [0, 1], got {noise!r}")
    if thickness is not None and (not isinstance(thickness, numbers.Real) or thickness <= 0):
        raise ValueError(f"thickness must be a positive number of pixels, got {thickness!r}")
    images = np.empty((n, 3, H, W), dtype=np.float32)
    masks = np.empty((n, H, W), dtype=np.int64)
    for i in range(n):
        rng = np.random.default_rng([int(seed), i])  # (seed, i) -> image i, whatever n is
        rgb, masks[i] = _one_image(rng, H, W, max_shapes, float(noise), thickness, bool(colour_cue))
        images[i] = normalize(rgb)
    if ignore_border:
        masks = ignore_borders(masks, ignore_border)
    return images, masks


def iterate_batches(images, masks, batch_size, *, shuffle=True, seed=None, rng=None, drop_last=False):
    """Yield ``(images[idx], masks[idx])`` mini-batches covering the data once.

    With ``shuffle`` the order is a permutation drawn from ``rng`` (or a new
    generator from ``seed``): the same seed gives the same batches. The last,
    smaller batch is kept unless ``drop_last``.
    """
    n = len(images)
    if len(masks) != n:
        raise ValueError(f"images and masks must hold the same number of samples, got {n} and {len(masks)}")
    batch_size = positive_int(batch_size, "batch_size")
    order = make_rng(seed, rng).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield images[idx], masks[idx]


__all__ = [
    "CLASS_NAMES",
    "NUM_CLASSES",
    "IGNORE_INDEX",
    "CLASS_HUES",
    "MEAN",
    "STD",
    "normalize",
    "denormalize",
    "to_hwc",
    "ignore_borders",
    "toy_shapes",
    "iterate_batches",
]

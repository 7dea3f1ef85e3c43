"""FCN-32s, FCN-16s and FCN-8s (Long, Shelhamer & Darrell, CVPR 2015), forward and backward by hand.

The three classes mirror the PyTorch FCN classes of the study notes this
project grew from (:mod:`fcn_scratch.torch_ref` holds them) attribute for attribute, so their
``state_dict`` keys read ``conv1_1.weight``, ``score_pool4_fr.bias``,
``upscore8.weight``, ... with PyTorch's layouts:

* backbone: 5 blocks, block ``B`` = ``convs_per_block[B-1]`` times
  (3x3 conv, padding 1, + ReLU) then a 2x2 max-pool, stride 2, **ceil mode**;
* ``fc6``, ``fc7``: 1x1 convolutions + ReLU + Dropout2d (the classifier's dense
  layers, convolutionalized; see :mod:`fcn_scratch.convolutionalize`);
* ``score_fr``: 1x1 conv to ``num_classes`` score maps at 1/32 resolution;
* decoder: transposed convolutions ``k = 2s``, stride ``s``, padding ``s/2``
  (``upscore32`` k64 s32 p16; ``upscore2`` k4 s2 p1; ``upscore16`` k32 s16 p8;
  ``upscore2_pool4`` k4 s2 p1; ``upscore8`` k16 s8 p4), and 1x1 ``score_pool4_fr``,
  ``score_pool3_fr`` on the pool4 / pool3 features for the skips.

Data flow of FCN-8s (FCN-16s stops after the pool4 skip and upsamples x16,
FCN-32s upsamples the score map x32 directly)::

    x -> block1 -> block2 -> block3 = pool3 -> block4 = pool4 -> block5 -> fc6 -> fc7 -> score_fr
                               |                 |                                        |
                         score_pool3_fr    score_pool4_fr                            upscore2 (x2)
                               |                 '---------------- + <--------------------'
                               |                                   |
                               '---------- + <---------- upscore2_pool4 (x2)
                                           |
                                       upscore8 (x8) -> logits (N, num_classes, H, W)

Backward runs the same graph in reverse. Where the forward *forks* (pool4 feeds
both block 5 and ``score_pool4_fr``; pool3 feeds block 4 and ``score_pool3_fr``)
the backward *sums* the two gradients arriving there.

The crop rule (any H, W >= 1)
-----------------------------
Ceil-mode pooling gives feature maps of size ``ceil(H/2), ceil(H/4), ...,
ceil(H/32)`` (:func:`pooled_sizes`). An upsampler ``k = 2s, stride s, padding
s/2`` turns ``n`` rows into exactly ``s*n`` rows, so each upsampled map is at
least as big as the skip it meets (``2*ceil(h/2) >= h``) and the final one at
least ``H`` (``8*ceil(H/8) >= H``); it is cut to the skip's size (and at the end
to ``(H, W)``) keeping the **top-left** corner, offset 0 (:func:`crop_plan`).

Why offset 0 is the right alignment: pool output row ``i`` covers input rows
``2i`` and ``2i+1`` (centre ``2i + 1/2``), so feature row ``i`` at stride
``2^b`` is centred on input row ``2^b i + (2^b - 1)/2``. The bilinear kernel of
an upsampler ``k = 2s, p = s/2`` puts the peak of input row ``i`` at output
row ``s i + (s - 1)/2`` -- the same place. So the grids already coincide at
the top-left; the surplus rows at the bottom/right come only from the last,
partial (ceil-mode) pooling window, which overhangs the input, and they are
the ones dropped. For H, W multiples of 32 the sizes match exactly, the crops
keep everything and the model computes exactly what the seed's class computes.
(The original Caffe FCN instead pads the input by 100 pixels and crops with
offsets such as 19, 27, 9 and 5; the seed's padding-free network needs none.)

Initialisation (the paper's recipe, section 4.3): He-normal backbone incl.
``fc6``/``fc7`` with zero biases; **zero** score layers (``score_fr``,
``score_pool*_fr``, weight and bias); every transposed convolution bilinear on
the channel diagonal (:func:`fcn_scratch.init.bilinear_weight`), zero bias.
So a fresh network outputs exactly zero logits, and the skip branches of
FCN-16s/8s start as no-ops that only add what training teaches them. For staged
training (32s -> 16s -> 8s) copy the trained weights with :func:`transfer_weights`.
"""

from __future__ import annotations

import functools
import numbers

import numpy as np

from . import functional as F
from ._validate import check_array, check_grad, float_dtype, positive_int
from .init import bilinear_weight, he_normal, make_rng
from .layers import Add, Conv2d, ConvTranspose2d, Crop, Dropout2d, MaxPool2d, Module, ReLU, input_checked, no_grad


def _checks_its_input(forward):
    """For a model's ``forward(x)``: ``x`` is checked there (``_check_input``, NaN/inf included), so the
    layers inside skip scanning their own inputs for NaN/inf (:func:`fcn_scratch.layers.input_checked`)."""

    @functools.wraps(forward)
    def checked_once(self, x):
        with input_checked():
            return forward(self, x)

    return checked_once


N_BLOCKS = 5
VGG16_WIDTHS = (64, 128, 256, 512, 512)
VGG16_CONVS = (2, 2, 3, 3, 3)
TINY = dict(widths=(16, 32, 64, 128, 128), convs_per_block=(2, 2, 2, 2, 2), fc_channels=256)

# (layer name, kernel, stride, padding) of each upsampler, in forward order, per variant.
UPSAMPLERS = {
    "32s": (("upscore32", 64, 32, 16),),
    "16s": (("upscore2", 4, 2, 1), ("upscore16", 32, 16, 8)),
    "8s": (("upscore2", 4, 2, 1), ("upscore2_pool4", 4, 2, 1), ("upscore8", 16, 8, 4)),
}


# --------------------------------------------------------------------------- sizes and the crop rule


def pooled_sizes(H: int, W: int, n: int = N_BLOCKS) -> list[tuple[int, int]]:
    """Feature-map sizes after each of ``n`` ceil-mode 2x2 stride-2 pools: ``(ceil(H/2^b), ceil(W/2^b))``."""
    H, W = positive_int(H, "H"), positive_int(W, "W")
    sizes = []
    for _ in range(n):
        H = F.pool_output_size(H, 2, 2, ceil_mode=True)
        W = F.pool_output_size(W, 2, 2, ceil_mode=True)
        sizes.append((H, W))
    return sizes


def crop_plan(H: int, W: int, variant: str = "8s") -> list[tuple[str, tuple[int, int], tuple[int, int]]]:
    """The crops an FCN-``variant`` makes on an ``H x W`` input, in forward order.

    Returns ``[(upsampler, produced (h, w), kept (h, w)), ...]``: the upsampler's
    output size ``(n-1)s - 2p + k`` (``= s*n`` here) and the size it is cut to at
    offset ``(0, 0)`` -- the next skip's score map, or ``(H, W)`` for the last one.
    ``produced == kept`` (no crop) when H and W are multiples of 32.
    """
    if variant not in UPSAMPLERS:
        raise ValueError(f"variant must be one of {tuple(UPSAMPLERS)}, got {variant!r}")
    sizes = [(H, W)] + pooled_sizes(H, W)  # sizes[b] = resolution 1/2^b
    plan = []
    level = N_BLOCKS  # the score map lives at 1/32
    for name, k, s, p in UPSAMPLERS[variant]:
        h, w = sizes[level]
        produced = (F.conv_transpose_output_size(h, k, s, p), F.conv_transpose_output_size(w, k, s, p))
        level -= s.bit_length() - 1  # log2(s) levels up
        plan.append((name, produced, sizes[level]))
    return plan


# --------------------------------------------------------------------------- the models


def _int_tuple(value, name, length):
    if (not isinstance(value, (tuple, list)) or len(value) != length
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)):
        raise ValueError(f"{name} must be a tuple of {length} positive ints (one per VGG block), got {value!r}")
    if min(value) < 1:
        raise ValueError(f"{name} must hold positive ints, got {value!r}")
    return tuple(int(v) for v in value)


class _FCN(Module):
    """Shared backbone (conv blocks, fc6/fc7, score_fr) of the three FCNs; see the module docstring.

    Subclasses build their decoder after ``super().__init__`` and write
    ``forward``/``backward`` out in full, so each reads top to bottom.
    """

    variant = ""
    skips: tuple[int, ...] = ()  # blocks whose pooled output also feeds a score_pool{b}_fr layer

    def __init__(self, num_classes, in_channels=3, widths=VGG16_WIDTHS, convs_per_block=VGG16_CONVS,
                 fc_channels=4096, dropout=0.5, *, dtype=np.float32, seed=None, rng=None):
        super().__init__()
        self.num_classes = positive_int(num_classes, "num_classes")
        self.in_channels = positive_int(in_channels, "in_channels")
        self.widths = _int_tuple(widths, "widths", N_BLOCKS)
        self.convs_per_block = _int_tuple(convs_per_block, "convs_per_block", N_BLOCKS)
        self.fc_channels = positive_int(fc_channels, "fc_channels")
        self.dtype = float_dtype(dtype)
        self.dropout = dropout
        rng = make_rng(seed, rng)
        self._rng = rng

        cin = self.in_channels
        for b in range(1, N_BLOCKS + 1):
            cout = self.widths[b - 1]
            for i in range(1, self.convs_per_block[b - 1] + 1):
                setattr(self, f"conv{b}_{i}", self._he_conv(cin, cout, 3, 1))
                setattr(self, f"relu{b}_{i}", ReLU(inplace=True))  # on the conv's fresh output
                cin = cout
            setattr(self, f"pool{b}", MaxPool2d(2, stride=2, ceil_mode=True))
            if b in self.skips:  # the seed assigns score_pool{b}_fr right after pool{b}
                setattr(self, f"score_pool{b}_fr", self._zero_conv(cout, self.num_classes))

        # fc6/fc7: the classifier's dense layers as 1x1 convolutions, so any input size works
        self.fc6 = self._he_conv(cin, self.fc_channels, 1, 0)
        self.relu6 = ReLU(inplace=True)
        self.drop6 = Dropout2d(dropout, rng=rng)
        self.fc7 = self._he_conv(self.fc_channels, self.fc_channels, 1, 0)
        self.relu7 = ReLU(inplace=True)
        self.drop7 = Dropout2d(dropout, rng=rng)
        self.score_fr = self._zero_conv(self.fc_channels, self.num_classes)

    # -- construction helpers ------------------------------------------------
    def _he_conv(self, cin, cout, k, p):
        conv = Conv2d(cin, cout, k, padding=p, dtype=self.dtype, rng=self._rng)
        conv.params["weight"][...] = he_normal(conv.weight.shape, self._rng, self.dtype)
        conv.params["bias"][...] = 0
        return conv

    def _zero_conv(self, cin, cout):
        conv = Conv2d(cin, cout, 1, dtype=self.dtype, rng=self._rng)
        conv.params["weight"][...] = 0  # a new score layer adds nothing until trained
        conv.params["bias"][...] = 0
        return conv

    def _bilinear_upsampler(self, k, s, p):
        c = self.num_classes
        up = ConvTranspose2d(c, c, k, stride=s, padding=p, dtype=self.dtype, rng=self._rng)
        up.params["weight"][...] = bilinear_weight(c, c, k, self.dtype)
        up.params["bias"][...] = 0
        return up

    @classmethod
    def state_shapes(cls, num_classes, in_channels=3, widths=VGG16_WIDTHS, convs_per_block=VGG16_CONVS,
                     fc_channels=4096, dropout=0.5, *, dtype=np.float32, seed=None, rng=None) -> dict:
        """``{key: shape}`` of the ``state_dict()`` the constructor with these arguments builds, in its order.

        Computed from the arguments alone, nothing allocated: a checkpoint's
        header can be checked against its stored arrays before a model (whose
        weights a crafted header could make gigabytes large) is built. Mirrors
        ``__init__`` line for line; ``tests/test_untrusted.py`` compares the two.
        """
        K = positive_int(num_classes, "num_classes")
        cin = positive_int(in_channels, "in_channels")
        widths = _int_tuple(widths, "widths", N_BLOCKS)
        convs = _int_tuple(convs_per_block, "convs_per_block", N_BLOCKS)
        fc = positive_int(fc_channels, "fc_channels")
        float_dtype(dtype)
        shapes = {}

        def conv(name, c_in, c_out, k):
            shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (c_out, c_in, k, k), (c_out,)

        for b in range(1, N_BLOCKS + 1):
            for i in range(1, convs[b - 1] + 1):
                conv(f"conv{b}_{i}", cin, widths[b - 1], 3)
                cin = widths[b - 1]
            if b in cls.skips:
                conv(f"score_pool{b}_fr", cin, K, 1)
        conv("fc6", cin, fc, 1)
        conv("fc7", fc, fc, 1)
        conv("score_fr", fc, K, 1)
        for name, k, _, _ in UPSAMPLERS[cls.variant]:  # ConvTranspose2d weight is (in, out, kh, kw)
            shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (K, K, k, k), (K,)
        return shapes

    @classmethod
    def tiny(cls, num_classes, **kwargs):
        """The toy / benchmark preset: widths (16, 32, 64, 128, 128), two convs per block, fc 256.

        Any constructor argument may be given in ``kwargs`` (e.g. ``dtype``, ``seed``)
        and overrides the preset.
        """
        return cls(num_classes, **{**TINY, **kwargs})

    def config(self) -> dict:
        """Constructor arguments that rebuild this architecture (pair with ``state_dict()``)."""
        return dict(num_classes=self.num_classes, in_channels=self.in_channels, widths=self.widths,
                    convs_per_block=self.convs_per_block, fc_channels=self.fc_channels,
                    dropout=self.dropout, dtype=self.dtype.name)

    def extra_repr(self):
        return (f"num_classes={self.num_classes}, in_channels={self.in_channels}, widths={self.widths}, "
                f"convs_per_block={self.convs_per_block}, fc_channels={self.fc_channels}, "
                f"dtype={self.dtype.name}")

    # -- pieces shared by the three forward/backward passes ---------------------
    def _check_input(self, x):
        check_array(x, "x", ndim=4, channels=self.in_channels, dtype=self.dtype)
        self._in_shape = x.shape
        return x.shape[2], x.shape[3]

    def _check_dlogits(self, dlogits):
        if getattr(self, "_out_shape", None) is None:
            raise ValueError(f"{type(self).__name__}.backward() called before forward(): run forward first")
        if self.crop_out._cache is None:
            raise ValueError(f"{type(self).__name__}.backward() after a forward under no_grad(): "
                             f"run forward again outside no_grad() to backpropagate")
        check_grad(dlogits, "dlogits", self._out_shape, self.dtype)

    def _block_forward(self, b, h):
        """Block ``b``: (conv3x3 -> ReLU) x convs_per_block[b-1] -> 2x2 max-pool (ceil mode)."""
        for i in range(1, self.convs_per_block[b - 1] + 1):
            h = getattr(self, f"conv{b}_{i}").forward(h)
            h = getattr(self, f"relu{b}_{i}").forward(h)
        return getattr(self, f"pool{b}").forward(h)

    def _block_backward(self, b, d, input_grad=True):
        """Block ``b`` in reverse: pool, then (ReLU, conv) from the last conv to the first.

        ``input_grad=False`` lets the block's first conv skip the gradient of its input.
        """
        d = getattr(self, f"pool{b}").backward(d)
        for i in range(self.convs_per_block[b - 1], 0, -1):
            d = getattr(self, f"relu{b}_{i}").backward(d)
            d = getattr(self, f"conv{b}_{i}").backward(d, input_grad=input_grad or i > 1)
        return d

    def _head_forward(self, h):
        """pool5 features -> fc6 -> ReLU -> dropout -> fc7 -> ReLU -> dropout -> score_fr (1/32 scores)."""
        h = self.drop6.forward(self.relu6.forward(self.fc6.forward(h)))
        h = self.drop7.forward(self.relu7.forward(self.fc7.forward(h)))
        return self.score_fr.forward(h)

    def _head_backward(self, d):
        d = self.score_fr.backward(d)
        d = self.fc7.backward(self.relu7.backward(self.drop7.backward(d)))
        return self.fc6.backward(self.relu6.backward(self.drop6.backward(d)))

    def predict(self, x) -> np.ndarray:
        """Per-pixel class ids ``(N, H, W)``: the argmax of the logits (run ``eval()`` first for inference).

        Runs under :func:`fcn_scratch.layers.no_grad`: no caches are kept for a backward pass.
        """
        with no_grad():
            return self.forward(x).argmax(axis=1)


class FCN32s(_FCN):
    """FCN-32s: score map at 1/32 upsampled x32 in one step (``upscore32``, k64 s32 p16).

    ``FCN32s(num_classes, in_channels=3, widths=(64,128,256,512,512), convs_per_block=(2,2,3,3,3),
    fc_channels=4096, dropout=0.5, *, dtype=np.float32, seed=None, rng=None)``.
    ``forward(x (N, in_channels, H, W)) -> logits (N, num_classes, H, W)``, any H, W >= 1;
    ``backward(dlogits (N, num_classes, H, W)) -> dx (N, in_channels, H, W)``;
    ``backward(dlogits, input_grad=False)`` returns None instead of dx and skips
    ``conv1_1``'s input gradient, which training never needs.
    """

    variant = "32s"
    skips = ()

    def __init__(self, num_classes, in_channels=3, widths=VGG16_WIDTHS, convs_per_block=VGG16_CONVS,
                 fc_channels=4096, dropout=0.5, *, dtype=np.float32, seed=None, rng=None):
        super().__init__(num_classes, in_channels, widths, convs_per_block, fc_channels, dropout,
                         dtype=dtype, seed=seed, rng=rng)
        self.upscore32 = self._bilinear_upsampler(64, 32, 16)
        self.crop_out = Crop()  # 32*ceil(H/32) rows -> H, top-left

    @_checks_its_input
    def forward(self, x):
        H, W = self._check_input(x)
        h = self._block_forward(1, x)
        h = self._block_forward(2, h)
        h = self._block_forward(3, h)
        h = self._block_forward(4, h)
        h = self._block_forward(5, h)
        score = self._head_forward(h)                              # (N, classes, ceil(H/32), ceil(W/32))
        logits = self.crop_out.forward(self.upscore32.forward(score), (H, W))
        self._out_shape = logits.shape
        return logits

    def backward(self, dlogits, input_grad=True):
        self._check_dlogits(dlogits)
        d = self.upscore32.backward(self.crop_out.backward(dlogits))
        d = self._head_backward(d)
        d = self._block_backward(5, d)
        d = self._block_backward(4, d)
        d = self._block_backward(3, d)
        d = self._block_backward(2, d)
        return self._block_backward(1, d, input_grad)


class FCN16s(_FCN):
    """FCN-16s: score map x2 (``upscore2``), plus the pool4 scores (``score_pool4_fr``), then x16.

    Constructor, ``forward`` and ``backward`` as :class:`FCN32s`.
    """

    variant = "16s"
    skips = (4,)

    def __init__(self, num_classes, in_channels=3, widths=VGG16_WIDTHS, convs_per_block=VGG16_CONVS,
                 fc_channels=4096, dropout=0.5, *, dtype=np.float32, seed=None, rng=None):
        super().__init__(num_classes, in_channels, widths, convs_per_block, fc_channels, dropout,
                         dtype=dtype, seed=seed, rng=rng)
        self.upscore2 = self._bilinear_upsampler(4, 2, 1)
        self.upscore16 = self._bilinear_upsampler(32, 16, 8)
        self.crop_pool4 = Crop()  # 2*ceil(H/32) -> ceil(H/16), top-left
        self.add_pool4 = Add()
        self.crop_out = Crop()    # 16*ceil(H/16) -> H, top-left

    @_checks_its_input
    def forward(self, x):
        H, W = self._check_input(x)
        h = self._block_forward(1, x)
        h = self._block_forward(2, h)
        h = self._block_forward(3, h)
        pool4 = h = self._block_forward(4, h)
        score_pool4 = self.score_pool4_fr.forward(pool4)           # 1/16
        h = self._block_forward(5, h)
        score = self._head_forward(h)                              # 1/32

        up2 = self.crop_pool4.forward(self.upscore2.forward(score), score_pool4.shape[2:])
        h = self.add_pool4.forward(up2, score_pool4)               # fuse at 1/16
        logits = self.crop_out.forward(self.upscore16.forward(h), (H, W))
        self._out_shape = logits.shape
        return logits

    def backward(self, dlogits, input_grad=True):
        self._check_dlogits(dlogits)
        d = self.upscore16.backward(self.crop_out.backward(dlogits))
        d_up2, d_score_pool4 = self.add_pool4.backward(d)
        d = self.upscore2.backward(self.crop_pool4.backward(d_up2))
        d = self._head_backward(d)
        d = self._block_backward(5, d)
        d = d + self.score_pool4_fr.backward(d_score_pool4)        # pool4 forked: sum both branches
        d = self._block_backward(4, d)
        d = self._block_backward(3, d)
        d = self._block_backward(2, d)
        return self._block_backward(1, d, input_grad)


class FCN8s(_FCN):
    """FCN-8s: FCN-16s's fused 1/16 map x2 (``upscore2_pool4``), plus the pool3 scores, then x8.

    Constructor, ``forward`` and ``backward`` as :class:`FCN32s`.
    """

    variant = "8s"
    skips = (3, 4)

    def __init__(self, num_classes, in_channels=3, widths=VGG16_WIDTHS, convs_per_block=VGG16_CONVS,
                 fc_channels=4096, dropout=0.5, *, dtype=np.float32, seed=None, rng=None):
        super().__init__(num_classes, in_channels, widths, convs_per_block, fc_channels, dropout,
                         dtype=dtype, seed=seed, rng=rng)
        self.upscore2 = self._bilinear_upsampler(4, 2, 1)
        self.upscore2_pool4 = self._bilinear_upsampler(4, 2, 1)
        self.upscore8 = self._bilinear_upsampler(16, 8, 4)
        self.crop_pool4 = Crop()  # 2*ceil(H/32) -> ceil(H/16), top-left
        self.add_pool4 = Add()
        self.crop_pool3 = Crop()  # 2*ceil(H/16) -> ceil(H/8), top-left
        self.add_pool3 = Add()
        self.crop_out = Crop()    # 8*ceil(H/8) -> H, top-left

    @_checks_its_input
    def forward(self, x):
        H, W = self._check_input(x)
        h = self._block_forward(1, x)
        h = self._block_forward(2, h)
        pool3 = h = self._block_forward(3, h)
        score_pool3 = self.score_pool3_fr.forward(pool3)           # 1/8
        pool4 = h = self._block_forward(4, h)
        score_pool4 = self.score_pool4_fr.forward(pool4)           # 1/16
        h = self._block_forward(5, h)
        score = self._head_forward(h)                              # 1/32

        up2 = self.crop_pool4.forward(self.upscore2.forward(score), score_pool4.shape[2:])
        h = self.add_pool4.forward(up2, score_pool4)               # fuse at 1/16
        up4 = self.crop_pool3.forward(self.upscore2_pool4.forward(h), score_pool3.shape[2:])
        h = self.add_pool3.forward(up4, score_pool3)               # fuse at 1/8
        logits = self.crop_out.forward(self.upscore8.forward(h), (H, W))
        self._out_shape = logits.shape
        return logits

    def backward(self, dlogits, input_grad=True):
        self._check_dlogits(dlogits)
        d = self.upscore8.backward(self.crop_out.backward(dlogits))
        d_up4, d_score_pool3 = self.add_pool3.backward(d)
        d = self.upscore2_pool4.backward(self.crop_pool3.backward(d_up4))
        d_up2, d_score_pool4 = self.add_pool4.backward(d)
        d = self.upscore2.backward(self.crop_pool4.backward(d_up2))
        d = self._head_backward(d)
        d = self._block_backward(5, d)
        d = d + self.score_pool4_fr.backward(d_score_pool4)        # pool4 forked: sum both branches
        d = self._block_backward(4, d)
        d = d + self.score_pool3_fr.backward(d_score_pool3)        # pool3 forked: sum both branches
        d = self._block_backward(3, d)
        d = self._block_backward(2, d)
        return self._block_backward(1, d, input_grad)


MODELS = {"32s": FCN32s, "16s": FCN16s, "8s": FCN8s}


def transfer_weights(src: Module, dst: Module) -> list[str]:
    """Copy every parameter that ``src`` and ``dst`` both have, with the same shape, into ``dst``.

    For staged training FCN-32s -> FCN-16s -> FCN-8s: the backbone, ``score_fr``
    and the shared upsamplers carry over; the new skip layers keep their zero
    initialisation (so the bigger net starts computing what the smaller one did,
    up to its finer upsampling). Values are cast to ``dst``'s dtype. Returns the
    copied names in ``dst``'s order; names with a different shape are skipped.
    """
    if not isinstance(src, Module) or not isinstance(dst, Module):
        raise TypeError(f"transfer_weights(src, dst) takes two Modules, got {type(src).__name__} "
                        f"and {type(dst).__name__}")
    source = {name: p for name, p, _ in src.named_parameters()}
    copied = []
    for name, p, _ in dst.named_parameters():
        if name in source and source[name].shape == p.shape:
            p[...] = source[name]
            copied.append(name)
    return copied


__all__ = ["FCN32s", "FCN16s", "FCN8s", "MODELS", "TINY", "UPSAMPLERS", "crop_plan", "pooled_sizes",
           "transfer_weights"]

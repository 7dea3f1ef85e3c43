"""Thin stateful layers over the pure pairs in :mod:`fcn_scratch.functional`.

Every layer: ``y = layer.forward(x)`` (also ``layer(x)``), ``dx = layer.backward(dy)``;
``backward`` never edits ``dy``. Parameters live in ``layer.params`` and the
gradients of the last ``backward`` in ``layer.grads`` (same keys). The
checkpoint API uses PyTorch's names and layouts:

* ``state_dict()`` -> ``{"weight": ..., "bias": ...}`` (copies); Conv2d weight
  ``(out, in, kh, kw)``, ConvTranspose2d weight ``(in, out, kh, kw)``, bias ``(out,)``.
* ``load_state_dict(d)`` checks keys, shapes and dtypes, naming the first bad one.
* ``grad_dict()`` -> the last gradients, same keys.
* ``train()`` / ``eval()`` switch dropout on and off.

Containers (the FCN models) are ``Module`` s whose attributes are ``Module`` s;
their keys are prefixed with the attribute name: ``conv1_1.weight``.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from . import fastconv
from . import functional as F
from ._validate import check_array, check_grad, finite_scalar, float_dtype, need_cache, pair, positive_int
from .init import default_uniform, fan_in, make_rng


_grad_enabled = True


@contextlib.contextmanager
def no_grad():
    """Inference mode, as ``torch.no_grad()``: layers keep no cache for ``backward``.

    Each layer's temporaries (a convolution's im2col matrix is ``k*k`` times its
    input) are freed as soon as the next layer runs, so a deep network's peak
    memory is one layer's working set instead of the sum over all layers.
    ``backward`` after a forward under ``no_grad()`` raises ``ValueError``.
    """
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    """False inside :func:`no_grad`."""
    return _grad_enabled


_local = threading.local()


@contextlib.contextmanager
def input_checked():
    """Inside a model's ``forward``, which has checked its input ``x``: its layers skip scanning theirs for NaN/inf.

    Every public ``forward`` scans its input for NaN/inf (a full pass over the
    array). Inside a model that is one pass per layer over activations computed
    from a checked input and weights ``load_state_dict`` has checked; an overflow
    in between still surfaces in the logits, which the loss checks. Measured:
    the training step as ``fit`` runs it 0.90-0.95x its time (VGG16-size
    inference unchanged: there the scan also fetched the convolution's input
    into cache). Shapes, channels and dtypes are still
    checked at every layer. Per thread, so the replicas of
    :class:`fcn_scratch.parallel.DataParallel` each have their own.
    """
    previous = getattr(_local, "input_checked", False)
    _local.input_checked = True
    try:
        yield
    finally:
        _local.input_checked = previous


def _scan_for_nan() -> bool:
    """Whether a layer's ``forward`` scans its input for NaN/inf: yes, unless inside :func:`input_checked`."""
    return not getattr(_local, "input_checked", False)


_free_after_backward = False


@contextlib.contextmanager
def free_after_backward():
    """Each layer drops its cache as soon as its ``backward`` has used it (as PyTorch frees its graph).

    A training step then never holds the caches of the layers already
    backpropagated through beside the gradients still to come, and nothing of
    this step is left behind for the next one's forward to overlap with.
    A second ``backward`` without a new ``forward`` raises ``ValueError`` here.
    :class:`fcn_scratch.parallel.DataParallel` (so ``fit``) runs its steps inside it.
    """
    global _free_after_backward
    previous, _free_after_backward = _free_after_backward, True
    try:
        yield
    finally:
        _free_after_backward = previous


class Module:
    """Base class: parameter bookkeeping, state dicts, train/eval, ``__call__``."""

    training = True

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray | None] = {}
        self._cache = None

    def _remember(self, cache):
        """Keep what ``backward`` needs, unless running under :func:`no_grad`."""
        self._cache = cache if _grad_enabled else None

    def _take_cache(self):
        """The cache for ``backward`` (a clear error if there is none); dropped here under :func:`free_after_backward`."""
        cache = need_cache(self._cache, type(self).__name__)
        if _free_after_backward:
            self._cache = None
        return cache

    # -- composition ---------------------------------------------------------
    def children(self) -> dict[str, "Module"]:
        """Sub-modules in the order they were assigned (like PyTorch)."""
        return {k: v for k, v in vars(self).items() if isinstance(v, Module)}

    def modules(self):
        """This module and every sub-module, depth first in assignment order (as PyTorch's ``modules()``)."""
        yield self
        for child in self.children().values():
            yield from child.modules()

    def named_parameters(self, prefix: str = ""):
        """Yield ``(name, param, grad)`` for this module and its children; arrays are live, not copies."""
        for key, value in self.params.items():
            yield prefix + key, value, self.grads.get(key)
        for name, child in self.children().items():
            yield from child.named_parameters(prefix + name + ".")

    # -- checkpoint API ----------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter, PyTorch names and layouts."""
        return {name: p.copy() for name, p, _ in self.named_parameters()}

    def grad_dict(self) -> dict[str, np.ndarray]:
        """Copies of the gradients of the last ``backward``, keyed like ``state_dict``."""
        out = {}
        for name, _, g in self.named_parameters():
            if g is None:
                raise ValueError(f"grad_dict(): no gradient for {name!r} yet; run forward and backward first")
            out[name] = g.copy()
        return out

    def load_state_dict(self, state: dict) -> None:
        """Copy ``state`` into the parameters after checking every key, shape and dtype.

        Raises ``KeyError`` for a missing or unexpected key and ``ValueError``
        for a shape or dtype mismatch or a NaN/inf value (naming the key);
        nothing is written unless all match.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict of arrays, got {type(state).__name__}")
        own = {name: p for name, p, _ in self.named_parameters()}
        for name in own:
            if name not in state:
                raise KeyError(f"state_dict is missing key {name!r} (expected keys: {list(own)})")
        for name in state:
            if name not in own:
                raise KeyError(f"state_dict has unexpected key {name!r}; is it from another architecture?")
        for name, p in own.items():
            v = np.asarray(state[name])
            if v.shape != p.shape:
                raise ValueError(f"state_dict[{name!r}] has shape {v.shape}, expected {p.shape}")
            if v.dtype != p.dtype:
                raise ValueError(f"state_dict[{name!r}] has dtype {v.dtype}, expected {p.dtype}")
            if not np.isfinite(v).all():  # one NaN weight turns every output it reaches into NaN
                raise ValueError(f"state_dict[{name!r}] contains NaN or inf")
        for name, p in own.items():
            p[...] = state[name]

    # -- modes ---------------------------------------------------------------
    def train(self, mode: bool = True):
        self.training = bool(mode)
        for child in self.children().values():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return ""


class WeightBiasLayer(Module):
    """A layer with a ``weight`` and an optional ``bias`` (Conv2d, ConvTranspose2d, Linear).

    PyTorch's default init: both ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with
    ``fan_in = weight.shape[1] * kh * kw`` (see :func:`fcn_scratch.init.fan_in`).
    Subclasses set ``self.dtype`` first.
    """

    def _init_weight_bias(self, shape, n_out, bias, rng):
        self.params["weight"] = default_uniform(shape, rng, self.dtype)
        self.grads["weight"] = None
        if bias:
            bound = fan_in(shape) ** -0.5
            self.params["bias"] = rng.uniform(-bound, bound, n_out).astype(self.dtype)
            self.grads["bias"] = None

    @property
    def weight(self):
        return self.params["weight"]

    @property
    def bias(self):
        return self.params.get("bias")


class Conv2d(WeightBiasLayer):
    """2-D convolution (cross-correlation) via im2col + GEMM.

    ``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True,
    dtype=np.float32, seed=None, rng=None)``. Input ``(N, C_in, H, W)`` ->
    output ``(N, C_out, Ho, Wo)``, ``Ho = floor((H + 2p - d(k-1) - 1)/s) + 1``.
    Weight ``(C_out, C_in, kh, kw)``, PyTorch's default uniform init.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True,
                 *, dtype=np.float32, seed=None, rng=None):
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size", minimum=1)
        self.stride = pair(stride, "stride", minimum=1)
        self.padding = pair(padding, "padding", minimum=0)
        self.dilation = pair(dilation, "dilation", minimum=1)
        self.dtype = float_dtype(dtype)
        self._init_weight_bias((self.out_channels, self.in_channels, *self.kernel_size), self.out_channels, bias,
                               make_rng(seed, rng))

    def forward(self, x):
        check_array(x, "x", ndim=4, channels=self.in_channels, dtype=self.dtype, finite=_scan_for_nan())
        self._fast = _grad_enabled and fastconv.enabled()
        if self._fast:  # image by image through a reused workspace, caching x, not its columns; same numbers
            y, cache = fastconv.conv2d_forward(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        elif _grad_enabled:
            y, cache = F.conv2d_forward(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        else:  # no backward to come: unfold band by band, never the whole column matrix
            y, cache = F.conv2d_inference(x, self.weight, self.bias, self.stride, self.padding, self.dilation), None
        self._remember(cache)
        self._out_shape = y.shape
        return y

    def backward(self, dy, input_grad=True):
        """``dy (N, C_out, Ho, Wo) -> dx (N, C_in, H, W)``; fills ``grads``. ``input_grad=False`` returns None for dx."""
        cache = self._take_cache()
        check_grad(dy, "dy", self._out_shape, self.dtype)
        backward = fastconv.conv2d_backward if self._fast else F.conv2d_backward
        dx, self.grads["weight"], db = backward(dy, cache, input_grad)
        if "bias" in self.params:
            self.grads["bias"] = db
        return dx

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, bias={'bias' in self.params}")


class ConvTranspose2d(WeightBiasLayer):
    """2-D transposed convolution ("deconvolution", a misnomer: it is the adjoint of a conv, not its inverse).

    ``ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
    dilation=1, bias=True, method="col2im" | "zero_insert", dtype=np.float32, seed=None, rng=None)``.
    Input ``(N, C_in, H, W)`` -> output ``(N, C_out, Ho, Wo)``,
    ``Ho = (H-1)s - 2p + d(k-1) + op + 1``. Weight ``(C_in, C_out, kh, kw)``.
    ``method`` picks the algorithm (see :func:`fcn_scratch.functional.conv_transpose2d_forward`);
    both compute the same numbers, ``col2im`` much faster.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 dilation=1, bias=True, method="col2im", *, dtype=np.float32, seed=None, rng=None):
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size", minimum=1)
        self.stride = pair(stride, "stride", minimum=1)
        self.padding = pair(padding, "padding", minimum=0)
        self.dilation = pair(dilation, "dilation", minimum=1)
        self.output_padding = F._check_output_padding(output_padding, self.stride, self.dilation)
        if method not in F.TRANSPOSED_METHODS:
            raise ValueError(f"method must be one of {F.TRANSPOSED_METHODS}, got {method!r}")
        self.method = method
        self.dtype = float_dtype(dtype)
        self._init_weight_bias((self.in_channels, self.out_channels, *self.kernel_size), self.out_channels, bias,
                               make_rng(seed, rng))

    def forward(self, x):
        check_array(x, "x", ndim=4, channels=self.in_channels, dtype=self.dtype, finite=_scan_for_nan())
        y, cache = F.conv_transpose2d_forward(
            x, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.dilation, self.method
        )
        self._remember(cache)
        self._out_shape = y.shape
        return y

    def backward(self, dy):
        cache = self._take_cache()
        check_grad(dy, "dy", self._out_shape, self.dtype)
        dx, self.grads["weight"], db = F.conv_transpose2d_backward(dy, cache)
        if "bias" in self.params:
            self.grads["bias"] = db
        return dx

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, output_padding={self.output_padding}, method={self.method!r}")


class MaxPool2d(Module):
    """Max-pooling, PyTorch semantics: ``-inf`` padding, first-max ties, optional ceil mode.

    ``MaxPool2d(kernel_size, stride=None, padding=0, *, dilation=1, return_indices=False, ceil_mode=False)``;
    ``stride`` defaults to ``kernel_size``. Input ``(N, C, H, W)`` -> ``(N, C, Ho, Wo)``;
    with ``return_indices=True`` forward returns ``(y, indices)``, the flat
    ``h*W + w`` position of each maximum (for :class:`fcn_scratch.upsample.MaxUnpool2d`).
    """

    def __init__(self, kernel_size, stride=None, padding=0, *, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size", minimum=1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", minimum=1)
        self.padding = pair(padding, "padding", minimum=0)
        self.dilation = pair(dilation, "dilation", minimum=1)
        F.check_pool_padding(self.padding, self.kernel_size)
        self.return_indices = bool(return_indices)
        self.ceil_mode = bool(ceil_mode)
        self.indices = None

    def forward(self, x):
        check_array(x, "x", ndim=4, finite=_scan_for_nan())
        y, cache = F.maxpool2d_forward(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                       self.ceil_mode)
        self._remember(cache)
        self._out_shape, self._dtype = y.shape, y.dtype
        self.indices = cache[1] if self.return_indices else None  # else only the cache keeps them, while needed
        return (y, self.indices) if self.return_indices else y

    def backward(self, dy):
        cache = self._take_cache()
        check_grad(dy, "dy", self._out_shape, self._dtype)
        return F.maxpool2d_backward(dy, cache)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, ceil_mode={self.ceil_mode}"


class ReLU(Module):
    """``y = max(x, 0)``; ``dx = dy * [x > 0]``. Any shape.

    The layer keeps its output ``y`` rather than the mask ``[x > 0]`` (the same
    as ``[y > 0]``): the next layer keeps ``y`` anyway, so the mask's memory is saved.
    ``ReLU(inplace=True)``, as PyTorch's: ``forward`` overwrites ``x`` with ``y`` and
    returns it, no new array; for an ``x`` nothing else reads afterwards (a
    convolution's fresh output: the FCN models use it so).
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x):
        check_array(x, "x", finite=_scan_for_nan())
        y = np.maximum(x, 0, out=x) if self.inplace else np.maximum(x, 0)
        self._remember(y)
        self._out_shape, self._dtype = y.shape, y.dtype
        return y

    def backward(self, dy):
        y = self._take_cache()
        check_grad(dy, "dy", self._out_shape, self._dtype)
        return F.relu_backward(dy, y > 0)


class Dropout2d(Module):
    """Channel dropout: each ``(n, c)`` plane is zeroed with probability ``p`` while training.

    Survivors are scaled by ``1/(1-p)`` (inverted dropout), so ``eval()`` is the identity.
    ``Dropout2d(p=0.5, *, seed=None, rng=None)``; input ``(N, C, H, W)``.
    """

    def __init__(self, p=0.5, *, seed=None, rng=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"p (drop probability) must be a number in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = make_rng(seed, rng)

    def forward(self, x):
        check_array(x, "x", ndim=4, finite=_scan_for_nan())
        y, mask = F.dropout2d_forward(x, self.p, self.training, self.rng)
        self._remember((mask,))  # mask is None when dropout is the identity (eval, p=0)
        self._out_shape, self._dtype = y.shape, y.dtype
        return y

    def backward(self, dy):
        (mask,) = self._take_cache()
        check_grad(dy, "dy", self._out_shape, self._dtype)
        return F.dropout2d_backward(dy, mask)

    def extra_repr(self):
        return f"p={self.p}"


def check_labels(labels, logits_shape, ignore_index, name="labels"):
    """Labels must be ints of shape ``(N, H, W)`` in ``[0, C)`` or equal to ``ignore_index``."""
    N, C, H, W = logits_shape
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of ints, got {type(labels).__name__}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class ids, got dtype {labels.dtype}")
    if labels.shape != (N, H, W):
        raise ValueError(f"{name} must have shape (N, H, W) = {(N, H, W)} to match the logits, got {labels.shape}")
    bad = (labels != ignore_index) & ((labels < 0) | (labels >= C))
    if bad.any():
        value = labels[bad].flat[0]
        raise ValueError(f"{name} contains {value}, outside [0, {C}) and not ignore_index={ignore_index}")
    return labels


class SoftmaxCrossEntropy(Module):
    """Per-pixel softmax cross-entropy, mean over pixels whose label is not ``ignore_index``.

    ``forward(logits (N, C, H, W), labels (N, H, W) int) -> float``;
    ``backward(dloss=1.0) -> dlogits (N, C, H, W)``. A batch whose pixels are all
    ignored gives loss 0 and a zero gradient.
    """

    def __init__(self, ignore_index=255):
        super().__init__()
        if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
            raise TypeError(f"ignore_index must be an int (a label value), got {ignore_index!r}")
        self.ignore_index = int(ignore_index)

    def forward(self, logits, labels):
        check_array(logits, "logits", ndim=4)
        check_labels(labels, logits.shape, self.ignore_index)
        loss, self._cache = F.softmax_cross_entropy_forward(logits, labels, self.ignore_index)
        return loss

    def backward(self, dloss=1.0):
        cache = self._take_cache()
        return F.softmax_cross_entropy_backward(cache, finite_scalar(dloss, "dloss"))

    def extra_repr(self):
        return f"ignore_index={self.ignore_index}"


class Crop(Module):
    """Cut a ``(h, w)`` window at a fixed ``offset`` (default top-left); backward pads zeros back.

    ``forward(x (N, C, H, W), size=(h, w)) -> (N, C, h, w)``. The FCN models use it to
    align an upsampled score map with a skip (see :mod:`fcn_scratch.models`).
    """

    def __init__(self, offset=(0, 0)):
        super().__init__()
        self.offset = pair(offset, "offset", minimum=0)

    def forward(self, x, size):
        check_array(x, "x", ndim=4, finite=False)
        y, cache = F.crop_forward(x, size, self.offset)
        self._remember(cache)
        self._out_shape, self._dtype = y.shape, y.dtype
        return y

    def backward(self, dy):
        cache = self._take_cache()
        check_grad(dy, "dy", self._out_shape, self._dtype)
        return F.crop_backward(dy, cache)


class Add(Module):
    """``y = a + b`` for a skip connection; ``backward(dy) -> (da, db)``, two fresh copies of ``dy``."""

    def forward(self, a, b):
        check_array(a, "a", finite=False)
        check_array(b, "b", finite=False, dtype=a.dtype)
        y, _ = F.add_forward(a, b)
        self._out_shape, self._dtype = y.shape, y.dtype
        self._remember(True)
        return y

    def backward(self, dy):
        self._take_cache()
        check_grad(dy, "dy", self._out_shape, self._dtype)
        return F.add_backward(dy)

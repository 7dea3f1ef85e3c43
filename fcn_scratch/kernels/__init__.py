"""Kernel dispatch: the Numba kernels or their NumPy twins, one switch for both.

Pick the backend with ``set_backend("numba" | "numpy")``, temporarily with
``with use_backend("numpy"): ...``, or for a whole process with the
environment variable ``FCN_SCRATCH_BACKEND=numpy``. Both give the same results
(tests compare them on every kernel); only the speed differs.

Signatures (the callers in :mod:`fcn_scratch.functional` validate every size;
these public wrappers check again, cheaply, that the arrays and sizes agree, so
no kernel -- which does not bounds-check -- ever sees an argument that could
make it read or write out of bounds, whoever calls it):

* ``im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo) -> cols (N, C*kh*kw, Ho*Wo)``
* ``col2im(cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo) -> x (N, C, H, W)``
* ``im2col_into(x, cols, ...)``, ``col2im_into(cols, x, ...)``: the same, written into a
  given array (a workspace reused between calls: no allocation, no page faults)
* ``maxpool_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo) -> (out, argmax)``
* ``maxpool_backward(dout, argmax, H, W) -> dx (N, C, H, W)``
* ``adam_update(param, grad, m, v, lr, beta1, beta2, eps, t)``: one Adam step, in place on
  ``param``, ``m`` and ``v`` (any shape, all alike)

Checked here: arrays are float32/float64 ``(N, C, H, W)`` (``argmax`` an integer
array of ``dout``'s shape), sizes are ints, kernel/stride/dilation >= 1,
padding >= 0, ``cols`` has the shape ``(N, C*kh*kw, Ho*Wo)`` the other
arguments imply, max-pool outputs are no larger than ceil mode allows, and every
``argmax`` lies in ``[0, H*W)`` or is -1 (a window of padding only). Each check is
on shapes and scalars except the last, one ``min``/``max`` pass over ``argmax``.
"""

from __future__ import annotations

import contextlib
import os

import numba
import numpy as np

from . import numba_kernels, numpy_kernels

BACKENDS = ("numba", "numpy")
_MODULES = {"numba": numba_kernels, "numpy": numpy_kernels}


def _check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    return name


_backend = _check_backend(os.environ.get("FCN_SCRATCH_BACKEND", "numba").strip().lower() or "numba")


def get_backend() -> str:
    """The backend in use: ``"numba"`` or ``"numpy"``."""
    return _backend


def set_backend(name: str) -> str:
    """Switch every kernel to ``name`` (``"numba"`` or ``"numpy"``); returns the previous one."""
    global _backend
    previous, _backend = _backend, _check_backend(name)
    return previous


@contextlib.contextmanager
def use_backend(name: str):
    """``with use_backend("numpy"): ...`` runs the block on that backend."""
    previous = set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def _contig(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a)


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_MAX_ELEMENTS = 2**62  # far beyond any real array; keeps every index product inside int64


def _floats(a, name, ndim):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if a.dtype not in _FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got dtype {a.dtype}")
    return a


def _ints(names, values, minimum):
    out = []
    for name, v in zip(names.split(), values):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {v!r}")
        if not minimum <= v <= 2**31:
            raise ValueError(f"{name} must be in [{minimum}, 2**31], got {v}")
        out.append(int(v))
    return out


def _geometry(kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    # fast path for the everyday call (plain ints in range): a few microseconds matter on 20-us kernels
    if (type(kh) is int and type(kw) is int and type(sh) is int and type(sw) is int and type(ph) is int
            and type(pw) is int and type(dh) is int and type(dw) is int and type(Ho) is int and type(Wo) is int
            and min(kh, kw, sh, sw, dh, dw) >= 1 and min(ph, pw, Ho, Wo) >= 0
            and max(kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo) <= 2**31):
        return
    _ints("kh kw sh sw dh dw", (kh, kw, sh, sw, dh, dw), 1)
    _ints("ph pw Ho Wo", (ph, pw, Ho, Wo), 0)


def _elements(*sizes):
    n = 1
    for s in sizes:
        n *= int(s)
    if n > _MAX_ELEMENTS:
        raise ValueError(f"an array of {n} elements is too large")
    return n


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    _floats(x, "x", 4)
    _geometry(kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    _elements(x.shape[0], x.shape[1], kh, kw, Ho, Wo)  # the columns it allocates
    return _MODULES[_backend].im2col(_contig(x), kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)


def col2im(cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    _floats(cols, "cols", 3)
    _geometry(kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    N, C = _ints("N C", (N, C), 0)
    H, W = _ints("H W", (H, W), 1)
    _elements(N, C, H, W)
    expected = (N, C * kh * kw, Ho * Wo)
    if cols.shape != expected:  # the kernel reads cols by these sizes: a smaller array would be overrun
        raise ValueError(f"cols must have shape (N, C*kh*kw, Ho*Wo) = {expected}, got {cols.shape}")
    return _MODULES[_backend].col2im(_contig(cols), N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)


def _workspace(a, name, shape, dtype):
    """``a`` must be a writeable C-contiguous array of exactly ``shape`` and ``dtype``: a kernel fills it blindly."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.shape != tuple(shape) or a.dtype != dtype:
        raise ValueError(f"{name} must have shape {tuple(shape)} and dtype {dtype}, got {a.shape} {a.dtype}")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name} must be a writeable C-contiguous array")
    return a


def im2col_into(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """:func:`im2col` into a given ``cols (N, C*kh*kw, Ho*Wo)`` of ``x``'s dtype (a reused workspace); returns ``cols``."""
    _floats(x, "x", 4)
    _geometry(kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    N, C = x.shape[:2]
    _workspace(cols, "cols", (N, _elements(C, kh, kw), _elements(Ho, Wo)), x.dtype)
    _MODULES[_backend].im2col_into(_contig(x), cols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    return cols


def col2im_into(cols, x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """:func:`col2im` into a given ``x (N, C, H, W)`` of ``cols``' dtype (overwritten); returns ``x``."""
    _floats(cols, "cols", 3)
    _floats(x, "x", 4)
    _geometry(kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    N, C = x.shape[:2]
    _workspace(x, "x", x.shape, cols.dtype)
    expected = (N, C * kh * kw, Ho * Wo)
    if cols.shape != expected:  # the kernel reads cols by these sizes: a smaller array would be overrun
        raise ValueError(f"cols must have shape (N, C*kh*kw, Ho*Wo) = {expected}, got {cols.shape}")
    _MODULES[_backend].col2im_into(_contig(cols), x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    return x


def _pool_extent(size, k, s, p, d):
    """Largest output length whose windows all start inside the input or its left padding (ceil mode).

    ``functional.pool_output_size(..., ceil_mode=True)``, repeated here so the kernels need no import from above.
    """
    out = (size + 2 * p - d * (k - 1) - 1 + s - 1) // s + 1
    if out > 0 and (out - 1) * s >= size + p:
        out -= 1
    return out


def maxpool_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    _floats(x, "x", 4)
    _geometry(kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    H, W = x.shape[2:]
    if H < 1 or W < 1:
        raise ValueError(f"x must have H, W >= 1, got shape {x.shape}")
    # the unrolled 2x2 kernel reads each window's first tap unchecked: it must lie inside the input
    most = (_pool_extent(H, kh, sh, ph, dh), _pool_extent(W, kw, sw, pw, dw))
    if Ho > most[0] or Wo > most[1]:
        raise ValueError(f"output size {(Ho, Wo)} is larger than the {most} windows that fit input {(H, W)} "
                         f"(kernel {(kh, kw)}, stride {(sh, sw)}, padding {(ph, pw)}, dilation {(dh, dw)})")
    return _MODULES[_backend].maxpool_forward(_contig(x), kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)


def _index_range_py(flat):
    """``(min, max)`` of a non-empty 1-D integer array in one pass (NumPy's ``min()`` + ``max()`` take two)."""
    lo = hi = flat[0]
    for i in range(flat.size):
        v = flat[i]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    return lo, hi


_index_range = numba.njit(cache=True, nogil=True)(_index_range_py)


def _argmax_range(argmax):
    """Smallest and largest index; measured 2-3x faster compiled than ``argmax.min(), argmax.max()``."""
    if _backend == "numba" and not numba.config.DISABLE_JIT:
        lo, hi = _index_range(argmax.reshape(-1))
    else:
        lo, hi = argmax.min(), argmax.max()
    return int(lo), int(hi)


def maxpool_backward(dout, argmax, H, W):
    _floats(dout, "dout", 4)
    if not isinstance(argmax, np.ndarray) or argmax.dtype.kind not in "iu" or argmax.shape != dout.shape:
        raise TypeError(f"argmax must be an integer array of dout's shape {dout.shape}, got "
                        f"{getattr(argmax, 'dtype', type(argmax).__name__)} of shape {getattr(argmax, 'shape', None)}")
    H, W = _ints("H W", (H, W), 1)
    _elements(dout.shape[0], dout.shape[1], H, W)
    argmax = _contig(argmax)
    if argmax.size:
        lo, hi = _argmax_range(argmax)
        if lo < -1 or hi >= H * W:  # each index is written to unchecked: dx_plane[argmax] += dout
            raise ValueError(f"argmax must hold flat indices in [0, H*W) = [0, {H * W}) or -1, "
                             f"got values in [{lo}, {hi}]")
    return _MODULES[_backend].maxpool_backward(_contig(dout), argmax, H, W)


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, t):
    """One Adam step in place: ``m``, ``v`` updated, then ``param -= lr m_hat / (sqrt(v_hat) + eps)``.

    ``param``, ``grad``, ``m``, ``v``: C-contiguous float32 or float64 arrays of one shape
    and dtype (``grad`` is made so if it is not); ``t`` the step count after this step
    (>= 1), for the bias corrections ``m_hat = m / (1 - beta1^t)``, ``v_hat = v / (1 - beta2^t)``.
    The scalars are rounded to the arrays' dtype first, so both backends do every
    operation in that dtype, in the same order: the same bits.
    """
    for name, a in (("param", param), ("m", m), ("v", v)):
        if not isinstance(a, np.ndarray) or a.dtype not in _FLOATS or not a.flags.c_contiguous:
            raise TypeError(f"{name} must be a C-contiguous float32 or float64 array, got "
                            f"{getattr(a, 'dtype', type(a).__name__)}")
        if a.shape != param.shape or a.dtype != param.dtype:
            raise ValueError(f"{name} must have param's shape {param.shape} and dtype {param.dtype}, "
                             f"got {a.shape} {a.dtype}")
    if not isinstance(grad, np.ndarray) or grad.shape != param.shape:
        raise ValueError(f"grad must be an array of param's shape {param.shape}, got "
                         f"{getattr(grad, 'shape', type(grad).__name__)}")
    if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)) or t < 1:
        raise ValueError(f"t must be an int >= 1, got {t!r}")
    grad = np.ascontiguousarray(grad, dtype=param.dtype)
    f = param.dtype.type
    _MODULES[_backend].adam_update(param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1), f(lr),
                                   f(beta1), f(1 - beta1), f(beta2), f(1 - beta2), f(1 - beta1**t), f(1 - beta2**t),
                                   f(eps))


__all__ = [
    "BACKENDS",
    "get_backend",
    "set_backend",
    "use_backend",
    "im2col",
    "col2im",
    "im2col_into",
    "col2im_into",
    "maxpool_forward",
    "maxpool_backward",
    "adam_update",
]

"""Kernel dispatch: the Numba kernels or their NumPy twins, one switch for both.

Pick the backend with ``set_backend("numba" | "numpy")``, temporarily with
``with use_backend("numpy"): ...``, or for a whole process with the
environment variable ``FCN_SCRATCH_BACKEND=numpy``. Both give the same results
(tests compare them on every kernel); only the speed differs.

Signatures (the callers in :mod:`fcn_scratch.functional` validate every size,
so the kernels never see arguments that could index out of bounds):

* ``im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo) -> cols (N, C*kh*kw, Ho*Wo)``
* ``col2im(cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo) -> x (N, C, H, W)``
* ``maxpool_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo) -> (out, argmax)``
* ``maxpool_backward(dout, argmax, H, W) -> dx (N, C, H, W)``
"""

from __future__ import annotations

import contextlib
import os

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


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    return _MODULES[_backend].im2col(_contig(x), kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)


def col2im(cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    return _MODULES[_backend].col2im(_contig(cols), N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)


def maxpool_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    return _MODULES[_backend].maxpool_forward(_contig(x), kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)


def maxpool_backward(dout, argmax, H, W):
    return _MODULES[_backend].maxpool_backward(_contig(dout), _contig(argmax), H, W)


__all__ = [
    "BACKENDS",
    "get_backend",
    "set_backend",
    "use_backend",
    "im2col",
    "col2im",
    "maxpool_forward",
    "maxpool_backward",
]

"""Argument checks shared by every public entry point.

Each helper raises ``ValueError`` or ``TypeError`` whose message names the
argument and says what was expected, so a learner sees *which* input is wrong
before anything reaches a Numba kernel (which would not bounds-check for them).
"""

from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def pair(value, name: str, *, minimum: int = 0) -> tuple[int, int]:
    """Return ``value`` as an ``(h, w)`` pair of ints >= ``minimum``.

    Accepts an int or a length-2 tuple/list, like PyTorch's ``_pair``.
    """
    # the everyday call, a layer's own (h, w) of plain ints: 0.3 us instead of 5 (the ABC checks below),
    # which adds up to about 2 % of a training step (three or four calls per convolution, forward and backward)
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int \
            and value[0] >= minimum and value[1] >= minimum:
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, numbers.Integral):
        value = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in value
    ):
        value = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints (h, w), got {value!r}")
    if min(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum} in both dimensions, got {value}")
    return value


def positive_int(value, name: str) -> int:
    """An int >= 1 (channel counts, class counts)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Normalise a dtype argument; only float32 and float64 are supported."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def check_array(
    x,
    name: str,
    *,
    ndim: int | None = None,
    channels: int | None = None,
    dtype: np.dtype | None = None,
    finite: bool = True,
    allow_empty: bool = False,
) -> np.ndarray:
    """Check a float array's type, rank, channel count (axis 1), dtype and values.

    ``ndim=4`` means ``(N, C, H, W)``; the message spells that layout out.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        layout = {4: " (N, C, H, W)", 3: " (N, H, W)", 2: " (H, W)"}.get(ndim, "")
        raise ValueError(f"{name} must have {ndim} dimensions{layout}, got shape {x.shape}")
    if x.dtype not in FLOAT_DTYPES:  # float16 / longdouble would reach a Numba kernel that cannot type them
        raise TypeError(f"{name} must be a floating-point array (float32 or float64), got dtype {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but this layer holds {np.dtype(dtype)}; "
            f"convert with {name}.astype(np.{np.dtype(dtype).name})"
        )
    if not allow_empty and x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}); expected at least one element")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels (axis 1), got shape {x.shape}")
    if finite and not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def check_grad(dy, name: str, expected_shape, dtype) -> np.ndarray:
    """Check an upstream gradient against the shape the forward pass produced."""
    if not isinstance(dy, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(dy).__name__}")
    if dy.shape != tuple(expected_shape):
        raise ValueError(f"{name} must have the forward output's shape {tuple(expected_shape)}, got {dy.shape}")
    if dy.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating-point array (float32 or float64), got dtype {dy.dtype}")
    if dtype is not None and dy.dtype != dtype:
        raise TypeError(f"{name} has dtype {dy.dtype}, expected {np.dtype(dtype)}")
    return dy


def finite_scalar(value, name: str) -> float:
    """A real, finite number (an int, a float, or a 0-d / one-element float array)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.ndarray)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if isinstance(value, np.ndarray):
        if value.size != 1 or value.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be a scalar (the loss is a scalar), got an array of shape {value.shape}")
        value = value.reshape(())[()]
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def need_cache(cache, layer: str):
    """Raise a clear error when ``backward`` comes before ``forward``."""
    if cache is None:
        raise ValueError(
            f"{layer}.backward() called before forward() (or after a forward under no_grad()): run forward first"
        )
    return cache

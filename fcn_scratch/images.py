"""Image files in and out, through Pillow, never unbounded.

A PNG can be tiny on disk and enormous in memory: 388 KB of zlib-compressed
zero rows declare 20000 x 20000 pixels (1.2 GB as 8-bit RGB, 4.8 GB as float32).
``Image.open`` only parses the header, so the size is checked there, *before*
any pixel is decoded, against ``max_pixels`` (default :data:`MAX_PIXELS`, 50
megapixels: an 8000 x 6250 photograph fits; PASCAL VOC's images are 500 x 375).
Pillow's own bomb guard (``DecompressionBombWarning`` / ``Error``) is turned
into the same one-line :class:`ImageError`.

* :func:`read_rgb` -> ``(H, W, 3)`` float32 in ``[0, 1]`` (greyscale, palette,
  RGBA, 1-bit and 16-bit files are converted; alpha is dropped).
* :func:`read_mask` -> ``(H, W)`` uint8 label ids: a palette PNG's *indices*
  (PASCAL VOC's ``SegmentationClass`` files, 255 = void), or an 8-bit grey PNG's
  values; never converted to colours.
* :func:`image_size` -> ``(H, W)`` from the header alone.
* :func:`write_png` writes an ``(H, W, 3)`` uint8 array atomically.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings

import numpy as np

MAX_PIXELS = 50_000_000  # refuse larger images before decoding them (see the module docstring)


class ImageError(ValueError):
    """An image file that cannot be read (missing, not an image, too large, unsupported mode)."""


def _limit(max_pixels) -> int:
    if max_pixels is None:
        return MAX_PIXELS
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive int, got {max_pixels!r}")
    return int(max_pixels)


def _refuse_size(path, w, h, limit):
    raise ImageError(f"image {os.fspath(path)!r} is {w}x{h} = {w * h:,} pixels, above the limit of "
                     f"{limit:,} pixels (fcn_scratch.images.MAX_PIXELS); refusing to decode it")


def _png_size(path):
    """``(width, height)`` from a PNG's IHDR chunk (24 bytes read), or None for another format."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) == 24 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return None


def _open(path, max_pixels):
    """Open ``path`` lazily (header only) and check its size; the caller decodes and closes it."""
    from PIL import Image

    limit = _limit(max_pixels)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ImageError(f"input image {path!r} not found" if not os.path.exists(path)
                         else f"input image {path!r} is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refused at its own limit (about 89 or 179 megapixels): say it our way, with the size
        wh = _png_size(path)
        if wh is not None:
            _refuse_size(path, *wh, limit)
        pixels = [int(v) for v in re.findall(r"\d+", str(exc))[:1]]
        raise ImageError(f"image {path!r} has {pixels[0]:,} pixels, above the limit of {limit:,} pixels "
                         f"(fcn_scratch.images.MAX_PIXELS); refusing to decode it" if pixels else
                         f"image {path!r} is a decompression bomb ({exc}); refusing to decode it") from None
    except Exception as exc:  # UnidentifiedImageError, OSError, SyntaxError from a broken header, ...
        raise ImageError(f"cannot read image {path!r}: {type(exc).__name__}: {exc}") from None
    w, h = im.size
    if w < 1 or h < 1:
        im.close()
        raise ImageError(f"image {path!r} is empty ({w}x{h})")
    if w * h > limit:
        im.close()
        _refuse_size(path, w, h, limit)
    return im


def _decode(im, path, mode=None):
    """Decode the pixels (the only unbounded step, so it runs after the size check)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()
            return im.convert(mode) if mode else im
    except Exception as exc:  # truncated data, bad CRC, ...
        raise ImageError(f"cannot read image {os.fspath(path)!r}: {type(exc).__name__}: {exc}") from None


def image_size(path, *, max_pixels=None) -> tuple[int, int]:
    """``(H, W)`` of an image file, from its header (no pixel is decoded); refuses files above ``max_pixels``."""
    im = _open(path, max_pixels)
    try:
        return im.size[1], im.size[0]
    finally:
        im.close()


def read_rgb(path, *, max_pixels=None) -> np.ndarray:
    """An image file -> ``(H, W, 3)`` float32 in ``[0, 1]``.

    8-bit channels are divided by 255 (as matplotlib's ``imread`` does for PNGs),
    16-bit greyscale by 65535; greyscale is repeated into R, G and B; palette
    images are looked up; alpha is dropped (not composited). Raises
    :class:`ImageError` for a missing or unreadable file, or one with more than
    ``max_pixels`` pixels (default :data:`MAX_PIXELS`), checked before decoding.
    """
    im = _open(path, max_pixels)
    try:
        mode = im.mode
        if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit greyscale PNGs open as I;16 (or I)
            grey = np.asarray(_decode(im, path), dtype=np.float64)
            arr = np.clip(grey / 65535.0, 0.0, 1.0).astype(np.float32)
            return np.repeat(arr[:, :, None], 3, axis=2)
        if mode == "F":
            grey = np.asarray(_decode(im, path), dtype=np.float32)
            if not np.isfinite(grey).all():
                raise ImageError(f"image {os.fspath(path)!r} holds NaN or inf pixels")
            return np.repeat(np.clip(grey, 0.0, 1.0)[:, :, None], 3, axis=2)
        rgb = np.asarray(_decode(im, path, None if mode == "RGB" else "RGB"))
    finally:
        im.close()
    return np.divide(rgb, 255, dtype=np.float32)


MASK_MODES = ("P", "L", "1", "I;16", "I;16L", "I;16B", "I")


def read_mask(path, *, max_pixels=None) -> np.ndarray:
    """A label image -> ``(H, W)`` uint8 class ids (255 = void in PASCAL VOC).

    A palette (``P``) PNG gives its palette *indices*, not their colours; an
    8-bit grey (``L``) PNG its values; a 1-bit one 0/1; a 16-bit grey one its
    values if all are below 256. Colour (RGB/RGBA) masks are refused: mapping
    colours back to classes needs a palette this function does not guess.
    """
    im = _open(path, max_pixels)
    try:
        mode = im.mode
        if mode not in MASK_MODES:
            raise ImageError(f"mask {os.fspath(path)!r} is a {mode} image; expected a palette (P) or "
                             f"8-bit greyscale (L) PNG of class ids")
        arr = np.asarray(_decode(im, path, "L" if mode == "1" else None))
    finally:
        im.close()
    if mode == "1":
        return (arr > 0).astype(np.uint8)
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ImageError(f"mask {os.fspath(path)!r} holds values up to {int(arr.max())}; "
                             f"class ids must fit in 0..255")
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------- writing


def check_writable_file(path, *, suffixes=None, what="output") -> str:
    """Fail early, before any work, if ``path`` cannot be written: returns the path.

    The folder must exist and accept a new file (tested by creating and deleting
    one, which also covers read-only mounts and ACLs that ``os.access`` misses),
    ``path`` must not be a directory, and its extension must be one of
    ``suffixes`` (lower case, with the dot) when given. Raises ``ValueError``.
    """
    path = os.fspath(path)
    if suffixes is not None and os.path.splitext(path)[1].lower() not in suffixes:
        raise ValueError(f"{what} {path!r} must end in {' or '.join(suffixes)}")
    if os.path.isdir(path):
        raise ValueError(f"{what} {path!r} is a directory; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"cannot write {what} {path!r}: folder {folder!r} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
    except OSError as exc:
        raise ValueError(f"cannot write {what} {path!r}: folder {folder!r} is not writable "
                         f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)
    return path


def write_atomic(path, write, *, suffix="") -> str:
    """Call ``write(file object)`` on a unique temporary file beside ``path``, then ``os.replace`` it.

    A reader sees the old file or the new one, never half of one; a failure
    leaves no temporary file behind.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_png(path, rgb) -> str:
    """Write ``rgb (H, W, 3)`` uint8 as a PNG, atomically (see :func:`write_atomic`)."""
    from PIL import Image

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be an (H, W, 3) uint8 array, got shape {rgb.shape} dtype {rgb.dtype}")
    image = Image.fromarray(np.ascontiguousarray(rgb))
    return write_atomic(path, lambda f: image.save(f, format="PNG"), suffix=".png")


__all__ = ["MAX_PIXELS", "ImageError", "image_size", "read_rgb", "read_mask", "check_writable_file",
           "write_atomic", "write_png"]

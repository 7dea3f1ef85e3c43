"""Image files in and out, through Pillow, never unbounded, in a few well-known formats only.

A PNG can be tiny on disk and enormous in memory: 388 KB of zlib-compressed
zero rows declare 20000 x 20000 pixels (1.2 GB as 8-bit RGB, 4.8 GB as float32).
``Image.open`` only parses the header, so the size is checked there, *before*
any pixel is decoded, against ``max_pixels`` (default :data:`MAX_PIXELS`, 50
megapixels: an 8000 x 6250 photograph fits; PASCAL VOC's images are 500 x 375).

Pillow has a bomb guard of its own (``Image.MAX_IMAGE_PIXELS``, about 89.5
megapixels: a warning above it, an error above twice it). Our check is the one
that decides: for the duration of a read Pillow's limit is raised to at least
``max_pixels`` (and put back afterwards), so ``max_pixels=200_000_000`` really
admits a 95-megapixel image, and when Pillow does refuse, the same one-line
:class:`ImageError` states the limit actually applied, ``max_pixels``. Raising
a module-wide setting is not thread-local: while a read with a large
``max_pixels`` runs, other code calling Pillow in another thread sees the
raised limit too (concurrent reads through this module are safe: the limit in
force is the largest of the reads in progress, and Pillow's own is restored
when the last one ends).

Only :data:`FORMATS` are opened (PNG, JPEG, BMP, GIF, TIFF, PPM/PGM/PBM, WebP):
the formats photographs, datasets and masks come in. A file in any other
format Pillow knows is refused, named with its format, before Pillow's plugin
for it parses a byte: EPS, for one, hands the file to Ghostscript, an
interpreter of the PostScript inside, and the rarer decoders (FITS, PSD, ...)
are attack surface nobody training an FCN needs. The extension plays no part:
an EPS file named ``photo.jpg`` is still refused.

Pixels are read *as stored*. EXIF orientation is not applied: a segmentation
image and its mask must stay aligned pixel for pixel, and masks (PASCAL VOC's
palette PNGs) carry no EXIF, so rotating a photograph by its EXIF tag alone
would misalign the pair. A phone JPEG tagged "rotate 90" therefore reads in
its sensor orientation; rotate such files before labelling them.

* :func:`read_rgb` -> ``(H, W, 3)`` float32 in ``[0, 1]`` (greyscale, palette,
  RGBA, 1-bit and 16-bit files are converted; alpha is dropped). Integer
  (``I``) images must hold values in 0..65535 (divided by 65535) and float
  (``F``) images values in ``[0, 1]`` (taken as they are); other values are
  refused rather than silently clipped, since their scale cannot be guessed.
* :func:`read_mask` -> ``(H, W)`` uint8 label ids: a palette PNG's *indices*
  (PASCAL VOC's ``SegmentationClass`` files, 255 = void), or an 8-bit grey PNG's
  values; never converted to colours.
* :func:`image_size` -> ``(H, W)`` from the header alone.
* :func:`write_png` writes an ``(H, W, 3)`` uint8 array atomically.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import warnings

import numpy as np

from .atomic import write_atomic

MAX_PIXELS = 50_000_000  # refuse larger images before decoding them (see the module docstring)

#: The file formats read, by Pillow's names ("JPEG" includes multi-picture camera JPEGs, "MPO";
#: "PPM" includes PGM and PBM). Everything else is refused before it is parsed (module docstring).
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "PPM", "WEBP")


class ImageError(ValueError):
    """An image file that cannot be read (missing, not an image, too large, unsupported format or mode)."""


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


def _format_of(path):
    """Pillow's name for the format of ``path`` from its first 16 bytes, by the plugins' own prefix tests
    (which parse nothing), or None if no plugin claims it; for the message only (some tests are loose)."""
    from PIL import Image

    Image.init()
    try:
        with open(path, "rb") as f:
            prefix = f.read(16)
    except OSError:
        return None
    for name, (_, accept) in Image.OPEN.items():
        if accept is None:  # a plugin without a prefix test would claim any file
            continue
        try:
            claimed = accept(prefix)
        except Exception:
            continue
        if claimed and not isinstance(claimed, str):  # a string is Pillow's "maybe" (a warning)
            return name
    return None


_pillow_guard = threading.Lock()
_pillow_reads: list = []     # the limits of the reads in progress, in any thread
_pillow_own = [None]         # Image.MAX_IMAGE_PIXELS as it was before the first of them


@contextlib.contextmanager
def _pillow_limit(limit):
    """Raise Pillow's bomb limit to at least ``limit`` while the block runs (see the module docstring)."""
    from PIL import Image

    def apply():
        own = _pillow_own[0]
        Image.MAX_IMAGE_PIXELS = own if own is None or not _pillow_reads else max(own, *_pillow_reads)

    with _pillow_guard:
        if not _pillow_reads:
            _pillow_own[0] = Image.MAX_IMAGE_PIXELS
        _pillow_reads.append(limit)
        apply()
    try:
        yield
    finally:
        with _pillow_guard:
            _pillow_reads.remove(limit)
            apply()


def _open(path, limit):
    """Open ``path`` lazily (header only) and check its format and size; the caller decodes and closes it."""
    from PIL import Image

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ImageError(f"input image {path!r} not found" if not os.path.exists(path)
                         else f"input image {path!r} is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path, formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refused at its own limit, which is at least ours: say it our way, with the size
        wh = _png_size(path)
        if wh is not None:
            _refuse_size(path, *wh, limit)
        pixels = [int(v) for v in re.findall(r"\d+", str(exc))[:1]]
        raise ImageError(f"image {path!r} has {pixels[0]:,} pixels, above the limit of {limit:,} pixels "
                         f"(fcn_scratch.images.MAX_PIXELS); refusing to decode it" if pixels else
                         f"image {path!r} is a decompression bomb ({exc}); refusing to decode it") from None
    except Image.UnidentifiedImageError as exc:
        fmt = _format_of(path)
        if fmt is not None and fmt not in FORMATS:
            raise ImageError(f"image {path!r} is in {fmt} format; fcn_scratch reads only {', '.join(FORMATS)} "
                             f"(fcn_scratch.images.FORMATS)") from None
        raise ImageError(f"cannot read image {path!r}: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # OSError, SyntaxError from a broken header, ...
        raise ImageError(f"cannot read image {path!r}: {type(exc).__name__}: {exc}") from None
    w, h = im.size
    if w < 1 or h < 1:
        im.close()
        raise ImageError(f"image {path!r} is empty ({w}x{h})")
    if w * h > limit:
        im.close()
        _refuse_size(path, w, h, limit)
    return im


@contextlib.contextmanager
def _image(path, max_pixels):
    """The opened, size-checked image, closed after the block; Pillow's limit raised to ours throughout
    (some decoders check it again while loading)."""
    limit = _limit(max_pixels)
    with _pillow_limit(limit):
        im = _open(path, limit)
        try:
            yield im
        finally:
            im.close()


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
    with _image(path, max_pixels) as im:
        return im.size[1], im.size[0]


def _out_of_range(path, mode, values, lo, hi, scale):
    raise ImageError(f"image {os.fspath(path)!r} is a {mode} image with values in [{values.min():g}, "
                     f"{values.max():g}], outside {lo}..{hi}; refusing to guess its scale ({scale})")


def read_rgb(path, *, max_pixels=None) -> np.ndarray:
    """An image file -> ``(H, W, 3)`` float32 in ``[0, 1]``.

    8-bit channels are divided by 255 (as matplotlib's ``imread`` does for PNGs),
    16-bit and 32-bit integer greyscale by 65535 (values must lie in 0..65535),
    float greyscale is taken as it is (values must lie in ``[0, 1]``); greyscale
    is repeated into R, G and B; palette images are looked up; alpha is dropped
    (not composited); EXIF orientation is not applied (see the module docstring).
    Raises :class:`ImageError` for a missing or unreadable file, one in another
    format than :data:`FORMATS`, values out of range, or more than ``max_pixels``
    pixels (default :data:`MAX_PIXELS`), checked before decoding.
    """
    with _image(path, max_pixels) as im:
        mode = im.mode
        if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit greyscale PNGs open as I;16 (or I)
            grey = np.asarray(_decode(im, path), dtype=np.float64)
            if grey.size and (grey.min() < 0 or grey.max() > 65535):
                _out_of_range(path, mode, grey, 0, 65535, "16-bit greyscale is divided by 65535")
            return np.repeat((grey / 65535.0).astype(np.float32)[:, :, None], 3, axis=2)
        if mode == "F":
            grey = np.asarray(_decode(im, path), dtype=np.float32)
            if not np.isfinite(grey).all():
                raise ImageError(f"image {os.fspath(path)!r} holds NaN or inf pixels")
            if grey.size and (grey.min() < 0 or grey.max() > 1):
                _out_of_range(path, mode, grey, 0, 1, "float pixels are read as they are; rescale them to [0, 1]")
            return np.repeat(grey[:, :, None], 3, axis=2)
        rgb = np.asarray(_decode(im, path, None if mode == "RGB" else "RGB"))
    return np.divide(rgb, 255, dtype=np.float32)


MASK_MODES = ("P", "L", "1", "I;16", "I;16L", "I;16B", "I")


def read_mask(path, *, max_pixels=None) -> np.ndarray:
    """A label image -> ``(H, W)`` uint8 class ids (255 = void in PASCAL VOC).

    A palette (``P``) PNG gives its palette *indices*, not their colours; an
    8-bit grey (``L``) PNG its values; a 1-bit one 0/1; a 16-bit grey one its
    values if all are below 256. Colour (RGB/RGBA) masks are refused: mapping
    colours back to classes needs a palette this function does not guess.
    """
    with _image(path, max_pixels) as im:
        mode = im.mode
        if mode not in MASK_MODES:
            raise ImageError(f"mask {os.fspath(path)!r} is a {mode} image; expected a palette (P) or "
                             f"8-bit greyscale (L) PNG of class ids")
        arr = np.asarray(_decode(im, path, "L" if mode == "1" else None))
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


def write_png(path, rgb) -> str:
    """Write ``rgb (H, W, 3)`` uint8 as a PNG, atomically (see :func:`write_atomic`)."""
    from PIL import Image

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be an (H, W, 3) uint8 array, got shape {rgb.shape} dtype {rgb.dtype}")
    image = Image.fromarray(np.ascontiguousarray(rgb))
    return write_atomic(path, lambda f: image.save(f, format="PNG"), suffix=".png")


__all__ = ["MAX_PIXELS", "FORMATS", "ImageError", "image_size", "read_rgb", "read_mask", "check_writable_file",
           "write_png"]

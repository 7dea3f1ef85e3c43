"""Atomic file writes: a reader sees the old file or the new one, never half of one.

One recipe, used for every file the engine writes (checkpoints, JSON, CSV,
PNG, HTML, exported PyTorch weights): write to a unique temporary file in the
same directory, flush and ``fsync`` it, give it the usual permissions, then
``os.replace`` it over the target (atomic on POSIX and Windows). A unique name,
not a fixed ``<path>.tmp``, so two processes writing the same path never write
into each other's temporary file. On any failure (a full disk, a file-size
limit, a signal) the temporary file is removed and the old file is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

TMP_PREFIX = ".tmp-"  # every temporary file starts with it (a run directory's cleanup looks for it)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path, write, *, suffix="") -> str:
    """Call ``write(binary file object)`` on a temporary file beside ``path``, then ``os.replace`` it; returns ``path``.

    ``suffix`` ends the temporary file's name (some writers look at it, e.g.
    ``np.savez`` appends ``.npz`` to a name without it). Raises ``OSError`` as the
    OS reported it, after removing the temporary file.
    """
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_bytes_atomic(path, data: bytes, *, suffix="") -> str:
    """:func:`write_atomic` of ``data``."""
    return write_atomic(path, lambda f: f.write(data), suffix=suffix)


__all__ = ["write_atomic", "write_bytes_atomic", "TMP_PREFIX"]

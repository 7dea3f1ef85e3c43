"""Checkpoints: one ``.npz`` file holding a model's architecture, weights, class names and training metadata.

Layout of the archive (read it with ``np.load(path, allow_pickle=False)``):

* ``__fcn_scratch__`` a JSON string: ``{"format": "fcn_scratch.checkpoint", "version": 1,
  "arch": "FCN8s", "config": {constructor arguments}, "class_names": [...],
  "training": {metadata}, "keys": [weight names]}``
* ``param/<name>`` one array per ``state_dict()`` entry, e.g. ``param/conv1_1.weight``.

No pickles anywhere: the file can come from a stranger and still be loaded safely.
Writes are atomic (a temporary file in the same directory, then ``os.replace``),
so an interrupted save never leaves a half-written checkpoint behind, and an
older checkpoint at the same path survives intact.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

HEADER = "__fcn_scratch__"
FORMAT = "fcn_scratch.checkpoint"
VERSION = 1
PREFIX = "param/"


class CheckpointError(ValueError):
    """The file is not a readable fcn_scratch checkpoint, or does not match its architecture."""


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.dtype) or (isinstance(obj, type) and issubclass(obj, np.generic)):
        return np.dtype(obj).name
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in checkpoint metadata (JSON only)")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def architectures() -> dict:
    """The models a checkpoint can name: ``{"FCN32s": FCN32s, "FCN16s": ..., "FCN8s": ...}``."""
    from . import models

    return {name: getattr(models, name) for name in ("FCN32s", "FCN16s", "FCN8s")}


def model_config(model) -> dict:
    """The constructor arguments of ``model``, from its ``config`` attribute (a dict or a method)."""
    config = getattr(model, "config", None)
    if callable(config):
        config = config()
    if not isinstance(config, dict):
        raise TypeError(f"{type(model).__name__} has no config dict; pass config= (its constructor arguments)")
    return dict(config)


def save_checkpoint(path, model, *, class_names=None, training=None, arch=None, config=None) -> str:
    """Write ``model`` to ``path`` (``.npz``) atomically; returns the path.

    ``arch`` defaults to the class name, ``config`` to ``model.config``; both
    must let :func:`load_checkpoint` rebuild the model as ``arch(**config)``.
    ``training`` is any JSON-able metadata (epochs, seed, data settings, metrics).
    """
    path = os.fspath(path)
    arch = type(model).__name__ if arch is None else str(arch)
    config = model_config(model) if config is None else dict(config)
    state = model.state_dict()
    header = {
        "format": FORMAT,
        "version": VERSION,
        "arch": arch,
        "config": config,
        "class_names": None if class_names is None else [str(c) for c in class_names],
        "training": dict(training or {}),
        "keys": list(state),
    }
    text = json.dumps(header, default=_json_default)
    arrays = {HEADER: np.array(text)}
    arrays.update({PREFIX + k: v for k, v in state.items()})
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)  # atomic on POSIX and Windows: readers see the old file or the new one
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def read_checkpoint(path):
    """Read and validate the archive without building a model: ``(header, state)``.

    Raises ``FileNotFoundError`` for a missing file and :class:`CheckpointError`
    for a truncated, corrupt or foreign one.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
        if not hasattr(data, "files"):  # a plain array: a .npy file, not an .npz archive
            raise CheckpointError(f"{path!r} is not an fcn_scratch checkpoint (a single .npy array, not an .npz)")
        with data:
            files = list(data.files)
            if HEADER not in files:
                raise CheckpointError(f"{path!r} is not an fcn_scratch checkpoint (no {HEADER!r} entry; "
                                      f"it holds {files[:5]}{'...' if len(files) > 5 else ''})")
            arrays = {name: data[name] for name in files}  # reads (and CRC-checks) every member now
    except CheckpointError:
        raise
    except Exception as exc:  # BadZipFile, zlib/EOF errors, pickled data refused, ...
        raise CheckpointError(f"{path!r} is not a readable checkpoint (truncated or corrupt?): "
                              f"{type(exc).__name__}: {exc}") from None
    try:
        header = json.loads(str(arrays.pop(HEADER)))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path!r}: the {HEADER!r} header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is not an fcn_scratch checkpoint (header format is "
                              f"{header.get('format') if isinstance(header, dict) else header!r})")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{path!r} has checkpoint version {header.get('version')!r}; "
                              f"this fcn_scratch reads version {VERSION}")
    for key, kind in (("arch", str), ("config", dict), ("keys", list), ("training", dict)):
        if not isinstance(header.get(key), kind):
            raise CheckpointError(f"{path!r}: header entry {key!r} is missing or not a {kind.__name__}")
    state = {name[len(PREFIX):]: a for name, a in arrays.items() if name.startswith(PREFIX)}
    if sorted(state) != sorted(header["keys"]):
        missing = sorted(set(header["keys"]) - set(state))
        extra = sorted(set(state) - set(header["keys"]))
        raise CheckpointError(f"{path!r}: weights do not match the header (missing {missing}, unexpected {extra})")
    for name, a in state.items():
        if a.dtype.kind != "f" or not np.isfinite(a).all():
            raise CheckpointError(f"{path!r}: weight {name!r} is not a finite float array (dtype {a.dtype})")
    return header, state


def load_checkpoint(path, *, registry=None):
    """Rebuild the model saved in ``path``: ``(model, meta)``.

    ``meta`` is the header: ``arch``, ``config``, ``class_names``, ``training``.
    ``registry`` maps architecture names to classes (default: the FCNs of
    :mod:`fcn_scratch.models`). Every weight's key, shape and dtype is checked
    against the rebuilt model; any mismatch raises :class:`CheckpointError`.
    """
    header, state = read_checkpoint(path)
    registry = architectures() if registry is None else registry
    arch = header["arch"]
    if arch not in registry:
        raise CheckpointError(f"{os.fspath(path)!r} holds architecture {arch!r}; known: {sorted(registry)}")
    config = dict(header["config"])
    if "dtype" in config:
        config["dtype"] = np.dtype(config["dtype"])
    for key in ("widths", "convs_per_block"):  # JSON turned tuples into lists
        if isinstance(config.get(key), list):
            config[key] = tuple(config[key])
    try:
        model = registry[arch](**config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{os.fspath(path)!r}: cannot build {arch} from its config {header['config']}: {exc}") \
            from None
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise CheckpointError(f"{os.fspath(path)!r} does not match {arch}{header['config']}: {msg}") from None
    model.eval()
    meta = {k: header[k] for k in ("arch", "config", "class_names", "training")}
    return model, meta


__all__ = ["save_checkpoint", "load_checkpoint", "read_checkpoint", "CheckpointError", "architectures", "model_config"]

"""Checkpoints: one ``.npz`` file holding a model's architecture, weights, class names and training metadata.

Layout of the archive (read it with ``np.load(path, allow_pickle=False)``):

* ``__fcn_scratch__`` a JSON string: ``{"format": "fcn_scratch.checkpoint", "version": 1,
  "arch": "FCN8s", "config": {constructor arguments}, "class_names": [...],
  "training": {metadata}, "keys": [weight names]}``
* ``param/<name>`` one array per ``state_dict()`` entry, e.g. ``param/conv1_1.weight``.
* ``resume/<name>`` (optional) what an interrupted training run needs to continue
  (optimizer state, random generator states, epoch, history: see :mod:`fcn_scratch.runs`);
  written with ``save_checkpoint(..., extras=...)``, read with :func:`read_extras`, and
  ignored by :func:`load_checkpoint`.

No pickles anywhere: the file can come from a stranger and still be loaded safely.
Writes are atomic (a temporary file in the same directory, then ``os.replace``),
so an interrupted save never leaves a half-written checkpoint behind, and an
older checkpoint at the same path survives intact. A read opens the file once and
does everything through that handle, so a read during a save (``predict`` while
training rewrites ``model.npz``) sees the old save or the new one, whole.
"""

from __future__ import annotations

import contextlib
import json
import math
import os

import numpy as np

from .atomic import write_atomic
from .metrics import MAX_CLASSES  # num_classes in a config: the confusion matrix's bound

HEADER = "__fcn_scratch__"
FORMAT = "fcn_scratch.checkpoint"
VERSION = 1
PREFIX = "param/"
EXTRAS_PREFIX = "resume/"


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


def save_checkpoint(path, model, *, class_names=None, training=None, arch=None, config=None, extras=None) -> str:
    """Write ``model`` to ``path`` (``.npz``) atomically; returns the path.

    ``arch`` defaults to the class name, ``config`` to ``model.config``; both
    must let :func:`load_checkpoint` rebuild the model as ``arch(**config)``.
    ``training`` is any JSON-able metadata (epochs, seed, data settings, metrics).
    ``extras`` maps names to arrays stored as ``resume/<name>`` (no object arrays: never pickled).
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
    for name, value in (extras or {}).items():
        value = np.asarray(value)
        if value.dtype.hasobject:
            raise TypeError(f"extras[{name!r}] is an object array; a checkpoint holds no pickles")
        arrays[EXTRAS_PREFIX + str(name)] = value
    # atomic: readers see the old file or the new one, and an interrupted save leaves the old one intact
    write_atomic(path, lambda f: np.savez(f, **arrays), suffix=".npz")
    return path


# --------------------------------------------------------------------------- reading untrusted files
#
# A checkpoint can come from a stranger, so nothing in it is trusted before it is
# checked, and nothing is allocated before its size is known and bounded: the
# zip directory and each member's ``.npy`` header (shape, dtype) are read first,
# without loading any array; the header's config is checked against those
# shapes; only then are the weights read, and only then is a model built.

MAX_CHECKPOINT_BYTES = 4 * 2**30  # all members together, uncompressed (VGG16-size FCN-8s in float64: 1.1 GB)
MAX_HEADER_BYTES = 16 * 2**20     # the JSON header member
MAX_MEMBERS = 100_000
MAX_CHANNELS = 65_536             # widths, fc_channels, in_channels in a config
MAX_CONVS_PER_BLOCK = 64
MAX_IMAGE_SIDE = 100_000          # data settings' image size in the training metadata
MAX_DATA_IMAGES = 10**7
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
CONFIG_KEYS = ("num_classes", "in_channels", "widths", "convs_per_block", "fc_channels", "dropout", "dtype")


class _Member:
    """One ``.npy`` member of the archive, described from its headers only."""

    def __init__(self, info, shape, dtype, offset):
        self.info, self.shape, self.dtype, self.offset = info, shape, dtype, offset


def _corrupt(path, exc):
    return CheckpointError(f"{path!r} is not a readable checkpoint (truncated or corrupt?): "
                           f"{type(exc).__name__}: {exc}")


def _npy_header(f, name, path):
    """``(shape, dtype, header length)`` of an ``.npy`` stream, its data not read."""
    from numpy.lib import format as npy

    version = npy.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = npy.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = npy.read_array_header_2_0(f)
    else:
        raise CheckpointError(f"{path!r}: member {name!r} has .npy format version {version}; expected 1.0 or 2.0")
    if dtype.hasobject:
        raise CheckpointError(f"{path!r}: member {name!r} holds pickled (object) data, which is never loaded")
    if fortran and len(shape) > 1:
        raise CheckpointError(f"{path!r}: member {name!r} is stored in Fortran order; expected C order")
    return tuple(shape), dtype


@contextlib.contextmanager
def _open_archive(path):
    """The checkpoint opened once, as one ``ZipFile`` over one file handle, for the whole of one read.

    Training rewrites ``model.npz`` every epoch (``os.replace``) while ``predict`` or
    ``evaluate`` may be reading it. Every step of a read (scan, checks, weights, extras)
    goes through this one handle, and an open file outlives its replacement (POSIX keeps
    the old inode until it is closed): a read sees one save whole, never a header from
    one epoch with weights from the next.
    """
    import zipfile

    with open(path, "rb") as fh:
        if fh.read(6) == b"\x93NUMPY":
            raise CheckpointError(f"{path!r} is not an fcn_scratch checkpoint (a single .npy array, not an .npz)")
        fh.seek(0)
        try:
            zf = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise _corrupt(path, exc) from None
        with zf:
            yield zf


def _scan(path, zf):
    """``(header dict, {member name: _Member})`` from the zip directory and the ``.npy`` headers alone.

    ``zf`` is the archive from :func:`_open_archive`. Bounds every size before anything
    is allocated: member count, total uncompressed bytes (a zip bomb declares gigabytes
    in a few kilobytes), each array's declared size against its stored size, the JSON
    header's size.
    """
    from numpy.lib import format as npy

    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise CheckpointError(f"{path!r} holds {len(infos)} members, more than {MAX_MEMBERS}")
    total = sum(i.file_size for i in infos)
    if total > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{path!r} declares {total / 2**30:.1f} GiB of uncompressed data, above the "
                              f"limit of {MAX_CHECKPOINT_BYTES / 2**30:.0f} GiB "
                              f"(fcn_scratch.checkpoint.MAX_CHECKPOINT_BYTES)")
    members = {}
    for info in infos:
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if name in members:
            raise CheckpointError(f"{path!r}: member {name!r} appears twice")
        try:
            with zf.open(info) as f:
                shape, dtype = _npy_header(f, name, path)
                offset = f.tell()
        except CheckpointError:
            raise
        except Exception as exc:  # not .npy data, a bad header dict, a broken stream
            raise _corrupt(path, exc) from None
        if len(shape) > 8 or any(not isinstance(d, int) or d < 0 for d in shape):
            raise CheckpointError(f"{path!r}: member {name!r} declares shape {shape}")
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize  # Python ints: no overflow
        if nbytes != info.file_size - offset:
            raise CheckpointError(f"{path!r}: member {name!r} declares shape {shape} of {dtype} "
                                  f"({nbytes:,} bytes) but stores {info.file_size - offset:,} bytes "
                                  f"(truncated or corrupt?)")
        members[name] = _Member(info, shape, dtype, offset)
    if HEADER not in members:
        files = list(members)
        raise CheckpointError(f"{path!r} is not an fcn_scratch checkpoint (no {HEADER!r} entry; "
                              f"it holds {files[:5]}{'...' if len(files) > 5 else ''})")
    h = members[HEADER]
    if h.dtype.kind != "U" or h.shape != () or h.info.file_size > MAX_HEADER_BYTES:
        raise CheckpointError(f"{path!r}: the {HEADER!r} header must be one string of at most "
                              f"{MAX_HEADER_BYTES:,} bytes, got {h.dtype} of shape {h.shape}")
    try:
        with zf.open(h.info) as f:
            text = str(npy.read_array(f, allow_pickle=False))
    except Exception as exc:
        raise _corrupt(path, exc) from None
    try:
        header = json.loads(text)
    except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than Python's stack
        raise CheckpointError(f"{path!r}: the {HEADER!r} header is not valid JSON ({exc})") from None
    _check_header(header, path)
    for name, m in members.items():
        if name.startswith(PREFIX) and m.dtype not in FLOAT_DTYPES:
            raise CheckpointError(f"{path!r}: weight {name[len(PREFIX):]!r} is not a finite float array "
                                  f"(dtype {m.dtype}; expected float32 or float64)")
    params = sorted(n[len(PREFIX):] for n in members if n.startswith(PREFIX))
    if params != sorted(header["keys"]):
        missing = sorted(set(header["keys"]) - set(params))
        extra = sorted(set(params) - set(header["keys"]))
        raise CheckpointError(f"{path!r}: weights do not match the header (missing {missing}, unexpected {extra})")
    return header, members


def _is_int(v, lo, hi):
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_real(v):
    """A finite JSON number; JSON ints are unbounded (``10**400``), so beyond float range is not finite."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _check_header(header, path):
    """Types and ranges of every header entry the package reads; one :class:`CheckpointError` naming the entry."""
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is not an fcn_scratch checkpoint (header format is "
                              f"{header.get('format') if isinstance(header, dict) else header!r})")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{path!r} has checkpoint version {header.get('version')!r}; "
                              f"this fcn_scratch reads version {VERSION}")
    for key, kind in (("arch", str), ("config", dict), ("keys", list), ("training", dict)):
        if not isinstance(header.get(key), kind):
            raise CheckpointError(f"{path!r}: header entry {key!r} is missing or not a {kind.__name__}")
    keys = header["keys"]
    if not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise CheckpointError(f"{path!r}: header entry 'keys' must be a list of distinct weight names")
    names = header.get("class_names")
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, str) and len(n) <= 256 for n in names):
            raise CheckpointError(f"{path!r}: header entry 'class_names' must be a list of strings "
                                  f"(at most 256 characters each) or null, got {type(names).__name__}")
        k = header["config"].get("num_classes")
        if isinstance(k, int) and len(names) != k:
            raise CheckpointError(f"{path!r}: header entry 'class_names' has {len(names)} names for "
                                  f"num_classes={k}")
    _check_training(header["training"], header["config"], path)


def _check_training(training, config, path):
    """The training metadata that ``predict`` and ``evaluate`` use: ``normalization`` and ``data``."""
    norm = training.get("normalization")
    if norm is not None:
        where = f"{path!r}: training metadata 'normalization'"
        if not isinstance(norm, dict) or not {"mean", "std"} <= set(norm):
            raise CheckpointError(f"{where} must be {{'mean': ..., 'std': ...}}, got {norm!r:.80}")
        channels = config.get("in_channels", 3)
        for key in ("mean", "std"):
            v = norm[key]
            values = v if isinstance(v, list) else [v]
            if not values or not all(_is_real(x) for x in values) or (isinstance(v, list) and len(v) != channels):
                raise CheckpointError(f"{where}: {key!r} must be a finite number or a list of {channels} "
                                      f"(one per input channel), got {v!r:.80}")
            if key == "std" and min(values) <= 0:
                raise CheckpointError(f"{where}: 'std' must be positive, got {v!r:.80}")
    data = training.get("data")
    if data is None:
        return
    where = f"{path!r}: training metadata 'data'"
    if not isinstance(data, dict):
        raise CheckpointError(f"{where} must be a dict of toy-data settings, got {type(data).__name__}")
    checks = {
        "size": (lambda v: isinstance(v, list) and len(v) == 2 and all(_is_int(s, 1, MAX_IMAGE_SIDE) for s in v),
                 f"[height, width], each 1..{MAX_IMAGE_SIDE}"),
        "val_images": (lambda v: _is_int(v, 1, MAX_DATA_IMAGES), f"an int in 1..{MAX_DATA_IMAGES}"),
        "train_images": (lambda v: _is_int(v, 1, MAX_DATA_IMAGES), f"an int in 1..{MAX_DATA_IMAGES}"),
        "val_seed": (lambda v: _is_int(v, 0, 2**63 - 1), "a non-negative int"),
        "train_seed": (lambda v: _is_int(v, 0, 2**63 - 1), "a non-negative int"),
        "ignore_border": (lambda v: _is_int(v, 0, MAX_IMAGE_SIDE), "a non-negative int"),
    }
    for key, (ok, what) in checks.items():
        if key in data and not ok(data[key]):
            raise CheckpointError(f"{where}: {key!r} must be {what}, got {data[key]!r:.80}")


def _check_config(config, arch, path):
    """The constructor arguments of a known FCN, bounded; returns them ready for ``cls(**config)``."""
    def bad(msg):
        return CheckpointError(f"{path!r}: cannot build {arch} from its config {config!r:.200}: {msg}")

    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise bad(f"unexpected entries {unknown}")
    if "num_classes" not in config:
        raise bad("'num_classes' is missing")
    out = dict(config)
    for key, hi in (("num_classes", MAX_CLASSES), ("in_channels", MAX_CHANNELS), ("fc_channels", MAX_CHANNELS)):
        if key in config and not _is_int(config[key], 1, hi):
            raise bad(f"{key} must be an int in 1..{hi}, got {config[key]!r:.40}")
    for key, hi in (("widths", MAX_CHANNELS), ("convs_per_block", MAX_CONVS_PER_BLOCK)):
        if key in config:
            v = config[key]
            if not (isinstance(v, (list, tuple)) and len(v) == 5 and all(_is_int(x, 1, hi) for x in v)):
                raise bad(f"{key} must be a list of 5 ints in 1..{hi} (one per VGG block), got {v!r:.80}")
            out[key] = tuple(v)
    if "dropout" in config and not (_is_real(config["dropout"]) and 0 <= config["dropout"] < 1):
        raise bad(f"dropout must be a number in [0, 1), got {config['dropout']!r:.40}")
    if "dtype" in config:
        if config["dtype"] not in ("float32", "float64"):
            raise bad(f"dtype must be 'float32' or 'float64', got {config['dtype']!r:.40}")
        out["dtype"] = np.dtype(config["dtype"])
    return out


def _read_members(path, zf, members, prefix):
    """The arrays of the members named ``prefix + key`` (sizes already checked by :func:`_scan`): ``{key: array}``."""
    from numpy.lib import format as npy

    arrays = {}
    try:
        for name, m in members.items():
            if not name.startswith(prefix):
                continue
            with zf.open(m.info) as f:
                a = npy.read_array(f, allow_pickle=False)
                f.read()  # reach the end of the member: the zip CRC check runs there
            arrays[name[len(prefix):]] = a
    except Exception as exc:  # CRC mismatch, truncated stream, ...
        raise _corrupt(path, exc) from None
    return arrays


def _read_weights(path, zf, members):
    """Load the ``param/`` arrays through the open archive ``zf``, refusing non-finite values: ``{key: array}``."""
    state = _read_members(path, zf, members, PREFIX)
    for name, a in state.items():
        if not np.isfinite(a).all():
            raise CheckpointError(f"{path!r}: weight {name!r} is not a finite float array (dtype {a.dtype})")
    return state


def _check_memory(path, members):
    """Loading holds every weight twice (the arrays read, the model's own): refuse if that cannot fit."""
    from .budget import available_bytes, format_bytes

    need = 2 * sum(m.info.file_size for n, m in members.items() if n.startswith(PREFIX))
    available = available_bytes()
    if available is not None and need > available:
        raise CheckpointError(f"{path!r}: loading its weights needs about {format_bytes(need)} of memory, more than "
                              f"the {format_bytes(available)} available")


def read_checkpoint(path):
    """Read and validate the archive without building a model: ``(header, state)``.

    Raises ``FileNotFoundError`` for a missing file and :class:`CheckpointError`
    for a truncated, corrupt, oversized or foreign one. Every size is checked
    from the zip directory and the ``.npy`` headers before any array is read.
    """
    header, state, _ = _read_archive(path)
    return header, state


def _read_archive(path, *, extras=False):
    """Validate and read ``path`` through one open file: ``(header, state, extras or None)``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    if os.path.isdir(path):
        raise CheckpointError(f"{path!r} is a directory, not a checkpoint file")
    with _open_archive(path) as zf:
        header, members = _scan(path, zf)
        _check_memory(path, members)
        state = _read_weights(path, zf, members)
        return header, state, (_read_members(path, zf, members, EXTRAS_PREFIX) if extras else None)


def load_checkpoint(path, *, registry=None):
    """Rebuild the model saved in ``path``: ``(model, meta)``.

    ``meta`` is the header: ``arch``, ``config``, ``class_names``, ``training``.
    A ``.pt``/``.pth`` path is read as a PyTorch state_dict (needs torch; see
    :func:`_load_torch_state_dict`), e.g. one that ``fcn-scratch export`` wrote.
    ``registry`` maps architecture names to classes (default: the FCNs of
    :mod:`fcn_scratch.models`). Before any weight is read or any model built,
    the config is bounded and the shapes it implies (``cls.state_shapes``, where
    the class has it) are compared with the stored arrays' shapes; any mismatch
    raises :class:`CheckpointError` naming the key.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    if os.path.isdir(path):
        raise CheckpointError(f"{path!r} is a directory, not a checkpoint file")
    if path.lower().endswith((".pt", ".pth")):
        return _load_torch_state_dict(path)
    with _open_archive(path) as zf:
        return _load(path, zf, registry)


def _load(path, zf, registry):
    """:func:`load_checkpoint` on the open archive ``zf`` (one handle: see :func:`_open_archive`)."""
    header, members = _scan(path, zf)
    registry = architectures() if registry is None else registry
    arch = header["arch"]
    if arch not in registry:
        raise CheckpointError(f"{path!r} holds architecture {arch!r}; known: {sorted(registry)}")
    cls = registry[arch]
    config = dict(header["config"])
    shapes_of = getattr(cls, "state_shapes", None)
    if shapes_of is not None:
        config = _check_config(config, arch, path)
        try:
            expected = shapes_of(**config)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path!r}: cannot build {arch} from its config {header['config']}: {exc}") \
                from None
        stored = {n[len(PREFIX):]: m for n, m in members.items() if n.startswith(PREFIX)}
        mismatch = f"{path!r} does not match {arch}{header['config']}: "
        for name in expected:
            if name not in stored:
                raise CheckpointError(mismatch + f"state_dict is missing key {name!r}")
        for name in stored:
            if name not in expected:
                raise CheckpointError(mismatch + f"state_dict has unexpected key {name!r}; "
                                                 f"is it from another architecture?")
        dtype = np.dtype(config.get("dtype", np.float32))
        for name, shape in expected.items():
            m = stored[name]
            if m.shape != tuple(shape):
                raise CheckpointError(mismatch + f"state_dict[{name!r}] has shape {m.shape}, expected {tuple(shape)}")
            if m.dtype != dtype:
                raise CheckpointError(mismatch + f"state_dict[{name!r}] has dtype {m.dtype}, expected {dtype}")
    else:  # a class without state_shapes: the old way, build then compare (sizes are bounded by _scan)
        if "dtype" in config:
            config["dtype"] = np.dtype(config["dtype"])
        for key in ("widths", "convs_per_block"):  # JSON turned tuples into lists
            if isinstance(config.get(key), list):
                config[key] = tuple(config[key])
    _check_memory(path, members)
    state = _read_weights(path, zf, members)
    try:
        model = cls(**config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path!r}: cannot build {arch} from its config {header['config']}: {exc}") \
            from None
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise CheckpointError(f"{path!r} does not match {arch}{header['config']}: {msg}") from None
    model.eval()
    meta = {k: header[k] for k in ("arch", "config", "class_names", "training")}
    return model, meta


def _load_torch_state_dict(path):
    """A PyTorch state_dict file (``fcn-scratch export``'s, or the seed classes' own) as ``(model, meta)``.

    Read with ``torch.load(weights_only=True)`` by :func:`fcn_scratch.export.import_torch` (torch is
    optional: only this path imports it); the architecture and widths come from the tensor shapes.
    A state_dict holds weights only, so ``class_names`` is None and ``training`` names the file.
    """
    from .export import ExportError, import_torch

    try:
        model = import_torch(path)
    except ImportError as exc:
        raise CheckpointError(f"cannot read {path!r}: {exc}") from None
    except ExportError as exc:
        raise CheckpointError(str(exc)) from None
    config = model_config(model)
    config["dtype"] = np.dtype(model.dtype).name
    return model, {"arch": type(model).__name__, "config": config, "class_names": None,
                   "training": {"imported_from": os.path.basename(path)}}


def read_extras(path) -> dict:
    """The ``resume/<name>`` arrays of a checkpoint as ``{name: array}`` (empty if it has none).

    The archive is validated first, as :func:`read_checkpoint` does (sizes bounded, no
    pickles, weights finite), through the same open file (see :func:`_open_archive`);
    raises ``FileNotFoundError`` or :class:`CheckpointError`.
    """
    return _read_archive(path, extras=True)[2]


__all__ = ["save_checkpoint", "load_checkpoint", "read_checkpoint", "read_extras", "CheckpointError", "architectures", "model_config"]

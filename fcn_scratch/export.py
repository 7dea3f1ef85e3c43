"""Weights to and from PyTorch: a checkpoint as a ``state_dict`` the seed's PyTorch FCNs load, and back.

Needs the ``compare`` extra (torch); torch is imported only inside these functions.

Names. Our ``state_dict`` keys are the seed classes' attribute names
(``conv1_1.weight``, ``upscore8.bias``, ...), and the layouts are PyTorch's
(Conv2d ``(out, in, kh, kw)``, ConvTranspose2d ``(in, out, kh, kw)``), so the
arrays go over unchanged. The one difference: the seed builds each backbone
conv as ``CBR = nn.Sequential(Conv2d, ReLU)``, whose parameters PyTorch names
``conv1_1.0.weight``; FCN-32s wraps ``fc6`` and ``fc7`` in a CBR too (FCN-16s and
8s do not). :func:`torch_key` adds that ``.0``, :func:`engine_key` removes it.

* :func:`export_torch` ``(checkpoint.npz, model.pt)``: ``torch.save`` of a plain
  ``{name: tensor}`` dict, same dtype as the checkpoint; ``TorchFCN8s(...)
  .load_state_dict(torch.load(path, weights_only=True), strict=True)`` accepts it.
* :func:`import_torch` ``(model.pt, arch=None, config=None) -> model``: reads such a
  file with ``torch.load(..., weights_only=True)`` (tensors and plain containers
  only: no pickled object is ever run), renames, and loads it into our FCN; the
  architecture and its widths are read off the tensor shapes unless given.
* :func:`import_torch_checkpoint` the same, written as our ``.npz`` checkpoint.

A state_dict holds weights only: class names and the input normalisation stay in
the ``.npz`` (pass ``class_names`` when importing).
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict

import numpy as np

ARCH_OF_UPSAMPLER = {"upscore32": "FCN32s", "upscore16": "FCN16s", "upscore8": "FCN8s"}
_CBR_KEY = re.compile(r"^(conv\d+_\d+)\.(weight|bias)$")
_CBR_FC = re.compile(r"^(fc6|fc7)\.(weight|bias)$")
_TORCH_CBR = re.compile(r"^(conv\d+_\d+|fc6|fc7)\.0\.(weight|bias)$")


class ExportError(ValueError):
    """A file that cannot be converted (not a state_dict, wrong architecture, unsupported dtype)."""


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("PyTorch is needed to read or write .pt files: pip install torch "
                          "--index-url https://download.pytorch.org/whl/cpu (the CPU build)") from None
    return torch


def torch_key(arch: str, key: str) -> str:
    """Our key -> the seed class's: ``conv1_1.weight`` -> ``conv1_1.0.weight`` (and ``fc6``/``fc7`` in FCN-32s)."""
    m = _CBR_KEY.match(key) or (_CBR_FC.match(key) if arch == "FCN32s" else None)
    return f"{m.group(1)}.0.{m.group(2)}" if m else key


def engine_key(key: str) -> str:
    """The seed class's key -> ours: drop the ``.0`` of a CBR block."""
    m = _TORCH_CBR.match(key)
    return f"{m.group(1)}.{m.group(2)}" if m else key


def export_torch(checkpoint_path, out_path) -> dict:
    """Write the weights of ``checkpoint_path`` (our ``.npz``) as a PyTorch state_dict at ``out_path``.

    The checkpoint is rebuilt and validated first (:func:`fcn_scratch.checkpoint.load_checkpoint`);
    the file is written atomically. Returns ``{"arch", "config", "keys", "dtype"}``:
    build the seed class as ``torch_ref.CLASSES[arch](num_classes, in_channels, widths,
    convs_per_block, fc_channels)`` to load it.
    """
    torch = _torch()
    from .checkpoint import load_checkpoint
    from .atomic import write_atomic

    model, meta = load_checkpoint(checkpoint_path)
    arch = meta["arch"]
    state = OrderedDict((torch_key(arch, k), torch.from_numpy(np.ascontiguousarray(v)))
                        for k, v in model.state_dict().items())
    write_atomic(out_path, lambda f: torch.save(state, f), suffix=".pt")
    return dict(arch=arch, config=meta["config"], keys=list(state), dtype=model.dtype.name)


def _read_state(pt_path) -> dict:
    """``torch.load(weights_only=True)`` -> ``{our key: float ndarray}``; refuses anything but a flat tensor dict."""
    torch = _torch()
    path = os.fspath(pt_path)
    if not os.path.isfile(path):
        raise ExportError(f"PyTorch file {path!r} not found")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for a non-weights pickle, zip errors for a broken file, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ExportError(f"cannot read {path!r} as a PyTorch state_dict (weights_only=True): "
                          f"{type(exc).__name__}: {first}") from None
    if not isinstance(raw, dict) or not raw:
        raise ExportError(f"{path!r} holds a {type(raw).__name__}, not a state_dict ({{name: tensor}})")
    state = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise ExportError(f"{path!r} is not a flat state_dict: entry {name!r} is a {type(value).__name__}, "
                              f"not a tensor")
        if value.dtype not in (torch.float32, torch.float64):
            raise ExportError(f"{path!r}: tensor {name!r} is {value.dtype}; convert the model with .float() "
                              f"(float32) or .double() first")
        key = engine_key(name)
        if key in state:
            raise ExportError(f"{path!r}: {name!r} and another entry both map to {key!r}")
        state[key] = value.detach().cpu().numpy().copy()  # our own memory, bit for bit
    return state


def infer_config(state: dict) -> tuple[str, dict]:
    """Architecture and constructor arguments read off the weight shapes of ``state`` (our keys).

    ``arch`` from the last upsampler (``upscore8`` -> FCN8s, ``upscore16`` -> 16s,
    ``upscore32`` -> 32s); ``num_classes`` from ``score_fr``; ``in_channels``,
    ``widths`` and ``convs_per_block`` from the ``conv{b}_{i}`` weights; ``fc_channels``
    from ``fc6``; ``dtype`` from the arrays. ``dropout`` (not stored) is 0.5.
    """
    archs = [a for up, a in ARCH_OF_UPSAMPLER.items() if f"{up}.weight" in state]
    if len(archs) != 1:
        raise ExportError(f"cannot tell the architecture: expected exactly one of upscore8/16/32 weights, "
                          f"found {archs or 'none'}")
    try:
        widths, convs = [], []
        for b in range(1, 6):
            n = 0
            while f"conv{b}_{n + 1}.weight" in state:
                n += 1
            if n == 0:
                raise KeyError(f"conv{b}_1.weight")
            convs.append(n)
            widths.append(int(state[f"conv{b}_1.weight"].shape[0]))
        config = dict(num_classes=int(state["score_fr.weight"].shape[0]),
                      in_channels=int(state["conv1_1.weight"].shape[1]), widths=tuple(widths),
                      convs_per_block=tuple(convs), fc_channels=int(state["fc6.weight"].shape[0]),
                      dtype=np.dtype(state["score_fr.weight"].dtype).name)
    except (KeyError, IndexError) as exc:
        raise ExportError(f"not an FCN state_dict: missing or malformed {exc}") from None
    return archs[0], config


def import_torch(pt_path, arch=None, config=None):
    """Our FCN with the weights of a PyTorch state_dict file (seed names, with or without the CBR ``.0``).

    ``arch`` (``"FCN8s"`` ...) and ``config`` (constructor arguments) default to
    :func:`infer_config`; a given ``config`` without ``dtype`` takes the file's.
    Every key, shape and dtype is checked by ``load_state_dict``; the model is
    returned in eval mode. Raises :class:`ExportError` naming the file.
    """
    from .checkpoint import architectures

    path = os.fspath(pt_path)
    state = _read_state(path)
    dtypes = {a.dtype for a in state.values()}
    if len(dtypes) != 1:
        raise ExportError(f"{path!r} mixes dtypes {sorted(d.name for d in dtypes)}; expected one")
    if arch is None or config is None:
        found_arch, found_config = infer_config(state)
        arch = found_arch if arch is None else arch
        config = found_config if config is None else config
    config = dict(config)
    config.setdefault("dtype", dtypes.pop().name)
    registry = architectures()
    if arch not in registry:
        raise ExportError(f"unknown architecture {arch!r}; known: {sorted(registry)}")
    try:
        model = registry[arch](**config)
    except (TypeError, ValueError) as exc:
        raise ExportError(f"cannot build {arch} from {config}: {exc}") from None
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError, TypeError) as exc:
        msg = exc.args[0] if exc.args else exc
        raise ExportError(f"{path!r} does not match {arch}{config}: {msg}") from None
    return model.eval()


def import_torch_checkpoint(pt_path, out_path, *, arch=None, config=None, class_names=None) -> str:
    """:func:`import_torch`, then :func:`fcn_scratch.checkpoint.save_checkpoint` to ``out_path`` (``.npz``)."""
    from .checkpoint import save_checkpoint

    model = import_torch(pt_path, arch, config)
    if class_names is not None and len(class_names) != model.num_classes:
        raise ValueError(f"class_names has {len(class_names)} names for a model of {model.num_classes} classes")
    return save_checkpoint(out_path, model, class_names=class_names,
                           training={"imported_from": os.path.basename(os.fspath(pt_path))})


__all__ = ["export_torch", "import_torch", "import_torch_checkpoint", "infer_config", "torch_key", "engine_key",
           "ExportError"]

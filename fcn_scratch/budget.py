"""How much memory will a run need? An estimate from the shapes alone, checked before anything is allocated.

``fcn-scratch train --fc-channels 1000000000`` or ``--size 100000`` would
otherwise grow for minutes and die with a ``MemoryError`` traceback (or get the
machine's out-of-memory killer). Every array a run holds follows from its
arguments, so the CLI adds them up first and refuses, in one line, a run that
needs more than the machine has available (:func:`available_bytes`).

The formula (``b`` = bytes per float, 4 for float32; ``P`` = parameter count;
``T`` = threads; ``B`` = batch size; ``h x w`` the resolution of each layer):

* data: every generated image and mask, ``28`` bytes per pixel (3 float32
  channels, an int64 mask, and one more int64 mask: the ignore band's copy
  when it is drawn, the every-pixel masks when validation is scored);
* parameters: ``(T + 5) P b`` -- the weights, one gradient per thread, their
  sum, Adam's two moments, and the copy ``save_checkpoint`` makes;
* activations, training: ``B`` images times, per image, everything the forward
  pass caches for ``backward`` (each 3x3 convolution's im2col columns
  ``9 c_in h w`` and its output ``c_out h w``, each ReLU's output and mask,
  each max-pool's output and int64 argmax, each transposed convolution's columns
  ``K k^2 h_in w_in`` and output, the crops, the logits and softmax) plus twice
  the largest single layer (its gradient columns and gradients in flight);
* activations, inference (``predict``/``evaluate``, under ``no_grad``): per
  image, the largest layer's input + output + columns (3x3 convolutions unfold a
  band of at most 4 MiB at a time), plus logits and labels;
* plus :data:`RUNTIME_BYTES` (128 MiB) for the libraries' own buffers.

Measured against the peak resident set of ``fcn-scratch train --epochs 1``
(``ru_maxrss`` minus the resident set after the imports), 2 cores:
the defaults (640 images of 64x64) used 328 MiB, estimated 355 MiB (1.08x);
``--size 256 --train-images 64 --val-images 16`` used 1532 MiB, estimated
2329 MiB (1.52x). ``fcn-scratch predict`` of a 4000 x 4000 image with the
default model peaked at 3218 MiB above its imports, estimated 3311 MiB (1.03x:
one layer, ``conv1_2`` at full resolution, dominates and is counted exactly).
Conservative, but not by orders of magnitude.
"""

from __future__ import annotations

import os

MIB = 2**20
GIB = 2**30
DATA_BYTES_PER_PIXEL = 3 * 4 + 8 + 8
INFERENCE_BAND_BYTES = 4 * MIB  # fcn_scratch.functional.INFERENCE_BAND_BYTES
# Numba's compiled kernels, OpenBLAS's per-thread buffers, matplotlib's figures: measured 76 MiB above the
# resident set after imports for a run whose arrays are negligible (8 images of 32x32, widths 4-8).
RUNTIME_BYTES = 128 * MIB


class MemoryBudgetError(ValueError):
    """The run would need more memory than the machine has available."""


def format_bytes(n: float) -> str:
    if n >= 1024 * GIB:
        return f"{n / (1024 * GIB):,.0f} TiB"
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / MIB:.0f} MiB"


def available_bytes() -> int | None:
    """Memory this process may still use: ``MemAvailable`` (``/proc/meminfo``), else free physical pages.

    Capped by ``RLIMIT_AS`` when one is set (minus the address space already in
    use). ``None`` when nothing can be read (the check is then skipped).
    """
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = None
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            used = 0
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmSize:"):
                        used = int(line.split()[1]) * 1024
            room = max(0, soft - used)
            avail = room if avail is None else min(avail, room)
    except (ImportError, OSError, ValueError):
        pass
    return avail


# --------------------------------------------------------------------------- the network's shapes


def _layers(variant, config, H, W):
    """``(kind, c_in, c_out, k, h_in, w_in, h_out, w_out)`` of every layer with a sizeable output, in order."""
    from .functional import conv_transpose_output_size
    from .models import N_BLOCKS, UPSAMPLERS, VGG16_CONVS, VGG16_WIDTHS, pooled_sizes

    K = config["num_classes"]
    widths = tuple(config.get("widths", VGG16_WIDTHS))
    convs = tuple(config.get("convs_per_block", VGG16_CONVS))
    fc = config.get("fc_channels", 4096)
    cin = config.get("in_channels", 3)
    sizes = [(H, W)] + pooled_sizes(H, W, N_BLOCKS)
    out = []
    for b in range(1, N_BLOCKS + 1):
        h, w = sizes[b - 1]
        for _ in range(convs[b - 1]):
            out.append(("conv", cin, widths[b - 1], 3, h, w, h, w))
            cin = widths[b - 1]
        out.append(("pool", cin, cin, 2, h, w, *sizes[b]))
    h, w = sizes[N_BLOCKS]
    out += [("conv", cin, fc, 1, h, w, h, w), ("conv", fc, fc, 1, h, w, h, w), ("conv", fc, K, 1, h, w, h, w)]
    level = N_BLOCKS
    for _, k, s, p in UPSAMPLERS[variant]:
        h, w = sizes[level]
        ho, wo = conv_transpose_output_size(h, k, s, p), conv_transpose_output_size(w, k, s, p)
        out.append(("up", K, K, k, h, w, ho, wo))
        level -= s.bit_length() - 1
    return out


def parameter_count(arch_cls, config) -> int:
    """Number of parameters of ``arch_cls(**config)``, from :meth:`state_shapes` (nothing allocated)."""
    total = 0
    for shape in arch_cls.state_shapes(**config).values():
        n = 1
        for d in shape:
            n *= d
        total += n
    return total


def training_activation_bytes(variant, config, H, W, itemsize=4) -> int:
    """Bytes one image's forward caches and backward temporaries take in training (see the module docstring)."""
    total = peak = 0
    for kind, cin, cout, k, h, w, ho, wo in _layers(variant, config, H, W):
        if kind == "conv":
            cols = cin * k * k * ho * wo if k > 1 else 0  # a 1x1 convolution needs no unfolding
            layer = cols + cout * ho * wo * 3  # columns, output, ReLU output; the ReLU mask below
            total += layer * itemsize + cout * ho * wo
        elif kind == "pool":
            layer = cout * ho * wo
            total += layer * itemsize + cout * ho * wo * 8  # output, int64 argmax
        else:
            layer = cout * k * k * h * w + 2 * cout * ho * wo  # columns, output, its crop
            total += layer * itemsize
        peak = max(peak, layer * itemsize)
    K = config["num_classes"]
    total += 3 * K * H * W * itemsize  # logits, softmax, their gradient
    return total + 2 * peak


def inference_activation_bytes(variant, config, H, W, itemsize=4) -> int:
    """Bytes one image needs in inference under ``no_grad``: the largest layer's working set, plus logits."""
    peak = 0
    for kind, cin, cout, k, h, w, ho, wo in _layers(variant, config, H, W):
        if kind == "conv":  # a band of columns, and the ReLU after it (output + bool mask, input still alive)
            cols = min(cin * k * k * ho * wo * itemsize, INFERENCE_BAND_BYTES) if k > 1 else 0
            cols += cout * ho * wo
        elif kind == "up":
            cols = cout * k * k * h * w * itemsize
        else:
            cols = cout * ho * wo * 8  # argmax
        peak = max(peak, (cin * h * w + cout * ho * wo) * itemsize + cols)
    K = config["num_classes"]
    return peak + K * H * W * itemsize + H * W * 8 * 2  # logits; labels and their int64 copy


# --------------------------------------------------------------------------- estimates and the check


def estimate_training(arch_classes, config, *, size, train_images, val_images, batch_size, threads=None,
                      itemsize=4) -> dict:
    """Bytes a training run needs, by part: ``{"data", "parameters", "activations", "total"}``.

    ``arch_classes`` are the model classes alive at once (one, or the stages
    of ``--staged`` training); ``config`` their constructor arguments.
    """
    H, W = (size, size) if isinstance(size, int) else size
    T = threads or os.cpu_count() or 1
    pixels = H * W
    data = (train_images + val_images) * pixels * DATA_BYTES_PER_PIXEL
    params = sum(parameter_count(c, config) for c in arch_classes) * itemsize * (T + 5)
    acts = max(training_activation_bytes(c.variant, config, H, W, itemsize) for c in arch_classes)
    acts *= min(batch_size, train_images)  # a batch never holds more images than the data
    return dict(data=data, parameters=params, activations=acts, total=data + params + acts + RUNTIME_BYTES)


def estimate_inference(arch_cls, config, *, images, size, batch_size, itemsize=4) -> dict:
    """Bytes ``predict``/``evaluate`` need: the weights loaded, the data, one batch of inference."""
    H, W = size
    data = images * H * W * DATA_BYTES_PER_PIXEL
    params = parameter_count(arch_cls, config) * itemsize * 2  # the arrays read and the model's own copy
    acts = min(batch_size, images) * inference_activation_bytes(arch_cls.variant, config, H, W, itemsize)
    return dict(data=data, parameters=params, activations=acts, total=data + params + acts + RUNTIME_BYTES)


def check(estimate: dict, what: str, hint: str, available=None) -> dict:
    """Raise :class:`MemoryBudgetError` (one line) if ``estimate["total"]`` exceeds the available memory."""
    available = available_bytes() if available is None else available
    if available is not None and estimate["total"] > available:
        raise MemoryBudgetError(
            f"{what} needs about {format_bytes(estimate['total'])} of memory (data {format_bytes(estimate['data'])}, "
            f"weights/gradients/optimizer {format_bytes(estimate['parameters'])}, activations "
            f"{format_bytes(estimate['activations'])}, libraries {format_bytes(RUNTIME_BYTES)}), more than the "
            f"{format_bytes(available)} available; {hint}")
    return estimate


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def check_training(archs, num_classes, *, widths=None, fc_channels=None, size, train_images, val_images,
                   batch_size, threads=None, available=None) -> dict:
    """Estimate a toy-data training run (the tiny preset with ``widths``/``fc_channels`` overrides) and
    raise :class:`MemoryBudgetError` if it does not fit. ``archs``: names alive at once, e.g. ``("fcn8s",)``."""
    from .models import FCN8s, FCN16s, FCN32s, TINY

    classes = {"fcn32s": FCN32s, "fcn16s": FCN16s, "fcn8s": FCN8s}
    config = dict(TINY, num_classes=num_classes)
    if widths is not None:
        config["widths"] = tuple(widths)
    if fc_channels is not None:
        config["fc_channels"] = fc_channels
    est = estimate_training([classes[a] for a in archs], config, size=size, train_images=train_images,
                            val_images=val_images, batch_size=batch_size, threads=threads or _usable_cpus())
    return check(est, "this run", "use smaller --size, --train-images/--val-images, --batch-size, --widths or "
                 "--fc-channels", available)


__all__ = ["MemoryBudgetError", "check_training", "available_bytes", "parameter_count", "training_activation_bytes",
           "inference_activation_bytes", "estimate_training", "estimate_inference", "check"]

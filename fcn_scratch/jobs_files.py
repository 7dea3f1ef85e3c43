"""``fcn-scratch sample`` and ``export``: files in other formats, a VOC-layout toy dataset and a PyTorch state_dict.

Each job raises :class:`fcn_scratch.jobs.JobError` (one line) for an expected failure.
"""

from __future__ import annotations

from .jobs import JobError, check_output, load_model


def sample(out, *, n=100, seed=0, min_size=48, max_size=80, image_format="png") -> int:
    """``fcn-scratch sample``: ``n`` toy-shapes images of sides ``min_size`` to ``max_size`` with their
    palette masks, in PASCAL VOC 2012 layout under ``out`` (:func:`fcn_scratch.voc.write_sample`)."""
    from .voc import write_sample

    if min_size > max_size:
        raise JobError(f"--min-size {min_size} is larger than --max-size {max_size}")
    try:
        info = write_sample(out, n=n, size=(min_size, max_size), seed=seed, image_format=image_format)
    except (ValueError, OSError) as exc:
        raise JobError(f"cannot write the sample to {out!r}: {getattr(exc, 'strerror', None) or exc}") \
            from None
    print(f"wrote {info['train'] + info['val']} toy-shapes images ({info['min_size']} to {info['max_size']}, WxH) "
          f"in PASCAL VOC layout to {out}: {info['train']} in ImageSets/Segmentation/train.txt, "
          f"{info['val']} in val.txt; classes {', '.join(info['class_names'])} (labels.txt)")
    print(f"train on it with: fcn-scratch train --data {out} --crop 64")
    return 0


def _torch_or_error():
    try:
        import torch  # noqa: F401
    except ImportError:
        raise JobError("reading or writing PyTorch .pt files needs torch; the CPU build: pip install torch "
                       "--index-url https://download.pytorch.org/whl/cpu") from None


def export(checkpoint, torch_path, *, from_torch=False, class_names_from=None) -> int:
    """``fcn-scratch export``: the model.npz ``checkpoint`` as the PyTorch state_dict ``torch_path``, or with
    ``from_torch`` back (class names and normalisation copied from the checkpoint ``class_names_from``)."""
    import os

    from .checkpoint import save_checkpoint
    from .export import ExportError, export_torch, import_torch

    _torch_or_error()
    if not from_torch:
        if class_names_from:
            raise JobError("--class-names-from goes with --from-torch (an exported .pt holds weights only)")
        check_output(torch_path, suffixes=(".pt", ".pth"), what="--torch")
        load_model(checkpoint)  # validated first: a bad checkpoint is one line
        try:
            info = export_torch(checkpoint, torch_path)
        except (ExportError, OSError) as exc:
            raise JobError(f"cannot export to {torch_path!r}: {getattr(exc, 'strerror', None) or exc}") from None
        cfg = info["config"]
        print(f"wrote {torch_path}: the {info['arch']} state_dict, {len(info['keys'])} tensors ({info['dtype']}); "
              f"load it with fcn_scratch.torch_ref.CLASSES[{info['arch']!r}]({cfg['num_classes']}, "
              f"{cfg.get('in_channels', 3)}, {tuple(cfg['widths'])}, {tuple(cfg['convs_per_block'])}, "
              f"{cfg['fc_channels']}).load_state_dict(torch.load({torch_path!r}, weights_only=True))")
        return 0
    check_output(checkpoint, suffixes=(".npz",), what="--checkpoint")
    class_names, training = None, {"imported_from": os.path.basename(torch_path)}
    if class_names_from:
        _, like = load_model(class_names_from)
        class_names = like["class_names"]
        if like["training"].get("normalization"):
            training["normalization"] = like["training"]["normalization"]
    try:
        model = import_torch(torch_path)
    except ExportError as exc:
        raise JobError(str(exc)) from None
    if class_names is not None and len(class_names) != model.num_classes:
        raise JobError(f"{class_names_from!r} names {len(class_names)} classes, the state_dict's model "
                       f"predicts {model.num_classes}")
    try:
        save_checkpoint(checkpoint, model, class_names=class_names, training=training)
    except OSError as exc:
        raise JobError(f"cannot write {checkpoint!r}: {exc.strerror or exc}") from None
    print(f"wrote {checkpoint}: {type(model).__name__} ({model.num_classes} classes) from {torch_path}")
    return 0

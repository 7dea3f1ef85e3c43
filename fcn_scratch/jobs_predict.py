"""``fcn-scratch predict`` and ``evaluate``: a trained checkpoint on images, or scored on a dataset.

Each job checks its inputs, outputs and memory before any work, and raises
:class:`fcn_scratch.jobs.JobError` (one line) for an expected failure.
"""

from __future__ import annotations

from .jobs import (VAL_SEED_OFFSET, JobError, check_inference_size, check_output, load_model, per_class,
                   set_backend, summary_lines, toy_data)


def _read_image(path):
    """An image file (PNG, JPEG, ... through Pillow) -> RGB ``(H, W, 3)`` float32 in ``[0, 1]``, size-limited."""
    from .images import ImageError, read_rgb

    try:
        return read_rgb(path)
    except ImageError as exc:
        raise JobError(str(exc)) from None


def _input_scaling(meta, model):
    """``(mean, std)`` that map display RGB in [0, 1] to the model's input: the checkpoint's, else the toy data's."""
    import numpy as np

    from .data import MEAN, STD

    norm = meta["training"].get("normalization") or {"mean": MEAN, "std": STD}
    # a per-channel list applies along axis 1 of (N, C, H, W); a number to every channel (validated on load)
    return tuple(np.asarray(norm[k], dtype=np.float32).reshape(-1, 1, 1) if isinstance(norm[k], list)
                 else norm[k] for k in ("mean", "std"))


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _predict_inputs(paths):
    """The image files named by ``--input``: files as given, folders expanded to their images (sorted)."""
    import os

    files = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, n) for n in os.listdir(path)
                           if n.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(path, n)))
            if not found:
                raise JobError(f"--input folder {path!r} holds no image ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        else:
            files.append(path)
    return list(dict.fromkeys(files))  # each image once, in the order given


def _predict_outputs(inputs, output, overlay, several):
    """``[(input, label png, overlay png or None)]``: ``--output`` is the file for one input file, the
    folder (created if missing) for several or a folder, which then holds ``<stem>.png`` (and
    ``<stem>_overlay.png``)."""
    import os

    def overlay_of(path):
        return os.path.splitext(path)[0] + "_overlay.png" if overlay else None

    if not several:
        check_output(output, suffixes=(".png",), what="--output")
        return [(inputs[0], output, overlay_of(output))]
    if os.path.exists(output) and not os.path.isdir(output):
        raise JobError(f"--output {output!r} must be a folder for {len(inputs)} inputs (it is a file)")
    stems = {}
    for path in inputs:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in stems:
            raise JobError(f"inputs {stems[stem]!r} and {path!r} would both write {stem}.png into {output!r}")
        stems[stem] = path
    try:
        os.makedirs(output, exist_ok=True)
    except OSError as exc:
        raise JobError(f"cannot create --output folder {output!r}: {exc.strerror or exc}") from None
    plan = [(path, os.path.join(output, stem + ".png"), None) for stem, path in stems.items()]
    plan = [(i, o, overlay_of(o)) for i, o, _ in plan]
    check_output(plan[0][1], suffixes=(".png",), what="--output")  # the folder accepts a new file
    return plan


def predict(checkpoint, inputs, output, *, overlay=False, backend=None) -> int:
    """``fcn-scratch predict``: segment the images (files, or folders of them) ``inputs`` with ``checkpoint``
    into palette label PNGs at ``output`` (the file for one input, else a folder), optionally overlays."""
    import os

    import numpy as np

    set_backend(backend)
    from .atomic import write_atomic
    from .images import ImageError, image_size
    from .train import predict as segment
    from .viz import overlay_figure, png_bytes, save_label_png

    files = _predict_inputs(inputs)
    several = len(files) > 1 or any(os.path.isdir(p) for p in inputs)
    # checked before the work; .png only: a lossy format would change the class ids
    plan = _predict_outputs(files, output, overlay, several)
    model, meta = load_model(checkpoint)
    if model.in_channels != 3:
        raise JobError(f"the checkpoint's model takes {model.in_channels} input channels, not an RGB image")
    sizes = {}
    for path, _, _ in plan:  # every header (nothing decoded) and the memory, before any work
        try:
            sizes[path] = image_size(path)
        except ImageError as exc:
            raise JobError(str(exc)) from None
        check_inference_size(model, meta, images=1, size=sizes[path], batch_size=1,
                             what=f"segmenting the {sizes[path][1]}x{sizes[path][0]} image {path!r}")
    names = meta["class_names"] or [f"class_{k}" for k in range(model.num_classes)]
    mean, std = _input_scaling(meta, model)
    for path, out, over in plan:
        rgb = _read_image(path)
        x = ((rgb.transpose(2, 0, 1)[None] - mean) / std).astype(model.dtype)
        mask = segment(model, x)[0]
        try:
            save_label_png(mask, out)  # 8-bit palette PNG, VOC's colours; atomic (temp file, os.replace)
            if over is not None:
                data = png_bytes(overlay_figure(rgb, mask, names, title=os.path.basename(path)))
                write_atomic(over, lambda f: f.write(data), suffix=".png")
        except (OSError, ValueError) as exc:
            raise JobError(f"cannot write {out!r}: {getattr(exc, 'strerror', None) or exc}") from None
        counts = np.bincount(mask.ravel(), minlength=model.num_classes)
        share = ", ".join(f"{n} {100 * c / mask.size:.1f}%" for n, c in zip(names, counts) if c)
        print(f"{path}: {mask.shape[1]}x{mask.shape[0]} (WxH) -> {out}" + (f" and {over}" if over else "")
              + f" ({share})")
    return 0


def evaluate(checkpoint, *, data=None, split=None, images=None, seed=None, size=None, batch_size=32,
             ignore_border=None, json_path=None, backend=None) -> int:
    """``fcn-scratch evaluate``: score ``checkpoint`` on the toy shapes of its run (``images``, ``seed``,
    ``size``, ``ignore_border`` override the stored ones) or on ``split`` of the VOC-layout folder ``data``
    (by default a --data run's own folder); print the scores, optionally also write them to ``json_path``."""
    set_backend(backend)
    from .data import CLASS_NAMES
    from .train import evaluate as score

    if json_path:  # before the evaluation, not after
        check_output(json_path, what="--json file")
    model, meta = load_model(checkpoint)
    stored = dict(meta["training"].get("data") or {})
    if data is not None or (stored.get("format") == "voc" and isinstance(stored.get("root"), str)):
        toy = dict(images=images, seed=seed, size=size, ignore_border=ignore_border)
        return _evaluate_voc(model, meta, data if data is not None else stored["root"], checkpoint=checkpoint,
                             split=split, json_path=json_path, toy=toy)
    data = stored
    if split is not None:
        raise JobError("--split goes with --data (a VOC-layout folder)")
    if "size" not in data and size is None:
        raise JobError(f"checkpoint {checkpoint!r} records no toy-data settings; pass --size")
    if size is not None:
        data["size"] = [size, size]
    size = tuple(data["size"])
    if min(size) < 8:
        raise JobError(f"checkpoint {checkpoint!r} records toy images of {size[0]}x{size[1]}; "
                       f"toy images are at least 8x8 (pass --size)")
    if model.in_channels != 3 or model.num_classes < len(CLASS_NAMES):
        raise JobError(f"the checkpoint's model ({model.in_channels} input channels, {model.num_classes} classes) "
                       f"cannot score the toy shapes (3 channels, {len(CLASS_NAMES)} classes)")
    n = images if images is not None else int(data.get("val_images", 100))
    seed = seed if seed is not None else int(data.get("val_seed", VAL_SEED_OFFSET))
    band = ignore_border if ignore_border is not None else int(data.get("ignore_border", 0))
    if band > min(size) // 2:
        raise JobError(f"--ignore-border {band} is wider than half the {size[0]}x{size[1]} images: (almost) "
                       f"every pixel would be ignored; use at most {min(size) // 2}")
    check_inference_size(model, meta, images=n, size=size, batch_size=batch_size,
                         what=f"evaluating on {n} images of {size[0]}x{size[1]}")
    x, m = toy_data(data, n, seed, ignore_border=band)
    if not (m != 255).any():
        raise JobError(f"every pixel of the {n} evaluation masks lies in the {band}-px ignore band: "
                       f"nothing to score; lower --ignore-border")
    scores = score(model, x.astype(model.dtype), m, batch_size=batch_size)
    names = meta["class_names"] or [str(k) for k in range(model.num_classes)]
    print(f"{meta['arch']} from {checkpoint} on {n} toy images {size[0]}x{size[1]} (seed {seed}, "
          f"{f'{band}-px ignore band at label borders' if band else 'every pixel counted'}):")
    return _report_scores(scores, names, json_path, images=n, size=list(size), seed=seed, ignore_border=band,
                          checkpoint=checkpoint)


def _report_scores(scores, names, json_path, **about) -> int:
    """Print the scores; with ``json_path`` also write them, per class by name, with ``about`` the run."""
    from .runs import write_json

    for line in summary_lines(scores, names):
        print(line)
    if json_path:
        try:
            write_json(json_path, dict(scores, per_class_iou=per_class(scores["per_class_iou"], names),
                                       per_class_accuracy=per_class(scores["per_class_accuracy"], names), **about))
        except OSError as exc:  # e.g. the disk filled up since the check
            raise JobError(f"cannot write {json_path!r}: {exc.strerror or exc}") from None
    return 0


def _evaluate_voc(model, meta, root, *, checkpoint, split, json_path, toy) -> int:
    """``evaluate --data DIR [--split val]`` (or a checkpoint trained with --data): every image whole;
    ``toy`` holds the toy-shapes options, refused here."""
    from .voc import DatasetError, VOCDataset, evaluate_dataset

    for key in ("images", "seed", "size", "ignore_border"):
        if toy[key] is not None:
            raise JobError(f"--{key.replace('_', '-')} describes the toy shapes; with --data the dataset's images "
                           f"and masks are scored")
    split = split or "val"
    names = meta["class_names"]
    try:  # the checkpoint's class names (or its class count) say what the masks' ids mean
        ds = VOCDataset(root, split, class_names=names, num_classes=None if names else model.num_classes)
    except DatasetError as exc:
        raise JobError(str(exc)) from None
    except ValueError as exc:
        raise JobError(f"{root}: {exc}") from None
    if model.in_channels != 3 or model.num_classes != ds.num_classes:
        raise JobError(f"the checkpoint's model ({model.in_channels} input channels, {model.num_classes} classes) "
                       f"cannot score {root} (RGB, {ds.num_classes} classes)")
    largest = max(ds.sizes, key=lambda hw: hw[0] * hw[1])
    check_inference_size(model, meta, images=len(ds) if ds.in_memory else 1, size=largest, batch_size=1,
                         what=f"evaluating on {len(ds)} images up to {largest[1]}x{largest[0]}")
    try:
        scores = evaluate_dataset(model, ds)
    except DatasetError as exc:  # a file changed since it was checked
        raise JobError(str(exc)) from None
    names = ds.class_names
    print(f"{meta['arch']} from {checkpoint} on the {len(ds)} images of split {split!r} of {root} "
          f"(whole images, 255 = void not counted):")
    return _report_scores(scores, names, json_path, images=len(ds), data=root, split=split, class_names=names,
                          checkpoint=checkpoint)

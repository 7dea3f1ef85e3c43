"""The ``fcn-scratch`` command (also ``python -m fcn_scratch``).

Each sub-command is a small function ``cmd_<name>(args) -> int`` registered in
:func:`build_parser`. Expected failures (bad arguments, unreadable files)
raise :class:`CLIError`, which :func:`main` prints as one line on stderr with
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's default also exits 2, but prints the usage block first
        raise CLIError(message)


def cmd_gradcheck(args) -> int:
    from .gradcheck import report

    rows = report(include_models=not args.layers_only)
    return 0 if all(r.passed for r in rows) else 1


def cmd_bench(args) -> int:
    from .bench import run

    sections = tuple(args.only) if args.only else ("kernels", "layers", "model", "memory")
    run(sections, repeats=args.repeats, use_torch=not args.no_torch, json_path=args.json,
        cold_start=args.cold_start)
    return 0


# --------------------------------------------------------------------------- training on toy shapes

ARCHS = ("fcn32s", "fcn16s", "fcn8s")
ARCH_TITLES = {"fcn32s": "FCN-32s", "fcn16s": "FCN-16s", "fcn8s": "FCN-8s"}
ARCH_OF_CLASS = {"FCN32s": "fcn32s", "FCN16s": "fcn16s", "FCN8s": "fcn8s"}
VAL_SEED_OFFSET = 10_000  # validation images come from seed + 10000: never the training images

# Defaults of `fcn-scratch train`: the tiny FCN-8s on 64x64 toy shapes, about a minute on 2 cores.
TRAIN_DEFAULTS = dict(size=64, train_images=640, val_images=96, epochs=16, batch_size=8, lr=3e-3,
                      optimizer="adam", weight_decay=0.0, dropout=0.0, seed=0, ignore_border=1)


def _number_type(convert, what, ok):
    """An argparse ``type=``: ``convert`` the text, accept it if ``ok(value)``, else say ``expected <what>``."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value

    return parse


_positive_int = _number_type(int, "a positive integer", lambda v: v >= 1)
_nonnegative_int = _number_type(int, "a non-negative integer", lambda v: v >= 0)
_positive_float = _number_type(float, "a positive number", lambda v: 0 < v < float("inf"))  # NaN fails too
_nonnegative_float = _number_type(float, "a non-negative number", lambda v: 0 <= v < float("inf"))
_fraction = _number_type(float, "a number in [0, 1)", lambda v: 0 <= v < 1)


def _image_size(text):
    value = _positive_int(text)
    if value < 8:
        raise argparse.ArgumentTypeError(f"toy images must be at least 8 pixels, got {value}")
    return value


def _widths(text):
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 5 comma-separated channel counts, got {text!r}") from None
    if len(values) != 5 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected 5 comma-separated positive channel counts, got {text!r}")
    return values


def _json_value(v):
    """NaN (an absent class) becomes null: metrics.json stays standard JSON."""
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if hasattr(v, "tolist"):
        return _json_value(v.tolist())
    return v


def _write_json(path, obj):
    import json
    import os

    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(_json_value(obj), f, indent=2, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


def _make_out_dir(path):
    import os

    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create output directory {path!r}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise CLIError(f"output directory {path!r} is not writable")
    return path


def _set_backend(name):
    if name is not None:
        from . import kernels

        kernels.set_backend(name)


def _data_settings(args):
    """Everything needed to regenerate the run's toy data (stored in the checkpoint for `evaluate`)."""
    return dict(generator="fcn_scratch.data.toy_shapes", size=[args.size, args.size],
                train_images=args.train_images, val_images=args.val_images,
                train_seed=args.seed, val_seed=args.seed + VAL_SEED_OFFSET, ignore_border=args.ignore_border)


def _toy_data(settings, n, seed, *, ignore_border=None):
    """``n`` toy images and masks with the run's settings; ``ignore_border`` overrides the band width."""
    from .data import toy_shapes

    band = settings.get("ignore_border", 0) if ignore_border is None else ignore_border
    return toy_shapes(n, tuple(settings["size"]), seed=seed, ignore_border=band)


def _train_val(settings):
    x, m = _toy_data(settings, settings["train_images"], settings["train_seed"])
    xv, mv = _toy_data(settings, settings["val_images"], settings["val_seed"])
    return x, m, xv, mv


def _model_kwargs(args):
    kw = dict(dropout=args.dropout, seed=args.seed)
    if args.widths is not None:
        kw["widths"] = args.widths
    if args.fc_channels is not None:
        kw["fc_channels"] = args.fc_channels
    return kw


def _first_step_reporter():
    """``FCN_SCRATCH_REPORT_FIRST_STEP=1`` prints ``first step done`` (``fcn-scratch bench --cold-start`` waits for it)."""
    import os
    import time

    if os.environ.get("FCN_SCRATCH_REPORT_FIRST_STEP") != "1":
        return None
    start = time.perf_counter()

    def report(iteration, loss):
        if iteration == 1:
            print(f"first step done after {time.perf_counter() - start:.2f} s", file=sys.stderr, flush=True)

    return report


def _per_class(values, class_names):
    return {name: v for name, v in zip(class_names, values)}


def _summary_lines(scores, class_names):
    per = "  ".join(f"{n} {v:.3f}" if v == v else f"{n} n/a" for n, v in zip(class_names, scores["per_class_iou"]))
    return [f"pixel acc {scores['pixel_accuracy']:.4f}  mean acc {scores['mean_accuracy']:.4f}  "
            f"mean IoU {scores['mean_iou']:.4f}  f.w. IoU {scores['fw_iou']:.4f}",
            f"per-class IoU: {per}"]


def cmd_train(args) -> int:
    import os
    import time

    t0 = time.perf_counter()
    _set_backend(args.backend)
    from .checkpoint import save_checkpoint
    from .data import CLASS_NAMES, MEAN, STD
    from .train import build_model, evaluate, fit, fit_staged, predict
    from .viz import curves_figure, predictions_figure

    out = _make_out_dir(args.out)
    settings = _data_settings(args)
    x, m, xv, mv = _train_val(settings)
    K = len(CLASS_NAMES)
    quiet = args.quiet
    if not quiet:
        preset = "tiny preset" if args.widths is None and args.fc_channels is None else "custom widths"
        print(f"training {ARCH_TITLES[args.arch]} ({preset}) on {len(x)} toy images {args.size}x{args.size}, "
              f"validating on {len(xv)}; {args.epochs} epochs, batch {args.batch_size}, {args.optimizer} "
              f"lr {args.lr}", flush=True)
    fit_kw = dict(batch_size=args.batch_size, seed=args.seed, val_images=xv, val_masks=mv, optimizer=args.optimizer,
                  weight_decay=args.weight_decay, progress=not quiet, step_callback=_first_step_reporter(),
                  threads=args.threads)
    if args.staged:
        stages = ARCHS[: ARCHS.index(args.arch) + 1]
        models, histories = fit_staged(x, m, num_classes=K, epochs=args.epochs, lr=args.lr, stages=stages,
                                       model_kwargs=_model_kwargs(args), **fit_kw)
        model = models[list(models)[-1]]
        history = histories[list(histories)[-1]]
        stopped = next((h["stopped"] for h in histories.values() if h["stopped"]), None)
    else:
        model = build_model(args.arch, K, **_model_kwargs(args))
        history = fit(model, x, m, epochs=args.epochs, lr=args.lr, **fit_kw)
        stopped = history["stopped"]
    train_seconds = time.perf_counter() - t0
    scores = evaluate(model, xv, mv, num_classes=K)
    # the same images scored on every pixel, without the ignore band at label borders
    strict = evaluate(model, xv, _toy_data(settings, len(xv), settings["val_seed"], ignore_border=0)[1],
                      num_classes=K) if args.ignore_border else scores
    preds = predict(model, xv[:6])
    arch_name = type(model).__name__
    training = dict(arch=ARCH_OF_CLASS.get(arch_name, arch_name), epochs=args.epochs, batch_size=args.batch_size,
                    lr=args.lr, optimizer=args.optimizer, weight_decay=args.weight_decay, seed=args.seed,
                    staged=args.staged, data=settings, normalization={"mean": MEAN, "std": STD},
                    val_mean_iou=scores["mean_iou"], iterations=history["iterations"], stopped=stopped)
    save_checkpoint(os.path.join(out, "model.npz"), model, class_names=CLASS_NAMES, training=_json_value(training))
    title = f"{ARCH_TITLES[training['arch']]}: validation mean IoU {scores['mean_iou']:.3f}"
    predictions_figure(xv, mv, preds, CLASS_NAMES, os.path.join(out, "predictions.png"), title=title)
    curves_figure(history, os.path.join(out, "curves.png"), title=ARCH_TITLES[training["arch"]])
    from . import kernels

    metrics = dict(
        arch=training["arch"],
        pixel_accuracy=scores["pixel_accuracy"], mean_accuracy=scores["mean_accuracy"],
        mean_iou=scores["mean_iou"], fw_iou=scores["fw_iou"],
        per_class_iou=_per_class(scores["per_class_iou"], CLASS_NAMES),
        per_class_accuracy=_per_class(scores["per_class_accuracy"], CLASS_NAMES),
        confusion_matrix=scores["confusion_matrix"], class_names=list(CLASS_NAMES),
        ignore_border=args.ignore_border,
        strict={k: (_per_class(strict[k], CLASS_NAMES) if k.startswith("per_class") else strict[k])
                for k in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou", "per_class_iou")},
        train_seconds=train_seconds, wall_time_seconds=time.perf_counter() - t0,
        backend=kernels.get_backend(), stopped=stopped,
        history={k: v for k, v in history.items() if k not in ("stopped",)},
        settings={k: v for k, v in training.items() if k not in ("val_mean_iou", "stopped")},
    )
    _write_json(os.path.join(out, "metrics.json"), metrics)
    if not quiet:
        band = (f"with a {args.ignore_border}-px ignore band at label borders, as PASCAL VOC"
                if args.ignore_border else "every pixel counted")
        print(f"validation ({band}):")
        for line in _summary_lines(scores, CLASS_NAMES):
            print("  " + line)
        if args.ignore_border:
            print("strict (every pixel counted, no band):")
            for line in _summary_lines(strict, CLASS_NAMES):
                print("  " + line)
        print(f"wall time {metrics['wall_time_seconds']:.1f} s; wrote metrics.json, model.npz, predictions.png, "
              f"curves.png to {out}")
    if stopped:
        print(f"fcn-scratch: warning: {stopped}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- predict / evaluate


def _load(path):
    from .checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path)
    except FileNotFoundError:
        raise CLIError(f"checkpoint {path!r} not found") from None
    except CheckpointError as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot read checkpoint {path!r}: {exc.strerror or exc}") from None


def _read_image(path):
    """A PNG (or any format matplotlib reads) -> RGB ``(H, W, 3)`` float in ``[0, 1]``."""
    import os

    import numpy as np
    from matplotlib.image import imread

    if not os.path.isfile(path):
        raise CLIError(f"input image {path!r} not found")
    try:
        img = imread(path)
    except Exception as exc:  # PIL / libpng raise many types for a broken file
        raise CLIError(f"cannot read image {path!r}: {type(exc).__name__}: {exc}") from None
    img = np.asarray(img)
    if img.dtype.kind in "ui":  # 8-bit or 16-bit formats come back as integers
        img = img / float(np.iinfo(img.dtype).max)
    if img.ndim == 2:  # greyscale: the same value in R, G and B
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.size == 0:
        raise CLIError(f"image {path!r} has shape {img.shape}; expected (H, W, 3) RGB or (H, W, 4) RGBA")
    return img[:, :, :3].astype(np.float32)


def cmd_predict(args) -> int:
    import numpy as np

    _set_backend(args.backend)
    from .data import normalize
    from .train import predict
    from .viz import save_mask_png

    model, meta = _load(args.checkpoint)
    rgb = _read_image(args.input)
    if model.in_channels != 3:
        raise CLIError(f"the checkpoint's model takes {model.in_channels} input channels, not an RGB image")
    norm = meta["training"].get("normalization") or {}
    if norm:  # the checkpoint says how its training images were scaled
        x = ((rgb.transpose(2, 0, 1)[None] - norm["mean"]) / norm["std"]).astype(model.dtype)
    else:
        x = normalize(rgb.transpose(2, 0, 1)[None]).astype(model.dtype)
    mask = predict(model, x)[0]
    try:
        save_mask_png(mask, args.output, model.num_classes)
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot write {args.output!r}: {exc}") from None
    names = meta["class_names"] or [str(k) for k in range(model.num_classes)]
    counts = np.bincount(mask.ravel(), minlength=model.num_classes)
    share = ", ".join(f"{n} {100 * c / mask.size:.1f}%" for n, c in zip(names, counts) if c)
    print(f"{args.input}: {mask.shape[0]}x{mask.shape[1]} -> {args.output} ({share})")
    return 0


def cmd_evaluate(args) -> int:
    _set_backend(args.backend)
    from .train import evaluate

    model, meta = _load(args.checkpoint)
    data = dict(meta["training"].get("data") or {})
    if "size" not in data and args.size is None:
        raise CLIError(f"checkpoint {args.checkpoint!r} records no toy-data settings; pass --size")
    if args.size is not None:
        data["size"] = [args.size, args.size]
    size = tuple(data["size"])
    n = args.images if args.images is not None else int(data.get("val_images", 100))
    seed = args.seed if args.seed is not None else int(data.get("val_seed", VAL_SEED_OFFSET))
    band = args.ignore_border if args.ignore_border is not None else int(data.get("ignore_border", 0))
    x, m = _toy_data(data, n, seed, ignore_border=band)
    scores = evaluate(model, x.astype(model.dtype), m, batch_size=args.batch_size)
    names = meta["class_names"] or [str(k) for k in range(model.num_classes)]
    print(f"{meta['arch']} from {args.checkpoint} on {n} toy images {size[0]}x{size[1]} (seed {seed}, "
          f"{f'{band}-px ignore band at label borders' if band else 'every pixel counted'}):")
    for line in _summary_lines(scores, names):
        print(line)
    if args.json:
        _write_json(args.json, dict(scores, per_class_iou=_per_class(scores["per_class_iou"], names),
                                    per_class_accuracy=_per_class(scores["per_class_accuracy"], names),
                                    images=n, size=list(size), seed=seed, ignore_border=band,
                                    checkpoint=args.checkpoint))
    return 0


# --------------------------------------------------------------------------- compare


def cmd_compare(args) -> int:
    import os
    import time

    _set_backend(args.backend)
    from .checkpoint import save_checkpoint
    from .data import CLASS_NAMES, MEAN, STD
    from .train import build_model, evaluate, fit, predict
    from .viz import comparison_figure

    out = _make_out_dir(args.out)
    settings = _data_settings(args)
    x, m, xv, mv = _train_val(settings)
    mv_strict = _toy_data(settings, len(xv), settings["val_seed"], ignore_border=0)[1]
    K = len(CLASS_NAMES)
    rows, preds, curves = {}, {}, {}
    for arch in ARCHS:
        if not args.quiet:
            print(f"-- {ARCH_TITLES[arch]}", flush=True)
        t0 = time.perf_counter()
        model = build_model(arch, K, **_model_kwargs(args))  # same seed: the same backbone initial weights
        history = fit(model, x, m, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      val_images=xv, val_masks=mv, optimizer=args.optimizer, weight_decay=args.weight_decay,
                      progress=not args.quiet, threads=args.threads)
        scores = evaluate(model, xv, mv, num_classes=K)
        scores["seconds"] = time.perf_counter() - t0
        scores["strict_mean_iou"] = evaluate(model, xv, mv_strict, num_classes=K)["mean_iou"]
        scores["stopped"] = history["stopped"]
        scores["history"] = history
        rows[arch], preds[ARCH_TITLES[arch]] = scores, predict(model, xv[: args.show])
        curves[arch] = history
        if args.save_models:
            save_checkpoint(os.path.join(out, f"{arch}.npz"), model, class_names=CLASS_NAMES,
                            training=_json_value(dict(arch=arch, epochs=args.epochs, seed=args.seed, data=settings,
                                                      normalization={"mean": MEAN, "std": STD})))
    thin = CLASS_NAMES.index("ring")
    header = f"{'':10}{'pixel acc.':>11}{'mean acc.':>11}{'mean IU':>9}{'f.w. IU':>9}{'ring IU':>9}{'seconds':>9}"
    print(header)
    for arch, s in rows.items():
        print(f"{ARCH_TITLES[arch]:10}{100 * s['pixel_accuracy']:11.1f}{100 * s['mean_accuracy']:11.1f}"
              f"{100 * s['mean_iou']:9.1f}{100 * s['fw_iou']:9.1f}{100 * s['per_class_iou'][thin]:9.1f}"
              f"{s['seconds']:9.1f}")
    if args.ignore_border:
        print(f"scored with a {args.ignore_border}-px ignore band at label borders (as PASCAL VOC); counting every "
              f"pixel, mean IU is " + ", ".join(f"{100 * rows[a]['strict_mean_iou']:.1f}" for a in ARCHS))
    order = [rows[a]["mean_iou"] for a in ARCHS]
    ordered = order[2] >= order[1] >= order[0]
    print(f"FCN-8s >= FCN-16s >= FCN-32s in mean IU: {'yes' if ordered else 'NO'}"
          f" (the paper's Table 2, PASCAL VOC 2011 val: 59.4, 62.4, 62.7)")
    mious = {ARCH_TITLES[a]: rows[a]["mean_iou"] for a in ARCHS}
    comparison_figure(xv[: args.show], mv[: args.show], preds, CLASS_NAMES, os.path.join(out, "compare.png"), scores=mious)
    _write_json(os.path.join(out, "compare.json"), dict(
        data=settings, epochs=args.epochs, lr=args.lr, optimizer=args.optimizer, batch_size=args.batch_size,
        class_names=list(CLASS_NAMES),
        results={a: dict({k: v for k, v in s.items() if k not in ("history", "confusion_matrix")},
                         per_class_iou=_per_class(s["per_class_iou"], CLASS_NAMES),
                         per_class_accuracy=_per_class(s["per_class_accuracy"], CLASS_NAMES))
                 for a, s in rows.items()}))
    if not args.quiet:
        print(f"wrote compare.png and compare.json to {out}")
    return 0 if not any(s["stopped"] for s in rows.values()) else 1


def _add_training_arguments(p, defaults, *, out):
    p.add_argument("--epochs", type=_positive_int, default=defaults["epochs"], help="passes over the training set")
    p.add_argument("--size", type=_image_size, default=defaults["size"], help="image height and width (pixels)")
    p.add_argument("--train-images", type=_positive_int, default=defaults["train_images"], help="training images")
    p.add_argument("--val-images", type=_positive_int, default=defaults["val_images"], help="validation images")
    p.add_argument("--batch-size", type=_positive_int, default=defaults["batch_size"])
    p.add_argument("--lr", type=_positive_float, default=defaults["lr"], help="base learning rate (poly decay)")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default=defaults["optimizer"])
    p.add_argument("--weight-decay", type=_nonnegative_float, default=defaults["weight_decay"],
                   help="L2 on weights, not biases")
    p.add_argument("--dropout", type=_fraction, default=defaults["dropout"], help="Dropout2d p after fc6 and fc7")
    p.add_argument("--widths", type=_widths, default=None,
                   help="channels of the 5 blocks, e.g. 16,32,64,128,128 (default: the tiny preset)")
    p.add_argument("--fc-channels", type=_positive_int, default=None, help="channels of fc6/fc7 (tiny: 256)")
    p.add_argument("--seed", type=_nonnegative_int, default=defaults["seed"],
                   help="seeds the data, the initial weights, the shuffling and dropout")
    p.add_argument("--ignore-border", type=_nonnegative_int, default=defaults["ignore_border"],
                   help="pixels at label borders left out of loss and metrics (PASCAL VOC's void band); 0 = none")
    p.add_argument("--out", default=out, help=f"output directory (default {out})")
    p.add_argument("--backend", choices=["numba", "numpy"], default=None, help="kernel backend")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="split each batch across this many threads (default: every usable CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fcn-scratch", description="FCN-32s/16s/8s from scratch in NumPy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("gradcheck", help="finite-difference check of every layer (and tiny FCNs), float64")
    p.add_argument("--layers-only", action="store_true", help="skip the whole-model checks")
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("bench", help="time kernels, layers and FCN-8s beside their NumPy twins and PyTorch")
    p.add_argument("--only", nargs="+", choices=["kernels", "layers", "model", "memory"],
                   help="run only these sections (default: all but the cold start)")
    p.add_argument("--repeats", type=int, default=7, help="timed blocks per contender (best is kept)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch contenders")
    p.add_argument("--cold-start", action="store_true",
                   help="also time `fcn-scratch train` from launch to its first step, cold and warm cache")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("train", help="train a tiny FCN on toy shapes; writes metrics.json, model.npz, "
                                     "predictions.png, curves.png")
    p.add_argument("--arch", choices=ARCHS, default="fcn8s", help="which FCN (default fcn8s)")
    _add_training_arguments(p, TRAIN_DEFAULTS, out="runs/latest")
    p.add_argument("--staged", action="store_true",
                   help="train FCN-32s, then 16s, then 8s (up to --arch), each from the previous one")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="segment one image with a trained checkpoint, write a colour mask PNG")
    p.add_argument("--checkpoint", required=True, help="model.npz written by `fcn-scratch train`")
    p.add_argument("--input", required=True, help="an RGB image (PNG), any size")
    p.add_argument("--output", required=True, help="where to write the colour mask (PNG)")
    p.add_argument("--backend", choices=["numba", "numpy"], default=None)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="pixel acc., mean acc., mean IoU, f.w. IoU of a checkpoint on toy shapes")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--images", type=_positive_int, default=None, help="how many (default: the training run's val set)")
    p.add_argument("--seed", type=_nonnegative_int, default=None,
                   help="data seed (default: the training run's validation seed)")
    p.add_argument("--size", type=_image_size, default=None, help="image size (default: the training size)")
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--ignore-border", type=_nonnegative_int, default=None,
                   help="width of the ignore band at label borders (default: the training run's; 0 counts every pixel)")
    p.add_argument("--json", metavar="PATH", help="also write the scores as JSON")
    p.add_argument("--backend", choices=["numba", "numpy"], default=None)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="train FCN-32s, 16s and 8s on the same data and budget; the paper's "
                                       "Table 2 columns and a side-by-side figure")
    _add_training_arguments(p, TRAIN_DEFAULTS, out="runs/compare")
    p.add_argument("--show", type=_positive_int, default=5, help="validation images in the figure")
    p.add_argument("--save-models", action="store_true", help="also write fcn32s.npz, fcn16s.npz, fcn8s.npz")
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except CLIError as exc:
        print(f"fcn-scratch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fcn-scratch: interrupted", file=sys.stderr)
        return 130

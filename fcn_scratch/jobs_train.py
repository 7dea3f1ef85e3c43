"""``fcn-scratch train`` and ``compare``: a training run from its settings to its files.

A job takes the command line's options as a dict (``{dest: value}``, as argparse parses them with
:mod:`fcn_scratch.options`) and the command line itself (for ``--resume``, which checks which options
were given, and for report.html); it prints its progress and summary, returns the exit status
(0; 3 = diverged; 128 + signal = interrupted) and raises :class:`fcn_scratch.jobs.JobError` (one line)
for an expected failure. The output protocol (locked ``--out``, atomic files, the marker file last)
is :mod:`fcn_scratch.runs`; the training loop is :mod:`fcn_scratch.train`.
"""

from __future__ import annotations

import argparse
import sys

from .jobs import (VAL_SEED_OFFSET, JobError, json_value, load_model, per_class, set_backend, summary_lines,
                   toy_data)
from .options import ARCHS, TRAIN_DEFAULTS, OptionError, train_parser

ARCH_TITLES = {"fcn32s": "FCN-32s", "fcn16s": "FCN-16s", "fcn8s": "FCN-8s"}
ARCH_OF_CLASS = {"FCN32s": "fcn32s", "FCN16s": "fcn16s", "FCN8s": "fcn8s"}

# Exit statuses beyond 0 (done) and 2 (an error, one line): 3 = training diverged (the last good
# weights and the run's outputs are written); 128 + signal = interrupted (130 SIGINT, 143 SIGTERM),
# with a resumable model.npz when training had started.
EXIT_DIVERGED = 3

# What a run is: these settings are stored in model.npz and a resumed run takes them from there.
RUN_SETTINGS = ("arch", "epochs", "size", "train_images", "val_images", "batch_size", "lr", "optimizer",
                "weight_decay", "dropout", "widths", "fc_channels", "seed", "ignore_border", "staged",
                "data", "crop", "augment")
# settings added later: a checkpoint written before them stored none, and meant these values
LATER_SETTINGS = {"data": None, "crop": None, "augment": False}
# metrics.json last: its presence marks a complete set
TRAIN_OUTPUTS = ("model.npz", "history.csv", "predictions.png", "curves.png", "report.html", "metrics.json")
# options that describe the generated toy shapes, and those that only apply to a dataset on disk
TOY_ONLY = ("size", "train_images", "val_images", "ignore_border")
DATA_ONLY = ("crop", "augment")


def _data_settings(args):
    """Everything needed to regenerate the run's toy data (stored in the checkpoint for `evaluate`)."""
    return dict(generator="fcn_scratch.data.toy_shapes", size=[args.size, args.size],
                train_images=args.train_images, val_images=args.val_images,
                train_seed=args.seed, val_seed=args.seed + VAL_SEED_OFFSET, ignore_border=args.ignore_border)


def _train_val(settings):
    x, m = toy_data(settings, settings["train_images"], settings["train_seed"])
    xv, mv = toy_data(settings, settings["val_images"], settings["val_seed"])
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


def _run_settings(args) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k in RUN_SETTINGS for v in [getattr(args, k)]}


def _given_options(argv) -> dict:
    """The options of a ``train`` command line that were given, not defaulted: ``{dest: value}``."""
    p = train_parser()
    for action in p._actions:
        action.default = argparse.SUPPRESS
    try:  # the command line has passed the same parser already
        return vars(p.parse_args(argv))
    except OptionError as exc:
        raise JobError(str(exc)) from None


def _settings_namespace(settings, path):
    """The stored settings, parsed as the command line would be: the same checks on a file from anywhere."""
    argv = []
    for key in RUN_SETTINGS:
        value = settings[key]
        flag = "--" + key.replace("_", "-")
        if key in ("staged", "augment"):
            argv += [flag] if value is True else []
        elif key == "widths" and isinstance(value, list):
            argv += [flag, ",".join(str(v) for v in value)]
        elif value is not None or key not in ("widths", "fc_channels", "data", "crop"):
            argv += [flag, str(value)]
    try:
        return train_parser().parse_args(argv)
    except OptionError as exc:
        raise JobError(f"{path!r}: the run's stored settings are invalid ({exc})") from None


def _resume_settings(args):
    """For ``--resume``: the checkpoint path and its training metadata; ``args`` take the run's settings.

    Refuses (one line) an option that contradicts the stored run; only --threads, --backend and
    --quiet may differ (--threads changes float rounding, so bit-for-bit needs the same count).
    """
    import os

    from .checkpoint import CheckpointError, read_checkpoint

    path = args.resume
    if os.path.isdir(path):
        path = os.path.join(path, "model.npz")
    if not os.path.isfile(path):
        raise JobError(f"nothing to resume: {path!r} not found")
    try:
        header, _ = read_checkpoint(path)
    except (CheckpointError, OSError) as exc:
        raise JobError(str(exc)) from None
    training = header["training"]
    settings = training.get("settings")
    if isinstance(settings, dict):
        settings = dict(LATER_SETTINGS, **settings)
    if not isinstance(settings, dict) or set(settings) != set(RUN_SETTINGS) or not training.get("run_id"):
        raise JobError(f"{path!r} was not written by a resumable `fcn-scratch train` run")
    stored = _settings_namespace(settings, path)
    given = _given_options(args.argv[1:])
    out = os.path.dirname(os.path.abspath(path))
    if "out" in given and os.path.abspath(given["out"]) != out:
        raise JobError(f"--out {given['out']} conflicts with --resume {args.resume}: a resumed run writes where "
                       f"it started ({out})")
    if given.get("data") is not None:  # a folder is the same folder however it is written
        given["data"] = os.path.abspath(given["data"])
    for key in RUN_SETTINGS:
        if key in given and given[key] != getattr(stored, key):
            raise JobError(f"--{key.replace('_', '-')} {given[key]} conflicts with the run being resumed "
                           f"({key.replace('_', '-')} {getattr(stored, key)}); a resumed run keeps its settings "
                           f"(only --threads, --backend and --quiet may be given)")
        setattr(args, key, getattr(stored, key))
    args.out = out
    return path, training


def train(options: dict, *, argv) -> int:
    """``fcn-scratch train``: ``options`` as :func:`fcn_scratch.options.add_train_arguments` parses them,
    ``argv`` the command line after ``fcn-scratch`` (``["train", ...]``)."""
    import os
    import time

    t0 = time.perf_counter()
    args = argparse.Namespace(**options, argv=list(argv))  # the run's settings; a resumed run's replace them
    set_backend(args.backend)
    from . import runs

    if args.data is not None:  # stored absolute, so `--resume` finds it from any directory
        args.data = os.path.abspath(args.data)
    resume = None
    if args.resume is not None:
        resume = _resume_settings(args)
        status = resume[1].get("status")
        if status == "finished" and os.path.isfile(os.path.join(args.out, "metrics.json")):
            print(f"the run in {args.out} is already finished ({args.epochs} epoch{'s' if args.epochs != 1 else ''}); nothing to do")
            return 0
        if args.staged:
            raise JobError(f"the run in {args.out} is a --staged run, which cannot be resumed; start it again")
        if status == "diverged":
            raise JobError(f"the run in {args.out} diverged ({resume[1].get('stopped')}); resuming would repeat "
                           f"it: start a new run, e.g. with a smaller --lr")
    # args now hold the run's settings (a resumed run's too): the dataset is checked and the run's size
    # estimated before anything is allocated, trained or removed from --out
    data = _open_data(args)
    _check_run_size(args, ARCHS[: ARCHS.index(args.arch) + 1] if args.staged else (args.arch,), data)
    try:
        with runs.StopSignals() as signals:
            return _train(args, t0, signals, resume, data)
    except runs.RunError as exc:
        raise JobError(str(exc)) from None


def _open_data(args):
    """``--data``: the train and val splits, opened and validated (one line naming the file on any
    problem), or None for the toy shapes. Refuses the options that do not apply to the chosen data."""
    if args.data is None:
        for key in DATA_ONLY:
            if getattr(args, key) not in (None, False):
                raise JobError(f"--{key} goes with --data (the toy shapes are all --size x --size)")
        if args.batch_size is None:
            args.batch_size = TRAIN_DEFAULTS["batch_size"]
        return None
    for key in TOY_ONLY:
        if getattr(args, key) != TRAIN_DEFAULTS[key]:
            raise JobError(f"--{key.replace('_', '-')} describes the generated toy shapes; with --data the "
                           f"dataset's images and masks decide it")
    from .voc import DatasetError, open_splits

    try:
        splits = open_splits(args.data, ("train", "val"))
    except DatasetError as exc:
        raise JobError(str(exc)) from None
    train = splits["train"]
    if args.batch_size is None:  # whole images of different sizes only go one at a time
        args.batch_size = TRAIN_DEFAULTS["batch_size"] if args.crop is not None or train.same_size() else 1
    if args.crop is None and args.batch_size > 1 and not train.same_size():
        a, b = sorted(set(train.sizes))[:2]
        raise JobError(f"--batch-size {args.batch_size} needs training images of one size, but those in "
                       f"{args.data} differ ({a[1]}x{a[0]} and {b[1]}x{b[0]}, WxH): add --crop S, or use "
                       f"--batch-size 1 (whole images, as the FCN paper)")
    return splits


def _voc_settings(args, data) -> dict:
    """What the checkpoint records of a --data run's data (``evaluate`` finds the folder from it)."""
    sizes = data["train"].sizes + data["val"].sizes
    return dict(format="voc", root=args.data, train_split="train", val_split="val",
                train_images=len(data["train"]), val_images=len(data["val"]), crop=args.crop,
                augment=bool(args.augment), min_size=_wxh(min(sizes, key=lambda s: s[0] * s[1])),
                max_size=_wxh(max(sizes, key=lambda s: s[0] * s[1])))


def _wxh(hw) -> str:
    return f"{hw[1]}x{hw[0]}"


def _sources(args, data, settings):
    """``(train, val, class_names, description)``: the run's data sources (fcn_scratch.train) either way."""
    from .data import CLASS_NAMES
    from .train import ArrayData, DatasetData

    if data is None:
        x, m, xv, mv = _train_val(settings)
        return (ArrayData(x, m), ArrayData(xv, mv, name="val_"), list(CLASS_NAMES),
                f"{len(x)} toy images {args.size}x{args.size}, validating on {len(xv)}")
    train, val = data["train"], data["val"]
    how = f"random {args.crop}x{args.crop} crops" if args.crop else "whole images"
    return (DatasetData(train, crop=args.crop, flip=args.augment), DatasetData(val), list(train.class_names),
            f"{len(train)} images of {args.data} ({settings['min_size']} to {settings['max_size']}, {how}"
            f"{', flipped' if args.augment else ''}), validating on {len(val)} whole images; "
            f"{train.num_classes} classes")


def _train(args, t0, signals, resume, data) -> int:
    """``fcn-scratch train``: see :func:`train`; the output protocol is :mod:`fcn_scratch.runs`'."""
    import time
    import warnings

    from . import kernels, runs
    from .checkpoint import save_checkpoint
    from .data import MEAN, STD
    from .train import build_model, evaluate, fit_data, fit_staged
    from .viz import curves_figure, png_bytes, predictions_figure
    from .voc import DatasetError

    settings = _data_settings(args) if data is None else _voc_settings(args, data)
    quiet = args.quiet
    if resume is not None:
        model, _ = load_model(resume[0])
        try:
            state = runs.read_state(resume[0])
        except ValueError as exc:
            raise JobError(f"cannot resume from {resume[0]!r}: {exc}") from None
        if state.get("images") is not None and data is not None and state["images"] != len(data["train"]):
            raise JobError(f"cannot resume: the run trained on {state['images']} images, {args.data} now lists "
                           f"{len(data['train'])} in its train split")
        run_id = resume[1]["run_id"]
    else:
        K = len(data["train"].class_names) if data is not None else len(_toy_class_names())
        model, state, run_id = build_model(args.arch, K, **_model_kwargs(args)), None, runs.new_run_id()
    size = runs.checkpoint_size(model, args.optimizer)
    with runs.RunDir(args.out, outputs=TRAIN_OUTPUTS, sizes={"model.npz": size}, fresh=resume is None) as run:
        out = run.path
        train_data, val_data, class_names, described = _sources(args, data, settings)
        K = len(class_names)
        if model.num_classes != K:
            raise JobError(f"the model being resumed predicts {model.num_classes} classes, the data has {K}")
        if not quiet:
            preset = "tiny preset" if args.widths is None and args.fc_channels is None else "custom widths"
            what = (f"resuming run {run_id} in {out} after epoch {state['epoch']}, iteration {state['iteration']}: "
                    if state else "")
            print(f"{what}training {ARCH_TITLES[args.arch]} ({preset}) on {described}; {args.epochs} epochs, "
                  f"batch {args.batch_size}, {args.optimizer} lr {args.lr}", flush=True)
        current = {"model": model, "state": state}

        def metadata(status, state, **extra):
            arch_name = type(current["model"]).__name__
            return json_value(dict(
                arch=ARCH_OF_CLASS.get(arch_name, arch_name), epochs=args.epochs, batch_size=args.batch_size,
                lr=args.lr, optimizer=args.optimizer, weight_decay=args.weight_decay, seed=args.seed,
                staged=args.staged, data=settings, normalization={"mean": MEAN, "std": STD},
                iterations=state["iteration"], epoch=state["epoch"], run_id=run_id, status=status,
                settings=_run_settings(args), threads=args.threads, stopped=state["history"].get("stopped"),
                **extra))

        def save(state, status, **extra):
            path = run.file("model.npz")
            try:
                save_checkpoint(path, current["model"], class_names=class_names,
                                training=metadata(status, state, **extra), extras=runs.pack_state(state))
            except OSError as exc:
                raise runs.RunError(f"cannot write {path!r}: {exc.strerror or exc}; the previous model.npz "
                                    f"is kept") from None
            run.write("history.csv", runs.history_csv(state["history"], run_id).encode(),
                      keep="model.npz is written")

        def on_state(state, event):
            current["state"] = state
            save(state, {"epoch": "running", "interrupted": "interrupted", "diverged": "diverged"}[event])

        fit_kw = dict(batch_size=args.batch_size, seed=args.seed, val=val_data, num_classes=K,
                      optimizer=args.optimizer, weight_decay=args.weight_decay, progress=not quiet,
                      threads=args.threads, on_state=on_state, stop=signals,
                      step_callback=runs.chain(_first_step_reporter(), runs.fault_hook(lambda: current["model"])))
        try:
            with warnings.catch_warnings(), signals.deferred():
                # a diverging run overflows in NumPy (RuntimeWarnings, from every thread); fit catches the
                # non-finite values itself and says so in one line
                warnings.simplefilter("ignore", RuntimeWarning)
                if args.staged:
                    stages = ARCHS[: ARCHS.index(args.arch) + 1]
                    kw = {k: v for k, v in fit_kw.items() if k != "num_classes"}
                    models, histories = fit_staged(train_data, None, num_classes=K, epochs=args.epochs, lr=args.lr,
                                                   stages=stages, model_kwargs=_model_kwargs(args),
                                                   on_stage=lambda stage, mdl: current.update(model=mdl), **kw)
                    model, history = current["model"], histories[list(histories)[-1]]
                    stopped = next((h["stopped"] for h in histories.values() if h["stopped"]), None)
                else:
                    history = fit_data(model, train_data, epochs=args.epochs, lr=args.lr, resume=state, **fit_kw)
                    stopped = history["stopped"]
        except DatasetError as exc:  # a file changed or vanished since the dataset was checked
            st = current["state"]
            kept = f"; model.npz holds epoch {st['epoch']}" if st else ""
            raise JobError(f"{exc}{kept}") from None
        interrupted = history["interrupted"] or signals.received
        if interrupted:
            st = current["state"]
            saved = (f"saved {run.file('model.npz')} after epoch {st['epoch']}, iteration {st['iteration']}; "
                     + ("a --staged run cannot be resumed" if args.staged else
                        f"continue with: fcn-scratch train --resume {out}")) if st else "nothing saved yet"
            print(f"fcn-scratch: interrupted by {runs.signal_name(interrupted)}; {saved}", file=sys.stderr)
            return 128 + int(interrupted)
        train_seconds = time.perf_counter() - t0
        scores, _ = val_data.scores_and_loss(model, K, 255, 32)
        strict = None
        if data is None and args.ignore_border:
            # the same images scored on every pixel, without the ignore band at label borders
            strict = evaluate(model, val_data.images,
                              toy_data(settings, len(val_data), settings["val_seed"], ignore_border=0)[1],
                              num_classes=K)
        shown = val_data.examples(model, 6)
        status = "diverged" if stopped else "finished"
        final = current["state"]
        arch = metadata(status, final)["arch"]
        kept = (f"model.npz holds the last good weights (epoch {final['epoch']})" if stopped else
                f"model.npz holds epoch {final['epoch']}; finish the outputs with: fcn-scratch train --resume {out}")
        png = {"Comment": f"fcn_scratch run {run_id}"}
        title = f"{ARCH_TITLES[arch]}: validation mean IoU {scores['mean_iou']:.3f}"
        predictions_png = png_bytes(predictions_figure(*shown, class_names, title=title), metadata=png)
        run.write("predictions.png", predictions_png, keep=kept)
        run.write("curves.png", png_bytes(curves_figure(history, title=ARCH_TITLES[arch]), metadata=png), keep=kept)
        save(final, status, val_mean_iou=scores["mean_iou"])  # the status says the figures are there
        diverged = history.get("diverged") or next(
            (h.get("diverged") for h in (histories.values() if args.staged else ()) if h.get("diverged")), None)
        metrics = dict(
            run_id=run_id, status=status, arch=arch,
            pixel_accuracy=scores["pixel_accuracy"], mean_accuracy=scores["mean_accuracy"],
            mean_iou=scores["mean_iou"], fw_iou=scores["fw_iou"],
            per_class_iou=per_class(scores["per_class_iou"], class_names),
            per_class_accuracy=per_class(scores["per_class_accuracy"], class_names),
            confusion_matrix=scores["confusion_matrix"], class_names=list(class_names),
            ignore_border=args.ignore_border if data is None else None,
            strict=None if strict is None else {
                k: (per_class(strict[k], class_names) if k.startswith("per_class") else strict[k])
                for k in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou", "per_class_iou")},
            train_seconds=train_seconds, wall_time_seconds=time.perf_counter() - t0,
            backend=kernels.get_backend(), stopped=stopped, diverged=diverged,
            history={k: v for k, v in history.items() if k not in ("stopped", "diverged", "interrupted")},
            settings={k: v for k, v in metadata(status, final).items()
                      if k not in ("val_mean_iou", "stopped", "status", "run_id", "epoch")},
        )
        metrics = json_value(metrics)
        # report.html before metrics.json: the marker of a complete set comes last
        run.write("report.html", _report_page(
            args, metrics=metrics, settings=metrics["settings"], history=history, run_id=run_id,
            class_names=class_names, title=f"fcn-scratch train: {ARCH_TITLES[arch]}",
            figures={"predictions on validation images (image | ground truth | prediction)": predictions_png}),
            keep=kept)
        run.write("metrics.json", runs.json_bytes(metrics), keep=kept)
    if not quiet:
        if data is None:
            band = (f"with a {args.ignore_border}-px ignore band at label borders, as PASCAL VOC"
                    if args.ignore_border else "every pixel counted")
            print(f"validation ({band}):")
        else:
            print(f"validation ({len(val_data)} whole images of {args.data}, 255 = void not counted):")
        for line in summary_lines(scores, class_names):
            print("  " + line)
        if strict is not None:
            print("strict (every pixel counted, no band):")
            for line in summary_lines(strict, class_names):
                print("  " + line)
        print(f"wall time {metrics['wall_time_seconds']:.1f} s; wrote model.npz, history.csv, predictions.png, "
              f"curves.png, report.html, metrics.json to {out}")
    if stopped:
        print(f"fcn-scratch: {stopped}; wrote the outputs of those weights to {out}", file=sys.stderr)
        return EXIT_DIVERGED
    return 0


def _toy_class_names():
    from .data import CLASS_NAMES

    return list(CLASS_NAMES)


def _command_line(args) -> str:
    import shlex

    return shlex.join(["fcn-scratch", *args.argv])


def _report_page(args, **kwargs) -> bytes:
    """``report.html`` (fcn_scratch.report) for this command line, as bytes for ``RunDir.write``."""
    from .report import render_report

    return render_report(command=_command_line(args), **kwargs).encode("utf-8")


def _check_run_size(args, archs, data=None):
    """Before any data or model exists: the ignore band leaves pixels to learn from, and the run fits in memory.

    With ``--data`` (``data`` = the opened splits) the estimate takes the largest image for every
    image (an upper bound), the crop for the training batch, and counts the images only while the
    datasets keep them in memory (else one batch is read at a time).
    """
    from . import budget
    from .data import CLASS_NAMES

    if data is None:
        if args.ignore_border > args.size // 2:
            raise JobError(f"--ignore-border {args.ignore_border} is wider than half the {args.size}x{args.size} "
                           f"images: (almost) every pixel would be ignored; use at most {args.size // 2}")
        K, size, n_train, n_val = len(CLASS_NAMES), args.size, args.train_images, args.val_images
    else:
        train, val = data["train"], data["val"]
        K = train.num_classes
        size = max(train.sizes + val.sizes, key=lambda hw: hw[0] * hw[1])
        if args.crop is not None and args.crop ** 2 > size[0] * size[1]:
            size = (args.crop, args.crop)
        n_train = len(train) if train.in_memory else min(args.batch_size, len(train))
        n_val = len(val) if val.in_memory else 1
    try:
        budget.check_training(archs, K, widths=args.widths, fc_channels=args.fc_channels,
                              size=size, train_images=n_train, val_images=n_val,
                              batch_size=args.batch_size, threads=args.threads)
    except budget.MemoryBudgetError as exc:
        raise JobError(str(exc)) from None


def compare(options: dict, *, argv) -> int:
    """``fcn-scratch compare``: FCN-32s, 16s and 8s trained alike; ``options`` as
    :func:`fcn_scratch.options.add_training_arguments` parses them, ``argv`` the command line."""
    import os

    args = argparse.Namespace(**options, argv=list(argv))
    set_backend(args.backend)
    if args.data is not None:
        args.data = os.path.abspath(args.data)
    data = _open_data(args)
    _check_run_size(args, ("fcn8s",), data)  # one model at a time; FCN-8s is the largest
    from . import runs

    # report.html before compare.json, the marker of a complete set
    outputs = ("compare.png", "report.html", "compare.json") + \
        (tuple(f"{a}.npz" for a in ARCHS) if args.save_models else ())
    try:  # the --out protocol of `train` (fcn_scratch.runs): locked, checked first, compare.json written last
        with runs.StopSignals(), runs.RunDir(args.out, outputs=outputs, marker="compare.json") as run:
            return _compare(args, run, data)
    except runs.RunError as exc:
        raise JobError(str(exc)) from None


def _compare(args, run, data) -> int:
    import os
    import time

    from . import runs
    from .checkpoint import save_checkpoint
    from .data import MEAN, STD
    from .train import build_model, evaluate, fit_data
    from .viz import comparison_figure, png_bytes
    from .voc import DatasetError

    out = run.path
    settings = _data_settings(args) if data is None else _voc_settings(args, data)
    train_data, val_data, class_names, described = _sources(args, data, settings)
    mv_strict = None
    if data is None and args.ignore_border:
        mv_strict = toy_data(settings, len(val_data), settings["val_seed"], ignore_border=0)[1]
    K = len(class_names)
    if not args.quiet:
        print(f"training FCN-32s, FCN-16s and FCN-8s on {described}; {args.epochs} epochs each, batch "
              f"{args.batch_size}, {args.optimizer} lr {args.lr}", flush=True)
    rows, preds, curves, shown = {}, {}, {}, None
    for arch in ARCHS:
        if not args.quiet:
            print(f"-- {ARCH_TITLES[arch]}", flush=True)
        t0 = time.perf_counter()
        model = build_model(arch, K, **_model_kwargs(args))  # same seed: the same backbone initial weights
        try:
            history = fit_data(model, train_data, val=val_data, num_classes=K, epochs=args.epochs,
                               batch_size=args.batch_size, lr=args.lr, seed=args.seed, optimizer=args.optimizer,
                               weight_decay=args.weight_decay, progress=not args.quiet, threads=args.threads)
        except DatasetError as exc:  # a file changed or vanished since the dataset was checked
            raise JobError(str(exc)) from None
        scores, _ = val_data.scores_and_loss(model, K, 255, 32)
        scores["seconds"] = time.perf_counter() - t0
        if mv_strict is not None:
            scores["strict_mean_iou"] = evaluate(model, val_data.images, mv_strict, num_classes=K)["mean_iou"]
        scores["stopped"] = history["stopped"]
        scores["history"] = history
        x_show, y_show, preds[ARCH_TITLES[arch]] = val_data.examples(model, args.show)
        shown = (x_show, y_show)
        rows[arch] = scores
        curves[arch] = history
        if args.save_models:
            try:
                save_checkpoint(os.path.join(out, f"{arch}.npz"), model, class_names=class_names,
                                training=json_value(dict(arch=arch, epochs=args.epochs, seed=args.seed, data=settings,
                                                          normalization={"mean": MEAN, "std": STD})))
            except OSError as exc:
                raise JobError(f"cannot write {os.path.join(out, f'{arch}.npz')!r}: {exc.strerror or exc}") from None
    # the thin class, where the skips show most: the toy shapes' ring
    thin = class_names.index("ring") if "ring" in class_names else None
    header = f"{'':10}{'pixel acc.':>11}{'mean acc.':>11}{'mean IU':>9}{'f.w. IU':>9}" + \
        (f"{'ring IU':>9}" if thin is not None else "") + f"{'seconds':>9}"
    print(header)
    for arch, s in rows.items():
        print(f"{ARCH_TITLES[arch]:10}{100 * s['pixel_accuracy']:11.1f}{100 * s['mean_accuracy']:11.1f}"
              f"{100 * s['mean_iou']:9.1f}{100 * s['fw_iou']:9.1f}"
              + (f"{100 * s['per_class_iou'][thin]:9.1f}" if thin is not None else "") + f"{s['seconds']:9.1f}")
    if mv_strict is not None:
        print(f"scored with a {args.ignore_border}-px ignore band at label borders (as PASCAL VOC); counting every "
              f"pixel, mean IU is " + ", ".join(f"{100 * rows[a]['strict_mean_iou']:.1f}" for a in ARCHS))
    order = [rows[a]["mean_iou"] for a in ARCHS]
    ordered = order[2] >= order[1] >= order[0]
    print(f"FCN-8s >= FCN-16s >= FCN-32s in mean IU: {'yes' if ordered else 'NO'}"
          f" (the paper's Table 2, PASCAL VOC 2011 val: 59.4, 62.4, 62.7)")
    mious = {ARCH_TITLES[a]: rows[a]["mean_iou"] for a in ARCHS}
    compare_png = png_bytes(comparison_figure(*shown, preds, class_names, scores=mious))
    run.write("compare.png", compare_png)
    results = json_value({
        a: dict({k: v for k, v in s.items() if k != "history"},
                per_class_iou=per_class(s["per_class_iou"], class_names),
                per_class_accuracy=per_class(s["per_class_accuracy"], class_names))
        for a, s in rows.items()})
    summary = dict(data=settings, epochs=args.epochs, lr=args.lr, optimizer=args.optimizer,
                   batch_size=args.batch_size, class_names=list(class_names))
    run.write("report.html", _report_page(
        args, metrics={ARCH_TITLES[a]: dict(r, class_names=list(class_names)) for a, r in results.items()},
        settings=json_value(dict(summary, seed=args.seed, weight_decay=args.weight_decay, dropout=args.dropout,
                                  widths=args.widths, fc_channels=args.fc_channels, threads=args.threads)),
        history={ARCH_TITLES[a]: h for a, h in curves.items()}, class_names=class_names,
        title="fcn-scratch compare: FCN-32s, FCN-16s, FCN-8s",
        figures={"validation images: ground truth and each model's prediction": compare_png}))
    # compare.json keeps its shape: the confusion matrices live in report.html
    run.write("compare.json", runs.json_bytes(dict(summary, results={
        a: {k: v for k, v in r.items() if k != "confusion_matrix"} for a, r in results.items()})))
    if not args.quiet:
        print(f"wrote compare.png, report.html and compare.json to {out}")
    return 0 if not any(s["stopped"] for s in rows.values()) else EXIT_DIVERGED

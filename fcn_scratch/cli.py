"""The ``fcn-scratch`` command (also ``python -m fcn_scratch``).

Each sub-command is a small function ``cmd_<name>(args) -> int`` registered in
:func:`build_parser`. Expected failures (bad arguments, unreadable files)
raise :class:`CLIError`, which :func:`main` prints as one line on stderr with
exit status 2, never a traceback.

Exit statuses: 0 done; 2 an error (one line); 3 training diverged (the last good
weights and their outputs are written, see ``fcn_scratch.train.fit``); 130 / 143
interrupted by SIGINT / SIGTERM (``train`` saves a checkpoint that
``train --resume DIR`` continues). The training output protocol (locked ``--out``,
atomic files, ``metrics.json`` last) is :mod:`fcn_scratch.runs`.
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

    if args.json:  # before the bench runs, not after
        _check_output(args.json, what="--json file")
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
    """Atomically, through a unique temporary file (concurrent writers never share one): see runs.write_json."""
    from .runs import write_json

    write_json(path, obj)


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


def _run_settings(args) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k in RUN_SETTINGS for v in [getattr(args, k)]}


def _train_only_parser():
    p = _Parser(prog="fcn-scratch train")
    _add_train_arguments(p)
    return p


def _given_options(argv) -> dict:
    """The options of a ``train`` command line that were given, not defaulted: ``{dest: value}``."""
    p = _train_only_parser()
    for action in p._actions:
        action.default = argparse.SUPPRESS
    return vars(p.parse_args(argv))


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
        return _train_only_parser().parse_args(argv)
    except CLIError as exc:
        raise CLIError(f"{path!r}: the run's stored settings are invalid ({exc})") from None


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
        raise CLIError(f"nothing to resume: {path!r} not found")
    try:
        header, _ = read_checkpoint(path)
    except (CheckpointError, OSError) as exc:
        raise CLIError(str(exc)) from None
    training = header["training"]
    settings = training.get("settings")
    if isinstance(settings, dict):
        settings = dict(LATER_SETTINGS, **settings)
    if not isinstance(settings, dict) or set(settings) != set(RUN_SETTINGS) or not training.get("run_id"):
        raise CLIError(f"{path!r} was not written by a resumable `fcn-scratch train` run")
    stored = _settings_namespace(settings, path)
    given = _given_options(getattr(args, "argv", [])[1:])
    out = os.path.dirname(os.path.abspath(path))
    if "out" in given and os.path.abspath(given["out"]) != out:
        raise CLIError(f"--out {given['out']} conflicts with --resume {args.resume}: a resumed run writes where "
                       f"it started ({out})")
    if given.get("data") is not None:  # a folder is the same folder however it is written
        given["data"] = os.path.abspath(given["data"])
    for key in RUN_SETTINGS:
        if key in given and given[key] != getattr(stored, key):
            raise CLIError(f"--{key.replace('_', '-')} {given[key]} conflicts with the run being resumed "
                           f"({key.replace('_', '-')} {getattr(stored, key)}); a resumed run keeps its settings "
                           f"(only --threads, --backend and --quiet may be given)")
        setattr(args, key, getattr(stored, key))
    args.out = out
    return path, training


def cmd_train(args) -> int:
    import os
    import time

    t0 = time.perf_counter()
    _set_backend(args.backend)
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
            raise CLIError(f"the run in {args.out} is a --staged run, which cannot be resumed; start it again")
        if status == "diverged":
            raise CLIError(f"the run in {args.out} diverged ({resume[1].get('stopped')}); resuming would repeat "
                           f"it: start a new run, e.g. with a smaller --lr")
    # args now hold the run's settings (a resumed run's too): the dataset is checked and the run's size
    # estimated before anything is allocated, trained or removed from --out
    data = _open_data(args)
    _check_run_size(args, ARCHS[: ARCHS.index(args.arch) + 1] if args.staged else (args.arch,), data)
    try:
        with runs.StopSignals() as signals:
            return _train(args, t0, signals, resume, data)
    except runs.RunError as exc:
        raise CLIError(str(exc)) from None


def _open_data(args):
    """``--data``: the train and val splits, opened and validated (one line naming the file on any
    problem), or None for the toy shapes. Refuses the options that do not apply to the chosen data."""
    if args.data is None:
        for key in DATA_ONLY:
            if getattr(args, key) not in (None, False):
                raise CLIError(f"--{key} goes with --data (the toy shapes are all --size x --size)")
        if args.batch_size is None:
            args.batch_size = TRAIN_DEFAULTS["batch_size"]
        return None
    for key in TOY_ONLY:
        if getattr(args, key) != TRAIN_DEFAULTS[key]:
            raise CLIError(f"--{key.replace('_', '-')} describes the generated toy shapes; with --data the "
                           f"dataset's images and masks decide it")
    from .voc import DatasetError, open_splits

    try:
        splits = open_splits(args.data, ("train", "val"))
    except DatasetError as exc:
        raise CLIError(str(exc)) from None
    train = splits["train"]
    if args.batch_size is None:  # whole images of different sizes only go one at a time
        args.batch_size = TRAIN_DEFAULTS["batch_size"] if args.crop is not None or train.same_size() else 1
    if args.crop is None and args.batch_size > 1 and not train.same_size():
        a, b = sorted(set(train.sizes))[:2]
        raise CLIError(f"--batch-size {args.batch_size} needs training images of one size, but those in "
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
    """``fcn-scratch train``: see :func:`cmd_train`; the output protocol is :mod:`fcn_scratch.runs`'."""
    import time
    import warnings

    from . import kernels, runs
    from .checkpoint import save_checkpoint
    from .data import MEAN, STD
    from .train import build_model, evaluate, fit_data, fit_staged
    from .viz import curves_figure, predictions_figure
    from .voc import DatasetError

    settings = _data_settings(args) if data is None else _voc_settings(args, data)
    quiet = args.quiet
    if resume is not None:
        model, _ = _load(resume[0])
        try:
            state = runs.read_state(resume[0])
        except ValueError as exc:
            raise CLIError(f"cannot resume from {resume[0]!r}: {exc}") from None
        if state.get("images") is not None and data is not None and state["images"] != len(data["train"]):
            raise CLIError(f"cannot resume: the run trained on {state['images']} images, {args.data} now lists "
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
            raise CLIError(f"the model being resumed predicts {model.num_classes} classes, the data has {K}")
        if not quiet:
            preset = "tiny preset" if args.widths is None and args.fc_channels is None else "custom widths"
            what = (f"resuming run {run_id} in {out} after epoch {state['epoch']}, iteration {state['iteration']}: "
                    if state else "")
            print(f"{what}training {ARCH_TITLES[args.arch]} ({preset}) on {described}; {args.epochs} epochs, "
                  f"batch {args.batch_size}, {args.optimizer} lr {args.lr}", flush=True)
        current = {"model": model, "state": state}

        def metadata(status, state, **extra):
            arch_name = type(current["model"]).__name__
            return _json_value(dict(
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
            raise CLIError(f"{exc}{kept}") from None
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
                              _toy_data(settings, len(val_data), settings["val_seed"], ignore_border=0)[1],
                              num_classes=K)
        shown = val_data.examples(model, 6)
        status = "diverged" if stopped else "finished"
        final = current["state"]
        arch = metadata(status, final)["arch"]
        kept = (f"model.npz holds the last good weights (epoch {final['epoch']})" if stopped else
                f"model.npz holds epoch {final['epoch']}; finish the outputs with: fcn-scratch train --resume {out}")
        png = {"Comment": f"fcn_scratch run {run_id}"}
        title = f"{ARCH_TITLES[arch]}: validation mean IoU {scores['mean_iou']:.3f}"
        predictions_png = runs.figure_png(predictions_figure(*shown, class_names, title=title), png)
        run.write("predictions.png", predictions_png, keep=kept)
        run.write("curves.png", runs.figure_png(curves_figure(history, title=ARCH_TITLES[arch]), png), keep=kept)
        save(final, status, val_mean_iou=scores["mean_iou"])  # the status says the figures are there
        diverged = history.get("diverged") or next(
            (h.get("diverged") for h in (histories.values() if args.staged else ()) if h.get("diverged")), None)
        metrics = dict(
            run_id=run_id, status=status, arch=arch,
            pixel_accuracy=scores["pixel_accuracy"], mean_accuracy=scores["mean_accuracy"],
            mean_iou=scores["mean_iou"], fw_iou=scores["fw_iou"],
            per_class_iou=_per_class(scores["per_class_iou"], class_names),
            per_class_accuracy=_per_class(scores["per_class_accuracy"], class_names),
            confusion_matrix=scores["confusion_matrix"], class_names=list(class_names),
            ignore_border=args.ignore_border if data is None else None,
            strict=None if strict is None else {
                k: (_per_class(strict[k], class_names) if k.startswith("per_class") else strict[k])
                for k in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou", "per_class_iou")},
            train_seconds=train_seconds, wall_time_seconds=time.perf_counter() - t0,
            backend=kernels.get_backend(), stopped=stopped, diverged=diverged,
            history={k: v for k, v in history.items() if k not in ("stopped", "diverged", "interrupted")},
            settings={k: v for k, v in metadata(status, final).items()
                      if k not in ("val_mean_iou", "stopped", "status", "run_id", "epoch")},
        )
        metrics = _json_value(metrics)
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
        for line in _summary_lines(scores, class_names):
            print("  " + line)
        if strict is not None:
            print("strict (every pixel counted, no band):")
            for line in _summary_lines(strict, class_names):
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

    return shlex.join(["fcn-scratch", *getattr(args, "argv", [args.command])])


def _report_page(args, **kwargs) -> bytes:
    """``report.html`` (fcn_scratch.report) for this command line, as bytes for ``RunDir.write``."""
    from .report import render_report

    return render_report(command=_command_line(args), **kwargs).encode("utf-8")



# --------------------------------------------------------------------------- predict / evaluate


def _load(path):
    """``(model, meta)`` from our ``.npz`` checkpoint, or from a PyTorch state_dict ``.pt``/``.pth``
    (needs torch; it holds no class names or normalisation): :func:`fcn_scratch.checkpoint.load_checkpoint`."""
    from .checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path)
    except FileNotFoundError:
        raise CLIError(f"checkpoint {path!r} not found") from None
    except CheckpointError as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot read checkpoint {path!r}: {exc.strerror or exc}") from None


def _check_output(path, *, suffixes=None, what="output"):
    """Refuse an output path that cannot be written, before the work that produces it starts."""
    from .images import check_writable_file

    try:
        return check_writable_file(path, suffixes=suffixes, what=what)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


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
            raise CLIError(f"--ignore-border {args.ignore_border} is wider than half the {args.size}x{args.size} "
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
        raise CLIError(str(exc)) from None


def _check_inference_size(model, meta, *, images, size, batch_size, what):
    """Refuse ``predict``/``evaluate`` work that would not fit in memory (a big image into a big model)."""
    from . import budget
    from .checkpoint import architectures

    cls = architectures().get(meta["arch"])
    if cls is None:
        return
    config = dict(meta["config"])
    try:
        budget.check(budget.estimate_inference(cls, config, images=images, size=size, batch_size=batch_size,
                                               itemsize=model.dtype.itemsize), what, "use a smaller input")
    except budget.MemoryBudgetError as exc:
        raise CLIError(str(exc)) from None


def _read_image(path):
    """An image file (PNG, JPEG, ... through Pillow) -> RGB ``(H, W, 3)`` float32 in ``[0, 1]``, size-limited."""
    from .images import ImageError, read_rgb

    try:
        return read_rgb(path)
    except ImageError as exc:
        raise CLIError(str(exc)) from None


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
                raise CLIError(f"--input folder {path!r} holds no image ({', '.join(IMAGE_SUFFIXES)})")
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
        _check_output(output, suffixes=(".png",), what="--output")
        return [(inputs[0], output, overlay_of(output))]
    if os.path.exists(output) and not os.path.isdir(output):
        raise CLIError(f"--output {output!r} must be a folder for {len(inputs)} inputs (it is a file)")
    stems = {}
    for path in inputs:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in stems:
            raise CLIError(f"inputs {stems[stem]!r} and {path!r} would both write {stem}.png into {output!r}")
        stems[stem] = path
    try:
        os.makedirs(output, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create --output folder {output!r}: {exc.strerror or exc}") from None
    plan = [(path, os.path.join(output, stem + ".png"), None) for stem, path in stems.items()]
    plan = [(i, o, overlay_of(o)) for i, o, _ in plan]
    _check_output(plan[0][1], suffixes=(".png",), what="--output")  # the folder accepts a new file
    return plan


def cmd_predict(args) -> int:
    import os

    import numpy as np

    _set_backend(args.backend)
    from .images import ImageError, image_size, write_atomic
    from .train import predict
    from .viz import overlay_figure, png_bytes, save_label_png

    inputs = _predict_inputs(args.input)
    several = len(inputs) > 1 or any(os.path.isdir(p) for p in args.input)
    # checked before the work; .png only: a lossy format would change the class ids
    plan = _predict_outputs(inputs, args.output, args.overlay, several)
    model, meta = _load(args.checkpoint)
    if model.in_channels != 3:
        raise CLIError(f"the checkpoint's model takes {model.in_channels} input channels, not an RGB image")
    sizes = {}
    for path, _, _ in plan:  # every header (nothing decoded) and the memory, before any work
        try:
            sizes[path] = image_size(path)
        except ImageError as exc:
            raise CLIError(str(exc)) from None
        _check_inference_size(model, meta, images=1, size=sizes[path], batch_size=1,
                              what=f"segmenting the {sizes[path][1]}x{sizes[path][0]} image {path!r}")
    names = meta["class_names"] or [f"class_{k}" for k in range(model.num_classes)]
    mean, std = _input_scaling(meta, model)
    for path, out, over in plan:
        rgb = _read_image(path)
        x = ((rgb.transpose(2, 0, 1)[None] - mean) / std).astype(model.dtype)
        mask = predict(model, x)[0]
        try:
            save_label_png(mask, out)  # 8-bit palette PNG, VOC's colours; atomic (temp file, os.replace)
            if over is not None:
                data = png_bytes(overlay_figure(rgb, mask, names, title=os.path.basename(path)))
                write_atomic(over, lambda f: f.write(data), suffix=".png")
        except (OSError, ValueError) as exc:
            raise CLIError(f"cannot write {out!r}: {getattr(exc, 'strerror', None) or exc}") from None
        counts = np.bincount(mask.ravel(), minlength=model.num_classes)
        share = ", ".join(f"{n} {100 * c / mask.size:.1f}%" for n, c in zip(names, counts) if c)
        print(f"{path}: {mask.shape[1]}x{mask.shape[0]} (WxH) -> {out}" + (f" and {over}" if over else "")
              + f" ({share})")
    return 0


def cmd_evaluate(args) -> int:
    _set_backend(args.backend)
    from .data import CLASS_NAMES
    from .train import evaluate

    if args.json:  # before the evaluation, not after
        _check_output(args.json, what="--json file")
    model, meta = _load(args.checkpoint)
    data = dict(meta["training"].get("data") or {})
    if args.data is not None or (data.get("format") == "voc" and isinstance(data.get("root"), str)):
        return _evaluate_voc(args, model, meta, args.data if args.data is not None else data["root"])
    if args.split is not None:
        raise CLIError("--split goes with --data (a VOC-layout folder)")
    if "size" not in data and args.size is None:
        raise CLIError(f"checkpoint {args.checkpoint!r} records no toy-data settings; pass --size")
    if args.size is not None:
        data["size"] = [args.size, args.size]
    size = tuple(data["size"])
    if min(size) < 8:
        raise CLIError(f"checkpoint {args.checkpoint!r} records toy images of {size[0]}x{size[1]}; "
                       f"toy images are at least 8x8 (pass --size)")
    if model.in_channels != 3 or model.num_classes < len(CLASS_NAMES):
        raise CLIError(f"the checkpoint's model ({model.in_channels} input channels, {model.num_classes} classes) "
                       f"cannot score the toy shapes (3 channels, {len(CLASS_NAMES)} classes)")
    n = args.images if args.images is not None else int(data.get("val_images", 100))
    seed = args.seed if args.seed is not None else int(data.get("val_seed", VAL_SEED_OFFSET))
    band = args.ignore_border if args.ignore_border is not None else int(data.get("ignore_border", 0))
    if band > min(size) // 2:
        raise CLIError(f"--ignore-border {band} is wider than half the {size[0]}x{size[1]} images: (almost) "
                       f"every pixel would be ignored; use at most {min(size) // 2}")
    _check_inference_size(model, meta, images=n, size=size, batch_size=args.batch_size,
                          what=f"evaluating on {n} images of {size[0]}x{size[1]}")
    x, m = _toy_data(data, n, seed, ignore_border=band)
    if not (m != 255).any():
        raise CLIError(f"every pixel of the {n} evaluation masks lies in the {band}-px ignore band: "
                       f"nothing to score; lower --ignore-border")
    scores = evaluate(model, x.astype(model.dtype), m, batch_size=args.batch_size)
    names = meta["class_names"] or [str(k) for k in range(model.num_classes)]
    print(f"{meta['arch']} from {args.checkpoint} on {n} toy images {size[0]}x{size[1]} (seed {seed}, "
          f"{f'{band}-px ignore band at label borders' if band else 'every pixel counted'}):")
    for line in _summary_lines(scores, names):
        print(line)
    if args.json:
        try:
            _write_json(args.json, dict(scores, per_class_iou=_per_class(scores["per_class_iou"], names),
                                        per_class_accuracy=_per_class(scores["per_class_accuracy"], names),
                                        images=n, size=list(size), seed=seed, ignore_border=band,
                                        checkpoint=args.checkpoint))
        except OSError as exc:  # e.g. the disk filled up since the check
            raise CLIError(f"cannot write {args.json!r}: {exc.strerror or exc}") from None
    return 0


def _evaluate_voc(args, model, meta, root) -> int:
    """``evaluate --data DIR [--split val]`` (or a checkpoint trained with --data): every image whole."""
    from .voc import DatasetError, VOCDataset, evaluate_dataset

    for key in ("images", "seed", "size", "ignore_border"):
        if getattr(args, key) is not None:
            raise CLIError(f"--{key.replace('_', '-')} describes the toy shapes; with --data the dataset's images "
                           f"and masks are scored")
    split = args.split or "val"
    names = meta["class_names"]
    try:  # the checkpoint's class names (or its class count) say what the masks' ids mean
        ds = VOCDataset(root, split, class_names=names, num_classes=None if names else model.num_classes)
    except DatasetError as exc:
        raise CLIError(str(exc)) from None
    except ValueError as exc:
        raise CLIError(f"{root}: {exc}") from None
    if model.in_channels != 3 or model.num_classes != ds.num_classes:
        raise CLIError(f"the checkpoint's model ({model.in_channels} input channels, {model.num_classes} classes) "
                       f"cannot score {root} (RGB, {ds.num_classes} classes)")
    largest = max(ds.sizes, key=lambda hw: hw[0] * hw[1])
    _check_inference_size(model, meta, images=len(ds) if ds.in_memory else 1, size=largest, batch_size=1,
                          what=f"evaluating on {len(ds)} images up to {largest[1]}x{largest[0]}")
    try:
        scores = evaluate_dataset(model, ds)
    except DatasetError as exc:  # a file changed since it was checked
        raise CLIError(str(exc)) from None
    names = ds.class_names
    print(f"{meta['arch']} from {args.checkpoint} on the {len(ds)} images of split {split!r} of {root} "
          f"(whole images, 255 = void not counted):")
    for line in _summary_lines(scores, names):
        print(line)
    if args.json:
        try:
            _write_json(args.json, dict(scores, per_class_iou=_per_class(scores["per_class_iou"], names),
                                        per_class_accuracy=_per_class(scores["per_class_accuracy"], names),
                                        images=len(ds), data=root, split=split, class_names=names,
                                        checkpoint=args.checkpoint))
        except OSError as exc:
            raise CLIError(f"cannot write {args.json!r}: {exc.strerror or exc}") from None
    return 0


# --------------------------------------------------------------------------- compare


def cmd_compare(args) -> int:
    import os

    _set_backend(args.backend)
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
        raise CLIError(str(exc)) from None


def _compare(args, run, data) -> int:
    import os
    import time

    from . import runs
    from .checkpoint import save_checkpoint
    from .data import MEAN, STD
    from .train import build_model, evaluate, fit_data
    from .viz import comparison_figure
    from .voc import DatasetError

    out = run.path
    settings = _data_settings(args) if data is None else _voc_settings(args, data)
    train_data, val_data, class_names, described = _sources(args, data, settings)
    mv_strict = None
    if data is None and args.ignore_border:
        mv_strict = _toy_data(settings, len(val_data), settings["val_seed"], ignore_border=0)[1]
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
            raise CLIError(str(exc)) from None
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
                                training=_json_value(dict(arch=arch, epochs=args.epochs, seed=args.seed, data=settings,
                                                          normalization={"mean": MEAN, "std": STD})))
            except OSError as exc:
                raise CLIError(f"cannot write {os.path.join(out, f'{arch}.npz')!r}: {exc.strerror or exc}") from None
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
    compare_png = runs.figure_png(comparison_figure(*shown, preds, class_names, scores=mious))
    run.write("compare.png", compare_png)
    results = _json_value({
        a: dict({k: v for k, v in s.items() if k != "history"},
                per_class_iou=_per_class(s["per_class_iou"], class_names),
                per_class_accuracy=_per_class(s["per_class_accuracy"], class_names))
        for a, s in rows.items()})
    summary = dict(data=settings, epochs=args.epochs, lr=args.lr, optimizer=args.optimizer,
                   batch_size=args.batch_size, class_names=list(class_names))
    run.write("report.html", _report_page(
        args, metrics={ARCH_TITLES[a]: dict(r, class_names=list(class_names)) for a, r in results.items()},
        settings=_json_value(dict(summary, seed=args.seed, weight_decay=args.weight_decay, dropout=args.dropout,
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


# --------------------------------------------------------------------------- sample / export

_sample_count = _number_type(int, "an integer >= 2 (one training and one validation image at least)",
                             lambda v: v >= 2)


def cmd_sample(args) -> int:
    from .voc import write_sample

    if args.min_size > args.max_size:
        raise CLIError(f"--min-size {args.min_size} is larger than --max-size {args.max_size}")
    try:
        info = write_sample(args.out, n=args.n, size=(args.min_size, args.max_size), seed=args.seed,
                            image_format=args.format)
    except (ValueError, OSError) as exc:
        raise CLIError(f"cannot write the sample to {args.out!r}: {getattr(exc, 'strerror', None) or exc}") \
            from None
    print(f"wrote {info['train'] + info['val']} toy-shapes images ({info['min_size']} to {info['max_size']}, WxH) "
          f"in PASCAL VOC layout to {args.out}: {info['train']} in ImageSets/Segmentation/train.txt, "
          f"{info['val']} in val.txt; classes {', '.join(info['class_names'])} (labels.txt)")
    print(f"train on it with: fcn-scratch train --data {args.out} --crop 64")
    return 0


def _torch_or_error():
    try:
        import torch  # noqa: F401
    except ImportError:
        raise CLIError("reading or writing PyTorch .pt files needs torch; the CPU build: pip install torch "
                       "--index-url https://download.pytorch.org/whl/cpu") from None


def cmd_export(args) -> int:
    import os

    from .checkpoint import save_checkpoint
    from .export import ExportError, export_torch, import_torch

    _torch_or_error()
    if not args.from_torch:
        if args.class_names_from:
            raise CLIError("--class-names-from goes with --from-torch (an exported .pt holds weights only)")
        _check_output(args.torch, suffixes=(".pt", ".pth"), what="--torch")
        _load(args.checkpoint)  # validated first: a bad checkpoint is one line
        try:
            info = export_torch(args.checkpoint, args.torch)
        except (ExportError, OSError) as exc:
            raise CLIError(f"cannot export to {args.torch!r}: {getattr(exc, 'strerror', None) or exc}") from None
        cfg = info["config"]
        print(f"wrote {args.torch}: the {info['arch']} state_dict, {len(info['keys'])} tensors ({info['dtype']}); "
              f"load it with fcn_scratch.torch_ref.CLASSES[{info['arch']!r}]({cfg['num_classes']}, "
              f"{cfg.get('in_channels', 3)}, {tuple(cfg['widths'])}, {tuple(cfg['convs_per_block'])}, "
              f"{cfg['fc_channels']}).load_state_dict(torch.load({args.torch!r}, weights_only=True))")
        return 0
    _check_output(args.checkpoint, suffixes=(".npz",), what="--checkpoint")
    class_names, training = None, {"imported_from": os.path.basename(args.torch)}
    if args.class_names_from:
        _, like = _load(args.class_names_from)
        class_names = like["class_names"]
        if like["training"].get("normalization"):
            training["normalization"] = like["training"]["normalization"]
    try:
        model = import_torch(args.torch)
    except ExportError as exc:
        raise CLIError(str(exc)) from None
    if class_names is not None and len(class_names) != model.num_classes:
        raise CLIError(f"{args.class_names_from!r} names {len(class_names)} classes, the state_dict's model "
                       f"predicts {model.num_classes}")
    try:
        save_checkpoint(args.checkpoint, model, class_names=class_names, training=training)
    except OSError as exc:
        raise CLIError(f"cannot write {args.checkpoint!r}: {exc.strerror or exc}") from None
    print(f"wrote {args.checkpoint}: {type(model).__name__} ({model.num_classes} classes) from {args.torch}")
    return 0


def cmd_exercise(args) -> int:
    from .exercises import ExerciseError, check_command, list_command

    try:
        if args.exercise_command == "list":
            return list_command()
        return check_command(args.name, args.file)
    except ExerciseError as exc:
        raise CLIError(str(exc)) from None


def _add_training_arguments(p, defaults, *, out):
    p.add_argument("--data", metavar="DIR", default=None,
                   help="train on a PASCAL VOC-layout folder (JPEGImages/, SegmentationClass/, "
                        "ImageSets/Segmentation/{train,val}.txt, optional labels.txt; `fcn-scratch sample` "
                        "writes one) instead of generated toy shapes (default: toy shapes)")
    p.add_argument("--crop", type=_image_size, default=None, metavar="S",
                   help="with --data: train on random SxS windows (smaller images padded, masks with 255) so "
                        "images of any size batch together (default: whole images; batch size 1 if sizes differ)")
    p.add_argument("--augment", action="store_true", help="with --data: mirror each training sample left-right "
                                                          "with probability 1/2")
    p.add_argument("--epochs", type=_positive_int, default=defaults["epochs"], help="passes over the training set")
    p.add_argument("--size", type=_image_size, default=defaults["size"],
                   help="toy image height and width in pixels")
    p.add_argument("--train-images", type=_positive_int, default=defaults["train_images"],
                   help="toy training images")
    p.add_argument("--val-images", type=_positive_int, default=defaults["val_images"],
                   help="toy validation images (never among the training ones)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help=f"images per optimiser step (default: {defaults['batch_size']}; 1 with --data on whole "
                        f"images of different sizes, as the FCN paper)")
    p.add_argument("--lr", type=_positive_float, default=defaults["lr"],
                   help="base learning rate, decayed as lr (1 - it/max_it)^0.9")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default=defaults["optimizer"],
                   help="sgd (momentum 0.9) or adam")
    p.add_argument("--weight-decay", type=_nonnegative_float, default=defaults["weight_decay"],
                   help="L2 penalty on weights, not biases")
    p.add_argument("--dropout", type=_fraction, default=defaults["dropout"],
                   help="Dropout2d drop probability after fc6 and fc7")
    p.add_argument("--widths", type=_widths, default=None,
                   help="channels of the 5 blocks, e.g. 16,32,64,128,128 (default: the tiny preset, 16,32,64,128,128)")
    p.add_argument("--fc-channels", type=_positive_int, default=None,
                   help="channels of fc6 and fc7 (default: the tiny preset's 256)")
    p.add_argument("--seed", type=_nonnegative_int, default=defaults["seed"],
                   help="seeds the toy data, the initial weights, the shuffling, crops, flips and dropout")
    p.add_argument("--ignore-border", type=_nonnegative_int, default=defaults["ignore_border"],
                   help="toy shapes: pixels at label borders left out of loss and metrics (PASCAL VOC's void "
                        "band); 0 = none")
    p.add_argument("--out", default=out, help="output directory")
    p.add_argument("--backend", choices=["numba", "numpy"], default=None,
                   help="kernel backend (default: numba, or $FCN_SCRATCH_BACKEND)")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="split each batch across this many threads (default: every usable CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _add_train_arguments(p):
    """The options of `fcn-scratch train` (also parsed alone to see which a --resume contradicts)."""
    p.add_argument("--arch", choices=ARCHS, default="fcn8s", help="which FCN")
    _add_training_arguments(p, TRAIN_DEFAULTS, out="runs/latest")
    p.add_argument("--staged", action="store_true",
                   help="train FCN-32s, then 16s, then 8s (up to --arch), each from the previous one")
    p.add_argument("--resume", metavar="DIR_OR_CHECKPOINT", default=None,
                   help="continue an interrupted run (its --out, or its model.npz) to its planned epochs, "
                        "with its own settings (default: start a new run)")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults formatter, quiet where a default says nothing: flags (False), positionals,
    required options and ``None`` (whose help then says in words what happens without the option)."""

    def _get_help_string(self, action):
        text = action.help or ""
        # `is`, not `in (None, False)`: a default of 0 or 0.0 equals False, and must still be shown
        if ("%(default)" in text or not action.option_strings or action.required
                or action.default is None or action.default is False or action.default == argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


def _version() -> str:
    """The installed distribution's version, else the package's ``__version__`` (a source checkout)."""
    from importlib import metadata

    from . import __version__

    try:
        return metadata.version("fcn_scratch")
    except metadata.PackageNotFoundError:
        return __version__


# the order a user needs them in; `fcn-scratch --help` lists them so
COMMANDS = ("train", "predict", "evaluate", "compare", "sample", "export", "gradcheck", "bench", "exercise")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fcn-scratch", formatter_class=_HelpFormatter,
                     description="FCN-32s/16s/8s from scratch in NumPy: train, predict, evaluate, compare, and "
                                 "check every layer. Errors print one line and exit 2.",
                     epilog="`fcn-scratch COMMAND --help` describes a command and its options.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name, help, description=None):
        return sub.add_parser(name, help=help, description=description or help, formatter_class=_HelpFormatter)

    p = command("train", "train an FCN on toy shapes or a VOC-layout folder (--data); writes model.npz, "
                         "history.csv, predictions.png, curves.png, report.html, metrics.json",
                "Train an FCN on generated toy shapes, or on a PASCAL VOC-layout folder with --data. "
                "Writes to --out: model.npz (every epoch, resumable), history.csv, predictions.png, curves.png, "
                "report.html and, last, metrics.json. Exit 3: training diverged; 130/143: interrupted "
                "(continue with --resume).")
    _add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    p = command("predict", "segment images with a trained checkpoint: palette label PNGs (VOC's colours), "
                           "optionally overlays with a legend",
                "Segment images with a trained checkpoint. Each label image is an 8-bit palette PNG whose pixel "
                "values are the class ids, coloured with PASCAL VOC's palette (what VOC tools and "
                "PIL.Image.open read); --overlay adds the colour mask blended over the image with a legend. "
                "Sizes print as WxH.")
    p.add_argument("--checkpoint", required=True,
                   help="model.npz written by `fcn-scratch train` (or a PyTorch state_dict .pt, needs torch)")
    p.add_argument("--input", required=True, nargs="+", action="extend", metavar="PATH",
                   help="images (PNG, JPEG, ...; greyscale, palette and RGBA are converted; up to 50 megapixels "
                        "each) or folders of them; repeat the option or list several paths")
    p.add_argument("--output", required=True, metavar="PATH",
                   help="for one input: the label image file (.png); for several: a folder (created if missing) "
                        "that receives <name>.png for each input")
    p.add_argument("--overlay", action="store_true",
                   help="also write <output stem>_overlay.png: the colour mask blended over the image, with a "
                        "legend of the class names")
    p.add_argument("--backend", choices=["numba", "numpy"], default=None,
                   help="kernel backend (default: numba, or $FCN_SCRATCH_BACKEND)")
    p.set_defaults(func=cmd_predict)

    p = command("evaluate", "pixel acc., mean acc., mean IoU, f.w. IoU of a checkpoint on toy shapes or a "
                            "VOC-layout folder",
                "Score a checkpoint: on the toy shapes of its training run (regenerated from the stored seed), "
                "or on a split of a VOC-layout folder (--data; a run trained with --data uses its own folder "
                "by default), every image whole at its own size.")
    p.add_argument("--checkpoint", required=True,
                   help="model.npz written by `fcn-scratch train` (or a PyTorch state_dict .pt, needs torch)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="score on this VOC-layout folder (default: the training run's folder if it used --data, "
                        "else toy shapes)")
    p.add_argument("--split", default=None,
                   help="with --data: the split list to score, ImageSets/Segmentation/<split>.txt (default: val)")
    p.add_argument("--images", type=_positive_int, default=None,
                   help="how many toy images (default: the training run's validation count)")
    p.add_argument("--seed", type=_nonnegative_int, default=None,
                   help="toy data seed (default: the training run's validation seed)")
    p.add_argument("--size", type=_image_size, default=None, help="toy image size (default: the training size)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="images per forward pass")
    p.add_argument("--ignore-border", type=_nonnegative_int, default=None,
                   help="width of the ignore band at label borders (default: the training run's; 0 counts every "
                        "pixel)")
    p.add_argument("--json", metavar="PATH", help="also write the scores as JSON (default: print only)")
    p.add_argument("--backend", choices=["numba", "numpy"], default=None,
                   help="kernel backend (default: numba, or $FCN_SCRATCH_BACKEND)")
    p.set_defaults(func=cmd_evaluate)

    p = command("compare", "train FCN-32s, 16s and 8s on the same data and budget; the paper's Table 2 columns, "
                           "a side-by-side figure and report.html")
    _add_training_arguments(p, TRAIN_DEFAULTS, out="runs/compare")
    p.add_argument("--show", type=_positive_int, default=5, help="validation images in the figure")
    p.add_argument("--save-models", action="store_true", help="also write fcn32s.npz, fcn16s.npz, fcn8s.npz")
    p.set_defaults(func=cmd_compare)

    p = command("sample", "write toy-shapes images and masks in PASCAL VOC layout (try `train --data` at once)",
                "Write N toy-shapes images of mixed sizes with their palette masks in PASCAL VOC 2012 layout: "
                "JPEGImages/<id>.png, SegmentationClass/<id>.png (class ids as palette indices, 255 = void), "
                "ImageSets/Segmentation/train.txt and val.txt, labels.txt.")
    p.add_argument("--out", required=True, metavar="DIR", help="the dataset folder to write (created if needed)")
    p.add_argument("--n", type=_sample_count, default=100, help="how many images (at least 2; 20%% go to val)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="seeds the sizes and the shapes")
    p.add_argument("--min-size", type=_image_size, default=48, help="smallest image side in pixels")
    p.add_argument("--max-size", type=_image_size, default=80, help="largest image side in pixels")
    p.add_argument("--format", choices=["png", "jpg"], default="png",
                   help="image files: lossless png, or jpg as VOC ships (quality 95)")
    p.set_defaults(func=cmd_sample)

    p = command("export", "a checkpoint as a PyTorch state_dict the seed's classes load (needs torch), or back",
                "Write the weights of a model.npz as a PyTorch state_dict (.pt) that the seed's PyTorch "
                "FCN classes (fcn_scratch.torch_ref) load with load_state_dict(strict=True); with --from-torch, "
                "read such a .pt back into a model.npz. Needs torch (CPU build: pip install torch --index-url "
                "https://download.pytorch.org/whl/cpu).")
    p.add_argument("--checkpoint", required=True, metavar="NPZ",
                   help="our checkpoint: read from it, or with --from-torch written to it")
    p.add_argument("--torch", required=True, metavar="PT",
                   help="the PyTorch state_dict file: written, or with --from-torch read")
    p.add_argument("--from-torch", action="store_true",
                   help="convert the other way: --torch file -> --checkpoint file (architecture and widths read "
                        "off the tensor shapes)")
    p.add_argument("--class-names-from", metavar="NPZ", default=None,
                   help="with --from-torch: copy class names and input normalisation from this checkpoint "
                        "(default: none; a state_dict holds weights only)")
    p.set_defaults(func=cmd_export)

    p = command("gradcheck", "finite-difference check of every layer (and tiny FCNs), float64")
    p.add_argument("--layers-only", action="store_true", help="skip the whole-model checks")
    p.set_defaults(func=cmd_gradcheck)

    p = command("bench", "time kernels, layers and FCN-8s beside their NumPy twins and PyTorch")
    p.add_argument("--only", nargs="+", choices=["kernels", "layers", "model", "memory"],
                   help="run only these sections (default: all but the cold start)")
    p.add_argument("--repeats", type=_positive_int, default=7, help="timed blocks per contender (best is kept)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch contenders")
    p.add_argument("--cold-start", action="store_true",
                   help="also time `fcn-scratch train` from launch to its first step, cold and warm cache")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON (default: print only)")
    p.set_defaults(func=cmd_bench)

    p = command("exercise", "graded exercises (lessons/exercises/): list them, check your answer")
    ex = p.add_subparsers(dest="exercise_command", metavar="{list,check}", parser_class=_Parser)
    ex.required = True
    ex.add_parser("list", help="the exercises in lesson order", formatter_class=_HelpFormatter)
    q = ex.add_parser("check", help="grade an exercise against the engine (exit 0 all pass, 1 any fails)",
                      formatter_class=_HelpFormatter)
    q.add_argument("name", help="exercise name (e.g. im2col), file stem (01_im2col) or number")
    q.add_argument("--file", metavar="PATH", default=None,
                   help="your solution (default: the stub in lessons/exercises/)")
    p.set_defaults(func=cmd_exercise)
    return parser


def main(argv=None) -> int:
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        args.argv = argv  # `train --resume` checks which options were given, not defaulted
        return args.func(args)
    except CLIError as exc:
        print(f"fcn-scratch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM where fcn_scratch.runs.StopSignals is installed
        signum = getattr(exc, "signum", 2)
        name = {2: "SIGINT", 15: "SIGTERM"}.get(signum, f"signal {signum}")
        print(f"fcn-scratch: interrupted by {name}", file=sys.stderr)
        return 128 + signum

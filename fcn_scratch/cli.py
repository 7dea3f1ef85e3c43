"""The ``fcn-scratch`` command (also ``python -m fcn_scratch``): a thin dispatcher.

Each sub-command is a small function ``cmd_<name>(args) -> int`` registered in
:func:`build_parser`, which hands the parsed options to a job: :mod:`fcn_scratch.jobs_train`
(train, compare), :mod:`fcn_scratch.jobs_predict` (predict, evaluate), :mod:`fcn_scratch.jobs_files`
(sample, export), :mod:`fcn_scratch.gradcheck`, :mod:`fcn_scratch.bench`, :mod:`fcn_scratch.exercises`.
Expected failures (bad arguments, unreadable files) raise :class:`CLIError` (a job's
:class:`fcn_scratch.jobs.JobError` becomes one), which :func:`main` prints as one line on stderr
with exit status 2, never a traceback.

Exit statuses: 0 done; 2 an error (one line); 3 training diverged (the last good
weights and their outputs are written, see ``fcn_scratch.train.fit``); 130 / 143
interrupted by SIGINT / SIGTERM (``train`` saves a checkpoint that
``train --resume DIR`` continues). The training output protocol (locked ``--out``,
atomic files, ``metrics.json`` last) is :mod:`fcn_scratch.runs`.
"""

from __future__ import annotations

import argparse
import os
import sys

from .jobs import VAL_SEED_OFFSET, JobError
from .jobs_train import EXIT_DIVERGED
from .options import (ARCHS, TRAIN_DEFAULTS, add_train_arguments, add_training_arguments,
                      image_size, nonnegative_int, positive_int, sample_count)

__all__ = ["CLIError", "COMMANDS", "build_parser", "main", "ARCHS", "TRAIN_DEFAULTS", "VAL_SEED_OFFSET",
           "EXIT_DIVERGED"]


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's default also exits 2, but prints the usage block first
        raise CLIError(message)


def _job(job, /, *args, **kwargs) -> int:
    """Run a job; its one-line failure (:class:`fcn_scratch.jobs.JobError`) becomes a :class:`CLIError`."""
    try:
        return job(*args, **kwargs)
    except JobError as exc:
        raise CLIError(str(exc)) from None


def _options(args) -> dict:
    """The parsed options alone, ``{dest: value}`` (not the dispatcher's own attributes)."""
    return {k: v for k, v in vars(args).items() if k not in ("func", "command", "argv")}


def cmd_gradcheck(args) -> int:
    from .gradcheck import report

    rows = report(include_models=not args.layers_only)
    return 0 if all(r.passed for r in rows) else 1


def cmd_bench(args) -> int:
    from .bench import run
    from .jobs import check_output

    if args.json:  # before the bench runs, not after
        _job(check_output, args.json, what="--json file")
    sections = tuple(args.only) if args.only else ("kernels", "layers", "model", "memory")
    run(sections, repeats=args.repeats, use_torch=not args.no_torch, json_path=args.json,
        cold_start=args.cold_start)
    return 0


def cmd_train(args) -> int:
    from .jobs_train import train

    return _job(train, _options(args), argv=getattr(args, "argv", [args.command]))


def cmd_compare(args) -> int:
    from .jobs_train import compare

    return _job(compare, _options(args), argv=getattr(args, "argv", [args.command]))


def cmd_predict(args) -> int:
    from .jobs_predict import predict

    return _job(predict, args.checkpoint, args.input, args.output, overlay=args.overlay, backend=args.backend)


def cmd_evaluate(args) -> int:
    from .jobs_predict import evaluate

    return _job(evaluate, args.checkpoint, data=args.data, split=args.split, images=args.images, seed=args.seed,
                size=args.size, batch_size=args.batch_size, ignore_border=args.ignore_border,
                json_path=args.json, backend=args.backend)


def cmd_sample(args) -> int:
    from .jobs_files import sample

    return _job(sample, args.out, n=args.n, seed=args.seed, min_size=args.min_size, max_size=args.max_size,
                image_format=args.format)


def cmd_export(args) -> int:
    from .jobs_files import export

    return _job(export, args.checkpoint, args.torch, from_torch=args.from_torch,
                class_names_from=args.class_names_from)


def cmd_exercise(args) -> int:
    from .exercises import ExerciseError, check_command, list_command
    from .i18n import MissingTranslation, resolve_language

    try:
        lang = resolve_language(args.lang)  # --lang, else $FCN_SCRATCH_LANG, else en
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    try:
        if args.exercise_command == "list":
            return list_command(lang=lang)
        return check_command(args.name, args.file, lang=lang)
    except ExerciseError as exc:
        raise CLIError(exc.message.text(lang)) from None
    except MissingTranslation as exc:  # a text without its Korean: one line, not a traceback
        raise CLIError(str(exc)) from None


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
    add_train_arguments(p)
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
    p.add_argument("--images", type=positive_int, default=None,
                   help="how many toy images (default: the training run's validation count)")
    p.add_argument("--seed", type=nonnegative_int, default=None,
                   help="toy data seed (default: the training run's validation seed)")
    p.add_argument("--size", type=image_size, default=None, help="toy image size (default: the training size)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per forward pass")
    p.add_argument("--ignore-border", type=nonnegative_int, default=None,
                   help="width of the ignore band at label borders (default: the training run's; 0 counts every "
                        "pixel)")
    p.add_argument("--json", metavar="PATH", help="also write the scores as JSON (default: print only)")
    p.add_argument("--backend", choices=["numba", "numpy"], default=None,
                   help="kernel backend (default: numba, or $FCN_SCRATCH_BACKEND)")
    p.set_defaults(func=cmd_evaluate)

    p = command("compare", "train FCN-32s, 16s and 8s on the same data and budget; the paper's Table 2 columns, "
                           "a side-by-side figure and report.html")
    add_training_arguments(p, TRAIN_DEFAULTS, out="runs/compare")
    p.add_argument("--show", type=positive_int, default=5, help="validation images in the figure")
    p.add_argument("--save-models", action="store_true", help="also write fcn32s.npz, fcn16s.npz, fcn8s.npz")
    p.set_defaults(func=cmd_compare)

    p = command("sample", "write toy-shapes images and masks in PASCAL VOC layout (try `train --data` at once)",
                "Write N toy-shapes images of mixed sizes with their palette masks in PASCAL VOC 2012 layout: "
                "JPEGImages/<id>.png, SegmentationClass/<id>.png (class ids as palette indices, 255 = void), "
                "ImageSets/Segmentation/train.txt and val.txt, labels.txt.")
    p.add_argument("--out", required=True, metavar="DIR", help="the dataset folder to write (created if needed)")
    p.add_argument("--n", type=sample_count, default=100, help="how many images (at least 2; 20%% go to val)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seeds the sizes and the shapes")
    p.add_argument("--min-size", type=image_size, default=48, help="smallest image side in pixels")
    p.add_argument("--max-size", type=image_size, default=80, help="largest image side in pixels")
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
    p.add_argument("--repeats", type=positive_int, default=7, help="timed blocks per contender (best is kept)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch contenders")
    p.add_argument("--cold-start", action="store_true",
                   help="also time `fcn-scratch train` from launch to its first step, cold and warm cache")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON (default: print only)")
    p.set_defaults(func=cmd_bench)

    p = command("exercise", "graded exercises (lessons/exercises/): list them, check your answer")
    ex = p.add_subparsers(dest="exercise_command", metavar="{list,check}", parser_class=_Parser)
    ex.required = True
    q = ex.add_parser("list", help="the exercises in lesson order", formatter_class=_HelpFormatter)
    q.add_argument("--lang", choices=["en", "ko"], default=None,
                   help="language of the texts (default: $FCN_SCRATCH_LANG, else en)")
    q = ex.add_parser("check", help="grade an exercise against the engine (exit 0 all pass, 1 any fails)",
                      formatter_class=_HelpFormatter)
    q.add_argument("name", help="exercise name (e.g. im2col), file stem (01_im2col) or number")
    q.add_argument("--file", metavar="PATH", default=None,
                   help="your solution (default: the stub in lessons/exercises/)")
    q.add_argument("--lang", choices=["en", "ko"], default=None,
                   help="language of the task titles, hints and messages (default: $FCN_SCRATCH_LANG, else en)")
    p.set_defaults(func=cmd_exercise)
    return parser


def main(argv=None) -> int:
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        args.argv = argv  # `train --resume` checks which options were given, not defaulted
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not as a traceback at exit
        return code
    except BrokenPipeError:  # the reader of our output (`| head`) has gone: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 141  # 128 + SIGPIPE: what a shell reports for a command whose pipe was closed
    except CLIError as exc:
        print(f"fcn-scratch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM where fcn_scratch.runs.StopSignals is installed
        signum = getattr(exc, "signum", 2)
        name = {2: "SIGINT", 15: "SIGTERM"}.get(signum, f"signal {signum}")
        print(f"fcn-scratch: interrupted by {name}", file=sys.stderr)
        return 128 + signum

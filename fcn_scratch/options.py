"""The options of a training run, as ``fcn-scratch train`` and ``compare`` parse them.

The argparse types and the ``train`` option set live here, below :mod:`fcn_scratch.cli`, because
a resumed run re-reads its stored settings through the very same parser (:mod:`fcn_scratch.jobs_train`):
a checkpoint from anywhere gets the checks of a command line. :class:`Parser` raises
:class:`OptionError` (one line) instead of printing the usage block and exiting.
"""

from __future__ import annotations

import argparse


class OptionError(Exception):
    """A command line (or a stored run's settings) that the option parser refuses: one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's default exits 2 after printing the usage block
        raise OptionError(message)


ARCHS = ("fcn32s", "fcn16s", "fcn8s")

# Defaults of `fcn-scratch train`: the tiny FCN-8s on 64x64 toy shapes, about a minute on 2 cores.
TRAIN_DEFAULTS = dict(size=64, train_images=640, val_images=96, epochs=16, batch_size=8, lr=3e-3,
                      optimizer="adam", weight_decay=0.0, dropout=0.0, seed=0, ignore_border=1)


def number_type(convert, what, ok):
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


positive_int = number_type(int, "a positive integer", lambda v: v >= 1)
nonnegative_int = number_type(int, "a non-negative integer", lambda v: v >= 0)
positive_float = number_type(float, "a positive number", lambda v: 0 < v < float("inf"))  # NaN fails too
nonnegative_float = number_type(float, "a non-negative number", lambda v: 0 <= v < float("inf"))
fraction = number_type(float, "a number in [0, 1)", lambda v: 0 <= v < 1)


def image_size(text):
    value = positive_int(text)
    if value < 8:
        raise argparse.ArgumentTypeError(f"toy images must be at least 8 pixels, got {value}")
    return value


def widths_type(text):
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 5 comma-separated channel counts, got {text!r}") from None
    if len(values) != 5 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected 5 comma-separated positive channel counts, got {text!r}")
    return values


sample_count = number_type(int, "an integer >= 2 (one training and one validation image at least)",
                             lambda v: v >= 2)


def add_training_arguments(p, defaults, *, out):
    p.add_argument("--data", metavar="DIR", default=None,
                   help="train on a PASCAL VOC-layout folder (JPEGImages/, SegmentationClass/, "
                        "ImageSets/Segmentation/{train,val}.txt, optional labels.txt; `fcn-scratch sample` "
                        "writes one) instead of generated toy shapes (default: toy shapes)")
    p.add_argument("--crop", type=image_size, default=None, metavar="S",
                   help="with --data: train on random SxS windows (smaller images padded, masks with 255) so "
                        "images of any size batch together (default: whole images; batch size 1 if sizes differ)")
    p.add_argument("--augment", action="store_true", help="with --data: mirror each training sample left-right "
                                                          "with probability 1/2")
    p.add_argument("--epochs", type=positive_int, default=defaults["epochs"], help="passes over the training set")
    p.add_argument("--size", type=image_size, default=defaults["size"],
                   help="toy image height and width in pixels")
    p.add_argument("--train-images", type=positive_int, default=defaults["train_images"],
                   help="toy training images")
    p.add_argument("--val-images", type=positive_int, default=defaults["val_images"],
                   help="toy validation images (never among the training ones)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help=f"images per optimiser step (default: {defaults['batch_size']}; 1 with --data on whole "
                        f"images of different sizes, as the FCN paper)")
    p.add_argument("--lr", type=positive_float, default=defaults["lr"],
                   help="base learning rate, decayed as lr (1 - it/max_it)^0.9")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default=defaults["optimizer"],
                   help="sgd (momentum 0.9) or adam")
    p.add_argument("--weight-decay", type=nonnegative_float, default=defaults["weight_decay"],
                   help="L2 penalty on weights, not biases")
    p.add_argument("--dropout", type=fraction, default=defaults["dropout"],
                   help="Dropout2d drop probability after fc6 and fc7")
    p.add_argument("--widths", type=widths_type, default=None,
                   help="channels of the 5 blocks, e.g. 16,32,64,128,128 (default: the tiny preset, 16,32,64,128,128)")
    p.add_argument("--fc-channels", type=positive_int, default=None,
                   help="channels of fc6 and fc7 (default: the tiny preset's 256)")
    p.add_argument("--seed", type=nonnegative_int, default=defaults["seed"],
                   help="seeds the toy data, the initial weights, the shuffling, crops, flips and dropout")
    p.add_argument("--ignore-border", type=nonnegative_int, default=defaults["ignore_border"],
                   help="toy shapes: pixels at label borders left out of loss and metrics (PASCAL VOC's void "
                        "band); 0 = none")
    p.add_argument("--out", default=out, help="output directory")
    p.add_argument("--backend", choices=["numba", "numpy"], default=None,
                   help="kernel backend (default: numba, or $FCN_SCRATCH_BACKEND)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="split each batch across this many threads (default: every usable CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def add_train_arguments(p):
    """The options of `fcn-scratch train` (also parsed alone to see which a --resume contradicts)."""
    p.add_argument("--arch", choices=ARCHS, default="fcn8s", help="which FCN")
    add_training_arguments(p, TRAIN_DEFAULTS, out="runs/latest")
    p.add_argument("--staged", action="store_true",
                   help="train FCN-32s, then 16s, then 8s (up to --arch), each from the previous one")
    p.add_argument("--resume", metavar="DIR_OR_CHECKPOINT", default=None,
                   help="continue an interrupted run (its --out, or its model.npz) to its planned epochs, "
                        "with its own settings (default: start a new run)")


def train_parser() -> Parser:
    """The options of ``fcn-scratch train`` alone (no sub-commands), for checking a resumed run's settings."""
    p = Parser(prog="fcn-scratch train")
    add_train_arguments(p)
    return p

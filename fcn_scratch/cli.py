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

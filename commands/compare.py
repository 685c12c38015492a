"""``splitrun compare``: the strategies (branch, spatial, pipeline, single) on the same boards and images."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..framework.errors import SplitnetError
from .common import EXIT_CHECK_FAILED, add_inventory_arguments, add_json_argument, check_frames, check_output_path

NAME = "compare"
SUMMARY = "run the strategies (branch, spatial, pipeline) on the same boards and images, side by side"


def _names() -> list[str]:
    from ..strategies import list_strategies

    return list_strategies()


def _strategy_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise SplitnetError(f"--strategies {text!r} names no strategy", f"e.g. --strategies {','.join(_names())}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strategies",
        type=_strategy_list,
        default=None,
        metavar="A,B",
        help=f"strategies to run, comma-separated (default: all: {','.join(_names())})",
    )
    parser.add_argument("--branches", "-n", type=int, default=2, help="pieces per strategy: branches, tiles, stages")
    parser.add_argument("--model", default="resnet18_v1", help="registered model name (default resnet18_v1)")
    add_inventory_arguments(parser)
    parser.add_argument("--images", type=Path, default=None, help="directory of images (default: built-in set)")
    parser.add_argument("--runs", type=int, default=20, help="timed frames per strategy (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up frames (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the init when no trained params ship")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="per-call timeout")
    parser.add_argument("--fuse-until", default=None, metavar="LAYER", help="spatial: the last tiled layer")
    add_json_argument(parser, "the comparison")
    parser.add_argument("--plot", type=Path, default=None, metavar="PATH", help="also draw it as a PNG")


def execute(args: argparse.Namespace) -> int:
    from ..framework.console import console, results_console
    from ..strategies import StrategyOptions, run_strategies
    from ..strategies.compare_report import render_compare, write_json, write_plot
    from .run import options_from

    check_output_path(args.json)
    check_output_path(args.plot, "--plot")
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise SplitnetError(f"--plot {args.plot} is not a .png path", "e.g. --plot compare.png")
    check_frames(args.runs, args.warmup, args.timeout)
    names = args.strategies or _names()  # an unknown name fails in run_strategies, before any work
    results = run_strategies(names, StrategyOptions(run=options_from(args), fuse_until=args.fuse_until))
    render_compare(results, results_console())
    if args.json is not None:
        write_json(results, args.json)
        console.print(f"comparison written to {args.json}")
    if args.plot is not None:
        write_plot(results, args.plot)
        console.print(f"plot written to {args.plot}")
    return 0 if all(r.ok for r in results) else EXIT_CHECK_FAILED

"""The CLI side of strategies: ``--strategy`` on ``splitrun run`` and the ``splitrun compare`` command.

Registered from framework/cli.py with a few lines; everything else lives here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from splitnet.framework.errors import SplitnetError

EXIT_CHECK_FAILED = 1
BRANCH_ONLY = {"widths": "--widths", "placement": "--placement", "policy": "--policy", "chaos": "--chaos"}


def _names() -> list[str]:
    from splitnet.strategies import list_strategies

    return list_strategies()


def add_strategy_arguments(parser: argparse.ArgumentParser) -> None:
    """``--strategy`` and ``--fuse-until`` for ``splitrun run``."""
    parser.add_argument(
        "--strategy",
        default="branch",
        metavar="NAME",
        help=f"how the model is spread over the boards: {', '.join(_names())} (default branch: the split network; "
        "spatial and pipeline are lossless and use --branches as the number of tiles or stages)",
    )
    parser.add_argument(
        "--fuse-until",
        default=None,
        metavar="LAYER",
        help="spatial: the last layer computed in tiles (default: the cut point with the lowest estimated latency)",
    )


def _options(args: argparse.Namespace, **branch_only):
    from splitnet.framework.pipeline import RunOptions
    from splitnet.strategies import StrategyOptions

    run = RunOptions(
        model=args.model,
        branches=args.branches,
        images=args.images,
        runs=args.runs,
        warmup=args.warmup,
        seed=args.seed,
        inventory=args.inventory,
        wait_s=args.wait,
        timeout_s=args.timeout,
        **branch_only,
    )
    return StrategyOptions(run=run, fuse_until=args.fuse_until)


def run_with_strategy(args: argparse.Namespace) -> int:
    """``splitrun run --strategy NAME`` for a strategy other than branch."""
    from splitnet.framework.console import console, results_console
    from splitnet.strategies import get_strategy, run_strategy
    from splitnet.strategies.render import render_result

    get_strategy(args.strategy)  # unknown name: one line listing the known ones
    for attr, flag in BRANCH_ONLY.items():
        if getattr(args, attr, None):
            raise SplitnetError(f"{flag} applies to --strategy branch only", f"drop {flag} or use --strategy branch")
    result = run_strategy(args.strategy, _options(args))
    render_result(result, results_console())
    if args.json is not None:
        result.write_json(args.json)
        console.print(f"report written to {args.json}")
    return 0 if result.ok else EXIT_CHECK_FAILED


def _strategy_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise SplitnetError(f"--strategies {text!r} names no strategy", f"e.g. --strategies {','.join(_names())}")
    return names


def compare_arguments(parser: argparse.ArgumentParser) -> None:
    from splitnet.framework.cli import add_inventory_arguments

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
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the comparison as JSON")
    parser.add_argument("--plot", type=Path, default=None, metavar="PATH", help="also draw it as a PNG")


def compare(args: argparse.Namespace) -> int:
    from splitnet.framework.cli import check_output_path
    from splitnet.framework.console import console, results_console
    from splitnet.strategies import get_strategy, run_strategies
    from splitnet.strategies.compare_report import render_compare, write_json, write_plot

    check_output_path(args.json)
    check_output_path(args.plot, "--plot")
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise SplitnetError(f"--plot {args.plot} is not a .png path", "e.g. --plot compare.png")
    if args.runs < 1:
        raise SplitnetError(f"--runs must be at least 1, got {args.runs}", "pass --runs 20")
    if args.warmup < 0:
        raise SplitnetError(f"--warmup must not be negative, got {args.warmup}", "pass --warmup 3")
    if args.timeout is not None and not args.timeout > 0:
        raise SplitnetError(f"--timeout must be positive, got {args.timeout}", "e.g. --timeout 5")
    names = args.strategies or _names()
    for name in names:
        get_strategy(name)
    results = run_strategies(names, _options(args))
    render_compare(results, results_console())
    if args.json is not None:
        write_json(results, args.json)
        console.print(f"comparison written to {args.json}")
    if args.plot is not None:
        write_plot(results, args.plot)
        console.print(f"plot written to {args.plot}")
    return 0 if all(r.ok for r in results) else EXIT_CHECK_FAILED

"""``splitrun [run]``: split the model, compile, place on boards, run and check (the default command).

``--strategy branch`` (the default) is the split network, through :func:`splitnet.run`;
``--strategy spatial|pipeline|single`` runs a lossless strategy on the same boards instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..framework.errors import SplitnetError
from ..framework.wire import DEFAULT_WIRE
from .common import (
    EXIT_CHECK_FAILED,
    add_inventory_arguments,
    add_json_argument,
    add_split_arguments,
    add_wire_argument,
    check_frames,
    check_output_path,
)

NAME = "run"
SUMMARY = "split the model, compile, place on boards, run and check (the default command)"
DESCRIPTION = (
    "Split a model into N narrow branches plus a merge head, compile each branch with TVM, run the branches in "
    "parallel on boards registered with a TVM RPC tracker, and check the result against the reference. With no "
    "inventory, two PYNQ boards are emulated by local RPC servers on this machine."
)
MAX_DEPTH = 16
BRANCH_ONLY = {
    "widths": "--widths",
    "placement": "--placement",
    "policy": "--policy",
    "chaos": "--chaos",
    "audit": "--audit",
}


def _chaos(text: str):
    from ..runtime.chaos import parse_chaos

    return parse_chaos(text)


def add_strategy_arguments(parser: argparse.ArgumentParser) -> None:
    """``--strategy`` and ``--fuse-until``."""
    from ..strategies import list_strategies

    parser.add_argument(
        "--strategy",
        default="branch",
        metavar="NAME",
        help=f"how the model is spread over the boards: {', '.join(list_strategies())} (default branch: the split "
        "network; spatial and pipeline are lossless and use --branches as the number of tiles or stages)",
    )
    parser.add_argument(
        "--fuse-until",
        default=None,
        metavar="LAYER",
        help="spatial: the last layer computed in tiles (default: the cut point with the lowest estimated latency)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..runtime.guard import FIRST_CALL_TIMEOUT_S, MIN_TIMEOUT_S, TIMEOUT_FACTOR
    from ..runtime.placement import list_strategies
    from ..runtime.policies import get_policy, list_policies

    add_split_arguments(parser, widths_note="default: equal; round-robin placement only")
    parser.add_argument(
        "--placement",
        choices=list_strategies(),
        default=None,
        help="how branches go to boards: round-robin (equal or --widths), balanced (widths from board speeds), "
        "profile (balanced on measured speeds). Default: the inventory's choice, else round-robin",
    )
    add_inventory_arguments(parser)
    policies = ", ".join(f"{name} ({get_policy(name).summary})" for name in list_policies())
    parser.add_argument(
        "--policy",
        choices=list_policies(),
        default=None,
        help=f"what to do when a board fails: {policies}. Default: the inventory's choice, else spare",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"per-call timeout (default: {TIMEOUT_FACTOR:g}x the slowest branch call of the verify pass, "
        f"at least {MIN_TIMEOUT_S:g} s; {FIRST_CALL_TIMEOUT_S:g} s before that)",
    )
    parser.add_argument(
        "--chaos",
        type=_chaos,
        action="append",
        default=[],
        metavar="SPEC",
        help="kill, stall, restart or corrupt a local board at a frame, or kill the local tracker, e.g. kill:1@20, "
        "stall:0@10:2s, restart:1@20:2s, corrupt:1@20, kill:tracker@30; or random:SEED for kills and stalls drawn "
        "from a seed (board index or name; frames count from 0 over every frame sent). Repeatable",
    )
    parser.add_argument(
        "--audit",
        type=int,
        default=0,
        metavar="K",
        help="re-check every K-th frame against the split run in-process while the run goes on: a board whose "
        "answer differs is failed and its branch recovered (default 0: only the checks at the end)",
    )
    parser.add_argument(
        "--images", type=Path, default=None, help="directory of images to run (default: a built-in pillow-drawn set)"
    )
    parser.add_argument("--runs", type=int, default=20, help="timed frames after warm-up (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up frames (default 3)")
    parser.add_argument(
        "--depth",
        type=int,
        default=2,
        help="frames in flight for the steady-state throughput phase, run after the --runs single frames "
        "(default 2; 1 skips it)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the init when no trained params ship")
    add_wire_argument(parser)
    add_json_argument(parser)
    add_strategy_arguments(parser)


def options_from(args: argparse.Namespace, **branch_only):
    """The :class:`~splitnet.strategies.RunOptions` that ``args`` name (shared with compare)."""
    from ..strategies import RunOptions

    return RunOptions(
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


def execute(args: argparse.Namespace) -> int:
    check_output_path(args.json)
    check_frames(args.runs, args.warmup, args.timeout)
    if not 1 <= args.depth <= MAX_DEPTH:
        raise SplitnetError(f"--depth must be from 1 to {MAX_DEPTH}, got {args.depth}", "pass --depth 2")
    if args.audit < 0:
        raise SplitnetError(f"--audit must not be negative, got {args.audit}", "pass --audit 10, or 0 for no audit")
    if args.strategy != "branch":
        return _run_strategy(args)
    from ..api import run
    from ..framework.console import console, results_console
    from ..framework.report import render

    options = options_from(
        args,
        widths=args.widths,
        multiple=args.multiple,
        placement=args.placement,
        policy=args.policy,
        chaos=tuple(args.chaos),
        depth=args.depth,
        audit=args.audit,
        wire=args.wire or DEFAULT_WIRE,
    )
    report = run(options)
    render(report, results_console())
    if args.json is not None:
        report.write_json(args.json)
        console.print(f"report written to {args.json}")
    return 0 if report.ok else EXIT_CHECK_FAILED


def _run_strategy(args: argparse.Namespace) -> int:
    """``splitrun run --strategy NAME`` for a strategy other than branch."""
    from ..framework.console import console, results_console
    from ..strategies import StrategyOptions, get_strategy, run_strategy
    from ..strategies.render import render_result

    get_strategy(args.strategy)  # unknown name: one line listing the known ones
    for attr, flag in BRANCH_ONLY.items():
        if getattr(args, attr, None):
            raise SplitnetError(f"{flag} applies to --strategy branch only", f"drop {flag} or use --strategy branch")
    if args.wire == "uint8":  # the lossless strategies send float32 frames
        raise SplitnetError("--wire uint8 applies to --strategy branch only", "drop --wire or use --strategy branch")
    result = run_strategy(args.strategy, StrategyOptions(run=options_from(args), fuse_until=args.fuse_until))
    render_result(result, results_console())
    if args.json is not None:
        result.write_json(args.json)
        console.print(f"report written to {args.json}")
    return 0 if result.ok else EXIT_CHECK_FAILED

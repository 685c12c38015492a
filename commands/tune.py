"""``splitrun tune``: tune a split model's branches and head, and write the database compile uses.

    splitrun tune --model resnet18_v1 --branches 2 --trials 400

The target is the build target of the inventory's boards (the default inventory's emulated
PYNQ boards build for this host's CPU, one core each), or ``--target``. Candidates are timed
on this machine when the target runs here; when it does not (ARM boards, under qemu or
real), they are timed on the inventory's boards through the tracker (MetaSchedule's RPC
runner), and only the branches are tuned (the head runs on the host). Ctrl-C keeps what was measured:
the database is written with the best records so far, and ``--resume`` goes on from there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

from ..framework.errors import SplitnetError
from ..framework.layout import LAYOUTS
from .common import add_inventory_arguments, add_split_arguments, add_wire_argument, interrupted

NAME = "tune"
SUMMARY = "tune the branches and head with MetaSchedule and write the database that compile applies"
DEFAULT_TRIALS = 200
DEFAULT_BATCH = 16
TUNE_LAYOUT = "NHWC"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_split_arguments(parser)
    add_inventory_arguments(parser)
    parser.add_argument(
        "--target",
        default=None,
        help="tune for this target instead of the inventory's: a preset name (x86) or a JSON target dict",
    )
    parser.add_argument(
        "--trials", type=int, default=DEFAULT_TRIALS, help=f"measured candidates in all (default {DEFAULT_TRIALS})"
    )
    parser.add_argument("--per-task", type=int, default=None, help="most trials for one task (default 2x fair share)")
    parser.add_argument(
        "--batch", type=int, default=DEFAULT_BATCH, help=f"candidates measured per round (default {DEFAULT_BATCH})"
    )
    parser.add_argument("--resume", action="store_true", help="go on from an interrupted or shorter earlier run")
    parser.add_argument(
        "--out", type=Path, default=None, help="database root (default: the repository's tuning/ folder)"
    )
    parser.add_argument("--seed", type=int, default=0, help="search seed")
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default=TUNE_LAYOUT,
        help=f"the convolutions' data layout to tune and build in (default {TUNE_LAYOUT}: it tuned up to 1.9x "
        "faster than NCHW on x86, benchmarks/layouts.py; NCHW --resume goes on with older databases)",
    )
    add_wire_argument(parser)


def _target(args: argparse.Namespace) -> dict:
    from ..framework.targets import check_target

    if args.target is None:
        from ..runtime.inventory_file import resolve_inventory

        inventory = resolve_inventory(args.inventory)
        targets = {json.dumps(b.build_target, sort_keys=True) for b in inventory.boards}
        if len(targets) > 1:
            raise SplitnetError(
                f"the inventory's boards build for {len(targets)} different targets",
                "tune one at a time with --target",
            )
        return json.loads(targets.pop())
    text = args.target.strip()
    if text.startswith("{"):
        try:
            target = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SplitnetError(
                f"--target is not valid JSON ({exc.msg})", 'e.g. --target \'{"kind": "llvm"}\''
            ) from None
    else:
        from ..runtime.presets import get_preset

        target = get_preset(text).target(1)
    problem = check_target(target) if isinstance(target, dict) else "not a JSON object"
    if problem:
        raise SplitnetError(f"--target {text} is not a valid TVM target ({problem})", "pass a preset name or a dict")
    return target


def execute(args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..framework.console import console
    from ..framework.targets import describe, runs_here
    from ..tuning.key import key_for, tuning_root

    if args.trials < 1:
        raise SplitnetError(f"--trials must be at least 1, got {args.trials}", "e.g. --trials 200")
    if args.batch < 1:
        raise SplitnetError(f"--batch must be at least 1, got {args.batch}", "e.g. --batch 16")
    target = _target(args)
    boards_inventory = None
    if not runs_here(target):
        if args.target is not None or args.inventory is None:
            raise SplitnetError(
                f"candidates are timed on this machine, and {describe(target)} cannot run here",
                "pass --inventory with boards of that target (they time the candidates), or --target x86, "
                "or set SPLITNET_EMULATION=host to tune the default boards' host-CPU stand-ins",
            )
        boards_inventory = _tuning_boards(args.inventory)
    if "num-cores" not in target:  # MetaSchedule sizes its parallel loops by it
        raise SplitnetError(
            f"--target {describe(target)} does not say how many cores the board has",
            'add "num-cores" to the target dict, e.g. "num-cores": 1',
        )
    root = args.out or tuning_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SplitnetError(
            f"cannot write tuning databases to {root} ({exc.strerror or exc})", "pass --out DIR (a writable folder)"
        ) from None
    from ..framework.wire import DEFAULT_WIRE, with_wire
    from ..partitioners import partition
    from ..strategies.request import SplitRequest
    from ..zoo import load_reference

    request = SplitRequest.of(args.model, args.branches, args.widths, args.multiple)
    reference = load_reference(request.model, seed=args.seed)
    # The graph splitrun will build: with uint8 frames each branch starts with the compiled cast
    # and normalisation (its own small task; the convolutions' tasks are those of float32).
    split = partition(reference, request.n, request.shares, request.multiple)
    split = with_wire(split, args.wire or DEFAULT_WIRE, request.spec.preprocessing)
    key = key_for(split, target, args.layout)
    console.print(
        f"tuning {args.model} N={args.branches} for {describe(target)}, "
        f"{args.layout} convolutions: {args.trials} trials"
    )
    resume = f"splitrun tune --model {args.model} --branches {args.branches} --trials {args.trials} --resume"
    if args.widths or args.target or args.inventory or args.out or args.layout != TUNE_LAYOUT:
        resume = "the same command with --resume"
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[best]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    start = time.perf_counter()
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("trials", total=args.trials, best="")

        def on_tasks(tasks, state) -> None:
            shared = sum(t.weight for t in tasks)
            head = "" if boards_inventory is not None else " + head"
            console.print(
                f"{len(tasks)} distinct tasks ({shared} kernel calls per frame over {args.branches} branches{head}); "
                f"{state.trials_done} trials already measured"
            )
            progress.update(bar, completed=min(state.trials_done, args.trials))

        def report(update) -> None:
            progress.update(
                bar,
                completed=min(update.trials_done, args.trials),
                best=f"best {update.estimate_ms:.1f} ms ({update.tasks_measured}/{update.tasks_total} tasks)",
            )

        try:
            fleet = None
            if boards_inventory is not None:
                fleet = _start_boards(boards_inventory, args.wait)
            with fleet or contextlib.nullcontext():
                folder = _tune(args, split, key, root, report, on_tasks, fleet, boards_inventory)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt) or interrupted():
                console.print(f"interrupted: the best records so far are kept; continue with: {resume}")
                raise KeyboardInterrupt from None
            raise
    records = json.loads((folder / "key.json").read_text()).get("records", 0)
    console.print(
        f"database written: {folder} ({records} records, {time.perf_counter() - start:.0f} s); "
        "splitrun applies it to every matching build"
    )
    return 0


def _tuning_boards(spec: str):
    """The inventory whose boards time the candidates; they must share one tracker key."""
    from ..runtime.inventory_file import resolve_inventory

    inventory = resolve_inventory(spec)
    keys = inventory.keys
    if len(keys) != 1:
        raise SplitnetError(
            f"the inventory's boards register under {len(keys)} keys ({', '.join(keys)})",
            "tune with an inventory whose boards share one key",
        )
    return inventory


def _start_boards(inventory, wait_s: float):
    from ..framework.console import console
    from ..runtime.fleet import Fleet

    fleet = Fleet(inventory, wait_s=wait_s)
    with console.status("starting the boards that time the candidates"):
        fleet.start()
    modes = ", ".join(f"{b.name} ({b.describe()})" for b in inventory.boards)
    console.print(f"candidates are timed on the boards: {modes}", highlight=False)
    if inventory.under_qemu:
        console.print("[yellow]boards under qemu: the times that rank candidates are the emulator's[/]")
    return fleet


def _tune(args, split, key, root, report, on_tasks, fleet, inventory) -> Path:
    from ..tuning.board_runner import Boards
    from ..tuning.tuner import tune

    boards = None
    parts = [*split.branches, split.head]
    if fleet is not None:  # the head runs on the host, never on these boards: only branches
        boards = Boards(fleet.host, fleet.port, inventory.keys[0], len(inventory.boards))
        parts = list(split.branches)
    return tune(
        parts,
        key,
        root,
        args.trials,
        per_task=args.per_task,
        per_batch=args.batch,
        resume=args.resume,
        seed=args.seed,
        report=report,
        on_tasks=on_tasks,
        boards=boards,
    )

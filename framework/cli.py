"""``splitrun``: the command line.

``splitrun [run] [options]`` runs the split model (``run`` is the default command);
``splitrun boards`` shows the inventory's boards as the tracker sees them. Commands register
by name, so later stages (tuning, training) add theirs the same way.

User errors (:class:`SplitnetError`) print one line each, ``error: ... (fix: ...)``, and exit
2; a failed check (or a missing board) exits 1; Ctrl-C and SIGTERM stop every local board
and exit 130 / 143.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from splitnet.framework.errors import SplitnetError
from splitnet.framework.registry import Registry

from splitnet import __version__

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
DEFAULT_COMMAND = "run"
MAX_DEPTH = 16


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        raise SplitnetError(message, f"see {self.prog} --help")


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    execute: Callable[[argparse.Namespace], int]


_COMMANDS: Registry[Command] = Registry("command")


def register_command(command: Command) -> Command:
    return _COMMANDS.add(command.name, command)


def _widths(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise SplitnetError(
            f"--widths {text!r} is not a comma-separated list of numbers", "e.g. --widths 0.75,0.25"
        ) from None


def add_inventory_arguments(parser: argparse.ArgumentParser) -> None:
    """``--inventory`` and ``--wait``, shared by every command that uses boards."""
    from splitnet.runtime.fleet import DEFAULT_WAIT_S
    from splitnet.runtime.inventory_file import builtin_inventories

    parser.add_argument(
        "--inventory",
        default=None,
        metavar="YAML",
        help="board inventory: a YAML file or a built-in name "
        f"({', '.join(builtin_inventories())}; default two-pynq: two PYNQ boards emulated locally)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_S,
        metavar="SECONDS",
        help=f"how long to wait for boards to register with the tracker (default {DEFAULT_WAIT_S:.0f})",
    )


def add_split_arguments(parser: argparse.ArgumentParser, widths_note: str = "default: equal") -> None:
    """``--branches``, ``--model``, ``--widths``, ``--multiple``: what is split and how, for run and tune."""
    from splitnet.partitioners.channels import DEFAULT_MULTIPLE, MAX_BRANCHES

    parser.add_argument(
        "--branches", "-n", type=int, default=2, help=f"number of branches N, 1..{MAX_BRANCHES} (default 2)"
    )
    parser.add_argument("--model", default="resnet18_v1", help="registered model name (default resnet18_v1)")
    parser.add_argument(
        "--widths",
        type=_widths,
        default=None,
        help=f"width share per branch, comma-separated, e.g. 0.75,0.25 ({widths_note})",
    )
    parser.add_argument(
        "--multiple",
        type=int,
        default=DEFAULT_MULTIPLE,
        help=f"round branch channel counts to this multiple (default {DEFAULT_MULTIPLE}; 16 matches VTA's GEMM block)",
    )


def _chaos(text: str):
    from splitnet.runtime.chaos import parse_chaos

    return parse_chaos(text)


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    from splitnet.runtime.executor import POLICIES
    from splitnet.runtime.guard import FIRST_CALL_TIMEOUT_S, MIN_TIMEOUT_S, TIMEOUT_FACTOR
    from splitnet.runtime.placement import list_strategies

    add_split_arguments(parser, widths_note="default: equal; round-robin placement only")
    parser.add_argument(
        "--placement",
        choices=list_strategies(),
        default=None,
        help="how branches go to boards: round-robin (equal or --widths), balanced (widths from board speeds), "
        "profile (balanced on measured speeds). Default: the inventory's choice, else round-robin",
    )
    add_inventory_arguments(parser)
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default=None,
        help="what to do when a board fails: spare (re-place the branch on a spare, else a survivor), replicate "
        "(each branch on two boards, first answer wins), coded (the head's dense layers coded over the boards, "
        "branches re-placed), degrade (drop the branch, flag the answers), none (stop). Default: the inventory's "
        "choice, else spare",
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
        help="kill or stall a local board at a frame, e.g. kill:1@20 or stall:0@10:2s (board index or name; "
        "frames count from 0 over every frame sent). Repeatable",
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
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the report as JSON")
    from splitnet.strategies.command import add_strategy_arguments

    add_strategy_arguments(parser)


def check_output_path(path: Path | None, option: str = "--json") -> None:
    """Fail before the work, not after it, when a report cannot be written where asked."""
    if path is None:
        return
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SplitnetError(
            f"cannot write {option} {path} ({exc.strerror or exc})",
            f"pass a file path in a writable folder to {option}",
        ) from None


def _run(args: argparse.Namespace) -> int:
    check_output_path(args.json)
    if args.runs < 1:
        raise SplitnetError(f"--runs must be at least 1, got {args.runs}", "pass --runs 20")
    if args.warmup < 0:
        raise SplitnetError(f"--warmup must not be negative, got {args.warmup}", "pass --warmup 3")
    if not 1 <= args.depth <= MAX_DEPTH:
        raise SplitnetError(f"--depth must be from 1 to {MAX_DEPTH}, got {args.depth}", "pass --depth 2")
    if args.timeout is not None and not args.timeout > 0:
        raise SplitnetError(f"--timeout must be positive, got {args.timeout}", "e.g. --timeout 5")
    if args.strategy != "branch":
        from splitnet.strategies.command import run_with_strategy

        return run_with_strategy(args)
    from splitnet.framework.console import console, results_console
    from splitnet.framework.pipeline import RunOptions, run
    from splitnet.framework.report import render

    report = run(
        RunOptions(
            model=args.model,
            branches=args.branches,
            widths=args.widths,
            multiple=args.multiple,
            images=args.images,
            runs=args.runs,
            warmup=args.warmup,
            seed=args.seed,
            inventory=args.inventory,
            placement=args.placement,
            wait_s=args.wait,
            policy=args.policy,
            timeout_s=args.timeout,
            chaos=tuple(args.chaos),
            depth=args.depth,
        )
    )
    render(report, results_console())
    if args.json is not None:
        report.write_json(args.json)
        console.print(f"report written to {args.json}")
    return 0 if report.ok else EXIT_CHECK_FAILED


def _boards(args: argparse.Namespace) -> int:
    from splitnet.framework.boards_command import boards

    check_output_path(args.json)
    return boards(args.inventory, args.wait, args.json)


def _boards_arguments(parser: argparse.ArgumentParser) -> None:
    add_inventory_arguments(parser)
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the table as JSON")


register_command(
    Command(
        "run",
        "split the model, compile, place on boards, run and check (the default command)",
        _run_arguments,
        _run,
    )
)
register_command(
    Command(
        "boards",
        "show the inventory's boards: registered and free on the tracker, and a measured probe speed",
        _boards_arguments,
        _boards,
    )
)


def _tune_arguments(parser: argparse.ArgumentParser) -> None:
    from splitnet.tuning.command import add_arguments

    add_arguments(parser)


def _tune(args: argparse.Namespace) -> int:
    from splitnet.tuning.command import execute

    return execute(args)


def _models(args: argparse.Namespace) -> int:
    from splitnet.framework.models_command import models

    check_output_path(args.json)
    return models(args.branches, args.multiple, args.json)


def _models_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--branches", type=int, default=2, metavar="N", help="plan each model for N branches")
    parser.add_argument("--multiple", type=int, default=8, help="channel counts per branch round to this (default 8)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the table as JSON")


def _lazy(module: str, name: str) -> Callable:
    """A command function imported on use, so ``splitrun --help`` stays quick."""

    def call(arg):
        return getattr(importlib.import_module(module), name)(arg)

    return call


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    from splitnet.strategies.command import compare_arguments

    compare_arguments(parser)


def _compare(args: argparse.Namespace) -> int:
    from splitnet.strategies.command import compare

    return compare(args)


register_command(
    Command(
        "tune",
        "tune the branches and head with MetaSchedule and write the database that compile applies",
        _tune_arguments,
        _tune,
    )
)
register_command(
    Command(
        "train",
        "train the reference and fine-tune its N-way splits on labelled images (distillation, checkpoints)",
        _lazy("splitnet.training.train_command", "add_arguments"),
        _lazy("splitnet.training.train_command", "execute"),
    )
)
register_command(
    Command(
        "models",
        "list the registered models (plug-ins included) with their size and split cost",
        _models_arguments,
        _models,
    )
)
register_command(
    Command(
        "accuracy",
        "top-1/top-5 of the unsplit model and its splits, with a lost branch, in-process and on the boards",
        _lazy("splitnet.training.accuracy_command", "add_arguments"),
        _lazy("splitnet.training.accuracy_command", "execute"),
    )
)
register_command(
    Command(
        "compare",
        "run the strategies (branch, spatial, pipeline) on the same boards and images, side by side",
        _compare_arguments,
        _compare,
    )
)


def build_parser(name: str = DEFAULT_COMMAND) -> argparse.ArgumentParser:
    command = _COMMANDS.get(name)
    others = "; ".join(f"splitrun {n}: {c.summary}" for n, c in _COMMANDS.items() if n != name)
    parser = ArgumentParser(
        prog="splitrun" if name == DEFAULT_COMMAND else f"splitrun {name}",
        description=(
            "Split a model into N narrow branches plus a merge head, compile each branch with TVM, "
            "run the branches in parallel on boards registered with a TVM RPC tracker, and check the "
            "result against the reference. With no inventory, two PYNQ boards are emulated by local "
            "RPC servers on this machine."
            if name == DEFAULT_COMMAND
            else command.summary
        ),
        epilog=f"other commands: {others}",
    )
    parser.add_argument("--version", action="version", version=f"splitnet {__version__}")
    command.add_arguments(parser)
    return parser


def _terminate(signum, frame) -> None:
    raise SystemExit(EXIT_TERMINATED)


_INTERRUPTED = threading.Event()


def interrupted() -> bool:
    """Whether the user pressed Ctrl-C (even when TVM handed it back as another exception)."""
    return _INTERRUPTED.is_set()


def _interrupt(signum, frame) -> None:
    # Remembered, because TVM code called back from C++ can hand the KeyboardInterrupt back
    # wrapped as another exception; main then still knows that the user pressed Ctrl-C.
    _INTERRUPTED.set()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore")  # mxnet and onnx deprecation noise is not the user's concern
    signal.signal(signal.SIGTERM, _terminate)  # SystemExit unwinds the with-blocks that stop boards
    signal.signal(signal.SIGINT, _interrupt)
    from splitnet.framework.console import console

    argv = list(sys.argv[1:] if argv is None else argv)
    name = DEFAULT_COMMAND
    if argv and argv[0] in _COMMANDS.names():
        name, argv = argv[0], argv[1:]
    try:
        args = build_parser(name).parse_args(argv)
        return _COMMANDS.get(name).execute(args)
    except SplitnetError as exc:
        for line in exc.lines():
            console.print(f"[bold red]error:[/] {line}", soft_wrap=True, highlight=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]: local boards stopped")
        return EXIT_INTERRUPTED
    except Exception:
        if _INTERRUPTED.is_set():  # Ctrl-C surfaced as another error (from inside TVM)
            console.print("[bold red]interrupted[/]: local boards stopped")
            return EXIT_INTERRUPTED
        raise


if __name__ == "__main__":
    sys.exit(main())

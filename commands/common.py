"""What every command shares: exit codes, the parser class, the options several commands take.

A command module (``run``, ``boards``, ``models``, ``tune``, ``train``, ``accuracy``,
``compare``) has a ``NAME``, a one-line ``SUMMARY``, ``add_arguments(parser)`` and
``execute(args) -> int``; the root (:mod:`cli`) wires them. Their module level imports only
this file and the standard library, so ``splitrun --help`` does not load TVM or MXNet; each
imports the library inside its functions.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from ..framework.errors import SplitnetError
from ..framework.shares import DEFAULT_MULTIPLE, MAX_BRANCHES

EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # a check failed, or a declared board is missing
EXIT_USAGE = 2  # a user error: one line, error: ... (fix: ...)
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_TERMINATED = 143  # SIGTERM

_INTERRUPTED = threading.Event()


def interrupted() -> bool:
    """Whether the user pressed Ctrl-C (even when TVM handed it back as another exception)."""
    return _INTERRUPTED.is_set()


def mark_interrupted() -> None:
    _INTERRUPTED.set()


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        raise SplitnetError(message, f"see {self.prog} --help")


def widths(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise SplitnetError(
            f"--widths {text!r} is not a comma-separated list of numbers", "e.g. --widths 0.75,0.25"
        ) from None


def branch_list(text: str) -> tuple[int, ...]:
    """``--branches 2,4`` -> (2, 4); anything else is a one-line error."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise SplitnetError(
            f"--branches {text!r} is not a comma-separated list of whole numbers", "e.g. --branches 2,4"
        ) from None
    if len(set(values)) != len(values):
        raise SplitnetError(f"--branches {text!r} repeats a value", "list each N once, e.g. --branches 2,4")
    return values


def add_inventory_arguments(parser: argparse.ArgumentParser) -> None:
    """``--inventory`` and ``--wait``, shared by every command that uses boards."""
    from ..runtime.fleet import DEFAULT_WAIT_S
    from ..runtime.inventory_file import builtin_inventories

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
    parser.add_argument(
        "--branches", "-n", type=int, default=2, help=f"number of branches N, 1..{MAX_BRANCHES} (default 2)"
    )
    parser.add_argument("--model", default="resnet18_v1", help="registered model name (default resnet18_v1)")
    parser.add_argument(
        "--widths",
        type=widths,
        default=None,
        help=f"width share per branch, comma-separated, e.g. 0.75,0.25 ({widths_note})",
    )
    parser.add_argument(
        "--multiple",
        type=int,
        default=DEFAULT_MULTIPLE,
        help=f"round branch channel counts to this multiple (default {DEFAULT_MULTIPLE}; 16 matches VTA's GEMM block)",
    )


def add_wire_argument(parser: argparse.ArgumentParser) -> None:
    """``--wire``: how frames travel to the boards (run and tune must agree: tune builds the same graph)."""
    from ..framework.wire import DEFAULT_WIRE, WIRES

    parser.add_argument(
        "--wire",
        choices=WIRES,
        default=None,
        help=f"frames on the wire: uint8 pixels, normalised on the board by code compiled into each branch "
        f"(4x fewer bytes), or float32 normalised on the host (default {DEFAULT_WIRE}; branch strategy only)",
    )


def add_json_argument(parser: argparse.ArgumentParser, what: str = "the report") -> None:
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help=f"also write {what} as JSON")


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


def check_frames(runs: int, warmup: int, timeout: float | None) -> None:
    """``--runs``, ``--warmup`` and ``--timeout``, as run and compare take them."""
    if runs < 1:
        raise SplitnetError(f"--runs must be at least 1, got {runs}", "pass --runs 20")
    if warmup < 0:
        raise SplitnetError(f"--warmup must not be negative, got {warmup}", "pass --warmup 3")
    if timeout is not None and not timeout > 0:
        raise SplitnetError(f"--timeout must be positive, got {timeout}", "e.g. --timeout 5")

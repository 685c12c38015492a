"""``splitrun``: the command line.

User errors (:class:`SplitnetError`) print one line, ``error: ... (fix: ...)``, and exit 2;
a failed check exits 1; Ctrl-C and SIGTERM stop every local board and exit 130 / 143.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from pathlib import Path

from splitnet.framework.errors import SplitnetError

from splitnet import __version__

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        raise SplitnetError(message, f"see {self.prog} --help")


def _widths(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise SplitnetError(
            f"--widths {text!r} is not a comma-separated list of numbers", "e.g. --widths 0.75,0.25"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    from splitnet.partitioners.channels import DEFAULT_MULTIPLE, MAX_BRANCHES

    parser = _ArgumentParser(
        prog="splitrun",
        description=(
            "Split a model into N narrow branches plus a merge head, compile each branch with TVM, "
            "run the branches in parallel on boards registered with a TVM RPC tracker, and check the "
            "result against the reference. With no inventory, N PYNQ boards are emulated by local "
            "RPC servers on this machine."
        ),
    )
    parser.add_argument("--version", action="version", version=f"splitnet {__version__}")
    parser.add_argument(
        "--branches", "-n", type=int, default=2, help=f"number of branches N, 1..{MAX_BRANCHES} (default 2)"
    )
    parser.add_argument("--model", default="resnet18_v1", help="registered model name (default resnet18_v1)")
    parser.add_argument(
        "--widths",
        type=_widths,
        default=None,
        help="width share per branch, comma-separated, e.g. 0.75,0.25 (default: equal)",
    )
    parser.add_argument(
        "--multiple",
        type=int,
        default=DEFAULT_MULTIPLE,
        help=f"round branch channel counts to this multiple (default {DEFAULT_MULTIPLE}; 16 matches VTA's GEMM block)",
    )
    parser.add_argument(
        "--images", type=Path, default=None, help="directory of images to run (default: a built-in pillow-drawn set)"
    )
    parser.add_argument("--runs", type=int, default=20, help="timed frames after warm-up (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up frames (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the init when no trained params ship")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the report as JSON")
    parser.add_argument(
        "--inventory",
        type=Path,
        default=None,
        metavar="YAML",
        help="board inventory file (not supported yet: boards are emulated locally)",
    )
    return parser


def _check_options(args: argparse.Namespace) -> None:
    if args.inventory is not None:
        raise SplitnetError("--inventory is not supported yet", "omit it to run on locally emulated PYNQ boards")
    if args.runs < 1:
        raise SplitnetError(f"--runs must be at least 1, got {args.runs}", "pass --runs 20")
    if args.warmup < 0:
        raise SplitnetError(f"--warmup must not be negative, got {args.warmup}", "pass --warmup 3")


def _terminate(signum, frame) -> None:
    raise SystemExit(EXIT_TERMINATED)


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore")  # mxnet and onnx deprecation noise is not the user's concern
    signal.signal(signal.SIGTERM, _terminate)  # SystemExit unwinds the with-blocks that stop boards
    from splitnet.framework.console import console

    try:
        args = build_parser().parse_args(argv)
        _check_options(args)
        from rich.console import Console
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
            )
        )
        render(report, Console(highlight=False, width=None if sys.stdout.isatty() else 120))
        if args.json is not None:
            report.write_json(args.json)
            console.print(f"report written to {args.json}")
        return 0 if report.ok else EXIT_CHECK_FAILED
    except SplitnetError as exc:
        console.print(f"[bold red]error:[/] {exc.one_line()}", soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]: local boards stopped")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

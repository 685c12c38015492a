"""``splitrun``: the command line root. It only wires the command modules.

``splitrun [run] [options]`` runs the split model (``run`` is the default command); every
other command is ``splitrun NAME``. User errors (:class:`SplitnetError`) print one line
each, ``error: ... (fix: ...)``, and exit 2; a failed check exits 1; Ctrl-C and SIGTERM
stop every local board and exit 130 / 143 (:mod:`common` holds the codes).
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from importlib.metadata import version

from ..framework.errors import SplitnetError
from . import accuracy, boards, compare, distill, models, run, setup, train, tune
from .common import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, ArgumentParser, interrupted, mark_interrupted

COMMANDS = {module.NAME: module for module in (run, boards, tune, train, distill, models, accuracy, compare, setup)}
DEFAULT_COMMAND = run.NAME


def build_parser(name: str = DEFAULT_COMMAND) -> argparse.ArgumentParser:
    command = COMMANDS[name]
    others = "; ".join(f"splitrun {n}: {c.SUMMARY}" for n, c in sorted(COMMANDS.items()) if n != name)
    parser = ArgumentParser(
        prog="splitrun" if name == DEFAULT_COMMAND else f"splitrun {name}",
        description=getattr(command, "DESCRIPTION", command.SUMMARY),
        epilog=f"other commands: {others}",
    )
    parser.add_argument("--version", action="version", version=f"splitnet {version('splitnet')}")
    command.add_arguments(parser)
    return parser


def _terminate(signum, frame) -> None:
    raise SystemExit(EXIT_TERMINATED)  # SystemExit unwinds the with-blocks that stop boards


def _interrupt(signum, frame) -> None:
    # Remembered, because TVM code called back from C++ can hand the KeyboardInterrupt back
    # wrapped as another exception; main then still knows that the user pressed Ctrl-C.
    mark_interrupted()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore")  # mxnet and onnx deprecation noise is not the user's concern
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _interrupt)
    from ..framework.console import console

    argv = list(sys.argv[1:] if argv is None else argv)
    name = DEFAULT_COMMAND
    if argv and argv[0] in COMMANDS:
        name, argv = argv[0], argv[1:]
    try:
        return COMMANDS[name].execute(build_parser(name).parse_args(argv))
    except SplitnetError as exc:
        for line in exc.lines():
            console.print(f"[bold red]error:[/] {line}", soft_wrap=True, highlight=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]: local boards stopped")
        return EXIT_INTERRUPTED
    except Exception:
        if interrupted():  # Ctrl-C surfaced as another error (from inside TVM)
            console.print("[bold red]interrupted[/]: local boards stopped")
            return EXIT_INTERRUPTED
        raise


if __name__ == "__main__":
    sys.exit(main())

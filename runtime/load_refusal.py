"""A library a board refuses to load, said in one line: what is wrong with the build, and the fix.

A real ARM board (or one under qemu) refuses code that was not built for it, and TVM reports
it as a long remote traceback. Two cases are common enough to name: a library for another
CPU (an x86 ``.so`` on an ARM board: the loader rejects it), and an armhf ``.tar`` built for
the soft-float ABI (the board's linker: "uses VFP register arguments"). Anything else is left
as it was, so recovery still sees a failed call.
"""

from __future__ import annotations

from ..framework.errors import SplitnetError
from .inventory import Board

_SOFT_FLOAT = ("uses VFP register arguments",)
_WRONG_CPU = (
    "wrong ELF class",
    "Exec format error",
    "wrong ELF",
    "ELF load command",
    "not for this machine",
    "Failed to load dynamic shared library",
)


def refusal(board: Board, name: str, exc: BaseException) -> SplitnetError | None:
    """The one-line error for a refused library, or None when ``exc`` is something else."""
    text = str(exc)
    if any(s in text for s in _SOFT_FLOAT):
        return SplitnetError(
            f"board {board.name} cannot link {name}: it was built for the soft-float ABI, and the board runs armhf "
            'Linux, which passes floats in VFP registers (the target lacks "mfloat-abi": "hard")',
            'add "mfloat-abi": "hard" to the board\'s target, or use the pynq-z1 preset',
        )
    if any(s in text for s in _WRONG_CPU):
        return SplitnetError(
            f"board {board.name} refused {name}: the library was not built for its CPU "
            f"({board.describe()}; an x86 library cannot load on an ARM board)",
            "build for the board's own target: an ARM board needs emulation: qemu (or a real board) and its preset",
        )
    return None

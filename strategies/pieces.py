"""Pieces on boards: compile each Part for its board, upload it, call it under a deadline.

Shared by the spatial and pipeline strategies. Every remote call runs through
:func:`splitnet.runtime.guard.guarded`, so a dead or stalled board is an error naming the
piece and the board instead of a hang, and every array sent or received is counted, so the
bytes a strategy moves per frame are measured, not predicted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from rich.progress import Progress

from ..framework.artifact import CompiledArtifact
from ..framework.compile import compile_part
from ..framework.errors import SplitnetError
from ..framework.split_model import Part
from ..runtime.board_session import BoardSession, RemoteModule
from ..runtime.guard import FIRST_CALL_TIMEOUT_S, derived_timeout, guarded
from ..runtime.inventory import Board, Inventory

COMPUTE_REPEAT = 3


@dataclass(frozen=True)
class Piece:
    part: Part
    board: Board
    flops: int


def board_for(inventory: Inventory, index: int) -> Board:
    """Piece ``index`` goes to board ``index mod boards`` (several pieces on a board run in turn)."""
    return inventory.boards[index % len(inventory.boards)]


class ByteCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0

    def add(self, *arrays: np.ndarray) -> None:
        with self._lock:
            self.total += sum(int(a.nbytes) for a in arrays)


class LoadedPieces:
    """Pieces compiled, uploaded and callable; ``close`` gives the sessions back."""

    def __init__(
        self, pieces: list[Piece], sessions: dict[str, BoardSession], progress: Progress | None = None
    ) -> None:
        self.pieces = pieces
        self.progress = progress
        self._frames_task = None
        self.sessions = sessions
        self.artifacts: list[CompiledArtifact] = []
        self.modules: list[RemoteModule] = []
        self.timeout_s = FIRST_CALL_TIMEOUT_S
        self.sent = ByteCounter()
        self._call_s: list[float] = []
        self.dead: set[str] = set()

    def _task(self, description: str, total: int):
        return None if self.progress is None else self.progress.add_task(description, total=total)

    def _advance(self, task) -> None:
        if task is not None:
            self.progress.advance(task)

    def compile(self) -> None:
        task = self._task("export + compile", len(self.pieces))
        for p in self.pieces:
            self.artifacts.append(compile_part(p.part, p.board.build_target, p.board.build_format))
            self._advance(task)

    def upload(self) -> None:
        task = self._task("upload", len(self.pieces))
        for piece, artifact in zip(self.pieces, self.artifacts, strict=True):
            session = self.sessions[piece.board.name]
            what = f"uploading {piece.part.name} to {piece.board.name}"
            self.modules.append(guarded(session.load, artifact, timeout=FIRST_CALL_TIMEOUT_S, what=what))
            self._advance(task)

    def expect_frames(self, total: int) -> None:
        self._frames_task = self._task("frames", total)

    def frame_done(self) -> None:
        self._advance(self._frames_task)

    def call(self, index: int, x: np.ndarray) -> np.ndarray:
        """Piece ``index`` on its board, under the current deadline; the arrays moved are counted.

        A board that fails or misses the deadline is marked dead (its session is abandoned, not
        closed: closing talks to the board) and the error names the piece and the board.
        """
        piece = self.pieces[index]
        start = time.perf_counter()
        what = f"{piece.part.name} on {piece.board.name}"
        try:
            out = guarded(self.modules[index], x, timeout=self.timeout_s, what=what)
        except SplitnetError:
            self.dead.add(piece.board.name)
            raise
        except Exception as exc:  # the RPC error of a killed board, a closed socket, ...
            self.dead.add(piece.board.name)
            detail = " ".join(str(exc).split())[:160] or type(exc).__name__
            raise SplitnetError(f"{what} failed ({detail})", "check the board with splitrun boards") from None
        self._call_s.append(time.perf_counter() - start)
        self.sent.add(x, out)
        return out

    def settle_timeout(self, fixed: float | None) -> None:
        """After the verify pass: ``--timeout``, else a multiple of the slowest call seen."""
        self.timeout_s = fixed or derived_timeout(self._call_s)

    def compute_ms(self, index: int, x: np.ndarray) -> float:
        module = self.modules[index]
        what = f"timing {self.pieces[index].part.name} on {module.board}"
        times = guarded(lambda: module.compute_times(x, repeat=COMPUTE_REPEAT), timeout=FIRST_CALL_TIMEOUT_S, what=what)
        return float(np.median(times)) * 1000.0

    def close(self) -> None:
        self.modules.clear()
        for name, session in self.sessions.items():
            if name not in self.dead:
                session.close()

    @property
    def cache_hits(self) -> int:
        return sum(a.cached for a in self.artifacts)

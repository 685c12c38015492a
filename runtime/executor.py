"""Run frames through a placed split model: branches in parallel, then the merge head, and
never hang or lose a frame when a board fails.

Each branch call goes out on a daemon thread (:mod:`guard`) and is waited for with a
deadline, so a killed server (an error at once) and a stalled one (no answer: a timeout)
are both detected and named. What happens next is the recovery policy:

* ``spare``: the branch is re-placed (``recover``: a spare board first, else the least
  loaded survivor), uploaded, and the frame's branch re-run there.
* ``replicate``: each branch runs on two boards at once and the first answer wins; a
  replica that is queued behind other work on its board is skipped once the other answered.
  When both copies of a branch are lost it is re-placed as with ``spare``.
* ``coded``: the merge head's dense layers run on the boards as ``k`` row blocks plus a
  parity block (:mod:`coded`); a lost or late block is decoded from the others. Lost
  branches are re-placed as with ``spare``.
* ``degrade``: a lost branch is dropped: its features are zeros, which removes its columns
  from the head's first dense layer, and every frame that used this is flagged degraded.
* ``none``: the first failure ends the run with an error naming the board.

The policies are objects in a registry (:mod:`policies`): each decides what happens to a
lost branch by calling one of the mechanics here (:meth:`DistributedSplit.drop_branch`,
:meth:`DistributedSplit.replace_branch`) or by raising.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..framework.errors import SplitnetError
from .board_session import RemoteModule
from .guard import FIRST_CALL_TIMEOUT_S, Skipped, first_success, resolve_each, submit
from .policies import DEFAULT_POLICY, RecoveryPolicy, get_policy


@dataclass
class FaultEvent:
    """One failure, where and how it was noticed, and what was done about it."""

    frame: int
    board: str
    kind: str  # "error" (the call failed) or "timeout" (no answer in time)
    detail: str
    detected_ms: float  # from the start of the failed call to its detection
    part: str  # "branch 1", "head block 0"
    action: str = ""
    recovered_ms: float | None = None  # from detection to a correct answer for the frame


@dataclass(frozen=True)
class FrameResult:
    logits: np.ndarray
    features: tuple[np.ndarray, ...]
    branch_call_s: tuple[float, ...]
    head_s: float
    total_s: float
    degraded: bool = False
    events: tuple[FaultEvent, ...] = ()


Recover = Callable[[int, set[str]], RemoteModule]  # (branch, dead boards) -> module on a new board


@dataclass
class DistributedSplit:
    """``DistributedSplit(branches, head)(x)`` -> :class:`FrameResult` for one frame.

    ``branches[i]`` is one module, or a list of replicas of branch ``i``. ``head`` is a local
    callable on the features, or a coded head (``coded_head``) run on the boards.
    """

    branches: list
    head: Callable[..., np.ndarray]
    policy: str = DEFAULT_POLICY  # a registered recovery policy (see :mod:`policies`)
    timeout_s: float = FIRST_CALL_TIMEOUT_S
    recover: Recover | None = None
    coded_head: object | None = None
    feature_shapes: list[tuple[int, ...]] = field(default_factory=list)
    dead: set[str] = field(default_factory=set)
    lost: set[int] = field(default_factory=set)  # branches dropped under `degrade`
    events: list[FaultEvent] = field(default_factory=list)
    frames: int = 0
    _unfinished: list = field(default_factory=list)  # replica calls still running after their frame
    # Pipelined runs call this from several threads at once (one frame each): the frame
    # counter, the fault bookkeeping and recovery are shared, so they are taken under a lock;
    # the boards themselves serialise calls with their session locks.
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        self.recovery: RecoveryPolicy = get_policy(self.policy)  # unknown: lists the known ones
        self.branches = [list(b) if isinstance(b, list | tuple) else [b] for b in self.branches]

    def modules(self) -> list[RemoteModule]:
        """The live module answering for each branch (None for a dropped branch)."""
        return [next((m for m in replicas if m.board not in self.dead), None) for replicas in self.branches]

    def __call__(self, x: np.ndarray) -> FrameResult:
        with self._lock:
            frame, self.frames = self.frames, self.frames + 1
            new_events: list[FaultEvent] = self._late_failures(frame)
        start = time.perf_counter()
        futures, lives = {}, {}
        for i, replicas in enumerate(self.branches):
            if i in self.lost:
                continue
            lives[i] = [m for m in replicas if m.board not in self.dead]
            answered = threading.Event()  # set by the first replica to answer; queued ones then skip
            futures[i] = [submit(m.call_unless, answered, x) for m in lives[i]]
        features: list[np.ndarray | None] = [None] * len(self.branches)
        call_s = [0.0] * len(self.branches)
        for i, outcome in resolve_each(futures, start + self.timeout_s, start):  # as each branch is decided
            live = lives[i]
            failed_now = [
                self._fail(frame, live[index].board, kind, detail, seconds, f"branch {i}")
                for index, kind, detail, seconds in outcome.failures
            ]
            if outcome.winner is not None:
                features[i], call_s[i] = outcome.value, outcome.seconds
                for event in failed_now:
                    event.action = f"the replica on {live[outcome.winner].board} answered"
                new_events += failed_now
                reported = {failure[0] for failure in outcome.failures} | {outcome.winner}
                with self._lock:
                    self._unfinished += [
                        (frame, i, live[j], f, start) for j, f in enumerate(futures[i]) if j not in reported
                    ]
                continue
            with self._lock:
                features[i], call_s[i] = self.recovery.lost_branch(self, frame, i, x, failed_now, start)
            new_events += failed_now
        degraded = bool(self.lost)
        for i in self.lost:
            features[i] = np.zeros(self.feature_shapes[i], dtype=np.float32)
        head_start = time.perf_counter()
        if self.coded_head is not None:
            head_events: list[FaultEvent] = []

            def failed(board: str, kind: str, detail: str, seconds: float) -> None:
                event = self._fail(frame, board, kind, detail, seconds, "head block")
                event.action = "decoded from the parity block"
                head_events.append(event)

            logits = self.coded_head(tuple(features), self.dead, self.timeout_s, failed)
            new_events += head_events
        else:
            logits = self.head(*features)
        end = time.perf_counter()
        for event in new_events:
            if event.recovered_ms is None and not degraded:
                event.recovered_ms = max((end - start) * 1000.0 - event.detected_ms, 0.0)
        with self._lock:
            self.events += new_events
        return FrameResult(
            logits=logits,
            features=tuple(features),
            branch_call_s=tuple(call_s),
            head_s=end - head_start,
            total_s=end - start,
            degraded=degraded,
            events=tuple(new_events),
        )

    def _late_failures(self, now: int) -> list[FaultEvent]:
        """Replica calls that lost the race but have since failed: their boards are dead too.

        Reported at frame ``now``, when they are noticed, naming the frame the call was for.
        """
        events, still = [], []
        for frame, i, module, future, started in self._unfinished:
            if not future.done():
                still.append((frame, i, module, future, started))
            elif not isinstance(future.exception(), Skipped | type(None)) and module.board not in self.dead:
                detail = f"(a replica call of frame {frame}) " + " ".join(str(future.exception()).split())[:180]
                seconds = time.perf_counter() - started
                event = self._fail(now, module.board, "error", detail, seconds, f"branch {i} replica")
                event.action, event.recovered_ms = "another replica had answered", 0.0
                events.append(event)
        self._unfinished = still
        return events

    def _fail(self, frame: int, board: str, kind: str, detail: str, seconds: float, part: str) -> FaultEvent:
        self.dead.add(board)
        return FaultEvent(frame=frame, board=board, kind=kind, detail=detail, detected_ms=seconds * 1000.0, part=part)

    def drop_branch(self, i: int, events: list[FaultEvent], start: float) -> tuple[np.ndarray, float]:
        """Answer without branch ``i`` from now on: zero features, every frame flagged degraded."""
        self.lost.add(i)
        for event in events:
            event.action = f"branch {i} dropped: frames answered from the other branches, flagged degraded"
        return np.zeros(self.feature_shapes[i], dtype=np.float32), time.perf_counter() - start

    def replace_branch(
        self, frame: int, i: int, x: np.ndarray, events: list[FaultEvent], start: float
    ) -> tuple[np.ndarray, float]:
        """Move branch ``i`` to another board (``recover``) and run this frame's branch there."""
        boards = ", ".join(e.board for e in events) or "its board"
        detected = time.perf_counter()
        # With frames in flight, an earlier frame may have re-placed this branch already.
        module = next((m for m in self.branches[i] if m.board not in self.dead), None)
        if module is None:
            try:
                module = submit(self.recover, i, set(self.dead)).result(timeout=FIRST_CALL_TIMEOUT_S)
            except SplitnetError as exc:
                raise SplitnetError(
                    f"branch {i} lost on {boards} at frame {frame}, and {exc.message}", exc.fix
                ) from None
            self.branches[i] = [module]
        outcome = first_success(
            [submit(module.call_unless, threading.Event(), x)], time.perf_counter() + self.timeout_s * 4, detected
        )
        if outcome.winner is None:
            self._fail(
                frame,
                module.board,
                outcome.failures[0][1],
                outcome.failures[0][2],
                outcome.failures[0][3],
                f"branch {i}",
            )
            raise SplitnetError(
                f"branch {i} failed again after moving to board {module.board} at frame {frame}",
                "check the boards with splitrun boards",
            )
        for event in events:
            event.action = f"branch {i} re-placed on {module.board}, frame re-run"
            event.recovered_ms = (time.perf_counter() - detected) * 1000.0
        return outcome.value, time.perf_counter() - start

"""Run frames through a placed split model: branches in parallel, then the merge head, and
never hang or lose a frame when a board fails, or when another fails after it.

Each branch call goes out on a daemon thread (:mod:`guard`) and is waited for with a
deadline, so a killed server (an error at once) and a stalled one (no answer: a timeout)
are both detected and named. So is a board that answers wrongly (:mod:`answers`): every
answer must have the expected shape and be finite, and with an :class:`~.answers.Audit`
every K-th frame's answers must equal the in-process split's; a wrong answer fails its
board (kind ``wrong``) before it reaches the merge head. What happens next is the recovery
policy (:mod:`policies`, a registry):

* ``spare``: the branch is re-placed (``recover``: a spare board first, else the least
  loaded survivor), uploaded, and the frame's branch re-run there; a board that fails while
  it takes the branch is failed too, and the branch moves on.
* ``replicate``: each branch runs on two boards at once and the first answer wins; a
  replica that is queued behind other work on its board is skipped once the other answered.
  A branch whose copy died gets a new copy in the background (:meth:`add_copy`); when both
  copies are lost at once it is re-placed as with ``spare``.
* ``coded``: the merge head's dense layers run on the boards as ``k`` row blocks plus a
  parity block (:mod:`coded`); a lost or late block is decoded from the others, and the head
  is re-encoded over the boards that are left in the background (:meth:`recode_head`, while
  three or more are), so a second loss is decoded too. A frame that loses more blocks than
  parity recovers (before the re-encode is done, or with two boards left) runs the head on
  the host. Lost branches are re-placed as with ``spare``.
* ``degrade``: a lost branch is dropped: its features are zeros, which removes its columns
  from the head's first dense layer, and every frame that used this is flagged degraded.
* ``none``: the first failure ends the run with an error naming the board.

A policy decides by calling the mechanics here (:meth:`drop_branch`, :meth:`replace_branch`,
:meth:`add_copy`, :meth:`recode_head`) or by raising; repairs run one at a time in the
background (:mod:`repair`) while frames are answered from what is left. A failed board that
answers again (:mod:`rejoin` probes them) comes back through :meth:`rejoin` as a spare,
empty: whatever it held was re-placed already.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..framework.errors import SplitnetError
from .answers import Audit, all_finite, checker
from .board_session import RemoteModule
from .coded import BlockUploadFailed, CodedHead, CodeLost
from .guard import FIRST_CALL_TIMEOUT_S, Skipped, WrongAnswer, first_success, resolve_each, submit
from .policies import DEFAULT_POLICY, RecoveryPolicy, get_policy
from .repair import Repairs

MAX_MOVES = 8  # boards a lost branch may be moved to in one frame before the run gives up
REPAIR_WAIT_S = 30.0  # at the end of a run, how long repairs still running are waited for
SKIP_PING_S = 0.5  # a skipped replica's ping of its board
MIN_CODE_K = 2  # a coded head is re-encoded only over enough boards for two data blocks and parity


@dataclass
class FaultEvent:
    """One failure, where and how it was noticed, and what was done about it."""

    frame: int
    board: str
    kind: str  # "error" (the call failed), "timeout" (no answer in time), "wrong" (a wrong answer)
    detail: str
    detected_ms: float  # from the start of the failed call to its detection
    part: str  # "branch 1", "head block 0"
    action: str = ""
    recovered_ms: float | None = None  # from detection to a correct answer for the frame


@dataclass
class RejoinEvent:
    """A failed board that answered again and went back to the pool."""

    board: str
    frame: int  # frames sent when it came back
    down_ms: float  # from its failure to its return
    how: str


@dataclass(frozen=True)
class FrameResult:
    logits: np.ndarray
    features: tuple[np.ndarray, ...]
    branch_call_s: tuple[float, ...]
    head_s: float
    total_s: float
    degraded: bool = False
    events: tuple[FaultEvent, ...] = ()


class PlacementFailed(SplitnetError):
    """The board chosen to take a branch failed while it was being put there."""

    def __init__(self, board: str, detail: str) -> None:
        super().__init__(f"board {board} failed while a branch was put on it ({detail})", "check it: splitrun boards")
        self.board = board
        self.detail = detail


class _SetAfterCheck:
    """A replica race's ``answered`` event as one call sees it: it reads whether another copy
    answered, but its own answer counts only once it passed its check (:func:`_checked_call`)."""

    def __init__(self, answered: threading.Event) -> None:
        self._answered = answered

    def is_set(self) -> bool:
        return self._answered.is_set()

    def set(self) -> None:
        """Not yet: the answer has to pass its check first."""


def _checked_call(module, check, answered: threading.Event, x: np.ndarray) -> np.ndarray:
    """``module.call_unless(answered, x)``, with ``answered`` set only for an answer that passes
    ``check``: a wrong answer raises, never reaches the head, and never stops a right copy.

    A copy skipped because its twin answered first learns nothing of its board, and a dead
    board whose copies keep losing the race would go unnoticed (and its branch unrepaired)
    for frames; so a skipped call pings its board once, and a session found gone fails it.
    """
    try:
        out = module.call_unless(_SetAfterCheck(answered), x)
    except Skipped:
        owner = getattr(module, "owner", None)
        if owner is not None and owner.ping(SKIP_PING_S) is False:
            raise ConnectionError("its session is gone (found by a ping while its copy was skipped)") from None
        raise
    check(out)
    answered.set()
    return out


Recover = Callable[[int, set[str]], RemoteModule]  # (branch, boards to avoid) -> module on another board
CodeHead = Callable[[list[str]], CodedHead]  # boards -> a coded head over them, uploaded


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
    coded_head: CodedHead | None = None
    feature_shapes: list[tuple[int, ...]] = field(default_factory=list)
    dead: set[str] = field(default_factory=set)
    lost: set[int] = field(default_factory=set)  # branches dropped under `degrade`
    events: list[FaultEvent] = field(default_factory=list)
    frames: int = 0
    _unfinished: list = field(default_factory=list)  # replica calls still running after their frame
    # Pipelined runs call this from several threads at once (one frame each): the frame
    # counter, the fault bookkeeping and recovery are shared, so they are taken under a lock;
    # the boards themselves serialise calls with their session locks. The lock is never
    # taken while a session lock is held (repairs upload first, then swap under it).
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    code_head: CodeHead | None = None  # re-encodes the coded head over the boards given
    head_boards: tuple[str, ...] = ()  # the boards a coded head may use, in inventory order
    audit: Audit | None = None  # every K-th frame checked against the in-process split
    rejoins: list[RejoinEvent] = field(default_factory=list)
    untrusted: set[str] = field(default_factory=set)  # boards that answered wrongly: never taken back
    host_heads: int = 0  # frames whose coded head lost too many blocks and ran on the host
    _failed_at: dict[str, float] = field(default_factory=dict, repr=False)
    _retired_decodes: int = 0  # parity decodes of coded heads replaced by a re-encoded one

    def __post_init__(self) -> None:
        self.recovery: RecoveryPolicy = get_policy(self.policy)  # unknown: lists the known ones
        self.branches = [list(b) if isinstance(b, list | tuple) else [b] for b in self.branches]
        self.repairs = Repairs(lambda: self.frames)
        self.rejoiner = None  # set by the wiring (:mod:`recovery`) when boards may come back

    def modules(self) -> list[RemoteModule]:
        """The live module answering for each branch (None for a dropped branch)."""
        return [next((m for m in replicas if m.board not in self.dead), None) for replicas in self.branches]

    @property
    def parity_decodes(self) -> int:
        """Head outputs decoded from a parity block, over every coded head this run had."""
        current = self.coded_head.recovered_blocks if self.coded_head is not None else 0
        return self._retired_decodes + current

    def _check(self, i: int, finite: bool):
        return checker(self.feature_shapes[i] if i < len(self.feature_shapes) else None, finite)

    def __call__(self, x: np.ndarray) -> FrameResult:
        with self._lock:
            frame, self.frames = self.frames, self.frames + 1
            new_events: list[FaultEvent] = self._late_failures(frame)
            branches, coded_head = self.branches, self.coded_head
        start = time.perf_counter()
        finite = all_finite(x)
        audit = self.audit.start(x) if self.audit is not None and self.audit.due(frame) else None
        futures, lives = {}, {}
        for i, replicas in enumerate(branches):
            if i in self.lost:
                continue
            lives[i] = [m for m in replicas if m.board not in self.dead]
            answered = threading.Event()  # set by the first replica to answer; queued ones then skip
            check = self._check(i, finite)
            futures[i] = [submit(_checked_call, m, check, answered, x) for m in lives[i]]
        features: list[np.ndarray | None] = [None] * len(branches)
        call_s = [0.0] * len(branches)
        answered_by: list[str | None] = [None] * len(branches)
        for i, outcome in resolve_each(futures, start + self.timeout_s, start):  # as each branch is decided
            live = lives[i]
            failed_now = [
                self._fail(frame, live[index].board, kind, detail, seconds, f"branch {i}")
                for index, kind, detail, seconds in outcome.failures
            ]
            if outcome.winner is not None:
                features[i], call_s[i], answered_by[i] = outcome.value, outcome.seconds, live[outcome.winner].board
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
                answered_by[i] = self._answering(i)
            new_events += failed_now
        if audit is not None:
            new_events += self._audit_branches(frame, x, audit, features, call_s, answered_by, start)
        degraded = bool(self.lost)
        for i in self.lost:
            features[i] = np.zeros(self.feature_shapes[i], dtype=np.float32)
        head_start = time.perf_counter()
        logits, head_events = self._head(frame, coded_head, features, audit is not None)
        new_events += head_events
        end = time.perf_counter()
        for event in new_events:
            if event.recovered_ms is None and not degraded:
                event.recovered_ms = max((end - start) * 1000.0 - event.detected_ms, 0.0)
        with self._lock:
            self.events += new_events
            if new_events:  # boards failed: the policy restores what it keeps, in the background
                self.recovery.pool_changed(self)
        return FrameResult(
            logits=logits,
            features=tuple(features),
            branch_call_s=tuple(call_s),
            head_s=end - head_start,
            total_s=end - start,
            degraded=degraded,
            events=tuple(new_events),
        )

    def _answering(self, i: int) -> str | None:
        module = next((m for m in self.branches[i] if m.board not in self.dead), None)
        return None if module is None or i in self.lost else module.board

    def _head(self, frame: int, coded_head: CodedHead | None, features: list, audit: bool):
        if coded_head is None:
            return self.head(*features), []
        events: list[FaultEvent] = []

        def failed(board: str, kind: str, detail: str, seconds: float) -> None:
            event = self._fail(frame, board, kind, detail, seconds, "head block")
            event.action = "decoded from the parity block"
            events.append(event)

        try:
            return coded_head(tuple(features), self.dead, self.timeout_s, failed, audit), events
        except CodeLost:
            # Two blocks lost before the re-encode over the survivors was ready: the head
            # built for the host gives the same answer.
            with self._lock:
                self.host_heads += 1
            for event in events:
                event.action = "the head ran on the host: more blocks lost than one parity block recovers"
            return self.head(*features), events

    def _audit_branches(self, frame, x, audit, features, call_s, answered_by, start) -> list[FaultEvent]:
        """Each branch's answer against the in-process split's; a wrong one fails its board and is re-run."""
        expected = Audit.expected(audit)
        events = []
        with self._lock:
            self.audit.frames += 1
        for i, got in enumerate(features):
            if got is None or i in self.lost or answered_by[i] is None:
                continue
            with self._lock:
                diff = self.audit.compare(got, expected[i])
            if diff is None:
                continue
            detail = f"audit: branch {i}'s answer differs from the in-process split by {diff:.1e}"
            event = self._fail(frame, answered_by[i], "wrong", detail, time.perf_counter() - start, f"branch {i}")
            with self._lock:
                features[i], call_s[i] = self.recovery.lost_branch(self, frame, i, x, [event], start)
                if i not in self.lost:
                    self.audit.compare(features[i], expected[i])  # counted again if the re-run is wrong too
            events.append(event)
        return events

    def _late_failures(self, now: int) -> list[FaultEvent]:
        """Replica calls that lost the race but have since failed: their boards are dead too.

        Reported at frame ``now``, when they are noticed, naming the frame the call was for.
        """
        events, still = [], []
        for frame, i, module, future, started in self._unfinished:
            if not future.done():
                still.append((frame, i, module, future, started))
            elif not isinstance(future.exception(), Skipped | type(None)) and module.board not in self.dead:
                exc = future.exception()
                detail = f"(a replica call of frame {frame}) " + " ".join(str(exc).split())[:180]
                kind = "wrong" if isinstance(exc, WrongAnswer) else "error"
                event = self._fail(
                    now, module.board, kind, detail, time.perf_counter() - started, f"branch {i} replica"
                )
                event.action, event.recovered_ms = "another replica had answered", 0.0
                events.append(event)
        self._unfinished = still
        return events

    def _fail(self, frame: int, board: str, kind: str, detail: str, seconds: float, part: str) -> FaultEvent:
        with self._lock:
            self.dead.add(board)
            self._failed_at.setdefault(board, time.perf_counter())
            if kind == "wrong":
                self.untrusted.add(board)
        return FaultEvent(frame=frame, board=board, kind=kind, detail=detail, detected_ms=seconds * 1000.0, part=part)

    # -- mechanics a policy calls ------------------------------------------------------------
    def drop_branch(self, i: int, events: list[FaultEvent], start: float) -> tuple[np.ndarray, float]:
        """Answer without branch ``i`` from now on: zero features, every frame flagged degraded."""
        self.lost.add(i)
        for event in events:
            event.action = f"branch {i} dropped: frames answered from the other branches, flagged degraded"
        return np.zeros(self.feature_shapes[i], dtype=np.float32), time.perf_counter() - start

    def replace_branch(
        self, frame: int, i: int, x: np.ndarray, events: list[FaultEvent], start: float
    ) -> tuple[np.ndarray, float]:
        """Move branch ``i`` to another board (``recover``) and run this frame's branch there.

        A board that fails while it takes the branch (the upload, or the re-run) is failed
        too, and the branch moves on to the next, up to ``MAX_MOVES`` boards.
        """
        boards = ", ".join(e.board for e in events) or "its board"
        detected = time.perf_counter()
        check = self._check(i, all_finite(x))
        for _ in range(MAX_MOVES):
            # With frames in flight, an earlier frame may have re-placed this branch already.
            module = next((m for m in self.branches[i] if m.board not in self.dead), None)
            if module is None:
                try:
                    module = submit(self.recover, i, set(self.dead)).result(timeout=FIRST_CALL_TIMEOUT_S * 2)
                except PlacementFailed as exc:
                    event = self._fail(frame, exc.board, "error", exc.detail, 0.0, f"branch {i} (moving)")
                    event.action = f"failed while branch {i} was moved to it; moved on"
                    events.append(event)
                    continue
                except SplitnetError as exc:
                    raise SplitnetError(
                        f"branch {i} lost on {boards} at frame {frame}, and {exc.message}", exc.fix
                    ) from None
                self.branches[i] = [module]
            outcome = first_success(
                [submit(_checked_call, module, check, threading.Event(), x)],
                time.perf_counter() + self.timeout_s * 4,
                detected,
            )
            if outcome.winner is not None:
                for event in events:
                    if not event.action:
                        event.action = f"branch {i} re-placed on {module.board}, frame re-run"
                    event.recovered_ms = (time.perf_counter() - detected) * 1000.0
                return outcome.value, time.perf_counter() - start
            _, kind, detail, seconds = outcome.failures[0]
            event = self._fail(frame, module.board, kind, detail, seconds, f"branch {i} (moved)")
            event.action = f"failed when branch {i} was re-run on it; moved on"
            events.append(event)
        raise SplitnetError(
            f"branch {i} failed on every board it was moved to at frame {frame} ({boards} first)",
            "check the boards with splitrun boards",
        )

    def schedule_repair(self, what: str, repair: Callable[[], str | None]) -> None:
        self.repairs.schedule(what, repair)

    def add_copy(self, i: int) -> str | None:
        """One more copy of branch ``i`` on a live board that holds none (replicate, in the background)."""
        with self._lock:
            holders = {m.board for m in self.branches[i] if m.board not in self.dead}
            if i in self.lost or self.recover is None or not holders or len(holders) >= self.recovery.copies:
                return None
            avoid = self.dead | holders
        try:
            module = self.recover(i, avoid)
        except PlacementFailed as exc:
            self._repair_failed(exc.board, exc.detail, f"branch {i} (copy)")
            raise
        with self._lock:
            if module.board in self.dead:
                return f"{module.board} failed before its copy of branch {i} was used"
            self.branches[i] = [*self.branches[i], module]
        return f"branch {i} copied to {module.board}"

    def recode_head(self) -> str | None:
        """The coded head re-encoded over the live boards (coded, in the background).

        Only while that leaves ``MIN_CODE_K`` data blocks or more: with one, every board would
        hold the whole layer, the copy the code exists to avoid. With fewer boards left, the
        code in use goes on decoding its one missing block from parity; once it cannot (a
        second of its boards lost), the head runs on the host.
        """
        if self.code_head is None:
            return None
        with self._lock:
            live = [name for name in self.head_boards if name not in self.dead]
            current = self.coded_head
            if current is None:
                missing = len(self.head_boards)
            else:
                missing = len([b for b in current.boards if b in self.dead or b in current.failed_boards])
            if current is not None and list(current.boards) == live and missing == 0:
                return None  # the code already spans exactly these boards, all answering
            if len(live) - 1 < MIN_CODE_K:
                if current is None or missing <= 1:
                    return None  # on the host already, or the code in use still decodes every frame
                self._retire_head()
                return f"the head runs on the host from here on: {len(live)} boards left, too few to code it over"
        try:
            head = self.code_head(live)
        except BlockUploadFailed as exc:
            self._repair_failed(exc.board, exc.message, "head block (re-encode)")
            raise
        with self._lock:
            if set(live) & self.dead:
                return "a board failed while the head was re-encoded: encoded again without it"
            self._retire_head()
            self.coded_head = head
        return f"re-encoded over {', '.join(live)}: {head.k} data blocks + parity"

    def _retire_head(self) -> None:
        if self.coded_head is not None:
            self._retired_decodes += self.coded_head.recovered_blocks
        self.coded_head = None

    def _repair_failed(self, board: str, detail: str, part: str) -> None:
        event = self._fail(self.frames, board, "error", detail, 0.0, part)
        event.action = "failed during a repair; repaired again without it"
        with self._lock:
            self.events.append(event)
            self.recovery.pool_changed(self)

    # -- boards that come back ---------------------------------------------------------------
    def rejoinable(self) -> list[str]:
        """Failed boards worth probing (not those that answered wrongly: they would answer a probe)."""
        with self._lock:
            return sorted(self.dead - self.untrusted)

    def rejoin(self, board: str, how: str) -> None:
        """``board`` answers again: back in the pool as a spare, holding nothing."""
        with self._lock:
            if board not in self.dead or board in self.untrusted:
                return
            self.dead.discard(board)
            self.branches = [[m for m in replicas if m.board != board] for replicas in self.branches]
            failed_at = self._failed_at.pop(board, time.perf_counter())
            self.rejoins.append(RejoinEvent(board, self.frames, (time.perf_counter() - failed_at) * 1000.0, how))
            self.recovery.pool_changed(self)

    def shutdown(self, wait_s: float = REPAIR_WAIT_S) -> None:
        """The run is over: stop probing, let the repairs still running finish (up to ``wait_s``)."""
        if self.rejoiner is not None:
            self.rejoiner.stop()
        self.repairs.stop()
        self.repairs.wait(wait_s)

"""Remote calls that cannot hang: each runs on a daemon thread and is waited for with a deadline.

A TVM RPC call blocks in C++ until the server answers, and a server that accepts and never
answers (stalled, or a board whose network went away) would block it forever. So every
remote call runs on its own daemon thread, and the caller waits on a future with a timeout.
A call that misses its deadline is abandoned: its thread stays blocked until the server
answers or dies, but nobody waits for it, and as a daemon it never holds up the exit.

Threads are kept for the next call once theirs returns (:class:`_Workers`): starting one
costs the host ~0.1 ms of CPU, two per frame, taken from boards that share its cores. A
blocked call keeps its thread, and a call that finds no idle thread starts one, so a stuck
board never holds another call up. Not ``concurrent.futures.ThreadPoolExecutor``: its
threads are joined when the interpreter exits, so one call stuck on a board would hang the
exit, and its ``max_workers`` would make later calls queue behind stuck ones.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any

from ..framework.errors import SplitnetError

FIRST_CALL_TIMEOUT_S = 60.0  # before any latency is measured (first calls, uploads)
MIN_TIMEOUT_S = 1.0
TIMEOUT_FACTOR = 4.0  # a call is late when it takes this many times the slowest one measured


class Skipped(Exception):
    """A queued replica call that did not start because another replica already answered."""


class WrongAnswer(Exception):
    """A board answered, but with something that cannot be the answer (wrong shape, not finite, failed audit).

    Raised before the answer is handed on, so it never reaches the merge head and never wins
    a replica race; the board is failed like one that did not answer (kind ``wrong``).
    """


def derived_timeout(measured_s: list[float]) -> float:
    """A per-call timeout from measured call times: ``TIMEOUT_FACTOR`` x the slowest, at least 1 s."""
    if not measured_s:
        return FIRST_CALL_TIMEOUT_S
    return max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * max(measured_s))


class _Workers:
    """Daemon threads that run one call each and wait for the next; never fewer than needed."""

    MAX_IDLE = 16  # threads kept waiting; one that finds this many idle already ends

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a task that no put is counted against yet

    def run(self, body: Callable[[], None], name: str) -> None:
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1  # that thread takes this task (or another takes it, and it the next)
        self._tasks.put((body, name))
        if start:
            threading.Thread(target=self._loop, name=name, daemon=True).start()

    def _loop(self) -> None:
        me = threading.current_thread()
        while True:
            body, me.name = self._tasks.get()
            body()
            with self._lock:
                if self._idle >= self.MAX_IDLE:
                    return
                self._idle += 1


_WORKERS = _Workers()


def submit(fn: Callable[..., Any], *args: Any, name: str = "splitnet-call") -> Future:
    """Run ``fn(*args)`` on a daemon thread (an idle one, else a new one); the future carries
    its result or exception."""
    future: Future = Future()
    future.set_running_or_notify_cancel()

    def body() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 (handed to the waiter, who decides)
            future.set_exception(exc)

    _WORKERS.run(body, name)
    return future


@dataclass(frozen=True)
class Outcome:
    """How a set of replica calls ended: the first success, and every failure seen before it."""

    value: Any
    winner: int | None  # index of the replica that answered, None when none did
    failures: tuple[tuple[int, str, str, float], ...]  # (replica, "error" | "timeout" | "wrong", detail, seconds)
    seconds: float


def first_success(futures: list[Future], deadline: float, started: float) -> Outcome:
    """Wait until one future succeeds, all have failed, or ``deadline`` (perf_counter) passes."""
    return next(iter(resolve_each({0: futures}, deadline, started)))[1]


def resolve_each(groups: dict[Any, list[Future]], deadline: float, started: float):
    """Yield ``(key, Outcome)`` for each group of replica futures as soon as it is decided.

    A group is decided by its first success, by the failure of all its futures, or by the
    deadline. Groups are waited on together, so a failed one is handed back (and can be
    recovered) while the others are still computing.
    """
    failures: dict[Any, list[tuple[int, str, str, float]]] = {key: [] for key in groups}
    pending = {key: set(range(len(futures))) for key, futures in groups.items()}
    for key in [k for k, p in pending.items() if not p]:  # nothing to wait for: lost already
        del pending[key]
        yield key, Outcome(None, None, (), time.perf_counter() - started)
    while pending:
        remaining = max(deadline - time.perf_counter(), 0.0)  # past the deadline: one last look
        waiting = [groups[key][i] for key, left in pending.items() for i in left]
        done, _ = wait(waiting, timeout=remaining, return_when=FIRST_COMPLETED)
        for key in list(pending):
            for i in sorted(pending[key]):
                future = groups[key][i]
                if future not in done:
                    continue
                pending[key].discard(i)
                exc = future.exception()
                if exc is None:
                    del pending[key]
                    yield key, Outcome(future.result(), i, tuple(failures[key]), time.perf_counter() - started)
                    break
                if not isinstance(exc, Skipped):
                    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
                    kind = "wrong" if isinstance(exc, WrongAnswer) else "error"
                    failures[key].append((i, kind, detail, time.perf_counter() - started))
            if key in pending and not pending[key]:
                del pending[key]
                yield key, Outcome(None, None, tuple(failures[key]), time.perf_counter() - started)
        if not done and remaining == 0.0:
            break
    for key, left in pending.items():
        noticed = time.perf_counter() - started
        late = [(i, "timeout", f"no answer in {deadline - started:.2f} s", noticed) for i in sorted(left)]
        yield key, Outcome(None, None, (*failures[key], *late), time.perf_counter() - started)


def guarded(fn: Callable[..., Any], *args: Any, timeout: float, what: str) -> Any:
    """``fn(*args)`` with a deadline; a miss is a user-facing error naming ``what``."""
    future = submit(fn, *args)
    try:
        return future.result(timeout=timeout)
    except TimeoutError:
        raise SplitnetError(
            f"{what} did not finish in {timeout:.0f} s", "check the board with splitrun boards"
        ) from None

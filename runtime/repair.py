"""Repairs in the background: what a policy restores after the pool of boards changed.

Recovering a frame cannot wait (the frame needs the lost branch now), but restoring the
redundancy a policy promises can: a second copy of a branch whose copy died (``replicate``),
a coded head re-encoded over the boards that are left or with one that came back
(``coded``). Those run here, one at a time on one daemon thread, while frames go on being
answered from what is left (the other copy, the parity block). Each repair reads the pool
when it runs, not when it was asked for, so asking twice for the same repair while it waits
is asked once; asked again while it runs, it runs again after.

Every repair is recorded (:class:`RepairEvent`): when it was asked for (the frame count),
how long it took, what it did, or why it could not.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Repair = Callable[[], str | None]  # returns what it did (None: nothing was needed)


@dataclass
class RepairEvent:
    frame: int  # frames sent when the repair was asked for
    what: str  # "coded head", "copy of branch 1"
    done: str  # what it did, or why it could not
    ms: float  # from being asked for to done
    ok: bool


class Repairs:
    def __init__(self, frames: Callable[[], int]) -> None:
        self._frames = frames
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: set[str] = set()
        self._busy = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.events: list[RepairEvent] = []

    def schedule(self, what: str, repair: Repair) -> None:
        with self._idle:
            if self._stopped or what in self._waiting:
                return
            self._waiting.add(what)
            self._busy += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="splitnet-repair", daemon=True)
                self._thread.start()
        self._queue.put((what, repair, self._frames(), time.perf_counter()))

    def _loop(self) -> None:
        while True:
            what, repair, frame, asked = self._queue.get()
            with self._idle:
                self._waiting.discard(what)  # from here on, a new request for it runs it again
            try:
                done = repair()
                ok = True
            except Exception as exc:  # noqa: BLE001 (recorded: a repair that fails leaves the run as it was)
                done, ok = " ".join(str(exc).split())[:200] or type(exc).__name__, False
            if done is not None:
                self.events.append(RepairEvent(frame, what, done, (time.perf_counter() - asked) * 1000.0, ok))
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def wait(self, timeout: float) -> bool:
        """Until every repair asked for is done (True), or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def stop(self) -> None:
        """No new repairs from here on (the run is ending)."""
        with self._idle:
            self._stopped = True

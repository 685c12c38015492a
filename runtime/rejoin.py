"""Boards that come back: every failed board is probed in the background until it answers again.

A failed board was abandoned for the rest of the run, even a stalled one that resumed two
seconds later. Now a :class:`Rejoiner` probes each failed board every ``probe_s``:

* while its old session is open, with a round trip on it (:meth:`BoardSession.ping`): a
  stall that ended answers again on the same session, and the board is taken back as it is;
* once that session is gone (its server died), through the tracker: a server registered
  again under the board's key (restarted by hand, by a reboot, or by ``--chaos restart``)
  gets a new session (``reacquire``, from :meth:`splitnet.runtime.fleet.Fleet.reacquire`).

A board that comes back goes back to the pool as a spare (:meth:`DistributedSplit.rejoin`),
and the policy decides what to put on it. Boards that answered *wrongly* are not probed: a
probe cannot tell a wrong board from a right one. When the tracker itself is gone, a board
cannot come back through it: that is said once, in one line with the command that restarts
the tracker, and the probing goes on (a local tracker is restarted by :mod:`tracker_keeper`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future

from ..framework.console import notice
from ..framework.errors import SplitnetError
from .board_session import BoardSession
from .guard import submit

PROBE_S = 0.5  # between probes of the failed boards
PING_TIMEOUT_S = 1.0  # a probe's round trip on an old session
REACQUIRE_TIMEOUT_S = 15.0  # a probe through the tracker (a new session on a server that came back)

Reacquire = Callable[[list[str]], dict[str, BoardSession]]  # failed boards -> new sessions on those that came back


class Rejoiner:
    def __init__(
        self,
        runner,
        sessions: dict[str, BoardSession],
        reacquire: Reacquire | None = None,
        probe_s: float = PROBE_S,
    ) -> None:
        self.runner = runner
        self.sessions = sessions  # shared with the deployment: a new session replaces the old one there
        self.reacquire = reacquire
        self.probe_s = probe_s
        self.notes: list[str] = []  # one line each: what kept boards from coming back
        self._broken: set[str] = set()  # old session gone: these come back through the tracker only
        self._pending: Future | None = None
        self._trouble: str | None = None  # the tracker problem last noted (said once per outage)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="splitnet-rejoin", daemon=True)

    def start(self) -> Rejoiner:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.probe_s):
            try:
                self.probe_once()
            except Exception as exc:  # noqa: BLE001 (a probe must never end the run)
                self._note(f"probing failed boards: {' '.join(str(exc).split())[:160]}")

    def probe_once(self) -> None:
        through_tracker = []
        for name in self.runner.rejoinable():
            if self._stop.is_set():
                return
            board_session = self.sessions.get(name)
            if name not in self._broken and board_session is not None:
                alive = board_session.ping(PING_TIMEOUT_S)
                if alive:
                    self.runner.rejoin(name, "answered again on its session")
                    continue
                if alive is None:  # still stuck (stalled): try again next time
                    continue
                self._broken.add(name)
            through_tracker.append(name)
        if through_tracker and self.reacquire is not None:
            self._through_tracker(through_tracker)

    def _through_tracker(self, names: list[str]) -> None:
        if self._pending is not None and not self._pending.done():
            return  # the last request is still waiting (on a server that accepts and never answers)
        self._pending = submit(self.reacquire, names, name="splitnet-reacquire")
        try:
            found = self._pending.result(timeout=REACQUIRE_TIMEOUT_S)
        except SplitnetError as exc:
            if exc.one_line() != self._trouble:
                self._trouble = exc.one_line()
                self._note(f"boards {', '.join(names)} cannot come back: {exc.one_line()}")
            return
        except Exception:  # noqa: BLE001 (a timeout, or a server that went away mid-handshake: next time)
            return
        self._trouble = None
        for name, board_session in found.items():
            if self._stop.is_set():
                board_session.close()
                continue
            self.sessions[name] = board_session
            self._broken.discard(name)
            self.runner.rejoin(name, f"its server came back at {board_session.address_text}: a new session")

    def _note(self, line: str) -> None:
        self.notes.append(line)
        notice(line)

"""A local tracker that dies is started again, on the same port, while the run goes on.

The tracker only brokers sessions: the sessions a run holds are direct connections to the
boards' servers, so frames keep flowing while it is gone. What needs it is a *new* session
(a board that comes back after its server restarted). TVM's servers reconnect to their
tracker by themselves (every 5 s, for up to 60 s), so a tracker that splitrun started and
restarts on the same port gets its boards back with nothing else to do. A tracker splitrun
did not start is not restarted: a recovery that needs it says so (:meth:`Fleet.reacquire`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass

from .local_cluster import LocalCluster

WATCH_S = 0.2  # how often the tracker process is looked at


@dataclass(frozen=True)
class TrackerEvent:
    event: str  # "restarted", or "not restarted"
    port: int
    down_ms: float  # from noticing it gone to it accepting connections again
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


class TrackerKeeper:
    def __init__(self, cluster: LocalCluster, watch_s: float = WATCH_S) -> None:
        self.cluster = cluster
        self.watch_s = watch_s
        self.events: list[TrackerEvent] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="splitnet-tracker-keeper", daemon=True)

    def start(self) -> TrackerKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Before the cluster stops: its tracker must not be restarted while it is being stopped."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def _loop(self) -> None:
        while not self._stop.wait(self.watch_s):
            if not self.cluster.tracker_exited():
                continue
            noticed = time.perf_counter()
            port = self.cluster.tracker_port or 0
            try:
                restarted = self.cluster.restart_tracker()
            except Exception as exc:  # noqa: BLE001 (recorded; the held sessions keep serving)
                detail = " ".join(str(exc).split())[:200]
                self.events.append(
                    TrackerEvent("not restarted", port, (time.perf_counter() - noticed) * 1000.0, detail)
                )
                return
            if restarted:
                self.events.append(TrackerEvent("restarted", port, (time.perf_counter() - noticed) * 1000.0))

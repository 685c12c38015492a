"""An inventory brought to life: local boards started, remote ones found on the tracker.

``with Fleet(inventory) as fleet:`` starts a local tracker and local RPC servers where the
inventory asks for them, then waits a bounded time for every other declared board to be
registered with the tracker. A board that never shows up is an error naming the missing
keys and the command to check the tracker; nothing waits forever.

While the boards run, a local tracker that dies is restarted (:mod:`tracker_keeper`), and
:meth:`Fleet.reacquire` gets new sessions on failed boards whose servers registered again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..framework.errors import SplitnetError
from . import frame_channel
from .board_session import BoardSession
from .inventory import Board, Inventory
from .local_cluster import LocalCluster
from .tracker_keeper import TrackerKeeper
from .tracker_requests import REQUEST_TIMEOUT_S, acquire, query_hint, request_session, tracker_summary

REACQUIRE_REQUEST_S = 5.0  # a session request on a server the tracker lists as free

DEFAULT_WAIT_S = 10.0
_SERVER_PREFIX = "server:"


@dataclass(frozen=True)
class KeyStatus:
    key: str
    servers: tuple[tuple[str, int], ...]  # addresses registered under the key
    free: int
    pending: int


@dataclass(frozen=True)
class BoardStatus:
    board: Board
    registered: bool
    address: str  # host:port when known, else ""
    key_free: int  # free servers under the board's key (capped at those registered)


class Fleet:
    def __init__(self, inventory: Inventory, wait_s: float = DEFAULT_WAIT_S) -> None:
        frame_channel.mode()  # a bad SPLITNET_CHANNEL fails before any board starts, not on a board's first frame
        self.inventory = inventory
        self.wait_s = wait_s
        tracker = inventory.tracker
        self.host, self.port = tracker.host, tracker.port
        self.cluster: LocalCluster | None = None
        self.keeper: TrackerKeeper | None = None
        self.started = False
        if tracker.local or inventory.local_boards:
            self.cluster = LocalCluster(
                inventory.local_boards, host=tracker.host, tracker_port=tracker.port, start_tracker=tracker.local
            )

    def __enter__(self) -> Fleet:
        if not self.started:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, require_all: bool = True) -> None:
        """Start local boards and wait for the rest; ``require_all=False`` waits without failing."""
        try:
            if not self.inventory.tracker.local:
                self._check_tracker()
            if self.cluster is not None:
                self.cluster.start()
                self.port = self.cluster.tracker_port
                if self.inventory.tracker.local:
                    self.keeper = TrackerKeeper(self.cluster).start()
            self.started = True
            self.wait_for_boards(require_all)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.keeper is not None:
            self.keeper.stop()
        if self.cluster is not None:
            self.cluster.stop()
        self.started = False

    @property
    def tracker_events(self) -> tuple[dict, ...]:
        """Each time the local tracker died and was restarted."""
        return tuple(e.as_dict() for e in self.keeper.events) if self.keeper is not None else ()

    @property
    def tracker_address(self) -> str:
        return f"{self.host}:{self.port}"

    def _check_tracker(self) -> None:
        try:
            tracker_summary(self.host, self.port)
        except SplitnetError as exc:
            raise SplitnetError(
                exc.message,
                f"start it (python -m tvm.exec.rpc_tracker --host {self.host} --port {self.port}) or fix tracker in "
                f"{self.inventory.source}",
            ) from None

    def key_status(self) -> dict[str, KeyStatus]:
        """What the tracker knows, per key."""
        summary = tracker_summary(self.host, self.port)
        servers: dict[str, list[tuple[str, int]]] = {}
        for info in summary.get("server_info", []):
            key = str(info["key"]).removeprefix(_SERVER_PREFIX)
            servers.setdefault(key, []).append((info["addr"][0], int(info["addr"][1])))
        queue = summary.get("queue_info", {})
        keys = set(servers) | set(queue)
        return {
            k: KeyStatus(
                key=k,
                servers=tuple(servers.get(k, ())),
                free=int(queue.get(k, {}).get("free", 0)),
                pending=int(queue.get(k, {}).get("pending", 0)),
            )
            for k in keys
        }

    def board_status(self) -> list[BoardStatus]:
        """Per declared board: registered or not (remote boards are counted per key)."""
        keys = self.key_status()
        local = self.cluster.address_of() if self.cluster else {}
        local_by_name = {name: addr for addr, name in local.items()}
        statuses = []
        remote_left = {
            k: [a for a in status.servers if a not in local] for k, status in keys.items()
        }  # remote servers not yet matched to a declared board
        for board in self.inventory.boards:
            status = keys.get(board.key)
            # TVM's free count can include stale re-registrations of one server: cap it.
            free = min(status.free, len(status.servers)) if status else 0
            if board.local:
                addr = local_by_name.get(board.name)
                ok = status is not None and addr in status.servers
            else:
                pool = remote_left.get(board.key, [])
                addr = pool.pop(0) if pool else None
                ok = addr is not None
            text = f"{addr[0]}:{addr[1]}" if ok and addr else ""
            statuses.append(BoardStatus(board=board, registered=ok, address=text, key_free=free))
        return statuses

    def missing(self) -> list[BoardStatus]:
        return [s for s in self.board_status() if not s.registered]

    def wait_for_boards(self, require_all: bool = True) -> None:
        """Until every declared board is registered, or ``wait_s`` passes (then an error)."""
        deadline = time.monotonic() + self.wait_s
        while True:
            missing = self.missing()
            if not missing:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        if not require_all:
            return
        keys = {}
        for status in missing:
            keys.setdefault(status.board.key, []).append(status.board.name)
        what = "; ".join(f"key {k!r}: {', '.join(names)}" for k, names in keys.items())
        raise SplitnetError(
            f"boards not registered with the tracker at {self.tracker_address} after {self.wait_s:.0f} s ({what})",
            f"start python -m tvm.exec.rpc_server --tracker {self.tracker_address} --key KEY on each board; "
            f"{query_hint(self.host, self.port)}",
        )

    def tracker_fix(self) -> str:
        if self.inventory.tracker.local:
            return (
                "splitrun restarts its own tracker; if it did not, run again "
                f"({query_hint(self.host, self.port)} shows what is registered)"
            )
        return (
            f"restart it: python -m tvm.exec.rpc_tracker --host {self.host} --port {self.port}; "
            "the boards' servers register with it again by themselves"
        )

    def reacquire(self, names: list[str], timeout: float = REACQUIRE_REQUEST_S) -> dict[str, BoardSession]:
        """New sessions on those of the failed boards ``names`` whose servers are registered again.

        Only servers the tracker lists as free are asked for (the boards a run holds are not
        free), and each session is matched to its board by address, as :meth:`sessions`
        does; a remote board takes any new server under its key. Raises a one-line error
        when the tracker is gone (``names`` empty: only that is checked).
        """
        try:
            keys = self.key_status()
        except SplitnetError as exc:
            raise SplitnetError(
                f"the RPC tracker at {self.tracker_address} is gone ({exc.message})", self.tracker_fix()
            ) from None
        local = self.cluster.address_of() if self.cluster else {}
        wanted = [self.inventory.board(name) for name in names]
        found: dict[str, BoardSession] = {}
        for key in dict.fromkeys(b.key for b in wanted):
            want = {b.name: b for b in wanted if b.key == key}
            status = keys.get(key)
            for _ in range(min(status.free, len(want)) if status else 0):
                address, session = request_session(self.host, self.port, key, min(timeout, REQUEST_TIMEOUT_S))
                name = local.get(address)
                if name is None:  # a remote server: any wanted remote board of the key
                    name = next((n for n, b in want.items() if not b.local and n not in found), None)
                if name in want and name not in found:
                    found[name] = BoardSession(board=want[name], address=address, session=session)
        return found

    def sessions(self, boards: list[Board] | None = None) -> dict[str, BoardSession]:
        """Held sessions on ``boards`` (default: every board), by board name."""
        wanted = list(self.inventory.boards if boards is None else boards)
        local = self.cluster.address_of() if self.cluster else {}
        return acquire(self.host, self.port, wanted, local)

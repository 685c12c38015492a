"""Chaos built in: kill or stall a local board at a given frame, to test recovery for real.

``--chaos kill:1@20`` kills board 1 (SIGKILL to its RPC server and workers) just before
frame 20; ``--chaos stall:0@10:2s`` stops board 0 (SIGSTOP) before frame 10 and resumes it
2 s later. Boards are named by their index in the inventory or by name; frames count every
frame the run sends, from 0 (the verify pass first, then warm-up, then timed frames). Only
boards splitrun started itself can be killed or stalled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..framework.errors import SplitnetError
from .inventory import Inventory
from .local_cluster import LocalCluster

_SPEC = re.compile(r"^(?P<action>kill|stall):(?P<board>[\w.-]+)@(?P<frame>\d+)(?::(?P<seconds>\d+(?:\.\d+)?)s)?$")
EXAMPLES = "kill:1@20 or stall:0@10:2s"


@dataclass(frozen=True)
class ChaosEvent:
    action: str  # "kill" or "stall"
    board: str  # as written: an index or a name
    frame: int
    seconds: float = 0.0

    def describe(self, name: str) -> str:
        return f"{self.action} {name} at frame {self.frame}" + (f" for {self.seconds:g} s" if self.seconds else "")


def parse_chaos(text: str) -> ChaosEvent:
    match = _SPEC.match(text.strip())
    if not match:
        raise SplitnetError(f"cannot read --chaos {text!r}", f"write ACTION:BOARD@FRAME[:SECONDSs], e.g. {EXAMPLES}")
    action, seconds = match["action"], match["seconds"]
    if action == "stall" and seconds is None:
        raise SplitnetError(f"--chaos {text!r} does not say how long to stall", "add the duration, e.g. stall:0@10:2s")
    if action == "kill" and seconds is not None:
        raise SplitnetError(f"--chaos {text!r}: a kill has no duration", "e.g. kill:1@20")
    return ChaosEvent(action, match["board"], int(match["frame"]), float(seconds or 0.0))


class Chaos:
    """Applies chaos events to the local boards of a cluster, frame by frame."""

    def __init__(self, events: list[ChaosEvent], inventory: Inventory, cluster: LocalCluster | None) -> None:
        self.events = events
        self.cluster = cluster
        self.names: dict[ChaosEvent, str] = {}
        for event in events:
            name = self._resolve(event.board, inventory)
            if not inventory.board(name).local or cluster is None:
                raise SplitnetError(
                    f"--chaos {event.action}:{event.board}: board {name} is not a local board splitrun started",
                    "chaos can only kill or stall local boards",
                )
            self.names[event] = name
        self.applied: list[str] = []

    @staticmethod
    def _resolve(ref: str, inventory: Inventory) -> str:
        if ref.isdigit():
            count = len(inventory.boards)
            if int(ref) >= count:
                raise SplitnetError(
                    f"--chaos board {ref}: the inventory has {count} boards (0..{count - 1})",
                    f"use an index or one of: {', '.join(inventory.names)}",
                )
            return inventory.boards[int(ref)].name
        if ref not in inventory.names:
            raise SplitnetError(
                f"--chaos board {ref!r} is not in the inventory", f"use one of: {', '.join(inventory.names)}"
            )
        return ref

    def before_frame(self, frame: int) -> None:
        for event in self.events:
            if event.frame != frame:
                continue
            name = self.names[event]
            if event.action == "kill":
                self.cluster.kill_board(name)
            else:
                self.cluster.pause_board(name, event.seconds)
            self.applied.append(event.describe(name))

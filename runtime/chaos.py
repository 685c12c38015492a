"""Chaos built in: kill, stall, restart or corrupt a local board (or kill the tracker) at a frame.

``--chaos kill:1@20`` kills board 1 (SIGKILL to its RPC server and workers) just before
frame 20; ``--chaos stall:0@10:2s`` stops board 0 (SIGSTOP) before frame 10 and resumes it
2 s later; ``--chaos restart:1@20:2s`` kills board 1 and starts its server again 2 s later,
under the same key (a new address, so it comes back through the tracker); ``--chaos
corrupt:1@20`` makes board 1 answer wrongly from frame 20 on: its branches run another
branch's library (a real module on the real board: a wrong shape when the widths differ,
wrong values when not) and the coded head's blocks on it get NaN weights; ``--chaos
kill:tracker@30`` kills the local tracker. ``--chaos random:SEED`` draws kills and stalls
from the seed (:mod:`chaos_random`). Boards are named by their index in the inventory or by
name; frames count every frame the run sends, from 0 (the verify pass first, then warm-up,
then timed frames). Only boards and a tracker that splitrun started itself can be hit.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from ..framework.errors import SplitnetError
from .inventory import Inventory
from .local_cluster import LocalCluster

_SPEC = re.compile(
    r"^(?P<action>kill|stall|restart|corrupt):(?P<board>[\w.-]+)@(?P<frame>\d+)(?::(?P<seconds>\d+(?:\.\d+)?)s)?$"
)
_RANDOM = re.compile(r"^random:(?P<seed>\d+)$")
EXAMPLES = "kill:1@20, stall:0@10:2s, restart:1@20:2s, corrupt:1@20, kill:tracker@30 or random:7"
TRACKER = "tracker"
TIMED = {"stall", "restart"}  # the actions that take a duration


@dataclass(frozen=True)
class ChaosEvent:
    action: str  # "kill", "stall", "restart" or "corrupt"
    board: str  # as written: an index, a name, or "tracker"
    frame: int
    seconds: float = 0.0

    def describe(self, name: str) -> str:
        return f"{self.action} {name} at frame {self.frame}" + (f" for {self.seconds:g} s" if self.seconds else "")


@dataclass(frozen=True)
class RandomChaos:
    """Kills and stalls drawn from ``seed`` (see :mod:`chaos_random`)."""

    seed: int


def parse_chaos(text: str) -> ChaosEvent | RandomChaos:
    random_match = _RANDOM.match(text.strip())
    if random_match:
        return RandomChaos(int(random_match["seed"]))
    match = _SPEC.match(text.strip())
    if not match:
        raise SplitnetError(
            f"cannot read --chaos {text!r}", f"write ACTION:BOARD@FRAME[:SECONDSs] or random:SEED, e.g. {EXAMPLES}"
        )
    action, seconds, board = match["action"], match["seconds"], match["board"]
    if action in TIMED and seconds is None:
        raise SplitnetError(
            f"--chaos {text!r} does not say how long to {action}", f"add the duration, e.g. {action}:0@10:2s"
        )
    if action not in TIMED and seconds is not None:
        raise SplitnetError(f"--chaos {text!r}: a {action} has no duration", f"e.g. {action}:1@20")
    if board == TRACKER and action != "kill":
        raise SplitnetError(f"--chaos {text!r}: the tracker can only be killed", "e.g. kill:tracker@30")
    return ChaosEvent(action, board, int(match["frame"]), float(seconds or 0.0))


class Chaos:
    """Applies chaos events to the local boards of a cluster, frame by frame."""

    def __init__(
        self, events: list[ChaosEvent | RandomChaos], inventory: Inventory, cluster: LocalCluster | None
    ) -> None:
        from .chaos_random import RandomDraw  # it builds on this module

        self.cluster = cluster
        self.events = [e for e in events if isinstance(e, ChaosEvent)]
        self.names: dict[ChaosEvent, str] = {}
        for event in self.events:
            self.names[event] = self._check(event.action, event.board, inventory)
        self.draws = [RandomDraw(e.seed, inventory, self) for e in events if isinstance(e, RandomChaos)]
        if self.draws and (self.cluster is None or not inventory.local_boards):
            raise SplitnetError(
                "--chaos random: the inventory has no local boards splitrun started", "chaos can only hit local boards"
            )
        self.applied: list[str] = []
        self._lock = threading.Lock()

    def _check(self, action: str, ref: str, inventory: Inventory) -> str:
        if ref == TRACKER:
            if self.cluster is not None and self.cluster.start_tracker:
                return TRACKER
            raise SplitnetError(
                f"--chaos kill:{TRACKER}: the tracker is not one splitrun started",
                "chaos can only kill a local tracker (tracker: {local: true} in the inventory)",
            )
        name = self._resolve(ref, inventory)
        if not inventory.board(name).local or self.cluster is None:
            raise SplitnetError(
                f"--chaos {action}:{ref}: board {name} is not a local board splitrun started",
                "chaos can only hit local boards",
            )
        return name

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

    def before_frame(self, frame: int, runner=None) -> None:
        """Apply what is due before ``frame`` (``runner``: the frames' runner, for corrupt and random)."""
        with self._lock:
            for event in self.events:
                if event.frame == frame:
                    self.apply(event.action, self.names[event], event.seconds, runner, event.describe)
            for draw in self.draws:
                draw.before_frame(frame, runner)

    def apply(self, action: str, name: str, seconds: float, runner, describe) -> None:
        if action == "kill" and name == TRACKER:
            self.cluster.kill_tracker()
        elif action == "kill":
            self.cluster.kill_board(name)
        elif action == "stall":
            self.cluster.pause_board(name, seconds)
        elif action == "restart":
            self.cluster.kill_board(name)
            timer = threading.Timer(seconds, self.cluster.restart_board, args=(name,))
            timer.daemon = True
            timer.start()
        else:
            self.applied.append(f"{describe(name)} ({corrupt(runner, name)})")
            return
        self.applied.append(describe(name))


def corrupt(runner, board: str) -> str:
    """Make ``board`` answer wrongly, for real: its branch copies are swapped for real modules of
    another branch loaded on it, and the coded head's blocks on it get NaN weights."""
    if runner is None:
        return "nothing to corrupt"
    swapped = 0
    with runner._lock:
        branches = runner.branches
    for i, replicas in enumerate(branches):
        others = [r[0].artifact for k, r in enumerate(branches) if k != i and r]
        for module in replicas:
            if module.board != board or not others:
                continue
            wrong = module.owner.load(others[0])  # a real library on the real board, the wrong one
            with runner._lock:
                runner.branches[i] = [wrong if m is module else m for m in runner.branches[i]]
            swapped += 1
    poisoned = runner.coded_head.poison(board) if runner.coded_head is not None else 0
    return f"{swapped} branch copies run another branch's library, {poisoned} head blocks hold NaN weights"

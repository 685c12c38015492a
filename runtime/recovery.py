"""Wiring a recovery policy to real boards: replicas, the coded head, and re-placement.

The executor (:mod:`executor`) knows policies but not boards; this module gives it what a
policy asks for (:mod:`policies`): more copies of each branch (``copies``: the next board in
inventory order holds the second), the coded head's blocks (``coded_head``), and for every
policy that ``replaces`` a lost branch a ``recover`` function that moves it to a spare
board, or else to the least loaded survivor, and uploads it there.

Nothing here compiles: ``build(part, board)`` is handed in by the orchestration (the deploy
path, :mod:`splitnet.strategies.deploy`), which builds every part for its board with the
tuning database that matches, so a recovered branch is built exactly as the first one was.
"""

from __future__ import annotations

from collections.abc import Callable

from ..framework.artifact import CompiledArtifact
from ..framework.errors import SplitnetError
from ..framework.split_model import Part, SplitModel
from .board_session import BoardSession, RemoteModule
from .coded import CodedHead, KernelFor
from .executor import DistributedSplit
from .inventory import Board, Inventory
from .placement import Placement
from .policies import get_policy

Build = Callable[[Part, Board], CompiledArtifact]  # a part built for a board (a cache hit when built before)
Load = Callable[..., RemoteModule]  # (session, artifact, bound arrays=()) -> module on the board


def _next_boards(primary: str, names: tuple[str, ...], copies: int) -> list[str]:
    """``primary`` and the boards after it in inventory order (wrapping): a branch's replicas' homes."""
    i = names.index(primary)
    return [names[(i + k) % len(names)] for k in range(copies)]


def build_runner(
    policy: str,
    split: SplitModel,
    placement: Placement,
    inventory: Inventory,
    sessions: dict[str, BoardSession],
    artifacts: list[CompiledArtifact],
    head: Callable,
    load: Load,
    build: Build,
    kernel_for: KernelFor | None = None,
) -> DistributedSplit:
    """A :class:`DistributedSplit` whose modules are uploaded.

    ``artifacts[i]`` is branch ``i`` built for its placed board; ``load`` uploads one artifact;
    ``build`` builds a branch for another board (replicas, recovery); ``kernel_for`` builds
    the coded head's matvec kernel for a board (needed by a ``coded_head`` policy only).
    """
    recovery = get_policy(policy)
    names = inventory.names
    if recovery.copies > len(names):
        count = {2: "two", 3: "three"}.get(recovery.copies, str(recovery.copies))
        raise SplitnetError(f"{policy} needs at least {count} boards", "add a board, or use --policy spare")
    branches: list[list[RemoteModule]] = []
    for i, artifact in enumerate(artifacts):
        homes = _next_boards(placement.branches[i], names, recovery.copies)
        replicas = [load(sessions[homes[0]], artifact)]
        for other in homes[1:]:
            replicas.append(load(sessions[other], build(split.branches[i], inventory.board(other))))
        branches.append(replicas)
    coded_head = None
    if recovery.coded_head:
        if kernel_for is None:
            raise ValueError(f"policy {policy} runs a coded head: pass kernel_for")
        coded_head = CodedHead(split.head, [sessions[name] for name in names], kernel_for)
    runner = DistributedSplit(
        branches=branches,
        head=head,
        policy=policy,
        coded_head=coded_head,
        feature_shapes=[(1, size) for size in split.plan.head.feature_sizes],
    )
    if recovery.replaces:
        runner.recover = _recoverer(runner, split, placement, inventory, sessions, load, build)
    return runner


def _recoverer(runner, split, placement, inventory, sessions, load, build):
    def recover(branch: int, dead: set[str]) -> RemoteModule:
        alive = [b for b in inventory.boards if b.name not in dead]
        if not alive:
            raise SplitnetError("no board is left to take it", "restart the boards (splitrun boards shows them)")
        in_use = [m.board for m in runner.modules() if m is not None]
        spares = [b for b in alive if b.name in placement.spares and b.name not in in_use]
        target = spares[0] if spares else min(alive, key=lambda b: (in_use.count(b.name) / b.relative_speed, b.name))
        return load(sessions[target.name], build(split.branches[branch], target))

    return recover

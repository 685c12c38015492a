"""Wiring a recovery policy to real boards: replicas, the coded head, and re-placement.

The executor (:mod:`executor`) knows policies but not boards; this module gives it what a
policy needs from the inventory: a second board per branch for ``replicate``, the coded
head's blocks for ``coded``, and for every re-placing policy a ``recover`` function that
moves a lost branch to a spare board, or else to the least loaded survivor, compiling the
branch for that board's target (a cache hit when the target is the same) and uploading it.
"""

from __future__ import annotations

from collections.abc import Callable

from splitnet.framework.compile import CompiledArtifact
from splitnet.framework.errors import SplitnetError
from splitnet.framework.tuned_build import compile_tuned
from splitnet.partitioners.split_model import SplitModel
from splitnet.runtime.board_session import BoardSession, RemoteModule
from splitnet.runtime.coded import CodedHead, compile_matvec
from splitnet.runtime.executor import REPLACING, DistributedSplit
from splitnet.runtime.inventory import Board, Inventory
from splitnet.runtime.placement import Placement


def _secondary(primary: str, names: tuple[str, ...]) -> str:
    """The next board after ``primary`` in inventory order (wrapping): a replica's home."""
    i = names.index(primary)
    return names[(i + 1) % len(names)]


def build_runner(
    policy: str,
    split: SplitModel,
    placement: Placement,
    inventory: Inventory,
    sessions: dict[str, BoardSession],
    artifacts: list[CompiledArtifact],
    head: Callable,
    load: Callable[[BoardSession, CompiledArtifact], RemoteModule],
) -> DistributedSplit:
    """A :class:`DistributedSplit` whose modules are uploaded; ``load`` uploads one artifact."""
    names = inventory.names
    branches: list[list[RemoteModule]] = []
    for i, artifact in enumerate(artifacts):
        replicas = [load(sessions[placement.branches[i]], artifact)]
        if policy == "replicate":
            if len(names) < 2:
                raise SplitnetError("replicate needs at least two boards", "add a board, or use --policy spare")
            other = inventory.board(_secondary(placement.branches[i], names))
            replicas.append(load(sessions[other.name], _artifact(split, i, other)))
        branches.append(replicas)
    coded_head = None
    if policy == "coded":
        coded_head = CodedHead(
            split.head,
            [sessions[name] for name in names],
            lambda board: compile_matvec(board.build_target, board.build_format),
        )
    runner = DistributedSplit(
        branches=branches,
        head=head,
        policy=policy,
        coded_head=coded_head,
        feature_shapes=[(1, size) for size in split.plan.head.feature_sizes],
    )
    if policy in REPLACING:
        runner.recover = _recoverer(runner, split, placement, inventory, sessions, load)
    return runner


def _artifact(split: SplitModel, i: int, board: Board) -> CompiledArtifact:
    """Branch ``i`` built for ``board`` (from the compile cache when the target was built already)."""
    return compile_tuned(split, split.branches[i], board.build_target, board.build_format)[0]


def _recoverer(runner, split, placement, inventory, sessions, load):
    def recover(branch: int, dead: set[str]) -> RemoteModule:
        alive = [b for b in inventory.boards if b.name not in dead]
        if not alive:
            raise SplitnetError("no board is left to take it", "restart the boards (splitrun boards shows them)")
        in_use = [m.board for m in runner.modules() if m is not None]
        spares = [b for b in alive if b.name in placement.spares and b.name not in in_use]
        target = spares[0] if spares else min(alive, key=lambda b: (in_use.count(b.name) / b.relative_speed, b.name))
        return load(sessions[target.name], _artifact(split, branch, target))

    return recover

"""Wiring a recovery policy to real boards: replicas, the coded head, re-placement, rejoining.

The executor (:mod:`executor`) knows policies but not boards; this module gives it what a
policy asks for (:mod:`policies`): more copies of each branch (``copies``: the next board in
inventory order holds the second), the coded head's blocks (``coded_head``) and a function
that re-encodes them over other boards, and for every policy that ``replaces`` a lost branch
a ``recover`` function that moves it (or a new copy of it) to a free board (a spare, or a
board that came back), else to the least loaded survivor, and uploads it there. A
:class:`~.rejoin.Rejoiner` probes the boards that fail, so that they can come back.

Nothing here compiles: ``build(part, board)`` is handed in by the orchestration (the deploy
path, :mod:`splitnet.strategies.deploy`), which builds every part for its board with the
tuning database that matches, so a recovered branch is built exactly as the first one was.
"""

from __future__ import annotations

from collections.abc import Callable

from ..framework.artifact import CompiledArtifact
from ..framework.errors import SplitnetError
from ..framework.split_model import Part, SplitModel
from .answers import Audit
from .board_session import BoardSession, RemoteModule
from .coded import CodedHead, KernelFor
from .executor import DistributedSplit, PlacementFailed
from .inventory import Board, Inventory
from .placement import Placement
from .policies import get_policy
from .rejoin import Reacquire, Rejoiner

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
    audit: Audit | None = None,
    reacquire: Reacquire | None = None,
) -> DistributedSplit:
    """A :class:`DistributedSplit` whose modules are uploaded.

    ``artifacts[i]`` is branch ``i`` built for its placed board; ``load`` uploads one artifact;
    ``build`` builds a branch for another board (replicas, recovery); ``kernel_for`` builds
    the coded head's matvec kernel for a board (needed by a ``coded_head`` policy only).
    ``audit`` checks every K-th frame against the in-process split; ``reacquire`` gets new
    sessions on failed boards whose servers came back (without it, only boards whose old
    session answers again come back).
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
    coded_head = code_head = None
    if recovery.coded_head:
        if kernel_for is None:
            raise ValueError(f"policy {policy} runs a coded head: pass kernel_for")

        def code_head(boards: list[str]) -> CodedHead:
            return CodedHead(split.head, [sessions[name] for name in boards], kernel_for, keep_blocks=audit is not None)

        coded_head = code_head(list(names))
    runner = DistributedSplit(
        branches=branches,
        head=head,
        policy=policy,
        coded_head=coded_head,
        feature_shapes=[(1, size) for size in split.plan.head.feature_sizes],
        code_head=code_head,
        head_boards=names,
        audit=audit,
    )
    if recovery.replaces:
        runner.recover = _recoverer(runner, split, placement, inventory, sessions, load, build, reacquire)
    runner.rejoiner = Rejoiner(runner, sessions, reacquire).start()
    return runner


def _recoverer(runner, split, placement, inventory, sessions, load, build, reacquire):
    def recover(branch: int, avoid: set[str]) -> RemoteModule:
        """Branch ``branch`` uploaded to a board not in ``avoid``: a free one first (spares in
        placement order, then boards that came back), else the least loaded by speed."""
        alive = [b for b in inventory.boards if b.name not in avoid and b.name not in runner.dead]
        if not alive:
            raise SplitnetError("no board is left to take it", _restart_hint(reacquire, avoid, runner))
        in_use = [m.board for replicas in runner.branches for m in replicas if m.board not in runner.dead]
        free = sorted(
            (b for b in alive if b.name not in in_use), key=lambda b: (b.name not in placement.spares, b.name)
        )
        target = free[0] if free else min(alive, key=lambda b: (in_use.count(b.name) / b.relative_speed, b.name))
        artifact = build(split.branches[branch], target)  # a build error is no board's fault: it ends the run
        try:
            return load(sessions[target.name], artifact)
        except Exception as exc:  # noqa: BLE001 (the board failed taking it: named, so it can be failed too)
            raise PlacementFailed(target.name, " ".join(str(exc).split())[:160] or type(exc).__name__) from None

    return recover


def _restart_hint(reacquire: Reacquire | None, avoid: set[str], runner: DistributedSplit) -> str:
    """How to get a board back; when the tracker is gone too, that first (a new session needs it)."""
    fix = "restart the boards (splitrun boards shows them)"
    if reacquire is None:
        return fix
    try:
        reacquire([])  # asks the tracker only
    except SplitnetError as exc:  # the tracker is gone: say so, with the command that restarts it
        return f"{exc.message}: {exc.fix}"
    return fix

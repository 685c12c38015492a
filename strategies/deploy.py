"""The deploy path: place -> build with the matching tuning database -> upload -> runner.

Every way splitnet puts a split model on boards goes through here (``splitrun run`` and
``compare``'s branch strategy, ``splitrun accuracy``'s board pass, the benchmarks and the
Python API), so they all place the same way, build with the same tuning databases and
recover the same way:

1. :func:`place_branches`: which board runs which branch and how wide each is (pure analysis,
   or on speeds measured by :func:`probe_boards` for ``profile``);
2. the caller partitions the model with the placement's shares (and swaps in fine-tuned
   weights), then :func:`deploy` checks that the weights fit the boards,
3. builds every branch for its board and the head for the host (:class:`TunedBuilder`),
4. uploads them under a deadline, and hands back a :class:`Deployment` whose ``runner``
   answers frames under the recovery policy; the runtime gets the same builder for the
   branches it re-places, and the matvec kernel builder for a coded head.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rich.progress import Progress

from ..framework.artifact import CompiledArtifact, LocalModule
from ..framework.cost import BranchCost
from ..framework.kernels import compile_matvec, compile_probe
from ..framework.progress import Stopwatch
from ..framework.split_model import SplitModel
from ..runtime.answers import Audit
from ..runtime.board_session import BoardSession, RemoteModule
from ..runtime.executor import DistributedSplit
from ..runtime.guard import FIRST_CALL_TIMEOUT_S, guarded
from ..runtime.inventory import Board, Inventory
from ..runtime.placement import Placement, fits, needs_probe, place
from ..runtime.policies import DEFAULT_POLICY, get_policy
from ..runtime.probe import ProbeResult, probe, relative_speeds
from ..runtime.recovery import build_runner
from ..runtime.rejoin import Reacquire
from .build import TunedBuilder
from .request import SplitRequest


@dataclass
class Deployment:
    """A split on boards: where each branch went, what was built, and the runner that answers frames."""

    split: SplitModel
    placement: Placement
    runner: DistributedSplit
    artifacts: list[CompiledArtifact]  # branch i, built for its placed board
    head: CompiledArtifact  # built for the host
    tuning: tuple[str, ...]  # which tuning database each build used, or why none
    sessions: dict[str, BoardSession]

    @property
    def cache_hits(self) -> int:
        return sum(a.cached for a in [*self.artifacts, self.head])

    @property
    def compiled_parts(self) -> int:
        return len(self.artifacts) + 1

    def modules(self) -> list[RemoteModule | None]:
        return self.runner.modules()

    def close(self) -> None:
        """Stop probing and repairing, then give every session back, except a dead board's:
        closing talks to the board."""
        self.runner.shutdown()
        close_sessions(self.sessions, self.runner.dead)


def close_sessions(sessions: dict[str, BoardSession], dead: set[str] = frozenset()) -> None:
    for name, board_session in sessions.items():
        if name not in dead:
            board_session.close()


def matvec_for(board: Board) -> CompiledArtifact:
    """The coded head's matvec kernel built for ``board``."""
    return compile_matvec(board.build_target, board.build_format)


def probe_boards(sessions: Mapping[str, BoardSession], progress: Progress | None = None) -> list[ProbeResult]:
    """Each board's measured speed: the probe convolution built for it, uploaded and timed there."""
    task = progress.add_task("probe boards", total=len(sessions)) if progress is not None else None
    results = []
    for board_session in sessions.values():
        board = board_session.board
        results.append(probe(board_session, compile_probe(board.build_target, board.build_format)))
        if task is not None:
            progress.advance(task)
    return results


def place_branches(
    request: SplitRequest,
    inventory: Inventory,
    cost: BranchCost,
    sessions: Mapping[str, BoardSession] | None = None,
    progress: Progress | None = None,
) -> tuple[Placement | None, list[ProbeResult]]:
    """The placement of ``request`` on ``inventory``, and the probes it measured (``profile`` only).

    Pure analysis, except that ``profile`` probes the boards: without ``sessions`` it then
    returns None, so a caller places once before the boards start (a bad placement fails
    early) and, for ``profile``, again once they run.
    """
    strategy = request.placement_for(inventory)
    if not needs_probe(strategy):
        return place(strategy, request.n, inventory, widths=request.widths, cost=cost), []
    if sessions is None:
        return None, []
    probes = probe_boards(sessions, progress)
    return place(strategy, request.n, inventory, speeds=relative_speeds(probes), cost=cost), probes


def deploy_split(
    split: SplitModel,
    inventory: Inventory,
    sessions: dict[str, BoardSession],
    policy: str = DEFAULT_POLICY,
    progress: Progress | None = None,
    reacquire: Reacquire | None = None,
) -> Deployment:
    """Deploy a split whose widths are fixed already (a fine-tuned one): round-robin on its own shares."""
    placement = place("round-robin", split.plan.n, inventory, widths=split.plan.shares)
    return deploy(split, placement, inventory, sessions, policy, progress, reacquire=reacquire)


def deploy(
    split: SplitModel,
    placement: Placement,
    inventory: Inventory,
    sessions: dict[str, BoardSession],
    policy: str,
    progress: Progress | None = None,
    watch: Stopwatch | None = None,
    audit: int = 0,
    reacquire: Reacquire | None = None,
) -> Deployment:
    """Check the weights fit, build every part (tuned when a database matches), upload, wire the runner.

    ``watch`` times the ``compile`` and ``upload`` stages for the caller's report. ``audit``
    K > 0 checks every K-th frame against the split run in-process (MXNet) while the run
    goes on; ``reacquire`` (:meth:`~splitnet.runtime.fleet.Fleet.reacquire`) lets failed
    boards whose servers came back rejoin through the tracker.
    """
    fits(placement, inventory, tuple(b.params for b in split.plan.branches))
    recovery = get_policy(policy)
    watch = watch or Stopwatch()
    builder = TunedBuilder(split)
    with watch.stage("compile"):
        compile_task = progress.add_task("export + compile", total=len(split.branches) + 1) if progress else None
        artifacts = []
        for i, branch in enumerate(split.branches):
            artifacts.append(builder(branch, inventory.board(placement.branches[i])))
            if progress:
                progress.advance(compile_task)
        head = builder.head()
        tuning = builder.notes  # the first builds' (recovery builds later go through the same builder)
        head_module = LocalModule(head)
        if progress:
            progress.advance(compile_task)
    uploads = len(artifacts) * recovery.copies + (len(sessions) if recovery.coded_head else 0)
    upload_task = progress.add_task("upload", total=uploads) if progress else None

    def load(board_session: BoardSession, artifact: CompiledArtifact, bound=()) -> RemoteModule:
        what = f"uploading {artifact.part} to {board_session.board.name}"
        module = guarded(board_session.load, artifact, bound, timeout=FIRST_CALL_TIMEOUT_S, what=what)
        if progress:
            progress.advance(upload_task)
        return module

    with watch.stage("upload"):
        runner = build_runner(
            policy,
            split,
            placement,
            inventory,
            sessions,
            artifacts,
            head_module,
            load,
            builder,
            matvec_for,
            audit=Audit(audit, split.features) if audit > 0 else None,
            reacquire=reacquire,
        )
    return Deployment(split, placement, runner, artifacts, head, tuning, sessions)

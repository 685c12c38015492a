"""The end-to-end job: reference -> plan -> split model -> compile -> boards -> run -> checks.

Each stage hands the next a typed object (see ../shared/DESIGN.md); this module only wires
them together, times them and shows progress. Boards started here are always stopped.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import mxnet as mx
import numpy as np
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from splitnet.framework.compile import CompiledArtifact, LocalModule
from splitnet.framework.console import console
from splitnet.framework.images import Frame, load_frames
from splitnet.framework.report import BranchReport, LatencyStats, RunReport
from splitnet.framework.targets import host_target
from splitnet.framework.tuned_build import compile_tuned
from splitnet.framework.verify import FAIL, FIDELITY_ATOL, INFO, PASS, Check, agreement, fidelity, frames_answered
from splitnet.partitioners import DEFAULT_MULTIPLE, SplitModel, graph_from_block, partition, partitioner_for
from splitnet.partitioners.channels import normalise_shares
from splitnet.partitioners.cost import branch_cost_model
from splitnet.runtime import BoardSession, DistributedSplit, Inventory
from splitnet.runtime.chaos import Chaos, ChaosEvent
from splitnet.runtime.fleet import DEFAULT_WAIT_S, Fleet
from splitnet.runtime.guard import FIRST_CALL_TIMEOUT_S, derived_timeout, guarded
from splitnet.runtime.inventory_file import resolve_inventory
from splitnet.runtime.placement import Placement, check_strategy, needs_probe, place, validated
from splitnet.runtime.probe import ProbeResult, probe, relative_speeds
from splitnet.runtime.recovery import build_runner
from splitnet.training.store import fine_tuned
from splitnet.zoo import get_model_spec, load_reference

DEFAULT_POLICY = "spare"


@dataclass(frozen=True)
class RunOptions:
    model: str = "resnet18_v1"
    branches: int = 2
    widths: tuple[float, ...] | None = None
    multiple: int = DEFAULT_MULTIPLE
    images: Path | None = None
    runs: int = 20
    warmup: int = 3
    seed: int = 0
    compute_repeat: int = 5
    inventory: Path | str | None = None  # None: the built-in two-PYNQ inventory
    placement: str | None = None  # None: the inventory's choice, else round-robin
    wait_s: float = DEFAULT_WAIT_S
    policy: str | None = None  # None: the inventory's choice, else spare
    timeout_s: float | None = None  # None: derived from the calls of the verify pass
    chaos: tuple[ChaosEvent, ...] = ()
    depth: int = 2  # frames in flight in the steady-state phase (1: no such phase)

    @property
    def pipelined_runs(self) -> int:
        """Frames of the steady-state phase: ``runs`` again, when more than one is in flight."""
        return self.runs if self.depth > 1 else 0

    def frames_sent(self, images: int) -> int:
        """Every frame a run sends: the verify pass over ``images``, warm-up, timed, pipelined."""
        return images + self.warmup + self.runs + self.pipelined_runs


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


class Stopwatch:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def _compile_all(split: SplitModel, placement: Placement, inventory: Inventory, progress: Progress):
    """Every branch for its board and the head for the host, each with its tuning database.

    Returns the artifacts and one line per distinct tuning outcome (which database, or none).
    """
    task = progress.add_task("export + compile", total=len(split.branches) + 1)
    notes: dict[str, list[str]] = {}
    artifacts: list[CompiledArtifact] = []
    for i, branch in enumerate(split.branches):
        board = inventory.board(placement.branches[i])
        artifact, note = compile_tuned(split, branch, board.build_target, board.build_format)
        artifacts.append(artifact)
        notes.setdefault(note, []).append(branch.name)
        progress.advance(task)
    head, note = compile_tuned(split, split.head, host_target(), "so")
    notes.setdefault(note, []).append(split.head.name)
    progress.advance(task)
    return artifacts, head, tuple(f"{', '.join(names)}: {note}" for note, names in notes.items())


def _probe_all(sessions: dict[str, BoardSession], progress: Progress) -> list[ProbeResult]:
    task = progress.add_task("probe boards", total=len(sessions))
    results = []
    for board_session in sessions.values():
        results.append(probe(board_session))
        progress.advance(task)
    return results


def run(options: RunOptions, fleet: Fleet | None = None) -> RunReport:
    """The branch run; ``fleet``: boards already started by the caller (left running), e.g. by compare."""
    normalise_shares(options.branches, options.widths)  # bad N or widths fail before any work
    watch = Stopwatch()
    with watch.stage("inputs"):  # bad --model, --images or inventory fail before any heavy work
        spec = get_model_spec(options.model)
        partitioner_for(spec.family)  # no partitioner for the family, or a broken plug-in: fail now
        frame_list, image_source = load_frames(options.images, spec.input_shape)
        inventory = resolve_inventory(options.inventory)
        strategy = check_strategy(options.placement or inventory.placement or "round-robin", options.widths)
        policy = options.policy or inventory.policy or DEFAULT_POLICY
    with watch.stage("partition"):
        reference = load_reference(options.model, seed=options.seed)
        graph = graph_from_block(reference.block, spec.input_shape)
        cost = branch_cost_model(graph)
        if not needs_probe(strategy):  # pure analysis: a bad placement fails before boards start
            placement = place(strategy, options.branches, inventory, widths=options.widths, cost=cost)

    owned = fleet is None
    fleet = fleet or Fleet(inventory, wait_s=options.wait_s)
    with _progress() as progress:
        with watch.stage("start boards"):
            if owned:
                fleet.start()
        with fleet if owned else contextlib.nullcontext():
            sessions = fleet.sessions()
            runner = None
            try:
                probes: list[ProbeResult] = []
                if needs_probe(strategy):
                    with watch.stage("probe"):
                        probes = _probe_all(sessions, progress)
                    placement = place(strategy, options.branches, inventory, speeds=relative_speeds(probes), cost=cost)
                with watch.stage("partition"):
                    split = partition(reference, options.branches, placement.shares, options.multiple, graph=graph)
                    split, tuned = fine_tuned(split, reference)  # fine-tuned split weights, when shipped
                    placement = validated(
                        placement, options.branches, inventory, tuple(b.params for b in split.plan.branches)
                    )
                with watch.stage("reference"):
                    ref_logits = np.concatenate([reference.block(mx.nd.array(f.tensor)).asnumpy() for f in frame_list])
                    split_logits = np.concatenate([split(f.tensor) for f in frame_list])
                with watch.stage("compile"):
                    artifacts, head_artifact, tuning_notes = _compile_all(split, placement, inventory, progress)
                    head = LocalModule(head_artifact)
                chaos = Chaos(list(options.chaos), inventory, fleet.cluster)
                copies = len(artifacts) * (2 if policy == "replicate" else 1)
                upload = progress.add_task("upload", total=copies + (len(sessions) if policy == "coded" else 0))

                def load(board_session: BoardSession, artifact: CompiledArtifact, bound=()):
                    module = guarded(
                        board_session.load,
                        artifact,
                        bound,
                        timeout=FIRST_CALL_TIMEOUT_S,
                        what=f"uploading {artifact.part} to {board_session.board.name}",
                    )
                    progress.advance(upload)
                    return module

                with watch.stage("upload"):
                    runner = build_runner(policy, split, placement, inventory, sessions, artifacts, head, load)
                timed = _run_frames(runner, frame_list, options, progress, watch, chaos)
                modules = runner.modules()
                compute = [
                    _compute_s(i, m, frame_list[0].tensor, options.compute_repeat) for i, m in enumerate(modules)
                ]
            finally:
                for name, board_session in sessions.items():
                    if runner is None or name not in runner.dead:  # a dead board's session is abandoned
                        board_session.close()
    exact = [f for f in timed.frames if not f.degraded]
    if exact:
        fidelity_check, diff = fidelity(
            np.concatenate([f.logits for f in exact]),
            np.concatenate([split_logits[f.image : f.image + 1] for f in exact]),
        )
    else:  # every frame degraded (a branch lost from the first frame on): nothing exact to compare
        fidelity_check, diff = (
            Check("distributed vs in-process split (MXNet)", "no exact frames", INFO, "all degraded"),
            0.0,
        )
    checks = [
        fidelity_check,
        frames_answered(len(timed.frames), options.frames_sent(len(frame_list))),
    ]
    degraded = [f for f in timed.frames if f.degraded]
    if degraded:
        checks.append(_degraded_check(degraded, split, frame_list))
    agreement_check, rate = agreement(split_logits, ref_logits, options.branches, reference.trained)
    input_bytes = int(np.prod(spec.input_shape)) * 4
    branch_reports = []
    for i, spec_b in enumerate(split.plan.branches):
        module = modules[i]
        board = inventory.board(module.board if module is not None else placement.branches[i])
        branch_reports.append(
            BranchReport(
                index=i,
                share=spec_b.share,
                feature_size=spec_b.feature_size,
                params=spec_b.params,
                flops=spec_b.flops,
                board=board.name,
                target=board.describe(),
                address=sessions[board.name].address_text if module is not None else "(lost)",
                compute_ms=compute[i] * 1000.0,
                call=LatencyStats.of([c[i] for c in timed.branch_call_s]),
                link_ms=board.link.transfer_ms(input_bytes + spec_b.feature_size * 4) if board.link else None,
            )
        )
    e2e = LatencyStats.of(timed.total_s)
    return RunReport(
        model=options.model,
        params_source=reference.source + (f"; split fine-tuned: {tuned['file']}" if tuned else ""),
        n=options.branches,
        multiple=options.multiple,
        inventory=inventory.description or inventory.source,
        inventory_source=inventory.source,
        emulated=inventory.emulated,
        target=", ".join(dict.fromkeys(b.target for b in branch_reports)),
        placement=placement.strategy,
        board_speeds=dict(placement.speeds),
        probe_gflops={p.board: p.gflops for p in probes},
        spares=placement.spares,
        images=image_source,
        branches=tuple(branch_reports),
        head_ms=float(np.median(timed.head_s)) * 1000.0,
        end_to_end=e2e,
        throughput_fps=1000.0 / e2e.mean_ms if e2e.frames else 0.0,
        checks=(*checks, agreement_check),
        policy=policy,
        timeout_s=runner.timeout_s,
        chaos=tuple(chaos.applied),
        faults=tuple(asdict(e) for e in runner.events),
        frames=len(timed.frames),
        frames_degraded=len(degraded),
        worst_frame_ms=max(f.total_s for f in timed.frames) * 1000.0,
        dead_boards=tuple(sorted(runner.dead)),
        frame_ms=tuple(f.total_s * 1000.0 for f in timed.frames),
        depth=options.depth,
        tuning=tuning_notes,
        steady_fps=timed.steady_fps,
        parity_decodes=runner.coded_head.recovered_blocks if runner.coded_head is not None else 0,
        fidelity_max_abs_diff=diff,
        agreement_rate=rate,
        reference_flops=split.plan.reference_flops,
        stage_seconds=dict(watch.seconds),
        cache_hits=sum(a.cached for a in [*artifacts, head_artifact]),
        compiled_parts=len(artifacts) + 1,
    )


@dataclass(frozen=True)
class FrameRecord:
    image: int  # index into the frame list
    logits: np.ndarray
    degraded: bool
    total_s: float
    lost: tuple[int, ...]  # branches dropped when it ran (degrade policy)


@dataclass
class TimedRuns:
    frames: list[FrameRecord]  # every frame sent: verify pass, warm-up, timed
    branch_call_s: list[tuple[float, ...]]  # timed frames only, from here on
    total_s: list[float]
    head_s: list[float]
    steady_fps: float = 0.0  # frames/s with --depth frames in flight (0 when depth is 1)


def _compute_s(branch: int, module, x: np.ndarray, repeat: int) -> float:
    """Median on-board seconds of one branch call (NaN for a branch that was dropped)."""
    if module is None:
        return float("nan")
    what = f"timing branch {branch} on {module.board}"
    times = guarded(lambda: module.compute_times(x, repeat=repeat), timeout=FIRST_CALL_TIMEOUT_S, what=what)
    return float(np.median(times))


def _run_frames(
    runner: DistributedSplit, frames: list[Frame], options: RunOptions, progress: Progress, watch, chaos: Chaos
) -> TimedRuns:
    """A verify pass over every image, then warm-up and timed frames (cycling); every answer kept.

    The verify pass runs with the first-call timeout; its branch call times then set the
    timeout for the rest (unless ``--timeout`` fixed it). The timed frames run one at a time
    (single-frame latency); then, with ``depth`` > 1, as many again with ``depth`` frames in
    flight, so a board starts the next frame while the head and the transfers of the last
    one are still going (steady-state throughput).
    """
    task = progress.add_task("frames", total=options.frames_sent(len(frames)))
    timed = TimedRuns([], [], [], [])

    def one(image: int):
        chaos.before_frame(runner.frames)
        result = runner(frames[image].tensor)
        timed.frames.append(
            FrameRecord(image, result.logits, result.degraded, result.total_s, tuple(sorted(runner.lost)))
        )
        progress.advance(task)
        return result

    with watch.stage("verify pass"):
        first = [one(i) for i in range(len(frames))]
    runner.timeout_s = options.timeout_s or derived_timeout([s for r in first if not r.events for s in r.branch_call_s])
    with watch.stage("timed frames"):
        for i in range(options.warmup + options.runs):
            result = one(i % len(frames))
            if i >= options.warmup:
                timed.branch_call_s.append(result.branch_call_s)
                timed.total_s.append(result.total_s)
                timed.head_s.append(result.head_s)
    if options.pipelined_runs:  # steady state: `depth` frames in flight, so boards never wait on the head
        with watch.stage("pipelined frames"), ThreadPoolExecutor(options.depth, "splitnet-frame") as pool:
            start = time.perf_counter()
            list(pool.map(one, (i % len(frames) for i in range(options.pipelined_runs))))
            timed.steady_fps = options.pipelined_runs / (time.perf_counter() - start)
    return timed


def _degraded_check(degraded: list[FrameRecord], split: SplitModel, frames: list[Frame]) -> Check:
    """Degraded answers against the same split run in-process with the lost branches zeroed."""
    expected: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
    worst = 0.0
    for record in degraded:
        key = (record.image, record.lost)
        if key not in expected:
            features = split.features(frames[record.image].tensor)
            expected[key] = split.merge([np.zeros_like(f) if i in record.lost else f for i, f in enumerate(features)])
        worst = max(worst, float(np.max(np.abs(record.logits - expected[key]))))
    return Check(
        name="degraded frames vs in-process split without the lost branches",
        value=f"{len(degraded)} frames, max |diff| {worst:.2e}",
        status=PASS if worst <= FIDELITY_ATOL else FAIL,
        detail="flagged degraded: answered from the surviving branches",
    )
